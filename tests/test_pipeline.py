"""The tf.data pipeline: round trip, crop geometry, augmentation, batches, bad input."""

import json
import logging

import cv2
import numpy as np
import pytest
import tensorflow as tf

from pose_keras import metrics, pipeline, records, transforms
from pose_keras.config import Config
from pose_keras.joints import FLIC, LSP, MPII
from pose_keras.model import output_names

TINY = [
    "model.input_size=128",
    "model.stacks=1",
    "model.channels=16",
    "model.stem_channels=16",
    "model.regression_channels=16",
    "train.batch_size=4",
]
# The requirement is 1 px; a half-pixel slip in the warp's pixel-centre convention moves
# the dots by 0.5-0.9 px, so we hold the centroids to 0.3 px (measured error: <= 0.15 px).
DOT_TOLERANCE_PX = 0.3
SIDE_COLORS = {"r": (0.0, 0.0, 1.0), "l": (1.0, 0.0, 0.0), "c": (0.0, 1.0, 0.0)}  # RGB


def side_of(joint_set, index):
    name = joint_set.names[index]
    return name[0] if name[:2] in ("r_", "l_") else "c"


def encode(image, image_format="png"):
    extension = ".png" if image_format == "png" else ".jpg"
    converted = image[..., ::-1] if image.ndim == 3 and image.shape[-1] in (3, 4) else image
    if image.ndim == 3 and image.shape[-1] == 4:
        converted = np.concatenate([image[..., 2::-1], image[..., 3:]], axis=-1)
    ok, data = cv2.imencode(extension, converted)
    assert ok
    return data.tobytes()


