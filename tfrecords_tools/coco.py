"""COCO keypoints JSON (`person_keypoints_*.json`, or any keypoint category) -> TFRecords.

Format (cocodataset.org "Keypoint Detection" data format): `images` (`id`, `file_name`,
`height`, `width`), `annotations` (`image_id`, `category_id`, `iscrowd`, `num_keypoints`,
`bbox` = [x, y, width, height], `keypoints` = K x [x, y, v]) and `categories` (the keypoint
category lists its K keypoint names in `keypoints` and its limbs in `skeleton`, 1-based
index pairs).

Conventions:

- Which category: the file's one category with keypoints. When its keypoints are the 17
  COCO person keypoints (`left_`/`right_` written `l_`/`r_` in `pose_keras.joints.COCO`),
  records use the COCO joint set and dataset name `coco`, as for the official files.
  Any other keypoint category (CVAT and Label Studio export COCO with their own names, e.g.
  a 4-keypoint "mouse") gets a joint set built from the category: its name, keypoint names
  in order, `skeleton` as limbs (1-based pairs made 0-based), flip pairs found from
  left/right names (`pose_keras.joints.flip_pairs_from_names`); the dataset name is
  the category's name. `categories`, `images` and `annotations` entries of the wrong type
  are errors naming the file and the field.
- Which annotations become people: instances of that category with `iscrowd == 0` and at
  least one labelled keypoint. Crowd regions and instances with `num_keypoints == 0` are
  not people to learn from; they are skipped and counted (manifest `skipped`), as are
  annotations of other categories.
- Coordinates: COCO keypoints and boxes are in a continuous frame with the image's top-left
  corner at (0, 0) (keypoints are mostly integer clicks). They are stored as they are, not
  shifted by half a pixel, so that predictions in records' image px compare directly with
  the JSON (OKS evaluation, mmpose and HRNet use them the same way); the half-pixel
  difference to our pixel-centre frame is below the annotation noise.
- Visibility: COCO's `v` is our flag: 0 not labelled (stored as (0, 0)), 1 labelled but not
  visible, 2 labelled and visible.
- Crop: centre = box centre, scale = longer box side / 200
  (`pose_keras.transforms.center_and_scale_from_box`); the pipeline adds the 25% margin.
- `person/id`: the annotation's index in the file's `annotations` list (so
  `annotations[person_id]["id"]` is the COCO annotation id).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from pose_keras.joints import COCO, JointSet, joint_set_from_names
from pose_keras.transforms import center_and_scale_from_box
from tfrecords_tools.common import (
    INVALID_RECORD,
    Annotation,
    ConversionError,
    Reading,
    add_common_arguments,
    check_output,
    convert_from_arguments,
    load_json,
    require_file,
    run_command_line,
)

CROWD = "crowd annotation"
NO_KEYPOINTS = "no labelled keypoints"
OTHER_CATEGORY = "not the keypoint category"


def _short_name(coco_name: str) -> str:
    for long, short in (("left_", "l_"), ("right_", "r_")):
        if coco_name.startswith(long):
            return short + coco_name[len(long) :]
    return coco_name


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def category_joint_set(category: dict, where: str) -> JointSet:
    """The joint set of a COCO keypoint category: COCO's own for the 17 person keypoints.

    Raises:
        ConversionError: `keypoints` is not a list of distinct names, or `skeleton` is not
            a list of 1-based index pairs (`where` names the field).
    """
    names = category.get("keypoints")
    if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
        raise ConversionError(f"{where}.keypoints must be a list of keypoint names.")
    if tuple(_short_name(name) for name in names) == COCO.names:
        return COCO
    skeleton = category.get("skeleton", [])
    count = len(names)
    if not isinstance(skeleton, list) or not all(
        isinstance(pair, list)
        and len(pair) == 2
        and all(isinstance(i, int) and not isinstance(i, bool) and 1 <= i <= count for i in pair)
        for pair in skeleton
    ):
        raise ConversionError(
            f"{where}.skeleton must be a list of [a, b] keypoint numbers in 1..{count} "
            "(1-based, COCO format)."
        )
    limbs = [(names[a - 1], names[b - 1]) for a, b in skeleton]
    name = str(category.get("name") or f"category_{category.get('id')}")
    try:
        return joint_set_from_names(name, names, limbs=limbs)
    except ValueError as error:
        raise ConversionError(f"{where}: {error}") from None


def read_coco(path, skip_invalid: bool = False) -> Reading:
    """Read a COCO keypoints JSON file (person or any other keypoint category).

    Args:
        path: str or Path. E.g. `annotations/person_keypoints_val2017.json`.
        skip_invalid: bool. Skip and count malformed annotations (wrong keypoint count,
            bad values, empty box) instead of failing.

    Returns:
        `Reading` with one `Annotation` per kept instance, in file order; its `joint_set`
        is the category's (`category_joint_set`).
    """
    path = require_file(path)
    data = load_json(path)
    if not isinstance(data, dict) or not {"images", "annotations", "categories"} <= set(data):
        raise ConversionError(f"{path}: expected a COCO file with images, annotations, categories.")
    for field in ("images", "annotations", "categories"):
        if not isinstance(data[field], list):
            raise ConversionError(
                f"{path}: '{field}' must be a list, found {type(data[field]).__name__}."
            )
    for index, category in enumerate(data["categories"]):
        if not isinstance(category, dict):
            raise ConversionError(
                f"{path}: categories[{index}] must be an object, found {type(category).__name__}."
            )
    keypoint_categories = [
        (index, category)
        for index, category in enumerate(data["categories"])
        if category.get("keypoints")
    ]
    if len(keypoint_categories) != 1:
        raise ConversionError(
            f"{path}: expected one category with keypoints, found {len(keypoint_categories)}."
        )
    category_index, category = keypoint_categories[0]
    joint_set = category_joint_set(category, f"{path}: categories[{category_index}]")
    num_joints = joint_set.num_joints
    images = {}
    for index, image in enumerate(data["images"]):
        if not isinstance(image, dict):
            raise ConversionError(
                f"{path}: images[{index}] must be an object, found {type(image).__name__}."
            )
        try:
            images[image["id"]] = (
                str(image["file_name"]),
                int(image["height"]),
                int(image["width"]),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise ConversionError(f"{path}: images[{index}] {image!r:.80}: {error}.") from None

    reading = Reading(source=str(path), format="coco-keypoints-json", joint_set=joint_set)
    for index, entry in enumerate(data["annotations"]):
        if not isinstance(entry, dict):
            reading.reject(
                INVALID_RECORD,
                f"annotations[{index}]",
                f"{path}: annotations[{index}] must be an object, found {type(entry).__name__}.",
                skip_invalid,
            )
            continue
        record = f"annotation {index} (id {entry.get('id')})"
        name = f"annotation id {entry.get('id')}"
        if entry.get("category_id") != category.get("id"):
            reading.skipped.setdefault(OTHER_CATEGORY, []).append(name)
            continue
        if entry.get("iscrowd", 0):
            reading.skipped.setdefault(CROWD, []).append(name)
            continue
        try:
            keypoints = entry.get("keypoints")
            if not isinstance(keypoints, list) or not all(_is_number(v) for v in keypoints):
                raise ValueError("'keypoints' must be a list of numbers [x, y, v, ...]")
            values = np.asarray(keypoints, dtype=np.float64)
            if values.shape != (3 * num_joints,):
                raise ValueError(f"{values.size} keypoint values, expected {3 * num_joints}")
            values = values.reshape(num_joints, 3)
            flags = values[:, 2]
            if not np.isin(flags, (0, 1, 2)).all():
                raise ValueError("keypoint v values must be 0, 1 or 2")
            if not (flags > 0).any():
                reading.skipped.setdefault(NO_KEYPOINTS, []).append(name)
                continue
            if entry.get("image_id") not in images:
                raise ValueError(f"image_id {entry.get('image_id')!r} is not in 'images'")
            box = entry.get("bbox")
            if not isinstance(box, list) or len(box) != 4 or not all(_is_number(v) for v in box):
                raise ValueError("'bbox' must be [x, y, width, height]")
            x, y, width, height = (float(v) for v in box)
            center, scale = center_and_scale_from_box((x, y, x + width, y + height))
        except (KeyError, TypeError, ValueError) as error:
            reading.reject(INVALID_RECORD, name, f"{path}: {record}: {error}.", skip_invalid)
            continue
        file_name, image_height, image_width = images[entry["image_id"]]
        visibility = flags.astype(np.int64)
        reading.people.append(
            Annotation(
                image=file_name,
                keypoints=np.where(visibility[:, None] > 0, values[:, :2], 0.0),
                visibility=visibility,
                center=center,
                scale=scale,
                person_id=index,
                record=record,
                image_size=(image_height, image_width),
            )
        )
    reading.details["conventions"] = (
        "COCO: keypoints and bbox as stored (continuous 0-based frame, no shift); v is the "
        "visibility; centre/scale from bbox (longer side / 200); crowd and zero-keypoint "
        "instances skipped"
    )
    reading.details["category"] = str(category.get("name"))
    return reading


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tfrecords_tools.coco",
        description="Convert a COCO person-keypoints JSON file into TFRecord shards, one "
        "example per person instance. Details: docs/converters.md.",
    )
    parser.add_argument("annotations", help="person_keypoints_<split>.json")
    add_common_arguments(parser)
    return parser


def _main(argv=None):
    arguments = build_parser().parse_args(argv)
    check_output(arguments.output)  # before reading anything
    reading = read_coco(arguments.annotations, skip_invalid=arguments.skip_invalid)
    split = Path(arguments.annotations).stem
    joint_set = reading.joint_set
    dataset = "coco" if joint_set == COCO else joint_set.name
    convert_from_arguments(reading, joint_set, dataset, arguments, split=split)


def main(argv=None) -> int:
    return run_command_line(_main, argv)


if __name__ == "__main__":
    raise SystemExit(main())
