"""PCK / PCKh by the official protocols: hand-made cases and the real MPII / FLIC files."""

import json
import subprocess
import sys

import h5py
import numpy as np
import pytest
import scipy.io

from pose_keras import metrics
from pose_keras.joints import FLIC, LSP, MPII, JointSet

MPII_SCORED = [0, 1, 2, 3, 4, 5, 8, 9, 10, 11, 12, 13, 14, 15]


def test_importing_metrics_and_decode_does_not_import_tensorflow():
    code = (
        "import sys; import pose_keras.metrics, pose_keras.decode, pose_keras.evaluate, pose_keras.predict; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('tensorflow', 'keras', 'jax', 'torch')))"
    )
    output = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert output.strip() == "[]"


# ---------------------------------------------------------------------------------------
# Hand-made cases
# ---------------------------------------------------------------------------------------


def one_person(offset_xy, head_box=(0.0, 0.0, 30.0, 40.0)):
    truth = np.full((1, 16, 2), 100.0)
    predicted = truth + np.asarray(offset_xy, dtype=np.float64)
    return predicted, truth, metrics.head_sizes([head_box])


def test_head_size_is_sc_bias_times_diagonal():
    sizes = metrics.head_sizes([[0.0, 0.0, 30.0, 40.0], [10.0, 20.0, 16.0, 28.0]])
    # 0.6 * 50 and 0.6 * 10.
    np.testing.assert_allclose(sizes, [30.0, 6.0], rtol=0, atol=1e-12)
    assert metrics.head_sizes([[-1.0, -1.0, -1.0, -1.0]])[0] == 0.0


def test_distance_exactly_at_the_threshold_counts_as_correct():
    # 0.6 * 50 == 30.0 exactly in float64 and sqrt(9^2 + 12^2) == 15.0 exactly, so the
    # normalised distance is exactly 0.5: correct with the kit's `<=`, wrong with `<`.
    predicted, truth, normalizers = one_person([9.0, 12.0])
    distances = metrics.normalized_distances(predicted, truth, np.ones((1, 16), bool), normalizers)
    assert (distances == 0.5).all()
    table = metrics.pck_table(predicted, truth, np.full((1, 16), 2), normalizers, MPII, 0.5)
    assert table["mean"] == 100.0
    assert set(table["groups"].values()) == {100.0}
    # Just beyond the boundary: wrong everywhere.
    predicted, truth, normalizers = one_person([9.0, 12.0 + 1e-9])
    table = metrics.pck_table(predicted, truth, np.full((1, 16), 2), normalizers, MPII, 0.5)
    assert table["mean"] == 0.0


def test_missing_joints_are_excluded_from_every_count():
    truth = np.full((2, 16, 2), 50.0)
    predicted = truth.copy()
    visibility = np.full((2, 16), 2)
    # Person 1 misses its wrists (10, 15); their predictions are far off but must not count.
    visibility[1, [10, 15]] = 0
    predicted[1, [10, 15]] += 1000.0
    # Person 0's right wrist is wrong: the wrist column is 1 correct of 2 right wrists...
    predicted[0, 10] += 1000.0
    normalizers = np.array([10.0, 10.0])
    table = metrics.pck_table(predicted, truth, visibility, normalizers, MPII, 0.5)
    assert table["counts"]["r_wrist"] == 1 and table["counts"]["l_wrist"] == 1
    assert table["joints"]["r_wrist"] == 0.0 and table["joints"]["l_wrist"] == 100.0
    assert table["groups"]["Wrist"] == 50.0
    # Pooled Mean: 14 + 12 scored joints, one wrong.
    assert table["mean"] == pytest.approx(100.0 * 25 / 26, abs=1e-12)