def dot_image(keypoints_px, height, width, sigma=1.5, joint_set=MPII):
    """Dark image with a Gaussian dot at each keypoint, coloured by the joint's side."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    image = np.zeros((height, width, 3))
    for index, (x, y) in enumerate(keypoints_px):
        blob = np.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * sigma**2))
        image += blob[..., None] * np.array(SIDE_COLORS[side_of(joint_set, index)]) * 250
    return np.clip(np.round(image), 0, 255).astype(np.uint8)


def grid_keypoints(rng, center, spacing=34.0):
    """16 well-separated keypoints on a jittered 4x4 grid around `center`."""
    offsets = (np.arange(4) - 1.5) * spacing
    grid = np.stack(np.meshgrid(offsets, offsets), axis=-1).reshape(16, 2)
    return grid + np.asarray(center) + rng.uniform(-3, 3, size=(16, 2))


def person(index=0, image=None, keypoints=None, visibility=None, image_format="png", **fields):
    rng = np.random.default_rng(index)
    if image is None:
        image = rng.integers(0, 255, size=(96, 80, 3), dtype=np.uint8)
    height, width = image.shape[:2]
    if keypoints is None:
        keypoints = rng.uniform(10, min(height, width) - 10, size=(16, 2))
    if visibility is None:
        visibility = rng.integers(1, 3, size=16)
    values = dict(
        image_encoded=encode(image, image_format),
        image_format=image_format,
        image_height=height,
        image_width=width,
        image_id=f"image_{index}.{image_format}",
        dataset="test",
        person_id=index,
        center=[width / 2 - 0.5, height / 2 - 0.5],
        scale=max(height, width) / 250.0,
        keypoints=keypoints,
        visibility=visibility,
        head_box=[10.0, 12.0, 30.0, 40.0],
    )
    values.update(fields)
    return records.PersonRecord(**values)


def write(prefix, people, joint_set=MPII, per_shard=4):
    with records.ShardedWriter(prefix, joint_set, "test", examples_per_shard=per_shard) as writer:
        for record in people:
            writer.write(record)
    return str(prefix)


def tiny_config(*overrides):
    return Config().with_overrides([*TINY, *overrides])


# --------------------------------------------------------------------------------------
# Round trip and geometry
# --------------------------------------------------------------------------------------


def test_writer_reader_round_trip_and_identity_crop(tmp_path):
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, size=(128, 128, 3), dtype=np.uint8) for _ in range(5)]
    people = [
        person(index, image, center=[63.5, 63.5], scale=128 / 250.0)
        for index, image in enumerate(images)
    ]
    prefix = write(tmp_path / "split", people, per_shard=2)
    assert pipeline.count_people(prefix) == 5
    read = list(records.read_people(prefix))
    for original, copy in zip(people, read, strict=True):
        assert copy.image_encoded == original.image_encoded
        assert (copy.image_id, copy.person_id, copy.dataset) == (
            original.image_id,
            original.person_id,
            original.dataset,
        )
        np.testing.assert_array_equal(copy.keypoints, original.keypoints)
        np.testing.assert_array_equal(copy.visibility, original.visibility)
        np.testing.assert_array_equal(copy.head_box, original.head_box)
    # The pipeline reads the same people in record order; a box of exactly the image with
    # an input of the same size is the identity crop, so the pixels come back unchanged.
    batches = list(pipeline.validation_dataset(tiny_config(), prefix, batch_size=2))
    assert [len(images_batch) for images_batch, _ in batches] == [2, 2, 1]
    crops = np.concatenate([batch.numpy() for batch, _ in batches])
    metas = {
        key: np.concatenate([meta[key].numpy() for _, meta in batches]) for key in batches[0][1]
    }
    np.testing.assert_allclose(crops, np.stack(images).astype(np.float32), atol=1e-3)
    np.testing.assert_array_equal(metas["person_id"], np.arange(5))
    assert [name.decode() for name in metas["image_id"]] == [p.image_id for p in people]
    np.testing.assert_allclose(
        metas["keypoints"], np.stack([p.keypoints for p in people]), atol=1e-4
    )
    np.testing.assert_array_equal(metas["visibility"], np.stack([p.visibility for p in people]))
    # MPII normaliser: 0.6 x head-box diagonal (20 x 28 px box).
    np.testing.assert_allclose(metas["normalize"], 0.6 * np.hypot(20, 28), rtol=1e-6)


def dot_centroid(crop, point, radius=4):
    """Intensity-weighted centroid of the dot near `point` in a float crop (S, S, 3)."""
    intensity = crop.sum(axis=-1)
    x0, y0 = np.round(point).astype(int)
    window = intensity[
        max(0, y0 - radius) : y0 + radius + 1, max(0, x0 - radius) : x0 + radius + 1
    ].astype(np.float64)
    window = np.where(window > 0.1 * window.max(), window, 0.0)
    ys, xs = np.mgrid[0 : window.shape[0], 0 : window.shape[1]]
    total = window.sum()
    assert total > 0, f"no dot near {point}"
    return np.array(
        [
            (xs * window).sum() / total + max(0, x0 - radius),
            (ys * window).sum() / total + max(0, y0 - radius),
        ]
    )


@pytest.mark.parametrize(
    "scale_factor, rotation_deg, flip, shift",
    [
        (1.0, 0.0, False, (0.0, 0.0)),
        (0.8, 25.0, True, (0.03, -0.04)),
        (1.2, -30.0, False, (-0.05, 0.02)),
    ],
)
def test_dots_land_on_the_transformed_keypoints(scale_factor, rotation_deg, flip, shift):
    rng = np.random.default_rng(4)
    height, width = 190, 230
    keypoints = grid_keypoints(rng, center=(118.0, 92.0))
    image = dot_image(keypoints, height, width)
    center, scale = np.array([115.3, 94.1]), 1.0
    example = {
        "image": tf.constant(image, tf.float32),
        "keypoints": tf.constant(keypoints, tf.float32),
        "visibility": tf.constant(np.full(16, 2), tf.int32),
        "center": tf.constant(center, tf.float32),
        "scale": tf.constant(scale, tf.float32),
    }
    augmentation = {
        "scale_factor": tf.constant(scale_factor),
        "rotation_deg": tf.constant(rotation_deg),
        "flip": tf.constant(flip),
        "shift": tf.constant(shift, tf.float32),
    }
    crop = pipeline.crop_person(example, augmentation, 128, 1.25, MPII.flip_index)
    # The expected matrix, from the numpy convention and the same parameters.
    box_px = transforms.box_px_from_scale(scale, 1.25) * scale_factor
    matrix = transforms.crop_matrix(
        center + np.array(shift) * box_px, box_px, 128, rotation_deg, flip
    )
    np.testing.assert_allclose(crop["crop_matrix"].numpy(), matrix, atol=1e-4)
    order = np.array(MPII.flip_index) if flip else np.arange(16)
    expected = transforms.apply_affine(matrix, keypoints)[order]
    np.testing.assert_allclose(crop["keypoints_input_px"].numpy(), expected, atol=1e-3)
    pixels = crop["image"].numpy()
    for joint in range(16):
        centroid = dot_centroid(pixels, expected[joint])
        assert np.linalg.norm(centroid - expected[joint]) < DOT_TOLERANCE_PX, (joint, centroid)
        # The dot at joint j's new place is the one drawn for the joint it came from.
        color = pixels[int(round(centroid[1])), int(round(centroid[0]))]
        assert np.argmax(color) == np.argmax(SIDE_COLORS[side_of(MPII, order[joint])])


def test_flip_swaps_left_and_right_joints():
    # A person facing the camera: right joints on the image's left.
    keypoints = np.zeros((16, 2))
    for index, name in enumerate(MPII.names):
        keypoints[index] = (
            40.0 if name.startswith("r_") else 88.0 if name.startswith("l_") else 64.0,
            10 + 7 * index,
        )
    visibility = np.full(16, 2)
    visibility[MPII.index("l_wrist")] = 1
    example = {
        "image": tf.zeros([128, 128, 3]),
        "keypoints": tf.constant(keypoints, tf.float32),
        "visibility": tf.constant(visibility, tf.int32),
        "center": tf.constant([63.5, 63.5]),
        "scale": tf.constant(128 / 250.0),
    }
    augmentation = pipeline.identity_augmentation()
    augmentation["flip"] = tf.constant(True)
    crop = pipeline.crop_person(example, augmentation, 128, 1.25, MPII.flip_index)
    flipped = crop["keypoints_input_px"].numpy()
    for right, left in MPII.flip_pairs:  # MPII pairs are (right, left)
        # The mirror image of the left joint is now the right joint, still on the left.
        np.testing.assert_allclose(
            flipped[left], [127 - keypoints[right][0], keypoints[right][1]], atol=1e-4
        )
        np.testing.assert_allclose(
            flipped[right], [127 - keypoints[left][0], keypoints[left][1]], atol=1e-4
        )
        assert flipped[right][0] < flipped[left][0]
    assert crop["visibility"].numpy()[MPII.index("r_wrist")] == 1
    assert crop["visibility"].numpy()[MPII.index("l_wrist")] == 2


# --------------------------------------------------------------------------------------
# Assembled datasets
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dot_split(tmp_path_factory):
    """Six dot images (JPEG) whose dots mark the keypoints, in two shards."""
    folder = tmp_path_factory.mktemp("dots")
    rng = np.random.default_rng(5)
    people = []
    for index in range(6):
        keypoints = grid_keypoints(rng, center=(100 + rng.uniform(-8, 8), 90 + rng.uniform(-8, 8)))
        image = dot_image(keypoints, 180, 200)
        people.append(
            person(
                index, image, keypoints, np.full(16, 2), "png", center=keypoints.mean(0), scale=0.95
            )
        )
    return write(folder / "dots", people, per_shard=3)


def test_augmented_pipeline_keeps_dots_on_keypoints(dot_split):
    config = tiny_config("data.color_jitter=0", "data.rotation_deg=30", "data.scale_jitter=0.25")
    examples = pipeline.prepared_examples(config, dot_split, training=True, seed=11)
    flips = 0
    for example in examples.take(8):
        keypoints = example["keypoints_input_px"].numpy()
        weights = example["visibility"].numpy() > 0
        pixels = example["image"].numpy()
        matrix = example["crop_matrix"].numpy()
        flipped = np.linalg.det(matrix[:, :2]) < 0
        flips += flipped
        order = np.array(MPII.flip_index) if flipped else np.arange(16)
        np.testing.assert_allclose(
            keypoints,
            transforms.apply_affine(matrix, example["keypoints"].numpy())[order],
            atol=1e-3,
        )
        for joint in np.flatnonzero(weights):
            x, y = keypoints[joint]
            if not (4 <= x <= 123 and 4 <= y <= 123):
                continue
            centroid = dot_centroid(pixels, keypoints[joint])
            assert np.linalg.norm(centroid - keypoints[joint]) < DOT_TOLERANCE_PX
            color = pixels[int(round(centroid[1])), int(round(centroid[0]))]
            assert np.argmax(color) == np.argmax(SIDE_COLORS[side_of(MPII, order[joint])])
    assert 0 < flips < 8  # both branches were exercised


def test_training_batches_are_keyed_by_the_model_outputs(dot_split):
    config = tiny_config("model.stacks=2", "model.supervised_scales=1,2,4", "model.input_size=64")
    images, targets, weights = next(iter(pipeline.training_dataset(config, dot_split, seed=1)))
    names = output_names(config.model)
    assert sorted(targets) == sorted(weights) == names
    assert images.shape == (4, 64, 64, 3) and images.dtype == tf.float32
    assert 0.0 <= float(tf.reduce_min(images)) and float(tf.reduce_max(images)) <= 255.0
    for name in names:
        size = 16 // (1 if name == "refined" else int(name.rsplit("scale", 1)[1]))
        assert targets[name].shape == (4, size, size, 16) and targets[name].dtype == tf.float32
        assert weights[name].shape == (4, 16) and weights[name].dtype == tf.float32


def test_seeded_training_dataset_is_deterministic(dot_split):
    config = tiny_config("model.input_size=64")

    def first_batches(seed):
        dataset = pipeline.training_dataset(config, dot_split, seed=seed)
        return [batch[0].numpy() for batch in dataset.take(3)]

    first, again, other = first_batches(7), first_batches(7), first_batches(8)
    for batch, same in zip(first, again, strict=True):
        np.testing.assert_array_equal(batch, same)
    assert not all(np.array_equal(a, b) for a, b in zip(first, other, strict=True))


def test_validation_meta_maps_image_keypoints_into_the_crop(dot_split):
    config = tiny_config()
    people = list(records.read_people(dot_split))
    batches = list(pipeline.validation_dataset(config, dot_split, batch_size=4))
    assert [len(images) for images, _ in batches] == [4, 2]  # the last, partial batch is kept
    meta = {key: np.concatenate([m[key].numpy() for _, m in batches]) for key in batches[0][1]}
    for index, record in enumerate(people):
        matrix = transforms.crop_matrix(
            record.center, transforms.box_px_from_scale(record.scale, 1.25), 128
        )
        np.testing.assert_allclose(meta["crop_matrix"][index], matrix, atol=1e-4)
        np.testing.assert_allclose(meta["keypoints"][index], record.keypoints, atol=1e-4)
        np.testing.assert_allclose(meta["center"][index], record.center, atol=1e-4)
        assert meta["scale"][index] == pytest.approx(record.scale, rel=1e-6, abs=1e-6)
        # Back-projection: crop px -> image px through the inverse of the meta matrix.
        in_crop = transforms.apply_affine(meta["crop_matrix"][index], meta["keypoints"][index])
        back = transforms.apply_affine(
            transforms.invert_affine(meta["crop_matrix"][index]), in_crop
        )
        np.testing.assert_allclose(back, record.keypoints, atol=1e-3)
    # with_targets: the same people, the GT peak at the crop keypoints.
    images, targets, weights = next(
        iter(pipeline.validation_dataset(config, dot_split, 4, with_targets=True))
    )
    np.testing.assert_allclose(images.numpy(), batches[0][0].numpy(), atol=1e-5)
    refined = targets["refined"].numpy()
    for index in range(4):
        in_crop = transforms.apply_affine(meta["crop_matrix"][index], meta["keypoints"][index])
        in_heatmap = transforms.apply_affine(transforms.resize_matrix(128, 32), in_crop)
        for joint in np.flatnonzero(weights["refined"].numpy()[index]):
            row, column = np.unravel_index(np.argmax(refined[index, ..., joint]), (32, 32))
            assert np.abs(np.array([column, row]) - in_heatmap[joint]).max() <= 0.5 + 1e-4


# --------------------------------------------------------------------------------------
# Decoding and bad input
# --------------------------------------------------------------------------------------


def test_grayscale_rgba_and_16_bit_png_decode_to_rgb():
    rng = np.random.default_rng(6)
    rgb = rng.integers(0, 256, size=(20, 30, 3), dtype=np.uint8)
    gray = rgb[..., 0]
    rgba = np.concatenate([rgb, rng.integers(0, 256, size=(20, 30, 1), dtype=np.uint8)], axis=-1)
    deep = rgb.astype(np.uint16) * 257 + rng.integers(0, 200, size=rgb.shape).astype(np.uint16)
    cases = [
        (encode(gray), np.repeat(gray[..., None], 3, axis=-1)),
        (encode(rgba), rgb),
        (encode(deep), deep / 257.0),
        (encode(rgb), rgb),
    ]
    for data, expected in cases:
        decoded = pipeline.decode_image(tf.constant(data)).numpy()
        assert decoded.shape == (20, 30, 3)
        np.testing.assert_allclose(decoded, expected, atol=1e-3)


def test_joint_set_mismatch_is_reported_before_any_work(tmp_path):
    prefix = write(
        tmp_path / "lsp",
        [person(0, keypoints=np.full((14, 2), 20.0), visibility=np.full(14, 2))],
        LSP,
    )
    with pytest.raises(ValueError, match="joint set 'lsp' .14 joints. but data.joints='mpii'"):
        pipeline.training_dataset(tiny_config(), prefix)
    with pytest.raises(ValueError, match="14 joints .'lsp'. but model.num_joints=16"):
        pipeline.training_dataset(tiny_config("data.joints=auto"), prefix)


def test_truncated_shard_is_named_or_skipped_and_counted(tmp_path, caplog):
    prefix = write(tmp_path / "cut", [person(index) for index in range(6)], per_shard=6)
    shard = records.shard_paths(prefix)[0]
    sizes = [len(serialized.numpy()) + 16 for serialized in tf.data.TFRecordDataset(shard)]
    with open(shard, "r+b") as handle:  # cut in the middle of record 3
        handle.truncate(sum(sizes[:3]) + sizes[3] // 2)
    with pytest.raises(ValueError, match=rf"{shard}: record 3 is corrupt or truncated"):
        pipeline.validation_dataset(tiny_config(), prefix)
    with caplog.at_level(logging.WARNING, logger="pose_keras.pipeline"):
        dataset = pipeline.validation_dataset(tiny_config("data.skip_bad_records=true"), prefix)
    assert "skipped 3 of 6 records" in caplog.text
    assert "1 corrupt or truncated shard" in caplog.text and "2 unreadable after" in caplog.text
    ids = np.concatenate([meta["person_id"].numpy() for _, meta in dataset])
    np.testing.assert_array_equal(ids, [0, 1, 2])


@pytest.mark.parametrize(
    "damage, message",
    [
        (
            lambda record: setattr(record, "image_encoded", b"\x00garbage" * 40),
            "neither JPEG nor PNG",
        ),
        (lambda record: setattr(record, "image_encoded", record.image_encoded[:300]), "truncated"),
        (
            lambda record: setattr(record, "visibility", np.zeros(16, np.int64)),
            "all joints missing",
        ),
        (
            lambda record: record.keypoints.__setitem__((4, 0), 5 * record.image_width),
            "outside the image",
        ),
        (lambda record: setattr(record, "image_height", 50), "decodes to"),
    ],
)
def test_bad_records_are_named_or_skipped_and_counted(tmp_path, caplog, damage, message):
    people = [person(index, image_format="jpeg") for index in range(4)]
    damage(people[2])
    prefix = write(tmp_path / "bad", people, per_shard=4)
    shard = records.shard_paths(prefix)[0]
    with pytest.raises(
        tf.errors.InvalidArgumentError, match=rf"Bad input: {shard} record 2: .*{message}"
    ):
        for _ in pipeline.validation_dataset(tiny_config(), prefix):
            pass
    report = pipeline.scan_records(prefix)
    assert [(index, message in detail) for _, index, _, detail in report.bad] == [(2, True)]
    with caplog.at_level(logging.WARNING, logger="pose_keras.pipeline"):
        dataset = pipeline.validation_dataset(tiny_config("data.skip_bad_records=true"), prefix)
        ids = np.concatenate([meta["person_id"].numpy() for _, meta in dataset])
    np.testing.assert_array_equal(ids, [0, 1, 3])
    assert "skipped 1 of 4 records" in caplog.text


def test_wrong_joint_count_in_a_record_is_named(tmp_path):
    prefix = write(
        tmp_path / "mixed",
        [person(0, keypoints=np.full((14, 2), 20.0), visibility=np.full(14, 2))],
        LSP,
    )
    manifest = records.manifest_path(prefix)
    data = json.loads(manifest.read_text())
    data["joint_set"] = MPII.to_dict()  # a manifest that lies about the records
    data["content_sha256"] = records.manifest_digest(data)  # ... and forges its checksum
    manifest.write_text(json.dumps(data))
    with pytest.raises(
        tf.errors.InvalidArgumentError, match="record 0: wrong joint count: 14 visibility values"
    ):
        next(iter(pipeline.validation_dataset(tiny_config(), prefix)))


def _damaged(field, value):
    def damage(record):
        if field == "keypoint":
            record.keypoints[3] = value
        elif field == "unannotated keypoint":
            record.visibility[3] = records.NOT_ANNOTATED
            record.keypoints[3] = value
        else:
            setattr(record, field, value)

    return damage


@pytest.mark.parametrize(
    "damage, check",
    [
        (lambda record: None, None),
        (_damaged("visibility", np.zeros(16, np.int64)), records.NO_ANNOTATED_JOINT),
        (_damaged("visibility", np.full(16, 3, np.int64)), records.BAD_VISIBILITY),
        (_damaged("visibility", np.full(16, -1, np.int64)), records.BAD_VISIBILITY),
        (_damaged("keypoint", np.nan), records.NON_FINITE_KEYPOINT),
        (_damaged("unannotated keypoint", np.nan), None),
        (_damaged("center", np.array([np.inf, 3.0], np.float32)), records.NON_FINITE_CENTER),
        (_damaged("scale", 0.0), records.BAD_SCALE),
        (_damaged("scale", -1.0), records.BAD_SCALE),
        (_damaged("scale", float("nan")), records.BAD_SCALE),
        (_damaged("scale", float("inf")), records.BAD_SCALE),
        (_damaged("keypoints", np.full((14, 2), 20.0, np.float32)), records.JOINT_COUNT),
    ],
)
@pytest.mark.parametrize("require_annotations", [True, False])
def test_parse_record_applies_the_records_person_rule(damage, check, require_annotations):
    if not require_annotations and check == records.NO_ANNOTATED_JOINT:
        check = None  # prediction-only data: a person without annotated joints is valid
    record = person(0)
    damage(record)
    assert (records.person_problem(
        record.keypoints, record.visibility, record.center, record.scale, MPII,
        require_annotations,
    ) or (None,))[0] == check  # fmt: skip
    element = {
        "serialized": tf.constant(records.serialize_person(record)),
        "source": tf.constant("shard"),
        "record_index": tf.constant(0, tf.int64),
    }
    parsed = pipeline.parse_record(
        element, MPII.num_joints, require_annotations=require_annotations
    )
    problem = parsed["problem"].numpy().decode()
    assert (problem == "") == (check is None), problem


def test_unlabelled_records_are_accepted_for_prediction_only(tmp_path):
    unlabelled = [person(index, visibility=np.zeros(16, np.int64)) for index in range(3)]
    prefix = write(tmp_path / "unlabelled", unlabelled)
    config = tiny_config()
    with pytest.raises(tf.errors.InvalidArgumentError, match="record 0: all joints missing"):
        next(iter(pipeline.validation_dataset(config, prefix)))
    batches = list(pipeline.validation_dataset(config, prefix, 2, require_annotations=False))
    assert [int(images.shape[0]) for images, _ in batches] == [2, 1]
    np.testing.assert_array_equal(batches[0][1]["visibility"], 0)
    report = pipeline.scan_records(prefix, require_annotations=False)
    assert not report.bad and pipeline.scan_records(prefix).counts() == {"all joints missing": 3}
    with pytest.raises(ValueError, match="for prediction only: training"):
        pipeline.prepared_examples(config, prefix, training=True, require_annotations=False)
    with pytest.raises(ValueError, match="for prediction only: targets"):
        pipeline.validation_dataset(config, prefix, with_targets=True, require_annotations=False)


def _normalizers_both_ways(joint_set, keypoints, visibility, head_boxes, record_normalizers):
    """(metrics.person_normalizers, pipeline.pck_normalizer per person) on the same people."""
    expected = metrics.person_normalizers(
        joint_set, keypoints, visibility, head_boxes, record_normalizers
    )
    people = tf.data.Dataset.from_tensor_slices(
        {
            "keypoints": np.asarray(keypoints, np.float32),
            "visibility": np.asarray(visibility, np.int32),
            "head_box": np.asarray(head_boxes, np.float32),
            "record_normalize": np.asarray(record_normalizers, np.float32),
        }
    )
    found = people.map(lambda person: pipeline.pck_normalizer(person, joint_set))
    return expected, np.concatenate([batch.numpy() for batch in found.batch(1024)])


def test_pck_normalizer_gives_the_numbers_of_person_normalizers_on_edge_cases():
    keypoints = np.zeros((5, 16, 2))
    keypoints[:, 1] = [3.0, 4.0]
    visibility = np.full((5, 16), 2)
    visibility[3, 1] = 0
    head_boxes = [
        [10.0, 12.0, 30.0, 40.0],  # a box
        list(records.NO_HEAD_BOX),  # absent: the record's value
        [30.0, 40.0, 10.0, 12.0],  # corners swapped: the same diagonal
        [10.0, 10.0, 10.0, 10.0],  # a point: the record's value
        [10.0, 12.0, 10.0, 40.0],  # no width: the height
    ]
    record_normalizers = [7.0, 8.0, 9.0, 10.0, 11.0]
    for joint_set in (MPII, LSP):
        count = joint_set.num_joints
        expected, found = _normalizers_both_ways(
            joint_set, keypoints[:, :count], visibility[:, :count], head_boxes, record_normalizers
        )
        np.testing.assert_allclose(found, expected, rtol=1e-6)
    expected, _ = _normalizers_both_ways(
        MPII, keypoints, visibility, head_boxes, record_normalizers
    )
    np.testing.assert_allclose(
        expected, [0.6 * np.hypot(20, 28), 8, 0.6 * np.hypot(20, 28), 10, 0.6 * 28]
    )


def test_pck_normalizer_gives_the_numbers_of_person_normalizers_on_mpii_and_flic(shared_data):
    from tfrecords_tools import flic, mpii

    reading = mpii.read_mpii_h5(shared_data / "mpii" / "valid.h5")
    mpii.attach_gt_valid(reading, mpii.read_gt_valid(shared_data / "mpii" / "gt_valid.mat"))
    flic_people = flic.read_flic_h5(shared_data / "flic" / "valid.h5").people
    for joint_set, people in ((MPII, reading.people), (FLIC, flic_people)):
        expected, found = _normalizers_both_ways(
            joint_set,
            [person.keypoints for person in people],
            [person.visibility for person in people],
            [
                records.NO_HEAD_BOX if person.head_box is None else person.head_box
                for person in people
            ],
            [person.normalize for person in people],
        )
        assert len(expected) == len(people) > 100 and (expected > 0).all()
        np.testing.assert_allclose(found, expected, rtol=1e-5)


# --------------------------------------------------------------------------------------
# Decoding only the crop's window; the OpenCV crop and colour jitter
# --------------------------------------------------------------------------------------


def whole_image_crops(config, prefix):
    """(pipeline crop, the same crop warped by `inference.warp_image` from the whole
    image decoded at full size, ratio index) for every person of `prefix`."""
    from pose_keras.inference import warp_image

    size = config.model.input_size
    split = records.resolve_split(prefix)
    examples = pipeline.prepared_examples(config, prefix, training=False)
    raw = pipeline._good_records(config, split, False, 0)
    crops = []
    for example, record in zip(examples, raw, strict=True):
        whole = pipeline.decode_image(record["encoded"])
        reference = warp_image(whole, example["crop_matrix"], size).numpy()
        box_px = example["scale"] * transforms.PIXELS_PER_SCALE * config.data.box_scale
        ratio = pipeline.JPEG_RATIOS[int(pipeline.jpeg_ratio_index(box_px, size))]
        crops.append((example["image"].numpy(), reference, ratio))
    return crops


def test_window_crops_of_real_photos_equal_whole_image_crops_at_full_scale(real_mpii_records):
    crops = whole_image_crops(tiny_config("model.input_size=512"), real_mpii_records)
    full_scale = [(crop, reference) for crop, reference, ratio in crops if ratio == 1]
    assert len(full_scale) >= 3  # most of these boxes are under 1024 px
    for crop, reference in full_scale:
        # Only OpenCV's 8-bit rounding (and its 1/32 px sample grid) differs.
        np.testing.assert_allclose(crop, reference, atol=1.01)
        assert np.abs(crop - reference).mean() < 0.3
    # Decoded at 1/r, the crop is an r x r block average of the same place: close to the
    # whole-image crop, not equal (that one skips pixels).
    crops = whole_image_crops(tiny_config("model.input_size=64"), real_mpii_records)
    assert all(ratio >= 2 for _, _, ratio in crops)
    for crop, reference, _ in crops:
        assert np.abs(crop - reference).mean() < 12.0
        assert abs(crop.mean() - reference.mean()) < 3.0


def smooth_jpeg(height=720, width=1280):
    """A smooth colour pattern: crops of it barely depend on the sampling, only on where."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    image = np.stack(
        [
            127 + 100 * np.sin(xs / 40.0),
            127 + 100 * np.cos(ys / 33.0),
            127 + 80 * np.sin((xs + ys) / 57.0),
        ],
        axis=-1,
    )
    ok, data = cv2.imencode(
        ".jpg", image.astype(np.uint8)[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 98]
    )
    assert ok
    return data.tobytes()


