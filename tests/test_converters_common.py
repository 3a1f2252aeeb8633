"""Shared converter behaviour: image handling, bad input, nothing half-written, the CLIs."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pose_keras import records
from tfrecords_tools import common, mpii

REPO_ROOT = Path(__file__).resolve().parents[1]
CONVERTERS = ("mpii", "flic", "lsp", "coco", "custom")


@pytest.fixture
def mpii_images(shared_data, tmp_path):
    """A copy of the 5 real MPII images, the third (row 2, 051423444.jpg) truncated."""
    images = tmp_path / "images"
    shutil.copytree(shared_data / "mpii" / "images", images)
    broken = images / "051423444.jpg"
    broken.write_bytes(broken.read_bytes()[:2000])
    return images


def test_encode_image_keeps_jpeg_and_rejects_garbage(shared_data):
    path = shared_data / "mpii" / "images" / "052475643.jpg"
    image = common.encode_image(path.read_bytes())
    assert image.encoded == path.read_bytes()
    assert (image.format, image.height, image.width) == ("jpeg", 480, 854)
    with pytest.raises(common.UndecodableImageError):
        common.encode_image(b"not an image")
    with pytest.raises(common.UndecodableImageError):
        common.encode_image(b"")


def test_undecodable_image_mid_conversion_leaves_no_shard_or_manifest(
    shared_data, mpii_images, tmp_path, capsys
):
    output = tmp_path / "out"
    output.mkdir()
    arguments = [
        str(shared_data / "mpii" / "valid.h5"),
        "--image-root", str(mpii_images),
        "--output", str(output / "mpii_valid"),
        "--skip-missing-images",
        "--examples-per-shard", "1",  # rows 0 and 1 are complete shards when row 2 fails
        "--no-progress",
    ]  # fmt: skip
    assert mpii.main(arguments) == 2
    error = capsys.readouterr().err
    assert "row 2 (image '051423444.jpg'): cannot read image" in error
    assert error.count("\n") == 1
    assert list(output.iterdir()) == []

    assert mpii.main([*arguments, "--skip-invalid"]) == 0
    manifest = records.read_manifest(output / "mpii_valid")
    assert manifest["count"] == 4 and len(manifest["shards"]) == 4
    assert manifest["skipped"]["undecodable image"] == {
        "count": 1,
        "names": ["051423444.jpg (person 2)"],
    }
    assert [p.person_id for p in records.read_people(output / "mpii_valid")] == [0, 1, 3, 4]


def test_convert_rejects_a_missing_image_root_and_an_empty_result(shared_data, tmp_path):
    reading = mpii.read_mpii_json(shared_data / "mpii" / "mmpose_test_mpii.json")
    with pytest.raises(common.ConversionError, match="is not a folder"):
        common.convert(reading, mpii.MPII, "mpii", tmp_path / "x", tmp_path / "absent")
    (tmp_path / "empty").mkdir()
    with pytest.raises(common.ConversionError, match="no person left to write .*5 skipped"):
        common.convert(
            reading, mpii.MPII, "mpii", tmp_path / "out" / "x", tmp_path / "empty",
            skip_missing_images=True, progress=False,
        )  # fmt: skip
    assert not (tmp_path / "out").exists()


def test_annotation_problem_reasons():
    from pose_keras.joints import FLIC

    def annotation(**changes):
        values = dict(
            image="a.jpg", keypoints=np.ones((11, 2)), visibility=np.full(11, 2),
            center=(5.0, 5.0), scale=1.0, person_id=0, record="row 0",
        )  # fmt: skip
        values.update(changes)
        return common.Annotation(**values)

    assert common.annotation_problem(annotation(), FLIC) is None
    assert common.annotation_problem(annotation(visibility=np.zeros(11)), FLIC)[0] == (
        common.NO_ANNOTATED_JOINTS
    )
    reason, detail = common.annotation_problem(
        annotation(keypoints=np.ones((10, 2)), visibility=np.full(10, 2)), FLIC
    )
    assert reason == common.INVALID_RECORD and detail == "10 joints, but joint set 'flic' has 11"
    keypoints = np.ones((11, 2))
    keypoints[4] = np.nan
    assert "r_elbow" in common.annotation_problem(annotation(keypoints=keypoints), FLIC)[1]
    assert "scale" in common.annotation_problem(annotation(scale=0.0), FLIC)[1]


def test_progress_writes_one_line(tmp_path):
    import io

    stream = io.StringIO()
    progress = common.ProgressBar(3, "people", stream, label="converting x")
    for _ in range(3):
        progress.update()
    progress.close()
    last = stream.getvalue().split("\r")[-1]
    assert last.startswith("converting x: [") and " 3/3 people " in last
    assert last.endswith("s\n") and last.count("\n") == 1


def test_python_dash_m_entry_points(tmp_path):
    environment = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    for name in CONVERTERS:
        shown = subprocess.run(
            [sys.executable, "-m", f"tfrecords_tools.{name}", "--help"],
            capture_output=True, text=True, cwd=tmp_path, env=environment, check=False,
        )  # fmt: skip
        assert shown.returncode == 0 and "--skip-missing-images" in shown.stdout, name
    failed = subprocess.run(
        [sys.executable, "-m", "tfrecords_tools.coco", str(tmp_path / "absent.json"),
         "--image-root", str(tmp_path), "--output", str(tmp_path / "out")],
        capture_output=True, text=True, cwd=tmp_path, env=environment, check=False,
    )  # fmt: skip
    assert failed.returncode == 2
    assert failed.stderr == f"error: {tmp_path / 'absent.json'}: annotation file not found.\n"
