"""Run a Predictor over an image, a folder, a video or a webcam and write what it found: a CSV and a JSON table (one
row per face, or one row saying no_face / error), annotated copies of the inputs and, per video, a timeline.

Each image's result is printed to stdout as one line per face (`photo.jpg: happy 91% (neutral 5%, sad 2%) at
x=40 y=32 120x120`), each video's as one summary line; the log keeps the same lines. A file that cannot be read
becomes an `error` row with a one-line reason; the other inputs go on.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import os
import sys
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from fer_lightning.inference import draw, video
from fer_lightning.inference.images import (
    IMAGE_SUFFIXES,
    VIDEO_SUFFIXES,
    ImageReadError,
    read_image,
    writable_suffix,
    write_image,
)
from fer_lightning.inference.predictor import FaceResult, Predictor
from fer_lightning.inference.video import FrameClassifier, TrackedFace, open_writer, write_timeline
from fer_lightning.runrecord import atomic_write_json, atomic_write_text

log = logging.getLogger(__name__)
results_log = logging.getLogger(f"{__name__}.results")  # the printed result lines, for the log file
results_log.propagate = False  # printed by say(); a log-file handler is attached to it directly

TABLE_CSV, TABLE_JSON, ANNOTATED_DIR, TIMELINE_DIR = "predictions.csv", "predictions.json", "annotated", "timeline"
CAMERA_PREFIX = "camera:"


@dataclass
class Item:
    """What one image or one video frame gave: status ok (faces found), no_face, or error (with the reason)."""

    source: str
    frame: int | None = None
    faces: list[FaceResult] = field(default_factory=list)
    error: str | None = None
    annotated: str | None = None
    time: float | None = None  # a video frame's time in seconds: frame / the video's frame rate
    tracks: list[int] = field(default_factory=list)  # a video face's track id, in the order of `faces`
    timeline: str | None = None  # a video's timeline CSV (its plot: the same name, .png)

    @property
    def status(self) -> str:
        return "error" if self.error else "ok" if self.faces else "no_face"

    def as_dict(self) -> dict[str, Any]:
        tracks = self.tracks or [None] * len(self.faces)
        return {"source": self.source, "frame": self.frame, "time_s": self.time, "status": self.status,
                "error": self.error, "annotated": self.annotated,
                "faces": [{"face": i, "track": t, **f.as_dict()}
                          for i, (f, t) in enumerate(zip(self.faces, tracks, strict=True))]}


def open_capture(source: str | int) -> Any:
    """OpenCV's reader for a video file (path) or a camera (index); a module function so tests can stand in."""
    return cv2.VideoCapture(source)


def camera_index(text: str) -> int:
    """`camera:0` -> 0; anything else after the prefix is a one-line error."""
    index = text[len(CAMERA_PREFIX):]
    if not index.isdigit():
        raise ValueError(f"input={text}: expected {CAMERA_PREFIX}<index>, e.g. input={CAMERA_PREFIX}0")
    return int(index)


def list_inputs(path: Path) -> tuple[list[Path], list[Path]]:
    """(inputs, ignored): a file is an input whatever its name; a folder gives its images and videos,
    recursively and sorted; other files in it are ignored (and counted)."""
    if path.is_file():
        return [path], []
    if not path.is_dir():
        raise FileNotFoundError(f"input {path}: no such file or folder")
    files = sorted(p for p in path.rglob("*")
                   if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts))
    known = IMAGE_SUFFIXES | VIDEO_SUFFIXES
    return [p for p in files if p.suffix.lower() in known], [p for p in files if p.suffix.lower() not in known]


def describe(faces: list[FaceResult], top: int = 3, hint: str | None = None) -> str:
    """What a person wants on the terminal for one image, a line per face: its label and score, the runners-up
    and where it is, e.g. `happy 91% (neutral 5%, sad 2%) at x=40 y=32 120x120` (numbered `face 2: ...` when there
    are several, as in the annotated image); without a face, `no face found` and the detector's hint if any."""
    if not faces:
        return f"no face found ({hint})" if hint else "no face found"
    lines = []
    for i, face in enumerate(faces):
        ranked = sorted(face.probabilities.items(), key=lambda kv: -kv[1])
        others = ", ".join(f"{name} {p:.0%}" for name, p in ranked[1:top])
        b = face.box
        number = f"face {i + 1}: " if len(faces) > 1 else ""
        lines.append(f"{number}{face.label} {face.score:.0%} ({others}) at x={b.x} y={b.y} {b.w}x{b.h}")
    return "\n".join(lines)


