"""Run a Predictor over an image, a folder, a video or a webcam and write what it found: predictions.csv and .json,
annotated copies and, per video, a timeline. An unreadable file becomes an `error` row, the rest go on."""

from __future__ import annotations

import csv
import itertools
import logging
import math
import os
import sys
from collections import Counter
from dataclasses import astuple, dataclass, field
from pathlib import Path
from typing import Any

import cv2
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from fer_lightning.atomicio import atomic_open
from fer_lightning.inference import draw
from fer_lightning.inference.images import IMAGE_SUFFIXES, VIDEO_SUFFIXES, ImageReadError, read_image, write_image
from fer_lightning.inference.predictor import FaceResult, Predictor
from fer_lightning.inference.video import FrameClassifier, TrackedFace, Writer, open_writer, write_timeline
from fer_lightning.runrecord import atomic_write_json

log = logging.getLogger(__name__)
results_log = logging.getLogger(f"{__name__}.results")  # the printed result lines, for the log file
results_log.propagate = False  # printed by say(); a log-file handler is attached to it directly

TABLE_CSV, TABLE_JSON, ANNOTATED_DIR, TIMELINE_DIR = "predictions.csv", "predictions.json", "annotated", "timeline"
CAMERA_PREFIX = "camera:"
WRITABLE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})  # else .png


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


def failed(source: str, error: str, frame: int | None = None) -> Item:
    """An error row, logged as it is made."""
    log.error("%s", error)
    return Item(source, frame, error=error)


def open_capture(source: str | int) -> Any:
    """OpenCV's reader for a video file (path) or a camera (index); a module function so tests can stand in."""
    return cv2.VideoCapture(source)


def camera_index(text: str) -> int:
    index = text[len(CAMERA_PREFIX):]
    if not index.isdigit():
        raise ValueError(f"input={text}: expected {CAMERA_PREFIX}<index>, e.g. input={CAMERA_PREFIX}0")
    return int(index)


def list_inputs(path: Path) -> tuple[list[Path], list[Path]]:
    """(inputs, ignored): a file is an input whatever its name; a folder gives its images and videos, recursively
    and sorted, and ignores (counts) its other files."""
    if path.is_file():
        return [path], []
    if not path.is_dir():
        raise FileNotFoundError(f"input {path}: no such file or folder")
    files = sorted(p for p in path.rglob("*")
                   if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts))
    known = IMAGE_SUFFIXES | VIDEO_SUFFIXES
    return [p for p in files if p.suffix.lower() in known], [p for p in files if p.suffix.lower() not in known]


def describe(faces: list[FaceResult], top: int = 3, hint: str | None = None) -> str:
    """A line per face: `happy 91% (neutral 5%, sad 2%) at x=40 y=32 120x120`, numbered `face 2: ...` when there
    are several (as in the annotated image); without a face, `no face found` and the detector's hint if any."""
    if not faces:
        return f"no face found ({hint})" if hint else "no face found"
    lines = []
    for i, (face, b) in enumerate((face, face.box) for face in faces):
        others = ", ".join(f"{n} {p:.0%}" for n, p in sorted(face.probabilities.items(), key=lambda kv: -kv[1])[1:top])
        number = f"face {i + 1}: " if len(faces) > 1 else ""
        lines.append(f"{number}{face.label} {face.score:.0%} ({others}) at x={b.x} y={b.y} {b.w}x{b.h}")
    return "\n".join(lines)


def say(text: str) -> None:
    """Results go to stdout above any progress bar (they are the output, not log records), and to the log."""
    tqdm.write(text, file=sys.stdout)
    results_log.info("%s", text)