def test_person_without_annotations_changes_nothing():
    rng = np.random.default_rng(0)
    truth = rng.uniform(0, 200, (3, 16, 2))
    predicted = truth + rng.normal(0, 4, truth.shape)
    visibility = np.full((3, 16), 2)
    normalizers = np.array([20.0, 25.0, 30.0])
    reference = metrics.pck_table(predicted, truth, visibility, normalizers, MPII, 0.5)
    # A fourth person with every joint missing and garbage predictions.
    truth4 = np.concatenate([truth, np.zeros((1, 16, 2))])
    predicted4 = np.concatenate([predicted, np.full((1, 16, 2), 1e6)])
    visibility4 = np.concatenate([visibility, np.zeros((1, 16), int)])
    table = metrics.pck_table(
        predicted4, truth4, visibility4, np.append(normalizers, 30.0), MPII, 0.5
    )
    assert table["people"] == 3 == reference["people"]
    assert table["mean"] == reference["mean"]
    assert table["groups"] == reference["groups"]
    # A person whose head box is absent (normaliser 0) is not scored either.
    table = metrics.pck_table(
        predicted4, truth4, np.full((4, 16), 2), np.append(normalizers, 0.0), MPII, 0.5
    )
    assert table["people"] == 3 and table["mean"] == reference["mean"]


def test_missing_prediction_counts_as_wrong():
    predicted, truth, normalizers = one_person([0.0, 0.0])
    predicted[0, 12] = np.nan  # r_shoulder
    table = metrics.pck_table(predicted, truth, np.full((1, 16), 2), normalizers, MPII, 0.5)
    assert table["joints"]["r_shoulder"] == 0.0
    assert table["groups"]["Shoulder"] == 50.0
    assert table["mean"] == pytest.approx(100.0 * 13 / 14, abs=1e-12)


def test_columns_average_their_joints_but_mean_is_pooled():
    # 4 people; head top annotated for all 4 (all correct), upper neck for 1 (wrong):
    # Head = (0 + 100) / 2 = 50, while pooled over those 5 instances it would be 80.
    truth = np.zeros((4, 16, 2))
    predicted = truth.copy()
    visibility = np.zeros((4, 16), int)
    visibility[:, 9] = 2
    visibility[0, 8] = 2
    predicted[0, 8] = [100.0, 0.0]
    table = metrics.pck_table(predicted, truth, visibility, np.full(4, 10.0), MPII, 0.5)
    assert table["groups"]["Head"] == 50.0
    assert table["mean"] == 80.0
    assert np.isnan(table["groups"]["Ankle"])  # never annotated


def test_head_column_official_averages_neck_and_head_top_head_top_only_takes_head_top():
    # 4 people: head top annotated for all 4, 3 correct (75 %); upper neck annotated for 2,
    # both correct (100 %). Official (genTablePCK.m): (100 + 75) / 2 = 87.5. HRNet/mmpose:
    # head top alone, 75.0. The pooled Mean does not depend on the column: 5 of 6 = 83.33.
    truth = np.zeros((4, 16, 2))
    predicted = truth.copy()
    visibility = np.zeros((4, 16), int)
    visibility[:, 9] = 2
    visibility[:2, 8] = 2
    predicted[3, 9] = [6.0, 0.0]  # 0.6 of the 10 px normaliser: wrong at 0.5
    normalizers = np.full(4, 10.0)
    official = metrics.evaluate_keypoints(predicted, truth, visibility, normalizers, MPII)
    head_top = metrics.evaluate_keypoints(
        predicted, truth, visibility, normalizers, MPII, head_column="head-top"
    )
    assert official.columns["Head"] == 87.5 and head_top.columns["Head"] == 75.0
    assert official.columns["Mean"] == head_top.columns["Mean"] == pytest.approx(500 / 6)
    assert official.head_column == "official" and head_top.to_dict()["head_column"] == "head-top"
    # The Head curve follows the column: at 0.6 and above head top is all correct.
    assert head_top.group_curves["Head"][50] == 75.0 and official.group_curves["Head"][50] == 87.5
    table = metrics.pck_table(predicted, truth, visibility, normalizers, MPII, 0.5, "head-top")
    assert table["groups"]["Head"] == 75.0
    assert dict(metrics.table_groups(LSP, "head-top"))["Head"] == (13,)
    with pytest.raises(ValueError, match="'Head' column with a 'head_top' joint; joint set 'flic'"):
        metrics.table_groups(FLIC, "head-top")
    with pytest.raises(ValueError, match="head_column must be one of .* received 'neck'"):
        metrics.evaluate_keypoints(
            predicted, truth, visibility, normalizers, MPII, head_column="neck"
        )


