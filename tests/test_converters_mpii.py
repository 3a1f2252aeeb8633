"""MPII converters on the real files in ../shared/data/mpii.

Index conventions used below: `valid.h5` rows and `gt_valid.mat` columns are 0-based
person indices (row i = column i); joint indices follow `pose_keras.joints.MPII` (0 r_ankle
... 9 head_top, 10 r_wrist, 15 l_wrist). Source coordinates are MATLAB 1-based pixels; the
expected record values below are those numbers minus 1 (0-based pixel centres, origin at
the centre of the top-left pixel).

The official release `.mat` and `mpii_annotations.json` are not in ../shared/data: their
tests build miniature files of the documented structure (scipy.io.savemat nested struct
arrays / genJSON.m's JSON) from the real values of the 5 people in `valid.h5`,
`gt_valid.mat` and the HRNet JSON.
"""

import json

import h5py
import numpy as np
import pytest
from scipy.io import loadmat, savemat

from pose_keras import records
from tfrecords_tools import mpii
from tfrecords_tools.common import ConversionError

FIRST_FIVE = ["005808361.jpg", "052475643.jpg", "051423444.jpg", "004645041.jpg", "060754485.jpg"]
# gt_valid.mat keeps an x or y of exactly 0 for these annotated joints (row, joint), where
# valid.h5 has real coordinates (found by comparing the two files; see the converter docs).
GT_VALID_ZERO_COORDINATES = {
    (682, 0), (786, 5), (1081, 9), (1897, 11), (2636, 9), (2739, 0),
    (2763, 0), (2763, 1), (2763, 4), (2763, 5), (2775, 9), (2897, 9), (2921, 9),
}  # fmt: skip


@pytest.fixture(scope="module")
def mpii_dir(shared_data):
    return shared_data / "mpii"


@pytest.fixture(scope="module")
def h5_reading(mpii_dir):
    return mpii.read_mpii_h5(mpii_dir / "valid.h5")


@pytest.fixture(scope="module")
def gt_valid_raw(mpii_dir):
    return loadmat(mpii_dir / "gt_valid.mat")


def test_valid_h5_lines_up_one_to_one_with_gt_valid(h5_reading, gt_valid_raw):
    people = h5_reading.people
    positions = gt_valid_raw["pos_gt_src"]  # (16, 2, N), 1-based
    missing = gt_valid_raw["jnt_missing"].astype(bool)  # (16, N)
    assert len(people) == positions.shape[2] == 2958
    assert [person.person_id for person in people] == list(range(2958))
    zero_found = set()
    for column, person in enumerate(people):
        np.testing.assert_array_equal(person.visibility == 0, missing[:, column])
        for joint in np.flatnonzero(~missing[:, column]):
            expected = positions[joint, :, column] - 1.0
            if (positions[joint, :, column] == 0).any():
                zero_found.add((column, int(joint)))
                continue
            # valid.h5 truncates the release's coordinates to whole pixels.
            assert np.abs(person.keypoints[joint] - expected).max() <= 1.0, (column, joint)
        np.testing.assert_array_equal(person.keypoints[missing[:, column]], 0.0)
    assert zero_found == GT_VALID_ZERO_COORDINATES


def test_gt_valid_head_boxes_attach_to_valid_h5(mpii_dir, gt_valid_raw):
    reading = mpii.read_mpii_h5(mpii_dir / "valid.h5")
    mpii.attach_gt_valid(reading, mpii.read_gt_valid(mpii_dir / "gt_valid.mat"))
    corners = gt_valid_raw["headboxes_src"]  # [corner, (x, y), person], 1-based
    for column, person in enumerate(reading.people):
        expected = np.array([*corners[0, :, column], *corners[1, :, column]]) - 1.0
        np.testing.assert_allclose(person.head_box, expected, atol=1e-9)
    # Row 0 by hand: headboxes_src corners (914, 79) and (1031, 237).
    np.testing.assert_allclose(reading.people[0].head_box, [913, 78, 1030, 236], atol=1e-4)
    assert reading.details["gt_valid"]["joints_not_compared"] == 13