def say(lines: list[str]) -> None:
    """Print results to stdout above any progress bar (they are the output, not log records) and keep them in
    the log (its file handler records them with time and module)."""
    for line in lines:
        tqdm.write(line, file=sys.stdout)
    results_log.info("%s", "\n".join(lines))


def video_line(source: str, frames: int, fps: float, items: list[Item]) -> str:
    """A video's result in one line: frames, duration, the labels of its faces and, per track, its most frequent
    label and when it was seen."""
    labels = Counter(face.label for item in items for face in item.faces)
    by_label = ", ".join(f"{name} {n}" for name, n in labels.most_common()) or "none"
    tracks = ", ".join(f"track {t['track']} {t['label']} {t['first_s']:.1f}-{t['last_s']:.1f} s"
                       for t in track_summary(items))
    annotated = next((item.annotated for item in items if item.annotated), None)
    return (f"{source}: {frames} frames, {len(items)} classified; faces by label: {by_label}; "
            f"{frames / fps:.1f} s at {fps:.3g} fps; {tracks or 'no face tracked'}; annotated video: {annotated}")


def track_summary(items: list[Item]) -> list[dict[str, Any]]:
    """Per track of a video: frames seen, most frequent label, first and last time seen (seconds)."""
    seen: dict[int, list[tuple[float, str]]] = {}
    for item in items:
        for face, track in zip(item.faces, item.tracks, strict=False):
            seen.setdefault(track, []).append((item.time or 0.0, face.label))
    return [{"track": track, "frames": len(rows), "label": Counter(label for _, label in rows).most_common(1)[0][0],
             "first_s": rows[0][0], "last_s": rows[-1][0]} for track, rows in sorted(seen.items())]


def _one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"


