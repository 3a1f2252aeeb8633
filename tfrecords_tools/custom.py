"""Custom datasets -> TFRecords: a documented CSV or JSON layout with user-defined joints.

The joints are declared in a JSON file in `JointSet.to_dict` form (what TFRecord manifests
store), for example:

```
{"name": "hand", "names": ["wrist", "thumb_tip", "index_tip"],
 "flip_pairs": [], "limbs": [[0, 1], [0, 2]], "normalizer": "torso",
 "torso_joints": [0, 2]}
```

`name` and `names` are required; `flip_pairs` (left/right counterparts, swapped by
horizontal flips), `limbs`, `normalizer` (`torso` or `head_box`), `torso_joints`,
`table_groups` and `scored_joints` are optional.

CSV layout: one row per person, a header row naming the columns (any order):

| column | required | meaning |
|---|---|---|
| `image` | yes | image path relative to `--image-root` |
| `<joint>_x`, `<joint>_y`, `<joint>_v` | yes, for every joint | position and visibility (0 not annotated: x, y may be empty; 1 annotated, occluded; 2 annotated, visible) |
| `x0`, `y0`, `x1`, `y1` | no (all four or none) | person box corners; without a box the tight box of the annotated joints is used |
| `head_x0`, `head_y0`, `head_x1`, `head_y1` | no (all four or none) | head box, for PCKh |

JSON layout: a list of objects `{"image": str, "keypoints": [[x, y, v], ...] (one per
joint, in the joint file's order), "box": [x0, y0, x1, y1] (optional), "head_box": [...]
(optional)}`.

Coordinates are 0-based pixel centres (the pixel at column i, row j is (i, j)); pass
`--one-based` for MATLAB-style files (1 is subtracted from joints and boxes). Crop: centre =
box centre, scale = longer box side / 200 (`pose_keras.transforms.center_and_scale_from_box`).
Unknown or missing columns, a wrong joint count and non-numeric values are errors naming
the file, row and column (row 1 = the first person; its line in the file is given too).
"""

from __future__ import annotations

import argparse
import csv
import math
from pathlib import Path

import numpy as np

from pose_keras.joints import JointSet
from pose_keras.transforms import center_and_scale_from_box
from tfrecords_tools.common import (
    INVALID_RECORD,
    NO_ANNOTATED_JOINTS,
    Annotation,
    ConversionError,
    Reading,
    add_common_arguments,
    center_and_scale_from_joints,
    check_output,
    convert_from_arguments,
    load_json,
    require_file,
    run_command_line,
)

BOX_COLUMNS = ("x0", "y0", "x1", "y1")
HEAD_BOX_COLUMNS = ("head_x0", "head_y0", "head_x1", "head_y1")


class _RecordError(ValueError):
    """A bad value; `field` names the CSV column or JSON field."""

    def __init__(self, field, message):
        super().__init__(message)
        self.field = field


def load_joint_set(path) -> JointSet:
    """Read a joint-set JSON file (`JointSet.to_dict` form); errors name the file."""
    path = require_file(path)
    data = load_json(path)
    if not isinstance(data, dict):
        raise ConversionError(f"{path}: a joint file is a JSON object with 'name' and 'names'.")
    try:
        return JointSet.from_dict(data)
    except (ValueError, TypeError) as error:
        raise ConversionError(f"{path}: {error}") from None