def test_valid_h5_joints_checked_by_hand(h5_reading):
    # Row 0, 005808361.jpg: part[0] = (804, 711), part[9] = (962, 80), center (966, 410.7773184),
    # scale 5.898109866728492, normalize 117.96219733; all visible.
    first = h5_reading.people[0]
    assert first.image == "005808361.jpg"
    np.testing.assert_allclose(first.keypoints[0], [803.0, 710.0])
    np.testing.assert_allclose(first.keypoints[9], [961.0, 79.0])
    np.testing.assert_allclose(first.center, [965.0, 409.7773184], atol=1e-6)
    np.testing.assert_allclose(first.scale, 5.898109866728492 / 1.25)
    np.testing.assert_allclose(first.normalize, 117.96219733, atol=1e-6)
    assert first.head_box is None
    # Row 2, 051423444.jpg: ankles (0, 5) not annotated; r_wrist (10) part (988, 294) with
    # visible 0 -> occluded; l_wrist (15) part (842, 330) visible.
    third = h5_reading.people[2]
    assert third.image == "051423444.jpg"
    assert third.visibility[0] == third.visibility[5] == 0
    np.testing.assert_array_equal(third.keypoints[[0, 5]], 0.0)
    assert third.visibility[10] == 1 and third.visibility[11] == 1
    np.testing.assert_allclose(third.keypoints[10], [987.0, 293.0])
    assert third.visibility[15] == 2
    np.testing.assert_allclose(third.keypoints[15], [841.0, 329.0])


def test_hrnet_json_agrees_with_valid_h5_rows_0_to_4(mpii_dir, h5_reading):
    reading = mpii.read_mpii_json(mpii_dir / "mmpose_test_mpii.json")
    assert reading.format == "mpii-json-hrnet"
    assert [person.image for person in reading.people] == FIRST_FIVE
    for from_json, from_h5 in zip(reading.people, h5_reading.people[:5], strict=True):
        # JSON (966, 340), scale 4.718488 -> centre (965, 340 + 15 * 4.718488 - 1).
        np.testing.assert_allclose(from_json.center, from_h5.center, atol=1e-5)
        np.testing.assert_allclose(from_json.scale, from_h5.scale, rtol=1e-6)
        np.testing.assert_array_equal(from_json.visibility > 0, from_h5.visibility > 0)
        annotated = from_json.visibility > 0
        difference = from_json.keypoints[annotated] - from_h5.keypoints[annotated]
        assert difference.min() >= 0.0 and difference.max() < 1.0  # h5 = truncated JSON
    first = reading.people[0]
    np.testing.assert_allclose(first.center, [965.0, 340.0 + 15 * 4.718488 - 1.0])
    np.testing.assert_allclose(first.keypoints[9], [961.2409, 79.0306])  # JSON [962.2409, 80.0306]
    # joints_vis carries no occlusion: row 2's occluded r_wrist is stored as visible.
    assert reading.people[2].visibility[10] == 2


def test_attach_gt_valid_rejects_people_out_of_order(mpii_dir):
    ground_truth = mpii.read_gt_valid(mpii_dir / "gt_valid.mat")
    reading = mpii.read_mpii_h5(mpii_dir / "valid.h5")
    reading.people[0], reading.people[1] = reading.people[1], reading.people[0]
    for person_id, person in enumerate(reading.people):
        person.person_id = person_id
    with pytest.raises(ConversionError, match="column 0 does not match .*row 1"):
        mpii.attach_gt_valid(reading, ground_truth)
    short = mpii.read_mpii_json(mpii_dir / "mmpose_test_mpii.json")
    with pytest.raises(ConversionError, match="has 2958 people but .* gives 5"):
        mpii.attach_gt_valid(short, ground_truth)


