"""The record schema and manifests of `pose_keras.records`: exact round trips, validation,
verified counts, and the one definition of a valid image (`check_image_bytes`)."""

import io
import json
import struct

import cv2
import numpy as np
import pytest

from pose_keras import records
from pose_keras.joints import LSP, MPII


def png_bytes(pixels) -> bytes:
    ok, data = cv2.imencode(".png", pixels)
    assert ok
    return data.tobytes()


def jpeg_bytes(pixels) -> bytes:
    ok, data = cv2.imencode(".jpg", pixels)
    assert ok
    return data.tobytes()


def make_person(index=0, joints=16, image=None):
    image = np.full((12, 10, 3), 40 + index, np.uint8) if image is None else image
    keypoints = np.arange(2 * joints, dtype=np.float64).reshape(joints, 2) * 0.25 + index
    return records.PersonRecord(
        image_encoded=png_bytes(image),
        image_format="png",
        image_height=image.shape[0],
        image_width=image.shape[1],
        image_id=f"folder/image_{index}.png",
        dataset="test",
        person_id=index,
        center=[4.5 + index, 5.25],
        scale=0.0625,
        keypoints=keypoints,
        visibility=[(j + index) % 3 for j in range(joints - 1)] + [2],
        head_box=[1.0, 2.0, 3.5, 4.75],
        normalize=7.125,
    )


def write_split(prefix, people, joint_set=MPII, per_shard=2):
    with records.ShardedWriter(prefix, joint_set, "test", examples_per_shard=per_shard) as writer:
        for person in people:
            writer.write(person)
    return prefix


# --------------------------------------------------------------------------------------
# Schema round trip
# --------------------------------------------------------------------------------------


def test_serialize_then_parse_gives_the_same_numbers():
    import tensorflow as tf

    person = make_person(3)
    serialized = records.serialize_person(person)
    back = records.example_to_record(serialized)
    # Every value is exactly representable in float32, so the round trip is exact.
    assert back.keypoints.tolist() == (np.arange(32).reshape(16, 2) * 0.25 + 3).tolist()
    assert back.center.tolist() == [7.5, 5.25]
    assert back.head_box.tolist() == [1.0, 2.0, 3.5, 4.75]
    assert (back.scale, back.normalize) == (0.0625, 7.125)
    assert back.visibility.tolist() == [(j + 3) % 3 for j in range(15)] + [2]
    assert (back.image_height, back.image_width, back.image_id, back.person_id) == (
        12,
        10,
        "folder/image_3.png",
        3,
    )
    assert back.image_encoded == person.image_encoded
    # The graph parser of the same bytes agrees number for number.
    parsed = records.parse_person(tf.constant(serialized), 16)
    assert parsed["keypoints/xy"].shape == (16, 2)
    np.testing.assert_array_equal(parsed["keypoints/xy"].numpy(), back.keypoints)
    np.testing.assert_array_equal(parsed["keypoints/visibility"].numpy(), back.visibility)
    assert float(parsed["person/scale"]) == 0.0625
    assert parsed["image/id"].numpy() == b"folder/image_3.png"


def test_written_split_reads_back_in_order_with_verified_counts(tmp_path):
    prefix = write_split(tmp_path / "split", [make_person(i) for i in range(5)], per_shard=2)
    manifest = records.read_manifest(prefix)
    assert [shard["count"] for shard in manifest["shards"]] == [2, 2, 1]
    assert manifest["count"] == 5
    assert manifest["content_sha256"] == records.manifest_digest(manifest)
    for shard in manifest["shards"]:
        assert records.count_records(tmp_path / shard["file"]) == shard["count"]
    people = list(records.read_people(prefix))
    assert [p.person_id for p in people] == [0, 1, 2, 3, 4]
    assert [p.center[0] for p in people] == [4.5, 5.5, 6.5, 7.5, 8.5]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "split-00000.tfrecord",
        "split-00001.tfrecord",
        "split-00002.tfrecord",
        "split.manifest.json",
    ]


