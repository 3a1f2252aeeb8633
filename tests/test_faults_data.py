"""Faults in the data stage as training meets them: bad records, corrupt shards, edited
manifests. Each error must name the shard and the record (or the manifest file)."""

import json
import logging

import cv2
import numpy as np
import pytest
import tensorflow as tf

from pose_keras import pipeline, records
from pose_keras.config import Config
from pose_keras.joints import MPII

TINY = [
    "model.input_size=64",
    "model.stacks=1",
    "model.channels=16",
    "model.stem_channels=16",
    "model.regression_channels=16",
    "model.supervised_scales=1",
    "train.batch_size=2",
    "data.shuffle_buffer=1",
]


def tiny_config(*overrides):
    return Config().with_overrides([*TINY, *overrides])


def person(index):
    rng = np.random.default_rng(index)
    image = rng.integers(0, 255, size=(48, 40, 3), dtype=np.uint8)
    ok, data = cv2.imencode(".jpg", image)
    assert ok
    return records.PersonRecord(
        image_encoded=data.tobytes(),
        image_format="jpeg",
        image_height=48,
        image_width=40,
        image_id=f"image_{index}.jpg",
        dataset="test",
        person_id=index,
        center=[19.5, 23.5],
        scale=0.2,
        keypoints=rng.uniform(5, 35, size=(16, 2)),
        visibility=np.full(16, 2),
    )


def write(prefix, people, per_shard=3):
    with records.ShardedWriter(prefix, MPII, "test", examples_per_shard=per_shard) as writer:
        for record in people:
            writer.write(record)
    return str(prefix)


def first_error(dataset, steps=12):
    """Iterate `steps` batches; return the exception raised, or None."""
    try:
        for _ in dataset.take(steps):
            pass
    except Exception as error:  # noqa: BLE001 - the test inspects whatever comes out
        return error
    return None


def flip_a_bit(shard, record):
    """Flip one bit in the payload of record `record` (0-based) of a shard."""
    sizes = [len(serialized.numpy()) + 16 for serialized in tf.data.TFRecordDataset(shard)]
    data = bytearray(open(shard, "rb").read())
    data[sum(sizes[:record]) + 12 + 40] ^= 0x10
    with open(shard, "wb") as handle:
        handle.write(bytes(data))


def test_keypoint_far_outside_the_image_is_described_in_one_line(tmp_path):
    people = [person(index) for index in range(6)]
    people[4].keypoints[3] = [900.0, 10.0]
    prefix = write(tmp_path / "far", people)
    shard = records.shard_paths(prefix)[1]
    error = first_error(pipeline.training_dataset(tiny_config(), prefix, seed=0))
    assert isinstance(error, tf.errors.InvalidArgumentError)
    line = pipeline.describe_data_error(error)
    assert line == (
        f"Bad input: {shard} record 1: annotated keypoint outside the image (40 x 48 px) by "
        "more than data.keypoint_margin=0.1"
    )


def test_nan_keypoint_is_described_in_one_line(tmp_path):
    people = [person(index) for index in range(4)]
    people[2].keypoints[3] = np.nan
    prefix = write(tmp_path / "nan", people)
    shard = records.shard_paths(prefix)[0]
    error = first_error(pipeline.training_dataset(tiny_config(), prefix, seed=0))
    assert isinstance(error, tf.errors.InvalidArgumentError)
    line = pipeline.describe_data_error(error)
    assert line == f"Bad input: {shard} record 2: non-finite keypoint coordinates"


def test_bit_flipped_shard_without_checksums_names_the_shard_and_record(tmp_path, caplog):
    prefix = write(tmp_path / "flip", [person(index) for index in range(6)])
    shard = records.shard_paths(prefix)[1]
    flip_a_bit(shard, 1)
    config = tiny_config("data.verify_checksums=false")
    error = first_error(pipeline.training_dataset(config, prefix, seed=0))
    assert isinstance(error, tf.errors.InvalidArgumentError), error
    line = pipeline.describe_data_error(error)
    assert line.startswith(
        f"Bad input: {shard}: record 1 is corrupt or truncated (the shard ends after 1 of the "
        "3 records its manifest lists)"
    )
    assert "\n" not in line
    # With the checksums on (the default) it is found before any work, with the record.
    with pytest.raises(ValueError, match=rf"Bad input: {shard}: record 1 is corrupt"):
        pipeline.training_dataset(tiny_config(), prefix)
    # skip_bad_records: counted and skipped; the readable records train.
    with caplog.at_level(logging.WARNING, logger="pose_keras.pipeline"):
        dataset = pipeline.validation_dataset(tiny_config("data.skip_bad_records=true"), prefix)
    assert "skipped 2 of 6 records" in caplog.text
    ids = np.concatenate([meta["person_id"].numpy() for _, meta in dataset])
    np.testing.assert_array_equal(ids, [0, 1, 2, 3])


