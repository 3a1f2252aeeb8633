"""PCK and PCKh, by the protocols the published tables use; pure numpy.

Importing this module imports numpy only (pandas lazily, for `to_dataframe`), so scoring a
predictions file never loads TensorFlow.

MPII PCKh, the official protocol (MPII evaluation kit `evalMPII.zip`, as mirrored in
anibali/eval-mpii-pose `eval/`: `evaluatePCKh.m`, `getDistPCKh.m`, `computePCK.m`,
`genTablePCK.m`, `util_get_head_size.m`):

- Normaliser: `SC_BIAS * ||head box diagonal||` with `SC_BIAS = 0.6` (`util_get_head_size`).
- Normalised distance: `||prediction - ground truth|| / normaliser` (`getDistPCKh`). A joint
  missing from the ground truth gives NaN and is left out of every count; a missing (NaN)
  prediction counts as wrong ("only gt is allowed to have NaN", `pred(isnan(pred)) = inf`).
- Correct: distance `<=` threshold (`computePCK`: `mean(d(~isnan(d)) <= range(k))`).
- Scored joints: 14, every joint but pelvis and thorax (`annolist2matrix` keeps ids 0-5,
  10-15, 8, 9).
- Columns (`genTablePCK`): each of Head, Shoulder, Elbow, Wrist, Hip, Knee, Ankle is the
  plain average of its two joints' PCKh; Head = (upper neck + head top) / 2. HRNet,
  mmpose and bearpaw print head top alone: `head_column=HEAD_TOP_ONLY` ("head-top")
  gives that column for comparison; the default `OFFICIAL_HEAD` ("official") is the kit's.
- Mean (the kit's "Total", the paper's Table 1 "Total"): pooled over all scored joints of
  all people, i.e. weighted by how many of each joint are annotated; not the average of the
  columns. Mean@0.1: the same pooled value at threshold 0.1.
- Curve: thresholds 0, 0.01, ..., 0.5; AUC is the area under the piecewise-linear curve
  divided by the threshold range (`area_under_curve(scale01(range), pck)`), in percent.

Torso PCK (FLIC, LSP; Sapp & Taskar CVPR'13 as implemented by the widely used
`eval_pck.m` of bearpaw/eval_pose): the normaliser is the distance between the torso
joints of `JointSet.torso_joints` (left shoulder to right hip), the threshold 0.2, the
curve 0 ... 0.2. Columns average the left and right joint of each part; Mean is pooled over
the scored joints.

Metrics for any joint set (DeepLabCut projects, labelling-tool exports, custom joints):

- Mean pixel error (`mean_pixel_error`): the Euclidean distance between prediction and
  ground truth in original image px, averaged over every annotated joint of every person.
  This is what DeepLabCut reports as "RMSE" / "Test error (px)": its `pairwisedistances`
  takes `sqrt(dx^2 + dy^2)` per frame and body part and `evaluate_network` averages them with
  `np.nanmean` (unlabelled parts and missing predictions are NaN, so left out); with a
  likelihood cut-off (`pcutoff`) only predictions scoring at least the cut-off count.
- PCK at a fraction of the person box diagonal (`box_pck`): correct when the error is
  `<=` fraction x the diagonal of the person's box. The default fraction 0.05 is mmpose's
  default for `PCKAccuracy(norm_item="bbox")`; mmpose normalises by the box's longer side
  (and counts `<`), so for a square box our 0.05 x diagonal is mmpose's 0.0707 x side.
  The box of a record is its square person box, side `200 * scale` (without the
  pipeline's 25% crop margin): `scale_box_diagonals`.

Differences from common Python evaluators (HRNet, mmpose, bearpaw/pytorch-pose) are
documented in docs/evaluation.md; the Head column is the one offered as an option
(`head_column`).

Examples:

>>> import numpy as np
>>> from pose_keras.joints import MPII
>>> truth = np.zeros((1, 16, 2)); predicted = truth + [9.0, 12.0]  # 15 px off
>>> head = head_sizes([[0.0, 0.0, 30.0, 40.0]])  # 0.6 * 50 = 30 px
>>> table = pck_table(predicted, truth, np.full((1, 16), 2), head, MPII, threshold=0.5)
>>> table["mean"]  # 15 / 30 == 0.5 <= 0.5: correct
100.0
"""

