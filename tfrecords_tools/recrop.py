"""Person-centred records: each person's region of the photo, at the resolution training needs.

`python -m tfrecords_tools.recrop records/mpii_train --output records/mpii_train_pc` reads a
split and writes one record per person whose image is only the part of the photo that any
training crop of that person can sample, downscaled to the resolution the finest crop needs.
The pipeline then decodes a few hundred pixels square per person instead of the whole
photo (a 1280 x 720 MPII JPEG holds several people, and its record is decoded once per
person). Everything else about a record stays: its keypoints, centre, scale, head box and
normaliser are moved and scaled with the pixels, so crops, targets and PCKh are the same,
up to JPEG re-encoding and resampling (`tests/test_recrop.py`).

The region is fixed by the configuration's crop geometry (`transforms.crop_reach`):
`data.box_scale`, `data.scale_jitter`, `data.rotation_deg`, `data.translate_jitter` decide
how far a crop can reach from the person's centre, and `model.input_size` with the smallest
crop box decides the resolution (at least one stored pixel per crop pixel; never above the
original's). They are stored in the manifest under `person_centred`, and `fit` refuses to
train a configuration whose crops would reach further, or need finer pixels, than the
records hold. Use person-centred records for training (and validation PCKh, which does not
depend on the pixel scale); keypoints predicted on them are in the cut-out's pixels, so
score submissions and pixel errors on the original split.

Examples:

    python -m tfrecords_tools.recrop records/mpii_train --output records/mpii_train_pc
    python -m tfrecords_tools.recrop records/mpii_train --output records/pc --config my.json
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import time

import numpy as np

from pose_keras import records
from pose_keras.config import Config
from pose_keras.transforms import PIXELS_PER_SCALE, crop_geometry_of, reach_and_density
from tfrecords_tools.common import (
    ConversionError,
    add_writing_arguments,
    check_output,
    run_command_line,
)

DEFAULT_QUALITY = 95
# Stored px kept beyond the reach for the bilinear warp's support.
SUPPORT_PX = 2.0


def _decode(record: records.PersonRecord):
    """The stored raster as the pipeline decodes it: 3 channels, 8 bits, no EXIF turn."""
    import cv2

    flags = cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION
    pixels = cv2.imdecode(np.frombuffer(record.image_encoded, np.uint8), flags)
    if pixels is None or pixels.shape[:2] != (record.image_height, record.image_width):
        raise ConversionError(f"{record.describe()}: the image does not decode to its size")
    return pixels  # BGR, as cv2.imencode takes it back


def person_centred_record(
    record: records.PersonRecord, geometry: dict, quality: int = DEFAULT_QUALITY
) -> records.PersonRecord:
    """The record of one person cut down to the region its training crops can sample.

    The kept region is the image's part of the square of half-side `reach` person heights
    (plus `SUPPORT_PX` + 1 stored px) around the centre, scaled by `factor` = min(1, input
    px per image px of the finest crop box). Image px map to the new image's px by
    `x' = factor * (x + 0.5 - x0) - 0.5` (pixel areas preserved, `transforms`' convention):
    first an exact k x k block average (`cv2.INTER_AREA`, k = the integer part of
    1 / factor), then a bilinear warp by the rest (a factor in (0.5, 1]).

    Returns the record itself when the region is the whole image at full resolution.
    """
    import cv2

    reach, density = reach_and_density(geometry)
    height_px = PIXELS_PER_SCALE * float(record.scale)
    factor = min(1.0, density / height_px)
    # Beyond the reach: the warp's support, plus one stored pixel for the block average.
    half = reach * height_px + (SUPPORT_PX + 1.0) / factor
    width, height = record.image_width, record.image_height
    cx, cy = (float(value) for value in record.center)
    x0, y0 = max(0, math.floor(cx - half)), max(0, math.floor(cy - half))
    x1, y1 = min(width, math.ceil(cx + half) + 1), min(height, math.ceil(cy + half) + 1)
    if x1 <= x0 or y1 <= y0:
        raise ConversionError(f"{record.describe()}: the person's centre is far outside its image")
    if factor == 1.0 and (x0, y0, x1, y1) == (0, 0, width, height):
        return record
    region = _decode(record)[y0:y1, x0:x1]
    block = max(1, int(math.floor(1.0 / factor + 1e-9)))
    if block > 1:  # exact block means; the edges padded with black, as crops are
        pad_y, pad_x = (-region.shape[0]) % block, (-region.shape[1]) % block
        region = cv2.copyMakeBorder(region, 0, pad_y, 0, pad_x, cv2.BORDER_CONSTANT, value=0)
        size = (region.shape[1] // block, region.shape[0] // block)
        region = cv2.resize(region, size, interpolation=cv2.INTER_AREA)
    rest = factor * block  # block px (u) -> new px: v = rest * (u + 0.5) - 0.5
    if rest != 1.0:
        out_width = max(1, math.ceil((x1 - x0) * factor))
        out_height = max(1, math.ceil((y1 - y0) * factor))
        offset = 0.5 * rest - 0.5
        matrix = np.array([[rest, 0.0, offset], [0.0, rest, offset]])
        region = cv2.warpAffine(
            region,
            matrix,
            (out_width, out_height),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=0,
        )
    ok, encoded = cv2.imencode(".jpg", region, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ConversionError(f"{record.describe()}: the region cannot be encoded as JPEG")
    origin = np.array([x0, y0], np.float64)

    def moved(points):
        return factor * (np.asarray(points, np.float64) + 0.5 - origin) - 0.5

    annotated = record.visibility[:, None] > 0
    keypoints = np.where(annotated, moved(record.keypoints), record.keypoints)
    head_box = record.head_box
    if not np.array_equal(head_box, np.array(records.NO_HEAD_BOX, np.float32)):
        head_box = moved(np.asarray(head_box).reshape(2, 2)).reshape(4)
    return dataclasses.replace(
        record,
        image_encoded=encoded.tobytes(),
        image_format="jpeg",
        image_height=int(region.shape[0]),
        image_width=int(region.shape[1]),
        center=moved(record.center),
        scale=float(record.scale) * factor,
        keypoints=keypoints,
        head_box=head_box,
        normalize=float(record.normalize) * factor,
    )


def recrop_split(
    source,
    output,
    config: Config,
    quality: int = DEFAULT_QUALITY,
    examples_per_shard: int = 1000,
    progress: bool = True,
) -> dict:
    """Write the person-centred copy of split `source` at prefix `output`.

    Returns:
        dict: "count" people written, "bytes_before" / "bytes_after" image bytes, "seconds".

    Raises:
        ConversionError: bad arguments, an unreadable split or image (naming it); nothing
            is left half-written (`records.ShardedWriter`).
    """
    if not 1 <= int(quality) <= 100:
        raise ConversionError(f"--quality must be in 1..100, received {quality}.")
    output = check_output(output)
    try:
        split = records.resolve_split(source)
        manifest = records.read_manifest(source)
    except (FileNotFoundError, ValueError) as error:
        raise ConversionError(str(error)) from None
    if manifest.get(records.PERSON_CENTRED_KEY):
        raise ConversionError(f"{source}: already person-centred records; recrop the original.")
    geometry = crop_geometry_of(config)
    extra = {records.PERSON_CENTRED_KEY: {**geometry, "jpeg_quality": int(quality)}}
    extra[records.PERSON_CENTRED_KEY]["source"] = str(source)
    start = time.monotonic()
    before = after = 0
    with records.ShardedWriter(
        output, split.joint_set, manifest["dataset"], examples_per_shard, extra=extra
    ) as writer:
        try:
            for index, record in enumerate(records.read_people(source), 1):
                centred = person_centred_record(record, geometry, quality)
                before += len(record.image_encoded)
                after += len(centred.image_encoded)
                writer.write(centred)
                if progress and (index % 100 == 0 or index == split.count):
                    sys.stderr.write(f"\r  {index}/{split.count} people")
        except ValueError as error:  # a corrupt shard or record, named by read_people
            raise ConversionError(str(error)) from None
    if progress:
        sys.stderr.write("\n")
    return {
        "count": writer.count,
        "bytes_before": before,
        "bytes_after": after,
        "seconds": time.monotonic() - start,
    }


def build_parser() -> argparse.ArgumentParser:
    from pose_keras.cli import add_config_arguments

    parser = argparse.ArgumentParser(
        prog="python -m tfrecords_tools.recrop",
        description="Write person-centred records: each person's region of the photo at the "
        "resolution the configuration's training crops need (docs/converters.md).",
    )
    parser.add_argument("source", help="The split to cut down (prefix or shard glob).")
    add_writing_arguments(parser)
    add_config_arguments(
        parser, default_preset="paper", what=" (its model.input_size and data crop geometry)"
    )
    parser.add_argument(
        "--quality",
        type=int,
        default=DEFAULT_QUALITY,
        help=f"JPEG quality of the regions (default {DEFAULT_QUALITY}).",
    )
    return parser


def _main(argv=None):
    from pose_keras.cli import config_from_arguments

    arguments = build_parser().parse_args(argv)
    try:
        config = config_from_arguments(arguments, default_preset="paper")
    except ValueError as error:
        raise ConversionError(str(error)) from None
    summary = recrop_split(
        arguments.source,
        arguments.output,
        config,
        quality=arguments.quality,
        examples_per_shard=arguments.examples_per_shard,
        progress=not arguments.no_progress,
    )
    ratio = summary["bytes_after"] / max(summary["bytes_before"], 1)
    print(
        f"{arguments.output}: {summary['count']} people, image bytes "
        f"{summary['bytes_before'] / 1e6:.1f} MB -> {summary['bytes_after'] / 1e6:.1f} MB "
        f"({ratio:.0%}), {summary['seconds']:.1f} s"
    )


def main(argv=None) -> int:
    return run_command_line(_main, argv)


if __name__ == "__main__":
    raise SystemExit(main())