class PredictionRun:
    """Predicts over inputs, writes annotated copies under `output_dir/annotated/`, collects the rows.

    Args:
        video_stride: classify every n-th video frame; the frames between show the last result.
        detect_every: run the detector on every n-th classified video frame and classify the faces it found
            there in the frames between (video.FrameClassifier).
        smooth: time constant in seconds of each tracked face's exponential moving average of its probabilities
            (a frame dt seconds later weighs the past by exp(-dt / smooth)); 0: none, each frame on its own.
        progress: show a progress bar over files and over video frames.
        max_frames: read at most this many frames of each video or camera (None: to the end, or Ctrl-C).
    """

    def __init__(self, predictor: Predictor, output_dir: str | Path, annotate: bool = True, bars: bool = True,
                 video_stride: int = 1, progress: bool = True, max_frames: int | None = None,
                 detect_every: int = 1, smooth: float = 0.0) -> None:
        self.predictor = predictor
        self.output_dir = Path(output_dir)
        self.annotate, self.bars = annotate, bars
        self.video_stride = max(1, int(video_stride))
        if smooth < 0:
            raise ValueError(f"smooth={smooth}: expected a time constant in seconds >= 0 (0: no smoothing)")
        self.detect_every, self.smooth = max(1, int(detect_every)), float(smooth)
        self.progress = progress
        self.max_frames = max_frames
        self.items: list[Item] = []

    def _annotated_path(self, relative: Path, suffix: str) -> Path:
        return self.output_dir / ANNOTATED_DIR / relative.with_suffix(suffix)

    def image(self, path: Path, relative: Path) -> Item:
        item = Item(str(path))
        try:
            image = read_image(path)
            item.faces = self.predictor.predict(image)
            hint = None if item.faces else getattr(self.predictor.detector, "hint", None)  # e.g. the smallest face size
            say([f"{path}: {line}" for line in describe(item.faces, hint=hint).splitlines()])
            if self.annotate:
                out = self._annotated_path(relative, writable_suffix(path))
                write_image(out, draw.annotate(image, item.faces, self.bars))
                item.annotated = str(out)
        except (ImageReadError, OSError, ValueError, cv2.error) as error:
            item.error = str(error) if isinstance(error, ImageReadError) else f"{path}: {_one_line(error)}"
            log.error("%s", item.error)
        return item

    def video(self, path: Path, relative: Path) -> list[Item]:
        """Frame by frame; the annotated video keeps the input's size, frame rate and frame count."""
        capture = open_capture(str(path))
        if not capture.isOpened():
            capture.release()
            item = Item(str(path), error=f"{path}: cannot open video (not a video, or a codec OpenCV cannot read)")
            log.error("%s", item.error)
            return [item]
        total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) or None
        return self.frames(capture, str(path), self._annotated_path(relative, ".mp4"), total,
                           self.output_dir / TIMELINE_DIR / relative.with_suffix(".csv"))

    def camera(self, index: int) -> list[Item]:
        """A webcam through OpenCV, frame by frame until Ctrl-C or max_frames, written like a video file."""
        capture = open_capture(index)
        if not capture.isOpened():
            capture.release()
            raise OSError(f"input=camera:{index}: cannot open camera {index} (no such device, or it is in use)")
        limit = f"{self.max_frames} frames or " if self.max_frames else ""
        log.info("camera %d: classifying frames until %sCtrl-C", index, limit)
        return self.frames(capture, f"camera:{index}", self.output_dir / ANNOTATED_DIR / f"camera{index}.mp4", None,
                           self.output_dir / TIMELINE_DIR / f"camera{index}.csv")

    def frames(self, capture: Any, source: str, out: Path, total: int | None, timeline: Path) -> list[Item]:
        """Read `capture` to its end, to max_frames or to Ctrl-C; classify every video_stride-th frame, write the
        annotated frames to `out` (through a temp file, renamed at the end) and the timeline."""
        fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
        tmp = out.with_name(f".{out.stem}.partial.mp4")
        writer: video.Writer | None = None
        past = math.exp(-self.video_stride / (fps * self.smooth)) if self.smooth > 0 else 0.0
        classify = FrameClassifier(self.predictor, self.detect_every, past)
        items: list[Item] = []
        tracked: list[TrackedFace] = []
        timed: list[tuple[int, float, list[TrackedFace]]] = []
        frames = 0
        if self.max_frames and total:
            total = min(total, self.max_frames)
        try:
            with tqdm(total=total, desc=Path(source).name, unit="frame", disable=not self.progress,
                      leave=False) as bar:
                while not self.max_frames or frames < self.max_frames:
                    ok, frame = capture.read()
                    if not ok:
                        break
                    if frames % self.video_stride == 0:
                        tracked = classify(frame)
                        timed.append((frames, frames / fps, tracked))
                        items.append(Item(source, frames, [t.face for t in tracked], time=frames / fps,
                                          tracks=[t.track for t in tracked]))
                    if self.annotate:
                        if writer is None:
                            writer = open_writer(tmp, fps, (frame.shape[1], frame.shape[0]))
                            log.info("%s: annotated video encoded as %s", source, writer.encoder)
                        writer.write(draw.annotate(frame, [t.face for t in tracked], self.bars, keep_size=True,
                                                   numbers=[t.track for t in tracked]))
                    frames += 1
                    bar.update()
        except KeyboardInterrupt:  # the way a camera run ends: keep what was classified
            log.info("%s: stopped by Ctrl-C after %d frames", source, frames)
        except (OSError, ValueError, cv2.error) as error:
            items.append(Item(source, frames, error=f"{source}: frame {frames}: {_one_line(error)}"))
            log.error("%s", items[-1].error)
        finally:
            capture.release()
            if writer is not None:
                writer.release()
        if frames == 0 and not items:
            items.append(Item(source, error=f"{source}: no frame could be decoded"))
            log.error("%s", items[-1].error)
        elif total and frames < total - 1:  # containers may round their count by a frame
            log.warning("%s: decoded %d of the %d frames the file announces (damaged or truncated); the results "
                        "cover those %d", source, frames, total, frames)
        if writer is not None and tmp.exists() and frames:
            os.replace(tmp, out)
            for item in items:
                item.annotated = str(out)
        tmp.unlink(missing_ok=True)
        if timed:
            write_timeline(timed, self.predictor.class_names, timeline, timeline.with_suffix(".png"), draw.PALETTE)
            for item in items:
                item.timeline = str(timeline)
        say([video_line(source, frames, fps, items)])
        return items

    def run(self, input_path: str | Path) -> list[Item]:
        """Predict over an image, a folder (recursively), a video file or `camera:<index>` (a webcam)."""
        with logging_redirect_tqdm():  # log lines print above the bars instead of breaking into them
            if str(input_path).startswith(CAMERA_PREFIX):
                self.items.extend(self.camera(camera_index(str(input_path))))
            else:
                self.files(Path(input_path))
        return self.items

    def files(self, root: Path) -> None:
        inputs, ignored = list_inputs(root)
        annotated = (self.output_dir / ANNOTATED_DIR).resolve()
        inputs = [p for p in inputs if not p.resolve().is_relative_to(annotated)]  # never re-read our own outputs
        if ignored:
            log.info("ignored %d files that are neither images nor videos (e.g. %s)", len(ignored), ignored[0])
        for path in tqdm(inputs, desc="inputs", unit="file", disable=not self.progress or len(inputs) < 2):
            relative = Path(path.name) if root.is_file() else path.relative_to(root)
            if path.suffix.lower() in VIDEO_SUFFIXES:
                self.items.extend(self.video(path, relative))
            else:
                self.items.append(self.image(path, relative))


