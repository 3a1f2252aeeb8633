"""CVAT for images 1.1 XML (points and skeletons) -> TFRecords.

Format (CVAT docs "XML annotation format", `site/content/en/docs/dataset_management/
formats/format-xml.md` in cvat-ai/cvat): `<annotations>` holds `<meta>` (with
`<labels><label><name>`, `<type>` (`points`, `skeleton`, ...), for a skeleton an `<svg>`
whose `<circle data-node-id data-label-name>` are its points and `<line data-node-from
data-node-to>` its edges, and for a skeleton point `<parent>` naming the skeleton) and one
`<image id name width height>` per image. An image holds `<points label points="x,y"
occluded group_id>` and `<skeleton label>` elements, each with one `<points label
points="x,y" occluded outside>` per skeleton point.

Conventions:

- Skeleton mode (the file declares a skeleton label; `--skeleton NAME` picks one of
  several): each `<skeleton>` of that label is one person; its point labels, in the order
  `<meta>` lists them, are the joints and the svg edges are the limbs. `outside="1"` is
  not annotated (0), `occluded="1"` is visibility 1, else 2. Standalone `<points>` are
  skipped and counted.
- Points mode (no skeleton label): each standalone `<points>` element is one joint named by
  its label (one point per element). Points sharing a `group_id` are one person; points
  without a `group_id` are one person per image. A label twice in one person is an error.
- Coordinates: CVAT's canvas frame has the image's top-left corner at (0, 0); 0.5 is
  subtracted to get 0-based pixel centres. The person box is the extent of the labelled
  points plus the margin (`pose_keras.transforms.box_from_keypoints`).
- Image path: the `name` attribute, relative to `--image-root` (CVAT's export zip has the
  images under `images/`). `width`/`height` are checked against the image.
"""

from __future__ import annotations

import argparse
import re
import xml.etree.ElementTree as ElementTree
from pathlib import Path

