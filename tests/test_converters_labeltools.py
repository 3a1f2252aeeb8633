"""Label Studio, CVAT and labelme converters, on small files in each tool's layout.

The files and images are written here; coordinates are chosen so that the expected record
values (tool frame minus 0.5 px) are exact.
"""

import base64
import json

import cv2
import numpy as np
import pytest

from pose_keras import records
from tfrecords_tools import cvat, labelme, labelstudio
from tfrecords_tools.common import ConversionError

WIDTH, HEIGHT = 200, 100


def write_image(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    pixels[20:80, 50:150] = (40, 160, 220)
    assert cv2.imwrite(str(path), pixels)
    return path


# --- Label Studio --------------------------------------------------------------------------


def keypoint(label, x_px, y_px):
    """A keypointlabels result at image px (x, y) of the continuous frame."""
    return {
        "id": f"kp-{label}",
        "type": "keypointlabels",
        "from_name": "kp-1",
        "to_name": "img-1",
        "original_width": WIDTH,
        "original_height": HEIGHT,
        "image_rotation": 0,
        "value": {
            "x": 100.0 * x_px / WIDTH,
            "y": 100.0 * y_px / HEIGHT,
            "width": 0.5,
            "keypointlabels": [label],
        },
    }


def rectangle(x0, y0, x1, y1):
    return {
        "type": "rectanglelabels",
        "original_width": WIDTH,
        "original_height": HEIGHT,
        "value": {
            "x": 100.0 * x0 / WIDTH,
            "y": 100.0 * y0 / HEIGHT,
            "width": 100.0 * (x1 - x0) / WIDTH,
            "height": 100.0 * (y1 - y0) / HEIGHT,
            "rectanglelabels": ["mouse"],
        },
    }


def task(image, results, task_id=1, more=()):
    annotations = [{"id": 10, "was_cancelled": False, "result": results}, *more]
    return {"id": task_id, "data": {"image": image}, "annotations": annotations}


def test_labelstudio_percent_to_pixel_centres_and_converts(tmp_path):
    write_image(tmp_path / "images" / "a.png")
    tasks = [
        task(
            "/data/local-files/?d=a.png",
            [
                keypoint("snout", 50.5, 40.5),
                keypoint("left_ear", 60.5, 30.5),
                keypoint("right_ear", 60.5, 50.5),
            ],
            more=[{"id": 11, "was_cancelled": False, "result": [keypoint("snout", 1, 1)]}],
        ),
        task("/data/upload/4/1a2b3c4d-a.png", [], task_id=2),
    ]
    path = tmp_path / "export.json"
    path.write_text(json.dumps(tasks))
    joint_set, reading = labelstudio.read_labelstudio(path)
    assert joint_set.names == ("snout", "left_ear", "right_ear")
    assert joint_set.flip_pairs == ((1, 2),)
    (person,) = reading.people
    np.testing.assert_allclose(person.keypoints, [[50, 40], [60, 30], [60, 50]], atol=1e-9)
    assert person.visibility.tolist() == [2, 2, 2] and person.image_size == (HEIGHT, WIDTH)
    # Extent 10 x 20, 10% margin a side: side 24, centre (55, 40).
    np.testing.assert_allclose(person.center, [55, 40], atol=1e-9)
    assert person.scale == pytest.approx(24 / 200, abs=1e-12)
    assert set(reading.skipped) == {labelstudio.EXTRA_ANNOTATION, labelstudio.CANCELLED}

    status = labelstudio.main(
        [
            str(path),
            "--output",
            str(tmp_path / "out" / "ls"),
            "--image-root",
            str(tmp_path / "images"),
            "--no-progress",
        ]
    )
    assert status == 0
    (stored,) = records.read_people(str(tmp_path / "out" / "ls-*.tfrecord"))
    assert stored.image_id == "a.png"
    np.testing.assert_allclose(stored.keypoints, person.keypoints, atol=1e-4)


def test_labelstudio_rectangles_split_people_and_give_their_boxes(tmp_path):
    results = [
        rectangle(10, 10, 60, 90),
        rectangle(100, 10, 190, 90),
        keypoint("nose", 20.5, 20.5),
        keypoint("tail", 150.5, 80.5),
        keypoint("nose", 120.5, 30.5),
    ]
    path = tmp_path / "export.json"
    path.write_text(json.dumps([task("frames/b.png", results)]))
    _, reading = labelstudio.read_labelstudio(path)
    first, second = reading.people
    assert first.visibility.tolist() == [2, 0]  # joints: nose, tail
    np.testing.assert_allclose(first.center, [34.5, 49.5], atol=1e-9)  # the box, minus 0.5
    assert first.scale == pytest.approx(80 / 200, abs=1e-12)
    np.testing.assert_allclose(second.keypoints, [[120, 30], [150, 80]], atol=1e-9)

    results.append(keypoint("tail", 80.5, 50.5))  # between the rectangles
    path.write_text(json.dumps([task("frames/b.png", results)]))
    with pytest.raises(ConversionError, match=r"task 0 \(id 1\).*'tail' lies outside every"):
        labelstudio.read_labelstudio(path)


def test_labelstudio_image_paths():
    assert labelstudio.image_path("/data/upload/4/1a2b3c4d-a.png") == "1a2b3c4d-a.png"
    assert labelstudio.image_path("/data/upload/4/1a2b3c4d-a.png", True) == "a.png"
    assert labelstudio.image_path("/data/local-files/?d=mice%2Fa.png") == "mice/a.png"
    assert labelstudio.image_path("https://host/data/x/a%20b.jpg") == "data/x/a b.jpg"


# --- CVAT -------------------------------------------------------------------------------------

CVAT_META = """<?xml version="1.0" encoding="utf-8"?>
<annotations>
  <version>1.1</version>
  <meta><task><labels>
    <label><name>mouse</name><type>skeleton</type><attributes></attributes>
      <svg>&lt;line x1="1" y1="1" x2="2" y2="2" data-type="edge" data-node-from="1"
        data-node-to="3"&gt;&lt;/line&gt;&lt;circle r="1.5" cx="1" cy="1"
        data-type="element node" data-element-id="1" data-node-id="1"
        data-label-name="snout"&gt;&lt;/circle&gt;&lt;circle r="1.5" data-node-id="2"
        data-label-name="leftear"&gt;&lt;/circle&gt;&lt;circle r="1.5" data-node-id="3"
        data-label-name="rightear"&gt;&lt;/circle&gt;</svg></label>
    <label><name>snout</name><type>points</type><parent>mouse</parent></label>
    <label><name>leftear</name><type>points</type><parent>mouse</parent></label>
    <label><name>rightear</name><type>points</type><parent>mouse</parent></label>
  </labels></task></meta>
"""


def test_cvat_skeletons_are_people_with_outside_and_occluded(tmp_path):
    write_image(tmp_path / "images" / "c.png")
    xml = (
        CVAT_META
        + """
  <image id="0" name="c.png" width="200" height="100">
    <skeleton label="mouse" source="manual" z_order="0">
      <points label="snout" occluded="0" source="manual" outside="0" points="50.50,40.50"></points>
      <points label="leftear" occluded="1" source="manual" outside="0" points="60.50,30.50"></points>
      <points label="rightear" occluded="0" source="manual" outside="1" points="0.00,0.00"></points>
    </skeleton>
    <points label="snout" occluded="0" points="5.0,5.0" z_order="0"></points>
  </image>
</annotations>
"""
    )
    path = tmp_path / "annotations.xml"
    path.write_text(xml)
    joint_set, reading = cvat.read_cvat(path)
    assert joint_set.name == "mouse"
    assert joint_set.names == ("snout", "leftear", "rightear")
    assert joint_set.limbs == ((0, 2),) and joint_set.flip_pairs == ((1, 2),)
    (person,) = reading.people
    assert person.visibility.tolist() == [2, 1, 0]
    np.testing.assert_allclose(person.keypoints, [[50, 40], [60, 30], [0, 0]], atol=1e-9)
    assert reading.skipped == {cvat.POINTS_OUTSIDE_SKELETON: ["image 0 ('c.png') snout"]}
    status = cvat.main(
        [
            str(path),
            "--output",
            str(tmp_path / "out" / "cvat"),
            "--image-root",
            str(tmp_path / "images"),
            "--no-progress",
        ]
    )
    assert status == 0
    manifest = records.read_manifest(str(tmp_path / "out" / "cvat-*.tfrecord"))
    assert manifest["count"] == 1 and manifest["joint_set"]["limbs"] == [[0, 2]]


def test_cvat_points_group_by_group_id_and_repeats_are_errors(tmp_path):
    xml = """<?xml version="1.0" encoding="utf-8"?>
<annotations><version>1.1</version><meta><task><labels>
  <label><name>nose</name><type>points</type></label>
  <label><name>tail</name><type>points</type></label></labels></task></meta>
  <image id="0" name="d.png" width="200" height="100">
    <points label="nose" occluded="0" points="10.5,10.5" group_id="1"></points>
    <points label="tail" occluded="0" points="30.5,50.5" group_id="1"></points>
    <points label="nose" occluded="1" points="110.5,10.5" group_id="2"></points>
    <points label="tail" occluded="0" points="130.5,50.5" group_id="2"></points>
  </image>
  <image id="1" name="e.png" width="200" height="100"></image>
</annotations>
"""
    path = tmp_path / "annotations.xml"
    path.write_text(xml)
    joint_set, reading = cvat.read_cvat(path, name="pair")
    assert joint_set.names == ("nose", "tail") and joint_set.name == "pair"
    first, second = reading.people
    np.testing.assert_allclose(first.keypoints, [[10, 10], [30, 50]], atol=1e-9)
    assert second.visibility.tolist() == [1, 2]
    path.write_text(xml.replace(' group_id="2"', ' group_id="1"'))
    with pytest.raises(ConversionError, match=r"image 0 \('d.png'\), group 1: label 'nose'"):
        cvat.read_cvat(path)


# --- labelme ----------------------------------------------------------------------------------


def labelme_file(folder, stem, shapes, image_data=None):
    data = {
        "version": "5.4.1",
        "flags": {},
        "shapes": shapes,
        "imagePath": f"{stem}.png",
        "imageData": image_data,
        "imageHeight": HEIGHT,
        "imageWidth": WIDTH,
    }
    path = folder / f"{stem}.json"
    path.write_text(json.dumps(data))
    return path


def point(label, x, y, group=None):
    return {
        "label": label,
        "points": [[x, y]],
        "group_id": group,
        "shape_type": "point",
        "flags": {},
    }


def test_labelme_points_groups_boxes_and_embedded_images(tmp_path):
    folder = tmp_path / "labelme"
    folder.mkdir()
    write_image(folder / "f.png")
    labelme_file(
        folder,
        "f",
        [point("l_eye", 20.5, 30.5), point("r_eye", 40.5, 30.5), point("nose", 30.5, 50.5)],
    )
    embedded = write_image(tmp_path / "g.png").read_bytes()
    box = {
        "label": "person",
        "points": [[150.5, 90.5], [100.5, 10.5]],
        "group_id": 7,
        "shape_type": "rectangle",
        "flags": {},
    }
    labelme_file(
        folder,
        "g",
        [
            point("nose", 120.5, 40.5, 7),
            point("l_eye", 110.5, 20.5, 7),
            box,
            point("nose", 10.5, 10.5),
            point("r_eye", 20.5, 20.5),
        ],
        base64.b64encode(embedded).decode(),
    )
    joint_set, reading = labelme.read_labelme(folder, box_label="person")
    assert joint_set.names == ("l_eye", "r_eye", "nose") and joint_set.flip_pairs == ((0, 1),)
    assert [p.image for p in reading.people] == ["f.png", "g.png", "g.png"]
    assert [p.record for p in reading.people] == ["f.json", "g.json", "g.json, group 7"]
    f_person, g_ungrouped, g_grouped = reading.people
    np.testing.assert_allclose(f_person.keypoints, [[20, 30], [40, 30], [30, 50]], atol=1e-9)
    assert g_ungrouped.visibility.tolist() == [0, 2, 2]
    assert g_grouped.visibility.tolist() == [2, 0, 2]
    # The group's rectangle (100, 10)-(150, 90), minus 0.5, is its box.
    np.testing.assert_allclose(g_grouped.center, [125, 50], atol=1e-9)
    assert g_grouped.scale == pytest.approx(80 / 200, abs=1e-12)
    # Without --box-label the rectangle is ignored: the box comes from the two points.
    _, plain = labelme.read_labelme(folder)
    np.testing.assert_allclose(plain.people[2].center, [115, 30], atol=1e-9)


def test_labelme_single_ungrouped_point_without_box_is_an_error_naming_the_file(tmp_path):
    folder = tmp_path / "labelme"
    folder.mkdir()
    labelme_file(folder, "h", [point("nose", 10.5, 10.5)])
    with pytest.raises(ConversionError, match=r"h.json: no person box"):
        labelme.read_labelme(folder)
    _, reading = labelme.read_labelme(folder, skip_invalid=True)
    assert reading.people == [] and list(reading.skipped.values()) == [["h.json"]]


def test_labelme_extracts_embedded_images_then_converts(tmp_path):
    folder = tmp_path / "labelme"
    folder.mkdir()
    embedded = write_image(tmp_path / "source.png").read_bytes()
    labelme_file(
        folder,
        "k",
        [point("nose", 20.5, 30.5), point("tail", 60.5, 70.5)],
        base64.b64encode(embedded).decode(),
    )
    labelme_file(folder, "empty", [])
    output = tmp_path / "out" / "lm"
    assert labelme.main([str(folder), "--output", str(output), "--no-progress"]) == 2
    assert (
        labelme.main([str(folder), "--output", str(output), "--extract-embedded", "--no-progress"])
        == 0
    )
    assert (folder / "k.png").read_bytes() == embedded
    manifest = records.read_manifest(f"{output}-*.tfrecord")
    assert manifest["count"] == 1 and manifest["joint_set"]["names"] == ["nose", "tail"]
