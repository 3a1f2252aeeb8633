"""FLIC (Frames Labeled In Cinema, Sapp & Taskar 2013) -> TFRecords.

Formats (`--format`, or from the extension):

- `h5`: the stacked-hourglass `data/flic/annot/train.h5` / `valid.h5` (pose-hg-train): the
  layout of `tfrecords_tools.hourglass`, 11 parts per person.
- `mat`: the original `examples.mat`: a 1 x N struct array `examples` with fields
  `poselet_hit_idx, moviename, coords, filepath, imgdims, currframe, torsobox, istrain,
  istest, ...` (field names as read by tensorflow-datasets' FLIC builder and
  joint-regressor's `get_flic.m`). `coords` is 2 x 29 (x; y) with NaN for the joints FLIC
  does not label; the 11 labelled columns (1-based 1-6, 7, 10, 13, 14, 17: lsho, lelb, lwri,
  rsho, relb, rwri, lhip, rhip, leye, reye, nose, per `get_flic.m`'s skeleton guide) are the
  11 parts of the `.h5`, in the same order. `istrain` / `istest` give the standard split
  (the test split has 1016 people, the size of `valid.h5`).

Joint order (`pose_keras.joints.FLIC`): l_shoulder, l_elbow, l_wrist, r_shoulder, r_elbow,
r_wrist, l_hip, r_hip, l_eye, r_eye, nose. Checked on all 1016 people of the real
`valid.h5`: part 0 lies right of part 3 in the image (x larger) for every person, and part 6
right of part 7 - person-centric left/right of people facing the camera, as FLIC's
near-frontal people are; parts 8/9 (eyes) are above part 10 (nose) for every person and
the wrists (2, 5) below the shoulders in 99.4%.

Conventions:

- Coordinates: MATLAB 1-based (FLIC is distributed as a MATLAB file and pose-hg-train's
  `.h5` is treated exactly like its MPII one, which is 1-based; third-party loaders of these
  files, e.g. Wei Yang's FLIC loader, handle both identically). Records: minus 1.
- Crop: in `valid.h5` every person has `scale` 2.2 and centre y 240 (the middle of the
  480-px-tall frames), centre x near the shoulders' midpoint. 2.2 is a crop scale with
  pose-hg-train's 1.25 already in it, as for MPII: a 200 * 2.2 = 440 px crop spans the
  frame's height, whereas another 1.25 would ask for 550 px, more than the frame (and the
  same third-party loader crops 200 * scale with no further factor). Records store
  `scale / 1.25` = 1.76 and the centre minus 1. For `examples.mat`, which has no centre or
  scale, the reader builds the same crop: centre x = the middle of `torsobox` (x1, y1, x2,
  y2), centre y = image height / 2 (1-based, as the `.h5`), scale = 2.2 / 1.25. That the
  `.h5` took its centre x from `torsobox` is an assumption (no `examples.mat` here).
- Visibility: FLIC labels every one of its 11 joints in view; finite coordinates -> 2.
- `person/normalize`: the `.h5` `normalize`, which on the real file equals the distance
  between parts 3 (r_shoulder) and 6 (l_hip); 0 for `examples.mat`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from pose_keras.joints import FLIC
from tfrecords_tools.common import (
    INVALID_RECORD,
    Annotation,
    ConversionError,
    Reading,
    add_common_arguments,
    check_output,
    convert_from_arguments,
    require_file,
    run_command_line,
)
from tfrecords_tools.hourglass import HOURGLASS_SCALE_FACTOR, read_hourglass_h5

# 0-based columns of examples.mat `coords` holding the 11 FLIC joints, in FLIC joint order.
FLIC_COORD_COLUMNS = (0, 1, 2, 3, 4, 5, 6, 9, 12, 13, 16)
FLIC_COORD_COUNT = 29
# The constant crop scale of pose-hg-train's FLIC .h5 (includes its 1.25).
FLIC_HOURGLASS_SCALE = 2.2
SPLITS = ("all", "train", "test")


def read_flic_h5(path) -> Reading:
    """Read a stacked-hourglass FLIC file (`valid.h5`: 1016 people): all rows, in order."""
    return read_hourglass_h5(path, FLIC, "flic-h5")


def _scalar(value):
    value = np.asarray(value, dtype=np.float64).ravel()
    if value.size != 1:
        raise ValueError(f"expected one number, found {value.size}")
    return float(value[0])


def read_flic_mat(path, split: str = "all", skip_invalid: bool = False) -> Reading:
    """Read FLIC's original `examples.mat`.

    Args:
        path: str or Path. `examples.mat`.
        split: str. `"train"` (`istrain`), `"test"` (`istest`) or `"all"`.
        skip_invalid: bool. Skip and count malformed examples instead of failing.

    Returns:
        `Reading`; `person_id` counts the selected examples, `record` names the 0-based
        example index (the `.h5` `index` column).
    """
    from scipy.io import loadmat

    path = require_file(path)
    if split not in SPLITS:
        raise ConversionError(f"split must be one of {SPLITS}, received {split!r}.")
    try:
        data = loadmat(path, squeeze_me=True, struct_as_record=False)
    except Exception as error:  # scipy raises several types for non-.mat input
        raise ConversionError(f"{path}: not a MATLAB file ({error}).") from None
    if "examples" not in data:
        raise ConversionError(f"{path}: no 'examples' struct array; is this FLIC's examples.mat?")
    examples = data["examples"]
    examples = list(examples.ravel()) if isinstance(examples, np.ndarray) else [examples]
    reading = Reading(source=str(path), format="flic-examples-mat")
    for index, example in enumerate(examples):
        record = f"example {index}"
        try:
            if split == "train" and not _scalar(example.istrain):
                continue
            if split == "test" and not _scalar(example.istest):
                continue
            coords = np.asarray(example.coords, dtype=np.float64)
            if coords.shape != (2, FLIC_COORD_COUNT):
                raise ValueError(f"coords is {list(coords.shape)}, expected 2 x {FLIC_COORD_COUNT}")
            joints = coords[:, FLIC_COORD_COLUMNS].T
            torso = np.asarray(example.torsobox, dtype=np.float64).ravel()
            dims = np.asarray(example.imgdims, dtype=np.float64).ravel()
            if torso.shape != (4,) or dims.size < 2:
                raise ValueError("torsobox needs 4 numbers and imgdims (height, width, ...)")
            image = str(example.filepath)
        except (AttributeError, TypeError, ValueError) as error:
            reading.reject(INVALID_RECORD, record, f"{path}: {record}: {error}.", skip_invalid)
            continue
        annotated = np.isfinite(joints).all(axis=1)
        center_one_based = np.array([(torso[0] + torso[2]) / 2.0, dims[0] / 2.0])
        reading.people.append(
            Annotation(
                image=image,
                keypoints=np.where(annotated[:, None], joints - 1.0, 0.0),
                visibility=np.where(annotated, 2, 0),
                center=center_one_based - 1.0,
                scale=FLIC_HOURGLASS_SCALE / HOURGLASS_SCALE_FACTOR,
                person_id=len(reading.people),
                record=record,
                image_size=(int(dims[0]), int(dims[1])),
            )
        )
    reading.details["conventions"] = (
        "FLIC examples.mat: coords 1-based -> minus 1; 11 labelled columns "
        f"{list(FLIC_COORD_COLUMNS)}; centre (torsobox x middle, height / 2) minus 1; "
        "scale 2.2 / 1.25 as the stacked-hourglass FLIC files"
    )
    return reading


def detect_format(path) -> str:
    suffix = Path(path).suffix.lower()
    formats = {".h5": "h5", ".hdf5": "h5", ".mat": "mat"}
    if suffix not in formats:
        raise ConversionError(f"{path}: cannot tell the format from {suffix!r}; pass --format.")
    return formats[suffix]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tfrecords_tools.flic",
        description="Convert FLIC annotations (stacked-hourglass .h5 or the original "
        "examples.mat) into TFRecord shards, one example per person. Details: "
        "docs/converters.md.",
    )
    parser.add_argument("annotations", help="valid.h5 / train.h5, or examples.mat.")
    parser.add_argument(
        "--format",
        choices=("auto", "h5", "mat"),
        default="auto",
        help="Annotation layout (default: from the file extension).",
    )
    add_common_arguments(parser, splits=SPLITS, default_split="all")
    return parser


def _main(argv=None):
    arguments = build_parser().parse_args(argv)
    check_output(arguments.output)  # before reading anything
    format_name = arguments.format
    if format_name == "auto":
        format_name = detect_format(arguments.annotations)
    if format_name == "h5":
        if arguments.split != "all":
            raise ConversionError(
                f"{arguments.annotations}: a stacked-hourglass .h5 is one split already; "
                "--split applies to examples.mat."
            )
        reading = read_flic_h5(arguments.annotations)
        split = Path(arguments.annotations).stem
    else:
        reading = read_flic_mat(
            arguments.annotations, split=arguments.split, skip_invalid=arguments.skip_invalid
        )
        split = arguments.split
    convert_from_arguments(reading, FLIC, "flic", arguments, split=split)


def main(argv=None) -> int:
    return run_command_line(_main, argv)


if __name__ == "__main__":
    raise SystemExit(main())
