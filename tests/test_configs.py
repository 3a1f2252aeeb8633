"""Every configuration in configs/ loads as `--config` does and builds its model."""

import json
from pathlib import Path

import keras
import numpy as np
import pytest

from pose_keras.config import Config
from pose_keras.joints import get_joint_set
from pose_keras.model import MultiScaleHourglass, build_model, output_names

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.json"))


def test_the_documented_configs_exist():
    names = {path.stem for path in CONFIGS}
    assert {"mpii_paper", "mpii_baseline", "flic_paper", "lsp", "coco_topdown"} <= names
    assert "ablation_synthetic" in names


@pytest.mark.parametrize("path", CONFIGS, ids=[path.stem for path in CONFIGS])
def test_config_loads_and_builds_its_model(path):
    config = Config.from_json(path)  # what `python -m pose_keras.fit --config` does
    # Every key in the file is spelled as the config spells it (no silent defaults).
    assert Config.from_dict(json.loads(path.read_text())) == config
    if config.data.train_records:
        assert config.train.run_dir == f"runs/{path.stem}"
    if config.data.train_records and config.data.joints != "auto":  # auto: the manifest's
        assert config.model.num_joints == get_joint_set(config.data.joints).num_joints
    model = build_model(config.model)
    assert sorted(model.output_names) == output_names(config.model)
    size = config.model.input_size
    assert tuple(model.input_shape) == (None, size, size, 3)
    assert tuple(model.get_layer("stack1_scale1").output.shape) == (
        None,
        size // 4,
        size // 4,
        config.model.num_joints,
    )


def test_paper_and_baseline_differ_only_in_the_two_contributions():
    paper = Config.from_json(CONFIGS[0].with_name("mpii_paper.json"))
    baseline = Config.from_json(CONFIGS[0].with_name("mpii_baseline.json"))
    # The paper's network and recipe are the library defaults (Ke et al. §3).
    assert paper.model == Config().model
    assert (paper.train.epochs, paper.train.learning_rate) == (100, 5e-4)
    differences = {
        f"{section}.{key}": (value, baseline.to_dict()[section][key])
        for section, values in paper.to_dict().items()
        for key, value in values.items()
        if baseline.to_dict()[section][key] != value
    }
    assert differences == {
        "model.supervised_scales": ([1, 2, 4, 8], [1]),
        "model.global_regression": (True, False),
        "train.run_dir": ("runs/mpii_paper", "runs/mpii_baseline"),
    }


def test_regression_without_residual_outputs_the_correction_alone():
    arguments = dict(
        stacks=1,
        channels=16,
        input_size=64,
        stem_channels=16,
        regression_channels=16,
        supervised_scales=(1, 2),
    )
    residual = MultiScaleHourglass(**arguments)
    direct = MultiScaleHourglass(**arguments, regression_residual=False)
    assert direct.get_config()["regression_residual"] is False
    assert MultiScaleHourglass.from_config(direct.get_config()).model_config == direct.model_config
    # Same layers but the final Add: copy the weights, then refined differs by the GT head.
    for layer in direct.layers:
        layer.set_weights(residual.get_layer(layer.name).get_weights())
    images = np.random.default_rng(0).uniform(0, 255, (2, 64, 64, 3)).astype("float32")
    with_residual = residual(images, training=False)
    without = direct(images, training=False)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(without["refined"]),
        keras.ops.convert_to_numpy(with_residual["refined"] - with_residual["stack1_scale1"]),
        atol=1e-5,
    )
    assert "regression_add" not in [layer.name for layer in direct.layers]
