"""Write a session's screencast as a video file with PyAV (FFmpeg inside its wheel).

>>> from skyvern_cdp.local.video import VideoWriter, choose_format
>>> fmt = choose_format()                       # H.264 in MP4, else VP8 in WebM, else None
>>> writer = VideoWriter(path, fmt, t0=time.time())  # doctest: +SKIP
>>> writer.add_jpeg(jpeg_bytes, timestamp)      # doctest: +SKIP
>>> writer.close(end=time.time())               # the file is complete and playable

Frames come only when the page repaints, so each one is written at its real time
(milliseconds since ``t0``, the session's ``started_at``), and :meth:`VideoWriter.close`
repeats the last frame at ``end`` so the video lasts as long as the session did. Frames of
any size are scaled to fit the video's fixed size (1280 x 720 by default), keeping their
shape. MP4 is written fragmented, one fragment per frame and flushed at once: a file cut
short (the backend killed) still plays up to its last frame.

Everything here blocks (decoding and encoding): call it from a worker thread. Not
thread-safe: one thread at a time per writer.
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

from skyvern_cdp.policy.screencast import fit_within, frame_pts

if TYPE_CHECKING:
    import av
    import av.filter

__all__ = ["FRAME_BOX", "MP4", "WEBM", "VideoFormat", "VideoWriter", "choose_format"]

logger = logging.getLogger("skyvern_cdp.local.video")

#: The video's size; every frame is scaled to fit it (letterboxed).
FRAME_BOX = (1280, 720)
_TIME_BASE = Fraction(1, 1000)


@dataclass(frozen=True)
class VideoFormat:
    """A codec, the container it goes in, and the encoder's options."""

    codec: str
    container: str
    extension: str
    options: dict[str, str] = field(default_factory=dict)
    container_options: dict[str, str] = field(default_factory=dict)


#: Cheapest to encode (about 7 ms a 720p frame on one core) and plays everywhere.
MP4 = VideoFormat(
    "libx264",
    "mp4",
    ".mp4",
    {"preset": "ultrafast", "tune": "zerolatency", "crf": "28", "threads": "1", "g": "100"},
    {"movflags": "frag_every_frame+empty_moov+default_base_moof", "flush_packets": "1"},
)
#: The fallback where a PyAV build has no H.264 encoder (about 17 ms a frame).
WEBM = VideoFormat(
    "libvpx",
    "webm",
    ".webm",
    {"deadline": "realtime", "cpu-used": "16", "lag-in-frames": "0", "b": "1M",
     "threads": "1", "g": "100"},
    {"flush_packets": "1"},
)


def choose_format() -> VideoFormat | None:
    """The first format this PyAV can encode, or ``None`` (PyAV missing, or no encoder)."""
    try:
        import av
    except ImportError:
        return None
    for fmt in (MP4, WEBM):
        try:
            av.codec.Codec(fmt.codec, "w")
        except Exception:
            continue
        return fmt
    return None


class VideoWriter:
    """One video file being written; see the module docstring."""

    def __init__(
        self, path: Path, fmt: VideoFormat, *, t0: float, box: tuple[int, int] = FRAME_BOX
    ) -> None:
        import av

        self.path = path
        self.t0 = t0
        self.box = box
        self.frames = 0
        self._last_pts: int | None = None
        self._last_frame: av.VideoFrame | None = None
        self._graph: tuple[tuple[int, int, str], av.filter.Graph] | None = None
        self._decoder: Any = av.CodecContext.create("mjpeg", "r")
        self._out: Any = av.open(str(path), "w", format=fmt.container,
                                 options=dict(fmt.container_options))
        try:
            stream: Any = self._out.add_stream(fmt.codec)
            stream.width, stream.height = box
            stream.pix_fmt = "yuv420p"
            stream.codec_context.time_base = _TIME_BASE
            stream.codec_context.options = dict(fmt.options)
        except BaseException:
            self._out.close()
            raise
        self._stream: Any = stream
        self._closed = False

    def add_jpeg(self, data: bytes, timestamp: float) -> bool:
        """Decode one JPEG frame and write it at ``timestamp`` (wall-clock seconds).

        Returns ``False`` (and writes nothing) for data that is not a JPEG.
        """
        import av

        try:
            decoded = self._decoder.decode(av.Packet(data))
        except av.FFmpegError as exc:
            logger.debug("a screencast frame did not decode: %s", exc)
            return False
        for frame in decoded:
            self._write(self._fit(frame), timestamp)
        return bool(decoded)

    def _fit(self, frame: av.VideoFrame) -> av.VideoFrame:
        """``frame`` scaled to fit the box and letterboxed, as ``yuv420p``."""
        import av.filter

        key = (frame.width, frame.height, frame.format.name)
        if self._graph is None or self._graph[0] != key:
            width, height = fit_within(frame.width, frame.height, self.box)
            graph = av.filter.Graph()
            source = graph.add_buffer(
                width=frame.width, height=frame.height, format=frame.format,
                time_base=_TIME_BASE,
            )
            chain = [
                graph.add("scale", f"{width}:{height}:flags=bilinear:out_range=tv"),
                graph.add("format", "yuv420p"),
                graph.add("pad", f"{self.box[0]}:{self.box[1]}:(ow-iw)/2:(oh-ih)/2:black"),
                graph.add("buffersink"),
            ]
            source.link_to(chain[0])
            for before, after in itertools.pairwise(chain):
                before.link_to(after)
            graph.configure()
            self._graph = (key, graph)
        graph = self._graph[1]
        graph.push(frame)
        fitted = graph.pull()
        assert isinstance(fitted, av.VideoFrame)
        return fitted

    def _write(self, frame: av.VideoFrame, timestamp: float) -> None:
        pts = frame_pts(timestamp, t0=self.t0, last_pts=self._last_pts)
        frame.pts = pts
        frame.time_base = _TIME_BASE
        for packet in self._stream.encode(frame):
            self._out.mux(packet)
        self._last_pts = pts
        self._last_frame = frame
        self.frames += 1

    def repeat_last(self, timestamp: float) -> None:
        """Write the last frame again at ``timestamp``: the frame before is then in the file."""
        if self._last_frame is not None and not self._closed:
            self._write(self._last_frame, timestamp)

    @property
    def duration(self) -> float:
        """Seconds from the first frame to the last one written."""
        return (self._last_pts or 0) / 1000

    def close(self, *, end: float | None = None) -> None:
        """Repeat the last frame at ``end`` (so the video lasts until then), flush, close.

        Safe to call twice. A writer that got no frame leaves a file with no video frames;
        the caller decides whether to keep it (:attr:`frames`).
        """
        if self._closed:
            return
        self._closed = True
        try:
            last = self._last_frame
            ends_later = (
                end is not None
                and self._last_pts is not None
                and round((end - self.t0) * 1000) > self._last_pts
            )
            if last is not None and end is not None and ends_later:
                self._write(last, end)
            for packet in self._stream.encode(None):
                self._out.mux(packet)
        finally:
            self._out.close()
            self._graph = None
            self._last_frame = None