def test_convert_valid_h5_writes_the_five_people_whose_images_exist(mpii_dir, tmp_path, capsys):
    prefix = tmp_path / "records" / "mpii_valid"
    status = mpii.main(
        [
            str(mpii_dir / "valid.h5"),
            "--image-root", str(mpii_dir / "images"),
            "--output", str(prefix),
            "--skip-missing-images",
            "--gt-valid", str(mpii_dir / "gt_valid.mat"),
            "--no-progress",
        ]
    )  # fmt: skip
    assert status == 0
    assert "wrote 5 people" in capsys.readouterr().err
    manifest = records.read_manifest(prefix)
    assert manifest["count"] == 5
    assert manifest["skipped"]["missing image"]["count"] == 2953
    assert manifest["split"] == "valid" and manifest["format"] == "mpii-h5"
    people = list(records.read_people(prefix))
    assert [person.image_id for person in people] == FIRST_FIVE
    assert [person.person_id for person in people] == [0, 1, 2, 3, 4]
    first = people[0]
    assert first.image_encoded == (mpii_dir / "images" / "005808361.jpg").read_bytes()
    assert (first.image_format, first.image_height, first.image_width) == ("jpeg", 720, 1280)
    np.testing.assert_allclose(first.head_box, [913.0, 78.0, 1030.0, 236.0], atol=1e-4)
    np.testing.assert_allclose(first.keypoints[9], [961.0, 79.0])
    assert people[1].image_width == 854 and people[1].image_height == 480


def test_convert_without_skip_names_the_first_missing_image_and_writes_nothing(
    mpii_dir, tmp_path, capsys
):
    with h5py.File(mpii_dir / "valid.h5") as handle:
        first_missing = handle["imgname"][5].decode()
    output_folder = tmp_path / "out"
    status = mpii.main(
        [
            str(mpii_dir / "valid.h5"),
            "--image-root", str(mpii_dir / "images"),
            "--output", str(output_folder / "mpii_valid"),
        ]
    )  # fmt: skip
    error = capsys.readouterr().err
    assert status == 2
    assert error.startswith("error: ") and error.count("\n") == 1
    assert f"image {first_missing!r} not found" in error and "row 5" in error
    assert not output_folder.exists()


# --- official release .mat (reconstructed) -----------------------------------------------


def _struct_array(items, fields):
    """A MATLAB 1 x N struct array for savemat (empty fields as 0 x 0 arrays)."""
    array = np.zeros((1, len(items)), dtype=[(field, object) for field in fields])
    for index, item in enumerate(items):
        for field in fields:
            array[0, index][field] = item.get(field, np.zeros((0, 0)))
    return array


def _release_rect(json_person, positions, missing, visible, corners):
    """annorect of one real person: release objpos/scale (= HRNet JSON center/scale), points
    at gt_valid.mat's 1-based positions with valid.h5's is_visible, head rect corners."""
    points = [
        {"id": joint, "x": positions[joint, 0], "y": positions[joint, 1], "is_visible": int(visible[joint])}
        for joint in range(16)
        if not missing[joint]
    ]  # fmt: skip
    return {
        "x1": corners[0, 0], "y1": corners[0, 1], "x2": corners[1, 0], "y2": corners[1, 1],
        "annopoints": {"point": _struct_array(points, ["id", "x", "y", "is_visible"])},
        "scale": json_person["scale"],
        "objpos": {"x": json_person["center"][0], "y": json_person["center"][1]},
    }  # fmt: skip


RECT_FIELDS = ["x1", "y1", "x2", "y2", "annopoints", "scale", "objpos"]