@pytest.mark.parametrize(
    "input_size, box_px, rotation_deg, expected_ratio",
    [(64, 560.0, 10.0, 8), (128, 600.0, -10.0, 4), (64, 130.0, 25.0, 2), (256, 200.0, 0.0, 1)],
)
def test_a_window_decoded_at_a_reduced_scale_is_placed_where_the_crop_samples(
    input_size, box_px, rotation_deg, expected_ratio
):
    encoded = tf.constant(smooth_jpeg())
    example = {
        "encoded": encoded,
        "image_size": tf.constant([720, 1280]),
        "source": tf.constant("smooth.jpg"),
        "record_index": tf.constant(0, tf.int64),
    }
    # Centred inside the image, so no crop pixel falls outside it (where fill differs).
    matrix = pipeline.crop_matrix(tf.constant([640.0, 360.0]), box_px, input_size, rotation_deg)
    assert pipeline.JPEG_RATIOS[int(pipeline.jpeg_ratio_index(box_px, input_size))] == (
        expected_ratio
    )
    _, window, window_matrix = pipeline.crop_source(
        example, matrix, tf.constant(box_px), input_size
    )
    # Only the part the crop samples was decoded, at 1/ratio.
    assert window.shape[0] * window.shape[1] < (box_px * 1.5 / expected_ratio + 4) ** 2
    crop = pipeline.opencv_crop(window, window_matrix, input_size).numpy()
    from pose_keras.inference import warp_image

    reference = warp_image(pipeline.decode_image(encoded), matrix, input_size).numpy()
    # Half a decoded pixel off would be up to ~0.02 * 100 * ratio / 2 grey levels per px of
    # slope here; block averaging of this smooth pattern costs well under that.
    assert np.abs(crop - reference).mean() < 1.5
    assert np.abs(crop - reference).max() < 8.0


