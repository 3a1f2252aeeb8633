"""Heatmap decoding: exact hand-made cases, the render -> decode round trip, the flip test."""

import numpy as np
import pytest

from pose_keras import decode
from pose_keras.joints import MPII
from pose_keras.targets import render_heatmaps
from pose_keras.transforms import apply_affine, crop_matrix, resize_matrix


def render(keypoints_heatmap_px, size, sigma=1.0):
    return np.asarray(render_heatmaps(np.asarray(keypoints_heatmap_px, np.float32), size, sigma))


def test_argmax_and_quarter_offset_on_a_hand_made_map():
    heatmaps = np.zeros((1, 6, 7, 3))
    heatmaps[0, 2, 4, 0] = 1.0
    heatmaps[0, 2, 3, 0] = 0.2  # left neighbour higher: x - 0.25
    heatmaps[0, 3, 4, 0] = 0.3  # lower neighbour higher: y + 0.25
    heatmaps[0, 4, 0, 1] = 0.9  # on the left border: no x shift; rows equal: no y shift
    heatmaps[0, 4, 1, 1] = 0.5
    # joint 2 is all zeros: arg-max (0, 0), score 0.
    keypoints, scores = decode.argmax_keypoints(heatmaps)
    assert keypoints.tolist() == [[[4.0, 2.0], [0.0, 4.0], [0.0, 0.0]]]
    assert scores.tolist() == [[1.0, 0.9, 0.0]]
    refined, _ = decode.decode_heatmaps(heatmaps, refine="quarter")
    assert refined.tolist() == [[[3.75, 2.25], [0.0, 4.0], [0.0, 0.0]]]
    unrefined, _ = decode.decode_heatmaps(heatmaps, refine="none")
    assert unrefined.tolist() == keypoints.tolist()


def test_decode_keeps_leading_dimensions():
    heatmaps = np.random.default_rng(0).random((2, 3, 8, 8, 5))
    keypoints, scores = decode.decode_heatmaps(heatmaps, refine="dark")
    assert keypoints.shape == (2, 3, 5, 2) and scores.shape == (2, 3, 5)
    with pytest.raises(ValueError, match="refine"):
        decode.decode_heatmaps(heatmaps, refine="subpixel")


@pytest.fixture(scope="module")
def rendered():
    """Gaussians (sigma 1, as `targets.render_heatmaps` draws them) at random sub-pixel
    keypoints away from the border, 64 x 64 maps, 16 joints, 40 people."""
    rng = np.random.default_rng(1)
    keypoints = rng.uniform(3.0, 60.0, (40, 16, 2))
    return keypoints, render(keypoints, 64)


def test_round_trip_dark_is_within_a_hundredth_of_a_pixel(rendered):
    keypoints, heatmaps = rendered
    decoded, scores = decode.decode_heatmaps(heatmaps, refine="dark", sigma=1.0)
    errors = np.linalg.norm(decoded - keypoints, axis=-1)
    assert errors.max() < 0.3  # the requirement
    assert errors.max() < 0.01  # what DARK achieves on exact Gaussians (measured ~2e-4)
    assert (scores > 0.6).all()  # the nearest pixel of a sigma-1 Gaussian: >= exp(-0.25)


def test_round_trip_dark_near_the_border():
    # 1 to 3 px from the border: the zero-padded smoothing keeps DARK within 0.1 px.
    rng = np.random.default_rng(4)
    keypoints = rng.uniform(1.0, 3.0, (200, 1, 2))
    keypoints[100:] = 63.0 - keypoints[100:]
    decoded, _ = decode.decode_heatmaps(render(keypoints, 64), refine="dark")
    assert np.abs(decoded - keypoints).max() < 0.1


def test_round_trip_quarter_and_argmax_errors(rendered):
    keypoints, heatmaps = rendered
    quarter, _ = decode.decode_heatmaps(heatmaps, refine="quarter")
    argmax, _ = decode.decode_heatmaps(heatmaps, refine="none")
    quarter_axis = np.abs(quarter - keypoints)
    argmax_axis = np.abs(argmax - keypoints)
    # Arg-max: up to half a pixel per axis; the quarter shift: up to a quarter.
    assert argmax_axis.max() <= 0.5 + 1e-6
    assert quarter_axis.max() <= 0.25 + 1e-6
    # ...which is not within 0.3 px in the plane for every keypoint (up to 0.35).
    assert np.linalg.norm(quarter - keypoints, axis=-1).max() > 0.3
    assert quarter_axis.mean() < argmax_axis.mean()


