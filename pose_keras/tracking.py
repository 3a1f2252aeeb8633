"""Video: frame-to-frame tracking, One-Euro smoothing, jitter, per-frame result files.

Pure numpy (importing this module does not import TensorFlow or OpenCV). `predict`'s video
loop calls these pieces; docs/video.md explains how they fit together.

- Tracking: `next_box` makes the next frame's person box from this frame's confident
  keypoints, `is_lost` says when to find the subject again instead, and
  `assign_track_ids` keeps each person's id from frame to frame (greedy IoU matching).
- Smoothing: `OneEuroFilter` (Casiez, Roussel and Vogel, "1 Euro Filter: A Simple
  Speed-based Low-pass Filter for Noisy Input in Interactive Systems", CHI 2012) filters
  keypoints frame by frame; `smooth_keypoints` runs it over a whole (T, J, 2) trajectory.
- `mean_acceleration`: the jitter of a trajectory (mean second difference per joint).
- `write_frames_json`, `write_frames_csv` (and the readers `read_frames_json`,
  `read_frames_csv`): per-frame results with track ids and scores; `track_trajectory`
  turns them back into one person's (T, J, 2) trajectory.

A frame is a dict `{"frame": int, "time": float (s), "people": [person, ...]}` and a person
`{"track_id": int, "box": (x0, y0, x1, y1) or None, "keypoints": (J, 2) image px,
"scores": (J,)}`. Coordinates are 0-based pixel centres and boxes have pixel-edge
corners (a W x H image is the box -0.5, -0.5, W - 0.5, H - 0.5), as everywhere in
pose_keras.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import numpy as np

from pose_keras import files
from pose_keras.transforms import DEFAULT_BOX_MARGIN, box_around_points

# A joint counts as detected when its score reaches this (predict's default threshold).
DEFAULT_SCORE_THRESHOLD = 0.2

# --------------------------------------------------------------------------------------
# One-Euro filter
# --------------------------------------------------------------------------------------

# Defaults, in seconds and image px (docs/video.md, "Defaults", has the sources and the
# measurements on synthetic trajectories that chose between them):
# - min_cutoff 1 Hz and d_cutoff 1 Hz: the 1 Euro paper's starting values; d_cutoff
#   1 Hz is also MediaPipe's pose-landmark value
#   (mediapipe/modules/pose_landmark/pose_landmark_filtering.pbtxt). MediaPipe (0.1 Hz)
#   and mmpose 0.x (0.004 cycles/frame = 0.12 Hz at 30 fps) use a lower min_cutoff, but
#   with keypoint noise the speed term dominates the cutoff at rest, and on our synthetic
#   trajectories 0.1-2 Hz changed the error by 3 % or less in all but one case.
# - beta 0.3 per px: cutoff = min_cutoff + beta * |speed in px/s| (the same number in
#   px/frame units). A first-order filter lags by speed / (2 pi cutoff), so beta bounds
#   the lag of a fast joint by 1 / (2 pi beta) = 0.5 px. mmpose uses 0.7 (mmpose/core/
#   post_processing/temporal_filters/one_euro_filter.py); MediaPipe 40 per object size,
#   i.e. 0.2 per px for a 200 px person.
# - max_gap_s 0.5: a joint missing for longer than this restarts from its next detection.
DEFAULT_MIN_CUTOFF = 1.0
DEFAULT_BETA = 0.3
DEFAULT_D_CUTOFF = 1.0
DEFAULT_MAX_GAP_S = 0.5


def smoothing_factor(cutoff_hz, period_s):
    """The exponential-smoothing weight of a first-order low-pass filter (1 Euro paper, Eq. 2).

    `alpha = 1 / (1 + tau / T_e)` with the time constant `tau = 1 / (2 pi f_c)` and the
    sampling period `T_e`; the new value gets weight alpha, the previous output 1 - alpha.

    >>> round(float(smoothing_factor(1.0, 1 / 30)), 6)
    0.173171
    """
    tau = 1.0 / (2.0 * math.pi * np.asarray(cutoff_hz, dtype=np.float64))
    return 1.0 / (1.0 + tau / np.asarray(period_s, dtype=np.float64))


class OneEuroFilter:
    """The 1 Euro filter (Casiez, Roussel and Vogel, CHI 2012) for keypoints, frame by frame.

    Each coordinate of each joint is its own 1-D signal, filtered as in the paper's
    Algorithm 1: the speed `dx = (x - x_hat_prev) / T_e` is low-passed with cutoff
    `d_cutoff`, and the keypoint is low-passed with cutoff `min_cutoff + beta * |dx_hat|`,
    so a joint at rest is smoothed hard (little jitter) and a moving one lightly (little
    lag). The first detection of a joint is passed through unchanged with speed 0.

    Missing joints do not poison the state: a joint whose coordinates are not finite or
    whose score is below `score_threshold` (or NaN) is *held*: its state is left as it was
    and its input is returned unchanged (NaN stays NaN, a low-score guess is not
    smoothed). At its next detection `T_e` is the time since its last detection, so the
    filter follows a joint that moved meanwhile (a long `T_e` gives a weight near 1). A
    joint missing for more than `max_gap_s` is *reset*: it starts again from its next
    detection as if it were the first.

    Args:
        fps: float or None. Frame rate of the video; frame k is at k / fps seconds. Needed
            unless every call gives `timestamp`.
        min_cutoff: float. Cutoff at rest, Hz. Default `DEFAULT_MIN_CUTOFF` (1.0).
        beta: float. Cutoff increase per px/s of speed. Default `DEFAULT_BETA` (0.3).
        d_cutoff: float. Cutoff of the speed estimate, Hz. Default `DEFAULT_D_CUTOFF` (1.0).
        score_threshold: float. Joints scored below this are held. Default 0.2.
        max_gap_s: float. A joint missing longer than this is reset. Default 0.5.

    Examples:

    >>> smoother = OneEuroFilter(fps=30.0)
    >>> smoother(np.array([[10.0, 20.0]]), np.array([0.9])).tolist()
    [[10.0, 20.0]]
    >>> smoother(np.array([[12.0, 20.0]]), np.array([0.9])).round(3).tolist()
    [[10.926, 20.0]]
    >>> smoother(np.array([[np.nan, np.nan]]), np.array([0.0])).tolist()  # held
    [[nan, nan]]
    """

    def __init__(
        self,
        fps=None,
        min_cutoff: float = DEFAULT_MIN_CUTOFF,
        beta: float = DEFAULT_BETA,
        d_cutoff: float = DEFAULT_D_CUTOFF,
        score_threshold: float = DEFAULT_SCORE_THRESHOLD,
        max_gap_s: float = DEFAULT_MAX_GAP_S,
    ):
        checks = {"min_cutoff": min_cutoff, "d_cutoff": d_cutoff, "max_gap_s": max_gap_s}
        for name, value in checks.items():
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number, received {value!r}.")
        if not (isinstance(beta, int | float) and math.isfinite(beta) and beta >= 0):
            raise ValueError(f"beta must be a number >= 0, received {beta!r}.")
        if fps is not None and not (
            isinstance(fps, int | float) and math.isfinite(fps) and fps > 0
        ):
            raise ValueError(f"fps must be a positive number or None, received {fps!r}.")
        self.fps = None if fps is None else float(fps)
        self.min_cutoff = float(min_cutoff)
        self.beta = float(beta)
        self.d_cutoff = float(d_cutoff)
        self.score_threshold = float(score_threshold)
        self.max_gap_s = float(max_gap_s)
        self.reset()

    def reset(self):
        """Forget every joint (e.g. when the subject was lost and found again)."""
        self._frames = 0
        self._last_time = None
        self._position = None  # (J, 2) last output of each joint
        self._speed = None  # (J, 2) last filtered speed, px/s
        self._seen_at = None  # (J,) time of each joint's last detection, NaN = never

    def __call__(self, keypoints, scores=None, timestamp=None) -> np.ndarray:
        """Filter one frame.

        Args:
            keypoints: float (J, 2), image px; NaN for joints not detected.
            scores: float (J,) or None (every finite joint counts as detected).
            timestamp: float or None. Time of the frame in seconds; None = frame count /
                fps. Must increase from call to call.

        Returns:
            float64 (J, 2): the smoothed keypoints (held joints as given).
        """
        keypoints = np.array(keypoints, dtype=np.float64)
        if keypoints.ndim != 2 or keypoints.shape[1] != 2:
            raise ValueError(f"keypoints must have shape (J, 2), received {keypoints.shape}.")
        joints = len(keypoints)
        detected = np.isfinite(keypoints).all(axis=1)
        if scores is not None:
            scores = np.asarray(scores, dtype=np.float64)
            if scores.shape != (joints,):
                raise ValueError(
                    f"scores must have shape ({joints},) like keypoints, received {scores.shape}."
                )
            detected &= scores >= self.score_threshold  # NaN scores compare False
        time = self._next_time(timestamp)
        if self._position is None:
            self._position = np.zeros((joints, 2))
            self._speed = np.zeros((joints, 2))
            self._seen_at = np.full(joints, np.nan)
        elif self._position.shape[0] != joints:
            raise ValueError(
                f"keypoints must keep {self._position.shape[0]} joints from frame to frame, "
                f"received {joints}."
            )
        gap = time - self._seen_at  # NaN for joints never seen
        restart = detected & ~(gap <= self.max_gap_s)
        update = detected & ~restart
        output = keypoints.copy()
        if update.any():
            period = gap[update][:, None]
            previous = self._position[update]
            speed = (keypoints[update] - previous) / period
            speed_weight = smoothing_factor(self.d_cutoff, period)
            speed = speed_weight * speed + (1.0 - speed_weight) * self._speed[update]
            cutoff = self.min_cutoff + self.beta * np.abs(speed)
            weight = smoothing_factor(cutoff, period)
            output[update] = weight * keypoints[update] + (1.0 - weight) * previous
            self._speed[update] = speed
        self._speed[restart] = 0.0
        self._position[detected] = output[detected]
        self._seen_at[detected] = time
        return output

    def _next_time(self, timestamp) -> float:
        if timestamp is None:
            if self.fps is None:
                raise ValueError("OneEuroFilter needs fps, or a timestamp with every frame.")
            time = self._frames / self.fps
        else:
            time = float(timestamp)
            if not math.isfinite(time):
                raise ValueError(f"timestamp must be finite, received {timestamp!r}.")
        if self._last_time is not None and not time > self._last_time:
            raise ValueError(
                f"timestamps must increase: frame {self._frames} is at {time} s, the "
                f"previous one at {self._last_time} s."
            )
        self._frames += 1
        self._last_time = time
        return time


def smooth_keypoints(keypoints, scores=None, fps=None, timestamps=None, **filter_args):
    """Run a fresh `OneEuroFilter` over a whole trajectory.

    Args:
        keypoints: float (T, J, 2), image px, NaN where a joint was not detected.
        scores: float (T, J) or None.
        fps: float or None. Frame rate (needed without `timestamps`).
        timestamps: float (T,) seconds, increasing, or None (frame / fps).
        **filter_args: `min_cutoff`, `beta`, `d_cutoff`, `score_threshold`, `max_gap_s`
            of `OneEuroFilter`.

    Returns:
        float64 (T, J, 2).
    """
    keypoints = np.asarray(keypoints, dtype=np.float64)
    if keypoints.ndim != 3 or keypoints.shape[2] != 2:
        raise ValueError(f"keypoints must have shape (T, J, 2), received {keypoints.shape}.")
    if scores is not None and np.shape(scores) != keypoints.shape[:2]:
        raise ValueError(
            f"scores must have shape {keypoints.shape[:2]}, received {np.shape(scores)}."
        )
    if timestamps is not None and np.shape(timestamps) != keypoints.shape[:1]:
        raise ValueError(
            f"timestamps must have shape {keypoints.shape[:1]}, received {np.shape(timestamps)}."
        )
    smoother = OneEuroFilter(fps=fps, **filter_args)
    smoothed = np.empty_like(keypoints)
    for index in range(len(keypoints)):
        smoothed[index] = smoother(
            keypoints[index],
            None if scores is None else scores[index],
            None if timestamps is None else timestamps[index],
        )
    return smoothed


def mean_acceleration(keypoints) -> np.ndarray:
    """Jitter: the mean length of each joint's second difference, px / frame^2.

    `|x[t+1] - 2 x[t] + x[t-1]|` averaged over the frames t where all three positions
    are finite; NaN for a joint without three consecutive finite positions.

    Args:
        keypoints: float (T, J, 2).

    Returns:
        float64 (J,).

    >>> mean_acceleration([[[0.0, 0.0]], [[1.0, 0.0]], [[3.0, 0.0]], [[6.0, 0.0]]]).tolist()
    [1.0]
    """
    keypoints = np.asarray(keypoints, dtype=np.float64)
    if keypoints.ndim != 3 or keypoints.shape[2] != 2:
        raise ValueError(f"keypoints must have shape (T, J, 2), received {keypoints.shape}.")
    acceleration = keypoints[2:] - 2.0 * keypoints[1:-1] + keypoints[:-2]
    length = np.linalg.norm(acceleration, axis=-1)  # NaN where any of the three is NaN
    counts = np.isfinite(length).sum(axis=0)
    totals = np.where(np.isfinite(length), length, 0.0).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, totals / np.maximum(counts, 1), np.nan)


# --------------------------------------------------------------------------------------
# Tracking
# --------------------------------------------------------------------------------------

# The next box: the confident keypoints' extent widened by DEFAULT_BOX_MARGIN x its longer
# side on every side (`transforms.box_around_points`), the rule of the training boxes of
# DeepLabCut and labelling-tool records (`transforms.box_from_keypoints`).
DEFAULT_MIN_BOX_SIDE = 32.0
# Lost when fewer than half of the joints are confident, or their mean score is low.
DEFAULT_MIN_MEAN_SCORE = 0.3
DEFAULT_MIN_CONFIDENT_FRACTION = 0.5
DEFAULT_IOU_THRESHOLD = 0.3


def confident_joints(keypoints, scores, score_threshold=DEFAULT_SCORE_THRESHOLD) -> np.ndarray:
    """bool (J,): joints with finite coordinates and a score >= `score_threshold`."""
    keypoints = np.asarray(keypoints, dtype=np.float64)
    scores = np.asarray(scores, dtype=np.float64)
    if keypoints.ndim != 2 or keypoints.shape[1] != 2 or scores.shape != keypoints.shape[:1]:
        raise ValueError(
            f"keypoints must be (J, 2) and scores (J,), received {keypoints.shape} and "
            f"{scores.shape}."
        )
    return np.isfinite(keypoints).all(axis=1) & (scores >= score_threshold)


def next_box(
    keypoints,
    scores,
    frame_shape,
    score_threshold: float = DEFAULT_SCORE_THRESHOLD,
    margin: float = DEFAULT_BOX_MARGIN,
    min_side: float = DEFAULT_MIN_BOX_SIDE,
):
    """The person box for the next frame, from this frame's confident keypoints.

    The extent of the confident keypoints, widened by `margin` x its longer side on every
    side; each side shorter than `min_side` is widened to it about the centre; then the box
    is clipped to the frame (pixel edges, -0.5 to size - 0.5).

    Args:
        keypoints: float (J, 2), image px.
        scores: float (J,).
        frame_shape: (height, width) or (height, width, channels) of the frame.
        score_threshold: float. Default 0.2.
        margin: float. Fraction of the longer extent added on every side. Default 0.1.
        min_side: float. Smallest box side, px. Default 32.

    Returns:
        float64 (4,) box (x0, y0, x1, y1), or None when no keypoint is confident or the
        box lies outside the frame.

    >>> next_box([[100.0, 50.0], [200.0, 90.0]], [0.9, 0.8], (480, 640)).tolist()
    [90.0, 40.0, 210.0, 100.0]
    """
    if not margin >= 0 or not min_side >= 0:
        raise ValueError(f"margin and min_side must be >= 0, received {margin}, {min_side}.")
    height, width = (float(side) for side in tuple(frame_shape)[:2])
    points = np.asarray(keypoints, dtype=np.float64)[
        confident_joints(keypoints, scores, score_threshold)
    ]
    if len(points) == 0:
        return None
    box = box_around_points(points, margin)
    low, high = box[:2], box[2:]
    center = (low + high) / 2.0
    half = np.maximum((high - low) / 2.0, min_side / 2.0)
    low, high = center - half, center + half
    low = np.maximum(low, -0.5)
    high = np.minimum(high, [width - 0.5, height - 0.5])
    if not (high > low).all():
        return None
    return np.array([low[0], low[1], high[0], high[1]])


def is_lost(
    scores,
    score_threshold: float = DEFAULT_SCORE_THRESHOLD,
    min_mean_score: float = DEFAULT_MIN_MEAN_SCORE,
    min_confident_fraction: float = DEFAULT_MIN_CONFIDENT_FRACTION,
) -> bool:
    """Whether the track is lost and the subject must be found again in the next frame.

    Lost when the mean score over all joints (NaN counts as 0) is below `min_mean_score`,
    or fewer than `min_confident_fraction` of the joints reach `score_threshold`.

    >>> is_lost([0.9, 0.8, 0.1, 0.1]), is_lost([0.9, 0.1, 0.1, 0.1])
    (False, True)
    """
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if scores.size == 0:
        return True
    scores = np.where(np.isfinite(scores), scores, 0.0)
    confident = np.count_nonzero(scores >= score_threshold)
    return bool(scores.mean() < min_mean_score or confident < min_confident_fraction * scores.size)


# Box sides tried by the search when no box is given, as fractions of the frame's shorter
# side: a subject filling a quarter to a half of it (the openfield mouse: 0.2-0.35).
DEFAULT_SEARCH_FRACTIONS = (0.25, 0.35, 0.5)
DEFAULT_SEARCH_OVERLAP = 0.5


def search_boxes(
    frame_shape, fractions=DEFAULT_SEARCH_FRACTIONS, overlap: float = DEFAULT_SEARCH_OVERLAP
) -> np.ndarray:
    """Square candidate boxes tiling the frame at a few sizes, for finding a subject.

    For each side `fraction x min(height, width)` the boxes step by `(1 - overlap) x side`
    from the top-left corner, the last row and column aligned to the frame's far edges, so
    every pixel lies in a box of every size.

    Args:
        frame_shape: (height, width[, channels]).
        fractions: floats in (0, 1]. Box sides as fractions of the shorter frame side.
        overlap: float in [0, 1). Overlap of neighbouring boxes. Default 0.5.

    Returns:
        float64 (N, 4) boxes (x0, y0, x1, y1) in pixel-edge coordinates.

    >>> search_boxes((100, 200), fractions=(1.0,), overlap=0.5).tolist()
    [[-0.5, -0.5, 99.5, 99.5], [49.5, -0.5, 149.5, 99.5], [99.5, -0.5, 199.5, 99.5]]
    """
    height, width = (float(side) for side in tuple(frame_shape)[:2])
    if not 0 <= overlap < 1:
        raise ValueError(f"overlap must be in [0, 1), received {overlap}.")
    boxes = []
    for fraction in fractions:
        if not 0 < fraction <= 1:
            raise ValueError(f"search fractions must be in (0, 1], received {fraction}.")
        side = fraction * min(height, width)
        step = (1.0 - overlap) * side

        def starts(extent, side=side, step=step):
            count = max(1, int(math.ceil((extent - side) / step - 1e-9)) + 1)
            return np.minimum(np.arange(count) * step, extent - side) - 0.5

        for y0 in starts(height):
            for x0 in starts(width):
                boxes.append([x0, y0, x0 + side, y0 + side])
    return np.asarray(boxes, dtype=np.float64).reshape(-1, 4)


def find_then_refine(
    frame_shape,
    predict_boxes,
    fractions=DEFAULT_SEARCH_FRACTIONS,
    overlap: float = DEFAULT_SEARCH_OVERLAP,
    refinements: int = 1,
    score_threshold: float = DEFAULT_SCORE_THRESHOLD,
    margin: float = DEFAULT_BOX_MARGIN,
):
    """Find one subject in a frame without a box, then refine its box from its keypoints.

    Find: the network runs on every `search_boxes` candidate and the candidate with the
    highest mean joint score wins (a crop at roughly the training scale scores far higher
    than one that squeezes the whole frame). Refine (`refinements` times): `next_box`
    around the found keypoints, which matches how training boxes are made (the keypoints'
    extent plus a margin), and a second pass on it.

    Args:
        frame_shape: (height, width[, channels]).
        predict_boxes: callable(boxes (N, 4)) -> (keypoints (N, J, 2) image px, scores
            (N, J)): the network's pass on one crop per box.
        fractions, overlap: the search (`search_boxes`).
        refinements: int >= 0. Default 1.
        score_threshold, margin: for `next_box`.

    Returns:
        (box (4,), keypoints (J, 2), scores (J,)) of the subject.
    """
    candidates = search_boxes(frame_shape, fractions, overlap)
    keypoints, scores = predict_boxes(candidates)
    keypoints, scores = np.asarray(keypoints, np.float64), np.asarray(scores, np.float64)
    best = int(np.argmax(np.nan_to_num(scores, nan=0.0).mean(axis=1)))
    box, keypoints, scores = candidates[best], keypoints[best], scores[best]
    for _ in range(int(refinements)):
        refined = next_box(keypoints, scores, frame_shape, score_threshold, margin)
        if refined is None:
            break
        new_keypoints, new_scores = predict_boxes(refined[None])
        box, keypoints, scores = refined, np.asarray(new_keypoints)[0], np.asarray(new_scores)[0]
    return box, keypoints, scores


class SubjectTracker:
    """Follow one subject through a video: box from the last frame, find again when lost.

    Each `step` predicts the frame on the box made from the previous frame's raw keypoints
    (`next_box`); on the first frame, and whenever the previous frame `is_lost`, it runs
    `find_then_refine` instead. The keypoints it returns are smoothed by a `OneEuroFilter`
    when `smooth` is on (the raw ones, which steer the boxes, are returned too); the filter
    is reset when the subject is found again, so a jump to the new place is not smoothed.

    Args:
        predict_boxes: callable(boxes (N, 4)) -> (keypoints (N, J, 2), scores (N, J)) for
            the current frame (set `tracker.predict_boxes` per frame, or pass a closure).
        fps: float or None. Frame rate for the filter.
        smooth: bool. Default True.
        filter_args: dict. `OneEuroFilter` arguments (min_cutoff, beta, d_cutoff, ...).
        search: dict. `find_then_refine` arguments (fractions, overlap, refinements).
    """

    def __init__(self, fps=None, smooth=True, filter_args=None, search=None):
        self.smooth = bool(smooth)
        self.filter = OneEuroFilter(fps=fps, **(filter_args or {})) if smooth else None
        self.search = dict(search or {})
        self.previous = None  # (keypoints, scores) of the last frame, raw

    def step(self, frame_shape, predict_boxes) -> dict:
        """One frame: {"box", "keypoints" (smoothed when on), "raw_keypoints", "scores",
        "found": True when the subject was searched for in this frame}."""
        box = None
        if self.previous is not None and not is_lost(self.previous[1]):
            box = next_box(*self.previous, frame_shape)
        if box is None:
            box, keypoints, scores = find_then_refine(frame_shape, predict_boxes, **self.search)
            found = True
            if self.filter is not None:
                self.filter.reset()
        else:
            keypoints, scores = predict_boxes(box[None])
            keypoints, scores = np.asarray(keypoints)[0], np.asarray(scores)[0]
            found = False
        self.previous = (keypoints, scores)
        smoothed = self.filter(keypoints, scores) if self.filter is not None else keypoints
        return {
            "box": box,
            "keypoints": np.asarray(smoothed, dtype=np.float64),
            "raw_keypoints": np.asarray(keypoints, dtype=np.float64),
            "scores": np.asarray(scores, dtype=np.float64),
            "found": found,
        }


def box_iou(boxes_a, boxes_b) -> np.ndarray:
    """Intersection over union of every pair of boxes (x0, y0, x1, y1): (A, 4), (B, 4) -> (A, B).

    >>> box_iou([[0, 0, 2, 2]], [[1, 0, 3, 2], [5, 5, 6, 6]]).round(4).tolist()
    [[0.3333, 0.0]]
    """
    boxes_a = np.asarray(boxes_a, dtype=np.float64).reshape(-1, 4)
    boxes_b = np.asarray(boxes_b, dtype=np.float64).reshape(-1, 4)
    low = np.maximum(boxes_a[:, None, :2], boxes_b[None, :, :2])
    high = np.minimum(boxes_a[:, None, 2:], boxes_b[None, :, 2:])
    intersection = np.clip(high - low, 0.0, None).prod(axis=-1)

    def area(boxes):
        return np.clip(boxes[:, 2:] - boxes[:, :2], 0.0, None).prod(axis=-1)

    union = area(boxes_a)[:, None] + area(boxes_b)[None, :] - intersection
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, intersection / np.where(union > 0, union, 1.0), 0.0)


def assign_track_ids(
    previous_boxes, previous_ids, boxes, next_id: int, iou_threshold=DEFAULT_IOU_THRESHOLD
):
    """Give this frame's people the ids of the previous frame's people they overlap.

    Greedy matching: the pair (previous person, current person) with the highest IoU is
    matched first, then the next highest among the unmatched, and so on while the IoU is at
    least `iou_threshold` (ties: lower previous index, then lower current index). Every
    unmatched current person gets a new id, `next_id`, `next_id + 1`, ..., in order.

    Args:
        previous_boxes: float (P, 4) boxes of the previous frame (P may be 0).
        previous_ids: int (P,) their track ids.
        boxes: float (C, 4) boxes of this frame.
        next_id: int. The first id not used yet.
        iou_threshold: float. Smallest IoU that continues a track. Default 0.3.

    Returns:
        (ids int64 (C,), next_id int): the ids of this frame's people and the first id
        still unused.

    >>> ids, next_id = assign_track_ids([[0, 0, 10, 10]], [7], [[50, 50, 60, 60], [1, 0, 11, 10]], 8)
    >>> ids.tolist(), next_id
    ([8, 7], 9)
    """
    previous_boxes = np.asarray(previous_boxes, dtype=np.float64).reshape(-1, 4)
    previous_ids = np.asarray(previous_ids, dtype=np.int64).reshape(-1)
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    if len(previous_ids) != len(previous_boxes):
        raise ValueError(
            f"previous_ids must have one id per previous box ({len(previous_boxes)}), "
            f"received {len(previous_ids)}."
        )
    ids = np.full(len(boxes), -1, dtype=np.int64)
    overlaps = box_iou(previous_boxes, boxes)
    # Stable sort of the flattened matrix: equal IoUs keep row-major order.
    for flat in np.argsort(-overlaps, axis=None, kind="stable"):
        previous, current = np.unravel_index(flat, overlaps.shape)
        if overlaps[previous, current] < iou_threshold:
            break
        if ids[current] >= 0 or np.isin(previous_ids[previous], ids):
            continue
        ids[current] = previous_ids[previous]
    next_id = int(next_id)
    for current in np.flatnonzero(ids < 0):
        ids[current] = next_id
        next_id += 1
    return ids, next_id


# --------------------------------------------------------------------------------------
# Per-frame result files
# --------------------------------------------------------------------------------------


def _checked_people(frames, joints=None):
    """Validate `frames` before anything is written; yields (frame, time, person parts)."""
    checked = []
    for position, frame in enumerate(frames):
        where = f"frames[{position}]"
        try:
            index, time, people = int(frame["frame"]), float(frame["time"]), frame["people"]
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(
                f"{where}: a frame needs 'frame' (int), 'time' (s) and 'people' ({error})."
            ) from None
        rows = []
        for number, person in enumerate(people):
            who = f"{where}.people[{number}]"
            keypoints = np.asarray(person.get("keypoints"), dtype=np.float64)
            scores = np.asarray(person.get("scores"), dtype=np.float64)
            if keypoints.ndim != 2 or keypoints.shape[1] != 2:
                raise ValueError(
                    f"{who}: keypoints must have shape (J, 2), received {keypoints.shape}."
                )
            if joints is None:
                joints = len(keypoints)
            if keypoints.shape[0] != joints or scores.shape != (joints,):
                raise ValueError(
                    f"{who}: expected {joints} joints (keypoints ({joints}, 2), scores "
                    f"({joints},)), received {keypoints.shape} and {scores.shape}."
                )
            box = person.get("box")
            if box is not None:
                box = np.asarray(box, dtype=np.float64)
                if box.shape != (4,):
                    raise ValueError(f"{who}: box must be 4 numbers, received {box.shape}.")
            rows.append((int(person["track_id"]), box, keypoints, scores))
        checked.append((index, time, rows))
    return checked, joints


def _finite_or_none(value):
    value = float(value)
    return value if math.isfinite(value) else None


def _write_text_atomic(path, text: str):
    files.write_text_atomic(path, text)


def write_frames_json(path, frames, joint_names=None):
    """Write per-frame results as JSON (atomically).

    Layout: `{"joint_names": [...] or null, "frames": [{"frame", "time", "people":
    [{"track_id", "box", "keypoints": [[x, y, score], ...]}]}]}`, the per-joint
    `[x, y, score]` triples of predict's keypoints.json. NaN is written as null (JSON has
    no NaN).
    """
    joints = None if joint_names is None else len(joint_names)
    checked, _ = _checked_people(frames, joints)
    document = {
        "joint_names": None if joint_names is None else [str(name) for name in joint_names],
        "frames": [
            {
                "frame": index,
                "time": time,
                "people": [
                    {
                        "track_id": track_id,
                        "box": None if box is None else [_finite_or_none(v) for v in box],
                        "keypoints": [
                            [_finite_or_none(x), _finite_or_none(y), _finite_or_none(score)]
                            for (x, y), score in zip(keypoints, scores, strict=True)
                        ],
                    }
                    for track_id, box, keypoints, scores in people
                ],
            }
            for index, time, people in checked
        ],
    }
    _write_text_atomic(path, json.dumps(document, indent=1, allow_nan=False) + "\n")


def _as_float(value):
    return np.nan if value is None else float(value)


def read_frames_json(path):
    """Read a `write_frames_json` file: (frames, joint_names or None)."""
    path = Path(path)
    try:
        document = json.loads(path.read_text())
        joint_names = document["joint_names"]
        frames = []
        for frame in document["frames"]:
            people = []
            for person in frame["people"]:
                triples = np.array(
                    [[_as_float(value) for value in triple] for triple in person["keypoints"]],
                    dtype=np.float64,
                ).reshape(-1, 3)
                box = person["box"]
                people.append(
                    {
                        "track_id": int(person["track_id"]),
                        "box": None if box is None else np.array([_as_float(v) for v in box]),
                        "keypoints": triples[:, :2],
                        "scores": triples[:, 2],
                    }
                )
            frames.append(
                {"frame": int(frame["frame"]), "time": float(frame["time"]), "people": people}
            )
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ValueError(f"{path}: not a per-frame keypoints JSON file ({error}).") from None
    return frames, joint_names


CSV_LEADING_COLUMNS = ("frame", "time_s", "track_id", "box_x0", "box_y0", "box_x1", "box_y1")


def _cell(value, digits: int) -> str:
    return f"{value:.{digits}f}" if math.isfinite(value) else ""


def write_frames_csv(path, frames, joint_names):
    """Write per-frame results as CSV (atomically), one row per (frame, person).

    Columns: `frame, time_s, track_id, box_x0, box_y0, box_x1, box_y1`, then
    `<joint>_x, <joint>_y, <joint>_score` per joint (the joint columns of predict's
    keypoints.csv). Coordinates have 3 decimals, scores 4, times 6; NaN and a missing box
    are empty cells.
    """
    joint_names = [str(name) for name in joint_names]
    checked, _ = _checked_people(frames, len(joint_names))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    header = list(CSV_LEADING_COLUMNS)
    for name in joint_names:
        header += [f"{name}_x", f"{name}_y", f"{name}_score"]
    writer.writerow(header)
    for index, time, people in checked:
        for track_id, box, keypoints, scores in people:
            row = [index, f"{time:.6f}", track_id]
            row += [""] * 4 if box is None else [_cell(value, 3) for value in box]
            for (x, y), score in zip(keypoints, scores, strict=True):
                row += [_cell(x, 3), _cell(y, 3), _cell(score, 4)]
            writer.writerow(row)
    _write_text_atomic(path, buffer.getvalue())


def read_frames_csv(path):
    """Read a `write_frames_csv` file: (frames, joint_names). Frames without people are not
    in a CSV file, so they do not come back."""
    path = Path(path)
    try:
        rows = list(csv.reader(io.StringIO(path.read_text())))
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise ValueError(f"{path}: cannot read ({error}).") from None
    if not rows:
        raise ValueError(f"{path}: empty file, expected a header row.")
    header = rows[0]
    joint_columns = header[len(CSV_LEADING_COLUMNS) :]
    if tuple(header[: len(CSV_LEADING_COLUMNS)]) != CSV_LEADING_COLUMNS or (len(joint_columns) % 3):
        raise ValueError(
            f"{path}: header must start with {', '.join(CSV_LEADING_COLUMNS)} and then have "
            f"<joint>_x, <joint>_y, <joint>_score columns."
        )
    joint_names = [column[: -len("_x")] for column in joint_columns[::3]]
    frames, by_index = [], {}
    for line, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise ValueError(
                f"{path}, line {line}: {len(row)} cells, the header has {len(header)}."
            )
        try:
            index, time, track_id = int(row[0]), float(row[1]), int(row[2])
            values = np.array([float(cell) if cell else np.nan for cell in row[3:]])
        except ValueError as error:
            raise ValueError(f"{path}, line {line}: {error}.") from None
        box = None if not any(row[3:7]) else values[:4]
        triples = values[4:].reshape(-1, 3)
        if index not in by_index:
            by_index[index] = {"frame": index, "time": time, "people": []}
            frames.append(by_index[index])
        by_index[index]["people"].append(
            {"track_id": track_id, "box": box, "keypoints": triples[:, :2], "scores": triples[:, 2]}
        )
    return frames, joint_names


def track_trajectory(frames, track_id: int, joints: int):
    """One track's keypoints over `frames`: (keypoints (T, J, 2), scores (T, J)), NaN in the
    frames where the track is absent (T = len(frames))."""
    keypoints = np.full((len(frames), joints, 2), np.nan)
    scores = np.full((len(frames), joints), np.nan)
    for position, frame in enumerate(frames):
        for person in frame["people"]:
            if int(person["track_id"]) == int(track_id):
                keypoints[position] = person["keypoints"]
                scores[position] = person["scores"]
                break
    return keypoints, scores
