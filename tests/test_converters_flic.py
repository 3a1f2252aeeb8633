"""FLIC converters on the real ../shared/data/flic/valid.h5 (1016 people, 11 parts).

Indices: rows are 0-based people; joints follow `pose_keras.joints.FLIC` (0 l_shoulder,
3 r_shoulder, 6 l_hip, 7 r_hip, 8 l_eye, 9 r_eye, 10 nose). The file's coordinates are
taken as MATLAB 1-based, so records hold them minus 1. No FLIC image is in ../shared/data:
the writer is tested on blank JPEGs of FLIC's 720 x 480 frame size made in tmp_path, and
`examples.mat` on a reconstructed miniature filled with the real coordinates of rows 0-4.
"""

import h5py
import numpy as np
import pytest
from scipy.io import savemat

from pose_keras import records
from tfrecords_tools import flic
from tfrecords_tools.common import ConversionError


@pytest.fixture(scope="module")
def flic_dir(shared_data):
    return shared_data / "flic"


@pytest.fixture(scope="module")
def h5_reading(flic_dir):
    return flic.read_flic_h5(flic_dir / "valid.h5")


def test_valid_h5_people_and_joint_order(h5_reading, flic_dir):
    people = h5_reading.people
    assert len(people) == 1016
    names = (flic_dir / "valid_images.txt").read_text().split()
    assert [person.image for person in people] == names
    keypoints = np.stack([person.keypoints for person in people])
    assert all((person.visibility == 2).all() for person in people)
    # Person-centric left/right of people facing the camera: the left shoulder and hip lie
    # right of their right counterparts in the image; eyes above the nose; wrists mostly
    # below the shoulders.
    assert (keypoints[:, 0, 0] > keypoints[:, 3, 0]).all()
    assert (keypoints[:, 6, 0] > keypoints[:, 7, 0]).all()
    assert (keypoints[:, 8:10, 1] < keypoints[:, 10:11, 1]).all()
    assert (keypoints[:, [2, 5], 1] > keypoints[:, [0, 3], 1]).mean() > 0.95


def test_valid_h5_joints_checked_by_hand(h5_reading):
    # Row 0 of valid.h5 (12-oclock-high-special-edition-00171221.jpg): part[0] =
    # (384.82449341, 236.74609375), part[10] = (323.82855225, 192.8125), center
    # (329.77716, 240), scale 2.2, normalize 162.53936101 = |part[3] - part[6]|.
    first = h5_reading.people[0]
    assert first.image == "12-oclock-high-special-edition-00171221.jpg"
    np.testing.assert_allclose(first.keypoints[0], [383.82449341, 235.74609375])
    np.testing.assert_allclose(first.keypoints[10], [322.82855225, 191.8125])
    np.testing.assert_allclose(first.center, [328.77716, 239.0], atol=1e-4)
    np.testing.assert_allclose(first.scale, 2.2 / 1.25)
    np.testing.assert_allclose(first.normalize, 162.53936101, atol=1e-6)
    np.testing.assert_allclose(
        np.linalg.norm(first.keypoints[3] - first.keypoints[6]), first.normalize, atol=1e-6
    )
    # Row 2: part[7] (r_hip) = (273.28570557, 361.15625).
    np.testing.assert_allclose(h5_reading.people[2].keypoints[7], [272.28570557, 360.15625])


def _blank_jpeg(path, width=720, height=480):
    import cv2

    ok, data = cv2.imencode(".jpg", np.full((height, width, 3), 128, np.uint8))
    assert ok
    path.write_bytes(data.tobytes())


