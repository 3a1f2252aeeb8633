"""The training loss: paper Eq. 1 per supervised output, summed over all outputs.

Ke et al. 2018, §2.1, Eq. 1: for the i-th supervised output with N keypoint heatmaps,

    L_i = (1 / N) * sum_n sum_{x,y} (P_n(x, y) - G_n(x, y))^2

and the total loss is L = sum_i L_i over every stack, every supervised scale and the
refined output (§2.2). `HeatmapLoss` computes the inner sum over pixels and returns one
value per (person, joint); Keras then multiplies by the pipeline's per-joint weights
(`targets.joint_weights`: 0 for unannotated joints or joints outside the crop) and, with
its default `"sum_over_batch_size"` reduction, divides by batch x J. So each output's loss
is

    L_i = (1 / (B * N)) * sum_b sum_n w_bn * sum_{x,y} (P_bn - G_bn)^2

with N = all joints of the joint set, masked ones contributing zero. That is Eq. 1
literally (its N is the fixed keypoint count, 16 for MPII, not the number annotated)
averaged over the batch. Dividing by the annotated count instead would up-weight people
with few annotated joints; we keep the paper's form. Under a `tf.distribute` strategy
Keras divides each replica's loss by the replica count, so the global value is the same.

`mode="mse"` is Keras' mean squared error semantics: the mean over pixels instead of the
sum, i.e. Eq. 1 divided by the pixel count of that output (h x w). It weighs a GT/s
output s^2 times more than Eq. 1 does relative to GT (fewer pixels, same divisor), which
is what using Keras' built-in `"mse"` on each head would do (SPEC §2).

The total is Keras' weighted sum of the per-output losses with `train.loss_weights`
(`resolve_loss_weights`); weights default to 1, Eq. 1's plain sum.

Examples:

>>> import numpy as np
>>> loss = HeatmapLoss()
>>> targets = np.zeros((1, 4, 4, 2), "float32")
>>> heatmaps = np.ones((1, 4, 4, 2), "float32")
>>> float(loss(targets, heatmaps))  # 16 pixels x 1.0, mean over 2 joints
16.0
>>> float(loss(targets, heatmaps, sample_weight=np.array([[1.0, 0.0]])))
8.0
>>> float(HeatmapLoss(mode="mse")(targets, heatmaps))
1.0
"""

import keras

from pose_keras.model import output_names

LOSS_MODES = ("eq1", "mse")


@keras.saving.register_keras_serializable(package="pose_keras")
class HeatmapLoss(keras.losses.Loss):
    """Per-joint squared heatmap error (paper Eq. 1), to be masked by sample weights.

    Ke, Chang, Qi, Lyu, "Multi-scale supervised network for human pose estimation",
    ICIP 2018, Eq. 1.

    `call` returns a (batch, joints) tensor: the squared error summed (`"eq1"`) or
    averaged (`"mse"`) over the pixels of each joint's heatmap. Pass the pipeline's
    (batch, joints) weights as `sample_weight` so unannotated joints count zero; the
    default reduction then averages over batch x joints (see the module docstring).

    Args:
        mode: str. `"eq1"` (sum over pixels, the paper) or `"mse"` (mean over pixels,
            Keras' MSE). Default "eq1".
        name: str. Default "heatmap_loss".
        reduction: str. Keras reduction. Default "sum_over_batch_size".
        dtype: dtype of the computation. Default None (float32 unless floatx changed;
            the model's heads are float32 under mixed precision too).

    Examples:

    >>> model.compile(optimizer="adam",  # doctest: +SKIP
    ...               loss={name: HeatmapLoss() for name in model.output_names})
    """

    def __init__(
        self, mode="eq1", name="heatmap_loss", reduction="sum_over_batch_size", dtype=None
    ):
        if mode not in LOSS_MODES:
            raise ValueError(
                f"HeatmapLoss mode must be one of {list(LOSS_MODES)}, received {mode!r}."
            )
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.mode = mode

    def call(self, y_true, y_pred):
        squared = keras.ops.square(y_pred - y_true)  # (batch, height, width, joints)
        if self.mode == "eq1":
            return keras.ops.sum(squared, axis=(1, 2))
        return keras.ops.mean(squared, axis=(1, 2))

    def get_config(self):
        config = super().get_config()
        config["mode"] = self.mode
        return config


def _matches(key: str, name: str) -> bool:
    """`key` names output `name` exactly, or is one of its underscore-separated ends."""
    return name == key or name.endswith("_" + key) or name.startswith(key + "_")


def resolve_loss_weights(loss_weights: dict, names) -> dict:
    """Expand `train.loss_weights` into one weight per output.

    Keys are full output names (`"stack2_scale4"`, `"refined"`) or an underscore-separated
    end of several names: a scale suffix (`"scale4"`: every stack's GT/4 head) or a stack
    prefix (`"stack1"`: every head of stack 1). A full name beats a partial key; two
    partial keys that both match one output are ambiguous. Outputs no key matches weigh 1
    (Eq. 1's plain sum).

    Args:
        loss_weights: dict. Key -> weight (>= 0).
        names: list of str. The model's output names (`model.output_names`).

    Returns:
        dict: output name -> float weight, for every name.

    Raises:
        ValueError: a key that matches no output (naming it and the valid outputs), or an
            output matched by two partial keys.

    Examples:

    >>> resolve_loss_weights({"scale4": 0.5, "refined": 2},
    ...                      ["refined", "stack1_scale1", "stack1_scale4"])
    {'refined': 2.0, 'stack1_scale1': 1.0, 'stack1_scale4': 0.5}
    """
    names = list(names)
    unknown = sorted(key for key in loss_weights if not any(_matches(key, n) for n in names))
    if unknown:
        raise ValueError(
            f"train.loss_weights: key(s) {unknown} match no output of this model; outputs are "
            f"{names} (a key is a full name, a scale suffix like 'scale4' or a stack prefix "
            "like 'stack1')."
        )
    resolved = {}
    for name in names:
        if name in loss_weights:
            resolved[name] = float(loss_weights[name])
            continue
        partial = [key for key in loss_weights if key != name and _matches(key, name)]
        if len(partial) > 1:
            raise ValueError(
                f"train.loss_weights: keys {sorted(partial)} both match output {name!r}; give "
                f"{name!r} its own weight."
            )
        resolved[name] = float(loss_weights[partial[0]]) if partial else 1.0
    return resolved


def build_losses(model_config, train_config) -> tuple[dict, dict]:
    """The `loss` and `loss_weights` arguments of `model.compile` for a configuration.

    Args:
        model_config: ModelConfig. Decides the output names.
        train_config: TrainConfig. `loss` ("eq1" or "mse") and `loss_weights`.

    Returns:
        (losses, weights): dicts keyed by output name: a `HeatmapLoss` and a float.
    """
    names = output_names(model_config)
    weights = resolve_loss_weights(train_config.loss_weights, names)
    losses = {name: HeatmapLoss(mode=train_config.loss) for name in names}
    return losses, weights
