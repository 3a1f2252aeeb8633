"""DeepLabCut project converter, on the real openfield demo project in ../shared/data.

The expected coordinates below were read by eye from the first rows of
`dlc_openfield/labeled-data/m4s1/CollectedData_Pranav.csv`.
"""

import shutil
import subprocess
import sys

import numpy as np
import pytest

from pose_keras import records
from tfrecords_tools import deeplabcut
from tfrecords_tools.common import NO_ANNOTATED_JOINTS, ConversionError

CSV = "labeled-data/m4s1/CollectedData_Pranav.csv"
# img0000.png: snout, leftear, rightear, tailbase (x, y), as written in the CSV.
FIRST_FRAME = [[21.521, 265.428], [33.819, 265.941], [19.984, 250.056], [87.11, 152.698]]
SECOND_FRAME_SNOUT = [10.248, 288.487]


@pytest.fixture(scope="module")
def project(shared_data):
    return shared_data / "dlc_openfield"


@pytest.fixture
def project_copy(project, tmp_path):
    """config.yaml and the CSV (no frames) in a writable folder."""
    copy = tmp_path / "project"
    (copy / "labeled-data" / "m4s1").mkdir(parents=True)
    shutil.copy(project / "config.yaml", copy / "config.yaml")
    shutil.copy(project / CSV, copy / CSV)
    return copy


def _lines(path):
    return path.read_text().splitlines()


def test_real_project_has_96_frames_and_4_body_parts_with_hand_checked_values(project):
    joint_set, reading = deeplabcut.read_deeplabcut(project)
    assert joint_set.name == "openfield"
    assert joint_set.names == ("snout", "leftear", "rightear", "tailbase")
    assert joint_set.flip_pairs == ((1, 2),)
    assert joint_set.limbs == ()  # the demo's skeleton is empty
    assert len(reading.people) == 96 and reading.skipped == {}
    first, second = reading.people[:2]
    assert first.image == "labeled-data/m4s1/img0000.png"
    assert second.image == "labeled-data/m4s1/img0001.png"
    np.testing.assert_allclose(first.keypoints, FIRST_FRAME, rtol=0, atol=1e-9)
    np.testing.assert_allclose(second.keypoints[0], SECOND_FRAME_SNOUT, rtol=0, atol=1e-9)
    assert first.visibility.tolist() == [2, 2, 2, 2]
    # Box: x 19.984..87.11, y 152.698..265.941; longer extent 113.243, plus 10% a side.
    np.testing.assert_allclose(first.center, [53.547, 209.3195], rtol=0, atol=1e-9)
    assert first.scale == pytest.approx(1.2 * 113.243 / 200, abs=1e-12)
    assert [p.person_id for p in reading.people] == list(range(96))


def test_nan_and_empty_cells_are_unannotated_and_empty_rows_are_skipped(project_copy):
    path = project_copy / CSV
    lines = _lines(path)
    cells = lines[3].split(",")
    cells[1:3] = ["", ""]  # snout empty
    cells[7:9] = ["NaN", "nan"]  # tailbase NaN
    lines[3] = ",".join(cells)
    lines[4] = lines[4].split(",")[0] + ",,,,,,,,"  # img0001: nothing labelled
    path.write_text("\n".join(lines) + "\n")
    _, reading = deeplabcut.read_deeplabcut(project_copy)
    assert len(reading.people) == 95
    assert reading.skipped == {NO_ANNOTATED_JOINTS: ["labeled-data/m4s1/img0001.png"]}
    first = reading.people[0]
    assert first.visibility.tolist() == [0, 2, 2, 0]
    np.testing.assert_allclose(first.keypoints, [[0, 0], FIRST_FRAME[1], FIRST_FRAME[2], [0, 0]])
    # The box covers the two ears only: extent 13.835 x 15.885.
    np.testing.assert_allclose(first.center, [26.9015, 257.9985], rtol=0, atol=1e-9)


