"""Converter faults: what a conversion may never destroy, and the one-line errors for bad
output paths and malformed COCO files. Runs the COCO converter on the real sample
(../shared/data/coco: 4 images, 12 people) and on a small generated non-person file."""

import json
import os
import shutil

import cv2
import numpy as np
import pytest

from pose_keras import records
from pose_keras.joints import MPII
from tfrecords_tools import coco
from tfrecords_tools.common import ConversionError


@pytest.fixture
def coco_sample(shared_data, tmp_path):
    """A writable copy of the COCO sample: (annotation file, image folder)."""
    images = tmp_path / "images"
    shutil.copytree(shared_data / "coco" / "images", images)
    annotations = tmp_path / "person_keypoints_sample.json"
    shutil.copy(shared_data / "coco" / "person_keypoints_sample.json", annotations)
    return annotations, images


def run_coco(annotations, images, output, *extra):
    return coco.main(
        [str(annotations), "--image-root", str(images), "--output", str(output),
         "--no-progress", *extra]
    )  # fmt: skip


def snapshot(folder):
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir()) if path.is_file()}


def test_conversion_never_touches_a_sibling_split(coco_sample, tmp_path):
    annotations, images = coco_sample
    out = tmp_path / "ex"
    assert run_coco(annotations, images, out / "coco-val", "--examples-per-shard", "5") == 0
    sibling = snapshot(out)
    assert len(sibling) == 4  # coco-val-0000{0,1,2}.tfrecord + manifest
    assert run_coco(annotations, images, out / "coco", "--examples-per-shard", "20") == 0
    after = snapshot(out)
    assert {name: after[name] for name in sibling} == sibling
    assert records.read_manifest(out / "coco-val")["count"] == 12
    assert len(list(records.read_people(out / "coco-val"))) == 12
    # Re-converting a prefix with fewer shards removes only its own extra shards.
    assert run_coco(annotations, images, out / "coco-val", "--examples-per-shard", "20") == 0
    names = sorted(snapshot(out))
    assert names == [
        "coco-00000.tfrecord",
        "coco-val-00000.tfrecord",
        "coco-val.manifest.json",
        "coco.manifest.json",
    ]


def test_failed_reconversion_leaves_the_old_split_byte_identical(coco_sample, tmp_path, capsys):
    annotations, images = coco_sample
    out = tmp_path / "out"
    assert run_coco(annotations, images, out / "coco", "--examples-per-shard", "4") == 0
    before = snapshot(out)
    capsys.readouterr()
    # The last image breaks after the first people were written to new shards.
    broken = images / "000000197388.jpg"
    broken.write_bytes(broken.read_bytes()[:3000])
    assert run_coco(annotations, images, out / "coco", "--examples-per-shard", "1") == 2
    error = capsys.readouterr().err
    assert "cannot read image" in error and "000000197388.jpg" in error
    assert error.count("\n") == 1
    assert snapshot(out) == before
    assert len(list(records.read_people(out / "coco"))) == 12


def test_output_under_a_file_is_refused_before_reading(coco_sample, tmp_path, capsys):
    annotations, images = coco_sample
    blocker = tmp_path / "records"
    blocker.write_text("not a folder")
    missing = tmp_path / "nowhere.json"  # not even read: the output check comes first
    assert run_coco(missing, images, blocker / "coco") == 2
    error = capsys.readouterr().err
    assert error == (
        f"error: cannot write TFRecords at {blocker / 'coco'}: {blocker} is a file, not a folder.\n"
    )
    assert blocker.read_text() == "not a folder"
    # A folder where the manifest goes is in the way too; nothing is written.
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "coco.manifest.json").mkdir()
    assert run_coco(annotations, images, tmp_path / "out" / "coco") == 2
    assert "coco.manifest.json is a folder in the way" in capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["coco.manifest.json"]


def test_disk_full_mid_way_names_the_file_and_keeps_the_old_split(tmp_path):
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full to simulate a full disk")
    image = cv2.imencode(".png", np.zeros((8, 8, 3), np.uint8))[1].tobytes()
    record = records.PersonRecord(
        image_encoded=image, image_format="png", image_height=8, image_width=8,
        image_id="a.png", dataset="test", person_id=0, center=[3.5, 3.5], scale=0.04,
        keypoints=np.full((16, 2), 4.0), visibility=np.full(16, 2),
    )  # fmt: skip
    prefix = tmp_path / "split"
    with records.ShardedWriter(prefix, MPII, "test", examples_per_shard=1) as writer:
        writer.write(record)
    before = snapshot(tmp_path)
    with pytest.raises(records.OutputPathError) as raised:
        with records.ShardedWriter(prefix, MPII, "test", examples_per_shard=1) as writer:
            writer.write(record)  # shard 0 complete (temporary name)
            # The next shard's file goes to a full disk (writes fail with ENOSPC).
            os.symlink("/dev/full", f"{prefix}-00001.tfrecord.tmp")
            writer.write(record)
            writer.write(record)
    assert str(raised.value).startswith(f"cannot write {prefix}-00001.tfrecord.tmp: ")
    assert snapshot(tmp_path) == before  # old split intact, temporary files gone
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(before)


