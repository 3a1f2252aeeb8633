"""The inference stage (`pose_keras.inference`): its TF crop geometry against the numpy
reference `transforms.py`, its TF decoding against `decode.py`, crops of person boxes, and
`predict_crops` with the flip test (a tiny untrained model: the mechanics, not the accuracy,
are under test here). Parity of the exported graph with `predict` is in tests/test_export.py."""

import numpy as np
import pytest
import tensorflow as tf

from pose_keras import decode, inference, transforms
from pose_keras.joints import MPII
from pose_keras.transforms import apply_affine, crop_matrix, invert_affine


@pytest.fixture(scope="module")
def tiny_model(tiny_model_path):
    from pose_keras.runs import load_model

    return load_model(tiny_model_path)


# --------------------------------------------------------------------------------------
# Crop geometry: TF against the numpy reference
# --------------------------------------------------------------------------------------


def test_tf_crop_matrix_equals_numpy_convention():
    rng = np.random.default_rng(3)
    for _ in range(20):
        center = rng.uniform(-50, 700, size=2)
        box_px = rng.uniform(20, 900)
        size = int(rng.choice([64, 128, 256]))
        rotation = rng.uniform(-180, 180)
        flip = bool(rng.integers(2))
        expected = transforms.crop_matrix(center, box_px, size, rotation, flip)
        actual = inference.crop_matrix(center, box_px, size, rotation, flip).numpy()
        # float64 in both: the same numbers to rounding.
        np.testing.assert_allclose(actual, expected, rtol=1e-12, atol=1e-9)
        np.testing.assert_allclose(
            inference.invert_affine(actual).numpy(), transforms.invert_affine(expected), atol=1e-9
        )


def test_tf_affine_helpers_equal_the_numpy_ones_on_batches():
    rng = np.random.default_rng(4)
    matrices = np.stack(
        [
            transforms.crop_matrix(rng.uniform(0, 500, 2), rng.uniform(50, 400), 64, angle)
            for angle in (0.0, 30.0, -75.0)
        ]
    )
    points = rng.uniform(-20, 600, size=(3, 16, 2))
    np.testing.assert_allclose(
        inference.apply_affine(matrices, points).numpy(),
        transforms.apply_affine(matrices, points),
        atol=1e-9,
    )
    resize = transforms.resize_matrix(16, 64)
    np.testing.assert_allclose(
        inference.compose_affine(matrices, resize).numpy(),
        np.stack([transforms.compose_affine(matrix, resize) for matrix in matrices]),
        atol=1e-9,
    )
    np.testing.assert_allclose(
        inference.heatmap_to_image_matrices(matrices, 64, 16).numpy(),
        decode.heatmap_to_image_matrices(matrices, 64, 16),
        atol=1e-9,
    )


def test_box_crop_matrix_is_the_numpy_box_convention_by_exact_numbers():
    # A 100 x 80 box around (140, 60): longer side 100, x 1.25 = 125 px -> 64 px.
    box = [100.0, 10.0, 180.0, 110.0]
    center, scale = transforms.center_and_scale_from_box(box)
    expected = transforms.crop_matrix(center, float(transforms.box_px_from_scale(scale)), 64)
    actual = inference.box_crop_matrix(box, 64, 1.25).numpy()
    np.testing.assert_allclose(actual, expected, atol=1e-12)
    np.testing.assert_allclose(actual, [[0.512, 0.0, -40.18], [0.0, 0.512, 0.78]], atol=1e-12)


def test_a_crop_at_zoom_one_copies_the_pixels_exactly():
    # A 64 px box on pixel edges maps image pixel (x, y) to crop pixel (x - 10, y - 20).
    image = np.random.default_rng(5).integers(0, 256, (100, 120, 3), dtype=np.uint8)
    box = [9.5, 19.5, 73.5, 83.5]
    crops, matrices = inference.crop_people(image, [box], input_size=64, box_scale=1.0)
    np.testing.assert_allclose(matrices[0], [[1.0, 0.0, -10.0], [0.0, 1.0, -20.0]], atol=1e-12)
    np.testing.assert_array_equal(crops[0], image[20:84, 10:74].astype(np.float32))


