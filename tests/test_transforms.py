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


# --------------------------------------------------------------------------------------
# Exact numbers: boxes, composition, back-projection
# --------------------------------------------------------------------------------------


def test_whole_image_box_and_box_checks_by_exact_numbers():
    assert transforms.full_image_box(480, 640).tolist() == [-0.5, -0.5, 639.5, 479.5]
    assert transforms.parse_box(["1", 2, 3.5, 4], "b") == [1.0, 2.0, 3.5, 4.0]
    with pytest.raises(ValueError, match=r"^boxes\[2\]: a box needs x1 > x0"):
        transforms.parse_box([5, 0, 5, 10], "boxes[2]")
    with pytest.raises(ValueError, match=r"^b: a box is \[x0, y0, x1, y1\] \(4 numbers\)"):
        transforms.parse_box([0, 0, float("nan"), 10], "b")
    with pytest.raises(ValueError, match=r"within \+-1e\+06 px"):
        transforms.parse_box([0, 0, 2e6, 10], "b")


def test_heatmap_px_to_image_px_by_hand():
    # A 100 px box around (200, 100) into a 64 px crop (zoom 0.64), heatmap 16 px (1/4).
    crop = transforms.crop_matrix((200.0, 100.0), 100.0, 64)
    to_input = transforms.resize_matrix(16, 64)
    np.testing.assert_allclose(to_input, [[4.0, 0.0, 1.5], [0.0, 4.0, 1.5]], atol=1e-12)
    to_image = transforms.compose_affine(transforms.invert_affine(crop), to_input)
    # Heatmap pixel 7.5 (the centre of a 16 px map) is the box centre; one heatmap pixel is
    # 4 input px = 4 / 0.64 = 6.25 image px.
    np.testing.assert_allclose(
        transforms.apply_affine(to_image, [[7.5, 7.5], [8.5, 7.5], [-0.5, -0.5]]),
        [[200.0, 100.0], [206.25, 100.0], [150.0, 50.0]],
        atol=1e-9,
    )


def test_a_detector_box_gives_the_crop_of_its_longer_side():
    # A 60 x 160 box: the longer side (160) x 1.25 = 200 px square around (130, 180).
    center, scale = transforms.center_and_scale_from_box((100.0, 100.0, 160.0, 260.0))
    assert center.tolist() == [130.0, 180.0] and scale == 0.8
    box_px = float(transforms.box_px_from_scale(scale))
    assert box_px == pytest.approx(200.0, abs=1e-12)
    matrix = transforms.crop_matrix(center, box_px, 256)
    np.testing.assert_allclose(matrix, [[1.28, 0.0, -38.9], [0.0, 1.28, -102.9]], atol=1e-9)