def test_edited_manifest_count_stops_training_before_any_step(tmp_path):
    prefix = write(tmp_path / "count", [person(index) for index in range(4)], per_shard=2)
    manifest = records.manifest_path(prefix)
    data = json.loads(manifest.read_text())
    data["shards"][0]["count"], data["count"] = 500, 502
    manifest.write_text(json.dumps(data))
    with pytest.raises(records.ManifestError, match=rf"^{manifest}: .*content_sha256"):
        pipeline.count_people(prefix)
    # A manifest from before content_sha256 with the same lie: the record count of the
    # checksum check catches it.
    data.pop("content_sha256")
    manifest.write_text(json.dumps(data))
    assert pipeline.count_people(prefix) == 502  # nothing to hold the manifest to yet
    shard = records.shard_paths(prefix)[0]
    with pytest.raises(ValueError, match=rf"{shard} holds 2 records but its manifest says 500"):
        pipeline.training_dataset(tiny_config(), prefix)
    # And with every check off, the reader itself stops at the shard's end.
    error = first_error(
        pipeline.validation_dataset(tiny_config("data.verify_checksums=false"), prefix)
    )
    assert pipeline.describe_data_error(error).startswith(
        f"Bad input: {shard}: record 2 is corrupt or truncated (the shard ends after 2 of the "
        "500 records"
    )


def test_describe_data_error_leaves_other_errors_alone():
    assert pipeline.describe_data_error(ValueError("learning rate must be positive")) is None
    assert pipeline.describe_data_error(tf.errors.ResourceExhaustedError(None, None, "OOM")) is None
    with pytest.raises(tf.errors.InvalidArgumentError) as raised:
        tf.io.decode_image(b"\xff\xd8\xff\xe0" + b"\0" * 64 + b"\xff\xd9")
    line = pipeline.describe_data_error(raised.value)
    assert line.startswith("Bad input: an image in the records does not decode")
    assert "\n" not in line


# The graph's image checks (`parse_record`) are the TF twin of `records.check_image_bytes`:
# on these bytes the two must agree about which are bad.
def _image_cases():
    rng = np.random.default_rng(1)
    color = rng.integers(0, 255, size=(30, 20, 3), dtype=np.uint8)
    jpeg = cv2.imencode(".jpg", color)[1].tobytes()
    png = cv2.imencode(".png", color)[1].tobytes()
    deep = cv2.imencode(".png", color.astype(np.uint16) * 257)[1].tobytes()
    gray = cv2.imencode(".png", color[..., 0])[1].tobytes()
    return {
        "jpeg": jpeg,
        "png": png,
        "png16": deep,
        "gray": gray,
        "empty": b"",
        "cut-jpeg": jpeg[: len(jpeg) // 2],
        "cut-png": png[:-20],
        "bmp": cv2.imencode(".bmp", color)[1].tobytes(),
    }


@pytest.mark.parametrize("case", list(_image_cases()))
def test_pipeline_and_records_agree_on_valid_image_bytes(case):
    data = _image_cases()[case]
    try:
        records.check_image_bytes(data, case)
        valid = True
    except records.BadImageError:
        valid = False
    record = person(0)
    record.image_encoded = data
    record.image_height, record.image_width = 30, 20
    record.keypoints = np.full((16, 2), 10.0, np.float32)
    element = {
        "serialized": tf.constant(records.serialize_person(record)),
        "source": tf.constant("shard"),
        "record_index": tf.constant(0, tf.int64),
    }
    problem = pipeline.parse_record(element, 16)["problem"].numpy().decode()
    assert (problem == "") == valid, problem


def test_fit_stops_on_a_bad_record_with_one_line_and_exit_2(tmp_path, capsys):
    from pose_keras.fit import main

    people = [person(index) for index in range(6)]
    people[4].keypoints[3] = [900.0, 10.0]
    prefix = write(tmp_path / "far", people)
    shard = records.shard_paths(prefix)[1]
    arguments = [f"--set={override}" for override in TINY]
    arguments += [
        f"--set=data.train_records={prefix}",
        f"--set=data.val_records={prefix}",
        f"--set=train.run_dir={tmp_path / 'run'}",
        "--set=train.epochs=1",
        "--set=train.steps_per_epoch=3",
        "--verbose=0",
    ]
    assert main(arguments) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[-1] == (
        f"error: Bad input: {shard} record 1: annotated keypoint outside the image (40 x 48 px) "
        "by more than data.keypoint_margin=0.1"
    )
    assert not any("Traceback" in line for line in lines)
