"""Heatmap targets: the encode side of the heatmap codec (decoding lives in `decode.py`).

A joint at heatmap px `(u, v)` becomes an unnormalised 2-D Gaussian centred exactly at the
sub-pixel location, `exp(-((x - u)^2 + (y - v)^2) / (2 sigma^2))`, sampled at the pixel
centres of the map: its peak is 1 when the joint sits on a pixel centre, and the pixel
nearest to the joint always holds the maximum (Tompson et al. 2014; Newell et al. 2016 use
the same Gaussian, rounded to the nearest pixel; we keep the sub-pixel centre so that the
decoder's quarter-pixel shift has something to recover).

Frames (see `pose_keras.transforms`): keypoints come in *input px* of the `S x S` crop.
A map of size `n` over the same crop is edge-aligned with it, `u = (q + 0.5) * n / S - 0.5`,
which is `transforms.resize_matrix(S, n)`. The GT map has `n = S / 4`; the GT/s map of the
multi-scale heads has `n = S / 4 / s` (Ke et al. 2018, §2.1).

Down-sampled targets (SPEC §2; the paper says only "down-sampled groundtruth"):

- `"render"` (default): draw a fresh Gaussian at every scale with the *same* sigma in px of
  that scale, peak 1. A GT/s map therefore shows the joint as a blob `s` times wider in
  crop pixels, a coarse but well-posed target. Scaling sigma by `1/s` instead would keep
  the blob's crop-pixel size but, at GT/8 with sigma = 1, give sigma = 0.125 px: a joint
  between two pixel centres would then get a peak of `exp(-8) ~ 3e-4`, an almost
  all-zero target that no head can learn.
- `"area"`: average-pool the GT map by `s` (what "down-sampling" an image means). The
  maps stay consistent with GT, but the peak drops below 1: for sigma = 1 it is
  0.40-0.77 at GT/2, 0.26-0.36 at GT/4 and 0.08-0.10 at GT/8 depending on where the joint
  falls in its block, so coarse heads are trained towards weak, position-dependent maxima.

Weights: one per joint and output, 1 when the joint is annotated (visibility > 0) and lies
inside the crop, `[-0.5, S - 0.5)` in input px (the same region at every scale, since all
frames are edge-aligned), else 0. Zero-weight joints get an all-zero map. The Eq. 1 loss
(sum over pixels, mean over joints, masked) uses these weights as Keras sample weights on a
per-joint loss of shape (batch, joints).
"""

import tensorflow as tf

from pose_keras.config import DataConfig, ModelConfig
from pose_keras.model import output_names, output_scale


def heatmap_px_from_input_px(keypoints_input_px, input_size, map_size):
    """Map input px to the px of an edge-aligned `map_size` heatmap (`resize_matrix`)."""
    keypoints_input_px = tf.convert_to_tensor(keypoints_input_px, tf.float32)
    ratio = float(map_size) / float(input_size)
    return (keypoints_input_px + 0.5) * ratio - 0.5


def render_heatmaps(keypoints_heatmap_px, size, sigma):
    """Gaussian heatmaps with peak 1 at the exact sub-pixel keypoint locations.

    Args:
        keypoints_heatmap_px: float (..., J, 2). (x, y) per joint in heatmap px (0-based
            pixel centres). Leading dimensions (e.g. a batch) are kept.
        size: int. Side of the square heatmap.
        sigma: float. Standard deviation of the Gaussian, heatmap px.

    Returns:
        float32 tensor (..., size, size, J): channel j holds joint j's Gaussian. Nothing
        is masked here; `make_targets` zeroes the maps of zero-weight joints.

    Examples:

    >>> heatmaps = render_heatmaps([[3.0, 1.0]], size=8, sigma=1.0)
    >>> heatmaps.shape, float(heatmaps[1, 3, 0])
    (TensorShape([8, 8, 1]), 1.0)
    """
    keypoints = tf.convert_to_tensor(keypoints_heatmap_px, tf.float32)
    grid = tf.range(size, dtype=tf.float32)
    # The Gaussian is separable: exp(-dx^2/2s^2) * exp(-dy^2/2s^2).
    along_x = tf.exp(-tf.square(grid - keypoints[..., 0:1]) / (2.0 * sigma**2))  # (..., J, W)
    along_y = tf.exp(-tf.square(grid - keypoints[..., 1:2]) / (2.0 * sigma**2))  # (..., J, H)
    along_x = tf.linalg.matrix_transpose(along_x)  # (..., W, J)
    along_y = tf.linalg.matrix_transpose(along_y)  # (..., H, J)
    return along_y[..., :, None, :] * along_x[..., None, :, :]


