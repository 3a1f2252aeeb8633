"""Crop geometry (`pose_keras.transforms`): exact numbers for known boxes, and properties
over random centres, box sizes, rotations and flips (hypothesis)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pose_keras import transforms

# --------------------------------------------------------------------------------------
# Exact numbers
# --------------------------------------------------------------------------------------


def test_box_centre_goes_to_the_crop_centre_and_box_edges_to_pixel_edges():
    # A 200 px box around (300, 150) into a 64 px crop: zoom 64 / 200 = 0.32.
    matrix = transforms.crop_matrix((300.0, 150.0), 200.0, 64)
    np.testing.assert_allclose(matrix, [[0.32, 0.0, -64.5], [0.0, 0.32, -16.5]], atol=1e-12)
    corners = [(200.0, 50.0), (400.0, 50.0), (200.0, 250.0), (400.0, 250.0), (300.0, 150.0)]
    mapped = transforms.apply_affine(matrix, corners)
    # Box corners land on the crop's outer pixel edges (-0.5 and S - 0.5), the centre on
    # the middle of the crop ((S - 1) / 2).
    np.testing.assert_allclose(
        mapped, [[-0.5, -0.5], [63.5, -0.5], [-0.5, 63.5], [63.5, 63.5], [31.5, 31.5]], atol=1e-12
    )


def test_rotation_and_flip_by_hand():
    # 90 degrees counter-clockwise as displayed: a point right of the centre goes up.
    matrix = transforms.crop_matrix((10.0, 10.0), 64.0, 64, rotation_deg=90.0)
    np.testing.assert_allclose(
        transforms.apply_affine(matrix, [(20.0, 10.0), (10.0, 20.0)]),
        [[31.5, 21.5], [41.5, 31.5]],
        atol=1e-9,
    )
    # The flip mirrors x -> (S - 1) - x after the crop.
    flipped = transforms.crop_matrix((10.0, 10.0), 64.0, 64, flip=True)
    np.testing.assert_allclose(
        transforms.apply_affine(flipped, [(0.0, 0.0), (20.0, 5.0)]),
        [[41.5, 21.5], [21.5, 26.5]],
        atol=1e-9,
    )


def test_box_from_scale_and_scale_from_box():
    assert float(transforms.box_px_from_scale(1.5)) == 375.0  # 1.5 x 200 x 1.25
    assert float(transforms.box_px_from_scale(2.0, box_scale=1.0)) == 400.0
    center, scale = transforms.center_and_scale_from_box((10.0, 20.0, 110.0, 420.0))
    assert center.tolist() == [60.0, 220.0] and scale == 2.0
    with pytest.raises(ValueError, match="x1 > x0 and y1 > y0"):
        transforms.center_and_scale_from_box((5.0, 5.0, 5.0, 9.0))


def test_resize_matrix_is_edge_aligned():
    # 256 px input -> 64 px heatmap: pixel edges -0.5 and 255.5 map to -0.5 and 63.5.
    matrix = transforms.resize_matrix(256, 64)
    np.testing.assert_allclose(matrix, [[0.25, 0.0, -0.375], [0.0, 0.25, -0.375]])
    np.testing.assert_allclose(
        transforms.apply_affine(matrix, [(-0.5, 255.5), (127.5, 127.5)]),
        [[-0.5, 63.5], [31.5, 31.5]],
    )


# --------------------------------------------------------------------------------------
# Properties
# --------------------------------------------------------------------------------------

centres = st.tuples(
    st.floats(-2000, 4000, allow_nan=False), st.floats(-2000, 4000, allow_nan=False)
)
boxes = st.floats(1.0, 5000.0)
sizes = st.sampled_from([32, 64, 128, 256, 384])
rotations = st.floats(-180.0, 180.0)
points = st.lists(
    st.tuples(st.floats(-5000, 5000, allow_nan=False), st.floats(-5000, 5000, allow_nan=False)),
    min_size=1,
    max_size=20,
)


@settings(max_examples=300, deadline=None)
@given(centres, boxes, sizes, rotations, st.booleans(), points)
def test_inverse_after_forward_is_the_identity(center, box_px, size, rotation, flip, image_px):
    matrix = transforms.crop_matrix(center, box_px, size, rotation, flip)
    back = transforms.apply_affine(
        transforms.invert_affine(matrix), transforms.apply_affine(matrix, image_px)
    )
    # Coordinates reach 5000 px and zooms 384: relative error ~1e-15 of the largest term.
    np.testing.assert_allclose(back, image_px, rtol=0, atol=1e-6)
    np.testing.assert_allclose(
        transforms.compose_affine(transforms.invert_affine(matrix), matrix),
        [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]],
        atol=1e-9,
    )


@settings(max_examples=200, deadline=None)
@given(centres, boxes, sizes, rotations, st.booleans())
def test_centre_maps_to_the_crop_centre_and_lengths_scale_by_the_zoom(
    center, box_px, size, rotation, flip
):
    matrix = transforms.crop_matrix(center, box_px, size, rotation, flip)
    half = (size - 1) / 2.0
    np.testing.assert_allclose(
        transforms.apply_affine(matrix, [center])[0], [half, half], atol=1e-7 * (1 + box_px)
    )
    # A similarity: singular values equal the zoom; the determinant's sign is the flip.
    zoom = size / box_px
    np.testing.assert_allclose(np.linalg.svd(matrix[:, :2])[1], [zoom, zoom], rtol=1e-9)
    assert np.sign(np.linalg.det(matrix[:, :2])) == (-1.0 if flip else 1.0)


@settings(max_examples=200, deadline=None)
@given(centres, boxes, sizes, rotations, points)
def test_flip_is_the_mirror_of_the_unflipped_crop(center, box_px, size, rotation, image_px):
    plain = transforms.apply_affine(
        transforms.crop_matrix(center, box_px, size, rotation), image_px
    )
    mirrored = transforms.apply_affine(
        transforms.crop_matrix(center, box_px, size, rotation, flip=True), image_px
    )
    np.testing.assert_allclose(mirrored[:, 0], (size - 1) - plain[:, 0], atol=1e-6)
    np.testing.assert_allclose(mirrored[:, 1], plain[:, 1], atol=1e-6)


@settings(max_examples=100, deadline=None)
@given(st.sampled_from([32, 64, 128, 256]), st.sampled_from([1, 2, 4, 8]), points)
def test_resize_round_trip_is_the_identity(size, factor, crop_px):
    down = transforms.resize_matrix(size, size // factor)
    up = transforms.resize_matrix(size // factor, size)
    np.testing.assert_allclose(
        transforms.apply_affine(transforms.compose_affine(up, down), crop_px), crop_px, atol=1e-9
    )
