"""pose_keras: the multi-scale supervised stacked hourglass (Ke et al., ICIP 2018) in Keras 3.

The Python API in a few names (details in `pose_keras.api` and the README, "Python API"):

- `pose_keras.load(run_dir_or_file)`: a trained model as a `PoseModel`, with
  `.predict(image, boxes=None, flip=False)`, `.evaluate(records, flip=False)` and
  `.export(path)`.
- `pose_keras.Config` and `pose_keras.fit(config)`: configure and train
  (`python -m pose_keras.fit` without the command line).
- `pose_keras.__version__`.

Importing the package is cheap: TensorFlow is imported only when a name above is first
used (module `__getattr__`, PEP 562). Examples:

>>> import pose_keras
>>> config = pose_keras.Config.preset("synthetic").with_overrides(["train.epochs=1"])
>>> config.train.epochs
1
>>> model = pose_keras.load("runs/synthetic")  # doctest: +SKIP
>>> prediction = model.predict("photo.jpg")  # doctest: +SKIP
>>> prediction.keypoints.shape, prediction.joint_names[0]  # doctest: +SKIP
((1, 16, 2), 'r_ankle')
"""

import importlib
import os
import sys
import types
from importlib import metadata
from pathlib import Path

# The public names and the module each one lives in, imported on first use.
_LAZY = {
    "Config": "pose_keras.config",
    "PoseModel": "pose_keras.api",
    "Prediction": "pose_keras.api",
    "load": "pose_keras.api",
}
__all__ = ["Config", "PoseModel", "Prediction", "__version__", "fit", "load"]


def _setup_cfg_version() -> str:
    """The version declared in setup.cfg, for a source tree that is not installed."""
    setup_cfg = Path(__file__).resolve().parents[1] / "setup.cfg"
    if setup_cfg.is_file():
        for line in setup_cfg.read_text().splitlines():
            key, _, value = line.partition("=")
            if key.strip() == "version":
                return value.strip()
    return "0+unknown"


try:
    __version__ = metadata.version("pose_keras")
except metadata.PackageNotFoundError:
    __version__ = _setup_cfg_version()


def quiet_tensorflow_on_cpu(environ=os.environ) -> bool:
    """Default `TF_CPP_MIN_LOG_LEVEL=3` on a machine without an NVIDIA driver.

    There, TensorFlow logs that it found no CUDA driver and that `cuInit` failed (an
    ERROR-level line, so level 2 does not hide it) on every start. A value the user set
    is kept; on a GPU machine nothing is changed, so CUDA set-up problems stay visible.
    Every command passes through here: `python -m pose_keras.<command>` imports this
    package before TensorFlow. Returns whether it set the variable.
    """
    if "TF_CPP_MIN_LOG_LEVEL" in environ:
        return False
    if os.path.exists("/proc/driver/nvidia/version") or os.path.exists("/dev/nvidiactl"):
        return False
    environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    return True


def use_onednn_kernels(environ=os.environ) -> bool:
    """Default `TF_ENABLE_ONEDNN_OPTS=1`: TensorFlow's oneDNN CPU kernels.

    TensorFlow 2.21 turns them on by itself only on CPUs with AVX-512 VNNI/BF16 or AMX
    (its start-up log says "Using the default setting: false" elsewhere, e.g. on the
    2-core AMD EPYC machines this project measures on) and runs its Eigen kernels
    instead. There oneDNN trained the default network about 1.5x and the plain 4x64
    network 1.06x faster, measured on a quiet machine (docs/benchmarks.md, "oneDNN
    kernels"). The two give the same results up to floating-point rounding
    (tests/test_api.py compares them). A value the user set, `0` included, is
    kept; it must be set before TensorFlow is imported, which every
    `python -m pose_keras.<command>` does by importing this package first. Returns whether
    it set the variable.
    """
    if "TF_ENABLE_ONEDNN_OPTS" in environ:
        return False
    environ["TF_ENABLE_ONEDNN_OPTS"] = "1"
    return True


quiet_tensorflow_on_cpu()
use_onednn_kernels()


class _CallableModule(types.ModuleType):
    """`pose_keras.fit` is both the training module and, called, its `fit` function."""

    def __call__(self, *args, **kwargs):
        return self.fit(*args, **kwargs)


class _Package(types.ModuleType):
    # Importing the submodule `pose_keras.fit` makes Python set the package attribute
    # `fit` to that module, whatever it was before. Instead of fighting that, the module
    # is made callable as it is attached, so `pose_keras.fit(config)` always trains and
    # `import pose_keras.fit`, `python -m pose_keras.fit` work as before.
    def __setattr__(self, name, value):
        if name == "fit" and isinstance(value, types.ModuleType):
            value.__class__ = _CallableModule
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


def __getattr__(name):
    if name == "fit":
        return importlib.import_module("pose_keras.fit")
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'pose_keras' has no attribute {name!r}")


def __dir__():
    return sorted({*globals(), *__all__})