def test_whole_image_box_is_the_pixel_edges():
    np.testing.assert_array_equal(
        inference.whole_image_box(100, 300).numpy(), inference.full_image_box(100, 300)
    )
    assert inference.full_image_box(100, 300).tolist() == [-0.5, -0.5, 299.5, 99.5]


# --------------------------------------------------------------------------------------
# Decoding: TF against the numpy reference
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("refine", ["quarter", "none"])
def test_tf_decoding_equals_numpy_decoding(refine):
    rng = np.random.default_rng(6)
    heatmaps = rng.uniform(0, 1, size=(4, 16, 12, 5))
    heatmaps[0, 0, 3, 0] = 2.0  # a peak on the border: no shift on that axis
    heatmaps[1, 7, 11, 1] = 2.0
    heatmaps[2, 5, 5, 2], heatmaps[2, 5, 4, 2], heatmaps[2, 5, 6, 2] = 2.0, 1.5, 1.5  # a tie
    keypoints, scores = inference.decode_heatmaps(tf.constant(heatmaps), refine)
    expected_keypoints, expected_scores = decode.decode_heatmaps(heatmaps, refine=refine)
    np.testing.assert_array_equal(keypoints.numpy(), expected_keypoints)
    np.testing.assert_array_equal(scores.numpy(), expected_scores)
    if refine == "quarter":
        assert keypoints.numpy()[0, 0, 1] == 0.0  # on the top row: no shift in y
        assert keypoints.numpy()[0, 0, 0] in (2.75, 3.25)
        assert keypoints.numpy()[2, 2, 0] == 5.0  # equal neighbours: no shift in x


def test_dark_is_refused_inside_the_graph():
    with pytest.raises(ValueError, match="does not run in the graph"):
        inference.decode_heatmaps(tf.zeros([1, 4, 4, 1], tf.float64), "dark")


@pytest.mark.parametrize("shift_px", [0, 1])
def test_tf_flip_back_equals_numpy_flip_back(shift_px):
    heatmaps = np.random.default_rng(7).uniform(size=(2, 8, 8, 16))
    np.testing.assert_array_equal(
        inference.flip_back(tf.constant(heatmaps), MPII.flip_index, shift_px).numpy(),
        decode.flip_back(heatmaps, MPII.flip_index, shift_px=shift_px),
    )


# --------------------------------------------------------------------------------------
# Crops and predict_crops (moved from tests/test_predict.py)
# --------------------------------------------------------------------------------------


def test_crop_people_puts_image_points_where_the_matrix_says():
    image = np.zeros((120, 200, 3), np.uint8)
    image[40, 150] = (255, 255, 255)  # one white pixel at x=150, y=40
    box = [100.0, 10.0, 180.0, 110.0]  # 100 px tall: crop side 125 px -> 64 px
    crops, matrices = inference.crop_people(image, [box], input_size=64, box_scale=1.25)
    assert crops.shape == (1, 64, 64, 3) and crops.dtype == np.float32
    expected = apply_affine(matrices[0], [[150.0, 40.0]])[0]
    brightest = np.unravel_index(np.argmax(crops[0, ..., 0]), (64, 64))[::-1]
    assert np.abs(np.asarray(brightest) - expected).max() <= 0.5
    # The box centre goes to the crop centre, and the box's height to 64 / 1.25 px.
    np.testing.assert_allclose(
        apply_affine(matrices[0], [[140.0, 60.0]]), [[31.5, 31.5]], atol=1e-9
    )
    np.testing.assert_allclose(matrices[0][0, 0], 64 / 125.0)


def test_crop_people_without_boxes_takes_the_whole_image():
    image = np.full((100, 300, 3), 200, np.uint8)
    crops, matrices = inference.crop_people(image, None, input_size=64, box_scale=1.0)
    # Image pixel edges map to crop pixel edges along the longer side.
    np.testing.assert_allclose(
        apply_affine(matrices[0], [[-0.5, 49.5], [299.5, 49.5]]),
        [[-0.5, 31.5], [63.5, 31.5]],
        atol=1e-9,
    )
    assert crops[0, 31, :, 0].min() > 150  # the image spans the full width of the crop


def test_crops_are_within_one_grey_level_of_opencv():
    """The TF warp (the serving graph's) against `cv2.warpAffine`, predict's old crop."""
    import cv2

    image = np.random.default_rng(8).integers(0, 256, (150, 170, 3), dtype=np.uint8)
    crops, matrices = inference.crop_people(image, [[20.0, 10.0, 140.0, 130.0]], 64)
    reference = cv2.warpAffine(
        image, matrices[0], (64, 64), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT
    )
    assert np.abs(crops[0] - reference).max() <= 1.0


