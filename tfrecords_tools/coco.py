"""COCO person keypoints (`person_keypoints_*.json`) -> TFRecords, one record per person.

Format (cocodataset.org "Keypoint Detection" data format): `images` (`id`, `file_name`,
`height`, `width`), `annotations` (`image_id`, `category_id`, `iscrowd`, `num_keypoints`,
`bbox` = [x, y, width, height], `keypoints` = 17 x [x, y, v]) and `categories` (the person
category lists the 17 keypoint names).

Conventions:

- Which annotations become people: person-category instances with `iscrowd == 0` and at
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
- Joint order: `categories[].keypoints`, which must be the 17 names of
  `pose_keras.joints.COCO` (`left_`/`right_` written `l_`/`r_`).
- `person/id`: the annotation's index in the file's `annotations` list (so
  `annotations[person_id]["id"]` is the COCO annotation id).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from pose_keras.joints import COCO
from pose_keras.transforms import center_and_scale_from_box
from tfrecords_tools.common import (
    INVALID_RECORD,
    Annotation,
    ConversionError,
    Reading,
    add_common_arguments,
    convert_from_arguments,
    load_json,
    require_file,
    run_command_line,
)

CROWD = "crowd annotation"
NO_KEYPOINTS = "no labelled keypoints"
OTHER_CATEGORY = "not the person category"


def _short_name(coco_name: str) -> str:
    for long, short in (("left_", "l_"), ("right_", "r_")):
        if coco_name.startswith(long):
            return short + coco_name[len(long) :]
    return coco_name


def read_coco(path, skip_invalid: bool = False) -> Reading:
    """Read a COCO person-keypoints JSON file.

    Args:
        path: str or Path. E.g. `annotations/person_keypoints_val2017.json`.
        skip_invalid: bool. Skip and count malformed annotations (wrong keypoint count,
            bad values, empty box) instead of failing.

    Returns:
        `Reading` with one `Annotation` per kept person instance, in file order.
    """
    path = require_file(path)
    data = load_json(path)
    if not isinstance(data, dict) or not {"images", "annotations", "categories"} <= set(data):
        raise ConversionError(f"{path}: expected a COCO file with images, annotations, categories.")
    people_categories = [c for c in data["categories"] if c.get("keypoints")]
    if len(people_categories) != 1:
        raise ConversionError(
            f"{path}: expected one category with keypoints (person), found {len(people_categories)}."
        )
    category = people_categories[0]
    names = tuple(_short_name(str(name)) for name in category["keypoints"])
    if names != COCO.names:
        raise ConversionError(
            f"{path}: the person keypoints are {list(category['keypoints'])}; the COCO joint set "
            f"expects the 17 COCO keypoints in order (use tfrecords_tools.custom for others)."
        )
    images = {}
    for image in data["images"]:
        try:
            images[image["id"]] = (
                str(image["file_name"]),
                int(image["height"]),
                int(image["width"]),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise ConversionError(f"{path}: image entry {image!r:.80}: {error}.") from None

    reading = Reading(source=str(path), format="coco-keypoints-json")
    for index, entry in enumerate(data["annotations"]):
        record = f"annotation {index} (id {entry.get('id')})"
        name = f"annotation id {entry.get('id')}"
        if entry.get("category_id") != category["id"]:
            reading.skipped.setdefault(OTHER_CATEGORY, []).append(name)
            continue
        if entry.get("iscrowd", 0):
            reading.skipped.setdefault(CROWD, []).append(name)
            continue
        try:
            values = np.asarray(entry["keypoints"], dtype=np.float64)
            if values.shape != (3 * COCO.num_joints,):
                raise ValueError(f"{values.size} keypoint values, expected {3 * COCO.num_joints}")
            values = values.reshape(COCO.num_joints, 3)
            flags = values[:, 2]
            if not np.isin(flags, (0, 1, 2)).all():
                raise ValueError("keypoint v values must be 0, 1 or 2")
            if not (flags > 0).any():
                reading.skipped.setdefault(NO_KEYPOINTS, []).append(name)
                continue
            if entry["image_id"] not in images:
                raise ValueError(f"image_id {entry['image_id']} is not in 'images'")
            x, y, width, height = (float(v) for v in entry["bbox"])
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
    reading = read_coco(arguments.annotations, skip_invalid=arguments.skip_invalid)
    split = Path(arguments.annotations).stem
    convert_from_arguments(reading, COCO, "coco", arguments, split=split)


def main(argv=None) -> int:
    return run_command_line(_main, argv)


if __name__ == "__main__":
    raise SystemExit(main())
