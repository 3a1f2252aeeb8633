"""The multi-scale supervised stacked-hourglass network (Ke et al., ICIP 2018).

Reference: L. Ke, M.-C. Chang, H. Qi, S. Lyu, "Multi-scale supervised network for human
pose estimation", ICIP 2018, arXiv:1808.01623. The hourglass, residual block and
intermediate supervision follow A. Newell, K. Yang, J. Deng, "Stacked hourglass networks
for human pose estimation", ECCV 2016.

Only `keras.layers` / `keras.ops` are used, so the model runs on the TensorFlow, JAX and
PyTorch backends of Keras 3.

Design choices the paper leaves open (documented in README.md, "The network"):

- Deconv layers: a 4x4 stride-2 transposed convolution (pre-activated by BN-ReLU), or
  Newell's nearest-neighbour upsampling (`deconv="upsample"`).
- Multi-scale heads: BN-ReLU-1x1 conv on the feature map right after each deconv layer
  (and its skip addition). The GT-scale head sits on the stack output, as in Newell et al.
- Feedback: each coarse head's heatmaps are mapped back by a 1x1 conv and added to the
  features that enter the next deconv layer (paper §2.1, "for use in the next deconv
  layer").
- Global regression: the last stack's heatmaps at every supervised scale, bilinearly
  upsampled to GT resolution and concatenated, pass through a 1x1 conv and pre-activation
  bottleneck blocks with dilations 1, 2, 4, ... up to heatmap_size / 4 (receptive field
  63 px at 64x64, i.e. the whole crop), then a 1x1 conv. Its output is added to the last
  stack's GT heatmaps (a residual refinement), giving `refined`; with
  `regression_residual=False` its output is `refined` itself.
"""

import dataclasses

import keras

from pose_keras.config import ModelConfig

HOURGLASS_DEPTH = 4  # 64 -> 32 -> 16 -> 8 -> 4 for a 256 input (SPEC §1)


def output_names(model_config: ModelConfig) -> list[str]:
    """Names of the model's outputs, in the model's order (`model.output_names`).

    One `stack{k}_scale{s}` per stack k and supervised scale s (a GT/s heatmap), plus
    `refined` when the global regression is on. Keras orders a dict of outputs by sorted
    key, so this is the sorted list of names.
    """
    names = [
        f"stack{stack}_scale{scale}"
        for stack in range(1, model_config.stacks + 1)
        for scale in model_config.supervised_scales
    ]
    if model_config.global_regression:
        names.append("refined")
    return sorted(names)


def prediction_name(model_config: ModelConfig) -> str:
    """The output used as the model's prediction: `refined`, or the last stack's GT head."""
    if model_config.global_regression:
        return "refined"
    return f"stack{model_config.stacks}_scale1"


def output_scale(name: str) -> int:
    """Down-sampling factor of an output relative to GT (`refined` is at GT)."""
    if name == "refined":
        return 1
    try:
        return int(name.rsplit("_scale", 1)[1])
    except (IndexError, ValueError):
        raise ValueError(f"Not a pose_keras output name: {name!r}") from None


# Layers that emit heatmaps start near zero (normal, std 0.001, as the final layers of
# Xiao et al.'s SimpleBaseline and HRNet): the first steps then start from the all-zero
# prediction instead of spending epochs shrinking large random heatmaps.
HEATMAP_INITIALIZER = {"class_name": "RandomNormal", "config": {"stddev": 0.001}}


def apply_conv_bn_relu(x, filters, kernel_size, strides=1, name=None):
    """Conv -> BN -> ReLU (post-activation), as in Newell et al.'s stem and output layer."""
    x = keras.layers.Conv2D(
        filters, kernel_size, strides=strides, padding="same", name=f"{name}_conv"
    )(x)
    x = keras.layers.BatchNormalization(name=f"{name}_bn")(x)
    return keras.layers.ReLU(name=f"{name}_relu")(x)


