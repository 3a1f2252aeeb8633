"""Config: paper defaults, JSON round trip, overrides, and clear rejection of bad input."""

import json
import subprocess
import sys

import pytest

from pose_keras.config import PRESETS, Config


def test_defaults_are_the_papers():
    config = Config()
    assert (config.model.stacks, config.model.channels, config.model.input_size) == (4, 64, 256)
    assert config.model.num_joints == 16
    assert config.model.supervised_scales == (1, 2, 4, 8)
    assert config.model.global_regression is True
    assert config.train.learning_rate == 5e-4
    assert config.train.epochs == 100


def test_json_round_trip(tmp_path):
    config = Config().with_overrides(
        ["model.stacks=2", "model.supervised_scales=[1,2]", 'train.loss_weights={"refined": 2}']
    )
    path = tmp_path / "config.json"
    config.to_json(path)
    assert Config.from_json(path) == config
    assert json.loads(path.read_text())["model"]["supervised_scales"] == [1, 2]


def test_overrides_parse_by_field_type():
    config = Config().with_overrides(
        [
            "model.supervised_scales=4,1,2",
            "model.global_regression=off",
            "model.deconv=upsample",
            "data.sigma=1.5",
            "train.batch_size=8",
            "train.run_dir=/tmp/some run",
        ]
    )
    assert config.model.supervised_scales == (1, 2, 4)
    assert config.model.global_regression is False
    assert config.model.deconv == "upsample"
    assert config.data.sigma == 1.5
    assert config.train.batch_size == 8
    assert config.train.run_dir == "/tmp/some run"


@pytest.mark.parametrize(
    "override,message",
    [
        ("model.stack=2", r"Unknown config key 'model.stack'.*'stacks'"),
        ("optim.lr=1", r"section.key with section in"),
        ("model.stacks", r"not of the form section.key=value"),
        ("model.stacks=two", r"model.stacks: cannot parse 'two'"),
        ("model.stacks=0", r"model.stacks must be > 0, received 0"),
        ("model.input_size=200", r"multiple of 64, received 200"),
        ("model.supervised_scales=2,4", r"include 1"),
        ("model.supervised_scales=1,3", r"distinct values from \[1, 2, 4, 8\]"),
        ("model.global_regression=maybe", r"true or false, received 'maybe'"),
        ("train.learning_rate=-1", r"train.learning_rate must be > 0"),
        ("train.loss=l1", r"train.loss must be one of \['eq1', 'mse'\]"),
        ("data.target_downsample=bicubic", r"data.target_downsample must be one of"),
    ],
)
def test_bad_overrides_are_rejected_with_the_reason(override, message):
    with pytest.raises(ValueError, match=message):
        Config().with_overrides([override])


def test_unknown_keys_in_a_file_are_rejected(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"model": {"stacks": 2, "chanels": 32}}))
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['model.chanels'\]"):
        Config.from_json(path)
    path.write_text(json.dumps({"modle": {}}))
    with pytest.raises(ValueError, match=r"unknown section\(s\) \['modle'\]"):
        Config.from_json(path)
    path.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        Config.from_json(path)
    with pytest.raises(ValueError, match="Config file not found"):
        Config.from_json(tmp_path / "missing.json")


def test_wrong_types_in_a_file_are_rejected(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"model": {"stacks": "4"}}))
    with pytest.raises(ValueError, match="model.stacks must be an integer, received '4'"):
        Config.from_json(path)
    path.write_text(json.dumps({"train": {"loss_weights": {"refined": -1}}}))
    with pytest.raises(ValueError, match=r"loss_weights\['refined'\] must be a number >= 0"):
        Config.from_json(path)


def test_every_preset_builds():
    for name in PRESETS:
        assert isinstance(Config.preset(name), Config)
    with pytest.raises(ValueError, match="Unknown preset"):
        Config.preset("nope")


def run_summary(*arguments):
    return subprocess.run(
        [sys.executable, "-m", "pose_keras.summary", *arguments],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_summary_json_prints_exactly_one_object():
    result = run_summary(
        "--set",
        "model.input_size=64",
        "--set",
        "model.stacks=1",
        "--set",
        "model.channels=16",
        "--set",
        "model.stem_channels=16",
        "--set",
        "model.regression_channels=16",
        "--set",
        "model.supervised_scales=1,4",
        "--json",
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert set(summary) == {"params", "gmac", "outputs"}
    assert summary["outputs"] == {
        "refined": [None, 16, 16, 16],
        "stack1_scale1": [None, 16, 16, 16],
        "stack1_scale4": [None, 4, 4, 16],
    }
    assert summary["params"] > 0 and summary["gmac"] > 0


def test_summary_rejects_a_bad_override_with_one_line():
    result = run_summary("--set", "model.stacks=-3")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == ["error: model.stacks must be > 0, received -3."]