def test_count_records_walks_the_framing(tmp_path):
    import tensorflow as tf

    path = tmp_path / "plain.tfrecord"
    with tf.io.TFRecordWriter(str(path)) as writer:
        for size in (0, 1, 300, 7):
            writer.write(b"x" * size)
    assert records.count_records(path) == 4
    # 16 framing bytes per record: cutting into the last record leaves three complete ones.
    data = path.read_bytes()
    assert len(data) == 4 * 16 + 308
    path.write_bytes(data[:-3])
    assert records.count_records(path) == 3
    path.write_bytes(b"")
    assert records.count_records(path) == 0


# --------------------------------------------------------------------------------------
# Manifests: garbled, wrong types, edited counts
# --------------------------------------------------------------------------------------


@pytest.fixture
def split(tmp_path):
    return write_split(tmp_path / "split", [make_person(i) for i in range(3)], per_shard=2)


def edit_manifest(prefix, edit, forge_checksum=False):
    path = records.manifest_path(prefix)
    data = json.loads(path.read_text())
    edit(data)
    if forge_checksum:
        data["content_sha256"] = records.manifest_digest(data)
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda m: m.__setitem__("count", 501), "'count' is 501 but its shards hold 3 records"),
        (lambda m: m["shards"][0].__setitem__("count", 500), "'count' is 3 but its shards hold"),
        (lambda m: m.pop("shards"), "missing key 'shards'"),
        (lambda m: m.__setitem__("count", "3"), "'count' must be a non-negative integer"),
        (lambda m: m.__setitem__("shards", {"a": 1}), "'shards' must be a list"),
        (lambda m: m["shards"].__setitem__(0, "split-00000"), r"shards\[0\] must be an object"),
        (lambda m: m["shards"][1].__setitem__("file", "../x"), r"shards\[1\] 'file' must be"),
        (lambda m: m["shards"][0].__setitem__("sha256", 5), r"shards\[0\] 'sha256' must be"),
        (lambda m: m.__setitem__("joint_set", ["a"]), "'joint_set' must be an object"),
        (lambda m: m["joint_set"].__setitem__("limbs", [[0, 99]]), "invalid 'joint_set'"),
        (lambda m: m.__setitem__("schema_version", 7), "schema_version 7, expected 1"),
    ],
)
def test_garbled_or_inconsistent_manifest_is_named(split, edit, message):
    path = edit_manifest(split, edit, forge_checksum=True)
    with pytest.raises(records.ManifestError, match=message) as raised:
        records.read_manifest(split)
    assert str(raised.value).startswith(f"{path}: ")
    assert "\n" not in str(raised.value)


def test_consistently_edited_counts_are_caught_by_the_content_checksum(split):
    def lie(manifest):  # the probe's edit: counts that still add up
        manifest["shards"][0]["count"] = 500
        manifest["count"] = 501

    path = edit_manifest(split, lie)
    with pytest.raises(records.ManifestError, match="differs from its content_sha256") as raised:
        records.read_manifest(split)
    assert str(raised.value).startswith(f"{path}: ")
    with pytest.raises(records.ManifestError, match="content_sha256"):
        records.shard_paths(split)


def test_invalid_json_and_non_object_manifests_are_named(split):
    path = records.manifest_path(split)
    path.write_text('{"schema_version": 1, "count": ')
    with pytest.raises(records.ManifestError, match=rf"^{path}: not valid JSON"):
        records.read_manifest(split)
    path.write_text("[1, 2]")
    with pytest.raises(
        records.ManifestError, match=rf"^{path}: expected a JSON object, found list"
    ):
        records.read_manifest(split)
    path.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(records.ManifestError, match=rf"^{path}: cannot read the manifest"):
        records.read_manifest(split)