def apply_residual(x, filters, dilation=1, name=None):
    """Pre-activation bottleneck residual block (Newell et al.).

    BN-ReLU-1x1 (filters/2) -> BN-ReLU-3x3 (filters/2) -> BN-ReLU-1x1 (filters), plus the
    input, projected by a 1x1 conv when the channel count changes.

    Args:
        x: tensor (batch, height, width, channels).
        filters: int. Output channels.
        dilation: int. Dilation of the 3x3 conv. Default 1.
        name: str. Prefix of every layer name.
    """
    middle = filters // 2
    shortcut = x
    if x.shape[-1] != filters:
        shortcut = keras.layers.Conv2D(filters, 1, name=f"{name}_skip_conv")(x)
    x = keras.layers.BatchNormalization(name=f"{name}_1_bn")(x)
    x = keras.layers.ReLU(name=f"{name}_1_relu")(x)
    x = keras.layers.Conv2D(middle, 1, name=f"{name}_1_conv")(x)
    x = keras.layers.BatchNormalization(name=f"{name}_2_bn")(x)
    x = keras.layers.ReLU(name=f"{name}_2_relu")(x)
    x = keras.layers.Conv2D(
        middle, 3, padding="same", dilation_rate=dilation, name=f"{name}_2_conv"
    )(x)
    x = keras.layers.BatchNormalization(name=f"{name}_3_bn")(x)
    x = keras.layers.ReLU(name=f"{name}_3_relu")(x)
    x = keras.layers.Conv2D(filters, 1, name=f"{name}_3_conv")(x)
    return keras.layers.Add(name=f"{name}_add")([shortcut, x])


def apply_deconv(x, filters, kind, name=None):
    """Double the resolution: a transposed conv ("deconv") or nearest upsampling."""
    if kind == "upsample":
        return keras.layers.UpSampling2D(2, interpolation="nearest", name=f"{name}_upsample")(x)
    x = keras.layers.BatchNormalization(name=f"{name}_bn")(x)
    x = keras.layers.ReLU(name=f"{name}_relu")(x)
    return keras.layers.Conv2DTranspose(
        filters, 4, strides=2, padding="same", name=f"{name}_transpose"
    )(x)


def apply_head(x, num_joints, name, activate=True):
    """1x1 conv to one heatmap per joint; the float32 identity layer carries the output name.

    Args:
        activate: bool. Put BN-ReLU before the conv (multi-scale heads read pre-activation
            sums; the GT head reads the already activated stack output).
    """
    if activate:
        x = keras.layers.BatchNormalization(name=f"{name}_bn")(x)
        x = keras.layers.ReLU(name=f"{name}_relu")(x)
    x = keras.layers.Conv2D(
        num_joints, 1, kernel_initializer=HEATMAP_INITIALIZER, name=f"{name}_conv"
    )(x)
    # float32 so that mixed-precision training computes the loss in full precision.
    return keras.layers.Activation("linear", dtype="float32", name=name)(x)