def test_writer_on_people_whose_images_exist(flic_dir, h5_reading, tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    for person in h5_reading.people[:3]:  # rows 0 and 1 share an image
        _blank_jpeg(images / person.image)
    prefix = tmp_path / "flic_valid"
    status = flic.main(
        [
            str(flic_dir / "valid.h5"), "--image-root", str(images), "--output", str(prefix),
            "--skip-missing-images", "--no-progress",
        ]
    )  # fmt: skip
    assert status == 0
    manifest = records.read_manifest(prefix)
    assert manifest["count"] == 3 and manifest["skipped"]["missing image"]["count"] == 1013
    assert manifest["joint_set"]["names"][0] == "l_shoulder"
    people = list(records.read_people(prefix))
    assert [person.person_id for person in people] == [0, 1, 2]
    assert (people[0].image_width, people[0].image_height) == (720, 480)
    np.testing.assert_allclose(people[0].keypoints[0], [383.82449341, 235.74609375], atol=1e-4)
    np.testing.assert_allclose(people[2].scale, 1.76, rtol=1e-6)


@pytest.fixture
def examples_mat(flic_dir, tmp_path):
    """examples.mat with 6 examples: a training one, then rows 0-4 of valid.h5 as istest
    (coords at FLIC's 11 labelled columns of 29, NaN elsewhere; torsobox centred on the
    .h5 centre x; imgdims 480 x 720 x 3)."""
    with h5py.File(flic_dir / "valid.h5") as handle:
        parts, centers = handle["part"][:5], handle["center"][:5]
        names = [name.decode() for name in handle["imgname"][:5]]
    fields = ["poselet_hit_idx", "moviename", "coords", "filepath", "imgdims", "currframe",
              "torsobox", "istrain", "istest", "isbad", "isunchecked"]  # fmt: skip
    examples = np.zeros((1, 6), dtype=[(field, object) for field in fields])
    for index in range(6):
        row = max(index - 1, 0)
        coords = np.full((2, 29), np.nan)
        coords[:, list(flic.FLIC_COORD_COLUMNS)] = parts[row].T
        center_x = float(centers[row, 0])
        values = {
            "poselet_hit_idx": np.array([[1, 2]]), "moviename": "12-oclock-high-special-edition",
            "coords": coords, "filepath": names[row], "imgdims": np.array([[480.0, 720.0, 3.0]]),
            "currframe": 171221.0, "torsobox": np.array([[center_x - 40, 180, center_x + 40, 330]]),
            "istrain": float(index == 0), "istest": float(index > 0), "isbad": 0.0,
            "isunchecked": 0.0,
        }  # fmt: skip
        for field in fields:
            examples[0, index][field] = values[field]
    path = tmp_path / "examples.mat"
    savemat(path, {"examples": examples})
    return path


def test_examples_mat_matches_valid_h5(examples_mat, h5_reading):
    test = flic.read_flic_mat(examples_mat, split="test")
    assert len(test.people) == 5
    for person, from_h5 in zip(test.people, h5_reading.people[:5], strict=True):
        assert person.image == from_h5.image
        np.testing.assert_allclose(person.keypoints, from_h5.keypoints, atol=1e-9)
        np.testing.assert_array_equal(person.visibility, from_h5.visibility)
        np.testing.assert_allclose(person.center, from_h5.center, atol=1e-4)
        np.testing.assert_allclose(person.scale, from_h5.scale)
        assert person.image_size == (480, 720)
    assert [p.record for p in test.people][:2] == ["example 1", "example 2"]
    assert len(flic.read_flic_mat(examples_mat, split="train").people) == 1
    assert len(flic.read_flic_mat(examples_mat).people) == 6


def test_flic_cli_rejects_split_for_h5(flic_dir, tmp_path, capsys):
    status = flic.main(
        [str(flic_dir / "valid.h5"), "--split", "test", "--image-root", str(tmp_path),
         "--output", str(tmp_path / "x")]
    )  # fmt: skip
    assert status == 2 and "one split already" in capsys.readouterr().err
    with pytest.raises(ConversionError, match="no 'examples'"):
        flic.read_flic_mat(flic_dir.parent / "mpii" / "gt_valid.mat")
