"""Label Studio keypoint export (JSON) -> TFRecords.

Format (labelstud.io/tags/keypointlabels, "Result parameters"; the task layout of Label
Studio's "JSON" export, labelstud.io/guide/export): a list of tasks
`{"id", "data": {"image": url}, "annotations": [{"id", "was_cancelled", "result": [...]}]}`.
A keypoint result is `{"type": "keypointlabels", "original_width", "original_height",
"image_rotation", "value": {"x", "y", "width", "keypointlabels": [label]}}` with `x`, `y` in
percent (0-100) of the original image size. A `rectanglelabels` result has `value.x`,
`.y`, `.width`, `.height`, also in percent.

Conventions:

- Which annotation: the first one of a task that is not cancelled (`was_cancelled`);
  further ones (other annotators) are skipped and counted. Predictions are not read.
- People: without `rectanglelabels` results, all keypoints of the annotation are one
  person. With rectangles, each rectangle is a person (its box is the person box) and a
  keypoint belongs to the smallest rectangle containing it; a keypoint outside every
  rectangle is an error. A label used twice in one person is an error.
- Coordinates: `x / 100 * original_width - 0.5` (Label Studio's percent frame spans the
  image's outer edges; records use 0-based pixel centres). Visibility 2 (Label Studio has
  no visibility flag). A rotated image (`image_rotation` != 0) is refused.
- Image path: `data.image` (or the one string in `data`, or `--data-key`). A
  `/data/local-files/?d=<path>` URL gives `<path>`; an upload `/data/upload/<project>/<file>`
  gives `<file>` (with `--strip-upload-prefix`, without the 8-hex-digit `abcd1234-` prefix
  Label Studio puts before uploaded file names); any other URL gives its path without
  the host (`s3://bucket/a/b.jpg` -> `a/b.jpg`). Paths are relative to `--image-root`.
- Joint set: `--joints FILE`, or the labels in order of first appearance
  (`pose_keras.joints.joint_set_from_names`: flip pairs from left/right names).
"""

from __future__ import annotations

import argparse
import re
import urllib.parse
from pathlib import Path

