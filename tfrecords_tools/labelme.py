"""labelme point annotations (one JSON per image) -> TFRecords.

Format (wkentaro/labelme, the JSON its `LabelFile.save` writes): `{"version", "flags",
"shapes": [{"label", "points": [[x, y], ...], "group_id", "shape_type", "flags"}],
"imagePath", "imageData", "imageHeight", "imageWidth"}`. `imagePath` is relative to the
JSON file's folder; `imageData` is the image file's bytes, base64-encoded, or null.

Conventions:

- Joints: shapes with `shape_type: "point"` (one point each), named by `label`. Other
  shapes are ignored, except rectangles labelled `--box-label` (see below).
- People: points with the same `group_id` are one person; points without a `group_id` are
  one person per image. A label twice in one person is an error.
- Person box: a rectangle shape labelled `--box-label` (e.g. `person`) with the person's
  `group_id` (two corner points); otherwise the extent of the labelled points plus the
  margin (`pose_keras.transforms.box_from_keypoints`).
- Coordinates: labelme's canvas frame has the image's top-left corner at (0, 0); 0.5 is
  subtracted to get 0-based pixel centres. Visibility 2 (labelme has no visibility flag).
- Images: the path `imagePath` names, relative to the annotations folder (the CLI's
  default `--image-root`). `imageHeight`/`imageWidth` are checked against the image. When
  the image file is missing but the JSON embeds it (`imageData`), `--extract-embedded`
  first writes the embedded bytes where `imagePath` points (never over an existing file).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import os
from pathlib import Path

from tfrecords_tools.common import (
    ConversionError,
    add_common_arguments,
    convert_from_arguments,
    load_json,
    run_command_line,
)
from tfrecords_tools.deeplabcut import (
    PIXEL_CENTRE_OFFSET,
    VISIBLE,
    LabelledPerson,
    add_joint_arguments,
    joint_set_for_labels,
    joints_argument,
    labels_in_order,
    reading_from_people,
)


def annotation_files(path) -> tuple:
    """(root folder, sorted labelme JSON files) of a JSON file or a folder of them."""
    path = Path(path)
    if path.is_file():
        return path.parent, [path]
    if not path.is_dir():
        raise ConversionError(f"{path}: not a labelme JSON file or a folder of them.")
    files = sorted(path.rglob("*.json"))
    if not files:
        raise ConversionError(f"{path}: no .json file in this folder.")
    return path, files


def _load(file):
    data = load_json(file)
    if not isinstance(data, dict) or not isinstance(data.get("shapes"), list):
        raise ConversionError(f"{file}: not a labelme file (no 'shapes' list).")
    if not isinstance(data.get("imagePath"), str) or not data["imagePath"]:
        raise ConversionError(f"{file}: no 'imagePath'.")
    return data


def _image_name(file, data, root) -> str:
    # labelme writes Windows separators on Windows.
    target = file.parent / data["imagePath"].replace("\\", "/")
    return Path(os.path.relpath(os.path.normpath(target), root)).as_posix()


def _number_pair(point, where):
    try:
        x, y = (float(value) for value in point)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: point {point!r} is not [x, y]") from None
    return x, y


def _people_of_file(file, data, root, box_label):
    image = _image_name(file, data, root)
    size = None
    if data.get("imageHeight") and data.get("imageWidth"):
        size = (int(data["imageHeight"]), int(data["imageWidth"]))
    groups, boxes = {}, {}
    for number, shape in enumerate(data["shapes"]):
        if not isinstance(shape, dict):
            raise ValueError(f"shape {number} is not an object")
        kind = shape.get("shape_type") or "polygon"
        group = shape.get("group_id")
        label = str(shape.get("label"))
        where = f"shape {number} ({label!r})"
        points = shape.get("points") or []
        if kind == "rectangle" and box_label is not None and label == box_label:
            if group in boxes:
                raise ValueError(f"{where}: a second {box_label!r} box for group {group}")
            if len(points) != 2:
                raise ValueError(f"{where}: a rectangle has two corner points")
            (x0, y0), (x1, y1) = (_number_pair(p, where) for p in points)
            box = (min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))
            boxes[group] = tuple(value - PIXEL_CENTRE_OFFSET for value in box)
            continue
        if kind != "point":
            continue
        if len(points) != 1:
            raise ValueError(f"{where}: a point shape has one point, found {len(points)}")
        record = f"{file.name}, group {group}" if group is not None else file.name
        person = groups.setdefault(group, LabelledPerson(image, record, {}, image_size=size))
        if label in person.points:
            raise ValueError(
                f"{where}: label {label!r} appears twice in {record} (give each person its own "
                "group_id)"
            )
        x, y = _number_pair(points[0], where)
        person.points[label] = (x - PIXEL_CENTRE_OFFSET, y - PIXEL_CENTRE_OFFSET, VISIBLE)
    for group, box in boxes.items():
        if group in groups:
            groups[group].box = box
    return [groups[key] for key in sorted(groups, key=lambda g: (g is not None, str(g)))]


def parse_labelme(path, box_label=None, skip_invalid=False):
    """Parse labelme JSON files into `LabelledPerson`s: (root, people, skipped)."""
    root, files = annotation_files(path)
    people, skipped = [], {}
    for file in files:
        data = _load(file)
        try:
            people += _people_of_file(file, data, root, box_label)
        except ValueError as error:
            if not skip_invalid:
                raise ConversionError(f"{file}: {error}.") from None
            skipped.setdefault("invalid record", []).append(file.name)
    return root, people, skipped


def extract_embedded_images(path) -> list:
    """Write each missing image that a labelme JSON embeds (`imageData`) where `imagePath`
    points; existing files are never touched. Returns the paths written."""
    _, files = annotation_files(path)
    written = []
    for file in files:
        data = _load(file)
        target = file.parent / data["imagePath"].replace("\\", "/")
        if target.exists() or not data.get("imageData"):
            continue
        try:
            payload = base64.b64decode(data["imageData"], validate=True)
        except (binascii.Error, ValueError) as error:
            raise ConversionError(f"{file}: imageData is not base64 ({error}).") from None
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "xb") as handle:
            handle.write(payload)
        written.append(target)
    return written


def read_labelme(
    path,
    joint_set=None,
    flip_pairs=None,
    name=None,
    box_label=None,
    box_margin=None,
    skip_invalid=False,
):
    """Read labelme point annotations.

    Args:
        path: str or Path. A labelme JSON file or a folder of them (searched recursively).
        joint_set: JointSet or None. None = the labels found, in order of first appearance.
        flip_pairs, name: without `joint_set`, as `tfrecords_tools.deeplabcut.
            joint_set_for_labels` (`name` None: "keypoints").
        box_label: str or None. Label of the rectangles that are person boxes.
        box_margin: float or None. Margin of boxes made from points (default 0.1).
        skip_invalid: bool. Skip and count bad files / people instead of failing.

    Returns:
        (joint_set, reading); image names are relative to the annotations folder.
    """
    root, people, skipped = parse_labelme(path, box_label, skip_invalid)
    joint_set = joint_set_for_labels(
        joint_set, labels_in_order(people), name or "keypoints", flip_pairs
    )
    reading = reading_from_people(path, "labelme", people, joint_set, skip_invalid, box_margin)
    for reason, entries in skipped.items():
        reading.skipped.setdefault(reason, []).extend(entries)
    reading.details["image_names_relative_to"] = str(root)
    reading.details["conventions"] = (
        "labelme: point shapes minus 0.5 (canvas frame -> pixel centres); visibility 2; "
        "one person per group_id (ungrouped points: one per image)"
    )
    return joint_set, reading


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tfrecords_tools.labelme",
        description="Convert labelme JSON files with point shapes into TFRecord shards, one "
        "example per person. Layout: docs/converters.md.",
    )
    parser.add_argument("annotations", help="A labelme JSON file or a folder of them.")
    add_joint_arguments(parser)
    parser.add_argument(
        "--box-label",
        help="Label of rectangle shapes that are person boxes (same group_id as the points).",
    )
    parser.add_argument(
        "--extract-embedded",
        action="store_true",
        help="Write images that are missing but embedded in the JSON (imageData) where "
        "imagePath points, before converting.",
    )
    add_common_arguments(parser)
    for action in parser._actions:  # labelme's image paths are relative to its JSON files
        if action.dest == "image_root":
            action.required = False
            action.help = (
                "Folder the image names are relative to (default: the annotations folder, "
                "where labelme's imagePath points from)."
            )
    return parser


def _main(argv=None):
    arguments = build_parser().parse_args(argv)
    if arguments.extract_embedded:
        for path in extract_embedded_images(arguments.annotations):
            print(f"wrote embedded image {path}")
    joint_set, reading = read_labelme(
        arguments.annotations,
        joints_argument(arguments),
        arguments.flip_pairs,
        arguments.name,
        box_label=arguments.box_label,
        box_margin=arguments.box_margin,
        skip_invalid=arguments.skip_invalid,
    )
    if arguments.image_root is None:
        arguments.image_root = reading.details["image_names_relative_to"]
    split = Path(arguments.annotations).stem
    convert_from_arguments(reading, joint_set, joint_set.name, arguments, split=split)


def main(argv=None) -> int:
    return run_command_line(_main, argv)


if __name__ == "__main__":
    raise SystemExit(main())