def test_manifest_without_content_checksum_is_still_read(split):
    # Manifests written before `content_sha256` existed: the sum rule still holds.
    edit_manifest(split, lambda m: m.pop("content_sha256"))
    assert records.read_manifest(split)["count"] == 3
    edit_manifest(split, lambda m: m.__setitem__("count", 4))
    with pytest.raises(records.ManifestError, match="'count' is 4 but its shards hold 3"):
        records.read_manifest(split)


def test_writer_refuses_a_record_of_another_joint_count(tmp_path):
    with pytest.raises(ValueError, match="16 joints, but joint set 'lsp' has 14"):
        write_split(tmp_path / "lsp", [make_person(0)], LSP)
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------------------
# One definition of a valid image
# --------------------------------------------------------------------------------------


RNG = np.random.default_rng(0)
COLOR = RNG.integers(0, 256, size=(24, 40, 3), dtype=np.uint8)


def cmyk_jpeg(rgb) -> bytes:
    image_module = pytest.importorskip("PIL.Image", reason="PIL writes CMYK JPEGs; cv2 cannot")
    buffer = io.BytesIO()
    image_module.fromarray(rgb).convert("CMYK").save(buffer, "JPEG", quality=95)
    return buffer.getvalue()


def test_valid_images_give_their_stored_size_and_channels():
    gray = COLOR[..., 0]
    deep = COLOR.astype(np.uint16) * 257
    rgba = np.concatenate([COLOR, COLOR[..., :1]], axis=-1)
    assert records.check_image_bytes(jpeg_bytes(COLOR)) == (24, 40, 3)
    assert records.check_image_bytes(png_bytes(COLOR)) == (24, 40, 3)
    assert records.check_image_bytes(jpeg_bytes(gray)) == (24, 40, 1)
    assert records.check_image_bytes(png_bytes(gray)) == (24, 40, 1)
    assert records.check_image_bytes(png_bytes(deep)) == (24, 40, 3)
    assert records.check_image_bytes(png_bytes(rgba)) == (24, 40, 4)
    assert records.image_header(png_bytes(deep)) == ("png", 24, 40, 3)
    assert records.check_image_bytes(cmyk_jpeg(COLOR)) == (24, 40, 4)


def test_cmyk_jpeg_and_16_bit_png_decode_as_the_pipeline_decodes_them():
    from pose_keras import pipeline

    # A 16-bit PNG is scaled to the 8-bit range: 257 * v -> v.
    deep = COLOR.astype(np.uint16) * 257
    decoded = pipeline.decode_image(png_bytes(deep)).numpy()
    np.testing.assert_allclose(decoded, COLOR[..., ::-1].astype(np.float32), atol=1e-3)
    # A CMYK JPEG becomes RGB close to the original colours (JPEG loss only).
    decoded = pipeline.decode_image(cmyk_jpeg(COLOR)).numpy()
    assert decoded.shape == (24, 40, 3)
    assert np.abs(decoded - COLOR).mean() < 12.0


def huge_png_header(width, height) -> bytes:
    """A PNG whose IHDR declares width x height (the rest is a minimal IEND)."""
    ihdr = struct.pack(">II5B", width, height, 8, 2, 0, 0, 0)
    chunk = struct.pack(">I", len(ihdr)) + b"IHDR" + ihdr + b"\0\0\0\0"
    return records.PNG_MAGIC + chunk + b"\0\0\0\0IEND\xaeB`\x82"