def test_predict_crops_maps_back_to_image_px_and_flip_test_is_symmetric(tiny_model):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (180, 160, 3), dtype=np.uint8)
    boxes = [[20.0, 10.0, 120.0, 170.0], [40.0, 30.0, 150.0, 160.0]]
    crops, matrices = inference.crop_people(image, boxes, input_size=64)
    result = inference.predict_crops(tiny_model, crops, matrices, MPII, flip=True, batch_size=1)
    keypoints, scores, heatmaps = result
    assert keypoints.shape == (2, 16, 2) and scores.shape == (2, 16)
    assert heatmaps.shape == (2, 16, 16, 16)
    # Scores of a random model are heatmap values of ~1e-3 and can sit near zero: compare
    # with an absolute tolerance on the heatmaps' scale, not a relative one.
    near_zero = 1e-4 * np.abs(heatmaps).max()
    np.testing.assert_allclose(scores, heatmaps.max(axis=(1, 2)), rtol=1e-6, atol=near_zero)
    # The mirrored crops (made with crop_matrix(flip=True)) must give the same image
    # keypoints under the flip test, which averages the same two views. In a mirrored crop
    # left and right trade names (as in training with flip augmentation), so the mirrored
    # result's joint j is the original's joint flip_index[j].
    mirrored_matrices = []
    for box in boxes:
        from pose_keras.transforms import box_px_from_scale, center_and_scale_from_box

        center, scale = center_and_scale_from_box(box)
        mirrored_matrices.append(
            crop_matrix(center, float(box_px_from_scale(scale)), 64, flip=True)
        )
    mirrored = inference.predict_crops(
        tiny_model, crops[:, :, ::-1], np.stack(mirrored_matrices), MPII, flip=True
    )
    swap = list(MPII.flip_index)
    np.testing.assert_allclose(mirrored.keypoints[:, swap], keypoints, atol=1e-3)
    np.testing.assert_allclose(mirrored.scores[:, swap], scores, rtol=1e-5, atol=near_zero)
    # Keypoints are the decoded heatmap peaks mapped through the inverse crop.
    peak = np.unravel_index(np.argmax(heatmaps[0, :, :, 3]), (16, 16))[::-1]
    input_px = (np.asarray(peak, float) + 0.5) * 4 - 0.5
    back = apply_affine(invert_affine(matrices[0]), input_px[None])[0]
    assert np.abs(back - keypoints[0, 3]).max() <= 0.25 * 4 * (160 * 1.25 / 64) + 1e-6


def test_predict_crops_is_the_numpy_decoding_of_its_heatmaps(tiny_model):
    """Quarter, none and DARK: the TF path and numpy's `decode` on the same heatmaps agree."""
    image = np.random.default_rng(9).integers(0, 255, (120, 100, 3), dtype=np.uint8)
    crops, matrices = inference.crop_people(image, [[10.0, 5.0, 90.0, 115.0]], input_size=64)
    for refine in decode.REFINEMENTS:
        result = inference.predict_crops(tiny_model, crops, matrices, MPII, refine=refine)
        keypoints_heatmap_px, scores = decode.decode_heatmaps(result.heatmaps, refine=refine)
        expected = decode.heatmap_to_image(keypoints_heatmap_px, matrices, 64, 16)
        np.testing.assert_allclose(result.keypoints, expected, atol=1e-4)
        np.testing.assert_allclose(result.scores, scores, atol=1e-6)


def test_the_network_is_traced_once_per_model(tiny_model):
    first = inference.inference_of(tiny_model, MPII)
    assert inference.inference_of(tiny_model, MPII) is first


def test_bad_crops_and_boxes_are_named():
    with pytest.raises(ValueError, match=r"boxes: a box needs x1 > x0"):
        inference.crop_people(np.zeros((20, 20, 3), np.uint8), [[5, 5, 1, 10]], input_size=64)
    with pytest.raises(ValueError, match=r"image must have shape \(H, W, 3\)"):
        inference.crop_people(np.zeros((20, 20), np.uint8), None, input_size=64)