@pytest.fixture(scope="module")
def release_files(mpii_dir, gt_valid_raw, tmp_path_factory):
    """mini_release.mat with the 5 real people at their annolist indices (6, 17, 27, 29, 30,
    annorect 0), plus: a second annotated person in image 6, a person without points in
    image 27, a test image (img_train 0) and a training image with one single-point person
    whose points have no is_visible field; and mini_valid.h5 = rows 0-4 of valid.h5."""
    folder = tmp_path_factory.mktemp("release")
    json_people = json.loads((mpii_dir / "mmpose_test_mpii.json").read_text())
    with h5py.File(mpii_dir / "valid.h5") as handle:
        rows = {key: handle[key][:5] for key in handle}
    with h5py.File(folder / "mini_valid.h5", "w") as handle:
        for key, values in rows.items():
            handle[key] = values
    annolist = [{"image": {"name": f"filler{index:03d}.jpg"}} for index in range(31)]
    img_train = np.ones((1, 31))
    for column, index in enumerate(rows["index"].astype(int)):
        rect = _release_rect(
            json_people[column],
            gt_valid_raw["pos_gt_src"][:, :, column],
            gt_valid_raw["jnt_missing"][:, column].astype(bool),
            rows["visible"][column],
            gt_valid_raw["headboxes_src"][:, :, column],
        )
        annolist[index] = {"image": {"name": FIRST_FIVE[column]}, "annorect": [rect]}
    # A second, annotated person in image 6 (a validation image): not a training person.
    extra = _release_rect(
        json_people[1], gt_valid_raw["pos_gt_src"][:, :, 1], np.zeros(16, bool),
        np.ones(16), gt_valid_raw["headboxes_src"][:, :, 1],
    )  # fmt: skip
    annolist[6]["annorect"].append(extra)
    # A person with position and scale but no points in image 27.
    annolist[27]["annorect"].append({"scale": 2.5, "objpos": {"x": 100.0, "y": 200.0}})
    # Image 1 is a test image; image 3 a training image with a one-point person.
    img_train[0, 1] = 0
    annolist[1]["annorect"] = [{"scale": 3.0, "objpos": {"x": 50.0, "y": 60.0}}]
    single_point = _struct_array([{"id": 9, "x": 21.0, "y": 31.0}], ["id", "x", "y"])
    annolist[3]["annorect"] = [
        {"x1": 10.0, "y1": 20.0, "x2": 40.0, "y2": 60.0, "scale": 1.5,
         "annopoints": {"point": single_point}, "objpos": {"x": 25.0, "y": 80.0}}
    ]  # fmt: skip
    for image in annolist:
        image["annorect"] = _struct_array(image.get("annorect", []), RECT_FIELDS)
    release = {
        "annolist": _struct_array(annolist, ["image", "annorect", "frame_sec", "vididx"]),
        "img_train": img_train,
        "version": "12",
        "single_person": np.empty((31, 1), dtype=object),
        "act": _struct_array(
            [{"cat_name": "", "act_name": "", "act_id": -1}] * 31,
            ["cat_name", "act_name", "act_id"],
        ),
        "video_list": np.empty((1, 0), dtype=object),
    }
    for index in range(31):
        release["single_person"][index, 0] = np.zeros((0, 0))
    savemat(folder / "mini_release.mat", {"RELEASE": release})
    return folder / "mini_release.mat", folder / "mini_valid.h5"


def test_release_mat_validation_split_matches_h5_json_and_gt_valid(
    release_files, mpii_dir, h5_reading
):
    mat_path, split_path = release_files
    reading = mpii.read_mpii_mat(mat_path, split="valid", split_from=split_path)
    from_json = mpii.read_mpii_json(mpii_dir / "mmpose_test_mpii.json").people
    ground_truth = mpii.read_gt_valid(mpii_dir / "gt_valid.mat")
    assert [person.image for person in reading.people] == FIRST_FIVE
    assert reading.people[2].record.startswith("annolist 27, annorect 0")
    for column, person in enumerate(reading.people):
        from_h5 = h5_reading.people[column]
        assert person.person_id == column
        np.testing.assert_allclose(person.center, from_h5.center, atol=1e-5)
        np.testing.assert_allclose(person.scale, from_h5.scale, rtol=1e-6)
        np.testing.assert_array_equal(person.visibility, from_h5.visibility)  # occlusion kept
        np.testing.assert_allclose(person.keypoints, from_json[column].keypoints, atol=1e-4)
        np.testing.assert_allclose(person.head_box, ground_truth.head_boxes[column], atol=1e-9)
    assert reading.people[2].visibility[10] == 1  # is_visible 0 -> occluded


