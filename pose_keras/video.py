"""Writing MP4 videos that browsers and notebooks play (the overlays of `predict`).

Browsers play H.264 in MP4, not MPEG-4 part 2 (`mp4v`, what OpenCV's pip wheels can
write). `VideoWriter` therefore pipes the frames into the static ffmpeg binary that the
`imageio-ffmpeg` wheel ships and encodes H.264 (`libx264`, `yuv420p` so every player
decodes it, `+faststart` so a browser starts playing before the download ends). Without
that binary it falls back to OpenCV's `mp4v`, which desktop players still play.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

H264 = "h264"
MP4V = "mp4v"
CODECS = ("auto", H264, MP4V)
# libx264 settings: constant quality 20 (visually clean overlays, small files); 4:2:0
# chroma needs even sides, so an odd width or height gets one black pixel row/column.
H264_OUTPUT = [
    "-preset", "veryfast",
    "-crf", "20",
    "-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2",
    "-movflags", "+faststart",
]  # fmt: skip


def ffmpeg_executable() -> str | None:
    """The ffmpeg binary of imageio-ffmpeg (or `IMAGEIO_FFMPEG_EXE`); None if there is none."""
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError):
        return None


class VideoWriter:
    """Write RGB uint8 frames to an MP4 file.

    Args:
        path: str or Path. The `.mp4` file.
        fps: float. Frames per second (e.g. the source video's).
        width, height: int. Frame size in px; every frame must have it.
        codec: "auto" (H.264 when ffmpeg is available, else mp4v; default), "h264" or
            "mp4v".

    Attributes:
        codec: "h264" or "mp4v", what is being written.

    Examples:

    >>> with VideoWriter("overlay.mp4", 25.0, 640, 480) as writer:  # doctest: +SKIP
    ...     for frame in frames:
    ...         writer.write(frame)
    """

    def __init__(self, path, fps: float, width: int, height: int, codec: str = "auto"):
        if codec not in CODECS:
            raise ValueError(f"codec must be one of {CODECS}, received {codec!r}.")
        self.path = Path(path)
        self.size = (int(width), int(height))
        fps = float(fps) if fps and fps > 0 else 25.0
        self._ffmpeg = self._opencv = None
        executable = ffmpeg_executable() if codec in ("auto", H264) else None
        if codec == H264 and executable is None:
            raise ValueError(
                f"Cannot write {self.path} in H.264: no ffmpeg (pip install imageio-ffmpeg)."
            )
        if executable is not None:
            import imageio_ffmpeg

            self._ffmpeg = imageio_ffmpeg.write_frames(
                str(self.path),
                self.size,
                fps=Fraction(fps).limit_denominator(100000),
                codec="libx264",
                quality=None,
                macro_block_size=1,
                ffmpeg_log_level="error",
                output_params=list(H264_OUTPUT),
            )
            self._ffmpeg.send(None)  # starts the ffmpeg process
            self.codec = H264
        else:
            self._opencv = cv2.VideoWriter(
                str(self.path), cv2.VideoWriter_fourcc(*"mp4v"), fps, self.size
            )
            if not self._opencv.isOpened():
                raise ValueError(f"Cannot write video {self.path} (codec mp4v).")
            self.codec = MP4V

    def write(self, frame_rgb):
        """Append one frame: uint8 (height, width, 3), RGB."""
        frame = np.asarray(frame_rgb)
        expected = (self.size[1], self.size[0], 3)
        if frame.shape != expected or frame.dtype != np.uint8:
            raise ValueError(
                f"{self.path}: frames must be uint8 {expected}, received {frame.dtype} "
                f"{frame.shape}."
            )
        if self._ffmpeg is not None:
            try:
                self._ffmpeg.send(np.ascontiguousarray(frame))
            except OSError as error:
                reason = str(error).strip().splitlines()[0]
                raise ValueError(f"{self.path}: ffmpeg stopped writing ({reason}).") from None
        else:
            self._opencv.write(np.ascontiguousarray(frame[..., ::-1]))

    def close(self):
        """Finish the file (waits for ffmpeg to write it)."""
        if self._ffmpeg is not None:
            self._ffmpeg.close()
            self._ffmpeg = None
        if self._opencv is not None:
            self._opencv.release()
            self._opencv = None

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()
