"""The synthetic dataset: determinism, speed, MPII conventions, occlusion marks, cache."""

import os
import subprocess
import sys

import numpy as np
import pytest

from pose_keras import pipeline, records, synthetic
from pose_keras.config import Config
from pose_keras.joints import MPII


def small_config(tmp_path, train=12, val=6, seed=0):
    return Config().with_overrides(
        [
            f"data.synthetic_train={train}",
            f"data.synthetic_val={val}",
            f"data.synthetic_seed={seed}",
            f"data.cache_dir={tmp_path / 'cache'}",
        ]
    )


def test_generation_is_deterministic_per_seed_split_and_index():
    first = synthetic.make_record(3, "train", 5)
    again = synthetic.make_record(3, "train", 5)
    assert first.image_encoded == again.image_encoded
    np.testing.assert_array_equal(first.keypoints, again.keypoints)
    for other in (synthetic.make_record(4, "train", 5), synthetic.make_record(3, "val", 5)):
        assert other.image_encoded != first.image_encoded
        assert not np.array_equal(other.keypoints, first.keypoints)


def test_worker_count_does_not_change_the_output(tmp_path):
    one = synthetic.write_split(tmp_path / "one", 10, 0, "train", workers=1)
    two = synthetic.write_split(tmp_path / "two", 10, 0, "train", workers=2)
    assert [shard["sha256"] for shard in one.shards] == [shard["sha256"] for shard in two.shards]


def test_annotations_follow_mpii_conventions():
    rng_counts = {"occluded": 0, "missing": 0, "joints": 0}
    for index in range(60):
        image, annotation = synthetic.render_person(1, "val", index)
        size = image.shape[0]
        assert image.shape == (size, size, 3) and image.dtype == np.uint8
        keypoints, visibility = annotation["keypoints"], annotation["visibility"]
        annotated = visibility > 0
        assert annotated.sum() >= 6
        # Annotated joints are inside the image; missing ones are stored as (0, 0).
        assert np.all((keypoints[annotated] >= -0.5) & (keypoints[annotated] < size - 0.5))
        np.testing.assert_array_equal(keypoints[~annotated], 0.0)
        # Head box: the head (upper neck -> head top) lies inside it, and MPII's scale
        # relation holds: 200 * scale = 10 x (0.6 x head-box diagonal).
        box = annotation["head_box"]
        for joint in (MPII.index("upper_neck"), MPII.index("head_top")):
            if annotated[joint]:
                x, y = keypoints[joint]
                assert box[0] - 1 <= x <= box[2] + 1 and box[1] - 1 <= y <= box[3] + 1
        diagonal = np.hypot(box[2] - box[0], box[3] - box[1])
        assert annotation["normalize"] == pytest.approx(0.6 * diagonal, rel=1e-5)
        assert annotation["scale"] * 200 == pytest.approx(10 * 0.6 * diagonal, rel=1e-5)
        rng_counts["occluded"] += int((visibility == records.OCCLUDED).sum())
        rng_counts["missing"] += int((~annotated).sum())
        rng_counts["joints"] += visibility.size
    occluded = rng_counts["occluded"] / rng_counts["joints"]
    missing = rng_counts["missing"] / rng_counts["joints"]
    assert 0.02 < occluded < 0.3, occluded
    assert 0.0 < missing < 0.1, missing


def test_occluded_joints_are_covered_by_something_else():
    # An occluded joint's pixel no longer shows the figure: re-rendering the same scene
    # without distractors and occluders changes it, while visible joints stay put.
    changed = {records.OCCLUDED: [], records.VISIBLE: []}
    for index in range(40):
        image, annotation = synthetic.render_person(2, "train", index)
        clean, _ = synthetic.render_person(2, "train", index, clutter=False)
        for joint, state in enumerate(annotation["visibility"]):
            if state in changed:
                x, y = np.round(annotation["keypoints"][joint]).astype(int)
                difference = np.abs(image[y, x].astype(int) - clean[y, x].astype(int)).max()
                changed[state].append(difference > 15)
    assert len(changed[records.OCCLUDED]) > 5
    assert np.mean(changed[records.OCCLUDED]) > 0.9
    assert np.mean(changed[records.VISIBLE]) < 0.02


def test_figures_fill_the_mpii_crop(tmp_path):
    config = small_config(tmp_path)
    _, val_prefix = synthetic.ensure_synthetic(config, workers=1)
    config = config.with_overrides(["model.input_size=128", "train.batch_size=6"])
    inside = []
    for _, meta in pipeline.validation_dataset(config, val_prefix):
        keypoints = meta["keypoints"].numpy()
        matrices = meta["crop_matrix"].numpy()
        annotated = meta["visibility"].numpy() > 0
        crop_px = np.einsum("bij,bkj->bki", matrices[:, :, :2], keypoints) + matrices[:, None, :, 2]
        inside.append(np.all((crop_px >= 0) & (crop_px < 128), axis=-1)[annotated])
    assert np.mean(np.concatenate(inside)) > 0.95


def test_ensure_synthetic_caches_and_regenerates_incomplete_splits(tmp_path, capfd):
    config = small_config(tmp_path)
    train_prefix, val_prefix = synthetic.ensure_synthetic(config, workers=1)
    assert "Generating the synthetic dataset" in capfd.readouterr().err
    assert pipeline.count_people(train_prefix) == 12 and pipeline.count_people(val_prefix) == 6
    manifest = records.read_manifest(train_prefix)
    assert manifest["dataset"] == "synthetic" and manifest["joint_set"]["name"] == "mpii"
    stamp = os.stat(records.shard_paths(train_prefix)[0]).st_mtime_ns
    assert synthetic.ensure_synthetic(config, workers=1) == (train_prefix, val_prefix)
    assert capfd.readouterr().err == ""  # reused, nothing generated
    assert os.stat(records.shard_paths(train_prefix)[0]).st_mtime_ns == stamp
    records.manifest_path(val_prefix).unlink()  # an interrupted run
    synthetic.ensure_synthetic(config, workers=1)
    assert "6 val" in capfd.readouterr().err
    assert pipeline.count_people(val_prefix) == 6
    # Another seed is another cache entry.
    other, _ = synthetic.ensure_synthetic(small_config(tmp_path, seed=1), workers=1)
    assert other != train_prefix


def test_cli_rejects_bad_arguments_with_one_line(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "pose_keras.synthetic", "--output", str(tmp_path), "--train", "0"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: data.synthetic_train must be > 0, received 0."
    ]
