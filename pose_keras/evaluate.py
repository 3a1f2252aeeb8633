"""`python -m pose_keras.evaluate`: PCKh / PCK of a model or of a predictions file.

Two modes:

- `--model RUN_DIR_OR_FILE --data TFRECORDS`: run the model on every person of a TFRecord
  split (`inference.predict_split`: one pass in record order, no augmentation, the
  inference stage's decoding with arg-max + quarter-pixel shift or DARK, optional flip
  test, back-projection to image px) and score against the records' keypoints
  (`inference.score_model_predictions`). Writes
  `metrics.json`, `table.md`, a PCK(h) curve PNG and `predictions.npy` (people x joints x 2,
  image px, 0-based, record order) to `--output`.
- `--predictions FILE --gt gt_valid.mat`: score a predictions file without a model, the
  MPII validation set in the "evaluation format" of the MPII kit and the common PyTorch
  repos. FILE is a `.mat` with `preds` (people x 16 x 2, or 2 x 16 x people) in MATLAB
  1-based pixels, or a `.npy` of people x 16 x 2 in 0-based pixels (what `--model` writes
  and what pose_keras uses everywhere).

Metrics follow the official protocols (see `pose_keras.metrics` and docs/evaluation.md):
MPII PCKh@0.5 with the table of the paper (Head, Shoulder, Elbow, Wrist, Hip, Knee, Ankle,
Mean, Mean@0.1), FLIC PCK@0.2 (Elbow, Wrist), LSP PCK@0.2; the curve, its AUC, and the
occlusion subset (annotated but occluded joints) when visibility is known.

`--head-column official` (default) is the kit's and the paper's Head column, (upper neck +
head top) / 2; `--head-column head-top` prints head top alone, as HRNet and mmpose do.

`--json` prints exactly one JSON object on stdout: the table's columns, in percent. Without
it, the markdown table and a summary are printed.

Examples:

    python -m pose_keras.evaluate --model runs/mpii --data records/mpii_valid --flip
    python -m pose_keras.evaluate --predictions pred.mat --gt gt_valid.mat --json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path

import numpy as np

from pose_keras import cli, files, metrics, runs
from pose_keras.joints import BOX, MPII

# `dataset_joints` of gt_valid.mat (Tompson et al.'s evaluation format), in MPII id order.
MPII_EVALUATION_NAMES = (
    "rank", "rkne", "rhip", "lhip", "lkne", "lank", "pelv", "thor",
    "neck", "head", "rwri", "relb", "rsho", "lsho", "lelb", "lwri",
)  # fmt: skip


# Moved to the library module `pose_keras.inference`; still importable from here (lazily, so
# that scoring a predictions file does not import TensorFlow) for code written before.
MOVED_TO_INFERENCE = ("ModelPredictions", "predict_split", "score_model_predictions")


def __getattr__(name):
    if name in MOVED_TO_INFERENCE:
        from pose_keras import inference

        return getattr(inference, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# --------------------------------------------------------------------------------------
# Predictions files against gt_valid.mat
# --------------------------------------------------------------------------------------


@dataclasses.dataclass
class MpiiGroundTruth:
    """The MPII validation ground truth of `gt_valid.mat`, in its MATLAB 1-based frame.

    Attributes:
        keypoints_one_based: float64 (N, 16, 2). `pos_gt_src`.
        annotated: bool (N, 16). Not `jnt_missing`.
        head_boxes_one_based: float64 (N, 4). `headboxes_src` as (x1, y1, x2, y2).
        source: str. The file read.
    """

    keypoints_one_based: np.ndarray
    annotated: np.ndarray
    head_boxes_one_based: np.ndarray
    source: str

    @property
    def people(self) -> int:
        return self.keypoints_one_based.shape[0]


def _load_mat(path, what):
    import scipy.io

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: {path}")
    try:
        return scipy.io.loadmat(str(path))
    except Exception as error:  # scipy raises ValueError / MatReadError / OSError variants
        raise ValueError(f"{path}: cannot read as a MATLAB .mat file ({error}).") from None


def read_mpii_ground_truth(path) -> MpiiGroundTruth:
    """Read `gt_valid.mat` (`pos_gt_src` 16x2xN, `jnt_missing` 16xN, `headboxes_src` 2x2xN)."""
    data = _load_mat(path, "Ground-truth file")
    missing = [key for key in ("pos_gt_src", "jnt_missing", "headboxes_src") if key not in data]
    if missing:
        raise ValueError(
            f"{path}: not an MPII evaluation ground truth (missing {missing}; expected "
            "pos_gt_src, jnt_missing, headboxes_src as in gt_valid.mat)."
        )
    positions = np.asarray(data["pos_gt_src"], dtype=np.float64)
    jnt_missing = np.asarray(data["jnt_missing"])
    boxes = np.asarray(data["headboxes_src"], dtype=np.float64)
    if positions.ndim != 3 or positions.shape[:2] != (16, 2):
        raise ValueError(f"{path}: pos_gt_src must be 16 x 2 x N, received {positions.shape}.")
    count = positions.shape[2]
    if jnt_missing.shape != (16, count) or boxes.shape != (2, 2, count):
        raise ValueError(
            f"{path}: jnt_missing {jnt_missing.shape} / headboxes_src {boxes.shape} do not "
            f"match pos_gt_src (16 x 2 x {count})."
        )
    if "dataset_joints" in data:
        names = tuple(str(np.ravel(item)[0]) for item in np.ravel(data["dataset_joints"]))
        if names != MPII_EVALUATION_NAMES:
            raise ValueError(
                f"{path}: dataset_joints {names} is not the MPII joint order "
                f"{MPII_EVALUATION_NAMES}."
            )
    return MpiiGroundTruth(
        keypoints_one_based=positions.transpose(2, 0, 1),
        annotated=jnt_missing.T == 0,
        head_boxes_one_based=boxes.transpose(2, 0, 1).reshape(count, 4),
        source=str(path),
    )


def read_predictions(path, joints: int = 16) -> np.ndarray:
    """Predictions in the MATLAB 1-based frame of gt_valid.mat, float64 (N, joints, 2).

    `.mat`: `preds` of N x joints x 2 (HRNet, mmpose, bearpaw) or 2 x joints x N (the kit
    accepts both), 1-based. `.npy`: N x joints x 2, 0-based (pose_keras), shifted by +1.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".mat":
        data = _load_mat(path, "Predictions file")
        if "preds" not in data:
            raise ValueError(f"{path}: no 'preds' array (the MPII evaluation-format field).")
        raw = data["preds"]
        try:
            predictions = np.asarray(raw, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(
                f"{path}: 'preds' must be a numeric array (people x {joints} x 2), received "
                f"a {getattr(raw, 'dtype', type(raw).__name__)} array of shape "
                f"{getattr(raw, 'shape', '?')} (a MATLAB cell array or struct?)."
            ) from None
        if predictions.ndim == 3 and predictions.shape[:2] == (2, joints):
            predictions = predictions.transpose(2, 1, 0)
        one_based_offset = 0.0
    elif suffix == ".npy":
        if not path.is_file():
            raise FileNotFoundError(f"Predictions file not found: {path}")
        try:
            predictions = np.load(path, allow_pickle=False).astype(np.float64)
        except (ValueError, OSError) as error:
            raise ValueError(f"{path}: cannot read as a numeric .npy array ({error}).") from None
        one_based_offset = 1.0
    else:
        raise ValueError(
            f"{path}: predictions are a .mat (1-based, field 'preds') or .npy (0-based) "
            f"file, received {suffix!r}."
        )
    if predictions.ndim != 3 or predictions.shape[1:] != (joints, 2):
        raise ValueError(
            f"{path}: predictions must be people x {joints} x 2, received {predictions.shape}."
        )
    return predictions + one_based_offset


def read_visibility(path, annotated) -> np.ndarray:
    """Visibility 0/1/2 from a stacked-hourglass `.h5` (`visible`) with the same rows.

    Joints not annotated in `annotated` get 0; annotated joints get 2 when `visible` is
    set, else 1 (occluded).
    """
    import h5py

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Visibility file not found: {path}")
    try:
        with h5py.File(path, "r") as handle:
            if "visible" not in handle:
                raise ValueError(f"{path}: no 'visible' dataset (stacked-hourglass .h5).")
            visible = np.asarray(handle["visible"][:])
    except OSError as error:
        raise ValueError(f"{path}: cannot read as HDF5 ({error}).") from None
    annotated = np.asarray(annotated, dtype=bool)
    if visible.shape != annotated.shape:
        raise ValueError(
            f"{path}: 'visible' has shape {visible.shape}, the ground truth {annotated.shape}."
        )
    return np.where(annotated, np.where(visible > 0, 2, 1), 0).astype(np.int64)


def score_mpii(
    predictions_one_based,
    ground_truth: MpiiGroundTruth,
    visibility=None,
    threshold=None,
    head_column=metrics.OFFICIAL_HEAD,
) -> metrics.Evaluation:
    """PCKh of MPII predictions against gt_valid.mat, by the official protocol.

    Args:
        predictions_one_based: float (N, 16, 2). MATLAB 1-based pixels (as `read_predictions`
            returns them), compared in the ground truth's own frame.
        ground_truth: MpiiGroundTruth.
        visibility: int (N, 16) or None. With it, the occlusion subset is reported.
        threshold: float or None. Default 0.5.
        head_column: str. `metrics.HEAD_COLUMNS`; default the kit's (upper neck + head top).
    """
    predictions = np.asarray(predictions_one_based, dtype=np.float64)
    if predictions.shape[0] != ground_truth.people:
        raise ValueError(
            f"The predictions hold {predictions.shape[0]} people, the ground truth "
            f"{ground_truth.source} {ground_truth.people}: they must be the same people in "
            "the same order."
        )
    normalizers = metrics.head_sizes(ground_truth.head_boxes_one_based)
    if visibility is None:
        visibility = ground_truth.annotated
    return metrics.evaluate_keypoints(
        predictions,
        ground_truth.keypoints_one_based,
        visibility,
        normalizers,
        MPII,
        threshold=threshold,
        head_column=head_column,
    )


# --------------------------------------------------------------------------------------
# Reports
# --------------------------------------------------------------------------------------


def curve_file_name(evaluation: metrics.Evaluation) -> str:
    return "pckh_curve.png" if evaluation.protocol.startswith("PCKh") else "pck_curve.png"


def plot_curve(evaluation: metrics.Evaluation, path, title=None):
    """PNG of the pooled curve (Mean, with its AUC) and the table columns' curves."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    kind = evaluation.protocol.split("@")[0]
    figure = Figure(figsize=(6.4, 4.8), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot(1, 1, 1)
    for group, values in evaluation.group_curves.items():
        axes.plot(evaluation.thresholds, values, linewidth=1.2, label=group)
    axes.plot(
        evaluation.thresholds,
        evaluation.curve,
        color="black",
        linewidth=2.4,
        label=f"{metrics.MEAN} (AUC {evaluation.auc:.1f})",
    )
    axes.axvline(evaluation.threshold, color="gray", linestyle=":", linewidth=1)
    axes.set_xlim(evaluation.thresholds[0], evaluation.thresholds[-1])
    axes.set_ylim(0, 100)
    axes.set_xlabel(f"normalised distance threshold ({evaluation.joint_set.normalizer})")
    axes.set_ylabel(f"{kind} (%)")
    axes.set_title(
        title or f"{kind} curve, {evaluation.joint_set.name}, {evaluation.people} people"
    )
    axes.grid(alpha=0.3)
    axes.legend(loc="lower right", fontsize=8)
    with files.atomic_path(path) as temporary:
        figure.savefig(temporary, format="png")


def write_report(
    evaluation: metrics.Evaluation, output_dir, name: str, details: dict, title=None
) -> list:
    """Write metrics.json, table.md and the curve PNG (titled `title`, default: protocol,
    joint set and people); returns the paths written."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    document = {**details, **evaluation.to_dict()}
    metrics_path = output_dir / "metrics.json"
    files.write_text_atomic(metrics_path, json.dumps(document, indent=2) + "\n")
    table_path = output_dir / "table.md"
    files.write_text_atomic(table_path, markdown_report(evaluation, name))
    curve_path = output_dir / curve_file_name(evaluation)
    plot_curve(evaluation, curve_path, title=title)
    return [metrics_path, table_path, curve_path]


def markdown_report(evaluation: metrics.Evaluation, name: str) -> str:
    head = "" if evaluation.head_column == metrics.OFFICIAL_HEAD else ", Head = head top only"
    lines = [
        f"{evaluation.protocol} ({evaluation.joint_set.name}, {evaluation.people} people{head})",
        "",
        evaluation.to_markdown(name).rstrip("\n"),
        "",
        f"AUC ({evaluation.protocol.split('@')[0]} 0-{evaluation.thresholds[-1]:g}): "
        f"{evaluation.auc:.1f}",
    ]
    if evaluation.occlusion is not None:
        occlusion = evaluation.occlusion
        lines.append(
            f"Occlusion subset ({evaluation.protocol}, annotated but occluded joints): "
            f"{_percent(occlusion['pck'])} over {occlusion['count']} joints; inferable from "
            f"visible neighbours: {_percent(occlusion['inferable_pck'])} over "
            f"{occlusion['inferable_count']}"
        )
    return "\n".join(lines) + "\n"


def _percent(value):
    return "-" if value is None or np.isnan(value) else f"{value:.1f}"


def columns_json(evaluation: metrics.Evaluation) -> str:
    """One JSON object: the table's columns in percent (NaN as null); for box-normalised
    joint sets (DeepLabCut, labelling tools) also `mean_px_error` in original image px."""
    columns = dict(evaluation.columns)
    if evaluation.joint_set.normalizer == BOX:
        columns["mean_px_error"] = evaluation.mean_px_error
    return json.dumps(metrics.json_ready(columns))


def _default_output(run_path: Path, pattern: str, flip: bool = False) -> Path:
    """`<run>/evaluation/<model file>-<split>[-flip]`: one folder per model file, split and
    flip setting, so evaluations with and without the flip test never overwrite each other.

    >>> _default_output(Path("runs/mpii/best.keras"), "records/flic-*.tfrecord", True).as_posix()
    'runs/mpii/evaluation/best-flic-flip'
    """
    run_dir = run_path.parent
    split = Path(str(pattern)).name
    if split.endswith(".tfrecord"):
        split = split[: -len(".tfrecord")]
    split = "".join(
        character if character.isalnum() or character in "-_." else "_" for character in split
    )
    split = split.replace("_", " ").strip(" .-").replace(" ", "_") or "split"
    return run_dir / "evaluation" / f"{run_path.stem}-{split}{'-flip' if flip else ''}"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pose_keras.evaluate",
        description="PCKh / PCK by the official protocols: either run a model over a "
        "TFRecord split (--model, --data) or score a predictions file against the MPII "
        "gt_valid.mat (--predictions, --gt). Prints the table in the paper's layout.",
    )
    model_group = parser.add_argument_group("model mode")
    model_group.add_argument(
        "--model", help="Run directory (model.keras, else best.keras) or .keras file."
    )
    model_group.add_argument(
        "--data", help="TFRecord split: a prefix with a manifest or a shard glob."
    )
    cli.add_inference_arguments(model_group, batch_size=32, box_scale=False)
    model_group.add_argument(
        "--flip-shift",
        type=int,
        default=0,
        help="Pixels to shift unflipped heatmaps (0 is exact in pose_keras' frames; the "
        "PyTorch repos use 1). Default 0.",
    )
    runs.add_model_arguments(model_group, verb="evaluate")
    file_group = parser.add_argument_group("predictions-file mode")
    file_group.add_argument(
        "--predictions",
        help="Predictions: .mat with 'preds' (people x 16 x 2, MATLAB 1-based) or .npy "
        "(people x 16 x 2, 0-based).",
    )
    file_group.add_argument("--gt", help="MPII ground truth in evaluation format (gt_valid.mat).")
    file_group.add_argument(
        "--visibility",
        help="Stacked-hourglass valid.h5 with 'visible' for the same people (enables the "
        "occlusion subset).",
    )
    parser.add_argument(
        "--threshold",
        type=float,
        default=None,
        help="Main threshold (default 0.5 for PCKh, 0.2 for torso PCK).",
    )
    parser.add_argument(
        "--head-column",
        choices=metrics.HEAD_COLUMNS,
        default=metrics.OFFICIAL_HEAD,
        help="The Head column: 'official' = (upper neck + head top) / 2 as the MPII kit and "
        "the paper's Table 1; 'head-top' = head top alone, as HRNet and mmpose print it. "
        "Default official.",
    )
    parser.add_argument(
        "--output",
        default=None,
        help="Folder for metrics.json, table.md and the curve PNG (model mode default: "
        "RUN_DIR/evaluation/<split name>; predictions mode: nothing written unless given).",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="Print exactly one JSON object (the table's columns, percent) on stdout.",
    )
    parser.add_argument("--quiet", action="store_true", help="No progress bar.")
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        model_mode = args.model is not None or args.data is not None
        file_mode = args.predictions is not None or args.gt is not None
        title = None  # the curve's; for a model, it names the model and the flip setting
        if model_mode == file_mode:
            raise ValueError(
                "Give either --model and --data, or --predictions and --gt (see --help)."
            )
        if args.threshold is not None and not args.threshold > 0:
            raise ValueError(f"--threshold must be > 0, received {args.threshold}.")
        if file_mode:
            if not (args.predictions and args.gt):
                raise ValueError("--predictions and --gt go together.")
            if args.flip:
                raise ValueError(
                    "--flip applies to --model evaluation (it changes the predictions); a "
                    "predictions file is scored as it is."
                )
            if args.output:
                files.check_output_dir(args.output, "--output")
            ground_truth = read_mpii_ground_truth(args.gt)
            predictions = read_predictions(args.predictions)
            visibility = (
                read_visibility(args.visibility, ground_truth.annotated)
                if args.visibility
                else None
            )
            evaluation = score_mpii(
                predictions, ground_truth, visibility, args.threshold, args.head_column
            )
            name = Path(args.predictions).name
            details = {"predictions": str(args.predictions), "ground_truth": str(args.gt)}
            output = Path(args.output) if args.output else None
        else:
            if not (args.model and args.data):
                raise ValueError("--model and --data go together.")
            cli.check_inference_arguments(args)
            from pose_keras.inference import (
                predict_split,
                protocol_joint_set,
                score_model_predictions,
            )
            from pose_keras.records import resolve_split

            resolve_split(args.data)  # a missing split fails before the model loads
            run = runs.load_run(args.model, joints=args.joints, prefer=args.prefer)
            # A Head column the joint set cannot give fails before the work.
            metrics.table_groups(protocol_joint_set(run.joint_set), args.head_column)
            output = (
                Path(args.output)
                if args.output
                else _default_output(run.path, args.data, args.flip)
            )
            files.check_output_dir(output, "--output")  # before the work, not after it
            predictions, joint_set = predict_split(
                run,
                args.data,
                flip=args.flip,
                refine=args.refine,
                batch_size=args.batch_size,
                flip_shift_px=args.flip_shift,
                progress=not args.quiet,
            )
            evaluation = score_model_predictions(
                predictions, joint_set, args.threshold, args.head_column
            )
            name = Path(run.path).name
            title = (
                f"{evaluation.protocol} curve: {name} on {Path(str(args.data)).name}, "
                f"{'flip test' if args.flip else 'no flip test'}, {evaluation.people} people"
            )
            details = {
                "model": str(run.path),
                "data": str(args.data),
                "flip_test": args.flip,
                "flip_shift_px": args.flip_shift,
                "refine": args.refine,
            }
        written = []
        if output is not None:
            written = write_report(evaluation, output, name, details, title=title)
            if not file_mode:
                path = output / "predictions.npy"
                with files.atomic_path(path) as temporary:
                    np.save(temporary, predictions.keypoints)
                written.append(path)
    except (ValueError, OSError) as error:  # bad input (2); a full disk while writing (1)
        return cli.error_exit(error)
    if args.json:
        print(columns_json(evaluation))
    else:
        print(markdown_report(evaluation, name), end="")
        if written:
            print("Wrote " + ", ".join(str(path) for path in written))
    return 0


if __name__ == "__main__":
    sys.exit(main())