def test_release_mat_default_and_train_splits(release_files):
    mat_path, split_path = release_files
    everyone = mpii.read_mpii_mat(mat_path)
    # Annotated people of img_train images: image 3's person, the 5, image 6's second person.
    assert [(p.image, p.record) for p in everyone.people][:3] == [
        ("filler003.jpg", "annolist 3, annorect 0"),
        ("005808361.jpg", "annolist 6, annorect 0"),
        ("005808361.jpg", "annolist 6, annorect 1"),
    ]
    assert len(everyone.people) == 7
    single = everyone.people[0]
    assert single.visibility.tolist() == [0] * 9 + [2] + [0] * 6  # no is_visible -> visible
    np.testing.assert_allclose(single.keypoints[9], [20.0, 30.0])
    np.testing.assert_allclose(single.center, [24.0, 80.0 + 15 * 1.5 - 1.0])
    np.testing.assert_allclose(single.head_box, [9.0, 19.0, 39.0, 59.0])
    train = mpii.read_mpii_mat(mat_path, split="train", split_from=split_path)
    assert [person.image for person in train.people] == ["filler003.jpg"]
    with pytest.raises(ConversionError, match="no train/validation split"):
        mpii.read_mpii_mat(mat_path, split="valid")


def test_release_mat_split_row_without_points_is_an_error_or_counted(release_files, tmp_path):
    mat_path, split_path = release_files
    broken = tmp_path / "broken_valid.h5"
    with h5py.File(split_path) as source, h5py.File(broken, "w") as target:
        for key in source:
            target[key] = source[key][:]
        target["person"][2] = 1  # annolist 27, annorect 1 has no points
    with pytest.raises(ConversionError, match="annolist 27, annorect 1 .*no annotated person"):
        mpii.read_mpii_mat(mat_path, split="valid", split_from=broken)
    reading = mpii.read_mpii_mat(mat_path, split="valid", split_from=broken, skip_invalid=True)
    assert [person.person_id for person in reading.people] == [0, 1, 3, 4]
    assert len(reading.skipped["invalid record"]) == 1


def test_release_mat_cli_converts_the_validation_people(release_files, mpii_dir, tmp_path):
    mat_path, split_path = release_files
    prefix = tmp_path / "mat_valid"
    status = mpii.main(
        [
            str(mat_path), "--split", "valid", "--split-from", str(split_path),
            "--image-root", str(mpii_dir / "images"), "--output", str(prefix), "--no-progress",
        ]
    )  # fmt: skip
    assert status == 0
    people = list(records.read_people(prefix))
    assert [person.image_id for person in people] == FIRST_FIVE
    np.testing.assert_allclose(people[0].head_box, [913.0, 78.0, 1030.0, 236.0], atol=1e-4)
    assert records.read_manifest(prefix)["split"] == "valid"


# --- mpii_annotations.json (reconstructed) -----------------------------------------------


