"""One configuration object for model, data and training.

A `Config` is three frozen dataclasses (`model`, `data`, `train`). It round-trips through
JSON, takes `section.key=value` overrides from the command line, and rejects unknown keys
and bad values before any work starts. The defaults are the paper's (Ke et al. 2018, §3):
4 stacks, 64 channels, 256 px input, 16 MPII joints, supervision at GT, GT/2, GT/4 and
GT/8, global regression on, Adam at 5e-4 for 100 epochs.

Presets are data: named override lists in `PRESETS`. `python -m pose_keras.fit` with no
argument uses the `synthetic` preset.

Examples:

>>> config = Config().with_overrides(["model.stacks=2", "model.supervised_scales=1,2"])
>>> config.model.stacks, config.model.supervised_scales
(2, (1, 2))
>>> Config.from_dict(config.to_dict()) == config
True
"""

import dataclasses
import json
import math
import types
import typing
from pathlib import Path

from pose_keras import files

# The supervised scales a depth-4 hourglass offers: deconv outputs at GT/8 ... GT.
ALLOWED_SCALES = (1, 2, 4, 8)
DECONV_KINDS = ("transpose", "upsample")


def _check_choice(section, key, value, choices):
    if value not in choices:
        raise ValueError(f"{section}.{key} must be one of {list(choices)}, received {value!r}.")


# Upper bounds on the network's size. A `.keras` file is rebuilt from these values
# (`MultiScaleHourglass.from_config` goes through `ModelConfig`), so they are also what stops
# a crafted file from asking for a network that hangs or exhausts the machine. The largest
# published hourglass shapes (K=8, C=256, 256-384 px inputs) sit well inside them.
MODEL_LIMITS = {
    "input_size": 1024,
    "num_joints": 512,
    "stacks": 16,
    "channels": 1024,
    "regression_channels": 1024,
    "stem_channels": 1024,
}


def _check_finite(section, instance):
    """NaN and infinity compare false against every bound, so check them first: a NaN
    learning rate or sigma would otherwise pass validation and fail (or diverge) later."""
    for field in dataclasses.fields(instance):
        value = getattr(instance, field.name)
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"{section}.{field.name} must be a finite number, received {value}.")


def _check_at_most(section, key, value, limit):
    if value > limit:
        raise ValueError(f"{section}.{key} must be <= {limit}, received {value!r}.")


