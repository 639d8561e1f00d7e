"""Run a Predictor over an image, a folder, a video or a webcam and write what it found: a CSV and a JSON table (one
row per face, or one row saying no_face / error) and annotated copies of the inputs.

A file that cannot be read becomes an `error` row with a one-line reason; the other inputs go on.
"""

from __future__ import annotations

import csv
import io
import logging
import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from fer_lightning.inference import draw
from fer_lightning.inference.images import (
    IMAGE_SUFFIXES,
    VIDEO_SUFFIXES,
    ImageReadError,
    read_image,
    writable_suffix,
    write_image,
)
from fer_lightning.inference.predictor import FaceResult, Predictor
from fer_lightning.runrecord import atomic_write_json, atomic_write_text

log = logging.getLogger(__name__)

TABLE_CSV, TABLE_JSON, ANNOTATED_DIR = "predictions.csv", "predictions.json", "annotated"
CAMERA_PREFIX = "camera:"
VIDEO_CODEC = "mp4v"


@dataclass
class Item:
    """What one image or one video frame gave: status ok (faces found), no_face, or error (with the reason)."""

    source: str
    frame: int | None = None
    faces: list[FaceResult] = field(default_factory=list)
    error: str | None = None
    annotated: str | None = None

    @property
    def status(self) -> str:
        return "error" if self.error else "ok" if self.faces else "no_face"

    def as_dict(self) -> dict[str, Any]:
        return {"source": self.source, "frame": self.frame, "status": self.status, "error": self.error,
                "annotated": self.annotated, "faces": [{"face": i, **f.as_dict()} for i, f in enumerate(self.faces)]}


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


def describe(faces: list[FaceResult], top: int = 3) -> str:
    """What a person wants on the terminal for one image: each face's label and score, the runners-up and where
    the face is, e.g. `happy 91% (neutral 5%, sad 2%) at x=40 y=32 120x120`."""
    if not faces:
        return "no face found"
    parts = []
    for i, face in enumerate(faces):
        ranked = sorted(face.probabilities.items(), key=lambda kv: -kv[1])
        others = ", ".join(f"{name} {p:.0%}" for name, p in ranked[1:top])
        b = face.box
        number = f"face {i + 1}: " if len(faces) > 1 else ""
        parts.append(f"{number}{face.label} {face.score:.0%} ({others}) at x={b.x} y={b.y} {b.w}x{b.h}")
    return "; ".join(parts)


def _one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"


class PredictionRun:
    """Predicts over inputs, writes annotated copies under `output_dir/annotated/`, collects the rows.

    Args:
        video_stride: classify every n-th video frame; the frames between reuse the last result (faster
            than real time on small CPUs, where the Haar detector dominates).
        progress: show a progress bar over files and over video frames.
        max_frames: read at most this many frames of each video or camera (None: to the end, or Ctrl-C).
    """

    def __init__(self, predictor: Predictor, output_dir: str | Path, annotate: bool = True, bars: bool = True,
                 video_stride: int = 1, progress: bool = True, max_frames: int | None = None) -> None:
        self.predictor = predictor
        self.output_dir = Path(output_dir)
        self.annotate, self.bars = annotate, bars
        self.video_stride = max(1, int(video_stride))
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
            hint = "" if item.faces else getattr(self.predictor.detector, "hint", "")  # e.g. the smallest face size
            log.info("%s: %s%s", path, describe(item.faces), f"; {hint}" if hint else "")
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
        return self.frames(capture, str(path), self._annotated_path(relative, ".mp4"), total)

    def camera(self, index: int) -> list[Item]:
        """A webcam through OpenCV, frame by frame until Ctrl-C or max_frames, written like a video file."""
        capture = open_capture(index)
        if not capture.isOpened():
            capture.release()
            raise OSError(f"input=camera:{index}: cannot open camera {index} (no such device, or it is in use)")
        limit = f"{self.max_frames} frames or " if self.max_frames else ""
        log.info("camera %d: classifying frames until %sCtrl-C", index, limit)
        return self.frames(capture, f"camera:{index}", self.output_dir / ANNOTATED_DIR / f"camera{index}.mp4", None)

    def frames(self, capture: Any, source: str, out: Path, total: int | None) -> list[Item]:
        """Read `capture` to its end, to max_frames or to Ctrl-C; classify every video_stride-th frame and write
        the annotated frames to `out` (through a temp file, renamed at the end)."""
        fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
        tmp = out.with_name(f".{out.stem}.partial.mp4")  # the container is chosen by the extension
        writer: cv2.VideoWriter | None = None
        items: list[Item] = []
        faces: list[FaceResult] = []
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
                        faces = self.predictor.predict(frame)
                        items.append(Item(source, frames, faces))
                    if self.annotate:
                        if writer is None:
                            tmp.parent.mkdir(parents=True, exist_ok=True)
                            height, width = frame.shape[:2]
                            writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*VIDEO_CODEC), fps,
                                                     (width, height))
                            if not writer.isOpened():
                                raise OSError(f"{out}: cannot open a video writer ({VIDEO_CODEC})")
                        writer.write(draw.annotate(frame, faces, self.bars, keep_size=True))
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
        labels = Counter(face.label for item in items for face in item.faces)
        log.info("%s: %d frames, %d classified; faces by label: %s; annotated video: %s", source, frames, len(items),
                 ", ".join(f"{name} {n}" for name, n in labels.most_common()) or "none",
                 out if out.exists() else None)
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
    """One row per face; an item without faces gives one row with an empty face column and its status."""
    header = ["source", "frame", "face", "status", "x", "y", "w", "h", "label", "score",
              *(f"p_{name}" for name in class_names), "error"]
    rows: list[list[Any]] = []
    for item in items:
        frame = "" if item.frame is None else item.frame
        if not item.faces:
            rows.append([item.source, frame, "", item.status, "", "", "", "", "", "",
                         *([""] * len(class_names)), item.error or ""])
        for i, face in enumerate(item.faces):
            b = face.box
            rows.append([item.source, frame, i, item.status, b.x, b.y, b.w, b.h, face.label,
                         f"{face.score:.6f}", *(f"{face.probabilities[n]:.6f}" for n in class_names), ""])
    return header, rows


def summarize(items: list[Item]) -> dict[str, int]:
    counts = Counter(item.status for item in items)
    return {"items": len(items), "faces": sum(len(i.faces) for i in items), "ok": counts["ok"],
            "no_face": counts["no_face"], "error": counts["error"]}


def write_tables(items: list[Item], output_dir: str | Path, class_names: tuple[str, ...],
                 meta: dict[str, Any]) -> tuple[Path, Path]:
    """predictions.csv (flat) and predictions.json (meta, summary, nested faces), both written atomically."""
    output_dir = Path(output_dir)
    header, rows = csv_rows(items, class_names)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    atomic_write_text(output_dir / TABLE_CSV, buffer.getvalue())
    atomic_write_json(output_dir / TABLE_JSON, {**meta, "class_names": list(class_names),
                                                "summary": summarize(items), "items": [i.as_dict() for i in items]})
    return output_dir / TABLE_CSV, output_dir / TABLE_JSON
