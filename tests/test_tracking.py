"""pose_keras.tracking: One-Euro smoothing, jitter, next box / lost rule, track ids, writers.

Numpy only: nothing here imports TensorFlow.
"""

import doctest
import json
import math
import subprocess
import sys

import numpy as np
import pytest

from pose_keras import tracking
from pose_keras.tracking import (
    OneEuroFilter,
    assign_track_ids,
    box_iou,
    is_lost,
    mean_acceleration,
    next_box,
    read_frames_csv,
    read_frames_json,
    smooth_keypoints,
    track_trajectory,
    write_frames_csv,
    write_frames_json,
)

FPS = 30.0
# Four joints of an 80 x 50 px figure (a mouse-sized subject in a 640 x 480 frame).
OFFSETS = np.array([[40.0, 0.0], [-40.0, 0.0], [0.0, 25.0], [0.0, -25.0]])


def rest_move_rest(seconds=10.0, distance=200.0):
    """Rest 2 s, glide `distance` px in 2 s (cosine ease, peak 157 px/s for 200 px), rest,
    glide back, rest: how a subject in a video moves. Returns truth (T, 4, 2)."""
    time = np.arange(int(seconds * FPS)) / FPS

    def ease(start):
        return (1.0 - np.cos(np.pi * np.clip((time - start) / 2.0, 0.0, 1.0))) / 2.0

    x = 200.0 + distance * (ease(2.0) - ease(6.0))
    y = 200.0 + 0.3 * distance * np.sin(np.pi * ease(2.0))
    return np.stack([x, y], axis=-1)[:, None, :] + OFFSETS


def lissajous(seconds=10.0, amplitude=100.0, period=6.0):
    """Always moving: the figure's centre on a Lissajous curve (peak 105 px/s) while it
    turns by up to 0.5 rad. Returns truth (T, 4, 2)."""
    time = np.arange(int(seconds * FPS)) / FPS
    center = np.stack(
        [
            320.0 + amplitude * np.sin(2 * np.pi * time / period),
            240.0 + 0.6 * amplitude * np.sin(4 * np.pi * time / period + 0.5),
        ],
        axis=-1,
    )
    angle = 0.5 * np.sin(np.pi * time / period)
    cos, sin = np.cos(angle)[:, None], np.sin(angle)[:, None]
    rotated_x = cos * OFFSETS[:, 0] - sin * OFFSETS[:, 1]
    rotated_y = sin * OFFSETS[:, 0] + cos * OFFSETS[:, 1]
    return center[:, None, :] + np.stack([rotated_x, rotated_y], axis=-1)


def rms_error(keypoints, truth):
    return float(np.sqrt(np.mean(np.sum((keypoints - truth) ** 2, axis=-1))))


