"""The Python API: `import pose_keras; pose_keras.load(run).predict(image)` and friends.

One tiny run is trained through the API itself (`pose_keras.fit`), then loaded, and every
method is checked against the command that does the same thing.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import TINY_MODEL

import pose_keras
from pose_keras import curves
from pose_keras.joints import MPII

REPO_ROOT = Path(__file__).resolve().parents[1]
# The tiny run costs about a minute of CPU; the tests that use it are marked slow.
slow = pytest.mark.slow
TINY = [
    *TINY_MODEL,
    "data.synthetic_train=16",
    "data.synthetic_val=8",
    "train.epochs=2",
    "train.batch_size=4",
    "train.steps_per_epoch=2",
]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A finished 2-epoch run of a 64 px model on 16 synthetic people: (run_dir, config)."""
    root = tmp_path_factory.mktemp("api")
    config = pose_keras.Config.preset("synthetic").with_overrides(
        [*TINY, f"data.cache_dir={root / 'cache'}", f"train.run_dir={root / 'run'}"]
    )
    result = pose_keras.fit(config, verbose=0)
    assert result.run_dir == root / "run"
    return result.run_dir, config


@pytest.fixture(scope="module")
def model(tiny_run):
    return pose_keras.load(tiny_run[0])


@pytest.fixture(scope="module")
def mpii_image(shared_data):
    return sorted((shared_data / "mpii" / "images").glob("*.jpg"))[0]


def run_python(code: str, **environment) -> subprocess.CompletedProcess:
    # Without the variables `import pose_keras` defaults in this process, so that the
    # child starts as from a fresh shell.
    defaulted = ("TF_CPP_MIN_LOG_LEVEL", "TF_ENABLE_ONEDNN_OPTS")
    env = {key: value for key, value in os.environ.items() if key not in defaulted}
    env.update(environment)
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO_ROOT,
        env=env,
    )


def test_import_is_cheap_and_names_the_api():
    result = run_python(
        "import sys, pose_keras\n"
        "print(pose_keras.__version__)\n"
        "print(sorted(name for name in sys.modules if name.split('.')[0] in "
        "('tensorflow', 'keras', 'cv2', 'matplotlib')))\n"
        "print(callable(pose_keras.load), pose_keras.Config.__name__)\n"
        "print('tensorflow' in sys.modules)\n"
    )
    assert result.returncode == 0, result.stderr
    version, heavy, names, after_config = result.stdout.splitlines()
    from importlib import metadata

    assert version == metadata.version("pose_keras")
    assert heavy == "[]"  # nothing heavy at import
    assert names == "True Config"
    assert after_config == "False"  # the configuration needs no TensorFlow either
    assert {"load", "fit", "Config", "PoseModel", "__version__"} <= set(dir(pose_keras))


