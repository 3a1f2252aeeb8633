"""The `evaluate` command: predictions files against the real gt_valid.mat (in a subprocess,
without TensorFlow), and a model on TFRecords made from the real MPII images."""

import json
import subprocess
import sys

import cv2
import h5py
import numpy as np
import pytest
import scipy.io

from pose_keras import evaluate, inference, metrics
from pose_keras.joints import FLIC, MPII

COLUMNS = ["Head", "Shoulder", "Elbow", "Wrist", "Hip", "Knee", "Ankle", "Mean", "Mean@0.1"]


@pytest.fixture(scope="module")
def ground_truth(shared_data):
    return evaluate.read_mpii_ground_truth(shared_data / "mpii" / "gt_valid.mat")


def run_cli(*arguments):
    return subprocess.run(
        [sys.executable, "-m", "pose_keras.evaluate", *map(str, arguments)],
        capture_output=True,
        text=True,
    )


def test_ground_truth_mat_scores_100_via_the_command(ground_truth, shared_data, tmp_path):
    predictions = tmp_path / "preds.mat"
    # The layout HRNet / bearpaw write: people x 16 x 2, MATLAB 1-based.
    scipy.io.savemat(predictions, {"preds": ground_truth.keypoints_one_based})
    result = run_cli(
        "--predictions", predictions, "--gt", shared_data / "mpii" / "gt_valid.mat", "--json"
    )
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)  # exactly one JSON object, nothing else on stdout
    assert list(document) == COLUMNS
    assert set(document.values()) == {100.0}


def test_head_column_option_gives_the_kits_or_the_head_top_only_column(
    ground_truth, shared_data, tmp_path
):
    # Every joint exact but head top, off by 0.6 head segments: the kit's Head column is
    # (upper neck 100 + head top 0) / 2 = 50; HRNet / mmpose's head-top-only column is 0.
    heads = metrics.head_sizes(ground_truth.head_boxes_one_based)
    predictions = ground_truth.keypoints_one_based.copy()
    predictions[:, 9, 0] += 0.6 * heads
    path = tmp_path / "preds.mat"
    scipy.io.savemat(path, {"preds": predictions})
    gt = shared_data / "mpii" / "gt_valid.mat"
    documents = {}
    for head_column in ("official", "head-top"):
        result = run_cli("--predictions", path, "--gt", gt, "--json", "--head-column", head_column)
        assert result.returncode == 0, result.stderr
        documents[head_column] = json.loads(result.stdout)
    assert documents["official"]["Head"] == 50.0 and documents["head-top"]["Head"] == 0.0
    assert documents["official"]["Mean"] == documents["head-top"]["Mean"]
    result = run_cli("--predictions", path, "--gt", gt, "--head-column", "neck")
    assert result.returncode == 2 and "invalid choice: 'neck'" in result.stderr


def test_npy_predictions_are_zero_based(ground_truth, shared_data, tmp_path):
    # 0-based predictions off by 0.4 / 0.6 head segments: 100 / 0 at PCKh@0.5, and Mean@0.1
    # is 0 either way.
    heads = metrics.head_sizes(ground_truth.head_boxes_one_based)
    for fraction, expected in ((0.4, 100.0), (0.6, 0.0)):
        predictions = ground_truth.keypoints_one_based - 1.0
        predictions[..., 0] += fraction * heads[:, None]
        path = tmp_path / f"preds_{fraction}.npy"
        np.save(path, predictions)
        result = run_cli(
            "--predictions", path, "--gt", shared_data / "mpii" / "gt_valid.mat", "--json"
        )
        assert result.returncode == 0, result.stderr
        document = json.loads(result.stdout)
        assert {column: document[column] for column in COLUMNS[:-1]} == dict.fromkeys(
            COLUMNS[:-1], expected
        )
        assert document["Mean@0.1"] == 0.0
    # The same file without the +1 conversion would be off by one pixel everywhere:
    # loading it as 0-based must give exactly the ground truth frame back.
    np.save(tmp_path / "exact.npy", ground_truth.keypoints_one_based - 1.0)
    loaded = evaluate.read_predictions(tmp_path / "exact.npy")
    np.testing.assert_allclose(loaded, ground_truth.keypoints_one_based, atol=1e-9)


