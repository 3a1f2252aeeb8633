"""The Python API: a trained model in one object (`pose_keras.load`).

`load(run_dir_or_file)` returns a `PoseModel` whose methods are the three commands
without the command line, built on the same library functions:

- `predict(image, boxes=None, flip=False)`: `inference.crop_people` + `inference.predict_crops`
  (what `python -m pose_keras.predict` runs), returning a `Prediction` in image px.
- `evaluate(records, flip=False)`: `inference.predict_split` + `inference.score_model_predictions`
  (what `python -m pose_keras.evaluate --model --data` runs), returning a `metrics.Evaluation`.
- `export(path)`: `serving.ServingGraph` and its exporters (`python -m pose_keras.export`).

Settings the run recorded (`data.box_scale`, `data.sigma`) are used as the commands use
them. Examples:

>>> import pose_keras  # doctest: +SKIP
>>> model = pose_keras.load("runs/synthetic")
>>> prediction = model.predict("photo.jpg", boxes=[[120, 40, 380, 470]], flip=True)
>>> prediction.keypoints[0, prediction.joint_names.index("head_top")]
array([251.3,  61.9])
>>> model.evaluate("records/mpii_valid", flip=True).columns["Mean"]
78.0
>>> model.export("export")
PosixPath('export/synthetic/1')
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from pose_keras import runs


@dataclasses.dataclass(frozen=True, eq=False)
class Prediction:
    """What `PoseModel.predict` returns for one image.

    Attributes:
        keypoints: float64 (P, J, 2). One row per person box, image px (0-based pixel
            centres, as everywhere in pose_keras).
        scores: float64 (P, J). The maximum of each joint's heatmap (0-1 for a trained
            model; `python -m pose_keras.predict` draws joints scoring at least 0.2).
        joint_names: tuple of J str. The model's joint order.
        boxes: float64 (P, 4). The person boxes (x0, y0, x1, y1) the crops were made from;
            the whole image's box when none were given.
        heatmaps: float32 (P, H, H, J). The (flip-averaged) heatmaps of each crop.
    """

    keypoints: np.ndarray
    scores: np.ndarray
    joint_names: tuple
    boxes: np.ndarray
    heatmaps: np.ndarray

    def __repr__(self) -> str:
        people, joints = self.scores.shape
        return f"Prediction({people} people x {joints} joints: {', '.join(self.joint_names)})"

    def to_dataframe(self):
        """A pandas table: one row per (person, joint), columns x, y, score."""
        import pandas as pd

        people, joints = self.scores.shape
        index = pd.MultiIndex.from_product(
            [range(people), self.joint_names], names=["person", "joint"]
        )
        return pd.DataFrame(
            {
                "x": self.keypoints[..., 0].reshape(-1),
                "y": self.keypoints[..., 1].reshape(-1),
                "score": self.scores.reshape(-1),
            },
            index=index,
        )


def _as_image(image) -> np.ndarray:
    """A path (read as `predict` reads it) or an (H, W, 3) uint8 RGB array."""
    from pose_keras.inference import read_image

    if isinstance(image, (str, Path)):
        return read_image(image)
    array = np.asarray(image)
    if array.ndim != 3 or array.shape[-1] != 3 or array.dtype != np.uint8:
        raise ValueError(
            "image must be a file path or an (H, W, 3) uint8 RGB array, received an array "
            f"of shape {array.shape} and dtype {array.dtype}."
        )
    return array


def _as_boxes(boxes, image_shape) -> np.ndarray:
    """(P, 4) float64 boxes, each checked as `predict` checks a box file; None or empty =
    the whole image."""
    from pose_keras.inference import full_image_box, parse_box

    if boxes is None or len(boxes) == 0:
        return full_image_box(*image_shape[:2])[None]
    rows = list(boxes)
    if np.ndim(rows[0]) == 0:  # one box given as 4 numbers
        rows = [rows]
    return np.array([parse_box(row, f"boxes[{index}]") for index, row in enumerate(rows)])


class PoseModel:
    """A loaded model with its joint set and (for run directories) its configuration.

    Made by `load`. Attributes: `model` (the Keras model), `joint_set`, `config`
    (`Config`, or None for a bare `.keras` file), `path` (the model file).
    """

    def __init__(self, run: runs.Run):
        self.run = run

    model = property(lambda self: self.run.model)
    joint_set = property(lambda self: self.run.joint_set)
    config = property(lambda self: self.run.config)
    path = property(lambda self: self.run.path)

    box_scale = property(
        lambda self: self.run.box_scale,
        doc="Crop side / the box's longer side: the run's `data.box_scale` (`runs.Run`).",
    )
    sigma = property(
        lambda self: self.run.sigma,
        doc="The training Gaussian sigma (for DARK decoding): the run's `data.sigma`.",
    )

    def __repr__(self) -> str:
        from pose_keras.inference import input_size_of

        return (
            f"PoseModel({str(self.path)!r}, joints={self.joint_set.name!r}, "
            f"input_size={input_size_of(self.model)})"
        )

    def predict(
        self, image, boxes=None, flip: bool = False, refine: str = "quarter", batch_size=16
    ) -> Prediction:
        """Keypoints of the people in one image.

        Args:
            image: a file path, or an (H, W, 3) uint8 RGB array.
            boxes: person boxes (x0, y0, x1, y1) in image px: one box (4 numbers) or a
                list of them. None: one person filling the whole image. Default None.
            flip: bool. Flip test (average with the mirrored crop). Default False.
            refine: str. "quarter", "dark" or "none" (`decode.decode_heatmaps`).
            batch_size: int. Crops per model call. Default 16.

        Returns:
            Prediction.
        """
        from pose_keras.inference import crop_people, input_size_of, predict_crops

        image = _as_image(image)
        boxes = _as_boxes(boxes, image.shape)
        crops, crop_matrices = crop_people(image, boxes, input_size_of(self.model), self.box_scale)
        result = predict_crops(
            self.model,
            crops,
            crop_matrices,
            self.joint_set,
            flip=flip,
            refine=refine,
            batch_size=batch_size,
            sigma=self.sigma,
        )
        return Prediction(
            keypoints=result.keypoints,
            scores=result.scores,
            joint_names=tuple(self.joint_set.names),
            boxes=boxes,
            heatmaps=result.heatmaps,
        )

    def draw(self, image, prediction: Prediction, score_threshold: float = 0.2):
        """The overlay `python -m pose_keras.predict` writes: RGB uint8."""
        from pose_keras.draw import draw_people

        return draw_people(
            _as_image(image),
            prediction.keypoints,
            prediction.scores,
            self.joint_set,
            boxes=prediction.boxes,
            score_threshold=score_threshold,
        )

    def evaluate(
        self,
        records,
        flip: bool = False,
        refine: str = "quarter",
        batch_size: int = 32,
        threshold=None,
        progress: bool = False,
        head_column=None,
    ):
        """Score the model on a TFRecord split by the protocol of its joint set.

        Args:
            records: str. A split prefix with a manifest, or a shard glob.
            flip: bool. Flip test. Default False.
            refine: str. "quarter", "dark" or "none". Default "quarter".
            batch_size: int. People per model call. Default 32.
            threshold: float or None. Main threshold (None: 0.5 for PCKh, 0.2 for PCK).
            progress: bool. A progress bar on stderr. Default False.
            head_column: str or None. MPII/LSP Head column: "official" (the kit's, the
                default) or "head-top" (HRNet / mmpose; docs/evaluation.md).

        Returns:
            metrics.Evaluation: `.columns` is the table row (`to_dataframe()` renders it),
            `.per_joint`, `.curve`, `.auc`, `.occlusion`.
        """
        from pose_keras.inference import predict_split, score_model_predictions

        predictions, joint_set = predict_split(
            self.run, records, flip=flip, refine=refine, batch_size=batch_size, progress=progress
        )
        return score_model_predictions(predictions, joint_set, threshold, head_column=head_column)

    def export(
        self,
        path,
        name: str | None = None,
        format: str = "savedmodel",
        version: int | None = None,
        flip: bool = False,
        heatmaps: bool = False,
        overwrite: bool = False,
    ) -> Path:
        """Export for serving, in TF Serving's layout `path/<name>/<version>/`.

        Args:
            path: the model base folder (`--out` of `python -m pose_keras.export`).
            name: str or None. Model name; None = the run directory's name.
            format: "savedmodel" (default), "onnx" or "tflite" (docs/export.md).
            version: int or None. None = the next free version number.
            flip: bool. Flip test inside the graph. Default False.
            heatmaps: bool. Also return heatmaps from `serving_default`. Default False.
            overwrite: bool. Replace an existing version. Default False.

        Returns:
            Path of the written version folder (SavedModel) or model file (ONNX, TFLite).
        """
        from pose_keras import serving

        model_dir = Path(path) / serving.model_name(name, self.path, format, what="name")
        version = serving.resolve_version(model_dir, version, overwrite)
        graph = serving.ServingGraph(
            self.model, self.joint_set, box_scale=self.box_scale, flip=flip, heatmaps=heatmaps
        )
        return serving.EXPORTERS[format](
            graph, model_dir / str(version), source=self.path, overwrite=overwrite
        )


def load(path, joints=None, prefer: str = "model") -> PoseModel:
    """Load a run directory (what `fit` writes) or a bare `.keras` file, safely.

    Args:
        path: a run directory (its `model.keras`, else `best.keras`) or a `.keras` file.
        joints: str or JointSet. The joint set of a bare `.keras` file without
            `joints.json` beside it (`mpii`, `flic`, `lsp`, `coco`); 16 joints default to
            MPII. Default None.
        prefer: "model" or "best". Which file of a run directory. Default "model".

    Returns:
        PoseModel.
    """
    return PoseModel(runs.load_run(path, joints=joints, prefer=prefer))