def test_module_does_not_import_tensorflow():
    code = (
        "import sys, pose_keras.tracking; print('tensorflow' in sys.modules, 'cv2' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.split() == ["False", "False"]


def test_docstring_examples_run():
    assert doctest.testmod(tracking, optionflags=doctest.ELLIPSIS).failed == 0


# --------------------------------------------------------------------------------------
# One-Euro filter
# --------------------------------------------------------------------------------------


def test_one_euro_first_steps_match_the_papers_equations_by_hand():
    # 1 Euro paper, Algorithm 1, with T_e = 1/25 s, min_cutoff 1 Hz, beta 0.5, d_cutoff 2 Hz.
    smoother = OneEuroFilter(fps=25.0, min_cutoff=1.0, beta=0.5, d_cutoff=2.0)
    inputs = [[100.0, 50.0], [104.0, 50.0], [103.0, 52.0]]
    outputs = [smoother(np.array([point]))[0] for point in inputs]

    def alpha(cutoff):  # 1 / (1 + tau / T_e), tau = 1 / (2 pi f_c)
        return 1.0 / (1.0 + (1.0 / (2 * math.pi * cutoff)) * 25.0)

    # Frame 0 passes through. Frame 1, x: speed (104 - 100) * 25 = 100 px/s.
    speed_x = alpha(2.0) * 100.0
    x1 = 100.0 + alpha(1.0 + 0.5 * speed_x) * (104.0 - 100.0)
    # Frame 2, x: the speed is taken from the previous *output* x1.
    speed_x2 = alpha(2.0) * (103.0 - x1) * 25.0 + (1 - alpha(2.0)) * speed_x
    x2 = x1 + alpha(1.0 + 0.5 * abs(speed_x2)) * (103.0 - x1)
    # y: at rest in frame 1 (speed 0, cutoff 1 Hz), then 2 px up.
    speed_y2 = alpha(2.0) * 2.0 * 25.0
    y2 = 50.0 + alpha(1.0 + 0.5 * speed_y2) * 2.0
    np.testing.assert_allclose(outputs[0], [100.0, 50.0], rtol=0, atol=1e-12)
    np.testing.assert_allclose(outputs[1], [x1, 50.0], rtol=0, atol=1e-12)
    np.testing.assert_allclose(outputs[2], [x2, y2], rtol=0, atol=1e-12)
    # The numbers themselves, worked out on paper: alpha(2 Hz) = r / (1 + r), r = 2 pi 2 / 25
    assert alpha(2.0) == pytest.approx(0.5026548 / 1.5026548, abs=1e-7)
    assert x1 == pytest.approx(103.2667, abs=1e-4)  # cutoff 17.73 Hz, alpha 0.8167


def test_smoothing_lowers_jitter_and_does_not_raise_the_error():
    rng = np.random.default_rng(0)
    for truth, jitter_ratio in ((rest_move_rest(), 0.6), (lissajous(), 0.85)):
        noisy = truth + rng.normal(0.0, 2.0, truth.shape)
        smoothed = smooth_keypoints(noisy, fps=FPS)
        # Measured: rest-move-rest 2.83 -> 2.15 px, jitter 6.11 -> 2.99 px/frame^2;
        # Lissajous 2.81 -> 2.50 px, jitter 6.14 -> 4.54 (docs/video.md, "Measured").
        assert rms_error(smoothed, truth) <= rms_error(noisy, truth)
        assert mean_acceleration(smoothed).mean() < jitter_ratio * mean_acceleration(noisy).mean()
        # The true motion itself has almost no acceleration: the jitter is the noise's.
        assert mean_acceleration(truth).mean() < 0.3


def test_step_change_is_followed_within_two_frames_thanks_to_beta():
    rng = np.random.default_rng(1)
    truth = np.zeros((60, 1, 2))
    truth[30:, 0, 0] = 100.0  # the joint jumps 100 px at frame 30
    noisy = truth + rng.normal(0.0, 1.0, truth.shape)

    def frames_to_settle(keypoints):
        error = np.abs(keypoints[30:, 0, 0] - 100.0)
        return int(np.flatnonzero(error >= 5.0).max(initial=-1)) + 1

    assert frames_to_settle(smooth_keypoints(noisy, fps=FPS)) <= 2  # measured: 0
    # Without the speed term the same filter is a fixed 1 Hz low-pass and lags for
    # 15 frames: beta is what makes it adapt.
    assert frames_to_settle(smooth_keypoints(noisy, fps=FPS, beta=0.0)) >= 12


def test_missing_and_low_score_joints_are_held_not_smoothed():
    rng = np.random.default_rng(2)
    truth = rest_move_rest(seconds=3.0)[:, :2]
    noisy = truth + rng.normal(0.0, 2.0, truth.shape)
    scores = np.full(noisy.shape[:2], 0.9)
    observed = noisy.copy()
    observed[40:44, 0] = np.nan  # joint 0 not detected for 4 frames...
    scores[50:53, 0] = 0.05  # ...and detected with a low score for 3 more
    scores[55, 0] = np.nan

    smoothed = smooth_keypoints(observed, scores, fps=FPS)

    held = np.zeros(len(noisy), bool)
    held[[40, 41, 42, 43, 50, 51, 52, 55]] = True
    assert np.isnan(smoothed[40:44, 0]).all()
    np.testing.assert_array_equal(smoothed[50:53, 0], observed[50:53, 0])  # passed through
    np.testing.assert_array_equal(smoothed[55, 0], observed[55, 0])
    # Holding equals filtering only the frames where the joint was detected, at their
    # own times: the state skips the gap, and the next speed is taken over the gap.
    time = np.arange(len(noisy)) / FPS
    alone = smooth_keypoints(observed[~held, :1], fps=None, timestamps=time[~held])
    np.testing.assert_allclose(smoothed[~held, 0], alone[:, 0], rtol=0, atol=1e-9)
    # The other joint never notices.
    np.testing.assert_allclose(
        smoothed[:, 1], smooth_keypoints(noisy[:, 1:], fps=FPS)[:, 0], rtol=0, atol=1e-9
    )
    assert np.isfinite(smoothed[~held]).all()


def test_a_joint_missing_longer_than_max_gap_restarts_from_its_next_detection():
    keypoints = np.array([[[10.0, 10.0]], [[20.0, 10.0]], [[np.nan, np.nan]], [[90.0, 40.0]]])
    short_gap = smooth_keypoints(keypoints, fps=10.0, max_gap_s=0.25)  # gap 0.2 s: held
    long_gap = smooth_keypoints(keypoints, fps=10.0, max_gap_s=0.15)  # gap 0.2 s: reset
    np.testing.assert_array_equal(long_gap[3, 0], [90.0, 40.0])
    assert short_gap[3, 0, 0] < 90.0
    # After a reset the speed starts from zero again: the same as a fresh filter.
    fresh = OneEuroFilter(fps=10.0)
    fresh(np.array([[90.0, 40.0]]))
    expected = fresh(np.array([[91.0, 40.0]]))
    again = OneEuroFilter(fps=10.0, max_gap_s=0.15)
    for frame in [*keypoints, np.array([[91.0, 40.0]])]:
        last = again(frame)
    np.testing.assert_allclose(last, expected, rtol=0, atol=1e-12)


def test_timestamps_give_the_same_result_as_fps_and_must_increase():
    rng = np.random.default_rng(3)
    keypoints = lissajous(seconds=1.0) + rng.normal(0.0, 1.0, (30, 4, 2))
    by_fps = smooth_keypoints(keypoints, fps=25.0)
    by_time = smooth_keypoints(keypoints, timestamps=np.arange(30) / 25.0)
    np.testing.assert_allclose(by_fps, by_time, rtol=0, atol=1e-9)
    smoother = OneEuroFilter()
    smoother(keypoints[0], timestamp=1.0)
    with pytest.raises(ValueError, match="timestamps must increase"):
        smoother(keypoints[1], timestamp=1.0)
    with pytest.raises(ValueError, match="needs fps"):
        OneEuroFilter()(keypoints[0])


def test_bad_filter_arguments_and_shapes_are_refused_with_their_names():
    with pytest.raises(ValueError, match="min_cutoff must be a positive number"):
        OneEuroFilter(fps=30.0, min_cutoff=0.0)
    with pytest.raises(ValueError, match="beta must be a number >= 0"):
        OneEuroFilter(fps=30.0, beta=float("nan"))
    with pytest.raises(ValueError, match="fps must be a positive number"):
        OneEuroFilter(fps=-1.0)
    smoother = OneEuroFilter(fps=30.0)
    smoother(np.zeros((4, 2)))
    with pytest.raises(ValueError, match="keep 4 joints"):
        smoother(np.zeros((3, 2)))
    with pytest.raises(ValueError, match=r"scores must have shape \(4,\)"):
        smoother(np.zeros((4, 2)), np.zeros(3))
    with pytest.raises(ValueError, match=r"shape \(T, J, 2\)"):
        smooth_keypoints(np.zeros((5, 2)), fps=30.0)


def test_mean_acceleration_is_the_mean_second_difference_ignoring_nans():
    keypoints = np.array(
        [
            [[0.0, 0.0], [0.0, 0.0]],
            [[1.0, 0.0], [np.nan, np.nan]],
            [[2.0, 0.0], [0.0, 0.0]],
            [[3.0, 4.0], [0.0, 0.0]],
            [[4.0, 4.0], [0.0, 0.0]],
        ]
    )
    # Joint 0: second differences (0, 0), (0, 4), (0, -4) -> mean length 8/3.
    # Joint 1: only frames 2-4 are three finite positions in a row -> 0.
    np.testing.assert_allclose(mean_acceleration(keypoints), [8.0 / 3.0, 0.0], atol=1e-12)
    assert np.isnan(mean_acceleration(np.full((2, 1, 2), 1.0))).all()  # too short


# --------------------------------------------------------------------------------------
# Tracking
# --------------------------------------------------------------------------------------


def test_next_box_is_the_confident_extent_plus_margin():
    keypoints = np.array([[100.0, 50.0], [200.0, 90.0], [400.0, 400.0], [np.nan, np.nan]])
    scores = np.array([0.9, 0.8, 0.1, 0.9])  # joint 2 is not confident, joint 3 is NaN
    box = next_box(keypoints, scores, (480, 640), margin=0.1, min_side=32.0)
    # Extent 100..200 x 50..90, longer side 100 -> 10 px on every side.
    np.testing.assert_allclose(box, [90.0, 40.0, 210.0, 100.0], rtol=0, atol=1e-12)
    # The same rule as the training boxes of the DeepLabCut converter.
    from tfrecords_tools.deeplabcut import box_from_keypoints

    np.testing.assert_allclose(box, box_from_keypoints(keypoints[:2], [2, 2], 0.1), atol=1e-12)


def test_next_box_has_a_minimum_side_and_is_clipped_to_the_frame():
    one_joint = next_box([[10.0, 300.0]], [0.9], (480, 640, 3), min_side=40.0)
    # A single joint: a 40 px square about it, clipped at the left edge (-0.5).
    np.testing.assert_allclose(one_joint, [-0.5, 280.0, 30.0, 320.0], rtol=0, atol=1e-12)
    thin = next_box([[600.0, 100.0], [650.0, 104.0]], [0.5, 0.5], (480, 640), min_side=32.0)
    # Extent 50 x 4 -> 60 x 14 with the margin -> height widened to 32, right edge 639.5.
    np.testing.assert_allclose(thin, [595.0, 86.0, 639.5, 118.0], rtol=0, atol=1e-12)
    assert next_box([[10.0, 10.0]], [0.1], (480, 640)) is None  # nothing confident
    assert next_box([[900.0, 900.0]], [0.9], (480, 640)) is None  # outside the frame


def test_is_lost_when_mean_score_is_low_or_too_few_joints_are_confident():
    assert not is_lost([0.9, 0.8, 0.7, 0.6])
    assert is_lost([0.9, 0.9, 0.1, 0.1], min_mean_score=0.6)  # mean 0.5
    assert is_lost([0.9, 0.1, 0.1, 0.1], min_mean_score=0.0)  # 1 of 4 confident
    assert not is_lost([0.9, 0.9, 0.1, 0.1], min_mean_score=0.3)  # 2 of 4, mean 0.5
    assert is_lost([0.9, 0.9, np.nan, np.nan], min_mean_score=0.5)  # NaN counts as 0
    assert is_lost([])


def test_box_iou_exact_values():
    iou = box_iou(
        [[0, 0, 10, 10], [0, 0, 0, 10]], [[5, 0, 15, 10], [0, 0, 10, 10], [20, 20, 30, 30]]
    )
    # 50 / 150; identical; disjoint. A degenerate box overlaps nothing.
    np.testing.assert_allclose(iou, [[1 / 3, 1.0, 0.0], [0.0, 0.0, 0.0]], rtol=0, atol=1e-12)


def test_track_ids_follow_people_and_new_people_get_new_ids():
    previous = [[0, 0, 100, 200], [300, 0, 400, 200]]
    # The same two people, listed in the other order and moved a little, plus a newcomer.
    boxes = [[305, 5, 405, 205], [500, 0, 600, 200], [2, 0, 102, 200]]
    ids, next_id = assign_track_ids(previous, [4, 9], boxes, next_id=10)
    assert ids.tolist() == [9, 10, 4] and next_id == 11
    # Two current boxes on one previous person: the better overlap keeps the id.
    ids, next_id = assign_track_ids(
        [[0, 0, 100, 100]], [1], [[50, 0, 150, 100], [5, 0, 105, 100]], 2
    )
    assert ids.tolist() == [2, 1] and next_id == 3
    # Below the IoU threshold a track is not continued.
    ids, _ = assign_track_ids([[0, 0, 100, 100]], [1], [[80, 0, 180, 100]], 2, iou_threshold=0.3)
    assert ids.tolist() == [2]
    # The first frame: everyone is new.
    ids, next_id = assign_track_ids(np.zeros((0, 4)), [], [[0, 0, 1, 1], [5, 5, 6, 6]], 0)
    assert ids.tolist() == [0, 1] and next_id == 2
    with pytest.raises(ValueError, match="one id per previous box"):
        assign_track_ids(previous, [1], boxes, 0)


# --------------------------------------------------------------------------------------
# Per-frame result files
# --------------------------------------------------------------------------------------

JOINTS = ("snout", "leftear", "rightear", "tailbase")


def example_frames():
    return [
        {
            "frame": 0,
            "time": 0.0,
            "people": [
                {
                    "track_id": 0,
                    "box": [10.0, 20.0, 110.25, 90.5],
                    "keypoints": np.array(
                        [[12.5, 30.125], [40.0, 41.0], [np.nan, np.nan], [99.0, 80.0]]
                    ),
                    "scores": np.array([0.91, 0.5, np.nan, 0.25]),
                }
            ],
        },
        {"frame": 1, "time": 1 / 30, "people": []},
        {
            "frame": 2,
            "time": 2 / 30,
            "people": [
                {
                    "track_id": 0,
                    "box": None,
                    "keypoints": np.array([[13.0, 31.0], [41.0, 42.0], [50.0, 51.0], [98.0, 81.0]]),
                    "scores": np.array([0.9, 0.6, 0.7, 0.3]),
                },
                {
                    "track_id": 3,
                    "box": [300.0, 200.0, 400.0, 300.0],
                    "keypoints": np.array(
                        [[301.0, 201.0], [302.0, 202.0], [303.0, 203.0], [304.0, 204.0]]
                    ),
                    "scores": np.array([0.8, 0.8, 0.8, 0.8]),
                },
            ],
        },
    ]


def assert_same_people(read_frames, frames, atol):
    assert [frame["frame"] for frame in read_frames] == [frame["frame"] for frame in frames]
    for got, expected in zip(read_frames, frames, strict=True):
        assert got["time"] == pytest.approx(expected["time"], abs=1e-6)
        assert len(got["people"]) == len(expected["people"])
        for person, original in zip(got["people"], expected["people"], strict=True):
            assert person["track_id"] == original["track_id"]
            if original["box"] is None:
                assert person["box"] is None
            else:
                np.testing.assert_allclose(person["box"], original["box"], rtol=0, atol=atol)
            np.testing.assert_allclose(
                person["keypoints"], original["keypoints"], rtol=0, atol=atol
            )
            np.testing.assert_allclose(person["scores"], original["scores"], rtol=0, atol=atol)


def test_json_round_trip_keeps_every_frame_and_writes_nan_as_null(tmp_path):
    path = tmp_path / "frames.json"
    write_frames_json(path, example_frames(), JOINTS)
    document = json.loads(path.read_text())  # strict JSON: no NaN tokens
    assert document["frames"][0]["people"][0]["keypoints"][2] == [None, None, None]
    frames, joint_names = read_frames_json(path)
    assert joint_names == list(JOINTS)
    assert_same_people(frames, example_frames(), atol=0.0)
    assert [p.name for p in tmp_path.iterdir()] == ["frames.json"]  # no temporary left


def test_csv_has_one_row_per_frame_and_person_and_round_trips(tmp_path):
    path = tmp_path / "frames.csv"
    write_frames_csv(path, example_frames(), JOINTS)
    lines = path.read_text().splitlines()
    assert lines[0].split(",")[:10] == [
        "frame", "time_s", "track_id", "box_x0", "box_y0", "box_x1", "box_y1",
        "snout_x", "snout_y", "snout_score",
    ]  # fmt: skip
    assert len(lines) == 1 + 3  # frame 0: one person, frame 1: none, frame 2: two
    assert lines[1] == (
        "0,0.000000,0,10.000,20.000,110.250,90.500,12.500,30.125,0.9100,"
        "40.000,41.000,0.5000,,,,99.000,80.000,0.2500"
    )
    frames, joint_names = read_frames_csv(path)
    assert joint_names == list(JOINTS)
    without_empty = [frame for frame in example_frames() if frame["people"]]
    assert_same_people(frames, without_empty, atol=5e-4)


def test_trajectory_of_a_track_has_nan_where_it_is_absent(tmp_path):
    keypoints, scores = track_trajectory(example_frames(), 0, len(JOINTS))
    assert keypoints.shape == (3, 4, 2) and scores.shape == (3, 4)
    assert np.isnan(keypoints[1]).all() and np.isnan(scores[1]).all()
    np.testing.assert_array_equal(keypoints[2, 0], [13.0, 31.0])


def test_bad_frames_are_refused_before_anything_is_written(tmp_path):
    path = tmp_path / "frames.csv"
    path.write_text("earlier results\n")
    frames = example_frames()
    frames[2]["people"][1]["scores"] = np.zeros(3)
    with pytest.raises(ValueError, match=r"frames\[2\]\.people\[1\]: expected 4 joints"):
        write_frames_csv(path, frames, JOINTS)
    with pytest.raises(ValueError, match=r"frames\[2\]\.people\[1\]"):
        write_frames_json(tmp_path / "frames.json", frames)
    with pytest.raises(ValueError, match=r"frames\[0\]: a frame needs"):
        write_frames_json(tmp_path / "frames.json", [{"frame": 0, "people": []}])
    assert path.read_text() == "earlier results\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["frames.csv"]


def test_unreadable_result_files_name_the_file_and_line(tmp_path):
    path = tmp_path / "frames.csv"
    write_frames_csv(path, example_frames(), JOINTS)
    lines = path.read_text().splitlines()
    path.write_text("\n".join([lines[0], lines[1], "x" + lines[2]]) + "\n")
    with pytest.raises(ValueError, match=r"frames\.csv, line 3"):
        read_frames_csv(path)
    bad_json = tmp_path / "frames.json"
    bad_json.write_text('{"frames": [')
    with pytest.raises(ValueError, match=r"frames\.json: not a per-frame keypoints JSON"):
        read_frames_json(bad_json)


# --------------------------------------------------------------------------------------
# Finding a subject without a box, and following it
# --------------------------------------------------------------------------------------


def subject_network(truth_keypoints, subject_box):
    """A stand-in for the network's pass on crops, written as a pure function: a crop that
    frames the subject at about its size gives its keypoints with high scores; others give
    the crop centre with a score that falls with the mismatch."""
    from pose_keras.tracking import box_iou

    def predict_boxes(boxes):
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        overlap = box_iou(boxes, np.asarray(subject_box)[None])[:, 0]
        centres = (boxes[:, :2] + boxes[:, 2:]) / 2
        good = overlap > 0.3
        keypoints = np.where(
            good[:, None, None], truth_keypoints[None], centres[:, None, :].repeat(4, 1)
        )
        scores = np.repeat(overlap[:, None], 4, axis=1)
        return keypoints, scores

    return predict_boxes


def test_search_boxes_cover_the_frame_at_every_size():
    from pose_keras.tracking import search_boxes

    boxes = search_boxes((480, 640), fractions=(0.25, 0.5), overlap=0.5)
    sides = boxes[:, 2] - boxes[:, 0]
    np.testing.assert_allclose(sorted(set(np.round(sides, 6))), [120.0, 240.0])
    for side in (120.0, 240.0):
        tiles = boxes[np.isclose(sides, side)]
        assert tiles[:, 0].min() == -0.5 and tiles[:, 1].min() == -0.5
        np.testing.assert_allclose(tiles[:, 2].max(), 639.5)
        np.testing.assert_allclose(tiles[:, 3].max(), 479.5)
    # 120 px at stride 60: 10 columns x 7 rows; 240 px at stride 120: 5 x 3.
    assert len(boxes) == 10 * 7 + 5 * 3
    with pytest.raises(ValueError, match="overlap"):
        search_boxes((10, 10), overlap=1.0)


def test_find_then_refine_locates_the_subject_and_frames_it_by_its_keypoints():
    from pose_keras.tracking import box_iou, find_then_refine, next_box

    truth = np.array([[400.0, 300.0], [430.0, 280.0], [430.0, 320.0], [500.0, 300.0]])
    subject_box = next_box(truth, np.ones(4), (480, 640))
    box, keypoints, scores = find_then_refine((480, 640), subject_network(truth, subject_box))
    np.testing.assert_allclose(keypoints, truth)
    np.testing.assert_allclose(box, subject_box)  # the refinement: keypoints' extent + margin
    assert box_iou(box[None], subject_box[None])[0, 0] == pytest.approx(1.0)
    assert scores.min() == pytest.approx(1.0)


def test_subject_tracker_follows_and_finds_again_after_a_jump():
    from pose_keras.tracking import SubjectTracker, next_box

    base = np.array([[100.0, 100.0], [130.0, 80.0], [130.0, 120.0], [200.0, 100.0]])
    tracker = SubjectTracker(fps=30.0, smooth=False)
    found = []
    for frame in range(12):
        # Moves 3 px a frame, then jumps across the frame at frame 8.
        truth = base + [3.0 * frame, 0.0] + ([300.0, 250.0] if frame >= 8 else 0.0)
        subject_box = next_box(truth, np.ones(4), (480, 640))
        result = tracker.step((480, 640), subject_network(truth, subject_box))
        found.append(result["found"])
        if frame not in (8,):  # the jump frame itself is predicted on the stale box
            np.testing.assert_allclose(result["raw_keypoints"], truth, atol=1e-9)
    # Searched on the first frame, followed by boxes from keypoints, searched again once
    # the stale box lost the subject (frame 8 scored low, frame 9 searched).
    assert found == [True] + [False] * 8 + [True, False, False]


def test_subject_tracker_smooths_but_steers_by_the_raw_keypoints():
    from pose_keras.tracking import SubjectTracker, mean_acceleration, next_box

    rng = np.random.default_rng(4)
    base = np.array([[100.0, 100.0], [130.0, 80.0], [130.0, 120.0], [200.0, 100.0]])
    tracker = SubjectTracker(fps=30.0, smooth=True)
    raw, smoothed = [], []
    for frame in range(60):
        truth = base + [2.0 * frame, 0.0]
        noisy = truth + rng.normal(0, 2.0, truth.shape)
        subject_box = next_box(truth, np.ones(4), (480, 640))
        result = tracker.step((480, 640), subject_network(noisy, subject_box))
        raw.append(result["raw_keypoints"])
        smoothed.append(result["keypoints"])
    assert (
        mean_acceleration(np.stack(smoothed)).mean() < 0.7 * mean_acceleration(np.stack(raw)).mean()
    )
