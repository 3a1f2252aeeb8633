"""Converters from real pose-annotation formats into the pose_keras TFRecord schema.

One module per source format; each has a pure reader (`read_*`, no image access) and a
command line (`python -m tfrecords_tools.<name> --help`):

- `tfrecords_tools.mpii`: MPII Human Pose (official release `.mat`, stacked-hourglass
  `annot/*.h5`, HRNet/mmpose JSON, `mpii_annotations.json`), optional `gt_valid.mat`
  head boxes.
- `tfrecords_tools.flic`: FLIC (stacked-hourglass `.h5`, original `examples.mat`).
- `tfrecords_tools.lsp`: LSP and LSP-extended `joints.mat`.
- `tfrecords_tools.coco`: COCO person-keypoints JSON.
- `tfrecords_tools.custom`: a documented CSV or JSON layout with user-defined joints.
- `tfrecords_tools.deeplabcut`: a single-animal DeepLabCut project (config.yaml +
  CollectedData CSV/HDF5), written as a seeded train and validation split.
- `tfrecords_tools.labelstudio`, `tfrecords_tools.cvat`, `tfrecords_tools.labelme`: keypoint
  exports of those labelling tools (Label Studio JSON, CVAT for images 1.1 XML, labelme JSON).

`tfrecords_tools.common` holds the shared `Annotation` type and the writer routine that
looks images up, checks they decode, and writes `pose_keras.records.PersonRecord`s
through `pose_keras.records.ShardedWriter`. User documentation: `docs/converters.md`.
"""