def test_curve_auc_and_mean_at_point_one_on_a_step():
    # Every joint off by 0.405 of the normaliser: wrong below 0.405, right from 0.41 on.
    truth = np.zeros((2, 16, 2))
    predicted = truth + [0.405 * 10.0, 0.0]
    evaluation = metrics.evaluate_keypoints(
        predicted, truth, np.full((2, 16), 2), np.full(2, 10.0), MPII
    )
    assert evaluation.thresholds.shape == (51,)
    expected = np.where(np.arange(51) >= 41, 100.0, 0.0)
    np.testing.assert_array_equal(evaluation.curve, expected)
    # Trapezoids: 0 up to 0.40, a ramp of 0.01 * 100 / 2, then 0.09 * 100; over 0.5.
    assert evaluation.auc == pytest.approx((0.5 + 9.0) / 0.5, abs=1e-9)
    assert evaluation.columns["Mean"] == 100.0
    assert evaluation.columns["Mean@0.1"] == 0.0
    assert list(evaluation.columns) == [
        "Head", "Shoulder", "Elbow", "Wrist", "Hip", "Knee", "Ankle", "Mean", "Mean@0.1",
    ]  # fmt: skip


def test_area_under_a_linear_curve_is_its_mean():
    thresholds = metrics.curve_thresholds(0.5)
    assert metrics.area_under_curve(thresholds, 200.0 * thresholds) == pytest.approx(50.0)


def test_torso_normalisers_follow_the_flic_and_lsp_kits():
    keypoints = np.zeros((1, 14, 2))
    keypoints[0, 9] = [0.0, 0.0]  # LSP l_shoulder
    keypoints[0, 2] = [30.0, 40.0]  # LSP r_hip
    keypoints[0, 8] = [100.0, 0.0]  # r_shoulder: not part of the normaliser
    sizes = metrics.torso_sizes(keypoints, np.full((1, 14), 2), LSP)
    assert sizes.tolist() == [50.0]
    flic = np.zeros((1, 11, 2))
    flic[0, 0] = [0.0, 0.0]  # l_shoulder
    flic[0, 7] = [6.0, 8.0]  # r_hip
    assert metrics.torso_sizes(flic, np.full((1, 11), 2), FLIC).tolist() == [10.0]
    # Unannotated torso joint: the record's own normaliser is used instead.
    visibility = np.full((1, 11), 2)
    visibility[0, 7] = 0
    sizes = metrics.person_normalizers(FLIC, flic, visibility, record_normalizers=[42.0])
    assert sizes.tolist() == [42.0]


def test_flic_table_has_elbow_wrist_and_pooled_mean():
    # Integer pixels so that the torso is exactly 100 px and 20 px exactly 0.2 of it.
    truth = np.random.default_rng(1).integers(0, 300, (5, 11, 2)).astype(np.float64)
    truth[:, 7] = truth[:, 0] + [60.0, 80.0]
    predicted = truth.copy()
    predicted[:, 1] += [20.0, 0.0]  # l_elbow at 0.2: correct (<=)
    predicted[:, 4] += [20.5, 0.0]  # r_elbow beyond
    normalizers = metrics.person_normalizers(FLIC, truth, np.full((5, 11), 2))
    evaluation = metrics.evaluate_keypoints(
        predicted, truth, np.full((5, 11), 2), normalizers, FLIC
    )
    assert evaluation.protocol == "PCK@0.2"
    assert evaluation.columns == {"Elbow": 50.0, "Wrist": 100.0, "Mean": 75.0}
    assert evaluation.thresholds[-1] == pytest.approx(0.2)


def test_occlusion_subset_and_inferable_joints():
    truth = np.zeros((2, 16, 2))
    predicted = truth.copy()
    visibility = np.full((2, 16), 2)
    visibility[0, 11] = 1  # r_elbow occluded, shoulder and wrist visible: inferable
    visibility[1, 11] = 1
    visibility[1, 10] = 1  # ...but person 1's wrist is occluded too
    predicted[1, 11] = [100.0, 0.0]
    evaluation = metrics.evaluate_keypoints(predicted, truth, visibility, np.full(2, 10.0), MPII)
    assert evaluation.occlusion == {
        "pck": pytest.approx(100.0 * 2 / 3),
        "count": 3,
        "inferable_pck": 100.0,
        "inferable_count": 1,
    }


