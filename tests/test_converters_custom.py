"""Custom CSV / JSON converter (user-defined joints), on files written in tmp_path.

Coordinates in these files are 0-based pixel centres unless `--one-based` is given.
"""

import json

import cv2
import numpy as np
import pytest

from pose_keras import records
from pose_keras.joints import JointSet
from tfrecords_tools import custom
from tfrecords_tools.common import ConversionError

HAND = {
    "name": "hand",
    "names": ["wrist", "thumb_tip", "index_tip"],
    "flip_pairs": [],
    "limbs": [[0, 1], [0, 2]],
    "normalizer": "torso",
    "torso_joints": [0, 2],
}
HEADER = (
    "image,x0,y0,x1,y1,wrist_x,wrist_y,wrist_v,thumb_tip_x,thumb_tip_y,thumb_tip_v,"
    "index_tip_x,index_tip_y,index_tip_v"
)


@pytest.fixture
def hand():
    return JointSet.from_dict(HAND)


def _write(path, text):
    path.write_text(text)
    return path


def test_csv_values_box_and_joint_box(hand, tmp_path):
    path = _write(
        tmp_path / "people.csv",
        f"{HEADER}\na.png,10,20,50,100,30,90,2,15,40,1,40,25,2\n\nb.bmp,,,,,5,6,2,,,0,25,16,2\n",
    )
    people = custom.read_custom(path, hand).people
    assert [p.image for p in people] == ["a.png", "b.bmp"]
    first, second = people
    np.testing.assert_allclose(first.keypoints, [[30, 90], [15, 40], [40, 25]])
    assert first.visibility.tolist() == [2, 1, 2]
    # Box (10, 20)-(50, 100): centre (30, 60), scale 80 / 200.
    np.testing.assert_allclose(first.center, [30, 60])
    assert first.scale == pytest.approx(0.4)
    # No box: joints (5, 6) and (25, 16) -> centre (15, 11), longer side 20 -> scale 0.1.
    assert second.visibility.tolist() == [2, 0, 2]
    np.testing.assert_allclose(second.center, [15, 11])
    assert second.scale == pytest.approx(0.1)
    assert (second.record, second.person_id) == ("row 2 (line 4)", 1)
    shifted = custom.read_custom(path, hand, one_based=True).people[0]
    np.testing.assert_allclose(shifted.keypoints[0], [29, 89])
    np.testing.assert_allclose(shifted.center, [29, 59])


@pytest.mark.parametrize(
    ("header", "row", "message"),
    [
        (HEADER + ",wrist_z", "a.png,,,,,1,1,2,2,2,2,3,3,2,0", r"unknown column\(s\) \['wrist_z'\]"),
        (HEADER.rsplit(",", 1)[0], "a.png,,,,,1,1,2,2,2,2,3,3", r"missing column\(s\) \['index_tip_v'\]"),
        (HEADER, "a.png,,,,,1,1,2,abc,2,2,3,3,2", r"row 1 \(line 2\), column 'thumb_tip_x': 'abc' is not a number"),
        (HEADER, "a.png,,,,,1,1,2,2,2,5,3,3,2", r"column 'thumb_tip_v': visibility must be 0, 1 or 2"),
        (HEADER, "a.png,,,,,1,1,2,2,2,2,3,3", "row 1 .*13 fields, the header has 14"),
        (HEADER, "a.png,1,2,,,1,1,2,2,2,2,3,3,2", r"column 'x1': give all of"),
        (HEADER, "a.png,,,,,1,1,0,2,2,0,3,3,0", "row 1 .*no joint is annotated"),
    ],
)  # fmt: skip
def test_csv_errors_name_file_row_and_column(hand, tmp_path, header, row, message):
    path = _write(tmp_path / "bad.csv", f"{header}\n{row}\n")
    with pytest.raises(ConversionError, match=f"bad.csv: .*{message}"):
        custom.read_custom(path, hand)