def video_line(frames: int, fps: float, summary: dict[str, Any]) -> str:
    """A video's result line, from its input_summary."""
    by_label = ", ".join(f"{name} {n}" for name, n in summary["labels"].items()) or "none"
    tracks = ", ".join(f"track {t['track']} {t['label']} {t['first_s']:.1f}-{t['last_s']:.1f} s"
                       for t in summary.get("tracks", []))
    return (f"{summary['source']}: {frames} frames, {summary['items']} classified; faces by label: {by_label}; "
            f"{frames / fps:.1f} s at {fps:.3g} fps; {tracks or 'no face tracked'}; "
            f"annotated video: {summary['annotated']}")


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
    """Predicts over inputs, writes annotated copies under `output_dir/annotated/`, collects the rows. The
    arguments are conf/predict.yaml's keys of the same names (described and checked there)."""

    def __init__(self, predictor: Predictor, output_dir: str | Path, annotate: bool = True, bars: bool = True,
                 video_stride: int = 1, progress: bool = True, max_frames: int | None = None,
                 detect_every: int = 1, smooth: float = 0.0) -> None:
        self.predictor, self.output_dir = predictor, Path(output_dir)
        self.annotate, self.bars, self.progress, self.max_frames = annotate, bars, progress, max_frames
        self.video_stride, self.detect_every, self.smooth = video_stride, detect_every, smooth
        self.items: list[Item] = []

    def image(self, path: Path, relative: Path) -> Item:
        item = Item(str(path))
        try:
            image = read_image(path)
            item.faces = self.predictor.predict(image)
            hint = None if item.faces else getattr(self.predictor.detector, "hint", None)  # e.g. the smallest face size
            say("\n".join(f"{path}: {line}" for line in describe(item.faces, hint=hint).splitlines()))
            if self.annotate:
                suffix = path.suffix.lower() if path.suffix.lower() in WRITABLE_SUFFIXES else ".png"
                out = self.output_dir / ANNOTATED_DIR / relative.with_suffix(suffix)
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
            return [failed(str(path), f"{path}: cannot open video (not a video, or a codec OpenCV cannot read)")]
        return self.frames(capture, str(path), relative, int(capture.get(cv2.CAP_PROP_FRAME_COUNT)))

    def camera(self, index: int) -> list[Item]:
        """A webcam, frame by frame until Ctrl-C or max_frames, written like a video file."""
        capture = open_capture(index)
        if not capture.isOpened():
            capture.release()
            raise OSError(f"input=camera:{index}: cannot open camera {index} (no such device, or it is in use)")
        log.info("camera %d: classifying frames until %sCtrl-C", index,
                 f"{self.max_frames} frames or " if self.max_frames else "")
        return self.frames(capture, f"camera:{index}", Path(f"camera{index}"), 0)

    def frames(self, capture: Any, source: str, name: Path, total: int) -> list[Item]:
        """Read `capture` to its end, max_frames or Ctrl-C; classify every video_stride-th frame; write the annotated
        video `annotated/<name>.mp4` (through a temp file) and the timeline `timeline/<name>.csv`."""
        fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
        out = self.output_dir / ANNOTATED_DIR / name.with_suffix(".mp4")
        tmp = out.with_name(f".{out.stem}.partial.mp4")
        past = math.exp(-self.video_stride / (fps * self.smooth)) if self.smooth > 0 else 0.0
        classify = FrameClassifier(self.predictor, self.detect_every, past)
        writer: Writer | None = None
        items: list[Item] = []
        tracked: list[TrackedFace] = []
        timed: list[tuple[int, float, list[TrackedFace]]] = []
        frames = 0
        total = min(total, self.max_frames or total)
        try:
            with tqdm(total=total or None, desc=Path(source).name, unit="frame", disable=not self.progress,
                      leave=False) as bar:
                # capture.read() gives (False, None) at the end of the stream
                for _, frame in itertools.islice(iter(capture.read, (False, None)), self.max_frames):
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
            items.append(failed(source, f"{source}: frame {frames}: {_one_line(error)}", frames))
        finally:
            capture.release()
            if writer is not None:
                writer.release()
        if frames == 0 and not items:
            items.append(failed(source, f"{source}: no frame could be decoded"))
        elif total and frames < total - 1:  # containers may round their count by a frame
            log.warning("%s: decoded %d of the %d frames the file announces (damaged or truncated); the results "
                        "cover those %d", source, frames, total, frames)
        if writer is not None and tmp.exists() and frames:
            os.replace(tmp, out)
            for item in items:
                item.annotated = str(out)
        tmp.unlink(missing_ok=True)
        if timed:
            timeline = self.output_dir / TIMELINE_DIR / name.with_suffix(".csv")
            write_timeline(timed, self.predictor.class_names, timeline, timeline.with_suffix(".png"), draw.PALETTE)
            for item in items:
                item.timeline = str(timeline)
        say(video_line(frames, fps, input_summary(source, items)))
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


def summarize(items: list[Item]) -> dict[str, int]:
    counts = Counter(item.status for item in items)
    return {"items": len(items), "faces": sum(len(i.faces) for i in items), "ok": counts["ok"],
            "no_face": counts["no_face"], "error": counts["error"]}


def input_summary(source: str, items: list[Item]) -> dict[str, Any]:
    """One input file or camera: counts and labels; for a video its classified frames' time span, its tracks and
    its timeline; its annotated copy."""
    labels = Counter(face.label for item in items for face in item.faces)
    summary: dict[str, Any] = {"source": source, **summarize(items), "labels": dict(labels.most_common())}
    if any(item.frame is not None for item in items):
        summary.update(last_s=max((i.time for i in items if i.time is not None), default=0.0),
                       tracks=track_summary(items), timeline=next((i.timeline for i in items if i.timeline), None))
    summary["annotated"] = next((item.annotated for item in items if item.annotated), None)
    return summary


def write_tables(items: list[Item], output_dir: str | Path, class_names: tuple[str, ...],
                 meta: dict[str, Any]) -> tuple[Path, Path]:
    """predictions.csv: a row per face (an item without faces: one row with its status; video rows carry the
    frame's time and the face's track); predictions.json: meta, the summaries and the items, nested."""
    output_dir = Path(output_dir)
    rows: list[list[Any]] = [["source", "frame", "time_s", "face", "track", "status", "x", "y", "w", "h", "label",
                              "score", *(f"p_{name}" for name in class_names), "error"]]
    for item in items:
        frame = "" if item.frame is None else item.frame
        time = "" if item.time is None else f"{item.time:.3f}"
        if not item.faces:
            rows.append([item.source, frame, time, *[""] * 2, item.status, *[""] * (6 + len(class_names)),
                         item.error or ""])
        for i, face in enumerate(item.faces):
            track = item.tracks[i] if item.tracks else ""
            rows.append([item.source, frame, time, i, track, item.status, *astuple(face.box), face.label,
                         f"{face.score:.6f}", *(f"{face.probabilities[n]:.6f}" for n in class_names), ""])
    with atomic_open(output_dir / TABLE_CSV, "w") as handle:
        csv.writer(handle, lineterminator="\n").writerows(rows)
    inputs = [input_summary(source, list(group)) for source, group in itertools.groupby(items, lambda i: i.source)]
    atomic_write_json(output_dir / TABLE_JSON, {**meta, "class_names": list(class_names), "summary": summarize(items),
                                                "inputs": inputs, "items": [i.as_dict() for i in items]})
    return output_dir / TABLE_CSV, output_dir / TABLE_JSON