@pytest.mark.parametrize(
    "data, reason",
    [
        (b"", "zero bytes"),
        (jpeg_bytes(COLOR)[:-300], r"truncated JPEG \(no EOI marker\)"),
        (png_bytes(COLOR)[:-20], r"truncated PNG \(no IEND marker\)"),
        (b"GIF89a" + b"\0" * 40, r"unsupported image format \(not JPEG or PNG\)"),
        (cv2.imencode(".bmp", COLOR)[1].tobytes(), "unsupported image format"),
        (
            huge_png_header(20_000, 20_000),
            "the header declares 20000x20000 px .400 MP., above the 100 MP",
        ),
        (huge_png_header(0, 5), "the header declares a 0x5 image"),
        (records.JPEG_MAGIC + b"\xe0\x00\x04ab\xff\xd9", "no readable JPEG header"),
        (
            jpeg_bytes(COLOR)[:600] + b"\x00" * 500 + jpeg_bytes(COLOR)[-2:],
            "undecodable JPEG",
        ),
    ],
    ids=["empty", "cut-jpeg", "cut-png", "gif", "bmp", "huge", "zero-size", "no-sof", "garbled"],
)
def test_invalid_images_are_refused_with_their_name(data, reason):
    with pytest.raises(records.BadImageError, match=rf"^photos/a.jpg: {reason}") as raised:
        records.check_image_bytes(data, "photos/a.jpg")
    assert "\n" not in str(raised.value)


# --------------------------------------------------------------------------------------
# The one feature spec, and splits (`resolve_split`)
# --------------------------------------------------------------------------------------


def test_the_feature_spec_parses_an_incomplete_record_with_its_defaults():
    import tensorflow as tf

    feature = tf.train.Feature(int64_list=tf.train.Int64List(value=[7]))
    example = tf.train.Example(features=tf.train.Features(feature={"person/id": feature}))
    parsed = tf.io.parse_single_example(example.SerializeToString(), records.feature_spec())
    assert int(parsed["person/id"]) == 7
    assert parsed["image/encoded"].numpy() == b""
    assert (int(parsed["image/height"]), int(parsed["image/width"])) == (-1, -1)
    assert float(parsed["person/scale"]) == 0.0
    assert parsed["person/head_box"].numpy().tolist() == list(records.NO_HEAD_BOX)
    assert parsed["keypoints/xy"].shape == (0,) and parsed["keypoints/visibility"].shape == (0,)
    # Every feature the writer stores is in the spec, and nothing else.
    serialized = records.serialize_person(make_person(0))
    stored = set(tf.train.Example.FromString(serialized).features.feature)
    assert stored == set(records.feature_spec())


def test_parse_person_refuses_another_joint_count():
    import tensorflow as tf

    serialized = records.serialize_person(make_person(0, joints=14))
    with pytest.raises(tf.errors.InvalidArgumentError, match="reshape"):
        records.parse_person(tf.constant(serialized), 16)


def test_resolve_split_lists_shards_counts_and_joint_set(tmp_path):
    prefix = write_split(tmp_path / "split", [make_person(i) for i in range(5)], per_shard=2)
    split = records.resolve_split(prefix)
    assert [path.rsplit("/", 1)[1] for path in split.paths] == [
        "split-00000.tfrecord",
        "split-00001.tfrecord",
        "split-00002.tfrecord",
    ]
    assert split.counts == [2, 2, 1] and split.count == 5 == records.count_people(prefix)
    assert split.joint_set == MPII
    # A glob selects shards of the same manifest.
    selected = records.resolve_split(str(tmp_path / "split-0000[01].tfrecord"))
    assert selected.counts == [2, 2] and selected.count == 4
    records.verify_shards(split)  # checksums and counts as the manifest says
    with pytest.raises(FileNotFoundError, match="No TFRecord split"):
        records.resolve_split(str(tmp_path / "nothing"))


def test_a_record_prints_without_its_image_bytes(shared_data):
    data = (shared_data / "mpii" / "images" / "005808361.jpg").read_bytes()
    record = records.PersonRecord(
        image_encoded=data, image_format="jpeg", image_height=720, image_width=1280,
        image_id="005808361.jpg", dataset="mpii", person_id=0, center=[600.0, 300.0],
        scale=3.0, keypoints=np.zeros((16, 2)), visibility=np.full(16, 2),
    )  # fmt: skip
    text = repr(record)
    assert len(data) > 50_000 and len(text) < 2_000
    assert "image_encoded" not in text and "005808361.jpg" in text