def test_one_labelled_part_gets_the_median_box_and_half_a_point_is_an_error(project_copy):
    path = project_copy / CSV
    lines = _lines(path)
    cells = lines[3].split(",")
    cells[3:9] = [""] * 6  # img0000: only the snout
    lines[3] = ",".join(cells)
    path.write_text("\n".join(lines) + "\n")
    _, reading = deeplabcut.read_deeplabcut(project_copy)
    median = np.median([p.scale for p in reading.people[1:]])
    assert reading.people[0].scale == pytest.approx(median, abs=1e-12)
    np.testing.assert_allclose(reading.people[0].center, FIRST_FRAME[0], rtol=0, atol=1e-9)

    cells[1] = ""  # snout x empty, y given
    lines[3] = ",".join(cells)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ConversionError, match=r"line 4: body part 'snout' has only one of x"):
        deeplabcut.read_deeplabcut(project_copy)
    _, reading = deeplabcut.read_deeplabcut(project_copy, skip_invalid=True)
    assert len(reading.people) == 95


def test_three_index_columns_of_newer_deeplabcut_give_the_same_frames(project, project_copy):
    path = project_copy / CSV
    lines = _lines(path)
    rewritten = [lines[0].replace("scorer,", "scorer,,,", 1)]
    rewritten += [lines[1].replace("bodyparts,", "bodyparts,,,", 1)]
    rewritten += [lines[2].replace("coords,", "coords,,,", 1)]
    for line in lines[3:]:
        image, rest = line.split(",", 1)
        rewritten.append(",".join(image.split("/")) + "," + rest)
    path.write_text("\n".join(rewritten) + "\n")
    _, split = deeplabcut.read_deeplabcut(project_copy)
    _, original = deeplabcut.read_deeplabcut(project)
    assert [p.image for p in split.people] == [p.image for p in original.people]
    np.testing.assert_allclose(
        np.stack([p.keypoints for p in split.people]),
        np.stack([p.keypoints for p in original.people]),
        rtol=0,
        atol=0,
    )


def test_h5_annotations_read_like_the_csv(project, project_copy):
    pytest.importorskip("tables")
    import pandas as pd

    csv_path = project_copy / CSV
    table = pd.read_csv(csv_path, header=[0, 1, 2], index_col=0)
    table.iloc[5, 0:2] = np.nan  # snout unlabelled, as DeepLabCut stores it
    table.to_hdf(csv_path.with_suffix(".h5"), key="df_with_missing", mode="w")
    csv_path.unlink()
    _, from_h5 = deeplabcut.read_deeplabcut(project_copy)
    _, from_csv = deeplabcut.read_deeplabcut(project)
    assert [p.image for p in from_h5.people] == [p.image for p in from_csv.people]
    assert from_h5.people[5].visibility.tolist() == [0, 2, 2, 2]
    np.testing.assert_allclose(from_h5.people[0].keypoints, FIRST_FRAME, rtol=0, atol=1e-9)


