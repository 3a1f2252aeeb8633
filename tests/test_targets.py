"""Heatmap targets: Gaussians at the exact keypoints, every scale, weights and masking."""

import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from pose_keras import transforms
from pose_keras.config import DataConfig, ModelConfig
from pose_keras.model import output_names, output_scale
from pose_keras.targets import area_downsample, make_targets, render_heatmaps

MODEL = ModelConfig(input_size=128, stacks=2, channels=16, supervised_scales=(1, 2, 4, 8))


def expected_heatmap_px(keypoints_input_px, input_size, size):
    """Input px -> heatmap px through the numpy convention (transforms.resize_matrix)."""
    return transforms.apply_affine(transforms.resize_matrix(input_size, size), keypoints_input_px)


def test_render_heatmaps_is_the_sampled_gaussian_with_peak_one_at_the_joint():
    keypoints = np.array([[3.0, 5.0], [2.3, 6.6]])
    heatmaps = render_heatmaps(keypoints, size=9, sigma=1.5).numpy()
    assert heatmaps.shape == (9, 9, 2)
    # On a pixel centre the peak is exactly 1.
    assert heatmaps[5, 3, 0] == pytest.approx(1.0)
    assert np.unravel_index(np.argmax(heatmaps[..., 0]), (9, 9)) == (5, 3)
    # Off-centre: every pixel holds exp(-d^2 / 2 sigma^2) of its distance to the joint.
    ys, xs = np.mgrid[0:9, 0:9]
    distance2 = (xs - 2.3) ** 2 + (ys - 6.6) ** 2
    np.testing.assert_allclose(heatmaps[..., 1], np.exp(-distance2 / (2 * 1.5**2)), atol=1e-6)


def test_render_keeps_leading_batch_dimensions():
    keypoints = np.random.default_rng(0).uniform(0, 15, size=(3, 4, 2))
    batched = render_heatmaps(keypoints, 16, 1.0).numpy()
    assert batched.shape == (3, 16, 16, 4)
    for index in range(3):
        np.testing.assert_allclose(
            batched[index], render_heatmaps(keypoints[index], 16, 1.0), atol=1e-7
        )


@pytest.mark.parametrize("mode", ["render", "area"])
def test_targets_peak_at_the_keypoints_at_every_scale(mode):
    rng = np.random.default_rng(1)
    joints = 16
    keypoints = rng.uniform(8, 120, size=(2, joints, 2)).astype(np.float32)
    visibility = rng.integers(1, 3, size=(2, joints))
    data = DataConfig(sigma=1.0, target_downsample=mode)
    targets, weights = make_targets(keypoints, visibility, MODEL, data)
    assert sorted(targets) == sorted(weights) == output_names(MODEL)
    for name, heatmaps in targets.items():
        heatmaps = heatmaps.numpy()
        scale = output_scale(name)
        size = MODEL.heatmap_size // scale
        assert heatmaps.shape == (2, size, size, joints)
        np.testing.assert_array_equal(weights[name].numpy(), np.ones((2, joints)))
        expected = expected_heatmap_px(keypoints, MODEL.input_size, size)
        for person in range(2):
            for joint in range(joints):
                channel = heatmaps[person, :, :, joint]
                row, column = np.unravel_index(np.argmax(channel), channel.shape)
                x, y = expected[person, joint]
                if mode == "render":
                    # The nearest pixel centre holds the maximum, with value >= exp(-0.25).
                    assert abs(column - x) <= 0.5 + 1e-4 and abs(row - y) <= 0.5 + 1e-4
                    assert channel.max() >= np.exp(-0.25) - 1e-6
                else:
                    # Block averages move the maximum by at most one coarse pixel.
                    assert abs(column - x) <= 1.0 and abs(row - y) <= 1.0
                    if scale > 1:
                        assert channel.max() < 1.0


def test_area_targets_are_block_means_of_the_gt_map():
    rng = np.random.default_rng(2)
    keypoints = rng.uniform(0, 127, size=(16, 2)).astype(np.float32)
    visibility = np.full(16, 2)
    targets, _ = make_targets(keypoints, visibility, MODEL, DataConfig(target_downsample="area"))
    full = targets["stack1_scale1"].numpy()
    for scale in (2, 4, 8):
        size = full.shape[0] // scale
        blocks = full.reshape(size, scale, size, scale, 16).mean(axis=(1, 3))
        np.testing.assert_allclose(targets[f"stack2_scale{scale}"].numpy(), blocks, atol=1e-6)
    np.testing.assert_array_equal(targets["refined"].numpy(), full)


def test_render_mode_keeps_sigma_in_pixels_of_each_scale():
    # A joint in the middle of the crop: the map's spread is sigma px of that map.
    keypoints = np.full((1, 2), 63.5, np.float32)
    sigma = 1.0
    model = dataclasses.replace(MODEL, num_joints=1)
    targets, _ = make_targets(keypoints, [2], model, DataConfig(sigma=sigma))
    for name, heatmaps in targets.items():
        profile = heatmaps.numpy()[..., 0].sum(axis=0)
        coordinates = np.arange(profile.size)
        mean = (profile * coordinates).sum() / profile.sum()
        spread = np.sqrt((profile * (coordinates - mean) ** 2).sum() / profile.sum())
        if profile.size >= 8:
            assert spread == pytest.approx(sigma, rel=0.05), name


def test_unannotated_and_out_of_crop_joints_get_zero_maps_and_weights():
    size = MODEL.input_size
    keypoints = np.array(
        [
            [40.0, 50.0],  # annotated, inside
            [40.0, 50.0],  # not annotated
            [-3.0, 50.0],  # left of the crop
            [60.0, size + 2.0],  # below the crop
            [-0.4, size - 0.6],  # inside, at the edge pixels
            [size - 0.5, 10.0],  # exactly on the right edge: outside
        ],
        np.float32,
    )
    visibility = np.array([2, 0, 2, 1, 1, 2])
    model = ModelConfig(input_size=size, num_joints=6, stacks=1, channels=16)
    for mode in ("render", "area"):
        targets, weights = make_targets(
            keypoints, visibility, model, DataConfig(target_downsample=mode)
        )
        for name in targets:
            np.testing.assert_array_equal(weights[name].numpy(), [1, 0, 0, 0, 1, 0])
            maxima = targets[name].numpy().max(axis=(0, 1))
            assert maxima[0] > 0.01 and maxima[4] > 0.01
            np.testing.assert_array_equal(maxima[[1, 2, 3, 5]], 0.0)


def test_area_downsample_averages_blocks():
    heatmaps = tf.reshape(tf.range(32, dtype=tf.float32), [4, 4, 2])
    pooled = area_downsample(heatmaps, 2).numpy()
    reference = heatmaps.numpy().reshape(2, 2, 2, 2, 2).mean(axis=(1, 3))
    np.testing.assert_allclose(pooled, reference)
    with pytest.raises(ValueError, match="cannot be area-downsampled"):
        area_downsample(tf.zeros([6, 6, 1]), 4)