def _number(field, text) -> float:
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise _RecordError(field, f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise _RecordError(field, f"{text!r} is not a finite number")
    return value


def _flag(field, text) -> int:
    value = _number(field, text)
    if value not in (0.0, 1.0, 2.0):
        raise _RecordError(field, f"visibility must be 0, 1 or 2, received {text!r}")
    return int(value)


def _box(fields, values):
    """A box from four values (all empty/None -> None)."""
    if all(value in ("", None) for value in values):
        return None
    for field, value in zip(fields, values, strict=True):
        if value in ("", None):
            raise _RecordError(field, f"give all of {list(fields)} or none")
    box = [_number(field, value) for field, value in zip(fields, values, strict=True)]
    if not (box[2] > box[0] and box[3] > box[1]):
        raise _RecordError(fields[0], f"box {box} needs x1 > x0 and y1 > y0")
    return np.asarray(box)


def _person(joint_set, image, points, box, head_box, one_based, person_id, record):
    """An `Annotation` from parsed values, or a (reason, message) for a rejected person."""
    shift = 1.0 if one_based else 0.0
    keypoints = np.zeros((joint_set.num_joints, 2))
    visibility = np.zeros(joint_set.num_joints, dtype=np.int64)
    for joint, (x, y, flag) in enumerate(points):
        visibility[joint] = flag
        if flag > 0:
            keypoints[joint] = (x - shift, y - shift)
    if not (visibility > 0).any():
        return NO_ANNOTATED_JOINTS, "no joint is annotated"
    if box is not None:
        center, scale = center_and_scale_from_box(box - shift)
    else:
        found = center_and_scale_from_joints(keypoints, visibility)
        if found is None:
            return (
                INVALID_RECORD,
                "no box, and fewer than two distinct annotated joints to make one",
            )
        center, scale = found
    return Annotation(
        image=image,
        keypoints=keypoints,
        visibility=visibility,
        center=center,
        scale=scale,
        person_id=person_id,
        record=record,
        head_box=None if head_box is None else head_box - shift,
    )


def read_custom_csv(path, joint_set: JointSet, one_based=False, skip_invalid=False) -> Reading:
    """Read the custom CSV layout (see the module docstring).

    Args:
        path: str or Path. The CSV file (UTF-8, header row first).
        joint_set: JointSet. The joints; every `<joint>_x/_y/_v` column must be present.
        one_based: bool. Coordinates are 1-based (subtract 1). Defaults to False.
        skip_invalid: bool. Skip and count rows with bad values instead of failing.

    Returns:
        `Reading`; `person_id` is the 0-based row number.
    """
    path = require_file(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            # (line of the file where the row ends, fields)
            rows = [(reader.line_num, fields) for fields in reader]
    except (UnicodeDecodeError, csv.Error) as error:
        raise ConversionError(f"{path}: not a readable CSV file ({error}).") from None
    if not rows:
        raise ConversionError(f"{path}: empty file; the first row must name the columns.")
    header = [name.strip() for name in rows[0][1]]
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise ConversionError(f"{path}: header repeats column(s) {repeated}.")
    joint_columns = [f"{name}_{part}" for name in joint_set.names for part in ("x", "y", "v")]
    known = {"image", *BOX_COLUMNS, *HEAD_BOX_COLUMNS, *joint_columns}
    unknown = [name for name in header if name not in known]
    if unknown:
        raise ConversionError(
            f"{path}: unknown column(s) {unknown}; joint columns are <joint>_x, <joint>_y, "
            f"<joint>_v for the joints {list(joint_set.names)}."
        )
    absent = [name for name in ("image", *joint_columns) if name not in header]
    if absent:
        raise ConversionError(
            f"{path}: missing column(s) {absent} (joint set {joint_set.name!r} has "
            f"{joint_set.num_joints} joints: {list(joint_set.names)})."
        )
    for group in (BOX_COLUMNS, HEAD_BOX_COLUMNS):
        present = [name for name in group if name in header]
        if present and len(present) != 4:
            raise ConversionError(f"{path}: give all of the columns {list(group)} or none.")
    column = {name: index for index, name in enumerate(header)}

    reading = Reading(source=str(path), format="custom-csv")
    row_number = 0
    for line, values in rows[1:]:
        if not values or all(not value.strip() for value in values):
            continue
        row_number += 1
        record = f"row {row_number} (line {line})"
        try:
            if len(values) != len(header):
                raise _RecordError(None, f"{len(values)} fields, the header has {len(header)}")

            cells = {name: values[index].strip() for name, index in column.items()}

            def cell(name, cells=cells):
                return cells.get(name, "")

            image = cell("image")
            if not image:
                raise _RecordError("image", "empty image path")
            points = []
            for name in joint_set.names:
                flag = _flag(f"{name}_v", cell(f"{name}_v"))
                if flag > 0:
                    x = _number(f"{name}_x", cell(f"{name}_x"))
                    y = _number(f"{name}_y", cell(f"{name}_y"))
                else:
                    x = y = 0.0
                points.append((x, y, flag))
            box = _box(BOX_COLUMNS, [cell(name) for name in BOX_COLUMNS])
            head_box = _box(HEAD_BOX_COLUMNS, [cell(name) for name in HEAD_BOX_COLUMNS])
        except _RecordError as error:
            where = f", column {error.field!r}" if error.field else ""
            reading.reject(
                INVALID_RECORD, record, f"{path}: {record}{where}: {error}.", skip_invalid
            )
            continue
        person = _person(joint_set, image, points, box, head_box, one_based, row_number - 1, record)
        if isinstance(person, tuple):
            reason, problem = person
            reading.reject(reason, record, f"{path}: {record}: {problem}.", skip_invalid)
            continue
        reading.people.append(person)
    reading.details["conventions"] = _conventions(one_based)
    return reading


def read_custom_json(path, joint_set: JointSet, one_based=False, skip_invalid=False) -> Reading:
    """Read the custom JSON layout: a list of `{image, keypoints, box?, head_box?}` objects.

    Args: as `read_custom_csv`. `person_id` is the 0-based list index.
    """
    path = require_file(path)
    data = load_json(path)
    if not isinstance(data, list):
        raise ConversionError(f"{path}: expected a JSON list of people.")
    reading = Reading(source=str(path), format="custom-json")
    for index, entry in enumerate(data):
        record = f"record {index}"
        try:
            if not isinstance(entry, dict):
                raise _RecordError(None, "each person is a JSON object")
            unknown = sorted(set(entry) - {"image", "keypoints", "box", "head_box"})
            if unknown:
                raise _RecordError(unknown[0], "unknown field (image, keypoints, box, head_box)")
            image = entry.get("image")
            if not isinstance(image, str) or not image:
                raise _RecordError("image", "needs a non-empty image path")
            keypoints = entry.get("keypoints")
            if not isinstance(keypoints, list) or len(keypoints) != joint_set.num_joints:
                count = len(keypoints) if isinstance(keypoints, list) else "no"
                raise _RecordError(
                    "keypoints",
                    f"{count} keypoints, joint set {joint_set.name!r} has {joint_set.num_joints}",
                )
            points = []
            for joint, point in zip(joint_set.names, keypoints, strict=True):
                field = f"keypoints[{joint_set.index(joint)}] ({joint})"
                if not isinstance(point, list) or len(point) != 3:
                    raise _RecordError(field, "each keypoint is [x, y, v]")
                flag = _flag(field, point[2])
                x, y = (_number(field, value) for value in point[:2]) if flag > 0 else (0.0, 0.0)
                points.append((x, y, flag))
            boxes = []
            for field in ("box", "head_box"):
                value = entry.get(field)
                if value is not None and (not isinstance(value, list) or len(value) != 4):
                    raise _RecordError(field, "a box is [x0, y0, x1, y1]")
                boxes.append(_box((field,) * 4, value if value is not None else [None] * 4))
        except _RecordError as error:
            where = f", field {error.field!r}" if error.field else ""
            reading.reject(
                INVALID_RECORD, record, f"{path}: {record}{where}: {error}.", skip_invalid
            )
            continue
        person = _person(joint_set, image, points, boxes[0], boxes[1], one_based, index, record)
        if isinstance(person, tuple):
            reason, problem = person
            reading.reject(reason, record, f"{path}: {record}: {problem}.", skip_invalid)
            continue
        reading.people.append(person)
    reading.details["conventions"] = _conventions(one_based)
    return reading


def _conventions(one_based):
    return (
        f"custom: coordinates {'1-based -> minus 1' if one_based else '0-based, as given'}; "
        "centre/scale from the box (or the annotated joints' box), longer side / 200"
    )


def read_custom(path, joint_set: JointSet, one_based=False, skip_invalid=False) -> Reading:
    """`read_custom_csv` or `read_custom_json`, by the file extension."""
    suffix = Path(path).suffix.lower()
    if suffix == ".csv":
        return read_custom_csv(path, joint_set, one_based, skip_invalid)
    if suffix == ".json":
        return read_custom_json(path, joint_set, one_based, skip_invalid)
    raise ConversionError(f"{path}: expected a .csv or .json file, received {suffix!r}.")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tfrecords_tools.custom",
        description="Convert a custom keypoint dataset (CSV or JSON, user-defined joints) into "
        "TFRecord shards, one example per person. Layout: docs/converters.md.",
    )
    parser.add_argument("annotations", help="people.csv or people.json")
    parser.add_argument(
        "--joints",
        required=True,
        help="Joint-set JSON file: name, names, and optionally flip_pairs, limbs, normalizer, "
        "torso_joints (JointSet.to_dict form).",
    )
    parser.add_argument(
        "--dataset",
        help="Dataset name stored in the records (default: the joint set's name).",
    )
    parser.add_argument(
        "--one-based",
        action="store_true",
        help="Coordinates are 1-based (MATLAB style): subtract 1 from joints and boxes.",
    )
    add_common_arguments(parser)
    return parser


def _main(argv=None):
    arguments = build_parser().parse_args(argv)
    check_output(arguments.output)  # before reading anything
    joint_set = load_joint_set(arguments.joints)
    reading = read_custom(
        arguments.annotations, joint_set, arguments.one_based, arguments.skip_invalid
    )
    split = Path(arguments.annotations).stem
    convert_from_arguments(
        reading, joint_set, arguments.dataset or joint_set.name, arguments, split=split
    )


def main(argv=None) -> int:
    return run_command_line(_main, argv)


if __name__ == "__main__":
    raise SystemExit(main())