def csv_rows(items: Iterable[Item], class_names: tuple[str, ...]) -> tuple[list[str], list[list[Any]]]:
    """One row per face; an item without faces gives one row with an empty face column and its status. Video
    rows carry the frame's time in seconds and the face's track id."""
    header = ["source", "frame", "time_s", "face", "track", "status", "x", "y", "w", "h", "label", "score",
              *(f"p_{name}" for name in class_names), "error"]
    rows: list[list[Any]] = []
    for item in items:
        frame = "" if item.frame is None else item.frame
        time = "" if item.time is None else f"{item.time:.3f}"
        if not item.faces:
            rows.append([item.source, frame, time, "", "", item.status, "", "", "", "", "", "",
                         *([""] * len(class_names)), item.error or ""])
        for i, face in enumerate(item.faces):
            b = face.box
            track = item.tracks[i] if item.tracks else ""
            rows.append([item.source, frame, time, i, track, item.status, b.x, b.y, b.w, b.h, face.label,
                         f"{face.score:.6f}", *(f"{face.probabilities[n]:.6f}" for n in class_names), ""])
    return header, rows


def summarize(items: list[Item]) -> dict[str, int]:
    counts = Counter(item.status for item in items)
    return {"items": len(items), "faces": sum(len(i.faces) for i in items), "ok": counts["ok"],
            "no_face": counts["no_face"], "error": counts["error"]}


def summarize_inputs(items: list[Item]) -> list[dict[str, Any]]:
    """The summary of each input file or camera on its own, in input order: counts and labels, and for a video
    its classified frames' time span, its tracks and its annotated video and timeline."""
    by_source: dict[str, list[Item]] = {}
    for item in items:
        by_source.setdefault(item.source, []).append(item)
    inputs = []
    for source, group in by_source.items():
        labels = Counter(face.label for item in group for face in item.faces)
        entry: dict[str, Any] = {"source": source, **summarize(group), "labels": dict(labels.most_common())}
        if any(item.frame is not None for item in group):
            times = [item.time for item in group if item.time is not None]
            entry.update(last_s=max(times, default=0.0), tracks=track_summary(group),
                         timeline=next((i.timeline for i in group if i.timeline), None))
        entry["annotated"] = next((item.annotated for item in group if item.annotated), None)
        inputs.append(entry)
    return inputs


def write_tables(items: list[Item], output_dir: str | Path, class_names: tuple[str, ...],
                 meta: dict[str, Any]) -> tuple[Path, Path]:
    """predictions.csv (flat) and predictions.json (meta, the summary over all inputs and per input, nested faces),
    both written atomically."""
    output_dir = Path(output_dir)
    header, rows = csv_rows(items, class_names)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    atomic_write_text(output_dir / TABLE_CSV, buffer.getvalue())
    atomic_write_json(output_dir / TABLE_JSON, {**meta, "class_names": list(class_names),
                                                "summary": summarize(items), "inputs": summarize_inputs(items),
                                                "items": [i.as_dict() for i in items]})
    return output_dir / TABLE_CSV, output_dir / TABLE_JSON