def apply_stem(x, channels, stem_channels, name="stem"):
    """7x7/2 conv -> residual -> max-pool -> residual -> residual: 1/4 resolution."""
    x = apply_conv_bn_relu(x, stem_channels // 2, 7, strides=2, name=f"{name}_1")
    x = apply_residual(x, stem_channels, name=f"{name}_2")
    x = keras.layers.MaxPooling2D(2, name=f"{name}_pool")(x)
    x = apply_residual(x, stem_channels, name=f"{name}_3")
    return apply_residual(x, channels, name=f"{name}_4")


def apply_hourglass(x, channels, deconv, head_scales, num_joints, scale_feedback, name):
    """One conv-deconv module with heads at its deconv outputs.

    Returns:
        (features at the input resolution, {scale: heatmaps} for the heads in
        `head_scales` other than 1).
    """
    skips = []
    for level in range(HOURGLASS_DEPTH):
        skips.append(apply_residual(x, channels, name=f"{name}_skip{level}"))
        x = keras.layers.MaxPooling2D(2, name=f"{name}_pool{level}")(x)
        x = apply_residual(x, channels, name=f"{name}_down{level}")
    x = apply_residual(x, channels, name=f"{name}_bottleneck")
    heads = {}
    stack_name = name.rsplit("_", 1)[0]
    for level in reversed(range(HOURGLASS_DEPTH)):
        x = apply_residual(x, channels, name=f"{name}_up{level}")
        x = apply_deconv(x, channels, deconv, name=f"{name}_deconv{level}")
        x = keras.layers.Add(name=f"{name}_merge{level}")([skips[level], x])
        scale = 2**level
        if scale != 1 and scale in head_scales:
            heatmaps = apply_head(x, num_joints, name=f"{stack_name}_scale{scale}")
            heads[scale] = heatmaps
            if scale_feedback:
                feedback = keras.layers.Conv2D(
                    channels, 1, name=f"{stack_name}_scale{scale}_feedback"
                )(heatmaps)
                x = keras.layers.Add(name=f"{stack_name}_scale{scale}_feedback_add")([x, feedback])
    return x, heads


def apply_global_regression(heatmaps_by_scale, num_joints, channels, heatmap_size, name):
    """Global keypoint regression (paper §2.2) over the multi-scale heatmaps of a stack."""
    inputs = []
    for scale in sorted(heatmaps_by_scale):
        heatmaps = heatmaps_by_scale[scale]
        if scale != 1:
            heatmaps = keras.layers.UpSampling2D(
                scale, interpolation="bilinear", name=f"{name}_upsample{scale}"
            )(heatmaps)
        inputs.append(heatmaps)
    x = inputs[0]
    if len(inputs) > 1:
        x = keras.layers.Concatenate(name=f"{name}_concat")(inputs)
    x = keras.layers.Conv2D(channels, 1, name=f"{name}_in_conv")(x)
    dilation = 1
    while dilation <= max(1, heatmap_size // 4):
        x = apply_residual(x, channels, dilation=dilation, name=f"{name}_dilated{dilation}")
        dilation *= 2
    x = keras.layers.BatchNormalization(name=f"{name}_out_bn")(x)
    x = keras.layers.ReLU(name=f"{name}_out_relu")(x)
    return keras.layers.Conv2D(
        num_joints, 1, kernel_initializer=HEATMAP_INITIALIZER, name=f"{name}_out_conv"
    )(x)


@keras.saving.register_keras_serializable(package="pose_keras")
class MultiScaleHourglass(keras.Model):
    """Multi-scale supervised stacked hourglass with global keypoint regression.

    Ke, Chang, Qi, Lyu, "Multi-scale supervised network for human pose estimation",
    ICIP 2018 (arXiv:1808.01623), built on Newell et al.'s stacked hourglass (ECCV 2016).

    The input is an RGB person crop with values in [0, 255] (as decoded from JPEG/PNG; the
    model normalises internally). The output is a dict of heatmaps, one entry per supervised
    head, `stack{k}_scale{s}` with shape (batch, H/s, H/s, num_joints) for H = input/4, and
    `refined` (batch, H, H, num_joints) when the global regression is on. See
    `output_names` for the order.

    Args:
        model_config: ModelConfig or None. The hyper-parameters (see `ModelConfig` for each
            one, its meaning and default: input_size, num_joints, stacks, channels,
            supervised_scales, deconv, scale_feedback, global_regression,
            regression_channels, regression_residual, stem_channels). None = the defaults.
        **kwargs: any of those fields by name (they replace the ones of `model_config`;
            `get_config` stores them so), and Keras' `name` / `trainable`.

    Examples:

    >>> model = MultiScaleHourglass(stacks=1, channels=16, input_size=64,
    ...                             supervised_scales=(1, 2), stem_channels=16,
    ...                             regression_channels=16)
    >>> list(model.output_names)
    ['refined', 'stack1_scale1', 'stack1_scale2']
    >>> outputs = model(keras.ops.zeros((1, 64, 64, 3)))
    >>> tuple(outputs["stack1_scale2"].shape)
    (1, 8, 8, 16)
    """

    def __init__(self, model_config: ModelConfig | None = None, **kwargs):
        # The hyper-parameters are the fields of `ModelConfig`, given as a ModelConfig or by
        # keyword (as `get_config` stores them); ModelConfig validates them, so a crafted
        # `.keras` config is checked like the command line.
        names = [field.name for field in dataclasses.fields(ModelConfig)]
        given = {name: kwargs.pop(name) for name in names if name in kwargs}
        if "supervised_scales" in given:
            given["supervised_scales"] = tuple(given["supervised_scales"])
        model_config = dataclasses.replace(model_config or ModelConfig(), **given)
        input_size, num_joints = model_config.input_size, model_config.num_joints
        stacks, channels = model_config.stacks, model_config.channels
        supervised_scales = model_config.supervised_scales
        deconv, scale_feedback = model_config.deconv, model_config.scale_feedback
        heatmap_size = model_config.heatmap_size

        # === Functional Model ===
        image = keras.Input(shape=(input_size, input_size, 3), name="image")
        x = keras.layers.Rescaling(1.0 / 127.5, offset=-1.0, name="normalize")(image)
        x = apply_stem(x, channels, model_config.stem_channels)
        outputs = {}
        for stack in range(1, stacks + 1):
            name = f"stack{stack}"
            features, heads = apply_hourglass(
                x,
                channels,
                deconv,
                supervised_scales,
                num_joints,
                scale_feedback,
                name=f"{name}_hourglass",
            )
            features = apply_residual(features, channels, name=f"{name}_features_residual")
            features = apply_conv_bn_relu(features, channels, 1, name=f"{name}_features")
            heads[1] = apply_head(features, num_joints, name=f"{name}_scale1", activate=False)
            for scale in heads:
                outputs[f"{name}_scale{scale}"] = heads[scale]
            if stack < stacks:
                # Intermediate supervision remap (Newell et al.): features and heatmaps of
                # this stack, each through a 1x1 conv, are added to its input.
                merged_features = keras.layers.Conv2D(channels, 1, name=f"{name}_merge_features")(
                    features
                )
                merged_heatmaps = keras.layers.Conv2D(channels, 1, name=f"{name}_merge_heatmaps")(
                    heads[1]
                )
                x = keras.layers.Add(name=f"{name}_merge")([x, merged_features, merged_heatmaps])
        if model_config.global_regression:
            delta = apply_global_regression(
                heads, num_joints, model_config.regression_channels, heatmap_size, "regression"
            )
            refined = delta
            if model_config.regression_residual:
                refined = keras.layers.Add(name="regression_add")([heads[1], delta])
            outputs["refined"] = keras.layers.Activation("linear", dtype="float32", name="refined")(
                refined
            )

        super().__init__(inputs=image, outputs=outputs, **kwargs)

        # === Config ===
        self._model_config = model_config
        for name in names:  # model.stacks, model.input_size, ... read from the one config
            setattr(self, name, getattr(model_config, name))

    @property
    def model_config(self) -> ModelConfig:
        return self._model_config

    @property
    def prediction_name(self) -> str:
        return prediction_name(self.model_config)

    def get_config(self):
        config = dataclasses.asdict(self.model_config)
        config["supervised_scales"] = list(config["supervised_scales"])
        return {"name": self.name, "trainable": self.trainable, **config}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def build_model(model_config: ModelConfig, name="multiscale_hourglass") -> MultiScaleHourglass:
    """Build the network from a `ModelConfig`."""
    return MultiScaleHourglass(model_config, name=name)