from tfrecords_tools.common import (
    ConversionError,
    add_common_arguments,
    convert_from_arguments,
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

OCCLUDED = 1
POINTS_OUTSIDE_SKELETON = "points outside a skeleton"
_TAG = re.compile(r"<(circle|line)\b([^>]*)>")
_ATTRIBUTE = re.compile(r'([\w-]+)="([^"]*)"')


def skeleton_edges(svg: str) -> list:
    """(label, label) edges of a CVAT skeleton from its `<svg>` text.

    >>> skeleton_edges('<line data-type="edge" data-node-from="1" data-node-to="2"></line>'
    ...     '<circle data-node-id="1" data-label-name="nose"></circle>'
    ...     '<circle data-node-id="2" data-label-name="tail"></circle>')
    [('nose', 'tail')]
    """
    nodes, lines = {}, []
    for tag, attributes in _TAG.findall(svg or ""):
        values = dict(_ATTRIBUTE.findall(attributes))
        if tag == "circle" and "data-node-id" in values:
            nodes[values["data-node-id"]] = values.get("data-label-name", values["data-node-id"])
        elif tag == "line" and "data-node-from" in values and "data-node-to" in values:
            lines.append((values["data-node-from"], values["data-node-to"]))
    unknown = [node for line in lines for node in line if node not in nodes]
    if unknown:
        raise ValueError(f"skeleton svg edge names node(s) {unknown} that it does not draw")
    return [(nodes[a], nodes[b]) for a, b in lines]


def _point(element, where):
    text = (element.get("points") or "").strip()
    pairs = [pair for pair in text.split(";") if pair.strip()]
    if len(pairs) != 1:
        raise ValueError(f"{where}: expected one point 'x,y', found {text!r}")
    try:
        x, y = (float(value) for value in pairs[0].split(","))
    except ValueError:
        raise ValueError(f"{where}: points {text!r} is not 'x,y'") from None
    return x - PIXEL_CENTRE_OFFSET, y - PIXEL_CENTRE_OFFSET


def _flag(element, name):
    return (element.get(name) or "0").strip() in ("1", "true", "True")


def _labels(root):
    """Meta labels: list of dicts name, type, parent, svg, in file order."""
    labels = []
    for label in root.findall("meta//labels/label"):
        labels.append(
            {
                "name": (label.findtext("name") or "").strip(),
                "type": (label.findtext("type") or "").strip(),
                "parent": (label.findtext("parent") or "").strip(),
                "svg": label.findtext("svg") or "",
            }
        )
    return labels


def parse_cvat(path, skeleton=None):
    """Parse a CVAT for images XML file.

    Returns:
        (people, joint names or None, limbs as name pairs, skipped dict, skeleton label or
        None).
    """
    path = require_file(path)
    try:
        root = ElementTree.parse(path).getroot()
    except ElementTree.ParseError as error:
        raise ConversionError(f"{path}: not valid XML ({error}).") from None
    if root.tag != "annotations":
        raise ConversionError(f"{path}: expected CVAT's <annotations> root, found <{root.tag}>.")
    if root.find("track") is not None:
        raise ConversionError(
            f"{path}: has <track> elements (CVAT for video); export as CVAT for images 1.1."
        )
    labels = _labels(root)
    skeletons = [label["name"] for label in labels if label["type"] == "skeleton"]
    if skeleton is not None and skeleton not in skeletons:
        raise ConversionError(f"{path}: no skeleton label {skeleton!r}; skeletons: {skeletons}.")
    if skeleton is None and len(skeletons) > 1:
        raise ConversionError(
            f"{path}: several skeleton labels {skeletons}; choose one with --skeleton."
        )
    chosen = skeleton or (skeletons[0] if skeletons else None)
    names, limbs = None, []
    if chosen is not None:
        names = [label["name"] for label in labels if label["parent"] == chosen]
        svg = next(label["svg"] for label in labels if label["name"] == chosen)
        try:
            limbs = skeleton_edges(svg)
        except ValueError as error:
            raise ConversionError(f"{path}: label {chosen!r}: {error}.") from None
    people, skipped = [], {}
    for number, image in enumerate(root.iter("image")):
        name = image.get("name")
        where = f"image {image.get('id', number)} ({name!r})"
        try:
            if not name:
                raise ValueError(f"{where}: no name attribute")
            size = (int(image.get("height")), int(image.get("width")))
        except (TypeError, ValueError) as error:
            message = str(error) if str(error).startswith("image") else f"{where}: bad width/height"
            raise ConversionError(f"{path}: {message}.") from None
        try:
            if chosen is not None:
                people += _skeleton_people(image, chosen, name, where, size, skipped)
            else:
                people += _grouped_people(image, name, where, size)
        except ValueError as error:
            raise ConversionError(f"{path}: {error}.") from None
    return people, names, limbs, skipped, chosen


def _skeleton_people(image, chosen, name, where, size, skipped):
    people = []
    for index, element in enumerate(image.findall("skeleton")):
        if element.get("label") != chosen:
            continue
        record = f"{where}, skeleton {index}"
        points = {}
        for child in element.findall("points"):
            label = child.get("label")
            if label in points:
                raise ValueError(f"{record}: point {label!r} appears twice")
            if _flag(child, "outside"):
                points[label] = (0.0, 0.0, 0)
                continue
            x, y = _point(child, f"{record}, point {label!r}")
            points[label] = (x, y, OCCLUDED if _flag(child, "occluded") else VISIBLE)
        people.append(LabelledPerson(name, record, points, image_size=size))
    for element in image.findall("points"):
        skipped.setdefault(POINTS_OUTSIDE_SKELETON, []).append(f"{where} {element.get('label')}")
    return people


def _grouped_people(image, name, where, size):
    groups = {}
    for element in image.findall("points"):
        group = (element.get("group_id") or "").strip()
        group = "" if group == "0" else group
        record = f"{where}, group {group}" if group else where
        person = groups.setdefault(group, LabelledPerson(name, record, {}, image_size=size))
        label = element.get("label")
        if label in person.points:
            raise ValueError(
                f"{record}: label {label!r} appears twice (give each person its own group_id)"
            )
        x, y = _point(element, f"{record}, points {label!r}")
        person.points[label] = (x, y, OCCLUDED if _flag(element, "occluded") else VISIBLE)
    return [groups[key] for key in sorted(groups)]


def read_cvat(
    path,
    joint_set=None,
    flip_pairs=None,
    name=None,
    skeleton=None,
    box_margin=None,
    skip_invalid=False,
):
    """Read a CVAT for images 1.1 XML file.

    Args:
        path: str or Path. `annotations.xml`.
        joint_set: JointSet or None. None = the skeleton's points (skeleton mode) or the
            point labels in order of first appearance (points mode).
        flip_pairs, name: without `joint_set`, as `tfrecords_tools.deeplabcut.
            joint_set_for_labels` (`name` defaults to the skeleton label, else "keypoints").
        skeleton: str or None. The skeleton label to read when the file has several.
        box_margin: float or None. Margin of the boxes made from points (default 0.1).
        skip_invalid: bool. Skip and count bad people instead of failing.

    Returns:
        (joint_set, reading).
    """
    people, names, limbs, skipped, chosen = parse_cvat(path, skeleton)
    labels = names if names is not None else labels_in_order(people)
    name = name or chosen or "keypoints"
    joint_set = joint_set_for_labels(joint_set, labels, name, flip_pairs, limbs)
    reading = reading_from_people(
        path, "cvat-images-1.1", people, joint_set, skip_invalid, box_margin
    )
    for reason, entries in skipped.items():
        reading.skipped.setdefault(reason, []).extend(entries)
    reading.details["conventions"] = (
        "cvat: points minus 0.5 (canvas frame -> pixel centres); outside=1 not annotated, "
        "occluded=1 visibility 1; one person per skeleton, or per group_id / image"
    )
    return joint_set, reading


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tfrecords_tools.cvat",
        description="Convert a CVAT for images 1.1 XML export (skeletons or points) into "
        "TFRecord shards, one example per person. Layout: docs/converters.md.",
    )
    parser.add_argument("annotations", help="annotations.xml of a 'CVAT for images 1.1' export.")
    add_joint_arguments(parser)
    parser.add_argument("--skeleton", help="Skeleton label to read when there are several.")
    add_common_arguments(parser)
    return parser


def _main(argv=None):
    arguments = build_parser().parse_args(argv)
    joint_set, reading = read_cvat(
        arguments.annotations,
        joints_argument(arguments),
        arguments.flip_pairs,
        arguments.name,
        skeleton=arguments.skeleton,
        box_margin=arguments.box_margin,
        skip_invalid=arguments.skip_invalid,
    )
    split = Path(arguments.annotations).stem
    convert_from_arguments(reading, joint_set, joint_set.name, arguments, split=split)


def main(argv=None) -> int:
    return run_command_line(_main, argv)


if __name__ == "__main__":
    raise SystemExit(main())