from tfrecords_tools.common import (
    ConversionError,
    add_common_arguments,
    convert_from_arguments,
    load_json,
    require_file,
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

EXTRA_ANNOTATION = "further annotation of the same task"
CANCELLED = "cancelled or empty annotation"
_UPLOAD_PREFIX = re.compile(r"^[0-9a-f]{8}-")


def image_path(url: str, strip_upload_prefix: bool = False) -> str:
    """The image path, relative to the image root, of a task's `data.image` value.

    >>> image_path("/data/local-files/?d=mice/img0001.png")
    'mice/img0001.png'
    >>> image_path("/data/upload/3/5d1e4f2a-img0001.png", strip_upload_prefix=True)
    'img0001.png'
    >>> image_path("s3://bucket/frames/a.jpg")
    'frames/a.jpg'
    """
    parsed = urllib.parse.urlparse(url)
    query = urllib.parse.parse_qs(parsed.query)
    if parsed.path.endswith("/data/local-files/") and "d" in query:
        return query["d"][0].lstrip("/")
    path = urllib.parse.unquote(parsed.path)
    if "/data/upload/" in path:
        name = path.rsplit("/", 1)[-1]
        return _UPLOAD_PREFIX.sub("", name) if strip_upload_prefix else name
    return path.lstrip("/")


def _percent(value, field, where):
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: {field} {value!r} is not a number") from None
    if not 0.0 <= number <= 100.0:
        raise ValueError(f"{where}: {field} {number} is not a percentage in [0, 100]")
    return number


def _size(result, where):
    try:
        width, height = int(result["original_width"]), int(result["original_height"])
    except (KeyError, TypeError, ValueError):
        raise ValueError(f"{where}: needs original_width and original_height") from None
    if width <= 0 or height <= 0:
        raise ValueError(f"{where}: image size {width}x{height} is not positive")
    if float(result.get("image_rotation") or 0) != 0:
        raise ValueError(f"{where}: rotated images (image_rotation) are not supported")
    return width, height


def _people_of_annotation(results, image, record):
    """LabelledPersons from one annotation's `result` list."""
    keypoints, boxes, size = [], [], None
    for number, result in enumerate(results):
        kind = result.get("type")
        if kind not in ("keypointlabels", "rectanglelabels"):
            continue
        where = f"result {number} ({kind})"
        width, height = _size(result, where)
        size = size or (height, width)
        if size != (height, width):
            raise ValueError(f"{where}: image size {width}x{height} differs from {size[::-1]}")
        value = result.get("value") or {}
        x = _percent(value.get("x"), "x", where) / 100.0 * width - PIXEL_CENTRE_OFFSET
        y = _percent(value.get("y"), "y", where) / 100.0 * height - PIXEL_CENTRE_OFFSET
        if kind == "rectanglelabels":
            box_width = _percent(value.get("width"), "width", where) / 100.0 * width
            box_height = _percent(value.get("height"), "height", where) / 100.0 * height
            boxes.append((x, y, x + box_width, y + box_height))
            continue
        labels = value.get("keypointlabels") or []
        if len(labels) != 1:
            raise ValueError(f"{where}: expected one keypoint label, found {labels}")
        keypoints.append((str(labels[0]), x, y, where))
    people = [
        LabelledPerson(image, f"{record}, box {i}" if boxes else record, {}, box, size)
        for i, box in enumerate(boxes or [None])
    ]
    areas = [(box[2] - box[0]) * (box[3] - box[1]) for box in boxes]
    for label, x, y, where in keypoints:
        owner = 0
        if boxes:
            holding = [
                i for i, box in enumerate(boxes) if box[0] <= x <= box[2] and box[1] <= y <= box[3]
            ]
            if not holding:
                raise ValueError(f"{where}: keypoint {label!r} lies outside every rectangle")
            owner = min(holding, key=lambda i: areas[i])
        person = people[owner]
        if label in person.points:
            raise ValueError(f"{where}: label {label!r} appears twice in {person.record}")
        person.points[label] = (x, y, VISIBLE)
    return people


def parse_labelstudio(path, data_key=None, strip_upload_prefix=False, skip_invalid=False):
    """Parse a Label Studio JSON export into `LabelledPerson`s.

    Returns:
        (people, skipped): skipped is a dict reason -> task names.
    """
    path = require_file(path)
    tasks = load_json(path)
    if not isinstance(tasks, list):
        raise ConversionError(f"{path}: expected Label Studio's JSON export, a list of tasks.")
    people, skipped = [], {}
    for index, task in enumerate(tasks):
        name = f"task {index} (id {task.get('id')})" if isinstance(task, dict) else f"task {index}"
        try:
            if not isinstance(task, dict) or not isinstance(task.get("data"), dict):
                raise ValueError("a task is an object with 'data'")
            data = task["data"]
            if data_key is None:
                strings = [key for key, value in data.items() if isinstance(value, str)]
                key = "image" if "image" in data else (strings[0] if len(strings) == 1 else None)
                if key is None:
                    raise ValueError(
                        f"which data field is the image? pass --data-key ({sorted(data)})"
                    )
            else:
                key = data_key
            if not isinstance(data.get(key), str):
                raise ValueError(f"data has no image field {key!r}")
            image = image_path(data[key], strip_upload_prefix)
            annotations = [
                a
                for a in task.get("annotations") or []
                if isinstance(a, dict) and not a.get("was_cancelled") and a.get("result")
            ]
            if not annotations:
                skipped.setdefault(CANCELLED, []).append(name)
                continue
            for extra in annotations[1:]:
                skipped.setdefault(EXTRA_ANNOTATION, []).append(
                    f"{name} annotation {extra.get('id')}"
                )
            people += _people_of_annotation(annotations[0]["result"], image, name)
        except ValueError as error:
            if not skip_invalid:
                raise ConversionError(f"{path}: {name}: {error}.") from None
            skipped.setdefault("invalid record", []).append(name)
    return people, skipped


def read_labelstudio(
    path,
    joint_set=None,
    flip_pairs=None,
    name=None,
    data_key=None,
    strip_upload_prefix=False,
    box_margin=None,
    skip_invalid=False,
):
    """Read a Label Studio keypoint export.

    Args:
        path: str or Path. The exported JSON file.
        joint_set: JointSet or None. None = the labels found, in order of first appearance.
        flip_pairs: str or None. Without `joint_set`: `"a:b,c:d"` / `"none"`; None = from
            left/right names.
        name: str or None. Without `joint_set`: its name (None: "keypoints").
        data_key: str or None. The task `data` field holding the image URL.
        strip_upload_prefix: bool. Drop Label Studio's `abcd1234-` upload prefix.
        box_margin: float or None. Margin of boxes made from points (default 0.1).
        skip_invalid: bool. Skip and count bad tasks / people instead of failing.

    Returns:
        (joint_set, reading).
    """
    people, skipped = parse_labelstudio(path, data_key, strip_upload_prefix, skip_invalid)
    joint_set = joint_set_for_labels(
        joint_set, labels_in_order(people), name or "keypoints", flip_pairs
    )
    reading = reading_from_people(
        path, "labelstudio-json", people, joint_set, skip_invalid, box_margin
    )
    for reason, names in skipped.items():
        reading.skipped.setdefault(reason, []).extend(names)
    reading.details["conventions"] = (
        "labelstudio: x, y percent of original_width/height -> px, minus 0.5 (pixel "
        "centres); visibility 2; one person per annotation or per rectanglelabels box"
    )
    return joint_set, reading


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tfrecords_tools.labelstudio",
        description="Convert a Label Studio JSON export with keypointlabels (and optional "
        "rectanglelabels person boxes) into TFRecord shards. Layout: docs/converters.md.",
    )
    parser.add_argument("annotations", help="The exported JSON file (Export -> JSON).")
    add_joint_arguments(parser)
    parser.add_argument("--data-key", help="Task data field of the image (default: image).")
    parser.add_argument(
        "--strip-upload-prefix",
        action="store_true",
        help="Drop the 8-hex-digit prefix Label Studio adds to uploaded file names.",
    )
    add_common_arguments(parser)
    return parser


def _main(argv=None):
    arguments = build_parser().parse_args(argv)
    joint_set, reading = read_labelstudio(
        arguments.annotations,
        joints_argument(arguments),
        arguments.flip_pairs,
        arguments.name,
        data_key=arguments.data_key,
        strip_upload_prefix=arguments.strip_upload_prefix,
        box_margin=arguments.box_margin,
        skip_invalid=arguments.skip_invalid,
    )
    split = Path(arguments.annotations).stem
    convert_from_arguments(reading, joint_set, joint_set.name, arguments, split=split)


def main(argv=None) -> int:
    return run_command_line(_main, argv)


if __name__ == "__main__":
    raise SystemExit(main())
