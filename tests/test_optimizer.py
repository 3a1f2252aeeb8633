"""pose_keras.optimizer.Adam: Keras' Adam rule, one fused TF op per variable."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from pose_keras.optimizer import Adam


def small_model():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((6, 6, 3))
    # No bias before BN: its gradient is zero up to rounding, and Adam scales rounding noise
    # up to full-size steps, so two correct implementations would part there.
    x = keras.layers.Conv2D(4, 3, padding="same", use_bias=False)(inputs)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.ReLU()(x)
    outputs = keras.layers.Conv2D(2, 1)(x)
    return keras.Model(inputs, outputs)


def schedule():
    return keras.optimizers.schedules.CosineDecay(1e-2, decay_steps=20, alpha=0.01)


def train(optimizer, steps=12):
    model = small_model()
    model.compile(optimizer=optimizer, loss="mse")
    rng = np.random.default_rng(1)
    images = rng.uniform(-1, 1, (8, 6, 6, 3)).astype("float32")
    targets = rng.uniform(-1, 1, (8, 6, 6, 2)).astype("float32")
    losses = [float(model.train_on_batch(images, targets)) for _ in range(steps)]
    return model, losses


@pytest.mark.parametrize("amsgrad", [False, True])
def test_same_weights_slots_and_losses_as_keras_adam(amsgrad):
    ours, our_losses = train(Adam(schedule(), amsgrad=amsgrad))
    reference, reference_losses = train(keras.optimizers.Adam(schedule(), amsgrad=amsgrad))
    assert our_losses[-1] < 0.8 * our_losses[0]  # it trains
    np.testing.assert_allclose(our_losses, reference_losses, rtol=1e-4, atol=1e-6)
    for mine, theirs in zip(ours.weights, reference.weights, strict=True):
        scale = max(float(np.abs(theirs.numpy()).max()), 1e-3)
        np.testing.assert_allclose(mine.numpy(), theirs.numpy(), atol=1e-4 * scale)
    for mine, theirs in zip(ours.optimizer.variables, reference.optimizer.variables, strict=True):
        scale = max(float(np.abs(theirs.numpy()).max()), 1e-6)
        np.testing.assert_allclose(mine.numpy(), theirs.numpy(), atol=1e-3 * scale)
    assert int(ours.optimizer.iterations.numpy()) == 12


def graph_op_types(optimizer, variables):
    optimizer.build(variables)

    @tf.function
    def step():
        optimizer.apply_gradients([(tf.ones_like(v), v) for v in variables])

    return [op.type for op in step.get_concrete_function().graph.get_operations()]


def test_one_resource_apply_adam_per_variable_and_no_per_variable_scalars():
    variables = [keras.Variable(np.zeros(shape, "float32")) for shape in [(3, 3), (4,), (2, 2, 2)]]
    types = graph_op_types(Adam(1e-3), variables)
    assert types.count("ResourceApplyAdam") == 3
    assert types.count("Pow") == 2  # beta_1^t and beta_2^t once per step, not per variable
    keras_types = graph_op_types(keras.optimizers.Adam(1e-3), variables)
    assert "ResourceApplyAdam" not in keras_types and len(types) < len(keras_types)


def test_amsgrad_and_strategies_take_keras_path():
    variables = [keras.Variable(np.zeros((3,), "float32"))]
    assert "ResourceApplyAdam" not in graph_op_types(Adam(1e-3, amsgrad=True), variables)
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    with strategy.scope():
        mirrored = [keras.Variable(np.zeros((3,), "float32"))]
        optimizer = Adam(1e-3)
        optimizer.build(mirrored)

    @tf.function
    def step():
        strategy.run(lambda: optimizer.apply_gradients([(tf.ones((3,)), mirrored[0])]))

    types = [op.type for op in step.get_concrete_function().graph.get_operations()]
    assert "ResourceApplyAdam" not in types
    step()
    assert int(optimizer.iterations.numpy()) == 1
    assert float(keras.ops.convert_to_numpy(mirrored[0]).max()) < 0  # it moved


def test_keras_file_with_the_optimizer_loads_in_safe_mode_and_resumes(tmp_path):
    from pose_keras.runs import load_model

    model, _ = train(Adam(1e-3), steps=3)
    path = tmp_path / "model.keras"
    model.save(path)
    restored = keras.saving.load_model(path, safe_mode=True)
    assert type(restored.optimizer) is Adam
    assert int(restored.optimizer.iterations.numpy()) == 3
    for mine, theirs in zip(restored.optimizer.variables, model.optimizer.variables, strict=True):
        np.testing.assert_array_equal(mine.numpy(), theirs.numpy())
    with pytest.raises(ValueError, match="not a pose_keras MultiScaleHourglass"):
        load_model(path, compile=True)  # it loads (compiled) and is then refused by type
