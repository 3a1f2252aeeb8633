"""Shared test fixtures: the real data beside the repository, quiet TensorFlow logs."""

import json
import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("POSE_KERAS_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """`../shared/data` (real annotations and images); skips the test if it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real test data not found at {SHARED_DATA} (see README, 'Tests')")
    return SHARED_DATA


@pytest.fixture(scope="module")
def tiny_model_path(tmp_path_factory):
    """A random 64 px, 1-stack, 16-channel model saved as a bare `.keras` file."""
    from pose_keras.model import MultiScaleHourglass

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