def area_downsample(heatmaps, factor):
    """Average `factor x factor` blocks of (..., H, W, J) maps (area down-sampling)."""
    if factor == 1:
        return heatmaps
    shape = tf.shape(heatmaps)
    height, width, joints = heatmaps.shape[-3], heatmaps.shape[-2], heatmaps.shape[-1]
    if height % factor or width % factor:
        raise ValueError(f"A {height}x{width} map cannot be area-downsampled by {factor}.")
    blocks = tf.reshape(
        heatmaps,
        tf.concat(
            [shape[:-3], [height // factor, factor, width // factor, factor, joints]], axis=0
        ),
    )
    # blocks: (..., H/f, f, W/f, f, J); its two `f` axes are rank - 2 and rank.
    rank = len(heatmaps.shape)
    return tf.reduce_mean(blocks, axis=[rank - 2, rank])


def joint_weights(keypoints_input_px, visibility, input_size):
    """1 for joints that are annotated and inside the crop, else 0; float32 (..., J)."""
    keypoints = tf.convert_to_tensor(keypoints_input_px, tf.float32)
    low, high = -0.5, input_size - 0.5
    inside = tf.reduce_all((keypoints >= low) & (keypoints < high), axis=-1)
    annotated = tf.convert_to_tensor(visibility) > 0
    return tf.cast(inside & annotated, tf.float32)


def make_targets(
    keypoints_input_px, visibility, model_config: ModelConfig, data_config: DataConfig
):
    """Targets and per-joint weights for every output of the model.

    Args:
        keypoints_input_px: float (..., J, 2). Keypoints in input px of the crop, after
            augmentation. Works for one example (J, 2) or a batch (B, J, 2).
        visibility: int (..., J). 0 = not annotated, 1 = occluded, 2 = visible.
        model_config: ModelConfig. Input size, supervised scales, outputs.
        data_config: DataConfig. `sigma` (heatmap px at GT) and `target_downsample`.

    Returns:
        (targets, weights): dicts keyed by `model.output_names(model_config)`. Targets of
        `stack{k}_scale{s}` are float32 (..., n, n, J) with `n = heatmap_size / s`;
        `refined` gets the GT map. Weights are float32 (..., J), the same for every output.
        Outputs of the same scale share one tensor.
    """
    input_size = model_config.input_size
    heatmap_size = model_config.heatmap_size
    sigma = float(data_config.sigma)
    weights = joint_weights(keypoints_input_px, visibility, input_size)
    mask = weights[..., None, None, :]

    by_scale = {}
    full = render_heatmaps(
        heatmap_px_from_input_px(keypoints_input_px, input_size, heatmap_size), heatmap_size, sigma
    )
    by_scale[1] = full * mask
    for scale in model_config.supervised_scales:
        if scale == 1:
            continue
        size = heatmap_size // scale
        if data_config.target_downsample == "area":
            by_scale[scale] = area_downsample(by_scale[1], scale)
        else:
            keypoints_scale_px = heatmap_px_from_input_px(keypoints_input_px, input_size, size)
            by_scale[scale] = render_heatmaps(keypoints_scale_px, size, sigma) * mask

    names = output_names(model_config)
    targets = {name: by_scale[output_scale(name)] for name in names}
    weights_by_name = {name: weights for name in names}
    return targets, weights_by_name
