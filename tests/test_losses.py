"""Eq. 1 loss: per-joint masking, mean over joints, sum over outputs, the MSE variant."""

import keras
import numpy as np
import pytest

from pose_keras.config import ModelConfig, TrainConfig
from pose_keras.losses import HeatmapLoss, build_losses, resolve_loss_weights
from pose_keras.model import MultiScaleHourglass


def eq1_numpy(targets, heatmaps, weights):
    """Paper Eq. 1, written independently: (1/N) sum_n sum_xy (P - G)^2, masked joints
    contributing zero, N = all joints, then the mean over the batch."""
    batch, _, _, joints = targets.shape
    total = 0.0
    for b in range(batch):
        for n in range(joints):
            difference = heatmaps[b, :, :, n].astype(np.float64) - targets[b, :, :, n]
            total += weights[b, n] * np.sum(difference**2)
    return total / (batch * joints)


def random_case(rng, batch=3, size=8, joints=5):
    targets = rng.uniform(0, 1, (batch, size, size, joints)).astype("float32")
    heatmaps = rng.normal(0, 1, (batch, size, size, joints)).astype("float32")
    weights = (rng.uniform(size=(batch, joints)) > 0.4).astype("float32")
    return targets, heatmaps, weights


def test_eq1_matches_an_independent_numpy_computation_with_masks():
    rng = np.random.default_rng(0)
    for size in (2, 8, 16):
        targets, heatmaps, weights = random_case(rng, size=size)
        assert 0 < weights.sum() < weights.size  # some joints masked, some not
        value = float(HeatmapLoss()(targets, heatmaps, sample_weight=weights))
        np.testing.assert_allclose(value, eq1_numpy(targets, heatmaps, weights), rtol=1e-5)


def test_masked_joints_contribute_nothing_and_unmasked_ones_do():
    rng = np.random.default_rng(1)
    targets, heatmaps, weights = random_case(rng)
    weights[0, 2], weights[1, 2] = 0.0, 1.0
    loss = HeatmapLoss()
    reference = float(loss(targets, heatmaps, sample_weight=weights))
    changed = heatmaps.copy()
    changed[0, :, :, 2] += 100.0  # a masked joint: no effect
    assert float(loss(targets, changed, sample_weight=weights)) == pytest.approx(
        reference, rel=1e-5
    )
    changed = heatmaps.copy()
    changed[1, :, :, 2] += 1.0  # an annotated joint: the loss grows
    assert float(loss(targets, changed, sample_weight=weights)) > reference + 1.0


def test_denominator_is_all_joints_not_annotated_joints():
    # One annotated joint out of four with squared error 1 at each of 4 pixels: Eq. 1 gives
    # 4 / 4 joints = 1, not 4 / 1 annotated joint.
    targets = np.zeros((1, 2, 2, 4), "float32")
    heatmaps = np.ones((1, 2, 2, 4), "float32")
    weights = np.array([[0.0, 1.0, 0.0, 0.0]], "float32")
    assert float(HeatmapLoss()(targets, heatmaps, sample_weight=weights)) == pytest.approx(1.0)


def test_mse_mode_is_eq1_divided_by_the_pixels_of_the_output():
    rng = np.random.default_rng(2)
    for size in (2, 4, 16):
        targets, heatmaps, weights = random_case(rng, size=size)
        eq1 = float(HeatmapLoss("eq1")(targets, heatmaps, sample_weight=weights))
        mse = float(HeatmapLoss("mse")(targets, heatmaps, sample_weight=weights))
        assert mse == pytest.approx(eq1 / (size * size), rel=1e-5)
    # Without masks, the mse mode is exactly Keras' built-in MSE.
    keras_mse = float(keras.losses.MeanSquaredError()(targets, heatmaps))
    assert float(HeatmapLoss("mse")(targets, heatmaps)) == pytest.approx(keras_mse, rel=1e-5)


def test_unknown_mode_is_rejected():
    with pytest.raises(ValueError, match="mode.*'l1'"):
        HeatmapLoss("l1")


NAMES = ["refined", "stack1_scale1", "stack1_scale4", "stack2_scale1", "stack2_scale4"]


def test_loss_weights_by_full_name_scale_suffix_and_stack_prefix():
    weights = resolve_loss_weights({"scale4": 0.5, "stack2_scale4": 3, "refined": 2}, NAMES)
    assert weights == {
        "refined": 2.0,
        "stack1_scale1": 1.0,
        "stack1_scale4": 0.5,
        "stack2_scale1": 1.0,
        "stack2_scale4": 3.0,  # the full name beats the suffix
    }
    assert resolve_loss_weights({"stack1": 0.0}, NAMES)["stack1_scale4"] == 0.0
    assert resolve_loss_weights({}, NAMES) == dict.fromkeys(NAMES, 1.0)