def test_report_files_and_occlusion_subset(ground_truth, shared_data, tmp_path):
    rng = np.random.default_rng(5)
    predictions = ground_truth.keypoints_one_based + rng.normal(0, 5, (2958, 16, 2))
    # The kit also accepts 2 x 16 x N.
    scipy.io.savemat(tmp_path / "preds.mat", {"preds": predictions.transpose(2, 1, 0)})
    output = tmp_path / "report"
    result = run_cli(
        "--predictions", tmp_path / "preds.mat",
        "--gt", shared_data / "mpii" / "gt_valid.mat",
        "--visibility", shared_data / "mpii" / "valid.h5",
        "--output", output,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert (
        "| | Head | Shoulder | Elbow | Wrist | Hip | Knee | Ankle | Mean | Mean@0.1 |"
        in result.stdout
    )
    assert "Occlusion subset" in result.stdout
    report = json.loads((output / "metrics.json").read_text())
    expected = evaluate.score_mpii(predictions, ground_truth).columns
    assert report["columns"] == pytest.approx(expected)
    assert report["people"] == 2958
    assert len(report["curve"]["thresholds"]) == 51 and report["curve"]["thresholds"][-1] == 0.5
    assert 0 < report["auc"] < 100
    with h5py.File(shared_data / "mpii" / "valid.h5", "r") as handle:
        occluded = (handle["visible"][:] == 0) & ground_truth.annotated
    scored = np.zeros(16, bool)
    scored[list(MPII.scored_joints)] = True
    assert report["occlusion"]["count"] == (occluded & scored).sum()
    curve = cv2.imread(str(output / "pckh_curve.png"))
    assert curve is not None and curve.shape[0] > 200
    assert (output / "table.md").read_text().startswith("PCKh@0.5 (mpii, 2958 people)")


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("wrong_count", "hold 10 people"),
        ("no_preds", "no 'preds'"),
        ("bad_suffix", ".mat (1-based"),
        ("bad_shape", "people x 16 x 2"),
        ("missing_gt", "not found"),
    ],
)
def test_bad_predictions_fail_with_one_line(ground_truth, shared_data, tmp_path, setup, message):
    gt = shared_data / "mpii" / "gt_valid.mat"
    path = tmp_path / "preds.mat"
    if setup == "wrong_count":
        scipy.io.savemat(path, {"preds": ground_truth.keypoints_one_based[:10]})
    elif setup == "no_preds":
        scipy.io.savemat(path, {"predictions": ground_truth.keypoints_one_based})
    elif setup == "bad_suffix":
        path = tmp_path / "preds.json"
        path.write_text("[]")
    elif setup == "bad_shape":
        path = tmp_path / "preds.npy"
        np.save(path, np.zeros((2958, 14, 2)))
    elif setup == "missing_gt":
        scipy.io.savemat(path, {"preds": ground_truth.keypoints_one_based})
        gt = tmp_path / "gt_missing.mat"
    result = run_cli("--predictions", path, "--gt", gt, "--json")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]
    assert result.stdout == ""


# ---------------------------------------------------------------------------------------
# A model on TFRecords
# ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mpii_records(shared_data, tmp_path_factory):
    """The 5 real MPII validation people of ../shared/data as TFRecords (rows 0-4 of
    valid.h5 / gt_valid.mat), written through the project's schema."""
    from pose_keras.records import PersonRecord, ShardedWriter

    mpii = shared_data / "mpii"
    truth = scipy.io.loadmat(mpii / "gt_valid.mat")
    prefix = tmp_path_factory.mktemp("records") / "mpii_valid"
    with (
        h5py.File(mpii / "valid.h5", "r") as handle,
        ShardedWriter(prefix, MPII, "mpii", examples_per_shard=3) as writer,
    ):
        for row in range(5):
            name = handle["imgname"][row].decode()
            encoded = (mpii / "images" / name).read_bytes()
            height, width = cv2.imread(str(mpii / "images" / name)).shape[:2]
            missing = truth["jnt_missing"][:, row].astype(bool)
            visibility = np.where(missing, 0, np.where(handle["visible"][row] > 0, 2, 1))
            keypoints = np.where(missing[:, None], 0.0, truth["pos_gt_src"][:, :, row] - 1.0)
            writer.write(
                PersonRecord(
                    image_encoded=encoded,
                    image_format="jpeg",
                    image_height=height,
                    image_width=width,
                    image_id=name,
                    dataset="mpii",
                    person_id=row,
                    # valid.h5 holds the centre shifted by 15 * scale and scale * 1.25;
                    # records keep the shift and drop the 1.25 (the crop adds it back).
                    center=handle["center"][row] - 1.0,
                    scale=handle["scale"][row] / 1.25,
                    keypoints=keypoints,
                    visibility=visibility,
                    head_box=(truth["headboxes_src"][:, :, row] - 1.0).reshape(4),
                    normalize=handle["normalize"][row],
                )
            )
    return prefix


def test_evaluate_model_on_records(tiny_model_path, mpii_records, tmp_path, capsys):
    output = tmp_path / "evaluation"
    status = evaluate.main(
        [
            "--model", str(tiny_model_path),
            "--data", str(mpii_records),
            "--flip",
            "--batch-size", "2",
            "--output", str(output),
            "--json",
            "--quiet",
        ]
    )  # fmt: skip
    captured = capsys.readouterr()
    assert status == 0, captured.err
    document = json.loads(captured.out)
    assert list(document) == COLUMNS
    assert all(0.0 <= value <= 100.0 for value in document.values())
    report = json.loads((output / "metrics.json").read_text())
    assert report["people"] == 5 and report["flip_test"] is True
    assert report["counts"]["r_ankle"] == 3  # rows 0-4 of gt_valid.mat: 2 ankles missing
    predictions = np.load(output / "predictions.npy")
    assert predictions.shape == (5, 16, 2) and np.isfinite(predictions).all()
    assert cv2.imread(str(output / "pckh_curve.png")) is not None
    assert "| tiny.keras |" in (output / "table.md").read_text()


