"""DeepLabCut project (single animal) -> TFRecords, with a seeded train/validation split.

A DeepLabCut project folder (DeepLabCut/DeepLabCut `docs/standardDeepLabCut_UserGuide.md`;
the layout checked on the openfield demo `examples/openfield-Pranav-2018-10-30/`) holds:

- `config.yaml`: `Task`, `scorer`, `bodyparts` (the joint names, in order), `skeleton`
  (pairs of body-part names, drawn only), `multianimalproject`.
- `labeled-data/<video>/CollectedData_<scorer>.csv` (and the same table as `.h5`, written
  by pandas `to_hdf(..., "df_with_missing")`): a 3-row header `scorer` / `bodyparts` /
  `coords` (`x`, `y` per body part), then one row per labelled frame. The frame's image
  path relative to the project (`labeled-data/<video>/img0000.png`) is the first cell, or,
  in DeepLabCut >= 2.3, split over three index cells (`labeled-data`, `<video>`,
  `img0000.png`). Coordinates are 0-based pixel centres (DeepLabCut's labelling GUIs show
  pixel centres at integer coordinates); an empty or NaN cell is an unlabelled part.
  Multi-animal projects add an `individuals` header row: not supported yet.

Conventions of this converter:

- Joint set: `config.yaml`'s body parts (joint set and dataset name = `Task`), the
  skeleton as limbs, flip pairs from left/right names (`leftear`/`rightear`,
  `left_paw`/`right_paw`, `LeftEar`/`RightEar`, `l_ear`/`r_ear`, `ear_l`/`ear_r`; see
  `flip_pairs_from_names`) or given with `--flip-pairs a:b,c:d` (`none` for no pairs).
- Visibility: 2 for a labelled part (DeepLabCut has no occlusion flag), 0 for an empty/NaN
  cell. A frame with no labelled part is skipped and counted (DeepLabCut drops such rows
  from its training set too).
- Person box (DeepLabCut has none): the extent of the labelled parts, widened by
  `box_margin` (default 0.1) times its longer side on every side, so the box side is 1.2x
  the longer extent; centre = box centre, scale = longer box side / 200. The training
  pipeline adds its own 25% margin around that. A frame with fewer than two distinct
  labelled parts has no extent: its box side is the median box side of the other frames.
- Which annotation file: per `labeled-data/<video>/` folder, `CollectedData_<scorer>.csv`,
  else its `.h5` (needs PyTables, `pip install tables`), else the one `CollectedData_*`
  file there. Folders without one are not labelled yet; they are listed in the manifest.
- Split (`split_frames`): frames are shuffled with `numpy.random.default_rng(seed)`; the
  first `round(val_fraction * frames)` go to validation (at least one when
  `0 < val_fraction`, at least one left for training when `val_fraction < 1`). `person/id`
  is the frame's index in the project's sorted frame list, the same in both splits.
  `--val-fraction 1` writes only `PREFIX-val`; `--val-fraction 0` only `PREFIX-train`; the
  split not written has its files of an earlier run at that prefix removed, so that a later
  `fit` cannot pick up stale records.

The joint-set helpers (`pose_keras.joints.flip_pairs_from_names`, `parse_flip_pairs`,
`joint_set_from_names`) and the person box (`pose_keras.transforms.box_from_keypoints`,
`tfrecords_tools.common.annotation_from_points`) are shared with the labelling-tool
converters (`tfrecords_tools.labelstudio`, `.cvat`, `.labelme`) and COCO.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import math
import re
from pathlib import Path

import numpy as np

# flip_pairs_from_names, parse_flip_pairs and box_from_keypoints are also named here, where
# docs/video.md and the tests first found them.
from pose_keras.joints import (  # noqa: F401
    JointSet,
    flip_pairs_from_names,
    joint_set_from_names,
    parse_flip_pairs,
)
from pose_keras.transforms import (  # noqa: F401
    DEFAULT_BOX_MARGIN,
    PIXELS_PER_SCALE,
    box_from_keypoints,
)
from tfrecords_tools.common import (
    INVALID_RECORD,
    NO_ANNOTATED_JOINTS,
    ConversionError,
    Reading,
    add_common_arguments,
    annotation_from_points,
    convert,
    require_file,
    run_command_line,
)

DEFAULT_VAL_FRACTION = 0.2
DEFAULT_SEED = 0
VISIBLE = 2
FOLDERS_WITHOUT_LABELS = "folders_without_labels"

# Labelling tools (Label Studio, CVAT, labelme) store points in the continuous image frame
# whose origin is the image's top-left corner, so the centre of pixel (i, j) is at
# (i + 0.5, j + 0.5); the records use 0-based pixel centres (pose_keras.transforms).
PIXEL_CENTRE_OFFSET = 0.5


@dataclasses.dataclass
class LabelledPerson:
    """One person as a labelling tool groups it, before the joint set is known.

    Args:
        image: str. Image path relative to the image root.
        record: str. Where it sits in the source, for messages.
        points: dict. Label -> (x, y, visibility), record px (0-based pixel centres).
        box: (x0, y0, x1, y1) or None. Person box, record px; None = from the points.
        image_size: (height, width) or None. Size the source declares.
    """

    image: str
    record: str
    points: dict
    box: tuple | None = None
    image_size: tuple | None = None


def labels_in_order(people) -> list:
    """Every label of `people`, in order of first appearance."""
    labels = []
    for person in people:
        labels += [label for label in person.points if label not in labels]
    return labels


def reading_from_people(source, format, people, joint_set, skip_invalid=False, margin=None):
    """A `Reading` with one `Annotation` per `LabelledPerson` (`person_id` = its index).

    A person whose labels are not joints of `joint_set`, or that has no box and fewer than
    two distinct labelled points, is an error naming the source and record (skipped and
    counted with `skip_invalid`); one with no labelled joint is skipped and counted.
    """
    margin = DEFAULT_BOX_MARGIN if margin is None else margin
    reading = Reading(source=str(source), format=format)
    for person_id, person in enumerate(people):
        if not any(flag > 0 for _, _, flag in person.points.values()):
            reading.skipped.setdefault(NO_ANNOTATED_JOINTS, []).append(person.record)
            continue
        try:
            annotation = annotation_from_points(
                joint_set,
                person.points,
                person.image,
                person_id,
                person.record,
                box=person.box,
                image_size=person.image_size,
                margin=margin,
            )
            if annotation is None:
                raise ValueError("no person box, and fewer than two distinct labelled points")
        except ValueError as error:
            message = f"{source}: {person.record}: {error}."
            reading.reject(INVALID_RECORD, person.record, message, skip_invalid)
            continue
        reading.people.append(annotation)
    return reading


def add_joint_arguments(parser: argparse.ArgumentParser):
    """`--joints`, `--flip-pairs`, `--name`, `--box-margin` of the labelling-tool CLIs."""
    parser.add_argument(
        "--joints",
        help="Joint-set JSON file (JointSet.to_dict form, as tfrecords_tools.custom takes); "
        "default: the labels found, in order of first appearance.",
    )
    parser.add_argument(
        "--flip-pairs",
        help="Without --joints: left/right labels swapped by horizontal flips, 'a:b,c:d', or "
        "'none' (default: found from left/right names).",
    )
    parser.add_argument(
        "--name",
        help="Without --joints: joint-set and dataset name (default: keypoints; CVAT: the "
        "skeleton label).",
    )
    parser.add_argument(
        "--box-margin",
        type=float,
        default=DEFAULT_BOX_MARGIN,
        help="Without a person box in the source: box = labelled extent widened by this "
        f"fraction of its longer side on every side (default: {DEFAULT_BOX_MARGIN}).",
    )


def joints_argument(arguments):
    """The joint set of `--joints FILE`, or None when not given."""
    if not arguments.joints:
        return None
    from tfrecords_tools.custom import load_joint_set

    return load_joint_set(arguments.joints)


def joint_set_for_labels(joint_set, labels, name, flip_pairs=None, limbs=()) -> JointSet:
    """`joint_set` when given, else a joint set of `labels` (`joint_set_from_names`)."""
    if joint_set is not None:
        return joint_set
    if not labels:
        raise ConversionError("no labelled point found, so there is no joint set to name.")
    try:
        return joint_set_from_names(name, labels, limbs, flip_pairs)
    except ValueError as error:
        raise ConversionError(f"joint set from the labels {labels}: {error}.") from None


# --- the DeepLabCut project --------------------------------------------------------------


def read_config(project) -> dict:
    """`config.yaml` of a DeepLabCut project (PyYAML `safe_load`); errors name the file."""
    path = require_file(Path(project) / "config.yaml")
    try:
        import yaml
    except ImportError:
        raise ConversionError(
            f"{path}: reading a DeepLabCut config needs PyYAML (pip install pyyaml)."
        ) from None
    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, yaml.YAMLError) as error:
        raise ConversionError(f"{path}: not valid YAML ({error}).") from None
    if not isinstance(config, dict):
        raise ConversionError(f"{path}: expected a mapping of DeepLabCut settings.")
    if config.get("multianimalproject"):
        raise ConversionError(
            f"{path}: multi-animal DeepLabCut projects (multianimalproject: true) are not "
            "supported yet; only single-animal projects are."
        )
    parts = config.get("bodyparts")
    if not isinstance(parts, list) or not parts or not all(isinstance(p, str) for p in parts):
        raise ConversionError(f"{path}: 'bodyparts' must be a non-empty list of names.")
    skeleton = config.get("skeleton") or []
    if not isinstance(skeleton, list) or not all(
        isinstance(limb, list) and len(limb) == 2 for limb in skeleton
    ):
        raise ConversionError(f"{path}: 'skeleton' must be a list of [part, part] pairs.")
    return config


def joint_set_from_config(config: dict, flip_pairs=None, where="config.yaml") -> JointSet:
    """The joint set of a DeepLabCut config: body parts, skeleton, flip pairs."""
    name = str(config.get("Task") or "deeplabcut")
    try:
        return joint_set_from_names(
            name, config["bodyparts"], config.get("skeleton") or [], flip_pairs
        )
    except ValueError as error:
        raise ConversionError(f"{where}: {error}.") from None


def _image_path(cells) -> str:
    """The image path of one row's index cells, relative to the project, with '/'."""
    path = "/".join(cell.strip().replace("\\", "/") for cell in cells if cell.strip())
    parts = path.split("/")
    if "labeled-data" in parts:  # an absolute path of an older project
        parts = parts[parts.index("labeled-data") :]
    return "/".join(parts)


