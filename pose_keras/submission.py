"""`python -m pose_keras.submission`: the MPII test-set submission file.

The MPII benchmark scores test-set predictions on its server with the evaluation kit's
`evaluatePCKh.m` (http://human-pose.mpi-inf.mpg.de, `evalMPII.zip`). That script loads
`pred_keypoints_mpii.mat` and expects a variable `pred`: the annolist of the test images,
in the order of `RELEASE.annolist(RELEASE.img_train == 0)`, with, for each single-person
rectangle, `pred(i).annorect(r).annopoints.point(k)` carrying `id` (0-based MPII joint id),
`x` and `y` (MATLAB 1-based image pixels, the frame of the annotations). What the kit
requires of `pred`, read from its code:

- `assert(length(annolist_test) == length(pred))`: one entry per test image, in release
  order, also for images without a single-person rectangle;
- `flatten_annolist(pred, single_person_test)` walks every rectangle with a non-empty
  `objpos` and keeps those listed in `RELEASE.single_person` (1-based rectangle indices):
  so `pred` keeps each rectangle's `objpos` (taken from the release), or the flattening
  would drop or shift people;
- `annolist2matrix` looks each joint up by `point.id` (`util_get_annopoint_by_id`), so the
  point order does not matter, and a missing id counts as a miss.

The same layout is what `prepareTestResults.m` of anibali/eval-mpii-pose writes (it starts
from `RELEASE.annolist` and sets `annopoints` of the test people).

Examples:

    python -m pose_keras.submission --model runs/mpii_paper --data records/mpii_test \\
        --release mpii_human_pose_v1_u12_1.mat --output pred_keypoints_mpii.mat --flip

The test records must hold one person per single-person rectangle of the test images, in
`TestLayout.people()` order, with `person/id` = that index and `image/id` = the image name:
what `python -m tfrecords_tools.mpii mpii_human_pose_v1_u12_1.mat --split test` writes.
They have no annotated joint, so they are read with `require_annotations=False`
(`inference.predict_split`), the opt-in for prediction-only data.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

from pose_keras import files
from pose_keras.joints import MPII

# The release reader owns the kit's walk over the test images (the converter's test split
# follows the same order); re-exported here for the submission's callers.
from tfrecords_tools.mpii import TestLayout, read_test_layout

SUBMISSION_NAME = "pred_keypoints_mpii.mat"
POINT_DTYPE = [("x", object), ("y", object), ("id", object)]
RECT_DTYPE = [("objpos", object), ("annopoints", object)]
IMAGE_DTYPE = [("image", object), ("annorect", object)]


def _struct_array(dtype, rows) -> np.ndarray:
    """A 1 x N MATLAB struct array for `scipy.io.savemat`."""
    array = np.zeros((1, len(rows)), dtype=dtype)
    for column, row in enumerate(rows):
        for name, value in row.items():
            array[0, column][name] = value
    return array


def submission_annolist(layout: TestLayout, keypoints_px) -> np.ndarray:
    """The `pred` struct array: every test image, each rectangle's `objpos`, and the
    predicted `annopoints` of the scored people.

    Args:
        layout: TestLayout.
        keypoints_px: float (P, 16, 2). Predictions for `layout.people()` in that order,
            0-based image px (pose_keras' frame); written +1 (MATLAB 1-based).
    """
    keypoints_px = np.asarray(keypoints_px, dtype=np.float64)
    people = layout.people()
    if keypoints_px.shape != (len(people), MPII.num_joints, 2):
        raise ValueError(
            f"expected predictions of shape ({len(people)}, {MPII.num_joints}, 2) for the "
            f"{len(people)} single-person test rectangles, received {keypoints_px.shape}."
        )
    if not np.isfinite(keypoints_px).all():
        raise ValueError("predictions must be finite (the kit scores NaN as a miss).")
    by_rect = {person: keypoints_px[index] + 1.0 for index, person in enumerate(people)}
    images = []
    for image, name in enumerate(layout.image_names):
        rects = []
        for rect, objpos in enumerate(layout.objpos_one_based[image]):
            row = {
                "objpos": np.zeros((0, 0)) if objpos is None else {"x": objpos[0], "y": objpos[1]},
                "annopoints": np.zeros((0, 0)),
            }
            if (image, rect) in by_rect:
                points = by_rect[(image, rect)]
                row["annopoints"] = {
                    "point": _struct_array(
                        POINT_DTYPE,
                        [
                            {"x": float(x), "y": float(y), "id": joint}
                            for joint, (x, y) in enumerate(points)
                        ],
                    )
                }
            rects.append(row)
        images.append({"image": {"name": name}, "annorect": _struct_array(RECT_DTYPE, rects)})
    return _struct_array(IMAGE_DTYPE, images)


def write_submission(path, layout: TestLayout, keypoints_px) -> Path:
    """Write `pred` (see `submission_annolist`) to a MATLAB v5 `.mat`, atomically."""
    from scipy.io import savemat

    path = Path(path)
    pred = submission_annolist(layout, keypoints_px)
    with files.atomic_path(path) as temporary:
        savemat(temporary, {"pred": pred}, format="5", do_compression=True, oned_as="row")
    return path


def order_predictions(layout: TestLayout, keypoints_px, image_ids, person_ids) -> np.ndarray:
    """Predictions of test records in `layout.people()` order, checked against the layout.

    Each record's `person/id` is its index in `layout.people()` and its `image/id` must be
    that person's image; every person needs exactly one record.
    """
    people = layout.people()
    ordered = np.full((len(people), MPII.num_joints, 2), np.nan)
    for record, (image_id, person_id) in enumerate(zip(image_ids, person_ids, strict=True)):
        person_id = int(person_id)
        if not 0 <= person_id < len(people):
            raise ValueError(
                f"record {record} (image {image_id!r}): person/id {person_id} is not one of "
                f"the {len(people)} single-person test rectangles of {layout.source}."
            )
        image, rect = people[person_id]
        expected = layout.image_names[image]
        if Path(str(image_id)).name != expected:
            raise ValueError(
                f"record {record}: person/id {person_id} is rectangle {rect + 1} of "
                f"{expected!r} in {layout.source}, but the record's image is {image_id!r}; "
                "were the records converted from this release's test split?"
            )
        if not np.isnan(ordered[person_id]).all():
            raise ValueError(f"record {record}: person/id {person_id} appears twice.")
        ordered[person_id] = keypoints_px[record]
    missing = [index for index in range(len(people)) if np.isnan(ordered[index]).all()]
    if missing:
        image, rect = people[missing[0]]
        raise ValueError(
            f"{len(missing)} of {len(people)} single-person test rectangles have no record, "
            f"the first: rectangle {rect + 1} of {layout.image_names[image]!r}."
        )
    return ordered


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pose_keras.submission",
        description="Predict the MPII test split and write pred_keypoints_mpii.mat in the "
        "layout of the MPII evaluation kit (evaluatePCKh.m), to send to the benchmark.",
    )
    parser.add_argument("--model", required=True, help="Run directory or .keras file.")
    parser.add_argument(
        "--data",
        required=True,
        help="TFRecords of the test split: one person per single-person test rectangle, "
        "person/id = its index in release order.",
    )
    parser.add_argument(
        "--release", required=True, help="The official mpii_human_pose_v1_u12_1.mat."
    )
    parser.add_argument(
        "--output", default=SUBMISSION_NAME, help=f"Output .mat. Default {SUBMISSION_NAME}."
    )
    parser.add_argument("--flip", action="store_true", help="Flip test (as in evaluate).")
    parser.add_argument("--batch-size", type=int, default=32, help="Crops per batch. Default 32.")
    return parser


def main(argv=None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    args = build_parser().parse_args(argv)
    try:
        layout = read_test_layout(args.release)
        from pose_keras.inference import predict_split
        from pose_keras.runs import load_run

        run = load_run(args.model)
        if run.joint_set.names != MPII.names:
            raise ValueError(f"{args.model}: the model predicts {run.joint_set.name!r}, not MPII.")
        predictions, _ = predict_split(
            run,
            args.data,
            flip=args.flip,
            batch_size=args.batch_size,
            require_annotations=False,
        )
        keypoints = order_predictions(
            layout, predictions.keypoints, predictions.image_ids, predictions.person_ids
        )
        path = write_submission(args.output, layout, keypoints)
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(
        f"{path}: {len(layout.people())} people on {len(layout.image_names)} test images "
        "(MATLAB 1-based px); submit it to the MPII benchmark."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