def test_csv_skip_invalid_counts_rows(hand, tmp_path):
    rows = [
        "a.png,,,,,1,1,2,2,2,2,3,3,2",
        "b.png,,,,,x,1,2,2,2,2,3,3,2",
        "c.png,,,,,1,1,0,2,2,0,3,3,0",
    ]
    path = _write(tmp_path / "people.csv", "\n".join([HEADER, *rows]) + "\n")
    reading = custom.read_custom(path, hand, skip_invalid=True)
    assert [p.image for p in reading.people] == ["a.png"]
    assert reading.skipped == {
        "invalid record": ["row 2 (line 3)"],
        "no annotated joints": ["row 3 (line 4)"],
    }


def test_json_layout_and_wrong_joint_count(hand, tmp_path):
    people = [
        {"image": "a.png", "keypoints": [[30, 90, 2], [15, 40, 1], [40, 25, 2]], "box": [10, 20, 50, 100]},
        {"image": "b.png", "keypoints": [[5, 6, 2], [25, 16, 2]]},
    ]  # fmt: skip
    path = _write(tmp_path / "people.json", json.dumps(people))
    with pytest.raises(
        ConversionError, match="record 1, field 'keypoints': 2 keypoints, joint set 'hand' has 3"
    ):
        custom.read_custom(path, hand)
    reading = custom.read_custom(path, hand, skip_invalid=True)
    assert len(reading.people) == 1 and reading.skipped == {"invalid record": ["record 1"]}
    np.testing.assert_allclose(reading.people[0].center, [30, 60])


def test_joint_file_errors_name_the_file(tmp_path):
    path = _write(tmp_path / "joints.json", json.dumps({"name": "hand"}))
    with pytest.raises(ConversionError, match="joints.json: A joint set needs at least"):
        custom.load_joint_set(path)
    path = _write(tmp_path / "joints.json", json.dumps({**HAND, "flip_pairs": [[0, 7]]}))
    with pytest.raises(ConversionError, match="joints.json: .*flip_pairs entry"):
        custom.load_joint_set(path)


def test_cli_keeps_png_and_re_encodes_bmp(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    png = np.random.default_rng(0).integers(0, 255, (128, 64, 3), dtype=np.uint8)
    bmp = np.random.default_rng(1).integers(0, 255, (30, 40, 3), dtype=np.uint8)
    cv2.imwrite(str(images / "a.png"), png)
    cv2.imwrite(str(images / "b.bmp"), bmp)
    _write(tmp_path / "joints.json", json.dumps(HAND))
    # a.png's index_tip at x = 70 lies outside the 64-px-wide image: kept and counted.
    _write(
        tmp_path / "people.csv",
        f"{HEADER}\na.png,10,20,50,100,30,90,2,15,40,1,70,25,2\nb.bmp,,,,,5,6,2,,,0,25,16,2\n",
    )
    prefix = tmp_path / "out" / "hand"
    status = custom.main(
        [str(tmp_path / "people.csv"), "--joints", str(tmp_path / "joints.json"),
         "--image-root", str(images), "--output", str(prefix), "--no-progress"]
    )  # fmt: skip
    assert status == 0
    manifest = records.read_manifest(prefix)
    assert manifest["dataset"] == "hand" and manifest["joint_set"]["names"] == HAND["names"]
    assert manifest["joints_outside_image"]["joints"] == 1
    first, second = records.read_people(prefix)
    assert first.image_encoded == (images / "a.png").read_bytes()
    assert (first.image_format, first.image_height, first.image_width) == ("png", 128, 64)
    assert second.image_format == "png"
    decoded = cv2.imdecode(np.frombuffer(second.image_encoded, np.uint8), cv2.IMREAD_COLOR)
    np.testing.assert_array_equal(decoded, bmp)
    np.testing.assert_allclose(first.keypoints[2], [70, 25])