def test_markdown_and_dataframe_have_the_paper_layout():
    truth = np.zeros((1, 16, 2))
    evaluation = metrics.evaluate_keypoints(truth, truth, np.full((1, 16), 2), np.ones(1), MPII)
    header = evaluation.to_markdown("ours").splitlines()[0]
    assert header == "| | Head | Shoulder | Elbow | Wrist | Hip | Knee | Ankle | Mean | Mean@0.1 |"
    frame = evaluation.to_dataframe("ours")
    assert list(frame.columns)[:8] == [
        "Head", "Shoulder", "Elbow", "Wrist", "Hip", "Knee", "Ankle", "Mean",
    ]  # fmt: skip
    assert frame.loc["ours", "Mean"] == 100.0


# ---------------------------------------------------------------------------------------
# The real MPII validation ground truth
# ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mpii_truth(shared_data):
    data = scipy.io.loadmat(shared_data / "mpii" / "gt_valid.mat")
    keypoints = data["pos_gt_src"].transpose(2, 0, 1).astype(np.float64)  # 1-based
    annotated = data["jnt_missing"].T == 0
    boxes = data["headboxes_src"].transpose(2, 0, 1).reshape(-1, 4)
    return keypoints, annotated, boxes


def matlab_protocol_table(predicted, truth, annotated, boxes, threshold=0.5):
    """An independent re-implementation of the kit, step by step as its .m files do it."""
    people = truth.shape[0]
    # annolist2matrix: 14 joints, ids 0-5, 10-15, 8, 9; NaN where the GT point is absent.
    order = [0, 1, 2, 3, 4, 5, 10, 11, 12, 13, 14, 15, 8, 9]
    gt = np.full((2, 14, people), np.nan)
    pred = np.full((2, 14, people), np.nan)
    for person in range(people):
        for column, joint in enumerate(order):
            if annotated[person, joint]:
                gt[:, column, person] = truth[person, joint]
            pred[:, column, person] = predicted[person, joint]
    pred[np.isnan(pred)] = np.inf
    # util_get_head_size / getDistPCKh.
    dist = np.full((14, people), np.nan)
    for person in range(people):
        x1, y1, x2, y2 = boxes[person]
        head = 0.6 * np.linalg.norm([x2 - x1, y2 - y1])
        for column in range(14):
            delta = pred[:, column, person] - gt[:, column, person]
            dist[column, person] = np.sqrt(np.sum(delta**2)) / head
    # computePCK: per joint, then upper body (7:12), then everything.
    pck = np.zeros(16)
    for column in range(14):
        d = dist[column]
        pck[column] = 100 * np.mean(d[~np.isnan(d)] <= threshold)
    every = dist.reshape(-1)
    pck[15] = 100 * np.mean(every[~np.isnan(every)] <= threshold)
    # genTablePCK (1-based indices in the .m file).
    return {
        "Head": (pck[12] + pck[13]) / 2,
        "Shoulder": (pck[8] + pck[9]) / 2,
        "Elbow": (pck[7] + pck[10]) / 2,
        "Wrist": (pck[6] + pck[11]) / 2,
        "Hip": (pck[2] + pck[3]) / 2,
        "Knee": (pck[1] + pck[4]) / 2,
        "Ankle": (pck[0] + pck[5]) / 2,
        "Mean": pck[15],
    }


def evaluate_mpii(predicted, mpii_truth, visibility=None):
    truth, annotated, boxes = mpii_truth
    return metrics.evaluate_keypoints(
        predicted,
        truth,
        annotated if visibility is None else visibility,
        metrics.head_sizes(boxes),
        MPII,
    )


def test_ground_truth_as_prediction_scores_100(mpii_truth):
    evaluation = evaluate_mpii(mpii_truth[0], mpii_truth)
    assert evaluation.people == 2958
    assert set(evaluation.columns.values()) == {100.0}
    # Distance 0 <= every threshold, 0 included: the whole curve is 100.
    assert evaluation.auc == 100.0