from __future__ import annotations

import dataclasses

import numpy as np

from pose_keras.joints import BOX, HEAD_BOX, JointSet
from pose_keras.records import NO_HEAD_BOX, NOT_ANNOTATED, OCCLUDED, VISIBLE
from pose_keras.transforms import PIXELS_PER_SCALE

# `util_get_head_size.m`: "SC_BIAS = 0.6; % 0.8*0.75".
SC_BIAS = 0.6
# Thresholds of the published tables: PCKh@0.5 (MPII), PCK@0.2 (FLIC, LSP).
HEAD_THRESHOLD = 0.5
TORSO_THRESHOLD = 0.2
# The second MPII summary column (HRNet / mmpose "Mean@0.1").
LOW_THRESHOLD = 0.1
# PCK at a fraction of the person box diagonal: mmpose `PCKAccuracy` default `thr=0.05`.
BOX_FRACTION = 0.05
CURVE_STEP = 0.01
MEAN = "Mean"
MEAN_LOW = "Mean@0.1"
# The Head column. "official": the kit's `genTablePCK.m`, `(pck(13) + pck(14)) / 2` (upper
# neck and head top), the layout of the paper's Table 1. "head-top": head top alone, as
# HRNet `lib/dataset/mpii.py` (`PCKh[head]`), mmpose `MpiiPCKAccuracy` and bearpaw
# `eval_PCKh.py` print it.
HEAD = "Head"
HEAD_TOP_JOINT = "head_top"
OFFICIAL_HEAD = "official"
HEAD_TOP_ONLY = "head-top"
HEAD_COLUMNS = (OFFICIAL_HEAD, HEAD_TOP_ONLY)


def default_threshold(joint_set: JointSet) -> float:
    """0.5 for head-box PCKh (MPII), 0.2 for torso PCK (FLIC, LSP, COCO), 0.05 of the
    person box diagonal for box-normalised joint sets (DeepLabCut, labelling tools)."""
    if joint_set.normalizer == HEAD_BOX:
        return HEAD_THRESHOLD
    return BOX_FRACTION if joint_set.normalizer == BOX else TORSO_THRESHOLD


def curve_thresholds(maximum: float, step: float = CURVE_STEP) -> np.ndarray:
    """Thresholds 0, step, ..., maximum: the doubles nearest to the decimal values.

    The kit's `range = 0:0.01:0.5` (51 values) for PCKh; `0:0.01:0.2` for torso PCK.
    """
    count = int(round(maximum / step)) + 1
    return np.round(np.arange(count) * step, 12)


def head_sizes(head_boxes) -> np.ndarray:
    """PCKh normaliser per person: `SC_BIAS` x the head box diagonal, image px.

    Args:
        head_boxes: float (N, 4) as (x0, y0, x1, y1), or (N, 2, 2) as corner pairs.

    Returns:
        float64 (N,). Non-positive where a box is absent (all -1) or degenerate.
    """
    boxes = np.asarray(head_boxes, dtype=np.float64).reshape(-1, 4)
    width = boxes[:, 2] - boxes[:, 0]
    height = boxes[:, 3] - boxes[:, 1]
    sizes = SC_BIAS * np.sqrt(width * width + height * height)
    absent = (boxes == np.asarray(NO_HEAD_BOX)).all(axis=1)
    return np.where(absent, 0.0, sizes)


def torso_sizes(keypoints_px, visibility, joint_set: JointSet) -> np.ndarray:
    """Torso PCK normaliser per person: distance between `joint_set.torso_joints`.

    Returns 0 for people whose torso joints are not both annotated (and for joint sets
    without torso joints), so callers can fall back to a record's own normaliser.
    """
    keypoints = np.asarray(keypoints_px, dtype=np.float64)
    if joint_set.torso_joints is None:
        return np.zeros(keypoints.shape[0])
    first, second = joint_set.torso_joints
    difference = keypoints[:, first] - keypoints[:, second]
    sizes = np.sqrt((difference * difference).sum(axis=-1))
    visibility = np.asarray(visibility)
    both = (visibility[:, first] > NOT_ANNOTATED) & (visibility[:, second] > NOT_ANNOTATED)
    return np.where(both, sizes, 0.0)


