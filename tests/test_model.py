"""The multi-scale supervised hourglass: structure, gradients, learning, serialisation."""

import itertools
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
from conftest import seed_everything

from pose_keras.config import ModelConfig
from pose_keras.model import MultiScaleHourglass, build_model, output_names, prediction_name
from pose_keras.optimizer import Adam
from pose_keras.summary import count_macs

SCALE_SETS = [(1,), (1, 2), (1, 2, 4), (1, 2, 4, 8)]
TINY = dict(channels=16, stem_channels=16, regression_channels=16)


def tiny_model(**overrides):
    arguments = dict(stacks=2, input_size=64, num_joints=16, **TINY)
    arguments.update(overrides)
    seed_everything()
    return MultiScaleHourglass(**arguments)


def expected_shapes(input_size, stacks, scales, regression, joints=16):
    heatmap = input_size // 4
    shapes = {
        f"stack{stack}_scale{scale}": (None, heatmap // scale, heatmap // scale, joints)
        for stack in range(1, stacks + 1)
        for scale in scales
    }
    if regression:
        shapes["refined"] = (None, heatmap, heatmap, joints)
    return shapes


# Every (input size, stacks, scale set) combination; the regression switch and the deconv
# kind rotate through all four of their combinations across the scale sets, so each
# (regression, deconv) pair is met at every input size and stack count.
STRUCTURE_CASES = [
    (size, stacks, scales, bool(rotation % 2), ("transpose", "upsample")[rotation // 2 % 2])
    for (size_index, size), (stacks_index, stacks), (scales_index, scales) in itertools.product(
        enumerate((128, 256)), enumerate((1, 2, 4)), enumerate(SCALE_SETS)
    )
    for rotation in [(scales_index + stacks_index + size_index) % 4]
]


@pytest.mark.parametrize("input_size,stacks,scales,regression,deconv", STRUCTURE_CASES)
def test_output_names_and_shapes(input_size, stacks, scales, regression, deconv):
    model = MultiScaleHourglass(
        input_size=input_size,
        stacks=stacks,
        supervised_scales=scales,
        global_regression=regression,
        deconv=deconv,
        **TINY,
    )
    expected = expected_shapes(input_size, stacks, scales, regression)
    actual = {
        name: tuple(tensor.shape)
        for name, tensor in zip(model.output_names, model.outputs, strict=True)
    }
    assert actual == expected
    config = model.model_config
    assert list(model.output_names) == output_names(config)
    assert model.prediction_name == ("refined" if regression else f"stack{stacks}_scale1")


def test_structure_cases_cover_every_regression_and_deconv_pair_at_each_size_and_depth():
    seen = {(c[0], c[1], c[3], c[4]) for c in STRUCTURE_CASES}
    for size, stacks in itertools.product((128, 256), (1, 2, 4)):
        pairs = {(r, d) for s, k, r, d in seen if (s, k) == (size, stacks)}
        assert pairs == set(itertools.product((False, True), ("transpose", "upsample")))


def test_forward_pass_runs_and_heads_differ_by_scale():
    model = tiny_model(supervised_scales=(1, 2, 4, 8))
    images = np.random.default_rng(0).uniform(0, 255, (2, 64, 64, 3)).astype("float32")
    outputs = model(images, training=False)
    assert set(outputs) == set(model.output_names)
    assert tuple(outputs["stack2_scale8"].shape) == (2, 2, 2, 16)
    assert tuple(outputs["refined"].shape) == (2, 16, 16, 16)
    for tensor in outputs.values():
        assert np.isfinite(keras.ops.convert_to_numpy(tensor)).all()


def test_invalid_arguments_name_what_was_received():
    with pytest.raises(ValueError, match="multiple of 64.*100"):
        MultiScaleHourglass(input_size=100)
    with pytest.raises(ValueError, match=r"include 1 \(GT\).*\[2, 4\]"):
        MultiScaleHourglass(supervised_scales=(2, 4))
    with pytest.raises(ValueError, match="deconv.*'bilinear'"):
        MultiScaleHourglass(deconv="bilinear")


def head_kernel_names(model):
    names = [f"{name}_conv" for name in model.output_names if name != "refined"]
    if model.global_regression:
        names.append("regression_out_conv")
    return names


def heatmap_targets(model, batch, rng):
    """Gaussian targets at random keypoints for every output (a learnable mapping needs
    image content too: each keypoint is also drawn as a bright dot in the image)."""
    size = model.input_size
    heatmap_size = size // 4
    keypoints_input = rng.uniform(8, size - 8, (batch, model.num_joints, 2))
    images = np.full((batch, size, size, 3), 20.0, dtype="float32")
    for b in range(batch):
        for j, (x, y) in enumerate(keypoints_input[b]):
            xi, yi = int(round(x)), int(round(y))
            images[b, yi - 1 : yi + 2, xi - 1 : xi + 2, :] = 40 + 13 * j
    targets = {}
    for name in model.output_names:
        scale = 1 if name == "refined" else int(name.rsplit("_scale", 1)[1])
        side = heatmap_size // scale
        keypoints = (keypoints_input + 0.5) * side / size - 0.5
        grid = np.arange(side)
        dx = grid[None, None, None, :] - keypoints[..., 0][..., None, None]
        dy = grid[None, None, :, None] - keypoints[..., 1][..., None, None]
        maps = np.exp(-(dx**2 + dy**2) / 2.0)  # (batch, joints, side, side)
        targets[name] = np.transpose(maps, (0, 2, 3, 1)).astype("float32")
    return images, targets


def test_one_train_step_changes_every_head_kernel():
    model = tiny_model(supervised_scales=(1, 2, 4, 8))
    # Eager: one step, so tracing a graph would cost more than it saves.
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse", run_eagerly=True)
    images, targets = heatmap_targets(model, 2, np.random.default_rng(1))
    names = head_kernel_names(model)
    assert len(names) == 2 * 4 + 1
    before = {name: keras.ops.convert_to_numpy(model.get_layer(name).kernel) for name in names}
    model.train_on_batch(images, targets)
    for name in names:
        after = keras.ops.convert_to_numpy(model.get_layer(name).kernel)
        assert not np.allclose(after, before[name]), f"{name} received no update"


def test_tiny_model_overfits_one_batch():
    keras.utils.set_random_seed(0)
    model = tiny_model(stacks=1, supervised_scales=(1, 2))
    images, targets = heatmap_targets(model, 4, np.random.default_rng(2))
    model.compile(optimizer=Adam(2e-3), loss="mse")
    first = model.train_on_batch(images, targets, return_dict=True)["loss"]
    for _ in range(150):
        last = model.train_on_batch(images, targets, return_dict=True)["loss"]
    assert last < first / 10, (first, last)


def test_keras_file_round_trip_with_safe_mode(tmp_path):
    model = tiny_model(stacks=1, supervised_scales=(1, 4), deconv="upsample")
    images = np.random.default_rng(3).uniform(0, 255, (2, 64, 64, 3)).astype("float32")
    expected = model.predict(images, verbose=0)
    path = tmp_path / "model.keras"
    model.save(path)
    restored = keras.saving.load_model(path, safe_mode=True)
    assert isinstance(restored, MultiScaleHourglass)
    actual = restored.predict(images, verbose=0)
    assert set(actual) == set(expected)
    for name in expected:
        np.testing.assert_array_equal(actual[name], expected[name])


def test_get_config_from_config_round_trip():
    model = tiny_model(supervised_scales=(1, 2, 4), scale_feedback=False, deconv="upsample")
    config = model.get_config()
    clone = MultiScaleHourglass.from_config(config)
    assert clone.get_config() == config
    assert clone.count_params() == model.count_params()
    assert list(clone.output_names) == list(model.output_names)
    assert json.loads(json.dumps(config)) == config


def test_build_model_follows_model_config():
    config = ModelConfig(
        input_size=64,
        stacks=1,
        channels=16,
        stem_channels=16,
        regression_channels=16,
        supervised_scales=(1, 8),
        num_joints=14,
    )
    model = build_model(config)
    assert model.model_config == config
    assert list(model.output_names) == ["refined", "stack1_scale1", "stack1_scale8"]
    assert prediction_name(config) == "refined"
    assert model.outputs[0].shape[-1] == 14


def test_scale_feedback_adds_one_conv_per_coarse_head():
    with_feedback = tiny_model(stacks=1, supervised_scales=(1, 2, 4), scale_feedback=True)
    without = tiny_model(stacks=1, supervised_scales=(1, 2, 4), scale_feedback=False)
    feedback_layers = [
        layer.name for layer in with_feedback.layers if layer.name.endswith("_feedback")
    ]
    assert sorted(feedback_layers) == ["stack1_scale2_feedback", "stack1_scale4_feedback"]
    # Each feedback conv maps 16 heatmaps to 16 channels: 16 * 16 weights + 16 biases.
    assert with_feedback.count_params() - without.count_params() == 2 * (16 * 16 + 16)


@pytest.mark.parametrize(
    "stacks,channels,params,gmac",
    [(4, 64, 0.95e6, 2.2), (2, 256, 6.6e6, 8.3)],
)
def test_plain_hourglass_matches_analytic_size(stacks, channels, params, gmac):
    # SPEC §1: plain stacked hourglass (Newell et al.), 256 px input, 16 joints, without our
    # heads and regression: nearest upsampling, GT supervision only.
    model = MultiScaleHourglass(
        stacks=stacks,
        channels=channels,
        supervised_scales=(1,),
        global_regression=False,
        deconv="upsample",
    )
    assert abs(model.count_params() - params) / params < 0.05
    assert abs(count_macs(model) / 1e9 - gmac) / gmac < 0.05


JAX_SCRIPT = """
import json, os
import numpy as np
import keras
from pose_keras.model import MultiScaleHourglass
model = MultiScaleHourglass(stacks=2, input_size=64, channels=16, stem_channels=16,
                            regression_channels=16, supervised_scales=(1, 2, 4))
model.compile(optimizer="adam", loss="mse")
images = np.random.default_rng(0).uniform(0, 255, (2, 64, 64, 3)).astype("float32")
targets = {name: np.zeros((2,) + tuple(t.shape[1:]), "float32")
           for name, t in zip(model.output_names, model.outputs)}
before = keras.ops.convert_to_numpy(model.get_layer("stack1_scale4_conv").kernel).copy()
loss = model.train_on_batch(images, targets, return_dict=True)["loss"]
after = keras.ops.convert_to_numpy(model.get_layer("stack1_scale4_conv").kernel)
print(json.dumps({
    "backend": keras.backend.backend(),
    "params": model.count_params(),
    "shapes": {n: list(t.shape[1:]) for n, t in zip(model.output_names, model.outputs)},
    "loss_finite": bool(np.isfinite(loss)),
    "updated": bool(not np.allclose(before, after)),
}))
"""


def test_same_model_trains_under_jax_backend():
    pytest.importorskip("jax")
    environment = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu")
    result = subprocess.run(
        [sys.executable, "-c", JAX_SCRIPT],
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["backend"] == "jax"
    model = MultiScaleHourglass(stacks=2, input_size=64, supervised_scales=(1, 2, 4), **TINY)
    assert report["params"] == model.count_params()
    assert report["shapes"] == {
        name: list(tensor.shape[1:])
        for name, tensor in zip(model.output_names, model.outputs, strict=True)
    }
    assert report["loss_finite"] and report["updated"]