def _check_positive(section, key, value, allow_zero=False):
    if value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{section}.{key} must be {bound}, received {value!r}.")


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Network hyper-parameters (SPEC §1).

    Attributes:
        input_size: int. Side of the square RGB input crop; a multiple of 64. Default 256.
        num_joints: int. Heatmaps per head (16 for MPII). Default 16.
        stacks: int. Number of hourglass (conv-deconv) modules K. Default 4.
        channels: int. Feature channels C inside the hourglasses. Default 64.
        supervised_scales: tuple of int. Which deconv outputs get a supervised 1x1 head:
            1 = GT (64x64 for a 256 input), 2 = GT/2, 4 = GT/4, 8 = GT/8. Must contain 1.
            The paper's ablation (Fig. 4) compares (1,), (1, 2), (1, 2, 4), (1, 2, 4, 8).
        deconv: str. `"transpose"` (4x4 stride-2 transposed convolution, the paper's
            "deconv") or `"upsample"` (nearest-neighbour x2 after the residual block, as in
            Newell et al.). Default "transpose".
        scale_feedback: bool. Feed each coarse head's heatmaps back into the features
            entering the next deconv layer through a 1x1 conv (paper §2.1: supervised
            heatmaps are "for use in the next deconv layer"). Default True.
        global_regression: bool. Add the global keypoint regression network (paper §2.2)
            producing the `refined` output. Default True.
        regression_channels: int. Width of the regression network. Default 64.
        regression_residual: bool. Add the regression network's output to the last stack's
            GT heatmaps (`refined` = heatmaps + correction); False: its output is `refined`
            itself. Default True.
        stem_channels: int. Width of the stem's residual blocks; its 7x7 conv has half.
            Default 128 (Newell et al.; the analytic sizes in SPEC §1 assume it).
    """

    input_size: int = 256
    num_joints: int = 16
    stacks: int = 4
    channels: int = 64
    supervised_scales: tuple[int, ...] = (1, 2, 4, 8)
    deconv: str = "transpose"
    scale_feedback: bool = True
    global_regression: bool = True
    regression_channels: int = 64
    regression_residual: bool = True
    stem_channels: int = 128

    def __post_init__(self):
        for key, limit in MODEL_LIMITS.items():
            value = getattr(self, key)
            if not isinstance(value, int) or isinstance(value, bool):
                raise ValueError(f"model.{key} must be an integer, received {value!r}.")
            _check_at_most("model", key, value, limit)
        if self.input_size < 64 or self.input_size % 64:
            raise ValueError(
                f"model.input_size must be a positive multiple of 64, received {self.input_size}."
            )
        _check_positive("model", "num_joints", self.num_joints)
        _check_positive("model", "stacks", self.stacks)
        if self.channels < 8 or self.channels % 8:
            raise ValueError(
                f"model.channels must be a multiple of 8 (>= 8), received {self.channels}."
            )
        scales = tuple(self.supervised_scales)
        if (
            not scales
            or 1 not in scales
            or any(scale not in ALLOWED_SCALES for scale in scales)
            or len(set(scales)) != len(scales)
        ):
            raise ValueError(
                "model.supervised_scales must be distinct values from "
                f"{list(ALLOWED_SCALES)} and include 1 (GT), received {list(scales)}."
            )
        object.__setattr__(self, "supervised_scales", tuple(sorted(scales)))
        _check_choice("model", "deconv", self.deconv, DECONV_KINDS)
        if self.regression_channels < 8 or self.regression_channels % 8:
            raise ValueError(
                "model.regression_channels must be a multiple of 8 (>= 8), "
                f"received {self.regression_channels}."
            )
        if self.stem_channels < 8 or self.stem_channels % 8:
            raise ValueError(
                f"model.stem_channels must be a multiple of 8 (>= 8), received {self.stem_channels}."
            )

    @property
    def heatmap_size(self) -> int:
        return self.input_size // 4


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Dataset, augmentation and target settings (SPEC §2-§3).

    Attributes:
        joints: str. Built-in joint set (`mpii`, `flic`, `lsp`, `coco`) or `"auto"`: take
            it from the TFRecord manifest (custom datasets). Default "mpii".
        train_records: str. Glob of training TFRecord shards; empty = the embedded
            synthetic dataset. Default "".
        val_records: str. Glob of validation shards; empty = synthetic. Default "".
        sigma: float. Gaussian standard deviation at GT resolution, heatmap px. Default 1.
        target_downsample: str. How GT/2, GT/4, GT/8 targets are made: `"render"` draws a
            fresh Gaussian (peak 1) at each scale, `"area"` averages the GT map. Default
            "render".
        box_scale: float. Crop side = 200 * person scale * box_scale. Default 1.25.
        scale_jitter: float. Augmentation scale factor ~ U(1 - s, 1 + s). Default 0.25.
        rotation_deg: float. Augmentation rotation ~ U(-r, r) degrees. Default 30.
        flip: bool. Random horizontal flip with left/right swap. Default True.
        translate_jitter: float. Centre shift ~ U(-t, t) * box side. Default 0.05.
        color_jitter: float. Brightness/contrast/saturation jitter strength. Default 0.2.
        shuffle_buffer: int. Examples in the shuffle buffer. Default 2000.
        deterministic: bool. Keep tf.data's element order fixed, so a seeded pipeline
            yields identical batches every run (augmentation draws are seeded per example
            either way). False lets parallel stages emit out of order. Default True.
        keypoint_margin: float. Annotated keypoints may lie outside the image by at most
            this fraction of its longer side; beyond that the record is bad input.
            Default 0.1.
        skip_bad_records: bool. Scan the records first (decoding every image) and leave
            out corrupt ones, undecodable images, wrong joint counts, people without
            annotated joints and keypoints outside the image, with the counts logged.
            False: such a record stops the run with an error naming its shard and index.
            Default False.
        verify_checksums: bool. Check each shard's SHA-256 against its manifest before
            reading (a few seconds per GB), so a truncated or corrupt shard is reported
            with its first bad record before any work. Default True.
        synthetic_train: int. People in the synthetic training split. Default 2000.
        synthetic_val: int. People in the synthetic validation split. Default 500.
        synthetic_seed: int. Seed of the synthetic generator. Default 0.
        cache_dir: str. Where generated synthetic records are cached. Default
            ".cache/pose_keras".
    """

    joints: str = "mpii"
    train_records: str = ""
    val_records: str = ""
    sigma: float = 1.0
    target_downsample: str = "render"
    box_scale: float = 1.25
    scale_jitter: float = 0.25
    rotation_deg: float = 30.0
    flip: bool = True
    translate_jitter: float = 0.05
    color_jitter: float = 0.2
    shuffle_buffer: int = 2000
    deterministic: bool = True
    keypoint_margin: float = 0.1
    skip_bad_records: bool = False
    verify_checksums: bool = True
    synthetic_train: int = 2000
    synthetic_val: int = 500
    synthetic_seed: int = 0
    cache_dir: str = ".cache/pose_keras"

    def __post_init__(self):
        _check_finite("data", self)
        _check_positive("data", "sigma", self.sigma)
        _check_choice("data", "target_downsample", self.target_downsample, ("render", "area"))
        _check_positive("data", "box_scale", self.box_scale)
        if not 0 <= self.scale_jitter < 1:
            raise ValueError(f"data.scale_jitter must be in [0, 1), received {self.scale_jitter}.")
        if not 0 <= self.rotation_deg <= 180:
            raise ValueError(
                f"data.rotation_deg must be in [0, 180], received {self.rotation_deg}."
            )
        if not 0 <= self.translate_jitter < 0.5:
            raise ValueError(
                f"data.translate_jitter must be in [0, 0.5), received {self.translate_jitter}."
            )
        _check_positive("data", "color_jitter", self.color_jitter, allow_zero=True)
        _check_positive("data", "shuffle_buffer", self.shuffle_buffer, allow_zero=True)
        _check_positive("data", "keypoint_margin", self.keypoint_margin, allow_zero=True)
        _check_positive("data", "synthetic_train", self.synthetic_train)
        _check_positive("data", "synthetic_val", self.synthetic_val)