def test_tensorflow_start_up_noise_is_quiet_on_a_cpu_machine():
    if os.path.exists("/proc/driver/nvidia/version") or os.path.exists("/dev/nvidiactl"):
        pytest.skip("an NVIDIA driver is present: TensorFlow's logging is left as it is")
    result = run_python(
        "import os, pose_keras, tensorflow as tf\n"
        "print(os.environ['TF_CPP_MIN_LOG_LEVEL'], float(tf.reduce_sum(tf.ones(3))))\n"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["3", "3.0"]
    assert "cuInit" not in result.stderr and "cpu_feature_guard" not in result.stderr
    # A level the user chose is kept.
    kept = run_python(
        "import os, pose_keras; print(os.environ['TF_CPP_MIN_LOG_LEVEL'])",
        TF_CPP_MIN_LOG_LEVEL="0",
    )
    assert kept.stdout.strip() == "0"
    environ = {"TF_CPP_MIN_LOG_LEVEL": "1"}
    assert (
        not pose_keras.quiet_tensorflow_on_cpu(environ) and environ["TF_CPP_MIN_LOG_LEVEL"] == "1"
    )


ONEDNN_FORWARD = """
import numpy as np, pose_keras.model, keras
from tensorflow.python.util import _pywrap_util_port
model = keras.saving.load_model({model!r}, safe_mode=True)
images = np.random.default_rng(0).uniform(0, 255, (2, 64, 64, 3)).astype("float32")
outputs = model(images, training=False)
np.save({output!r}, np.stack([np.asarray(outputs[name]) for name in sorted(outputs)
                             if np.asarray(outputs[name]).shape[1] == 16]))
print(_pywrap_util_port.IsMklEnabled())
"""


def test_onednn_kernels_are_the_default_and_give_the_eigen_kernels_numbers(
    tiny_model_path, tmp_path
):
    environ = {"TF_ENABLE_ONEDNN_OPTS": "0"}
    assert not pose_keras.use_onednn_kernels(environ) and environ["TF_ENABLE_ONEDNN_OPTS"] == "0"
    outputs = {}
    for name, setting in (("default", {}), ("eigen", {"TF_ENABLE_ONEDNN_OPTS": "0"})):
        output = tmp_path / f"{name}.npy"
        code = ONEDNN_FORWARD.format(model=str(tiny_model_path), output=str(output))
        result = run_python(code, **setting)
        assert result.returncode == 0, result.stderr[-3000:]
        # TensorFlow's own report of which kernels it uses: oneDNN unless the user said 0.
        assert result.stdout.split()[-1] == ("False" if setting else "True")
        outputs[name] = np.load(output)
    # The same network, the same input: the same heatmaps up to float32 rounding.
    scale = np.abs(outputs["eigen"]).max()
    assert scale > 0
    np.testing.assert_allclose(outputs["default"], outputs["eigen"], rtol=0, atol=1e-4 * scale)


@slow
def test_fit_is_the_training_function_and_the_module(tiny_run):
    from pose_keras.fit import check_config, fit

    assert callable(pose_keras.fit) and pose_keras.fit.fit is fit
    assert pose_keras.fit.check_config is check_config
    run_dir, config = tiny_run
    # What fit wrote: a finished run (rerunning it without overwrite is refused).
    assert json.loads((run_dir / "config.json").read_text()) == config.to_dict()
    assert len(json.loads((run_dir / "metrics.json").read_text())["epochs"]) == 2
    with pytest.raises(ValueError, match="already holds a finished run"):
        pose_keras.fit(config, verbose=0)


@slow
def test_load_predict_on_a_real_image_matches_the_predict_command(model, mpii_image, tmp_path):
    from pose_keras.predict import main as predict_main

    prediction = model.predict(mpii_image)
    assert prediction.joint_names == MPII.names
    assert prediction.keypoints.shape == (1, 16, 2) and prediction.scores.shape == (1, 16)
    assert np.isfinite(prediction.keypoints).all()
    image = cv2.imread(str(mpii_image))[..., ::-1]
    height, width = image.shape[:2]
    np.testing.assert_allclose(prediction.boxes, [[-0.5, -0.5, width - 0.5, height - 0.5]])
    # The crop is 1.25 x the image's longer side around its centre: keypoints lie in it.
    half = 1.25 * max(height, width) / 2
    assert (np.abs(prediction.keypoints - [width / 2 - 0.5, height / 2 - 0.5]) <= half).all()

    status = predict_main(
        ["--model", str(model.path.parent), str(mpii_image), "--output", str(tmp_path),
         "--no-overlays", "--quiet"]
    )  # fmt: skip
    assert status == 0
    document = json.loads((tmp_path / "keypoints.json").read_text())
    command = np.array(document["people"][0]["keypoints"])
    np.testing.assert_allclose(prediction.keypoints[0], command[:, :2], atol=1e-6)
    np.testing.assert_allclose(prediction.scores[0], command[:, 2], atol=1e-6)

    # The same image as an RGB array gives the same keypoints.
    from_array = model.predict(np.ascontiguousarray(image))
    np.testing.assert_allclose(from_array.keypoints, prediction.keypoints, atol=1e-9)
    table = prediction.to_dataframe()
    assert (
        table.shape == (16, 3) and table.loc[(0, "head_top"), "x"] == prediction.keypoints[0, 9, 0]
    )


@slow
def test_predict_takes_one_box_or_several_and_flips(model, mpii_image, shared_data):
    person = json.loads((shared_data / "mpii" / "mmpose_test_mpii.json").read_text())[0]
    center = np.array(person["center"]) - 1.0
    half = 100.0 * person["scale"]
    box = [*(center - half), *(center + half)]
    one = model.predict(mpii_image, boxes=box, flip=True)
    two = model.predict(mpii_image, boxes=[box, [0, 0, 200, 300]], flip=True)
    assert one.keypoints.shape == (1, 16, 2) and two.keypoints.shape == (2, 16, 2)
    np.testing.assert_allclose(two.keypoints[0], one.keypoints[0], atol=1e-6)
    # Each person's keypoints lie in the crop around its box (side 1.25 x the box).
    assert (np.abs(one.keypoints[0] - center) <= 1.25 * half + 1).all()
    overlay = model.draw(mpii_image, two)
    assert overlay.shape == cv2.imread(str(mpii_image)).shape and overlay.dtype == np.uint8


@slow
@pytest.mark.parametrize(
    "image,boxes,message",
    [
        (np.zeros((32, 32), np.uint8), None, r"\(H, W, 3\) uint8 RGB array.*shape \(32, 32\)"),
        (np.zeros((32, 32, 3), np.float32), None, "dtype float32"),
        (np.zeros((32, 32, 3), np.uint8), [[10, 10, 5, 20]], r"boxes\[0\]: a box needs x1 > x0"),
        (np.zeros((32, 32, 3), np.uint8), [[1, 2, 3]], r"boxes\[0\]: a box is \[x0, y0, x1, y1\]"),
        ("/nowhere/photo.jpg", None, "Image not found: /nowhere/photo.jpg"),
    ],
)
def test_predict_rejects_bad_input_with_one_line(model, image, boxes, message):
    with pytest.raises((ValueError, FileNotFoundError), match=message):
        model.predict(image, boxes=boxes)


@slow
def test_evaluate_scores_like_the_evaluate_command(model, tiny_run, capsys):
    from pose_keras.evaluate import main as evaluate_main

    _, config = tiny_run
    split = next(Path(config.data.cache_dir).glob("synthetic-*/val.manifest.json"))
    prefix = str(split).removesuffix(".manifest.json")
    # A generous threshold, so that a barely trained model scores something.
    evaluation = model.evaluate(prefix, flip=True, threshold=3.0)
    assert evaluation.protocol == "PCKh@3"
    assert evaluation.people == 8
    status = evaluate_main(
        ["--model", str(model.path.parent), "--data", prefix, "--flip", "--threshold", "3",
         "--json", "--quiet", "--output", str(Path(config.train.run_dir) / "evaluation-api")]
    )  # fmt: skip
    assert status == 0
    command = json.loads(capsys.readouterr().out)
    assert command == pytest.approx(evaluation.columns, abs=1e-9)
    assert 0.0 < evaluation.columns["Mean"] <= 100.0
    # HRNet / mmpose's Head column (head top alone) through the API, as the command gives it.
    head_top = model.evaluate(prefix, flip=True, threshold=3.0, head_column="head-top")
    assert head_top.head_column == "head-top"
    status = evaluate_main(
        ["--model", str(model.path.parent), "--data", prefix, "--flip", "--threshold", "3",
         "--head-column", "head-top", "--json", "--quiet",
         "--output", str(Path(config.train.run_dir) / "evaluation-api-head-top")]
    )  # fmt: skip
    assert status == 0
    assert json.loads(capsys.readouterr().out) == pytest.approx(head_top.columns, abs=1e-9)


@slow
def test_export_writes_a_tf_serving_version(model, tmp_path):
    path = model.export(tmp_path / "export", name="pose")
    assert path == tmp_path / "export" / "pose" / "1"
    assert (path / "saved_model.pb").is_file()
    metadata = json.loads((path / "assets.extra" / "pose_keras.json").read_text())
    assert metadata["joint_names"] == list(MPII.names) and metadata["input_size"] == 64
    assert metadata["box_scale"] == model.config.data.box_scale
    with pytest.raises(FileExistsError, match="--overwrite"):
        model.export(tmp_path / "export", name="pose", version=1)
    with pytest.raises(ValueError, match="format must be one of"):
        model.export(tmp_path / "export", format="caffe")


@slow
def test_training_curves_are_plotted_for_a_finished_run(tiny_run, tmp_path, capsys):
    run_dir, _ = tiny_run
    path = curves.plot_training_curves(run_dir)
    assert path == run_dir / "training_curves.png"
    image = cv2.imread(str(path))
    assert image is not None and image.shape == (400, 1100, 3)
    assert image.min() < 50 and image.max() == 255  # drawn lines on a white background
    columns = curves.read_log(run_dir)
    assert columns["epoch"] == [0.0, 1.0] and "val_pckh" in columns and "refined_loss" in columns

    output = tmp_path / "curves.png"
    assert curves.main([str(run_dir), "--output", str(output)]) == 0
    assert cv2.imread(str(output)).shape == (400, 1100, 3)

    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "log.csv").write_text("epoch,loss\n0,1.5\n1,oops\n")
    assert curves.main([str(broken)]) == 2
    assert capsys.readouterr().err.strip().endswith("line 3, column 'loss': not a number ('oops').")
    assert not (broken / "training_curves.png").exists()
