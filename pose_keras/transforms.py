"""Crop geometry: the one convention every stage uses, in pure numpy.

Frames and units (used in names throughout the package):

- *image px*: 0-based pixel centres of the original image, x to the right, y down. Pixel
  (i, j) covers [i - 0.5, i + 0.5] x [j - 0.5, j + 0.5]. Sources in MATLAB's 1-based frame
  (MPII, FLIC, LSP) are shifted by -1 when converted.
- *input px*: the same, in the `input_size` x `input_size` person crop fed to the network.
- *heatmap px*: the same, in the `heatmap_size` x `heatmap_size` output (input / 4), and
  at GT/s in a `heatmap_size / s` map.

A crop is a square box of side `box_px` image pixels around a person centre. Its edges map
to the crop's pixel *edges*, so pixel areas are preserved: a box [c - b/2, c + b/2] maps
to [-0.5, S - 0.5]. The same edge alignment relates input, heatmap and downsampled
heatmap frames: a map of size `n` and a map of size `m` over the same crop satisfy
`(u + 0.5) / n == (v + 0.5) / m`, which is exactly what area down-sampling does.

Affine matrices are 2x3 (`[A | t]`), mapping column vectors `[x, y, 1]`; they are the
matrices `cv2.warpAffine` expects (source -> destination, integer pixel centres).

Person scale follows MPII: `scale * 200` image px is about the person's height; the crop box
is that size times `box_scale` (`DataConfig.box_scale`, 1.25 as in Newell et al. and the
common PyTorch repos; the one place that default is written).
"""

from __future__ import annotations

import numpy as np

from pose_keras.config import DataConfig

# MPII convention: a person of scale s is about 200 * s pixels tall.
PIXELS_PER_SCALE = 200.0
# Box coordinates beyond this many px from the origin are refused: no camera frame is that
# large, and the crop and drawing arithmetic (OpenCV's fixed-point corners) overflows.
MAX_BOX_COORDINATE = 1e6


def box_px_from_scale(scale, box_scale=DataConfig.box_scale):
    """Side of the square crop box, in image px, for an MPII-style person scale."""
    return np.asarray(scale, dtype=np.float64) * PIXELS_PER_SCALE * box_scale


def center_and_scale_from_box(box_xyxy):
    """Centre (image px) and MPII-style scale of a person box.

    The scale treats the box's longer side as the "person height" of the MPII convention
    (`scale = longer_side / 200`), so a crop made with `box_px_from_scale(scale, 1.25)`
    holds the whole box with the same 25% margin that MPII crops get. Use it for person
    boxes from detectors, COCO `bbox` fields or whole images.
    """
    x0, y0, x1, y1 = (float(v) for v in box_xyxy)
    if not (x1 > x0 and y1 > y0):
        raise ValueError(f"A box needs x1 > x0 and y1 > y0, received {list(box_xyxy)}.")
    center = np.array([(x0 + x1) / 2.0, (y0 + y1) / 2.0])
    return center, max(x1 - x0, y1 - y0) / PIXELS_PER_SCALE


