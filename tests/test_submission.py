"""The MPII test-set submission: read back with scipy.io and walked as evaluatePCKh.m does.

The release `.mat` is not in ../shared/data, so the test builds a miniature `RELEASE` of
the documented structure (annolist with image.name and annorect.objpos, img_train,
single_person as a cell array of 1-based rectangle indices) with scipy.io.savemat.
"""

import numpy as np
import pytest
from scipy.io import loadmat, savemat

from pose_keras import submission
from pose_keras.joints import MPII


def _structs(rows, fields):
    array = np.zeros((1, len(rows)), dtype=[(field, object) for field in fields])
    for column, row in enumerate(rows):
        for field in fields:
            array[0, column][field] = row.get(field, np.zeros((0, 0)))
    return array


def _rect(x=None, y=None):
    return {"objpos": np.zeros((0, 0)) if x is None else {"x": float(x), "y": float(y)}}


# Five images: 1 and 4 are training images; the test images are 2 (a single person in
# rectangle 1, a group member in 2), 3 (no rectangle) and 5 (single people in 1 and 3,
# rectangle 2 without objpos).
IMAGES = [
    ("train_a.jpg", 1, [_rect(10, 20)], np.array([1.0])),
    ("test_a.jpg", 0, [_rect(300, 200), _rect(120, 80)], np.array([1.0])),
    ("test_b.jpg", 0, [], np.zeros((0, 0))),
    ("train_b.jpg", 1, [_rect(5, 5)], np.array([1.0])),
    ("test_c.jpg", 0, [_rect(50, 60), _rect(), _rect(400, 90)], np.array([[1.0], [3.0]])),
]
SCORED = [("test_a.jpg", 0), ("test_c.jpg", 0), ("test_c.jpg", 2)]


@pytest.fixture(scope="module")
def release_path(tmp_path_factory):
    annolist = _structs(
        [
            {"image": {"name": name}, "annorect": _structs(rects, ["objpos"])}
            for name, _, rects, _ in IMAGES
        ],
        ["image", "annorect"],
    )
    single_person = np.empty((len(IMAGES), 1), dtype=object)
    for index, (*_, listed) in enumerate(IMAGES):
        single_person[index, 0] = listed
    release = {
        "annolist": annolist,
        "img_train": np.array([[train for _, train, _, _ in IMAGES]], dtype=np.uint8),
        "single_person": single_person,
    }
    path = tmp_path_factory.mktemp("release") / "mini_release.mat"
    savemat(path, {"RELEASE": release})
    return path


def predictions(count):
    """Distinct 0-based predictions per person and joint (x = 100 p + j, y = 10 j + 0.25)."""
    people, joints = np.meshgrid(np.arange(count), np.arange(MPII.num_joints), indexing="ij")
    return np.stack([100.0 * people + joints, 10.0 * joints + 0.25], axis=-1)


def kit_matrix(pred, layout):
    """evaluatePCKh.m's path: flatten_annolist (every rectangle with a non-empty objpos,
    kept when listed in single_person), then annolist2matrix (points looked up by id)."""
    rows = []
    for image, entry in enumerate(np.atleast_1d(pred)):
        for rect_index, rect in enumerate(np.atleast_1d(entry.annorect)):
            objpos = rect.objpos
            if not hasattr(objpos, "_fieldnames"):
                continue
            if rect_index not in layout.single_person[image]:
                continue
            joints = np.full((MPII.num_joints, 2), np.nan)
            for point in np.atleast_1d(rect.annopoints.point):
                joints[int(point.id)] = (point.x, point.y)
            rows.append(joints)
    return np.stack(rows)


def test_test_layout_follows_release_order_and_single_person(release_path):
    layout = submission.read_test_layout(release_path)
    assert layout.image_names == ["test_a.jpg", "test_b.jpg", "test_c.jpg"]
    assert layout.single_person == [(0,), (), (0, 2)]
    assert layout.objpos_one_based[2] == [(50.0, 60.0), None, (400.0, 90.0)]
    assert [(layout.image_names[i], r) for i, r in layout.people()] == SCORED


def test_submission_round_trips_through_scipy_in_the_kit_layout(release_path, tmp_path):
    layout = submission.read_test_layout(release_path)
    keypoints = predictions(len(SCORED))
    path = submission.write_submission(tmp_path / "pred_keypoints_mpii.mat", layout, keypoints)

    raw = loadmat(path)["pred"]  # struct_as_record: the MATLAB struct fields
    assert raw.shape == (1, 3) and raw.dtype.names == ("image", "annorect")
    pred = loadmat(path, squeeze_me=True, struct_as_record=False)["pred"]
    assert len(pred) == len(layout.image_names)  # assert(length(annolist_test) == length(pred))
    assert [entry.image.name for entry in pred] == layout.image_names
    first = pred[0].annorect[0].annopoints.point
    assert [point.id for point in first] == list(range(16))  # 0-based MPII joint ids
    # MATLAB 1-based pixels: the 0-based predictions plus one.
    assert first[9].x == pytest.approx(keypoints[0, 9, 0] + 1.0, abs=1e-9)
    assert first[9].y == pytest.approx(keypoints[0, 9, 1] + 1.0, abs=1e-9)
    # The group member keeps its objpos but gets no points; the empty image has no rect.
    assert pred[0].annorect[1].objpos.x == 120.0 and np.size(pred[0].annorect[1].annopoints) == 0
    assert np.size(pred[1].annorect) == 0
    assert np.size(pred[2].annorect[1].objpos) == 0
    # Walked as the kit walks it, the file gives back every prediction in order.
    np.testing.assert_allclose(kit_matrix(pred, layout), keypoints + 1.0, atol=1e-9)