def test_dark_falls_back_to_the_quarter_shift_on_the_border():
    heatmaps = render([[[0.2, 5.3]]], 16)
    dark, _ = decode.decode_heatmaps(heatmaps, refine="dark")
    quarter, _ = decode.decode_heatmaps(heatmaps, refine="quarter")
    np.testing.assert_array_equal(dark, quarter)
    # A position where the log map curves upwards along x is no maximum: no DARK step.
    grid = np.arange(12.0)
    saddle = np.exp(0.5 * (grid[None, :] - 5.0) ** 2 - 0.5 * (grid[:, None] - 5.0) ** 2)
    keypoints, refined = decode.dark_offset(saddle[None, :, :, None], [[[5.0, 5.0]]])
    assert not refined.any() and keypoints.tolist() == [[[5.0, 5.0]]]


def test_round_trip_through_the_crop_lands_within_0_3_heatmap_px():
    # Image keypoints -> crop (rotated, scaled) -> input px -> heatmap px -> Gaussians ->
    # DARK -> back to image px.
    rng = np.random.default_rng(2)
    input_size, heatmap_size = 256, 64
    keypoints_image = rng.uniform(300.0, 500.0, (3, 16, 2))
    matrices = np.stack(
        [
            crop_matrix([400.0, 400.0], 320.0, input_size, rotation_deg=angle)
            for angle in (0, 17, -30)
        ]
    )
    input_px = apply_affine(matrices, keypoints_image)
    heatmap_px = apply_affine(resize_matrix(input_size, heatmap_size), input_px)
    heatmaps = render(heatmap_px, heatmap_size)
    decoded, _ = decode.decode_heatmaps(heatmaps, refine="dark")
    back = decode.heatmap_to_image(decoded, matrices, input_size, heatmap_size)
    image_px_per_heatmap_px = 320.0 / heatmap_size
    errors = np.linalg.norm(back - keypoints_image, axis=-1) / image_px_per_heatmap_px
    assert errors.max() < 0.3
    # The geometry alone is exact: heatmap px -> image px inverts image px -> heatmap px.
    np.testing.assert_allclose(
        decode.heatmap_to_image(heatmap_px, matrices, input_size, heatmap_size),
        keypoints_image,
        atol=1e-9,
    )


def mirrored_input_px(keypoints_input_px, input_size, flip_index):
    """What a mirrored crop sees: x -> S - 1 - x, left and right joints swapped."""
    mirrored = np.asarray(keypoints_input_px, dtype=np.float64).copy()
    mirrored[..., 0] = input_size - 1 - mirrored[..., 0]
    return mirrored[..., list(flip_index), :]


def test_unflipped_heatmaps_coincide_with_the_original_without_any_shift():
    """Heatmaps rendered for the mirrored crop, mirrored back, equal the heatmaps of the
    crop itself: in edge-aligned frames no one-pixel shift is needed."""
    rng = np.random.default_rng(3)
    input_size, heatmap_size = 256, 64
    keypoints_input = rng.uniform(10.0, 245.0, (4, 16, 2))
    to_heatmap = resize_matrix(input_size, heatmap_size)
    original = render(apply_affine(to_heatmap, keypoints_input), heatmap_size)
    mirrored = render(
        apply_affine(to_heatmap, mirrored_input_px(keypoints_input, input_size, MPII.flip_index)),
        heatmap_size,
    )
    restored = decode.flip_back(mirrored, MPII.flip_index)
    np.testing.assert_allclose(restored, original, atol=1e-5)  # float32 rendering
    np.testing.assert_allclose(
        decode.average_flip(original, mirrored, MPII.flip_index), original, atol=1e-5
    )
    peaks, _ = decode.decode_heatmaps(restored, refine="none")
    expected, _ = decode.decode_heatmaps(original, refine="none")
    np.testing.assert_array_equal(peaks, expected)
    # The PyTorch repos' one-pixel shift would move every peak one pixel right here.
    shifted, _ = decode.decode_heatmaps(
        decode.flip_back(mirrored, MPII.flip_index, shift_px=1), refine="none"
    )
    np.testing.assert_array_equal(shifted[..., 0], expected[..., 0] + 1)


def test_flip_index_swaps_left_and_right_only():
    heatmaps = np.zeros((1, 4, 4, 16))
    for joint in range(16):
        heatmaps[0, 0, 0, joint] = joint  # channel j holds the value j at column 0
    restored = decode.flip_back(heatmaps, MPII.flip_index)
    # Column 0 moved to column 3; r_ankle (0) now holds l_ankle's (5) value, pelvis stays.
    assert restored[0, 0, 3, 0] == 5 and restored[0, 0, 3, 5] == 0
    assert restored[0, 0, 3, 6] == 6 and restored[0, 0, 3, 9] == 9