@pytest.mark.parametrize(("fraction", "expected"), [(0.4, 100.0), (0.6, 0.0)])
def test_every_joint_shifted_by_a_fraction_of_its_normaliser(mpii_truth, fraction, expected):
    truth, annotated, boxes = mpii_truth
    angles = np.random.default_rng(2).uniform(0, 2 * np.pi, truth.shape[:2])
    radius = fraction * metrics.head_sizes(boxes)[:, None]
    shift = np.stack([np.cos(angles), np.sin(angles)], axis=-1) * radius[..., None]
    evaluation = evaluate_mpii(truth + shift, mpii_truth)
    assert set(evaluation.columns.values()) == {expected} | {evaluation.columns["Mean@0.1"]}
    assert evaluation.columns["Mean@0.1"] == 0.0
    # The curve steps from 0 to 100 at the fraction (at the fraction itself rounding decides).
    below = evaluation.thresholds < fraction - 1e-6
    above = evaluation.thresholds > fraction + 1e-6
    assert (evaluation.curve[below] == 0.0).all() and (evaluation.curve[above] == 100.0).all()


def test_per_joint_shifts_give_the_analytic_table(mpii_truth):
    truth, annotated, boxes = mpii_truth
    # Right-side joints and the head top off by 0.6 (wrong), all others by 0.3 (right).
    wrong = np.zeros(16, bool)
    wrong[[0, 1, 2, 10, 11, 12, 9]] = True
    fraction = np.where(wrong, 0.6, 0.3)
    shift = np.zeros_like(truth)
    shift[..., 1] = fraction[None, :] * metrics.head_sizes(boxes)[:, None]
    evaluation = evaluate_mpii(truth + shift, mpii_truth)
    expected_columns = {
        "Head": 50.0, "Shoulder": 50.0, "Elbow": 50.0, "Wrist": 50.0,
        "Hip": 50.0, "Knee": 50.0, "Ankle": 50.0,
    }  # fmt: skip
    for column, value in expected_columns.items():
        assert evaluation.columns[column] == value
    counts = annotated.sum(axis=0)
    right = [joint for joint in MPII_SCORED if not wrong[joint]]
    expected_mean = 100.0 * counts[right].sum() / counts[MPII_SCORED].sum()
    assert evaluation.columns["Mean"] == pytest.approx(expected_mean, abs=1e-12)
    assert evaluation.counts["head_top"] == counts[9]


def test_perturbed_predictions_match_an_independent_matlab_protocol(mpii_truth):
    truth, annotated, boxes = mpii_truth
    rng = np.random.default_rng(3)
    predicted = truth + rng.normal(0.0, 8.0, truth.shape)
    predicted[rng.random(truth.shape[:2]) < 0.01] = np.nan  # some missing predictions
    evaluation = evaluate_mpii(predicted, mpii_truth)
    reference = matlab_protocol_table(predicted, truth, annotated, boxes)
    for column, value in reference.items():
        assert evaluation.columns[column] == pytest.approx(value, abs=1e-9), column
    low = matlab_protocol_table(predicted, truth, annotated, boxes, threshold=0.1)
    assert evaluation.columns["Mean@0.1"] == pytest.approx(low["Mean"], abs=1e-9)
    # A sanity range: 8 px of noise is mostly within half a head segment, not all of it.
    assert 50.0 < evaluation.columns["Mean"] < 100.0


def test_occlusion_subset_on_the_real_visibility(mpii_truth, shared_data):
    truth, annotated, boxes = mpii_truth
    with h5py.File(shared_data / "mpii" / "valid.h5", "r") as handle:
        visible = handle["visible"][:]
    visibility = np.where(annotated, np.where(visible > 0, 2, 1), 0)
    occluded = (visibility == 1) & np.isin(np.arange(16), MPII_SCORED)[None, :]
    # Occluded joints off by 0.6 head segments, visible ones exact.
    predicted = truth.copy()
    predicted[..., 0] += np.where(occluded, 0.6 * metrics.head_sizes(boxes)[:, None], 0.0)
    evaluation = evaluate_mpii(predicted, mpii_truth, visibility)
    assert evaluation.occlusion["count"] == occluded.sum() > 1000
    assert evaluation.occlusion["pck"] == 0.0
    scored = annotated[:, MPII_SCORED].sum()
    expected = 100.0 * (scored - occluded.sum()) / scored
    assert evaluation.columns["Mean"] == pytest.approx(expected, abs=1e-12)


