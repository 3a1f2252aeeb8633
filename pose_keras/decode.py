"""Heatmaps -> keypoints: the decode side of the heatmap codec (encoding is `targets.py`).

Pure numpy (importing this module does not import TensorFlow), shared by the training
callback, `evaluate`, `predict` and `export`:

1. `argmax_keypoints`: the arg-max pixel of each joint's map and its value (the score).
2. Sub-pixel refinement (`decode_heatmaps(refine=...)`):
   - `"quarter"` (default): a quarter pixel towards the higher neighbour, separately in x
     and y (Newell et al. ECCV 2016, pose-hg-train `src/util/pose.lua`, `postprocess`). On
     a Gaussian the error per axis is at most 0.25 px instead of 0.5 px. Newell shifts only
     where the pixel is inside the map on both axes; here each axis is shifted where its
     own two neighbours exist.
   - `"dark"`: distribution-aware refinement (Zhang et al., "Distribution-Aware Coordinate
     Representation for Human Pose Estimation", CVPR 2020): smooth the map with the
     training Gaussian, rescale it to its original range, take the log, and step by a
     second-order Taylor expansion, `mu = m - H^-1 g`, with the gradient and Hessian from
     central differences at the arg-max m. On a Gaussian target the log is exactly
     quadratic, so the step recovers the sub-pixel centre (see tests/test_decode.py).
     Where the Hessian is not negative definite, the step exceeds one pixel or m is on the
     border, the quarter shift is used instead.
   - `"none"`: the arg-max pixel.
3. Flip test (`flip_back`, `average_flip`): the model also sees the mirrored crop; its
   heatmaps are mirrored back, joints swapped with `JointSet.flip_index`, and averaged.
   In our edge-aligned frames (`transforms.py`) mirroring the crop maps input px q to
   S - 1 - q and heatmap px h to H - 1 - h exactly, so reversing the map's columns is the
   whole inverse: no shift. The one-pixel shift of the common PyTorch repos (HRNet's
   `SHIFT_HEATMAP`: `output_flipped[..., 1:] = output_flipped[..., :-1]`; mmpose's
   `shift_heatmap`) makes up for their corner-aligned heatmap frame, where the mirrored map
   lands 3/4 px off; it is available as `shift_px=1` for comparison only.
4. `heatmap_to_image`: heatmap px -> input px (`transforms.resize_matrix`) -> image px
   (the inverse of the crop matrix).

Heatmaps are channels-last, (..., height, width, joints), as the model outputs them;
keypoints are (x, y) in heatmap px, 0-based pixel centres.

Examples:

>>> import numpy as np
>>> heatmaps = np.zeros((1, 8, 8, 1)); heatmaps[0, 3, 5, 0] = 1.0; heatmaps[0, 3, 6, 0] = 0.5
>>> keypoints, scores = decode_heatmaps(heatmaps, refine="quarter")
>>> keypoints.tolist(), scores.tolist()
([[[5.25, 3.0]]], [[1.0]])
"""

from __future__ import annotations

import numpy as np

from pose_keras.transforms import apply_affine, invert_affine, resize_matrix

REFINEMENTS = ("quarter", "dark", "none")
QUARTER = 0.25
# Below this a (smoothed) heatmap value is treated as zero before taking the log.
LOG_FLOOR = 1e-10


def _as_batch(heatmaps):
    """(..., H, W, J) -> ((N, H, W, J) float64, leading shape)."""
    heatmaps = np.asarray(heatmaps, dtype=np.float64)
    if heatmaps.ndim < 3:
        raise ValueError(
            f"heatmaps must have shape (..., height, width, joints), received {heatmaps.shape}."
        )
    leading = heatmaps.shape[:-3]
    return heatmaps.reshape((-1,) + heatmaps.shape[-3:]), leading


def _values_at(heatmaps, rows, columns):
    """heatmaps (N, H, W, J), rows / columns int (N, J) -> values (N, J)."""
    batch = np.arange(heatmaps.shape[0])[:, None]
    joints = np.arange(heatmaps.shape[-1])[None, :]
    return heatmaps[batch, rows, columns, joints]