def test_mpii_annotations_json_layout(mpii_dir, gt_valid_raw, h5_reading, tmp_path):
    """genJSON.m layout: joint_self 16 x 3 (x, y, is_visible; zero rows for unannotated)."""
    json_people = json.loads((mpii_dir / "mmpose_test_mpii.json").read_text())
    entries = []
    for column, person in enumerate(json_people):
        missing = gt_valid_raw["jnt_missing"][:, column].astype(bool)
        joint_self = np.zeros((16, 3))
        joint_self[~missing, :2] = gt_valid_raw["pos_gt_src"][~missing, :, column]
        joint_self[~missing, 2] = h5_reading.people[column].visibility[~missing] == 2
        entries.append(
            {
                "dataset": "MPI", "isValidation": 1.0, "img_paths": person["image"],
                "img_width": 1280.0, "img_height": 720.0, "objpos": person["center"],
                "joint_self": joint_self.tolist(), "scale_provided": person["scale"],
                "annolist_index": 7.0, "people_index": 1.0, "numOtherPeople": 0.0,
            }
        )  # fmt: skip
    entries.insert(1, dict(entries[0], isValidation=0.0))
    path = tmp_path / "mpii_annotations.json"
    path.write_text(json.dumps(entries))
    valid = mpii.read_mpii_json(path, split="valid")
    assert valid.format == "mpii-annotations-json"
    assert [person.image for person in valid.people] == FIRST_FIVE
    for column, person in enumerate(valid.people):
        np.testing.assert_array_equal(person.visibility, h5_reading.people[column].visibility)
        np.testing.assert_allclose(person.center, h5_reading.people[column].center, atol=1e-5)
        assert person.person_id == column
    assert valid.people[1].image_size == (720, 1280)
    assert len(mpii.read_mpii_json(path, split="train").people) == 1
    assert len(mpii.read_mpii_json(path).people) == 6
    with pytest.raises(ConversionError, match="one split already"):
        mpii.read_mpii_json(mpii_dir / "mmpose_test_mpii.json", split="valid")


def test_wrong_files_give_clear_errors(mpii_dir, tmp_path):
    with pytest.raises(ConversionError, match="pass it as --gt-valid"):
        mpii.read_mpii_mat(mpii_dir / "gt_valid.mat")
    with pytest.raises(ConversionError, match=r"'part' has shape \(1016, 11, 2\)"):
        mpii.read_mpii_h5(mpii_dir.parent / "flic" / "valid.h5")
    with pytest.raises(ConversionError, match="annotation file not found"):
        mpii.read_mpii_h5(tmp_path / "absent.h5")
    broken = tmp_path / "broken.json"
    json_people = json.loads((mpii_dir / "mmpose_test_mpii.json").read_text())
    json_people[3]["joints"] = json_people[3]["joints"][:15]
    broken.write_text(json.dumps(json_people))
    with pytest.raises(ConversionError, match=r"broken.json: entry 3: joints \[15, 2\]"):
        mpii.read_mpii_json(broken)
    reading = mpii.read_mpii_json(broken, skip_invalid=True)
    assert len(reading.people) == 4 and reading.skipped == {"invalid record": ["entry 3"]}


# --- official release .mat: the test split (reconstructed) --------------------------------


def _test_release(folder, json_people):
    """A release with three test images holding the real people 0-2 of the HRNet JSON as
    single-person rectangles (objpos and scale as in the release, no points), a group
    member that is not listed, a test image without rectangles, a listed rectangle without
    a scale, and a training image; single_person as a cell array of 1-based indices."""

    def person(column):
        entry = json_people[column]
        return {
            "scale": entry["scale"],
            "objpos": {"x": entry["center"][0], "y": entry["center"][1]},
        }

    images = [  # (name, img_train, annorects, single_person)
        ("filler000.jpg", 1, [person(3)], np.array([1.0])),
        (FIRST_FIVE[0], 0, [person(0)], np.array([1.0])),
        (FIRST_FIVE[1], 0, [{"scale": 1.0, "objpos": {"x": 10.0, "y": 10.0}}, person(1)], 2.0),
        ("no_people.jpg", 0, [], np.zeros((0, 0))),
        (FIRST_FIVE[2], 0, [person(2), {"objpos": {"x": 400.0, "y": 90.0}}], np.array([[1.0], [2.0]])),
    ]  # fmt: skip
    single_person = np.empty((len(images), 1), dtype=object)
    for index, (*_, listed) in enumerate(images):
        single_person[index, 0] = listed
    annolist = _struct_array(
        [
            {"image": {"name": name}, "annorect": _struct_array(rects, RECT_FIELDS)}
            for name, _, rects, _ in images
        ],
        ["image", "annorect"],
    )
    release = {
        "annolist": annolist,
        "img_train": np.array([[train for _, train, _, _ in images]], dtype=np.uint8),
        "single_person": single_person,
    }
    path = folder / "test_release.mat"
    savemat(path, {"RELEASE": release})
    return path