def test_default_output_goes_beside_the_model_named_after_model_data_and_flip(tmp_path):
    model = tmp_path / "runs" / "mpii" / "best.keras"
    assert evaluate._default_output(model, "records/mpii_valid") == (
        tmp_path / "runs" / "mpii" / "evaluation" / "best-mpii_valid"
    )
    assert evaluate._default_output(model, "records/mpii_valid", flip=True).name == (
        "best-mpii_valid-flip"
    )
    assert evaluate._default_output(model, "records/flic-*.tfrecord").name == "best-flic"
    final = tmp_path / "runs" / "mpii" / "model.keras"
    assert evaluate._default_output(final, "val-*.tfrecord").name == "model-val"


def test_decoding_ground_truth_heatmaps_of_the_pipeline_crops_scores_100(mpii_records):
    """The geometry of the whole chain on the real records: the validation pipeline's crop
    matrices, GT heatmaps in those crops, DARK, back to image px."""
    from pose_keras import decode, pipeline
    from pose_keras.config import Config
    from pose_keras.targets import render_heatmaps
    from pose_keras.transforms import apply_affine, resize_matrix

    config = Config().with_overrides(["model.input_size=128", "data.joints=auto"])
    dataset = pipeline.validation_dataset(config, str(mpii_records), batch_size=5)
    images, meta = next(iter(dataset))
    matrices = meta["crop_matrix"].numpy()
    truth = meta["keypoints"].numpy().astype(np.float64)
    visibility = meta["visibility"].numpy()
    heatmap_px = apply_affine(resize_matrix(128, 32), apply_affine(matrices, truth))
    heatmaps = render_heatmaps(heatmap_px.astype(np.float32), 32, 1.0).numpy()
    decoded, _ = decode.decode_heatmaps(heatmaps, refine="dark")
    predictions = inference.ModelPredictions(
        keypoints=decode.heatmap_to_image(decoded, matrices, 128, 32),
        scores=np.ones(visibility.shape),
        ground_truth=truth,
        visibility=visibility,
        head_boxes=meta["head_box"].numpy(),
        record_normalizers=meta["normalize"].numpy(),
        image_ids=[],
        person_ids=meta["person_id"].numpy(),
    )
    inside = (heatmap_px >= 1).all(-1) & (heatmap_px <= 30).all(-1) & (visibility > 0)
    errors = np.linalg.norm(predictions.keypoints - truth, axis=-1)[inside]
    box_px_per_heatmap_px = 200 * meta["scale"].numpy().max() * 1.25 / 32
    assert errors.max() < 0.3 * box_px_per_heatmap_px
    evaluation = inference.score_model_predictions(predictions, MPII)
    assert evaluation.people == 5
    assert set(evaluation.columns.values()) == {100.0}


def test_model_and_records_must_share_joints(mpii_records, tmp_path, capsys):
    from pose_keras.model import MultiScaleHourglass

    model = MultiScaleHourglass(
        num_joints=FLIC.num_joints,
        stacks=1,
        channels=16,
        input_size=64,
        stem_channels=16,
        regression_channels=16,
        supervised_scales=(1,),
    )
    path = tmp_path / "flic.keras"
    model.save(path)
    status = evaluate.main(["--model", str(path), "--joints", "flic", "--data", str(mpii_records)])
    lines = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(lines) == 1 and "'flic'" in lines[0] and "'mpii'" in lines[0]
    status = evaluate.main(["--model", str(path), "--data", str(tmp_path / "nothing")])
    lines = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(lines) == 1 and "nothing" in lines[0]


def test_a_bad_record_stops_evaluation_with_one_line(
    tiny_model_path, mpii_records, tmp_path, capsys
):
    from pose_keras.records import ShardedWriter, read_people

    people = list(read_people(mpii_records))
    people[3].image_encoded = people[3].image_encoded[: len(people[3].image_encoded) // 2]
    prefix = tmp_path / "truncated"
    with ShardedWriter(prefix, MPII, "mpii") as writer:
        for person in people:
            writer.write(person)
    output = tmp_path / "never"
    status = evaluate.main(
        ["--model", str(tiny_model_path), "--data", str(prefix), "--output", str(output), "--quiet"]
    )
    lines = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(lines) == 1
    assert "truncated-00000.tfrecord record 3" in lines[0] and "truncated" in lines[0]
    assert not output.exists()