def test_flic_h5_normalize_is_the_other_torso_diagonal(shared_data):
    """The stacked-hourglass FLIC `normalize` is |r_shoulder - l_hip| (parts 3 and 6), not
    the l_shoulder - r_hip diagonal of Sapp & Taskar that pose_keras scores with."""
    with h5py.File(shared_data / "flic" / "valid.h5", "r") as handle:
        parts = handle["part"][:]
        normalize = handle["normalize"][:]
    other = np.linalg.norm(parts[:, 3] - parts[:, 6], axis=-1)
    ours = metrics.torso_sizes(parts, np.full(parts.shape[:2], 2), FLIC)
    assert np.median(np.abs(normalize - other)) == 0.0
    assert np.mean(np.abs(normalize - other) < 1e-6) > 0.9
    assert np.median(np.abs(normalize - ours)) > 1.0
    # PCK@0.2 with our normaliser: 0.19 torso off is right, 0.21 is wrong.
    for fraction, expected in ((0.19, 100.0), (0.21, 0.0)):
        predicted = parts + [0.0, 1.0] * (fraction * ours)[:, None, None]
        evaluation = metrics.evaluate_keypoints(
            predicted, parts, np.full(parts.shape[:2], 2), ours, FLIC
        )
        assert evaluation.columns == {"Elbow": expected, "Wrist": expected, "Mean": expected}


# ---------------------------------------------------------------------------------------
# Any joint set: mean pixel error (DeepLabCut's RMSE) and PCK at the box diagonal
# ---------------------------------------------------------------------------------------

MOUSE = JointSet(
    name="openfield",
    names=("snout", "leftear", "rightear", "tailbase"),
    flip_pairs=((1, 2),),
    limbs=(),
)


def mouse_case():
    """Two mice; errors are 3-4-5 and 6-8-10 triangles, exact in float64."""
    truth = np.array(
        [
            [[100.0, 100.0], [110.0, 90.0], [90.0, 90.0], [100.0, 200.0]],
            [[300.0, 300.0], [310.0, 290.0], [290.0, 290.0], [300.0, 400.0]],
        ]
    )
    offsets = np.array(
        [
            [[3.0, 4.0], [0.0, 0.0], [6.0, 8.0], [0.0, 1.0]],
            [[0.0, 0.0], [-6.0, -8.0], [500.0, 500.0], [0.0, 2.0]],
        ]
    )
    visibility = np.array([[2, 2, 2, 2], [2, 1, 0, 2]])  # mouse 1's right ear not labelled
    return truth + offsets, truth, visibility


def test_mean_pixel_error_pools_annotated_joints_and_names_each_joint():
    predicted, truth, visibility = mouse_case()
    result = metrics.mean_pixel_error(predicted, truth, visibility, MOUSE)
    # Errors: mouse 0: 5, 0, 10, 1; mouse 1: 0, 10, (not labelled), 2.
    assert result["count"] == 7 and result["missing_predictions"] == 0
    assert result["mean_px_error"] == pytest.approx(28.0 / 7.0, abs=1e-12)
    assert result["per_joint_px_error"] == pytest.approx(
        {"snout": 2.5, "leftear": 5.0, "rightear": 10.0, "tailbase": 1.5}, abs=1e-12
    )


def test_missing_predictions_are_left_out_like_deeplabcut_nanmean_and_counted():
    predicted, truth, visibility = mouse_case()
    predicted[0, 0] = np.nan  # snout of mouse 0 not predicted
    result = metrics.mean_pixel_error(predicted, truth, visibility, MOUSE)
    assert result["count"] == 6 and result["missing_predictions"] == 1
    assert result["mean_px_error"] == pytest.approx(23.0 / 6.0, abs=1e-12)
    assert result["per_joint_px_error"]["snout"] == 0.0
    nothing = metrics.mean_pixel_error(predicted, truth, np.zeros_like(visibility), MOUSE)
    assert np.isnan(nothing["mean_px_error"]) and nothing["count"] == 0
    assert all(np.isnan(value) for value in nothing["per_joint_px_error"].values())


