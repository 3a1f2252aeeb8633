"""Shared test fixtures: the real data beside the repository, quiet TensorFlow logs."""

import json
import os
import random
import sys
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("POSE_KERAS_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


TEST_SEED = 0

# The tests' tiny network, as config overrides: 64 px, one stack, 16 channels, GT and GT/2
# heads plus `refined`.
TINY_MODEL = [
    "model.input_size=64",
    "model.stacks=1",
    "model.channels=16",
    "model.stem_channels=16",
    "model.regression_channels=16",
    "model.supervised_scales=1,2",
]

# Scheduling under `pytest -n 2`: whole test files go to one worker each (their module
# fixtures, such as a trained tiny run, are built once, not once per worker), the most
# expensive files first, so that the two workers finish together (longest job first).
# Order measured with `pytest -p no:xdist --durations=60` (2026-12-01, 2 cores: each of
# these files takes 1-15 minutes of one core); files not listed follow in their usual order.
COSTLIEST_FILES_FIRST = (
    "test_fit.py",
    "test_model.py",
    "test_bench_smoke.py",
    "test_ablate.py",
    "test_distribution.py",
    "test_export.py",
    "test_notebooks.py",
    "test_api.py",
    "test_deeplabcut_notebook.py",
    "test_faults_kill.py",
    "test_predict.py",
    "test_faults_output.py",
    "test_faults_data.py",
    "test_evaluate.py",
    "test_box_metrics.py",
    "test_configs.py",
)


def pytest_collection_modifyitems(config, items):
    rank = {name: position for position, name in enumerate(COSTLIEST_FILES_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable within a file


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """Called by pytest-xdist only (not with `-p no:xdist`): one file per work unit."""
    from xdist.scheduler import LoadFileScheduling

    return LoadFileScheduling(config, log)


def seed_everything(seed: int = TEST_SEED):
    """Seed Python, NumPy and Keras (weights, dropout, backend RNG) so that a fixture that
    builds a random model builds the same model on every run and every machine."""
    import keras

    keras.utils.set_random_seed(seed)


@pytest.fixture(autouse=True)
def _seeded_test():
    """Every test starts from the same random state. Keras is seeded only where a test has
    already imported it, so numpy-only tests (metrics) stay free of TensorFlow."""
    random.seed(TEST_SEED)
    np.random.seed(TEST_SEED)  # noqa: NPY002 (pins code that uses the legacy global RNG)
    if "keras" in sys.modules:
        seed_everything()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """`../shared/data` (real annotations and images); skips the test if it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real test data not found at {SHARED_DATA} (see README, 'Tests')")
    return SHARED_DATA


@pytest.fixture(scope="module")
def real_mpii_records(shared_data, tmp_path_factory):
    """The 5 real MPII photographs (1280 x 720 and 854 x 480 JPEGs) as records."""
    from tfrecords_tools import mpii

    prefix = tmp_path_factory.mktemp("real_mpii") / "mpii"
    arguments = [str(shared_data / "mpii" / "mmpose_test_mpii.json"), "--no-progress"]
    arguments += ["--image-root", str(shared_data / "mpii" / "images"), "--output", str(prefix)]
    assert mpii.main(arguments) == 0
    return str(prefix)


@pytest.fixture(scope="module")
def tiny_model_path(tmp_path_factory):
    """A random 64 px, 1-stack, 16-channel model saved as a bare `.keras` file."""
    from pose_keras.model import MultiScaleHourglass

    seed_everything()
    model = MultiScaleHourglass(
        stacks=1,
        channels=16,
        input_size=64,
        stem_channels=16,
        regression_channels=16,
        supervised_scales=(1, 2),
    )
    path = tmp_path_factory.mktemp("model") / "tiny.keras"
    model.save(path)
    return path


@pytest.fixture(scope="session")
def coco_boxes(shared_data) -> dict:
    """Every person box of the COCO sample by file name (bbox x, y, w, h -> x0, y0, x1, y1)."""
    data = json.loads((shared_data / "coco" / "person_keypoints_sample.json").read_text())
    names = {image["id"]: image["file_name"] for image in data["images"]}
    boxes = {}
    for annotation in data["annotations"]:
        x, y, width, height = annotation["bbox"]
        boxes.setdefault(names[annotation["image_id"]], []).append([x, y, x + width, y + height])
    return boxes