def test_h5_without_pytables_suggests_the_csv(project_copy, tmp_path):
    csv_path = project_copy / CSV
    h5_path = csv_path.with_suffix(".h5")
    h5_path.write_bytes(b"not read")
    csv_path.unlink()
    code = (
        "import sys; sys.modules['tables'] = None\n"
        "from tfrecords_tools import deeplabcut\n"
        f"deeplabcut.read_deeplabcut({str(project_copy)!r})\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode != 0
    assert "needs PyTables (pip install tables)" in result.stderr
    assert "CollectedData .csv" in result.stderr


def test_multi_animal_projects_are_refused_with_a_clear_error(project_copy):
    config = project_copy / "config.yaml"
    original = config.read_text()
    config.write_text(original.replace("multianimalproject:", "multianimalproject: true"))
    with pytest.raises(ConversionError, match="multi-animal .* not supported yet"):
        deeplabcut.read_deeplabcut(project_copy)
    config.write_text(original)
    path = project_copy / CSV
    lines = _lines(path)
    individuals = "individuals" + ",mouse1" * 8
    path.write_text("\n".join([lines[0], individuals, *lines[1:]]) + "\n")
    with pytest.raises(ConversionError, match="'individuals' header row .* not supported yet"):
        deeplabcut.read_deeplabcut(project_copy)


def test_body_parts_must_match_the_config(project_copy):
    config = project_copy / "config.yaml"
    config.write_text(config.read_text().replace("- tailbase", "- tailbase\n- tailtip"))
    with pytest.raises(ConversionError, match=r"missing x/y: \['tailtip'\]"):
        deeplabcut.read_deeplabcut(project_copy)


def test_flip_pairs_from_names_and_explicit():
    find = deeplabcut.flip_pairs_from_names
    assert find(["snout", "leftear", "rightear", "tailbase"]) == ((1, 2),)
    assert find(["Left_Paw", "nose", "Right_Paw"]) == ((0, 2),)
    assert find(["LeftEar", "RightEar"]) == ((0, 1),)
    assert find(["l_eye", "r_eye", "ear_L", "ear_R", "lr"]) == ((0, 1), (2, 3))
    assert find(["left", "tail"]) == ()  # no counterpart present
    with pytest.raises(ValueError, match="more than one"):
        find(["left_l", "right_l", "left_r"])
    names = ["snout", "leftear", "rightear", "tailbase"]
    assert deeplabcut.parse_flip_pairs("rightear:leftear", names) == ((2, 1),)
    assert deeplabcut.parse_flip_pairs("none", names) == ()
    with pytest.raises(ValueError, match="no joint 'nose'"):
        deeplabcut.parse_flip_pairs("nose:snout", names)


def test_split_sizes_and_determinism_by_seed():
    train, validation = deeplabcut.split_frames(96, 0.2, seed=0)
    assert (train.size, validation.size) == (77, 19)
    assert sorted(np.concatenate([train, validation]).tolist()) == list(range(96))
    again = deeplabcut.split_frames(96, 0.2, seed=0)
    assert again[1].tolist() == validation.tolist()
    assert deeplabcut.split_frames(96, 0.2, seed=1)[1].tolist() != validation.tolist()
    assert [part.size for part in deeplabcut.split_frames(96, 1.0)] == [0, 96]
    assert [part.size for part in deeplabcut.split_frames(96, 0.0)] == [96, 0]
    assert [part.size for part in deeplabcut.split_frames(10, 0.01)] == [9, 1]
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        deeplabcut.split_frames(96, 1.5)


def test_convert_writes_both_splits_and_val_fraction_one_writes_only_validation(project, tmp_path):
    prefix = tmp_path / "records" / "openfield"
    manifests = deeplabcut.convert_project(
        project, prefix, val_fraction=0.25, seed=3, progress=False
    )
    assert manifests["train"]["count"] == 72 and manifests["val"]["count"] == 24
    assert manifests["val"]["joint_set"]["names"] == ["snout", "leftear", "rightear", "tailbase"]
    assert manifests["val"]["split_rule"]["seed"] == 3
    _, expected_val = deeplabcut.split_frames(96, 0.25, seed=3)
    people = list(records.read_people(f"{prefix}-val-*.tfrecord"))
    assert [p.person_id for p in people] == expected_val.tolist()
    assert (people[0].image_height, people[0].image_width) == (480, 640)
    _, reading = deeplabcut.read_deeplabcut(project)
    source = reading.people[people[0].person_id]
    assert people[0].image_id == source.image
    np.testing.assert_allclose(people[0].keypoints, source.keypoints, rtol=0, atol=1e-4)

    status = deeplabcut.main(
        [str(project), "--output", str(prefix), "--val-fraction", "1", "--no-progress"]
    )
    assert status == 0
    assert not list(tmp_path.glob("records/openfield-train*"))
    assert records.read_manifest(f"{prefix}-val-*.tfrecord")["count"] == 96