def test_score_cutoff_keeps_predictions_at_or_above_it():
    predicted, truth, visibility = mouse_case()
    scores = np.array([[0.9, 0.5, 0.1, 0.4], [0.4, 0.8, 0.9, 0.39]])
    result = metrics.mean_pixel_error(predicted, truth, visibility, MOUSE, scores, 0.4)
    # Kept: mouse 0 snout 5, leftear 0, tailbase 1 (0.4 >= 0.4); mouse 1 snout 0, leftear 10.
    assert result["count_cutoff"] == 5
    assert result["mean_px_error_cutoff"] == pytest.approx(16.0 / 5.0, abs=1e-12)
    assert result["mean_px_error"] == pytest.approx(4.0, abs=1e-12)
    with pytest.raises(ValueError, match="needs the prediction scores"):
        metrics.mean_pixel_error(predicted, truth, visibility, MOUSE, score_cutoff=0.4)


def test_box_pck_threshold_is_a_fraction_of_the_diagonal_inclusive():
    predicted, truth, visibility = mouse_case()
    # Boxes 120 x 160 -> diagonal 200 exactly; 0.05 x 200 = 10 px: an error of 10 is correct.
    boxes = [[40.0, 40.0, 160.0, 200.0], [240.0, 240.0, 360.0, 400.0]]
    diagonals = metrics.box_diagonals(boxes)
    np.testing.assert_allclose(diagonals, [200.0, 200.0], rtol=0, atol=1e-12)
    result = metrics.box_pck(predicted, truth, visibility, diagonals, MOUSE)
    assert result["pck"] == 100.0 and result["protocol"] == "PCK@0.05 box diagonal"
    assert result["counts"] == {"snout": 2, "leftear": 2, "rightear": 1, "tailbase": 2}
    # At 0.04 (8 px) the two 10 px errors are wrong: 5 of 7 correct.
    tight = metrics.box_pck(predicted, truth, visibility, diagonals, MOUSE, fraction=0.04)
    assert tight["pck"] == pytest.approx(500.0 / 7.0, abs=1e-12)
    assert tight["per_joint"] == pytest.approx(
        {"snout": 100.0, "leftear": 50.0, "rightear": 0.0, "tailbase": 100.0}, abs=1e-12
    )
    # A person without a usable box is not scored.
    unscored = metrics.box_pck(predicted, truth, visibility, [200.0, 0.0], MOUSE, 0.04)
    assert unscored["pck"] == 75.0 and unscored["counts"]["snout"] == 1


def test_pixel_metrics_uses_the_records_square_box_and_is_json_ready():
    predicted, truth, visibility = mouse_case()
    # Scale 0.5 -> a 100 px square box, diagonal 141.42 px; 0.05 of it is 7.07 px.
    np.testing.assert_allclose(
        metrics.scale_box_diagonals([0.5]), [100.0 * np.sqrt(2.0)], rtol=0, atol=1e-12
    )
    result = metrics.pixel_metrics(predicted, truth, visibility, [0.5, 0.5], MOUSE)
    assert result["mean_px_error"] == pytest.approx(4.0, abs=1e-12)
    assert result["pck_box"] == pytest.approx(500.0 / 7.0, abs=1e-12)
    assert result["pck_box_fraction"] == 0.05
    absent = metrics.pixel_metrics(predicted, truth, np.zeros_like(visibility), [0.5, 0.5], MOUSE)
    assert absent["mean_px_error"] is None and absent["pck_box"] is None
    json.dumps(absent, allow_nan=False)


def test_pixel_errors_and_normalized_distances_check_shapes_alike_and_keep_their_misses():
    truth = np.zeros((2, 3, 2))
    predicted = np.ones((2, 3, 2))
    predicted[0, 1] = np.nan
    annotated = np.ones((2, 3), bool)
    for function, extra in (
        (metrics.pixel_errors, ()),
        (metrics.normalized_distances, ([1.0, 1.0],)),
    ):
        with pytest.raises(ValueError, match=r"must both have shape \(people, joints, 2\)"):
            function(predicted[:, :2], truth, annotated, *extra)
        with pytest.raises(ValueError, match=r"annotated must have shape \(2, 3\)"):
            function(predicted, truth, annotated[:, :2], *extra)
    # A missing prediction: no pixel error (NaN), but a wrong joint for PCK (+inf).
    assert np.isnan(metrics.pixel_errors(predicted, truth, annotated)[0, 1])
    assert metrics.normalized_distances(predicted, truth, annotated, [1.0, 1.0])[0, 1] == np.inf