def test_records_are_put_in_release_order_and_mismatches_are_named(release_path):
    layout = submission.read_test_layout(release_path)
    keypoints = predictions(3)
    shuffled = [2, 0, 1]
    ordered = submission.order_predictions(
        layout,
        keypoints[shuffled],
        ["images/test_c.jpg", "test_a.jpg", "test_c.jpg"],
        np.array(shuffled),
    )
    np.testing.assert_array_equal(ordered, keypoints)
    with pytest.raises(ValueError, match=r"rectangle 1 of 'test_a.jpg'.*record's image is 'x.jpg'"):
        submission.order_predictions(
            layout, keypoints, ["x.jpg", "test_c.jpg", "test_c.jpg"], [0, 1, 2]
        )
    with pytest.raises(
        ValueError,
        match="1 of 3 single-person test rectangles have no record, "
        "the first: rectangle 3 of 'test_c.jpg'",
    ):
        submission.order_predictions(layout, keypoints[:2], ["test_a.jpg", "test_c.jpg"], [0, 1])
    with pytest.raises(ValueError, match=r"expected predictions of shape \(3, 16, 2\)"):
        submission.write_submission("unused.mat", layout, keypoints[:2])


def test_a_file_that_is_not_the_release_is_named(tmp_path):
    path = tmp_path / "gt_valid.mat"
    savemat(path, {"pos_gt_src": np.zeros((16, 2, 1))})
    with pytest.raises(ValueError, match=f"{path}: no 'RELEASE' struct"):
        submission.read_test_layout(path)
    with pytest.raises(ValueError, match="MPII release file not found"):
        submission.read_test_layout(tmp_path / "missing.mat")


def test_command_predicts_test_records_into_the_submission(
    shared_data, tiny_model_path, tmp_path, capsys
):
    """Three real MPII images as an unlabelled 'test split' (no joint annotated), a random
    tiny model: the file holds exactly `predict_split`'s keypoints + 1, in release order."""
    import cv2
    import h5py

    from pose_keras.evaluate import predict_split
    from pose_keras.records import PersonRecord, ShardedWriter
    from pose_keras.runs import load_run

    mpii = shared_data / "mpii"
    with h5py.File(mpii / "valid.h5", "r") as handle:
        rows = [
            (handle["imgname"][row].decode(), handle["center"][row] - 1.0, handle["scale"][row])
            for row in range(3)
        ]
    # Release layout: image 0 one single person; image 1 a group member then a single
    # person (rectangle 2); image 2 one single person.
    images = [
        (rows[0][0], 0, [_rect(*rows[0][1])], np.array([1.0])),
        (rows[1][0], 0, [_rect(10, 10), _rect(*rows[1][1])], np.array([2.0])),
        (rows[2][0], 0, [_rect(*rows[2][1])], np.array([1.0])),
    ]
    annolist = _structs(
        [{"image": {"name": n}, "annorect": _structs(r, ["objpos"])} for n, _, r, _ in images],
        ["image", "annorect"],
    )
    single_person = np.empty((3, 1), dtype=object)
    for index, (*_, listed) in enumerate(images):
        single_person[index, 0] = listed
    release = tmp_path / "release.mat"
    savemat(
        release,
        {
            "RELEASE": {
                "annolist": annolist,
                "img_train": np.zeros((1, 3)),
                "single_person": single_person,
            }
        },
    )
    prefix = tmp_path / "records" / "mpii_test"
    # Written out of order: the command puts people back by person/id.
    with ShardedWriter(prefix, MPII, "mpii") as writer:
        for person_id in (2, 0, 1):
            name, center, scale = rows[person_id]
            height, width = cv2.imread(str(mpii / "images" / name)).shape[:2]
            writer.write(
                PersonRecord(
                    image_encoded=(mpii / "images" / name).read_bytes(),
                    image_format="jpeg",
                    image_height=height,
                    image_width=width,
                    image_id=name,
                    dataset="mpii",
                    person_id=person_id,
                    center=center,
                    scale=scale / 1.25,
                    keypoints=np.zeros((16, 2)),
                    visibility=np.zeros(16, dtype=np.int64),
                )
            )
    output = tmp_path / "pred_keypoints_mpii.mat"
    arguments = ["--model", str(tiny_model_path), "--data", str(prefix)]
    arguments += ["--release", str(release), "--output", str(output)]
    assert submission.main(arguments) == 0, capsys.readouterr().err
    assert "3 people on 3 test images" in capsys.readouterr().out

    expected, _ = predict_split(
        load_run(tiny_model_path), str(prefix), progress=False, require_annotations=False
    )
    by_person = expected.keypoints[np.argsort(expected.person_ids)]
    layout = submission.read_test_layout(release)
    pred = loadmat(output, squeeze_me=True, struct_as_record=False)["pred"]
    np.testing.assert_allclose(kit_matrix(pred, layout), by_person + 1.0, atol=1e-6)
    assert layout.image_names == [name for name, *_ in images]

    # The opt-in is the submission's alone: scoring refuses unlabelled records and their
    # predictions.
    from pose_keras import evaluate
    from pose_keras.inference import score_model_predictions

    with pytest.raises(ValueError, match="record 0: all joints missing"):
        predict_split(load_run(tiny_model_path), str(prefix), progress=False)
    with pytest.raises(ValueError, match="require_annotations=False"):
        score_model_predictions(expected, MPII)
    capsys.readouterr()
    status = evaluate.main(["--model", str(tiny_model_path), "--data", str(prefix), "--quiet"])
    assert status == 2 and "all joints missing" in capsys.readouterr().err