def person_normalizers(
    joint_set: JointSet, keypoints_px, visibility, head_boxes=None, record_normalizers=None
) -> np.ndarray:
    """The PCK(h) normaliser of every person, with the record's own value as fallback.

    The one rule (the pipeline's per-person `normalize`, `pipeline.pck_normalizer`, is its
    TF twin, tested against it).

    Head box (MPII): `head_sizes(head_boxes)`. Torso (FLIC, LSP, ...): `torso_sizes`.
    Where that is not available (no head box, torso joints unannotated) the record's
    `person/normalize` is used; people left with a non-positive value are not scored.
    """
    count = np.asarray(keypoints_px).shape[0]
    fallback = (
        np.zeros(count)
        if record_normalizers is None
        else np.asarray(record_normalizers, dtype=np.float64).reshape(count)
    )
    if joint_set.normalizer == HEAD_BOX:
        sizes = head_sizes(head_boxes) if head_boxes is not None else np.zeros(count)
    elif joint_set.normalizer == BOX:
        sizes = np.zeros(count)  # the record's own value: its person box diagonal
    else:
        sizes = torso_sizes(keypoints_px, visibility, joint_set)
    return np.where(sizes > 0, sizes, fallback)


def _checked_keypoints(predicted_px, ground_truth_px, annotated):
    """Predictions and ground truth (N, J, 2) float64 and `annotated` (N, J) bool, checked."""
    predicted = np.asarray(predicted_px, dtype=np.float64)
    truth = np.asarray(ground_truth_px, dtype=np.float64)
    if predicted.shape != truth.shape or predicted.ndim != 3 or predicted.shape[-1] != 2:
        raise ValueError(
            f"Predictions {predicted.shape} and ground truth {truth.shape} must both have "
            "shape (people, joints, 2)."
        )
    annotated = np.asarray(annotated, dtype=bool)
    if annotated.shape != truth.shape[:2]:
        raise ValueError(
            f"annotated must have shape {truth.shape[:2]}, received {annotated.shape}."
        )
    return predicted, truth, annotated


def normalized_distances(predicted_px, ground_truth_px, annotated, normalizers) -> np.ndarray:
    """`||predicted - ground truth|| / normaliser` per person and joint (`getDistPCKh.m`).

    Args:
        predicted_px: float (N, J, 2). Predictions in the frame of the ground truth.
        ground_truth_px: float (N, J, 2).
        annotated: bool (N, J). False for joints missing from the ground truth.
        normalizers: float (N,). The person's normaliser in px; people with a
            non-positive or non-finite normaliser are not scored (all NaN).

    Returns:
        float64 (N, J): NaN where the joint is not scored, +inf where the prediction is
        not finite (a missing prediction is wrong, as in the kit).
    """
    predicted, truth, annotated = _checked_keypoints(predicted_px, ground_truth_px, annotated)
    normalizers = np.asarray(normalizers, dtype=np.float64).reshape(-1)
    if normalizers.shape[0] != truth.shape[0]:
        raise ValueError(f"{normalizers.shape[0]} normalisers for {truth.shape[0]} people.")
    difference = predicted - truth
    with np.errstate(invalid="ignore", divide="ignore"):
        distances = np.sqrt((difference * difference).sum(axis=-1)) / normalizers[:, None]
    distances = np.where(np.isfinite(predicted).all(axis=-1), distances, np.inf)
    scored = annotated & (np.isfinite(normalizers) & (normalizers > 0))[:, None]
    return np.where(scored, distances, np.nan)


def joint_pck(distances, threshold) -> np.ndarray:
    """Percent of scored distances `<=` threshold, per joint (`computePCK.m`); NaN if none."""
    distances = np.asarray(distances, dtype=np.float64)
    scored = ~np.isnan(distances)
    counts = scored.sum(axis=0)
    correct = (scored & (distances <= threshold)).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, 100.0 * correct / np.maximum(counts, 1), np.nan)


def pooled_pck(distances, threshold, joints=None) -> float:
    """Percent `<=` threshold over every scored distance of `joints` (the kit's "Total")."""
    distances = np.asarray(distances, dtype=np.float64)
    if joints is not None:
        distances = distances[:, list(joints)]
    values = distances[~np.isnan(distances)]
    if values.size == 0:
        return float("nan")
    return float(100.0 * np.mean(values <= threshold))


