"""Person-centred records (`tfrecords_tools.recrop`) on the real MPII photographs: the
training crops they give are the original split's crops, and `fit` refuses a geometry they
were not cut for."""

import json

import numpy as np
import pytest
from conftest import TINY_MODEL

from pose_keras import pipeline, records
from pose_keras.config import Config
from pose_keras.fit import check_config
from tfrecords_tools import recrop

# The paper's crop geometry (256 px, box 1.25, scale +-25 %, rotation +-30 degrees).
PAPER = Config()


@pytest.fixture(scope="module")
def centred_split(real_mpii_records, tmp_path_factory):
    prefix = tmp_path_factory.mktemp("centred") / "mpii_pc"
    assert recrop.main([real_mpii_records, "--output", str(prefix), "--no-progress"]) == 0
    return str(prefix)


def annotated_keypoints(example):
    """Input px of the annotated joints (the schema stores 0, 0 for the others)."""
    return example["keypoints_input_px"][example["visibility"] > 0]


def crops(config, pattern, training, seed=3, count=None):
    dataset = pipeline.prepared_examples(config, pattern, training=training, seed=seed)
    return list(dataset.take(count or records.count_people(pattern)).as_numpy_iterator())


def test_records_are_smaller_and_say_what_they_were_cut_for(real_mpii_records, centred_split):
    before = list(records.read_people(real_mpii_records))
    after = list(records.read_people(centred_split))
    assert len(after) == len(before) >= 5
    assert sum(len(r.image_encoded) for r in after) < 0.6 * sum(
        len(r.image_encoded) for r in before
    )
    for old, new in zip(before, after, strict=True):
        assert new.image_width * new.image_height < old.image_width * old.image_height
        assert (new.image_id, new.person_id, new.dataset) == (
            old.image_id,
            old.person_id,
            old.dataset,
        )
        # Pixel sizes scale together, so PCKh's normaliser and the crop box keep their ratio.
        factor = new.scale / old.scale
        head = lambda box: np.hypot(box[2] - box[0], box[3] - box[1])  # noqa: E731
        np.testing.assert_allclose(head(new.head_box), factor * head(old.head_box), rtol=1e-4)
    manifest = records.read_manifest(centred_split)
    made = manifest[records.PERSON_CENTRED_KEY]
    assert made["input_size"] == 256 and made["rotation_deg"] == 30.0
    assert made["source"] == real_mpii_records


def test_augmented_training_crops_equal_the_original_splits(real_mpii_records, centred_split):
    config = PAPER
    # The same seeds draw the same augmentation for the same person (record order kept).
    for seed in (3, 4):
        original = crops(config, real_mpii_records, True, seed, 12)
        centred = crops(config, centred_split, True, seed, 12)
        for a, b in zip(original, centred, strict=True):
            assert a["image_id"] == b["image_id"] and a["person_id"] == b["person_id"]
            np.testing.assert_allclose(annotated_keypoints(a), annotated_keypoints(b), atol=2e-3)
            np.testing.assert_array_equal(a["visibility"], b["visibility"])
            # JPEG re-encoding and block averages against the decoder's 1/r scaling: close,
            # and nowhere a black band where the photo was cut.
            difference = np.abs(a["image"] - b["image"])
            assert difference.mean() < 6.0, difference.mean()
            lost = (b["image"].max(axis=-1) == 0) & (a["image"].max(axis=-1) > 30)
            assert lost.mean() < 0.002, lost.mean()


def test_validation_pckh_inputs_are_unchanged(real_mpii_records, centred_split):
    original = crops(PAPER, real_mpii_records, False)
    centred = crops(PAPER, centred_split, False)
    for a, b in zip(original, centred, strict=True):
        np.testing.assert_allclose(annotated_keypoints(a), annotated_keypoints(b), atol=2e-3)
        factor = b["scale"] / a["scale"]
        np.testing.assert_allclose(b["normalize"], factor * a["normalize"], rtol=1e-4)


def test_the_extreme_augmentation_stays_inside_the_cut_out(real_mpii_records, centred_split):
    # Largest box, largest rotation and shift: every crop pixel the original photo has, the
    # cut-out has too (no black where the original is not black).
    config = PAPER.with_overrides(["data.color_jitter=0"])
    for seed in range(5, 9):
        for a, b in zip(
            crops(config, real_mpii_records, True, seed, 6),
            crops(config, centred_split, True, seed, 6),
            strict=True,
        ):
            lost = (b["image"].max(axis=-1) == 0) & (a["image"].max(axis=-1) > 30)
            assert lost.mean() < 0.002


@pytest.mark.parametrize(
    "override, word",
    [
        ("data.rotation_deg=40", "reach"),
        ("data.scale_jitter=0.35", "reach"),
        ("model.input_size=384", "px per person height"),
    ],
)
def test_fit_refuses_a_geometry_the_records_were_not_cut_for(centred_split, override, word):
    config = Config().with_overrides(
        [
            f"data.train_records={centred_split}",
            f"data.val_records={centred_split}",
            "train.batch_size=2",
            override,
        ]
    )
    with pytest.raises(ValueError, match=word) as raised:
        check_config(config)
    assert "data.train_records" in str(raised.value)
    assert "tfrecords_tools.recrop" in str(raised.value)
    # The geometry it was cut for, and anything inside it, is accepted.
    smaller = Config().with_overrides(
        [
            *TINY_MODEL[1:],
            f"data.train_records={centred_split}",
            f"data.val_records={centred_split}",
            "data.rotation_deg=20",
            "train.batch_size=2",
            "model.input_size=128",
        ]
    )
    check_config(smaller)


def test_cli_errors_are_one_line_and_write_nothing(
    real_mpii_records, centred_split, tmp_path, capsys
):
    out = tmp_path / "out"
    assert recrop.main([centred_split, "--output", str(out), "--no-progress"]) == 2
    assert "already person-centred" in capsys.readouterr().err
    assert recrop.main([str(tmp_path / "missing"), "--output", str(out), "--no-progress"]) == 2
    assert capsys.readouterr().err.startswith("error: ")
    assert (
        recrop.main([real_mpii_records, "--output", str(out), "--quality", "0", "--no-progress"])
        == 2
    )
    assert "--quality" in capsys.readouterr().err
    assert not list(tmp_path.glob("out*"))
    json.dumps(records.read_manifest(real_mpii_records))  # the source is untouched and readable