# --------------------------------------------------------------------------------------
# Malformed COCO files
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda d: d.__setitem__("categories", ["person"]), r"categories\[0\] must be an object"),
        (lambda d: d.__setitem__("categories", 5), "'categories' must be a list, found int"),
        (lambda d: d.__setitem__("annotations", {}), "'annotations' must be a list"),
        (lambda d: d["images"].__setitem__(1, 17), r"images\[1\] must be an object, found int"),
        (
            lambda d: d["categories"][0].__setitem__("keypoints", "nose,eye"),
            r"categories\[0\]\.keypoints must be a list of keypoint names",
        ),
        (
            lambda d: d["categories"][0].__setitem__("keypoints", [1, 2, 3]),
            r"categories\[0\]\.keypoints must be a list of keypoint names",
        ),
        (
            lambda d: d["annotations"].__setitem__(3, "442619"),
            r"annotations\[3\] must be an object, found str",
        ),
        (
            lambda d: d["annotations"][0].__setitem__("keypoints", "367,81,2"),
            r"annotation 0 \(id 442619\): 'keypoints' must be a list of numbers",
        ),
        (
            lambda d: d["annotations"][0].__setitem__("bbox", {"x": 1}),
            r"annotation 0 \(id 442619\): 'bbox' must be \[x, y, width, height\]",
        ),
    ],
    ids=[
        "category-str", "categories-int", "annotations-dict", "image-int", "names-str",
        "names-int", "annotation-str", "keypoints-str", "bbox-dict",
    ],
)  # fmt: skip
def test_wrong_element_types_name_the_file_and_field(shared_data, tmp_path, edit, message):
    data = json.loads((shared_data / "coco" / "person_keypoints_sample.json").read_text())
    edit(data)
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ConversionError, match=rf"^{path}: {message}") as raised:
        coco.read_coco(path)
    assert "\n" not in str(raised.value)


def test_a_skeleton_that_is_not_one_based_pairs_is_named(tmp_path):
    data = mouse_coco()
    data["categories"][0]["skeleton"] = [[0, 1]]  # 0-based by mistake
    path = tmp_path / "mouse.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ConversionError, match=r"categories\[0\]\.skeleton must be .* in 1\.\.4"):
        coco.read_coco(path)


# --------------------------------------------------------------------------------------
# Any keypoint category (CVAT / Label Studio COCO exports)
# --------------------------------------------------------------------------------------

MOUSE = ["snout", "left_ear", "right_ear", "tail_base"]


def mouse_coco():
    keypoints = [
        [30, 20, 2, 22, 14, 2, 38, 14, 1, 30, 70, 2],
        [70, 40, 2, 0, 0, 0, 78, 34, 2, 72, 90, 2],
    ]
    return {
        "images": [{"id": 7, "file_name": "cage/frame7.png", "height": 100, "width": 120}],
        "annotations": [
            {"id": 100 + i, "image_id": 7, "category_id": 3, "iscrowd": 0,
             "num_keypoints": 4, "bbox": [10 + 40 * i, 10, 40, 82], "keypoints": values}
            for i, values in enumerate(keypoints)
        ],
        "categories": [
            {"id": 3, "name": "mouse", "supercategory": "animal", "keypoints": MOUSE,
             "skeleton": [[1, 2], [1, 3], [1, 4]]},
        ],
    }  # fmt: skip


def test_non_person_category_converts_with_its_own_joint_set(tmp_path):
    (tmp_path / "images" / "cage").mkdir(parents=True)
    frame = np.random.default_rng(2).integers(0, 255, size=(100, 120, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "images" / "cage" / "frame7.png"), frame)
    path = tmp_path / "mouse_keypoints.json"
    path.write_text(json.dumps(mouse_coco()))
    assert run_coco(path, tmp_path / "images", tmp_path / "out" / "mouse") == 0

    joint_set = records.joint_set_of(tmp_path / "out" / "mouse")
    assert joint_set.name == "mouse" and joint_set.names == tuple(MOUSE)
    assert joint_set.flip_pairs == ((1, 2),)
    assert joint_set.limbs == ((0, 1), (0, 2), (0, 3))  # COCO's 1-based skeleton, 0-based
    assert joint_set.flip_index == (0, 2, 1, 3)
    manifest = records.read_manifest(tmp_path / "out" / "mouse")
    assert (manifest["dataset"], manifest["count"], manifest["category"]) == ("mouse", 2, "mouse")
    first, second = records.read_people(tmp_path / "out" / "mouse")
    assert first.dataset == "mouse" and first.image_id == "cage/frame7.png"
    np.testing.assert_array_equal(first.keypoints, [[30, 20], [22, 14], [38, 14], [30, 70]])
    assert first.visibility.tolist() == [2, 2, 1, 2]
    assert second.visibility.tolist() == [2, 0, 2, 2] and second.keypoints[1].tolist() == [0, 0]
    # bbox [50, 10, 40, 82]: centre (70, 51), scale 82 / 200.
    np.testing.assert_allclose(second.center, [70.0, 51.0])
    assert second.scale == pytest.approx(0.41, rel=1e-6)
    assert (first.image_height, first.image_width) == (100, 120)


def test_person_category_keeps_the_coco_joint_set(shared_data):
    reading = coco.read_coco(shared_data / "coco" / "person_keypoints_sample.json")
    from pose_keras.joints import COCO

    assert reading.joint_set is COCO