def argmax_keypoints(heatmaps):
    """Arg-max pixel of every map.

    Args:
        heatmaps: float (..., H, W, J).

    Returns:
        (keypoints_heatmap_px float64 (..., J, 2) with integer values (x, y), scores
        float64 (..., J): the maximum of each map). Ties go to the first pixel in row-major
        order.
    """
    batch, leading = _as_batch(heatmaps)
    count, height, width, joints = batch.shape
    flat = batch.reshape(count, height * width, joints)
    index = flat.argmax(axis=1)
    scores = np.take_along_axis(flat, index[:, None, :], axis=1)[:, 0, :]
    keypoints = np.stack([index % width, index // width], axis=-1).astype(np.float64)
    return keypoints.reshape(leading + (joints, 2)), scores.reshape(leading + (joints,))


def quarter_offset(heatmaps, keypoints_heatmap_px):
    """Shift integer arg-max positions a quarter pixel towards the higher neighbour.

    Per axis, only where both neighbours on that axis exist; the shift is
    `0.25 * sign(right - left)`, zero on a tie (Newell et al., pose-hg-train `postprocess`).

    Args:
        heatmaps: float (..., H, W, J).
        keypoints_heatmap_px: float (..., J, 2), integer-valued (from `argmax_keypoints`).

    Returns:
        float64 (..., J, 2).
    """
    batch, leading = _as_batch(heatmaps)
    _, height, width, joints = batch.shape
    keypoints = np.asarray(keypoints_heatmap_px, dtype=np.float64).reshape(-1, joints, 2)
    columns = keypoints[..., 0].astype(np.int64)
    rows = keypoints[..., 1].astype(np.int64)
    refined = keypoints.copy()
    inner_x = (columns >= 1) & (columns <= width - 2)
    inner_y = (rows >= 1) & (rows <= height - 2)
    left = _values_at(batch, rows, np.clip(columns - 1, 0, width - 1))
    right = _values_at(batch, rows, np.clip(columns + 1, 0, width - 1))
    above = _values_at(batch, np.clip(rows - 1, 0, height - 1), columns)
    below = _values_at(batch, np.clip(rows + 1, 0, height - 1), columns)
    refined[..., 0] += np.where(inner_x, QUARTER * np.sign(right - left), 0.0)
    refined[..., 1] += np.where(inner_y, QUARTER * np.sign(below - above), 0.0)
    return refined.reshape(leading + (joints, 2))


def gaussian_kernel(sigma: float) -> np.ndarray:
    """Normalised 1-D Gaussian taps over [-ceil(4 sigma), ceil(4 sigma)]."""
    radius = max(1, int(np.ceil(4.0 * sigma)))
    taps = np.arange(-radius, radius + 1, dtype=np.float64)
    kernel = np.exp(-(taps**2) / (2.0 * sigma**2))
    return kernel / kernel.sum()


def gaussian_blur(heatmaps, sigma: float) -> np.ndarray:
    """Separable Gaussian smoothing of (N, H, W, J) maps, zero beyond the border.

    Zero padding, unlike the mirrored border of `cv2.GaussianBlur` that DARK's reference
    code gets by default, keeps DARK accurate for joints near the border (measured on
    sigma-1 Gaussians 1-2 px from the border: max error 0.06 px zero-padded, 0.69 px
    mirrored); a map without a peak then bulges towards the centre, where its score is
    meaningless anyway.
    """
    kernel = gaussian_kernel(sigma)
    radius = len(kernel) // 2
    result = np.asarray(heatmaps, dtype=np.float64)
    for axis in (1, 2):
        padding = [(0, 0)] * result.ndim
        padding[axis] = (radius, radius)
        padded = np.pad(result, padding)
        size = result.shape[axis]
        smoothed = np.zeros_like(result)
        for offset, weight in enumerate(kernel):
            smoothed += weight * np.take(padded, np.arange(offset, offset + size), axis=axis)
        result = smoothed
    return result


def dark_offset(heatmaps, keypoints_heatmap_px, sigma: float = 1.0):
    """Distribution-aware (DARK) sub-pixel refinement of integer arg-max positions.

    Zhang, Zhu, Dai, Ye, Zhu, "Distribution-Aware Coordinate Representation for Human Pose
    Estimation", CVPR 2020: modulate (smooth with the training Gaussian and rescale each map
    to [0, its original maximum]), take the log, and apply one Newton step of the
    second-order Taylor expansion at the arg-max. Derivatives are central differences with
    a one-pixel step (exact for the quadratic log of a Gaussian).

    Args:
        heatmaps: float (..., H, W, J).
        keypoints_heatmap_px: float (..., J, 2), integer-valued arg-max positions.
        sigma: float. Standard deviation of the training Gaussian, heatmap px. Default 1.

    Returns:
        (keypoints float64 (..., J, 2), refined bool (..., J): False where the step was not
        applied: border pixel, Hessian not negative definite or step beyond one pixel).
    """
    batch, leading = _as_batch(heatmaps)
    _, height, width, joints = batch.shape
    keypoints = np.asarray(keypoints_heatmap_px, dtype=np.float64).reshape(-1, joints, 2)
    smoothed = gaussian_blur(batch, sigma)
    low = smoothed.min(axis=(1, 2), keepdims=True)
    high = smoothed.max(axis=(1, 2), keepdims=True)
    peak = batch.max(axis=(1, 2), keepdims=True)
    span = np.where(high > low, high - low, 1.0)
    modulated = (smoothed - low) / span * peak
    logged = np.log(np.maximum(modulated, LOG_FLOOR))

    x = keypoints[..., 0].astype(np.int64)
    y = keypoints[..., 1].astype(np.int64)
    inside = (x >= 1) & (x <= width - 2) & (y >= 1) & (y <= height - 2)
    xc, yc = np.clip(x, 1, width - 2), np.clip(y, 1, height - 2)

    def value(dy, dx):
        return _values_at(logged, yc + dy, xc + dx)

    center = value(0, 0)
    gradient_x = (value(0, 1) - value(0, -1)) / 2.0
    gradient_y = (value(1, 0) - value(-1, 0)) / 2.0
    hessian_xx = value(0, 1) - 2.0 * center + value(0, -1)
    hessian_yy = value(1, 0) - 2.0 * center + value(-1, 0)
    hessian_xy = (value(1, 1) - value(1, -1) - value(-1, 1) + value(-1, -1)) / 4.0
    determinant = hessian_xx * hessian_yy - hessian_xy**2
    usable = inside & (determinant > 0) & (hessian_xx < 0)
    safe = np.where(usable, determinant, 1.0)
    # -H^-1 g for the 2x2 Hessian [[xx, xy], [xy, yy]].
    step_x = -(hessian_yy * gradient_x - hessian_xy * gradient_y) / safe
    step_y = -(hessian_xx * gradient_y - hessian_xy * gradient_x) / safe
    usable &= (np.abs(step_x) <= 1.0) & (np.abs(step_y) <= 1.0)
    refined = keypoints.copy()
    refined[..., 0] += np.where(usable, step_x, 0.0)
    refined[..., 1] += np.where(usable, step_y, 0.0)
    return refined.reshape(leading + (joints, 2)), usable.reshape(leading + (joints,))


def decode_heatmaps(heatmaps, refine: str = "quarter", sigma: float = 1.0):
    """Keypoints and scores from heatmaps.

    Args:
        heatmaps: float (..., H, W, J).
        refine: str. `"quarter"` (Newell et al.; default), `"dark"` (Zhang et al. 2020;
            quarter shift where DARK does not apply) or `"none"`.
        sigma: float. Training Gaussian sigma in heatmap px (DARK only). Default 1.

    Returns:
        (keypoints_heatmap_px float64 (..., J, 2), scores float64 (..., J): each map's
        maximum).
    """
    if refine not in REFINEMENTS:
        raise ValueError(f"refine must be one of {list(REFINEMENTS)}, received {refine!r}.")
    keypoints, scores = argmax_keypoints(heatmaps)
    if refine == "none":
        return keypoints, scores
    quarter = quarter_offset(heatmaps, keypoints)
    if refine == "quarter":
        return quarter, scores
    dark, refined = dark_offset(heatmaps, keypoints, sigma=sigma)
    return np.where(refined[..., None], dark, quarter), scores


def flip_back(heatmaps_of_mirrored, flip_index, shift_px: int = 0) -> np.ndarray:
    """Heatmaps of a mirrored crop, brought back into the frame of the original crop.

    Reverses the width axis (heatmap px h -> W - 1 - h, exact in our edge-aligned frames)
    and swaps left/right joints (`flipped[..., j] = heatmaps[..., flip_index[j]]`).

    Args:
        heatmaps_of_mirrored: float (..., H, W, J). The model's output on the mirrored crop.
        flip_index: sequence of int. `JointSet.flip_index`.
        shift_px: int. Move the result this many pixels to the right afterwards (the
            common PyTorch repos use 1 for their corner-aligned frame; 0 is exact here).
            Default 0.

    Returns:
        float64 (..., H, W, J).
    """
    maps = np.asarray(heatmaps_of_mirrored, dtype=np.float64)[..., ::-1, :]
    maps = maps[..., list(flip_index)]
    if shift_px:
        shifted = np.zeros_like(maps)
        shifted[..., shift_px:, :] = maps[..., :-shift_px, :]
        maps = shifted
    return np.ascontiguousarray(maps)


def average_flip(heatmaps, heatmaps_of_mirrored, flip_index, shift_px: int = 0) -> np.ndarray:
    """Flip-test average: `(heatmaps + flip_back(heatmaps_of_mirrored)) / 2`."""
    return 0.5 * (
        np.asarray(heatmaps, dtype=np.float64)
        + flip_back(heatmaps_of_mirrored, flip_index, shift_px=shift_px)
    )


def heatmap_to_image_matrices(crop_matrices, input_size: int, heatmap_size: int) -> np.ndarray:
    """2x3 matrices (..., 2, 3) from heatmap px to image px: crop^-1 o resize(H -> S)."""
    crop_matrices = np.asarray(crop_matrices, dtype=np.float64)
    to_input = resize_matrix(heatmap_size, input_size)
    inverse = invert_affine(crop_matrices)
    linear = inverse[..., :2] @ to_input[:, :2]
    translation = inverse[..., :2] @ to_input[:, 2] + inverse[..., 2]
    return np.concatenate([linear, translation[..., None]], axis=-1)


def heatmap_to_image(keypoints_heatmap_px, crop_matrices, input_size: int, heatmap_size: int):
    """Back-project keypoints from heatmap px to image px.

    Args:
        keypoints_heatmap_px: float (..., J, 2).
        crop_matrices: float (..., 2, 3). Image px -> input px (`transforms.crop_matrix`).
        input_size: int. Side of the crop fed to the model.
        heatmap_size: int. Side of the heatmap.

    Returns:
        float64 (..., J, 2), image px.
    """
    matrices = heatmap_to_image_matrices(crop_matrices, input_size, heatmap_size)
    return apply_affine(matrices, keypoints_heatmap_px)