# `train.mixed_precision_dtype` values; the Keras policy is `mixed_<dtype>`.
MIXED_PRECISION_DTYPES = ("float16", "bfloat16")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings (SPEC §2; paper §3).

    Attributes:
        epochs: int. Default 100 (paper).
        batch_size: int. Default 16.
        learning_rate: float. Initial Adam learning rate. Default 5e-4 (paper).
        lr_schedule: str. `"cosine"` (decay to 1% over the run), `"step"` (x0.1 at 60% and
            90% of the epochs) or `"constant"`. The paper says only "with decay". Default
            "cosine".
        loss: str. `"eq1"`: the paper's Eq. 1 (sum over pixels, mean over joints,
            unannotated joints masked); `"mse"`: Keras-style mean over pixels (reweights
            coarse scales up by their pixel ratio). Default "eq1".
        loss_weights: dict. Per-output weight, keyed by output name (`"refined"`,
            `"stack2_scale4"`) or by a suffix shared by several outputs (`"scale4"`).
            Missing outputs weigh 1 (Eq. 1's plain sum). Default {}.
        mixed_precision: bool. Compute in 16-bit floats: Keras' `mixed_float16` or
            `mixed_bfloat16` policy (`mixed_precision_dtype`); variables, the heatmap
            heads and the loss stay float32. Default False.
        mixed_precision_dtype: str. `"float16"` (with loss scaling; GPUs) or
            `"bfloat16"` (no loss scaling; GPUs since Ampere, and CPUs with AVX-512 BF16
            or AMX, where oneDNN has bfloat16 kernels). Default "float16".
        jit_compile: bool. XLA compilation of the train step. Default False.
        distribution: str. `"none"`, `"mirrored"` (one host, all GPUs) or `"multiworker"`
            (tf.distribute.MultiWorkerMirroredStrategy, TF_CONFIG). Default "none".
        steps_per_epoch: int. 0 = one pass over the training set. Default 0.
        seed: int. Global seed. Default 0.
        run_dir: str. Where configs, logs, checkpoints and the model go. Default
            "runs/default".
    """

    epochs: int = 100
    batch_size: int = 16
    learning_rate: float = 5e-4
    lr_schedule: str = "cosine"
    loss: str = "eq1"
    loss_weights: dict = dataclasses.field(default_factory=dict)
    mixed_precision: bool = False
    mixed_precision_dtype: str = "float16"
    jit_compile: bool = False
    distribution: str = "none"
    steps_per_epoch: int = 0
    seed: int = 0
    run_dir: str = "runs/default"

    def __post_init__(self):
        _check_finite("train", self)
        _check_positive("train", "epochs", self.epochs)
        _check_positive("train", "batch_size", self.batch_size)
        _check_positive("train", "learning_rate", self.learning_rate)
        _check_choice("train", "lr_schedule", self.lr_schedule, ("cosine", "step", "constant"))
        _check_choice("train", "loss", self.loss, ("eq1", "mse"))
        _check_choice(
            "train", "mixed_precision_dtype", self.mixed_precision_dtype, MIXED_PRECISION_DTYPES
        )
        if not isinstance(self.loss_weights, dict):
            raise ValueError(
                f"train.loss_weights must be a mapping, received {self.loss_weights!r}."
            )
        for name, weight in self.loss_weights.items():
            if (
                not isinstance(weight, int | float)
                or isinstance(weight, bool)
                or not math.isfinite(weight)
                or weight < 0
            ):
                raise ValueError(
                    f"train.loss_weights[{name!r}] must be a number >= 0 and finite, "
                    f"received {weight!r}."
                )
        _check_choice(
            "train", "distribution", self.distribution, ("none", "mirrored", "multiworker")
        )
        _check_positive("train", "steps_per_epoch", self.steps_per_epoch, allow_zero=True)


SECTIONS = {"model": ModelConfig, "data": DataConfig, "train": TrainConfig}


@dataclasses.dataclass(frozen=True)
class Config:
    """The whole configuration: `model`, `data` and `train` sections."""

    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)

    def to_dict(self) -> dict:
        result = {}
        for section in SECTIONS:
            values = dataclasses.asdict(getattr(self, section))
            result[section] = {
                key: list(value) if isinstance(value, tuple) else value
                for key, value in values.items()
            }
        return result

    def to_json(self, path=None) -> str:
        text = json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n"
        if path is not None:
            files.write_text_atomic(path, text)
        return text

    @classmethod
    def from_dict(cls, data: dict, source: str = "config") -> "Config":
        """Build from a nested dict; unknown sections or keys are a `ValueError`."""
        if not isinstance(data, dict):
            raise ValueError(f"{source}: expected a JSON object, received {type(data).__name__}.")
        unknown = sorted(set(data) - set(SECTIONS))
        if unknown:
            raise ValueError(
                f"{source}: unknown section(s) {unknown}; sections are {list(SECTIONS)}."
            )
        sections = {}
        for section, section_class in SECTIONS.items():
            values = data.get(section, {})
            if not isinstance(values, dict):
                raise ValueError(f"{source}: section {section!r} must be an object.")
            fields = _field_types(section_class)
            unknown = sorted(set(values) - set(fields))
            if unknown:
                raise ValueError(
                    f"{source}: unknown key(s) {[f'{section}.{k}' for k in unknown]}; "
                    f"valid keys: {sorted(fields)}."
                )
            coerced = {
                key: _coerce(value, fields[key], f"{section}.{key}")
                for key, value in values.items()
            }
            sections[section] = section_class(**coerced)
        return cls(**sections)

    @classmethod
    def from_json(cls, path) -> "Config":
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise ValueError(f"Config file not found: {path}") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise ValueError(f"{path}: not valid JSON ({error}).") from None
        except OSError as error:
            raise ValueError(f"{path}: cannot read the config ({error.strerror}).") from None
        try:
            return cls.from_dict(data, source=str(path))
        except ValueError as error:
            message = str(error)
            if message.startswith(f"{path}:"):
                raise
            raise ValueError(f"{path}: {message}") from None

    def with_overrides(self, overrides) -> "Config":
        """Apply `section.key=value` strings; values are parsed by the field's type."""
        data = self.to_dict()
        for override in overrides:
            if "=" not in override:
                raise ValueError(f"Override {override!r} is not of the form section.key=value.")
            dotted, raw_value = override.split("=", 1)
            parts = dotted.strip().split(".")
            if len(parts) != 2 or parts[0] not in SECTIONS:
                raise ValueError(
                    f"Override key {dotted!r} must be section.key with section in {list(SECTIONS)}."
                )
            section, key = parts
            fields = _field_types(SECTIONS[section])
            if key not in fields:
                raise ValueError(
                    f"Unknown config key {dotted!r}; valid keys in {section!r}: {sorted(fields)}."
                )
            data[section][key] = _parse_text(raw_value, fields[key], dotted)
        return Config.from_dict(data, source="overrides")

    @classmethod
    def preset(cls, name: str) -> "Config":
        if name not in PRESETS:
            raise ValueError(f"Unknown preset {name!r}; presets: {sorted(PRESETS)}.")
        return cls().with_overrides(PRESETS[name])


# Named configurations, as override lists on top of the paper defaults.
PRESETS = {
    # The paper's network and recipe (Ke et al. 2018, §3).
    "paper": [],
    # The embedded default of `python -m pose_keras.fit`: a small model on the synthetic
    # dataset that trains on a 2-core CPU in minutes. Supervised at GT only, with the
    # regression network: at this size the GT/2-GT/8 heads cost PCKh (docs/ablation.md).
    "synthetic": [
        "model.input_size=128",
        "model.supervised_scales=1",
        "model.stacks=2",
        "model.channels=32",
        "model.regression_channels=32",
        "model.stem_channels=32",
        "train.epochs=14",
        "train.learning_rate=2e-3",
        "train.batch_size=16",
        "train.run_dir=runs/synthetic",
    ],
}


def _field_types(section_class) -> dict:
    hints = typing.get_type_hints(section_class)
    return {field.name: hints[field.name] for field in dataclasses.fields(section_class)}


def _coerce(value, field_type, name):
    """Check and convert a JSON value to the field's declared type."""
    origin = typing.get_origin(field_type)
    if field_type is bool:
        if isinstance(value, bool):
            return value
        raise ValueError(f"{name} must be true or false, received {value!r}.")
    if field_type is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ValueError(f"{name} must be an integer, received {value!r}.")
    if field_type is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        raise ValueError(f"{name} must be a number, received {value!r}.")
    if field_type is str:
        if isinstance(value, str):
            return value
        raise ValueError(f"{name} must be a string, received {value!r}.")
    if origin is tuple:
        if isinstance(value, list | tuple):
            return tuple(_coerce(item, int, name) for item in value)
        raise ValueError(f"{name} must be a list of integers, received {value!r}.")
    if field_type is dict or origin is dict:
        if isinstance(value, dict):
            return dict(value)
        raise ValueError(f"{name} must be an object, received {value!r}.")
    if isinstance(field_type, types.UnionType):
        raise TypeError(f"Unsupported config field type for {name}: {field_type}")
    raise TypeError(f"Unsupported config field type for {name}: {field_type}")


def _parse_text(text, field_type, name):
    """Parse a command-line value into the JSON value `_coerce` expects."""
    text = text.strip()
    if field_type is str:
        return text
    if field_type is bool:
        lowered = text.lower()
        if lowered in ("true", "1", "yes", "on"):
            return True
        if lowered in ("false", "0", "no", "off"):
            return False
        raise ValueError(f"{name} must be true or false, received {text!r}.")
    if typing.get_origin(field_type) is tuple and not text.startswith("["):
        text = "[" + text + "]"
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        raise ValueError(f"{name}: cannot parse {text!r} as a {_type_word(field_type)}.") from None


def _type_word(field_type):
    if typing.get_origin(field_type) is tuple:
        return "list of integers"
    if field_type is dict:
        return "JSON object"
    return field_type.__name__
