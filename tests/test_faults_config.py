"""Fault class: bad configuration values (NaN, infinity, absurd sizes), from the command
line, a config file or a crafted `.keras` file. Each is refused before any work, with a
message naming the key, and nothing is written."""

import json
import subprocess
import sys
import zipfile

import keras
import pytest

from pose_keras.config import MODEL_LIMITS, Config
from pose_keras.runs import load_model


@pytest.mark.parametrize(
    "override",
    [
        "train.learning_rate=NaN",
        "train.learning_rate=1e309",
        "train.learning_rate=-Infinity",
        "data.sigma=NaN",
        "data.box_scale=Infinity",
        "data.rotation_deg=NaN",
        "data.color_jitter=Infinity",
    ],
)
def test_nan_and_infinity_are_rejected_on_the_command_line(override):
    key = override.split("=")[0]
    with pytest.raises(ValueError, match=rf"{key} must be a finite number"):
        Config().with_overrides([override])


def test_nan_in_a_config_file_is_rejected_naming_the_file(tmp_path):
    path = tmp_path / "nan.json"
    # json.dumps writes NaN / Infinity tokens, which json.loads reads back as floats.
    path.write_text(json.dumps({"train": {"learning_rate": float("nan")}}))
    with pytest.raises(ValueError, match=rf"{path}: train.learning_rate must be a finite number"):
        Config.from_json(path)
    path.write_text('{"data": {"sigma": 1e999}}')
    with pytest.raises(ValueError, match=rf"{path}: data.sigma must be a finite number"):
        Config.from_json(path)
    path.write_text(json.dumps({"train": {"loss_weights": {"refined": float("inf")}}}))
    with pytest.raises(ValueError, match=r"loss_weights\['refined'\] must be a number >= 0"):
        Config.from_json(path)


def test_fit_rejects_nan_before_creating_the_run_directory(tmp_path):
    run_dir = tmp_path / "run"
    result = subprocess.run(
        [sys.executable, "-m", "pose_keras.fit", "--set", "train.learning_rate=NaN"]
        + ["--set", f"train.run_dir={run_dir}"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if "learning_rate" in line]
    assert lines and "finite" in lines[0], result.stderr
    assert "Traceback" not in result.stderr
    assert not run_dir.exists()


@pytest.mark.parametrize("key", sorted(MODEL_LIMITS))
def test_model_sizes_have_upper_bounds(key):
    with pytest.raises(ValueError, match=rf"model.{key} must be <= {MODEL_LIMITS[key]}"):
        Config().with_overrides([f"model.{key}={MODEL_LIMITS[key] * 64}"])


def craft_keras_file(source, target, **changes):
    """Copy a `.keras` archive with its model config edited (what an attacker can do)."""
    with zipfile.ZipFile(source) as original, zipfile.ZipFile(target, "w") as crafted:
        for item in original.infolist():
            data = original.read(item.filename)
            if item.filename == "config.json":
                config = json.loads(data)
                config["config"].update(changes)
                data = json.dumps(config).encode()
            crafted.writestr(item, data)


@pytest.mark.parametrize(
    "changes,message",
    [
        ({"channels": 10**6}, r"model.channels must be <= 1024"),
        ({"stacks": 10**5}, r"model.stacks must be <= 16"),
        ({"input_size": 2**20}, r"model.input_size must be <= 1024"),
        ({"num_joints": "16"}, r"model.num_joints must be an integer"),
    ],
)
def test_a_crafted_keras_config_is_validated_like_the_command_line(
    tiny_model_path, tmp_path, changes, message
):
    crafted = tmp_path / "crafted.keras"
    craft_keras_file(tiny_model_path, crafted, **changes)
    with pytest.raises(ValueError, match=message):
        load_model(crafted)


def test_the_untouched_copy_loads(tiny_model_path, tmp_path):
    copy = tmp_path / "copy.keras"
    craft_keras_file(tiny_model_path, copy)
    model = load_model(copy)
    assert isinstance(model, keras.Model) and model.num_joints == 16
