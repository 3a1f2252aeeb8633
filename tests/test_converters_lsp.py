"""LSP / LSP-extended `joints.mat` converter on reconstructed files.

No LSP file is in ../shared/data, so these tests build `joints.mat` files of the two
documented layouts (LSP 3 x 14 x 2000 with flag 1 = occluded; LSPET 14 x 3 x N with flag
1 = visible) holding real joint positions: MPII validation people from gt_valid.mat,
reordered to LSP's 14 joints (MPII 0-5 legs, 10-15 arms, 8 upper neck, 9 head top).
Coordinates in the files are 1-based; records hold them minus 1. Joint indices follow
`pose_keras.joints.LSP` (0 r_ankle ... 6 r_wrist ... 13 head_top).
"""

import numpy as np
import pytest
from scipy.io import loadmat, savemat

from pose_keras import records
from tfrecords_tools import lsp
from tfrecords_tools.common import ConversionError

MPII_FOR_LSP = [0, 1, 2, 3, 4, 5, 10, 11, 12, 13, 14, 15, 8, 9]
FULLY_ANNOTATED_COLUMNS = [0, 1, 4]  # gt_valid.mat people with all 16 joints annotated


@pytest.fixture(scope="module")
def gt_positions(shared_data):
    data = loadmat(shared_data / "mpii" / "gt_valid.mat")
    return data["pos_gt_src"][MPII_FOR_LSP]  # (14, 2, N), 1-based


@pytest.fixture
def lsp_mat(gt_positions, tmp_path):
    joints = np.zeros((3, 14, 2000))
    for number in range(2000):
        joints[:2, :, number] = gt_positions[:, :, FULLY_ANNOTATED_COLUMNS[number % 3]].T
    joints[2, 6, 0] = 1  # image 1: r_wrist occluded
    path = tmp_path / "lsp_joints.mat"
    savemat(path, {"joints": joints})
    return path


def test_lsp_layout_visibility_split_and_crop_by_hand(lsp_mat):
    reading = lsp.read_lsp(lsp_mat)
    assert reading.format == "lsp-joints-mat"
    assert len(reading.people) == 2000
    first = reading.people[0]
    assert (first.image, first.person_id) == ("im0001.jpg", 0)
    # gt_valid.mat column 0: r_ankle (804.0000103, 710.99996642), head top (962.24089094,
    # 80.03060185), 1-based.
    np.testing.assert_allclose(first.keypoints[0], [803.0000103, 709.99996642])
    np.testing.assert_allclose(first.keypoints[13], [961.24089094, 79.03060185])
    assert first.visibility[6] == 1 and (np.delete(first.visibility, 6) == 2).all()
    # Box of the annotated joints: x 797.99998668 (r_elbow) .. 1166.99998123 (l_elbow),
    # y 80.03060185 (head top) .. 710.99996642 (r_ankle); longer side 630.96936457.
    np.testing.assert_allclose(
        first.center, [(797.99998668 + 1166.99998123) / 2 - 1, (80.03060185 + 710.99996642) / 2 - 1]
    )
    np.testing.assert_allclose(first.scale, (710.99996642 - 80.03060185) / 200)
    train = lsp.read_lsp(lsp_mat, split="train")
    test = lsp.read_lsp(lsp_mat, split="test")
    assert [p.image for p in train.people[:2]] == ["im0001.jpg", "im0002.jpg"]
    assert len(train.people) == len(test.people) == 1000
    assert (test.people[0].image, test.people[0].person_id) == ("im1001.jpg", 1000)


@pytest.fixture
def lspet_mat(gt_positions, tmp_path):
    joints = np.zeros((14, 3, 10))
    for number in range(10):
        joints[:, :2, number] = gt_positions[:, :, FULLY_ANNOTATED_COLUMNS[number % 3]]
        joints[:, 2, number] = 1
    joints[[0, 5], 2, 1] = 0  # image 2: ankles not annotated (LSPET flag 0)
    joints[[0, 5], :2, 1] = 0
    path = tmp_path / "lspet_joints.mat"
    savemat(path, {"joints": joints})
    return path


def test_lspet_flags_mean_annotated_and_visible(lspet_mat):
    reading = lsp.read_lsp(lspet_mat)
    assert reading.format == "lspet-joints-mat"
    assert [p.image for p in reading.people[:2]] == ["im00001.jpg", "im00002.jpg"]
    second = reading.people[1]
    assert second.visibility[0] == second.visibility[5] == 0
    np.testing.assert_array_equal(second.keypoints[[0, 5]], 0.0)
    assert (np.delete(second.visibility, [0, 5]) == 2).all()
    with pytest.raises(ConversionError, match="training images only"):
        lsp.read_lsp(lspet_mat, split="test")


def test_lspet_person_without_a_box_is_an_error_or_counted(lspet_mat, tmp_path):
    data = loadmat(lspet_mat)["joints"]
    data[1:, 2, 4] = 0  # image 5: only r_ankle annotated
    path = tmp_path / "one_joint.mat"
    savemat(path, {"joints": data})
    with pytest.raises(ConversionError, match=r"image 5 \(index 4\): fewer than two annotated"):
        lsp.read_lsp(path)
    reading = lsp.read_lsp(path, skip_invalid=True)
    assert len(reading.people) == 9
    assert reading.skipped == {"no annotated joints": ["im00005.jpg"]}


def test_lspet_cli_writes_records(lspet_mat, tmp_path):
    import cv2

    images = tmp_path / "images"
    images.mkdir()
    ok, data = cv2.imencode(".jpg", np.zeros((720, 1280, 3), np.uint8))
    for number in range(1, 11):
        (images / f"im{number:05d}.jpg").write_bytes(data.tobytes())
    prefix = tmp_path / "records" / "lspet"
    status = lsp.main(
        [str(lspet_mat), "--image-root", str(images), "--output", str(prefix), "--no-progress",
         "--examples-per-shard", "4"]
    )  # fmt: skip
    assert status == 0
    manifest = records.read_manifest(prefix)
    assert manifest["count"] == 10 and [s["count"] for s in manifest["shards"]] == [4, 4, 2]
    people = list(records.read_people(prefix))
    np.testing.assert_allclose(people[0].keypoints[0], [803.0000103, 709.99996642], atol=1e-4)
    assert people[1].visibility.tolist()[:6] == [0, 2, 2, 2, 2, 0]


def test_wrong_shape_is_an_error(tmp_path):
    path = tmp_path / "bad.mat"
    savemat(path, {"joints": np.zeros((3, 16, 5))})
    with pytest.raises(ConversionError, match=r"bad.mat: 'joints' has shape \(3, 16, 5\)"):
        lsp.read_lsp(path)
    with pytest.raises(ConversionError, match="layout 'lspet' is 14 x 3 x N"):
        lsp.read_lsp(path, layout="lspet")
