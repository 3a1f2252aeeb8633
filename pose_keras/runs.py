"""The run directory: what `fit` writes and what `evaluate`, `predict` and `export` read.

Layout of `RUN_DIR` (`train.run_dir`):

| path | what |
|---|---|
| `config.json` | the resolved `Config` the run used |
| `joints.json` | the joint set (names, flip pairs, limbs, normaliser) the model predicts |
| `model.keras` | the final model (written when training ends) |
| `best.keras` | the checkpoint with the best validation PCKh so far |
| `metrics.json` | per-epoch validation PCK(h), per joint and in the table layout |
| `log.csv` | per-epoch losses and metrics (Keras `CSVLogger`) |
| `tensorboard/` | TensorBoard event files |
| `backup/` | `BackupAndRestore` state, removed when training completes |

Every `.keras` file is loaded with `safe_mode=True`: no lambdas, no pickles, only the
registered `pose_keras` classes.
"""

import json
from dataclasses import dataclass
from pathlib import Path

from pose_keras.config import Config, DataConfig
from pose_keras.joints import JointSet, get_joint_set

CONFIG_FILE = "config.json"
JOINTS_FILE = "joints.json"
MODEL_FILE = "model.keras"
BEST_FILE = "best.keras"
METRICS_FILE = "metrics.json"
LOG_FILE = "log.csv"
TENSORBOARD_DIR = "tensorboard"
BACKUP_DIR = "backup"


@dataclass
class Run:
    """A loaded model with what is known about it."""

    model: object  # MultiScaleHourglass
    joint_set: JointSet
    config: Config | None
    path: Path

    @property
    def data_config(self) -> DataConfig:
        """The run's `data` section; the defaults for a bare `.keras` file."""
        return self.config.data if self.config else DataConfig()

    @property
    def box_scale(self) -> float:
        """Crop side / the person box's longer side: the run's `data.box_scale` (1.25 by
        default), what predict, evaluate and export crop with."""
        return self.data_config.box_scale

    @property
    def sigma(self) -> float:
        """The training Gaussian sigma in heatmap px (DARK decoding): `data.sigma`."""
        return self.data_config.sigma


def load_model(path, compile=False):
    """Load a `.keras` file safely (`safe_mode=True`), registering pose_keras classes."""
    import keras

    import pose_keras.model  # noqa: F401  (registers MultiScaleHourglass)

    if compile:  # the compiled loss and optimizer of a file `fit` wrote
        import pose_keras.losses  # noqa: F401
        import pose_keras.optimizer  # noqa: F401

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"Model file not found: {path}")
    try:
        model = keras.saving.load_model(path, compile=compile, safe_mode=True)
    except Exception as error:
        # Keras' messages run over many lines (configs, advice); one line is enough here.
        reason = " ".join(str(error).split())
        if "safe_mode" in reason and "lambda" in reason.lower():
            reason = "it holds a Lambda layer (Python code), which safe_mode refuses to load"
        elif len(reason) > 300:
            reason = reason[:300] + " ..."
        raise ValueError(f"{path}: cannot load as a Keras model ({reason}).") from error
    if not isinstance(model, pose_keras.model.MultiScaleHourglass):
        raise ValueError(
            f"{path}: a Keras model ({type(model).__name__}), but not a pose_keras "
            "MultiScaleHourglass; train one with python -m pose_keras.fit."
        )
    return model


def read_joint_set(path) -> JointSet:
    """The joint set stored in a run's `joints.json`; a garbled file is a `ValueError`
    naming it."""
    path = Path(path)
    try:
        return JointSet.from_dict(json.loads(path.read_text()))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path}: cannot read the joint set ({error}).") from None
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise ValueError(
            f"{path}: not a valid joint set ({type(error).__name__}: {error})."
        ) from None


def load_run(path, joints=None, prefer="model") -> Run:
    """Load a run directory or a bare `.keras` file.

    Args:
        path: a run directory (uses `model.keras`, or `best.keras` when `prefer="best"` or
            when the final model is absent) or a `.keras` file.
        joints: str or JointSet. Joint set to use when the run does not record one (a bare
            `.keras` file). Default: the run's `joints.json`, else MPII for 16 joints.
        prefer: str. `"model"` or `"best"`. Default "model".
    """
    path = Path(path)
    config = None
    joint_set = None
    if path.is_dir():
        run_dir = path
        candidates = [BEST_FILE, MODEL_FILE] if prefer == "best" else [MODEL_FILE, BEST_FILE]
        model_path = next(
            (run_dir / name for name in candidates if (run_dir / name).exists()), None
        )
        if model_path is None:
            raise FileNotFoundError(
                f"{run_dir}: no {MODEL_FILE} or {BEST_FILE}; is it a pose_keras run directory?"
            )
    else:
        model_path = path
        run_dir = path.parent
    if (run_dir / CONFIG_FILE).exists():
        config = Config.from_json(run_dir / CONFIG_FILE)
    if (run_dir / JOINTS_FILE).exists():
        joint_set = read_joint_set(run_dir / JOINTS_FILE)
    model = load_model(model_path)
    if joints is not None:
        joint_set = joints if isinstance(joints, JointSet) else get_joint_set(joints)
    if joint_set is None:
        if model.num_joints == 16:
            joint_set = get_joint_set("mpii")
        else:
            raise ValueError(
                f"{model_path}: the model predicts {model.num_joints} joints and no joints.json "
                "is beside it; name the joint set (e.g. --joints coco)."
            )
    if joint_set.num_joints != model.num_joints:
        raise ValueError(
            f"{model_path}: the model predicts {model.num_joints} joints but joint set "
            f"{joint_set.name!r} has {joint_set.num_joints}."
        )
    return Run(model=model, joint_set=joint_set, config=config, path=model_path)


def add_model_arguments(parser, verb: str = "use") -> None:
    """The `--prefer` and `--joints` flags of every command that loads a model."""
    parser.add_argument(
        "--prefer",
        choices=("model", "best"),
        default="model",
        help=f"In a run directory, {verb} model.keras (default) or best.keras.",
    )
    parser.add_argument(
        "--joints",
        default=None,
        help="Joint set of a bare .keras file without joints.json (mpii, flic, lsp, coco).",
    )