def test_colour_transform_is_brightness_then_saturation_then_contrast():
    rng = np.random.default_rng(3)
    pixels = rng.uniform(0, 200, size=(50, 3))
    channel_mean = pixels.mean(axis=0)

    def apply(factors):
        linear, offset = pipeline.color_transform(np.array(factors), channel_mean)
        return pixels @ linear.T + offset

    np.testing.assert_allclose(apply([1.0, 1.0, 1.0]), pixels, atol=1e-9)
    np.testing.assert_allclose(apply([1.2, 1.0, 1.0]), 1.2 * pixels, atol=1e-9)
    gray = pixels.mean(axis=1, keepdims=True)
    np.testing.assert_allclose(apply([1.0, 1.0, 0.0]), np.repeat(gray, 3, axis=1), atol=1e-9)
    # Contrast 0: every pixel becomes the crop's mean intensity.
    np.testing.assert_allclose(apply([1.0, 0.0, 1.0]), np.full((50, 3), pixels.mean()), atol=1e-9)
    # All three, step by step.
    brightness, contrast, saturation = 0.9, 1.15, 0.8
    step = brightness * pixels
    step = step.mean(axis=1, keepdims=True) + saturation * (step - step.mean(axis=1, keepdims=True))
    step = step.mean() + contrast * (step - step.mean())
    np.testing.assert_allclose(apply([brightness, contrast, saturation]), step, atol=1e-9)


def test_jittered_opencv_crop_is_the_colour_transform_of_the_plain_crop():
    rng = np.random.default_rng(4)
    image = tf.constant(rng.integers(0, 256, size=(90, 120, 3)), tf.uint8)
    matrix = pipeline.crop_matrix(tf.constant([60.0, 45.0]), 80.0, 64, 15.0)
    plain = pipeline.opencv_crop(image, matrix, 64).numpy()
    factors = np.array([1.1, 0.85, 1.2], np.float32)
    jittered = pipeline.opencv_crop(image, matrix, 64, tf.constant(factors)).numpy()
    linear, offset = pipeline.color_transform(factors, plain.reshape(-1, 3).mean(axis=0))
    expected = np.clip(plain @ linear.T + offset, 0, 255)
    np.testing.assert_allclose(jittered, expected, atol=1.01)  # rounded to 8 bits
    assert np.abs(jittered - plain).mean() > 5  # the jitter did something