def pck_curve(distances, thresholds, joints=None) -> np.ndarray:
    """Pooled PCK at every threshold (the kit's `pck(:, end)`), percent."""
    distances = np.asarray(distances, dtype=np.float64)
    if joints is not None:
        distances = distances[:, list(joints)]
    values = np.sort(distances[~np.isnan(distances)])
    if values.size == 0:
        return np.full(len(thresholds), np.nan)
    # `<=`: the number of values not above each threshold.
    counts = np.searchsorted(values, np.asarray(thresholds, dtype=np.float64), side="right")
    return 100.0 * counts / values.size


def area_under_curve(thresholds, values) -> float:
    """Area under the piecewise-linear curve over the threshold range, divided by that range.

    The kit's `area_under_curve(scale01(range), pck)` (trapezoids on [0, 1]); in the units
    of `values` (percent).
    """
    thresholds = np.asarray(thresholds, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    span = thresholds[-1] - thresholds[0]
    if len(thresholds) < 2 or span <= 0:
        return float("nan")
    widths = np.diff(thresholds)
    return float(np.sum(widths * (values[1:] + values[:-1]) / 2.0) / span)


def table_groups(joint_set: JointSet, head_column: str = OFFICIAL_HEAD) -> tuple:
    """The table's columns as (name, joints): `joint_set.table_groups`, with the Head
    column reduced to the head-top joint for `head_column="head-top"`.

    >>> from pose_keras.joints import MPII
    >>> dict(table_groups(MPII))["Head"], dict(table_groups(MPII, "head-top"))["Head"]
    ((8, 9), (9,))

    Raises:
        ValueError: an unknown `head_column`, or "head-top" for a joint set without a Head
            column holding a `head_top` joint.
    """
    if head_column not in HEAD_COLUMNS:
        raise ValueError(f"head_column must be one of {HEAD_COLUMNS}, received {head_column!r}.")
    groups = tuple(joint_set.table_groups)
    if head_column == OFFICIAL_HEAD:
        return groups
    head = dict(groups).get(HEAD, ())
    top = [joint for joint in head if joint_set.names[joint] == HEAD_TOP_JOINT]
    if not top:
        raise ValueError(
            f"head_column={HEAD_TOP_ONLY!r} needs a {HEAD!r} column with a "
            f"{HEAD_TOP_JOINT!r} joint; joint set {joint_set.name!r} has columns "
            f"{[group for group, _ in groups]}."
        )
    return tuple((group, tuple(top) if group == HEAD else members) for group, members in groups)


def group_values(per_joint, joint_set: JointSet, head_column: str = OFFICIAL_HEAD) -> dict:
    """Table columns from per-joint values: the plain average of each group's joints
    (`table_groups(joint_set, head_column)`)."""
    per_joint = np.asarray(per_joint, dtype=np.float64)
    columns = {}
    for group, members in table_groups(joint_set, head_column):
        values = per_joint[list(members)]
        values = values[~np.isnan(values)]
        columns[group] = float(values.mean()) if values.size else float("nan")
    return columns


def scored_joints(joint_set: JointSet) -> tuple:
    """The joints of the Mean column (all joints when the set declares none)."""
    return tuple(joint_set.scored_joints) or tuple(range(joint_set.num_joints))


def pck_table(
    predicted_px,
    ground_truth_px,
    visibility,
    normalizers,
    joint_set: JointSet,
    threshold=None,
    head_column: str = OFFICIAL_HEAD,
) -> dict:
    """PCK(h) at one threshold in the layout of the published tables.

    Args:
        predicted_px: float (N, J, 2). Predicted keypoints, same frame as the ground truth.
        ground_truth_px: float (N, J, 2).
        visibility: int (N, J). 0 = not annotated (not scored), 1 = occluded, 2 = visible;
            a bool array is read as "annotated".
        normalizers: float (N,). Per-person normaliser in px (`person_normalizers`).
        joint_set: JointSet. Table groups, scored joints, normaliser kind.
        threshold: float or None. None = `default_threshold(joint_set)`.
        head_column: str. `OFFICIAL_HEAD` (default) or `HEAD_TOP_ONLY` (`table_groups`).

    Returns:
        dict: "mean" (pooled over the scored joints, percent), "groups" (column ->
        percent), "joints" (joint name -> percent, NaN when never annotated), "counts"
        (joint name -> scored count), "people" (people with a usable normaliser),
        "threshold", "normalizer".
    """
    threshold = default_threshold(joint_set) if threshold is None else float(threshold)
    annotated = np.asarray(visibility) > 0
    distances = normalized_distances(predicted_px, ground_truth_px, annotated, normalizers)
    return _table_from_distances(distances, joint_set, threshold, head_column)


def _table_from_distances(
    distances, joint_set: JointSet, threshold: float, head_column: str = OFFICIAL_HEAD
) -> dict:
    per_joint = joint_pck(distances, threshold)
    counts = (~np.isnan(distances)).sum(axis=0)
    people = int((~np.isnan(distances)).any(axis=1).sum())
    return {
        "mean": pooled_pck(distances, threshold, scored_joints(joint_set)),
        "groups": group_values(per_joint, joint_set, head_column),
        "joints": {
            name: float(value) for name, value in zip(joint_set.names, per_joint, strict=True)
        },
        "counts": {name: int(count) for name, count in zip(joint_set.names, counts, strict=True)},
        "people": people,
        "threshold": threshold,
        "normalizer": joint_set.normalizer,
    }


def pixel_errors(predicted_px, ground_truth_px, annotated) -> np.ndarray:
    """Euclidean error in px per person and joint; NaN where not annotated or not predicted.

    Args:
        predicted_px: float (N, J, 2). Predictions in original image px.
        ground_truth_px: float (N, J, 2).
        annotated: bool (N, J).

    Returns:
        float64 (N, J).
    """
    predicted, truth, annotated = _checked_keypoints(predicted_px, ground_truth_px, annotated)
    difference = predicted - truth
    with np.errstate(invalid="ignore"):
        errors = np.sqrt((difference * difference).sum(axis=-1))
    return np.where(annotated & np.isfinite(errors), errors, np.nan)


def _mean_per_joint(errors, joint_set: JointSet) -> dict:
    counts = (~np.isnan(errors)).sum(axis=0)
    totals = np.where(np.isnan(errors), 0.0, errors).sum(axis=0)
    return {
        name: float(total / count) if count else float("nan")
        for name, total, count in zip(joint_set.names, totals, counts, strict=True)
    }


def mean_pixel_error(
    predicted_px, ground_truth_px, visibility, joint_set: JointSet, scores=None, score_cutoff=None
) -> dict:
    """DeepLabCut's "RMSE": the mean Euclidean error in px over annotated joints.

    Args:
        predicted_px: float (N, J, 2). Predictions in original image px.
        ground_truth_px: float (N, J, 2).
        visibility: int (N, J) (0 = not annotated) or bool (N, J) "annotated".
        joint_set: JointSet. Names of the per-joint values.
        scores: float (N, J) or None. Prediction confidences (heatmap maxima).
        score_cutoff: float or None. With `scores`, also the error over predictions whose
            score is `>=` the cut-off (DeepLabCut's "with p-cutoff" error).

    Returns:
        dict: "mean_px_error" (pooled over every scored joint, px; NaN when none),
        "per_joint_px_error" (joint name -> px), "count" (joints scored),
        "missing_predictions" (annotated joints without a finite prediction, left out as
        DeepLabCut's `nanmean` does); with a cut-off also "score_cutoff",
        "mean_px_error_cutoff", "count_cutoff".

    >>> from pose_keras.joints import JointSet
    >>> pair = JointSet("pair", ("a", "b"), (), ())
    >>> truth = [[[0.0, 0.0], [10.0, 10.0]]]
    >>> result = mean_pixel_error([[[3.0, 4.0], [10.0, 11.0]]], truth, [[2, 2]], pair)
    >>> result["mean_px_error"], result["per_joint_px_error"]
    (3.0, {'a': 5.0, 'b': 1.0})
    """
    annotated = np.asarray(visibility) > 0
    errors = pixel_errors(predicted_px, ground_truth_px, annotated)
    scored = ~np.isnan(errors)
    result = {
        "mean_px_error": float(errors[scored].mean()) if scored.any() else float("nan"),
        "per_joint_px_error": _mean_per_joint(errors, joint_set),
        "count": int(scored.sum()),
        "missing_predictions": int((annotated & ~scored).sum()),
    }
    if score_cutoff is not None:
        if scores is None:
            raise ValueError("score_cutoff needs the prediction scores.")
        scores = np.asarray(scores, dtype=np.float64)
        if scores.shape != errors.shape:
            raise ValueError(f"scores must have shape {errors.shape}, received {scores.shape}.")
        kept = scored & (scores >= score_cutoff)
        result["score_cutoff"] = float(score_cutoff)
        result["mean_px_error_cutoff"] = float(errors[kept].mean()) if kept.any() else float("nan")
        result["count_cutoff"] = int(kept.sum())
    return result


def box_diagonals(boxes) -> np.ndarray:
    """Diagonal of each box (x0, y0, x1, y1) in px, (N, 4) -> (N,)."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return np.hypot(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])


def scale_box_diagonals(scales) -> np.ndarray:
    """Diagonal of a record's square person box, side `200 * scale` px: (N,) -> (N,).

    >>> scale_box_diagonals([0.5]).round(6).tolist()
    [141.421356]
    """
    return np.sqrt(2.0) * PIXELS_PER_SCALE * np.asarray(scales, dtype=np.float64).reshape(-1)


def box_pck(
    predicted_px,
    ground_truth_px,
    visibility,
    diagonals,
    joint_set: JointSet,
    fraction=BOX_FRACTION,
) -> dict:
    """PCK at `fraction` x the person box diagonal, for any joint set.

    Args:
        predicted_px: float (N, J, 2).
        ground_truth_px: float (N, J, 2).
        visibility: int (N, J) (0 = not annotated) or bool (N, J).
        diagonals: float (N,). Box diagonal per person in px (`box_diagonals`,
            `scale_box_diagonals`); people with a non-positive diagonal are not scored.
        joint_set: JointSet.
        fraction: float. Defaults to `BOX_FRACTION` (0.05).

    Returns:
        dict: "pck" (percent `<=` threshold, pooled over every scored joint), "per_joint"
        (joint name -> percent), "counts" (joint name -> scored count), "fraction",
        "protocol" (e.g. "PCK@0.05 box diagonal").

    >>> from pose_keras.joints import JointSet
    >>> pair = JointSet("pair", ("a", "b"), (), ())
    >>> truth = [[[0.0, 0.0], [10.0, 10.0]]]
    >>> box_pck([[[3.0, 4.0], [10.0, 11.0]]], truth, [[2, 2]], [80.0], pair)["pck"]  # 5/80 > 0.05
    50.0
    """
    fraction = float(fraction)
    annotated = np.asarray(visibility) > 0
    distances = normalized_distances(predicted_px, ground_truth_px, annotated, diagonals)
    per_joint = joint_pck(distances, fraction)
    counts = (~np.isnan(distances)).sum(axis=0)
    return {
        "pck": pooled_pck(distances, fraction),
        "per_joint": {
            name: float(value) for name, value in zip(joint_set.names, per_joint, strict=True)
        },
        "counts": {name: int(count) for name, count in zip(joint_set.names, counts, strict=True)},
        "fraction": fraction,
        "protocol": f"PCK@{fraction:g} box diagonal",
    }


def pixel_metrics(
    predicted_px,
    ground_truth_px,
    visibility,
    scales,
    joint_set: JointSet,
    fraction=BOX_FRACTION,
    scores=None,
    score_cutoff=None,
) -> dict:
    """`mean_pixel_error` and `box_pck` on records' person boxes, as one JSON-ready dict.

    What `evaluate --json` and the epoch callback report for joint sets without a published
    protocol. `scales` are the records' person scales (box diagonal from
    `scale_box_diagonals`).

    Returns:
        dict: the keys of `mean_pixel_error`, plus "pck_box" (percent), "pck_box_per_joint",
        "pck_box_fraction"; NaN as None.
    """
    errors = mean_pixel_error(
        predicted_px, ground_truth_px, visibility, joint_set, scores, score_cutoff
    )
    pck = box_pck(
        predicted_px,
        ground_truth_px,
        visibility,
        scale_box_diagonals(scales),
        joint_set,
        fraction,
    )
    errors.update(
        {
            "pck_box": pck["pck"],
            "pck_box_per_joint": pck["per_joint"],
            "pck_box_fraction": pck["fraction"],
        }
    )
    return json_ready(errors)


def occluded_joints(visibility, joint_set: JointSet, inferable_only=False) -> np.ndarray:
    """Joints that are annotated but occluded (visibility 1), among the scored joints.

    Args:
        visibility: int (N, J).
        joint_set: JointSet.
        inferable_only: bool. Keep only occluded joints whose skeleton neighbours
            (`joint_set.limbs`) are all annotated and visible, the joints Ke et al. §3.3
            describe as "connected to and can be inferred from other visible body parts".
            Default False.

    Returns:
        bool (N, J).
    """
    visibility = np.asarray(visibility)
    mask = visibility == OCCLUDED
    keep = np.zeros(joint_set.num_joints, dtype=bool)
    keep[list(scored_joints(joint_set))] = True
    mask &= keep[None, :]
    if inferable_only:
        for joint in range(joint_set.num_joints):
            neighbours = [b if a == joint else a for a, b in joint_set.limbs if joint in (a, b)]
            if not neighbours:
                mask[:, joint] = False
                continue
            mask[:, joint] &= (visibility[:, neighbours] == VISIBLE).all(axis=1)
    return mask


@dataclasses.dataclass
class Evaluation:
    """Everything `evaluate` reports for one prediction set.

    Attributes:
        joint_set: JointSet.
        protocol: str. "PCKh@0.5" style name of the main metric.
        threshold: float.
        columns: dict. The table row: group columns, "Mean" and, for PCKh, "Mean@0.1".
        per_joint: dict. Joint name -> percent (NaN when never annotated).
        counts: dict. Joint name -> number of scored (annotated) instances.
        people: int. People scored.
        thresholds: float array. Curve thresholds.
        curve: float array. Pooled PCK over the scored joints at each threshold.
        group_curves: dict. Column -> PCK curve (average of its joints' curves).
        auc: float. Area under `curve`, percent.
        occlusion: dict or None. PCK over annotated-but-occluded scored joints:
            {"pck", "count", "inferable_pck", "inferable_count"}; None without visibility.
        mean_px_error: float or None. Mean Euclidean error over annotated joints, in the
            px of `predicted_px` (original image px): DeepLabCut's "RMSE".
        head_column: str. How the Head column was made (`HEAD_COLUMNS`).
    """

    joint_set: JointSet
    protocol: str
    threshold: float
    columns: dict
    per_joint: dict
    counts: dict
    people: int
    thresholds: np.ndarray
    curve: np.ndarray
    group_curves: dict
    auc: float
    occlusion: dict | None = None
    mean_px_error: float | None = None
    head_column: str = OFFICIAL_HEAD

    def to_dict(self) -> dict:
        """JSON-ready (NaN becomes None)."""
        return {
            "protocol": self.protocol,
            "joint_set": self.joint_set.name,
            "threshold": self.threshold,
            "head_column": self.head_column,
            "columns": json_ready(self.columns),
            "per_joint": json_ready(self.per_joint),
            "counts": dict(self.counts),
            "mean_px_error": json_ready(self.mean_px_error),
            "people": self.people,
            "curve": {
                "thresholds": [float(value) for value in self.thresholds],
                "mean": json_ready(list(self.curve)),
                **{group: json_ready(list(values)) for group, values in self.group_curves.items()},
            },
            "auc": json_ready(self.auc),
            "occlusion": None if self.occlusion is None else json_ready(self.occlusion),
        }

    def to_dataframe(self, name="pose_keras"):
        """The table row as a one-row `pandas.DataFrame` (index: `name`)."""
        import pandas as pd

        return pd.DataFrame([self.columns], index=[name])

    def to_markdown(self, name="pose_keras", digits=1) -> str:
        """The table row in the paper's layout, as a markdown table."""
        return markdown_table({name: self.columns}, digits=digits)


def evaluate_keypoints(
    predicted_px,
    ground_truth_px,
    visibility,
    normalizers,
    joint_set: JointSet,
    threshold=None,
    curve_maximum=None,
    head_column: str = OFFICIAL_HEAD,
) -> Evaluation:
    """Score a prediction set: table row, per-joint values, curve, AUC, occlusion subset.

    Args:
        predicted_px: float (N, J, 2). Predictions in the frame of `ground_truth_px`.
        ground_truth_px: float (N, J, 2).
        visibility: int (N, J) with 0 / 1 / 2 (occlusion subset computed), or bool (N, J)
            "annotated" (no occlusion subset).
        normalizers: float (N,). Per-person normaliser (`person_normalizers`).
        joint_set: JointSet.
        threshold: float or None. None = `default_threshold(joint_set)`.
        curve_maximum: float or None. Largest curve threshold; None = 0.5 for PCKh, 0.2
            for torso PCK (the kits' ranges).
        head_column: str. `OFFICIAL_HEAD` (default: (upper neck + head top) / 2, the kit's
            and the paper's) or `HEAD_TOP_ONLY` (HRNet / mmpose); see `table_groups`.

    Returns:
        Evaluation.
    """
    threshold = default_threshold(joint_set) if threshold is None else float(threshold)
    groups = table_groups(joint_set, head_column)  # a bad head_column fails before any work
    head = joint_set.normalizer == HEAD_BOX
    visibility = np.asarray(visibility)
    has_occlusion = visibility.dtype != bool
    annotated = visibility > 0
    distances = normalized_distances(predicted_px, ground_truth_px, annotated, normalizers)
    table = _table_from_distances(distances, joint_set, threshold, head_column)
    columns = dict(table["groups"])
    columns[MEAN] = table["mean"]
    if head:
        columns[MEAN_LOW] = pooled_pck(distances, LOW_THRESHOLD, scored_joints(joint_set))
    if curve_maximum is None:
        curve_maximum = HEAD_THRESHOLD if head else TORSO_THRESHOLD
    thresholds = curve_thresholds(curve_maximum)
    curve = pck_curve(distances, thresholds, scored_joints(joint_set))
    group_curves = {}
    for group, members in groups:
        member_curves = np.stack([pck_curve(distances, thresholds, [m]) for m in members])
        known = ~np.isnan(member_curves)
        total = np.where(known, member_curves, 0.0).sum(axis=0)
        group_curves[group] = np.where(
            known.any(axis=0), total / np.maximum(known.sum(axis=0), 1), np.nan
        )
    occlusion = None
    if has_occlusion:
        occlusion = {}
        for key, inferable in (("", False), ("inferable_", True)):
            mask = occluded_joints(visibility, joint_set, inferable_only=inferable)
            subset = np.where(mask, distances, np.nan)
            occlusion[f"{key}pck"] = pooled_pck(subset, threshold)
            occlusion[f"{key}count"] = int((~np.isnan(subset)).sum())
    kind = "PCKh" if head else "PCK"
    return Evaluation(
        joint_set=joint_set,
        protocol=f"{kind}@{threshold:g}",
        threshold=threshold,
        columns=columns,
        per_joint=table["joints"],
        counts=table["counts"],
        people=table["people"],
        thresholds=thresholds,
        curve=curve,
        group_curves=group_curves,
        auc=area_under_curve(thresholds, curve),
        occlusion=occlusion,
        mean_px_error=_mean_or_none(pixel_errors(predicted_px, ground_truth_px, annotated)),
        head_column=head_column,
    )


def _mean_or_none(values):
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    return float(values.mean()) if values.size else None


def markdown_table(rows: dict, digits: int = 1) -> str:
    """A markdown table: one row per entry of `rows` (name -> {column: value})."""
    columns = []
    for values in rows.values():
        columns += [column for column in values if column not in columns]
    lines = [
        "| | " + " | ".join(columns) + " |",
        "|---|" + "---:|" * len(columns),
    ]
    for name, values in rows.items():
        cells = []
        for column in columns:
            value = values.get(column)
            cells.append("-" if value is None or np.isnan(value) else f"{value:.{digits}f}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def json_ready(value):
    """NaN -> None, numpy scalars -> Python numbers, recursively."""
    if isinstance(value, dict):
        return {key: json_ready(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(item) for item in value]
    if isinstance(value, np.integer | int) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, np.floating | float):
        return None if np.isnan(value) else float(value)
    return value
