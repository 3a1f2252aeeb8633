"""Property-based tests (hypothesis) for heatmap decoding and the metrics' invariances.

The crop geometry's properties (inverse after forward is the identity, ...) are in
tests/test_transforms.py. Here: decoding is equivariant to shifts of the heatmap and
invariant to its positive scaling; PCKh does not change when predictions, ground truth and
head boxes move or scale together, or when people are reordered.
"""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from pose_keras import decode, metrics

SIZE = 24
# Keep rendered joints this far from the map's border, where DARK's blur is truncated.
MARGIN = 6
settings.register_profile("pose_keras", max_examples=60, deadline=None, derandomize=True)
settings.load_profile("pose_keras")


def gaussian_map(x, y, size=SIZE, sigma=1.0):
    ys, xs = np.mgrid[0:size, 0:size]
    return np.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * sigma**2))


points = st.tuples(st.floats(MARGIN, SIZE - 1 - MARGIN), st.floats(MARGIN, SIZE - 1 - MARGIN))
# DARK's Taylor step is exact only up to its blur and border; quarter and arg-max exactly.
TOLERANCE = {"none": 1e-9, "quarter": 1e-9, "dark": 1e-3}


@given(points, st.integers(-2, 2), st.integers(-2, 2), st.sampled_from(["none", "quarter", "dark"]))
def test_decoding_moves_with_the_heatmap(point, shift_x, shift_y, refine):
    x, y = point
    original = gaussian_map(x, y)[..., None]
    moved = gaussian_map(x + shift_x, y + shift_y)[..., None]
    before, _ = decode.decode_heatmaps(original, refine=refine)
    after, _ = decode.decode_heatmaps(moved, refine=refine)
    np.testing.assert_allclose(after - before, [[shift_x, shift_y]], atol=TOLERANCE[refine])


@given(points, st.floats(1e-3, 1e3), st.sampled_from(["none", "quarter", "dark"]))
def test_decoded_locations_ignore_a_positive_scale_and_scores_follow_it(point, factor, refine):
    heatmaps = gaussian_map(*point)[..., None]
    keypoints, scores = decode.decode_heatmaps(heatmaps, refine=refine)
    scaled_keypoints, scaled_scores = decode.decode_heatmaps(heatmaps * factor, refine=refine)
    np.testing.assert_allclose(scaled_keypoints, keypoints, atol=1e-9)
    np.testing.assert_allclose(scaled_scores, scores * factor, rtol=1e-9, atol=1e-12)


@given(points)
def test_decoding_lands_within_a_quarter_pixel_of_a_rendered_joint(point):
    keypoints, _ = decode.decode_heatmaps(gaussian_map(*point)[..., None], refine="quarter")
    assert np.abs(keypoints[0] - point).max() <= 0.5  # the quarter shift's worst case
    dark, _ = decode.decode_heatmaps(gaussian_map(*point)[..., None], refine="dark")
    np.testing.assert_allclose(dark[0], point, atol=0.02)  # DARK: near-exact on a Gaussian


def random_people(seed, people=6, joints=16):
    rng = np.random.default_rng(seed)
    truth = rng.uniform(0, 400, (people, joints, 2))
    predicted = truth + rng.normal(0, 12, truth.shape)
    annotated = rng.uniform(size=(people, joints)) > 0.2
    corners = rng.uniform(0, 300, (people, 2))
    head_boxes = np.concatenate([corners, corners + rng.uniform(20, 60, (people, 2))], axis=1)
    return predicted, truth, annotated, head_boxes


def pckh(predicted, truth, annotated, head_boxes):
    distances = metrics.normalized_distances(
        predicted, truth, annotated, metrics.head_sizes(head_boxes)
    )
    return metrics.pooled_pck(distances, 0.5), metrics.joint_pck(distances, 0.5)


@given(
    st.integers(0, 2**31),
    st.floats(-1e3, 1e3),
    st.floats(-1e3, 1e3),
    st.floats(0.05, 20.0),
)
def test_pckh_is_invariant_to_moving_and_scaling_everything_together(seed, dx, dy, factor):
    predicted, truth, annotated, head_boxes = random_people(seed)
    pooled, per_joint = pckh(predicted, truth, annotated, head_boxes)
    offset = np.array([dx, dy])
    moved = pckh(
        (predicted + offset) * factor,
        (truth + offset) * factor,
        annotated,
        (head_boxes + np.tile(offset, 2)) * factor,
    )
    # Distances are compared with `<=` at the threshold, so rounding could flip a joint
    # lying exactly on it; random data puts none there.
    assert moved[0] == pooled
    np.testing.assert_array_equal(moved[1], per_joint)


@given(st.integers(0, 2**31), st.permutations(range(6)))
def test_pckh_does_not_depend_on_the_order_of_people(seed, order):
    predicted, truth, annotated, head_boxes = random_people(seed)
    order = list(order)
    assert (
        pckh(predicted[order], truth[order], annotated[order], head_boxes[order])[0]
        == (pckh(predicted, truth, annotated, head_boxes)[0])
    )


@given(st.integers(0, 2**31))
def test_perfect_predictions_score_100_and_unannotated_joints_do_not_count(seed):
    predicted, truth, annotated, head_boxes = random_people(seed)
    assert pckh(truth, truth, annotated, head_boxes)[0] == 100.0
    wild = np.where(annotated[..., None], truth, 1e9)  # far off only where not annotated
    assert pckh(wild, truth, annotated, head_boxes)[0] == 100.0