def _columns(path, header, parts, first=0):
    """Map (part, coordinate) -> column index from the bodyparts / coords header rows."""
    bodyparts_row, coords_row = header
    columns = {}
    for index, (part, coordinate) in enumerate(zip(bodyparts_row, coords_row, strict=False)):
        if index < first:
            continue
        part, coordinate = part.strip(), coordinate.strip()
        if not part and not coordinate:
            continue
        if coordinate not in ("x", "y", "likelihood"):
            raise ConversionError(
                f"{path}: column {index + 1} has coords {coordinate!r}; expected x, y or "
                "likelihood."
            )
        columns[(part, coordinate)] = index
    found = []
    for part, _ in columns:
        if part not in found:
            found.append(part)
    unknown = [part for part in found if part not in parts]
    missing = [p for p in parts if (p, "x") not in columns or (p, "y") not in columns]
    if unknown or missing:
        raise ConversionError(
            f"{path}: body parts {found} do not match config.yaml's {list(parts)} "
            f"(unknown: {unknown}, missing x/y: {missing})."
        )
    return columns


def _read_csv_rows(path, parts, name):
    """Yield (record, image, {part: (x_text, y_text)}) from a CollectedData CSV."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            rows = [(reader.line_num, fields) for fields in reader]
    except (UnicodeDecodeError, csv.Error) as error:
        raise ConversionError(f"{path}: not a readable CSV file ({error}).") from None
    labels = [fields[0].strip() if fields else "" for _, fields in rows[:4]]
    if len(labels) > 1 and labels[1] == "individuals":
        raise ConversionError(
            f"{path}: has an 'individuals' header row (a multi-animal project); multi-animal "
            "DeepLabCut data is not supported yet."
        )
    if labels[:3] != ["scorer", "bodyparts", "coords"]:
        raise ConversionError(
            f"{path}: expected DeepLabCut's header rows scorer / bodyparts / coords, found "
            f"{labels[:3]}."
        )
    scorer_row = rows[0][1]
    index_columns = 1
    while index_columns < len(scorer_row) and not scorer_row[index_columns].strip():
        index_columns += 1
    columns = _columns(path, (rows[1][1], rows[2][1]), parts, first=index_columns)
    for line, fields in rows[3:]:
        if not fields or all(not field.strip() for field in fields):
            continue
        record = f"{name} line {line}"
        if len(fields) < max(columns.values()) + 1:
            raise ConversionError(f"{path}: line {line}: {len(fields)} fields, too few.")
        image = _image_path(fields[:index_columns])
        values = {
            part: (fields[columns[(part, "x")]], fields[columns[(part, "y")]]) for part in parts
        }
        yield record, image, values


def _read_h5_rows(path, parts, name):
    """Yield (record, image, {part: (x, y)}) from a CollectedData `.h5` (pandas HDF5)."""
    try:
        import tables  # noqa: F401
    except ImportError:
        raise ConversionError(
            f"{path}: reading DeepLabCut .h5 files needs PyTables (pip install tables); or "
            f"convert from the CollectedData .csv beside it."
        ) from None
    import pandas as pd

    try:
        table = pd.read_hdf(path)
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ConversionError(f"{path}: not a readable pandas HDF5 table ({error}).") from None
    names = list(getattr(table.columns, "names", []) or [])
    if "individuals" in names:
        raise ConversionError(
            f"{path}: has an 'individuals' column level (a multi-animal project); "
            "multi-animal DeepLabCut data is not supported yet."
        )
    if table.columns.nlevels != 3:
        raise ConversionError(
            f"{path}: expected columns scorer / bodyparts / coords, found "
            f"{table.columns.nlevels} level(s)."
        )
    header = (
        [str(value) for value in table.columns.get_level_values(1)],
        [str(value) for value in table.columns.get_level_values(2)],
    )
    columns = _columns(path, header, parts)
    values = table.to_numpy(dtype=np.float64, na_value=np.nan)
    for row, key in enumerate(table.index):
        cells = key if isinstance(key, tuple) else (key,)
        image = _image_path([str(cell) for cell in cells])
        points = {
            part: (values[row, columns[(part, "x")]], values[row, columns[(part, "y")]])
            for part in parts
        }
        yield f"{name} row {row + 1}", image, points


def _labelled_value(text):
    """A cell -> float, or None when empty / NaN; ValueError when not a number."""
    if isinstance(text, float | np.floating):
        return None if math.isnan(text) else float(text)
    text = str(text).strip()
    if text == "" or text.lower() == "nan":
        return None
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text!r} is not a finite number")
    return value


def annotation_files(project, scorer=None) -> tuple:
    """(annotation files, folders without one) under `PROJECT/labeled-data/*/`."""
    labelled = Path(project) / "labeled-data"
    if not labelled.is_dir():
        raise ConversionError(f"{project}: no labeled-data folder; is this a DeepLabCut project?")
    files, unlabelled = [], []
    for folder in sorted(path for path in labelled.iterdir() if path.is_dir()):
        choice = None
        for suffix in (".csv", ".h5"):
            named = folder / f"CollectedData_{scorer}{suffix}"
            if scorer and named.is_file():
                choice = named
                break
        if choice is None:
            candidates = sorted(folder.glob("CollectedData_*.csv")) or sorted(
                folder.glob("CollectedData_*.h5")
            )
            if len(candidates) > 1:
                raise ConversionError(
                    f"{folder}: several annotation files {[c.name for c in candidates]} and "
                    f"none is CollectedData_{scorer}.csv (config.yaml's scorer)."
                )
            choice = candidates[0] if candidates else None
        if choice is None:
            unlabelled.append(str(folder.relative_to(project)))
        else:
            files.append(choice)
    if not files:
        raise ConversionError(f"{labelled}: no CollectedData_*.csv or .h5 file in any folder.")
    return files, unlabelled


def read_deeplabcut(
    project,
    flip_pairs=None,
    box_margin=DEFAULT_BOX_MARGIN,
    skip_invalid=False,
) -> tuple:
    """Read a single-animal DeepLabCut project.

    Args:
        project: str or Path. The project folder (holds config.yaml and labeled-data/).
        flip_pairs: str or None. `"a:b,c:d"` / `"none"`; None = from left/right names.
        box_margin: float. Box margin per side, a fraction of the longer extent.
            Defaults to 0.1.
        skip_invalid: bool. Skip and count rows with bad values instead of failing.

    Returns:
        (joint_set, reading): one `Annotation` per labelled frame, sorted by image path;
        `person_id` is the frame's index in that order.
    """
    project = Path(project)
    if not project.is_dir():
        raise ConversionError(f"{project}: not a folder (expected a DeepLabCut project).")
    config = read_config(project)
    joint_set = joint_set_from_config(config, flip_pairs, where=str(project / "config.yaml"))
    if not box_margin >= 0:
        raise ConversionError(f"box margin must be >= 0, received {box_margin}.")
    files, unlabelled = annotation_files(project, config.get("scorer"))
    reading = Reading(source=str(project), format="deeplabcut")
    frames = {}
    for path in files:
        rows = _read_h5_rows if path.suffix == ".h5" else _read_csv_rows
        name = str(path.relative_to(project))
        for record, image, values in rows(path, joint_set.names, name):
            if image in frames:
                raise ConversionError(f"{project}: {record}: frame {image!r} is labelled twice.")
            try:
                points = {}
                for part, (x_text, y_text) in values.items():
                    try:
                        x, y = _labelled_value(x_text), _labelled_value(y_text)
                    except ValueError as error:
                        raise ValueError(f"body part {part!r}: {error}") from None
                    if (x is None) != (y is None):
                        raise ValueError(f"body part {part!r} has only one of x and y")
                    if x is not None:
                        points[part] = (x, y, VISIBLE)
            except ValueError as error:
                reading.reject(
                    INVALID_RECORD, image, f"{project}: {record}: {error}.", skip_invalid
                )
                continue
            frames[image] = (record, points)
    people = []
    for person_id, image in enumerate(sorted(frames)):
        record, points = frames[image]
        if not points:
            reading.skipped.setdefault(NO_ANNOTATED_JOINTS, []).append(image)
            continue
        annotation = annotation_from_points(
            joint_set, points, image, person_id, record, margin=box_margin
        )
        people.append((person_id, image, record, points, annotation))
    sides = [entry[4].scale for entry in people if entry[4] is not None]
    if len(sides) < len(people) and not sides:
        raise ConversionError(
            f"{project}: no frame has two distinct labelled parts, so no box size is known."
        )
    half_side = float(np.median(sides)) * PIXELS_PER_SCALE / 2.0 if sides else 0.0
    for person_id, image, record, points, annotation in people:
        if annotation is None:
            # One labelled part (or all at one spot): the median box, centred on it.
            x, y = np.mean([(x, y) for x, y, _ in points.values()], axis=0)
            box = (x - half_side, y - half_side, x + half_side, y + half_side)
            annotation = annotation_from_points(
                joint_set, points, image, person_id, record, box=box
            )
        reading.people.append(annotation)
    reading.details.update(
        {
            "conventions": (
                "deeplabcut: coordinates as labelled (0-based pixel centres); empty/NaN = "
                f"unlabelled; visibility 2 when labelled; box = labelled extent + {box_margin:g}"
                " x longer side per side (median box side when fewer than two parts); "
                "centre/scale from that box (longer side / 200)"
            ),
            "annotation_files": [str(path.relative_to(project)) for path in files],
            FOLDERS_WITHOUT_LABELS: unlabelled,
        }
    )
    return joint_set, reading


# --- split and writing ---------------------------------------------------------------------


def split_frames(count: int, val_fraction: float, seed: int = DEFAULT_SEED) -> tuple:
    """Seeded train / validation indices (each sorted) of `count` frames.

    `round(val_fraction * count)` frames are validation, at least one when
    `val_fraction > 0` and at most `count - 1` when `val_fraction < 1`.

    >>> split_frames(5, 0.4, seed=0)[1].size
    2
    """
    if not 0.0 <= val_fraction <= 1.0:
        raise ValueError(f"val_fraction must be in [0, 1], received {val_fraction}")
    validation = int(round(val_fraction * count))
    if val_fraction > 0 and count > 0:
        validation = max(validation, 1)
    if val_fraction < 1 and count > 1:
        validation = min(validation, count - 1)
    order = np.random.default_rng(seed).permutation(count)
    return np.sort(order[validation:]), np.sort(order[:validation])


def _remove_outputs(prefix):
    """Remove the shards and manifest a `ShardedWriter` writes at `prefix`, if any."""
    prefix = Path(prefix)
    own = re.compile(re.escape(prefix.name) + r"(-\d{5}\.tfrecord|\.manifest\.json)(\.tmp)?")
    if prefix.parent.is_dir():
        for path in prefix.parent.iterdir():
            if own.fullmatch(path.name) and path.is_file():
                path.unlink()


def convert_project(
    project,
    output,
    *,
    val_fraction=DEFAULT_VAL_FRACTION,
    seed=DEFAULT_SEED,
    flip_pairs=None,
    box_margin=DEFAULT_BOX_MARGIN,
    dataset=None,
    image_root=None,
    skip_missing_images=False,
    skip_invalid=False,
    examples_per_shard=1000,
    progress=True,
    stream=None,
) -> dict:
    """Convert a DeepLabCut project into `<output>-train` and `<output>-val` records.

    Args:
        project: str or Path. The DeepLabCut project folder.
        output: str or Path. Prefix: writes `<output>-train-00000.tfrecord`,
            `<output>-train.manifest.json`, and the same for `-val`.
        val_fraction: float in [0, 1]. Defaults to 0.2.
        seed: int. Split seed. Defaults to 0.
        flip_pairs, box_margin, skip_invalid: as `read_deeplabcut`.
        dataset: str or None. Dataset name in the records (default: config `Task`).
        image_root: folder the frame paths are relative to (default: the project).
        skip_missing_images, examples_per_shard, progress, stream: as
            `tfrecords_tools.common.convert`.

    Returns:
        dict split name ("train", "val") -> manifest, for the splits written.
    """
    joint_set, reading = read_deeplabcut(project, flip_pairs, box_margin, skip_invalid)
    try:
        train, validation = split_frames(len(reading.people), val_fraction, seed)
    except ValueError as error:
        raise ConversionError(f"{error}.") from None
    split_rule = {
        "val_fraction": val_fraction,
        "seed": seed,
        "frames": len(reading.people),
        "train_frames": int(train.size),
        "val_frames": int(validation.size),
        "rule": "numpy.random.default_rng(seed).permutation(frames); the first "
        "round(val_fraction * frames) are validation",
    }
    image_root = Path(project) if image_root is None else Path(image_root)
    dataset = dataset or joint_set.name
    manifests, written = {}, []
    skips_reported = False
    try:
        for split, indices in (("train", train), ("val", validation)):
            prefix = Path(f"{output}-{split}")
            if indices.size == 0:
                _remove_outputs(prefix)
                continue
            part = Reading(
                source=reading.source,
                format=reading.format,
                people=[reading.people[i] for i in indices],
                # Frames the reader left out are reported once, in the first split written.
                skipped={} if skips_reported else reading.skipped,
                details={**reading.details, "split_rule": split_rule},
            )
            skips_reported = True
            written.append(prefix)
            manifests[split] = convert(
                part,
                joint_set,
                dataset,
                prefix,
                image_root,
                skip_missing_images=skip_missing_images,
                skip_invalid=skip_invalid,
                examples_per_shard=examples_per_shard,
                split=split,
                progress=progress,
                stream=stream,
            )
    except BaseException:
        # Both splits or neither: a failed second split removes the first one.
        for prefix in written:
            _remove_outputs(prefix)
        raise
    return manifests


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tfrecords_tools.deeplabcut",
        description="Convert a single-animal DeepLabCut project (config.yaml + "
        "labeled-data/*/CollectedData_*.csv or .h5) into TFRecord shards with a seeded "
        "train/validation split: PREFIX-train-*.tfrecord + PREFIX-train.manifest.json and "
        "PREFIX-val-*.tfrecord + PREFIX-val.manifest.json. Details: docs/converters.md.",
    )
    parser.add_argument("project", help="DeepLabCut project folder (holds config.yaml).")
    add_common_arguments(parser)
    for action in parser._actions:  # the frames' paths are relative to the project
        if action.dest == "image_root":
            action.required = False
            action.help = "Folder the frame paths are relative to (default: the project)."
        if action.dest == "output":
            action.help = (
                "Output prefix PREFIX: writes PREFIX-train-00000.tfrecord, "
                "PREFIX-train.manifest.json, PREFIX-val-... (folders are created)."
            )
    parser.add_argument(
        "--val-fraction",
        type=float,
        default=DEFAULT_VAL_FRACTION,
        help=f"Fraction of labelled frames in the validation split (default: "
        f"{DEFAULT_VAL_FRACTION}); 1 = every frame in validation, no train split.",
    )
    parser.add_argument(
        "--seed", type=int, default=DEFAULT_SEED, help=f"Split seed (default: {DEFAULT_SEED})."
    )
    parser.add_argument(
        "--flip-pairs",
        help="Left/right body parts swapped by horizontal flips, 'a:b,c:d', or 'none' "
        "(default: found from left/right names such as leftear/rightear).",
    )
    parser.add_argument(
        "--box-margin",
        type=float,
        default=DEFAULT_BOX_MARGIN,
        help="Person box = labelled extent widened by this fraction of its longer side on "
        f"every side (default: {DEFAULT_BOX_MARGIN}).",
    )
    parser.add_argument(
        "--dataset", help="Dataset name stored in the records (default: config.yaml's Task)."
    )
    return parser


def _main(argv=None):
    arguments = build_parser().parse_args(argv)
    convert_project(
        arguments.project,
        arguments.output,
        val_fraction=arguments.val_fraction,
        seed=arguments.seed,
        flip_pairs=arguments.flip_pairs,
        box_margin=arguments.box_margin,
        dataset=arguments.dataset,
        image_root=arguments.image_root,
        skip_missing_images=arguments.skip_missing_images,
        skip_invalid=arguments.skip_invalid,
        examples_per_shard=arguments.examples_per_shard,
        progress=not arguments.no_progress,
    )


def main(argv=None) -> int:
    return run_command_line(_main, argv)


if __name__ == "__main__":
    raise SystemExit(main())
