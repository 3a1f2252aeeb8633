"""COCO converter on the real ../shared/data/coco sample (4 val2017 images, 14 annotations).

Indices: `person_id` is the annotation's 0-based index in the file's `annotations` list;
joints follow `pose_keras.joints.COCO` (0 nose, 1 l_eye, 3 l_ear, 5 l_shoulder, ...).
COCO coordinates are stored as they are (continuous frame, origin at the image's top-left).
"""

import json

import numpy as np
import pytest

from pose_keras import records
from tfrecords_tools import coco
from tfrecords_tools.common import ConversionError


@pytest.fixture(scope="module")
def coco_dir(shared_data):
    return shared_data / "coco"


@pytest.fixture(scope="module")
def sample(coco_dir):
    return json.loads((coco_dir / "person_keypoints_sample.json").read_text())


def test_people_and_skips(coco_dir):
    reading = coco.read_coco(coco_dir / "person_keypoints_sample.json")
    # 14 annotations, none crowd; ids 1202706 and 508900 have num_keypoints 0.
    assert len(reading.people) == 12
    assert reading.skipped == {
        "no labelled keypoints": ["annotation id 1202706", "annotation id 508900"]
    }
    assert [p.person_id for p in reading.people] == [0, 1, 2, 4, 5, 7, 8, 9, 10, 11, 12, 13]


def test_joints_checked_by_hand(coco_dir):
    people = coco.read_coco(coco_dir / "person_keypoints_sample.json").people
    first = people[0]  # id 442619, 000000000785.jpg, keypoints start 367,81,2, 374,73,2
    assert (first.image, first.image_size) == ("000000000785.jpg", (425, 640))
    np.testing.assert_allclose(first.keypoints[:2], [[367, 81], [374, 73]])
    assert first.visibility.tolist() == [2] * 17
    # bbox [280.79, 44.73, 218.7, 346.68]: centre (390.14, 218.07), scale 346.68 / 200.
    np.testing.assert_allclose(first.center, [390.14, 218.07])
    np.testing.assert_allclose(first.scale, 1.7334)
    # id 198196 (000000040083.jpg): l_ear (3) is 0,0,0 -> not annotated.
    second = people[1]
    assert second.visibility[3] == 0 and (second.keypoints[3] == 0).all()
    # id 488308 (000000196141.jpg): nose 589,113,2; l_eye 0,0,0; l_ear 595,112,1 (occluded).
    occluded = people[4]
    assert occluded.record == "annotation 5 (id 488308)"
    assert occluded.visibility[:4].tolist() == [2, 0, 0, 1]
    np.testing.assert_allclose(occluded.keypoints[[0, 3]], [[589, 113], [595, 112]])


def test_cli_writes_twelve_people(coco_dir, tmp_path, capsys):
    prefix = tmp_path / "coco_sample"
    status = coco.main(
        [str(coco_dir / "person_keypoints_sample.json"), "--image-root", str(coco_dir / "images"),
         "--output", str(prefix), "--no-progress"]
    )  # fmt: skip
    assert status == 0
    assert "skipped 2 (no labelled keypoints)" in capsys.readouterr().err
    manifest = records.read_manifest(prefix)
    assert manifest["count"] == 12 and manifest["dataset"] == "coco"
    people = list(records.read_people(prefix))
    sizes = {p.image_id: (p.image_height, p.image_width) for p in people}
    assert sizes == {
        "000000000785.jpg": (425, 640),
        "000000040083.jpg": (333, 500),
        "000000196141.jpg": (429, 640),
        "000000197388.jpg": (392, 640),
    }
    assert people[0].image_encoded == (coco_dir / "images" / "000000000785.jpg").read_bytes()


def test_crowd_and_malformed_annotations(sample, tmp_path):
    edited = json.loads(json.dumps(sample))
    edited["annotations"][2]["iscrowd"] = 1
    edited["annotations"][4]["keypoints"] = edited["annotations"][4]["keypoints"][:48]
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(edited))
    with pytest.raises(ConversionError, match=r"annotation 4 \(id 460541\): 48 keypoint values"):
        coco.read_coco(path)
    reading = coco.read_coco(path, skip_invalid=True)
    assert len(reading.people) == 10
    assert reading.skipped["crowd annotation"] == ["annotation id 230195"]
    assert reading.skipped["invalid record"] == ["annotation id 460541"]


def test_image_size_mismatch_is_reported(sample, coco_dir, tmp_path, capsys):
    edited = json.loads(json.dumps(sample))
    edited["images"][0]["width"] = 641
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(edited))
    arguments = [str(path), "--image-root", str(coco_dir / "images"), "--output",
                 str(tmp_path / "out" / "coco"), "--no-progress"]  # fmt: skip
    assert coco.main(arguments) == 2
    error = capsys.readouterr().err
    assert "annotation 0 (id 442619)" in error and "641x425 image but the file is 640x425" in error
    assert not (tmp_path / "out").exists()
    assert coco.main([*arguments, "--skip-invalid"]) == 0
    manifest = records.read_manifest(tmp_path / "out" / "coco")
    assert manifest["count"] == 11
    assert manifest["skipped"]["image size differs from the annotation"]["count"] == 1