def test_release_mat_test_split_is_the_kits_single_people_without_joints(
    mpii_dir, h5_reading, tmp_path
):
    from pose_keras.submission import order_predictions, read_test_layout

    json_people = json.loads((mpii_dir / "mmpose_test_mpii.json").read_text())
    path = _test_release(tmp_path, json_people)
    loaded = loadmat(path, squeeze_me=True, struct_as_record=False)["RELEASE"]
    assert list(np.atleast_1d(loaded.img_train)) == [1, 0, 0, 0, 0]  # read back as written
    with pytest.raises(
        ConversionError, match=r"annolist 4, annorect 1 .*rectangle 2 has scale None"
    ):
        mpii.read_mpii_mat(path, split="test")
    reading = mpii.read_mpii_mat(path, split="test", skip_invalid=True)
    assert not reading.require_annotations
    assert [person.image for person in reading.people] == FIRST_FIVE[:3]
    assert [person.record for person in reading.people] == [
        "annolist 1, annorect 0", "annolist 2, annorect 1", "annolist 4, annorect 0",
    ]  # fmt: skip
    for column, person in enumerate(reading.people):
        # The crop of the annotated splits: valid.h5's centre and scale for the same people.
        np.testing.assert_allclose(person.center, h5_reading.people[column].center, atol=1e-5)
        np.testing.assert_allclose(person.scale, h5_reading.people[column].scale, rtol=1e-6)
        assert person.person_id == column and person.head_box is None
        np.testing.assert_array_equal(person.visibility, 0)
        np.testing.assert_array_equal(person.keypoints, 0.0)
    # By hand, JSON person 0: center (966, 340), scale 4.718488 -> (965, 340 + 15 s - 1).
    np.testing.assert_allclose(reading.people[0].center, [965.0, 339.0 + 15 * 4.718488])

    prefix = tmp_path / "records" / "mpii_test"
    status = mpii.main(
        [
            str(path), "--split", "test", "--image-root", str(mpii_dir / "images"),
            "--output", str(prefix), "--skip-invalid", "--no-progress",
        ]
    )  # fmt: skip
    assert status == 0
    manifest = records.read_manifest(prefix)
    assert manifest["split"] == "test" and manifest["require_annotations"] is False
    assert manifest["skipped"]["invalid record"]["count"] == 1
    people = list(records.read_people(prefix))
    assert [(p.image_id, p.person_id) for p in people] == list(
        zip(FIRST_FIVE[:3], range(3), strict=True)
    )
    assert all((p.visibility == 0).all() for p in people)
    np.testing.assert_array_equal(people[0].head_box, records.NO_HEAD_BOX)
    # person/id is the index in the submission's order; the skipped rectangle is named there.
    layout = read_test_layout(path)
    with pytest.raises(ValueError, match=f"1 of 4 .* rectangle 2 of '{FIRST_FIVE[2]}'"):
        order_predictions(
            layout,
            np.zeros((3, 16, 2)),
            [p.image_id for p in people],
            [p.person_id for p in people],
        )


def test_test_split_options_that_do_not_apply_are_named(mpii_dir, tmp_path):
    with pytest.raises(ConversionError, match="--split test reads the official release .mat"):
        mpii.read_mpii(mpii_dir / "valid.h5", split="test")
    path = _test_release(tmp_path, json.loads((mpii_dir / "mmpose_test_mpii.json").read_text()))
    with pytest.raises(ConversionError, match="not test"):
        mpii.read_mpii_mat(path, split="test", split_from=mpii_dir / "valid.h5")