def test_unknown_or_ambiguous_loss_weight_keys_name_the_outputs():
    with pytest.raises(ValueError, match=r"\['scale8', 'stack3'\].*stack1_scale4"):
        resolve_loss_weights({"scale8": 1.0, "stack3": 1.0, "refined": 1.0}, NAMES)
    with pytest.raises(ValueError, match=r"\['scale4', 'stack1'\] both match.*stack1_scale4"):
        resolve_loss_weights({"stack1": 0.5, "scale4": 0.5}, NAMES)


def tiny_model():
    keras.utils.set_random_seed(0)
    return MultiScaleHourglass(
        stacks=1,
        input_size=64,
        channels=16,
        stem_channels=16,
        regression_channels=16,
        supervised_scales=(1, 2),
    )


def test_compiled_total_is_the_weighted_sum_of_eq1_over_every_output():
    model = tiny_model()
    model_config = model.model_config
    train_config = TrainConfig(loss_weights={"scale2": 0.25, "refined": 2.0})
    losses, loss_weights = build_losses(model_config, train_config)
    assert set(losses) == set(model.output_names) == {"refined", "stack1_scale1", "stack1_scale2"}
    model.compile(optimizer="adam", loss=losses, loss_weights=loss_weights, run_eagerly=True)
    rng = np.random.default_rng(3)
    images = rng.uniform(0, 255, (2, 64, 64, 3)).astype("float32")
    predictions = model.predict(images, verbose=0)
    targets = {
        name: rng.uniform(0, 1, predictions[name].shape).astype("float32") for name in predictions
    }
    mask = (rng.uniform(size=(2, 16)) > 0.3).astype("float32")
    weights = dict.fromkeys(predictions, mask)
    logs = model.evaluate(images, targets, sample_weight=weights, return_dict=True, verbose=0)
    expected = {
        name: eq1_numpy(targets[name], predictions[name], mask) for name in model.output_names
    }
    for name, value in expected.items():
        assert logs[f"{name}_loss"] == pytest.approx(value, rel=1e-4)
    total = 2.0 * expected["refined"] + expected["stack1_scale1"] + 0.25 * expected["stack1_scale2"]
    assert logs["loss"] == pytest.approx(total, rel=1e-4)

    # Masking one more joint in the batch lowers each output's loss by exactly its share.
    mask_more = mask.copy()
    joint = int(np.flatnonzero(mask[0])[0])
    mask_more[0, joint] = 0.0
    logs_more = model.evaluate(
        images,
        targets,
        sample_weight=dict.fromkeys(predictions, mask_more),
        return_dict=True,
        verbose=0,
    )
    share = np.sum((predictions["refined"][0, ..., joint] - targets["refined"][0, ..., joint]) ** 2)
    assert logs["refined_loss"] - logs_more["refined_loss"] == pytest.approx(share / 32, rel=1e-3)


def test_loss_round_trips_through_a_safe_mode_keras_file(tmp_path):
    model = tiny_model()
    losses, loss_weights = build_losses(model.model_config, TrainConfig(loss="mse"))
    model.compile(optimizer="adam", loss=losses, loss_weights=loss_weights)
    model.optimizer.build(model.trainable_variables)
    path = tmp_path / "model.keras"
    model.save(path)
    restored = keras.saving.load_model(path, safe_mode=True, compile=True)
    assert isinstance(restored.loss["stack1_scale2"], HeatmapLoss)
    assert restored.loss["stack1_scale2"].mode == "mse"
    config = keras.saving.serialize_keras_object(HeatmapLoss("mse"))
    clone = keras.saving.deserialize_keras_object(config, safe_mode=True)
    assert isinstance(clone, HeatmapLoss) and clone.mode == "mse"
    targets = np.zeros((1, 4, 4, 2), "float32")
    assert float(clone(targets, targets + 1.0)) == pytest.approx(1.0)
    assert restored.output_names == model.output_names


def test_build_losses_uses_the_model_config_outputs():
    model_config = ModelConfig(stacks=2, supervised_scales=(1, 4), global_regression=False)
    losses, weights = build_losses(model_config, TrainConfig(loss_weights={"stack1": 0.5}))
    assert sorted(losses) == ["stack1_scale1", "stack1_scale4", "stack2_scale1", "stack2_scale4"]
    assert weights == {
        "stack1_scale1": 0.5,
        "stack1_scale4": 0.5,
        "stack2_scale1": 1.0,
        "stack2_scale4": 1.0,
    }
    with pytest.raises(ValueError, match="refined"):
        build_losses(model_config, TrainConfig(loss_weights={"refined": 1.0}))
