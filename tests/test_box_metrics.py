"""Joint sets without a head box or torso (DeepLabCut, labelling tools): PCK at a fraction
of the person box diagonal and the mean pixel error, from `evaluate` and the epoch
callback, on the real DeepLabCut openfield project of ../shared/data."""

import json
import subprocess
import sys

import numpy as np
import pytest

from pose_keras import evaluate, metrics
from pose_keras.joints import BOX, JointSet
from pose_keras.records import joint_set_of, read_people

MOUSE = JointSet(
    name="mouse", names=("snout", "left_ear", "right_ear"), flip_pairs=((1, 2),), limbs=(),
    normalizer=BOX,
)  # fmt: skip


def test_box_pck_and_pixel_error_by_exact_numbers():
    truth = np.zeros((2, 3, 2))
    predicted = truth.copy()
    predicted[0, 0] = (3.0, 4.0)  # 5 px off
    predicted[1, 1] = (0.0, 12.0)  # 12 px off
    visibility = np.array([[2, 2, 2], [2, 2, 0]])  # the last joint is not annotated
    diagonals = np.array([100.0, 200.0])  # 0.05 x diagonal: 5 px and 10 px
    evaluation = metrics.evaluate_keypoints(predicted, truth, visibility, diagonals, MOUSE)
    assert evaluation.protocol == "PCK@0.05"
    # 5 px <= 5 px is correct (the kit's `<=`); 12 px > 10 px is not: 4 of 5 joints.
    assert evaluation.columns[metrics.MEAN] == pytest.approx(80.0)
    assert evaluation.mean_px_error == pytest.approx((5.0 + 12.0) / 5)
    normalizers = metrics.person_normalizers(MOUSE, truth, visibility, record_normalizers=diagonals)
    np.testing.assert_array_equal(normalizers, diagonals)


@pytest.fixture(scope="module")
def openfield_records(shared_data, tmp_path_factory):
    prefix = tmp_path_factory.mktemp("dlc") / "openfield"
    result = subprocess.run(
        [sys.executable, "-m", "tfrecords_tools.deeplabcut", str(shared_data / "dlc_openfield")]
        + ["--output", str(prefix), "--no-progress"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    return prefix


def test_converted_project_scores_against_the_box_diagonal(openfield_records):
    joint_set = joint_set_of(f"{openfield_records}-val")
    assert joint_set.normalizer == BOX
    for person in read_people(f"{openfield_records}-val"):
        # Stored normaliser = the square person box's diagonal... of the converter's box.
        assert person.normalize > 0


def test_evaluate_json_reports_the_mean_pixel_error(openfield_records, tmp_path, capsys):
    from conftest import seed_everything

    from pose_keras.model import MultiScaleHourglass

    seed_everything()
    model = MultiScaleHourglass(
        num_joints=4, stacks=1, channels=16, input_size=64, stem_channels=16,
        regression_channels=16, supervised_scales=(1,),
    )  # fmt: skip
    path = tmp_path / "mouse.keras"
    model.save(path)
    val = f"{openfield_records}-val"
    joint_set = joint_set_of(val)
    (tmp_path / "joints.json").write_text(json.dumps(joint_set.to_dict()))
    output = tmp_path / "evaluation"
    arguments = ["--model", str(path), "--data", val, "--output", str(output), "--json", "--quiet"]
    assert evaluate.main(arguments) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(report) >= {"Mean", "mean_px_error"}
    # Recomputed here from the predictions file and the records' ground truth.
    predictions = np.load(output / "predictions.npy")
    people = list(read_people(val))
    truth = np.stack([person.keypoints for person in people])
    annotated = np.stack([person.visibility for person in people]) > 0
    errors = np.linalg.norm(predictions - truth, axis=-1)[annotated]
    assert report["mean_px_error"] == pytest.approx(errors.mean(), rel=1e-6)