def crop_matrix(center, box_px, output_size, rotation_deg=0.0, flip=False):
    """2x3 affine matrix from image px to crop px.

    Args:
        center: (x, y) of the crop centre, image px.
        box_px: float. Side of the square box, image px.
        output_size: int. Side of the crop, px.
        rotation_deg: float. The person turns counter-clockwise by this angle in the crop
            (as displayed, y down). Defaults to 0.
        flip: bool. Mirror the crop left-right after rotating. Joint identities must then
            be swapped with `JointSet.flip_index`. Defaults to False.

    Returns:
        float64 array (2, 3).
    """
    if box_px <= 0:
        raise ValueError(f"box_px must be positive, received {box_px}.")
    theta = np.deg2rad(rotation_deg)
    cos, sin = np.cos(theta), np.sin(theta)
    zoom = output_size / float(box_px)
    linear = zoom * np.array([[cos, sin], [-sin, cos]])
    half = (output_size - 1) / 2.0
    translation = np.array([half, half]) - linear @ np.asarray(center, dtype=np.float64)
    matrix = np.concatenate([linear, translation[:, None]], axis=1)
    if flip:
        mirror = np.array([[-1.0, 0.0, output_size - 1.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
        matrix = (mirror @ np.vstack([matrix, [0.0, 0.0, 1.0]]))[:2]
    return matrix


def invert_affine(matrix):
    """Inverse of a 2x3 affine matrix (or a batch of them, shape (..., 2, 3))."""
    matrix = np.asarray(matrix, dtype=np.float64)
    linear = matrix[..., :2]
    translation = matrix[..., 2:]
    linear_inverse = np.linalg.inv(linear)
    return np.concatenate([linear_inverse, -linear_inverse @ translation], axis=-1)


def apply_affine(matrix, points):
    """Map points (..., J, 2) through a 2x3 matrix (or a batch (..., 2, 3))."""
    matrix = np.asarray(matrix, dtype=np.float64)
    points = np.asarray(points, dtype=np.float64)
    return points @ np.swapaxes(matrix[..., :2], -1, -2) + matrix[..., None, :, 2]


def resize_matrix(from_size, to_size):
    """2x3 matrix between two edge-aligned square frames (e.g. input px -> heatmap px)."""
    ratio = to_size / float(from_size)
    offset = 0.5 * ratio - 0.5
    return np.array([[ratio, 0.0, offset], [0.0, ratio, offset]])


def compose_affine(outer, inner):
    """The 2x3 matrix of `outer(inner(p))`."""
    outer = np.vstack([np.asarray(outer, dtype=np.float64), [0.0, 0.0, 1.0]])
    inner = np.vstack([np.asarray(inner, dtype=np.float64), [0.0, 0.0, 1.0]])
    return (outer @ inner)[:2]


def full_image_box(height: int, width: int) -> np.ndarray:
    """The box (x0, y0, x1, y1) of a whole image: pixel edges, -0.5 to size - 0.5."""
    return np.array([-0.5, -0.5, width - 0.5, height - 0.5])


def parse_box(values, where: str) -> list:
    """A box [x0, y0, x1, y1] (4 finite numbers, x1 > x0, y1 > y0, within
    `MAX_BOX_COORDINATE`), or a ValueError starting with `where`."""
    try:
        box = [float(value) for value in values]
    except (TypeError, ValueError):
        box = None
    if box is None or len(box) != 4 or not np.isfinite(box).all():
        raise ValueError(f"{where}: a box is [x0, y0, x1, y1] (4 numbers), received {values!r}.")
    if not (box[2] > box[0] and box[3] > box[1]):
        raise ValueError(f"{where}: a box needs x1 > x0 and y1 > y0, received {box}.")
    if max(abs(value) for value in box) > MAX_BOX_COORDINATE:
        raise ValueError(
            f"{where}: box coordinates must be within +-{MAX_BOX_COORDINATE:.0e} px, "
            f"received {box}."
        )
    return box


# The person box of datasets without one (DeepLabCut, labelling tools) and of video
# tracking (`tracking.next_box`): the points' extent widened by this fraction of its longer
# side on every side, so that crops at inference match those of training.
DEFAULT_BOX_MARGIN = 0.1


def box_around_points(points, margin=DEFAULT_BOX_MARGIN) -> np.ndarray:
    """The extent of `points` (K >= 1, 2) widened by `margin` x its longer side on every side.

    >>> box_around_points([[10.0, 20.0], [30.0, 30.0]], 0.1).tolist()
    [8.0, 18.0, 32.0, 32.0]
    """
    points = np.asarray(points, dtype=np.float64)
    low, high = points.min(axis=0), points.max(axis=0)
    pad = margin * float(np.max(high - low))
    return np.array([low[0] - pad, low[1] - pad, high[0] + pad, high[1] + pad])


def box_from_keypoints(keypoints, visibility, margin=DEFAULT_BOX_MARGIN):
    """The labelled parts' extent widened by `margin` x its longer side on every side.

    Returns:
        (x0, y0, x1, y1) array, or None when fewer than two distinct parts are labelled.

    >>> box_from_keypoints([[10.0, 20.0], [30.0, 30.0]], [2, 2]).tolist()
    [8.0, 18.0, 32.0, 32.0]
    """
    points = np.asarray(keypoints, dtype=np.float64)[np.asarray(visibility) > 0]
    if len(points) < 2 or not np.ptp(points, axis=0).max() > 0:
        return None
    return box_around_points(points, margin)


def crop_reach(data_config: DataConfig) -> tuple[float, float]:
    """How far any augmented training crop of a person reaches, and its smallest side.

    The crop box of `pipeline.person_crop_geometry` is `box_scale` x U(1 - s, 1 + s) person
    heights (units of `PIXELS_PER_SCALE` x scale) on a side, its centre shifted by up to
    `translate_jitter` x that side along each axis, rotated by up to `rotation_deg`. Its
    axis-aligned bounding square then has half-side at most
    `largest * ((cos r + sin r) / 2 + translate_jitter)` (r capped at 45 degrees, where the
    rotated square is widest).

    Returns:
        (reach, smallest): the half-side of that bounding square and the smallest box side,
        both in person heights (multiply by `PIXELS_PER_SCALE * scale` for image px).
    """
    largest = data_config.box_scale * (1.0 + data_config.scale_jitter)
    smallest = data_config.box_scale * (1.0 - data_config.scale_jitter)
    angle = np.deg2rad(min(abs(float(data_config.rotation_deg)), 45.0))
    spread = np.cos(angle) + np.sin(angle)
    return float(largest * (spread / 2.0 + data_config.translate_jitter)), float(smallest)


def crop_geometry_of(config) -> dict:
    """The crop geometry of a `Config`: what a person-centred split (`tfrecords_tools.recrop`)
    is cut for, stored in its manifest under `records.PERSON_CENTRED_KEY`."""
    data = config.data
    return {
        "input_size": config.model.input_size,
        "box_scale": data.box_scale,
        "scale_jitter": data.scale_jitter,
        "rotation_deg": data.rotation_deg,
        "translate_jitter": data.translate_jitter,
    }


def reach_and_density(geometry: dict) -> tuple[float, float]:
    """(reach in person heights, crop px per person height of the finest crop)."""
    data = DataConfig(
        box_scale=geometry["box_scale"],
        scale_jitter=geometry["scale_jitter"],
        rotation_deg=geometry["rotation_deg"],
        translate_jitter=geometry["translate_jitter"],
    )
    reach, smallest = crop_reach(data)
    return reach, geometry["input_size"] / smallest


def crop_geometry_problem(made: dict, config) -> str | None:
    """Why crops of `config` cannot come from records cut for geometry `made` (None: they can)."""
    geometry = crop_geometry_of(config)
    reach, density = reach_and_density(geometry)
    made_reach, made_density = reach_and_density(made)
    fields = ", ".join(f"{key}={made[key]}" for key in geometry)
    if reach > made_reach * (1 + 1e-6):
        return (
            f"its crops reach {reach:.3f} person heights from the centre, beyond the "
            f"{made_reach:.3f} the person-centred records hold (made for {fields})"
        )
    if density > made_density * (1 + 1e-6):
        return (
            f"its finest crop needs {density:.1f} px per person height, more than the "
            f"{made_density:.1f} the person-centred records hold (made for {fields})"
        )
    return None
