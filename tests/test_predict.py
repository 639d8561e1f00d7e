"""Inference on photos, folders and videos: preprocessing contract, pipeline outputs, the real Haar detector."""

from __future__ import annotations

import csv
import gzip
import json
import logging
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig

from fer_lightning.config import CONFIG_DIR
from fer_lightning.data.augment import AugmentProfile, BatchAugment
from fer_lightning.data.splits import CLASS_NAMES
from fer_lightning.data.synthetic import generate_faces
from fer_lightning.inference import Box, HaarFaceDetector, Predictor, WholeImageDetector, crop_face, pipeline
from fer_lightning.inference.detect import DlibFaceDetector, MTCNNFaceDetector, default_detector
from fer_lightning.inference.draw import annotate
from fer_lightning.inference.images import ImageReadError, read_image, to_gray
from fer_lightning.inference.loading import CheckpointError, EvalNetwork
from fer_lightning.inference.pipeline import describe
from fer_lightning.inference.predictor import FaceResult
from fer_lightning.jobs.predict import build_detector, predict
from fer_lightning.models import FERCNN
from fer_lightning.predict import main, run

FER_DIR = Path(__file__).resolve().parents[2] / "shared/data/fer2013"
FACES = generate_faces(8, seed=5).images  # uint8 [8, 48, 48]


class FakeDetector:
    """Known boxes per image shape: a test controls exactly where the 'faces' are (and where there are none)."""

    def __init__(self, boxes: dict[tuple[int, int], list[Box]]) -> None:
        self.boxes = boxes

    def detect(self, gray: np.ndarray) -> list[Box]:
        return list(self.boxes.get(gray.shape, []))


def paste(canvas: np.ndarray, face: np.ndarray, box: Box) -> None:
    """Upscale `face` by an integer factor (pixel repetition) into `box`: area-resizing it back is exact."""
    k = box.w // face.shape[0]
    canvas[box.y : box.y + box.h, box.x : box.x + box.w] = np.kron(face, np.ones((k, k), np.uint8))[..., None]


def predict_config(*overrides: str) -> DictConfig:
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return compose("predict", overrides=list(overrides))


# --- the preprocessing contract -------------------------------------------------------------------------------


def test_face_crop_through_predictor_equals_eval_transform(tiny_checkpoint: Path) -> None:
    box = Box(30, 40, 96, 96)
    canvas = np.full((200, 160, 3), 90, np.uint8)
    paste(canvas, FACES[0], box)
    predictor = Predictor.from_checkpoint(tiny_checkpoint, FakeDetector({(200, 160): [box]}), margin=0.0)
    assert np.array_equal(crop_face(to_gray(canvas), box, margin=0.0), FACES[0])
    (face,) = predictor.predict(canvas)
    with torch.inference_mode():
        x = BatchAugment(predictor.profile).eval(torch.from_numpy(FACES[:1]))
        expected = predictor.network(x).softmax(-1)[0]
    assert face.box == box and list(face.probabilities) == list(predictor.class_names)
    assert np.allclose(list(face.probabilities.values()), expected.numpy(), atol=1e-6)
    assert face.label == predictor.class_names[int(expected.argmax())]


@pytest.mark.parametrize(("profile", "tta"), [
    (AugmentProfile(image_size=40, mean=(0.3,), std=(0.2,)), ("identity", "hflip")),
    (AugmentProfile(name="imagenet", image_size=64, channels=3, mean=(0.485, 0.456, 0.406),
                    std=(0.229, 0.224, 0.225), interpolation="bicubic"), ("identity",)),
])
def test_predictor_applies_the_profiles_eval_transform_and_tta(profile: AugmentProfile, tta: tuple[str, ...]) -> None:
    model = EvalNetwork(FERCNN(in_channels=profile.channels), tta=tta).eval()
    predictor = Predictor(model, profile, WholeImageDetector(), batch_size=3)  # 3: several chunks
    got = predictor.probabilities(FACES)
    with torch.inference_mode():
        x = BatchAugment(profile).eval(torch.from_numpy(FACES))
        views = [model.view_logits(x), model.view_logits(x.flip(-1))] if len(tta) == 2 else [model.view_logits(x)]
        expected = torch.stack(views).mean(0).softmax(-1).numpy()
    assert got.shape == (8, 7) and np.allclose(got, expected, atol=1e-6)
    assert predictor.contract()["image_size"] == profile.image_size and predictor.contract()["tta"] == list(tta)


def test_predictor_tta_replaces_the_checkpoints_views() -> None:
    profile = AugmentProfile()
    twelve = EvalNetwork(FERCNN(), tta=("identity", "hflip", "ten_crop")).eval()
    flip_only = Predictor(twelve, profile, WholeImageDetector(), tta=["identity", "hflip"])
    reference = Predictor(EvalNetwork(twelve.net, tta=("identity", "hflip")).eval(), profile, WholeImageDetector())
    assert np.allclose(flip_only.probabilities(FACES), reference.probabilities(FACES), atol=1e-6)
    assert flip_only.contract()["tta"] == ["identity", "hflip"]
    with pytest.raises(ValueError, match=r"tta=\['foo'\]: expected a non-empty list of identity, hflip, ten_crop"):
        Predictor(twelve, profile, WholeImageDetector(), tta=["foo"])


def test_predict_batch_keeps_faces_with_their_images() -> None:
    boxes = [Box(0, 0, 48, 48), Box(50, 50, 48, 48)]
    predictor = Predictor(EvalNetwork(FERCNN()).eval(), AugmentProfile(),
                          FakeDetector({(100, 100): boxes}), margin=0.0, batch_size=3)
    images = [np.zeros((100, 100), np.uint8), np.zeros((60, 60), np.uint8), np.zeros((100, 100), np.uint8)]
    for image, faces in ((images[0], FACES[:2]), (images[2], FACES[2:4])):
        for box, face in zip(boxes, faces, strict=True):
            image[box.y : box.y + 48, box.x : box.x + 48] = face
    results = predictor.predict_batch(images)
    assert [len(r) for r in results] == [2, 0, 2]
    expected = predictor.probabilities(FACES[:4])
    got = [list(face.probabilities.values()) for faces in results for face in faces]
    assert np.allclose(got, expected, atol=1e-6) and results[2][1].box == boxes[1]


def test_bf16_precision_stays_close_to_fp32() -> None:
    model = EvalNetwork(FERCNN()).eval()
    fp32 = Predictor(model, AugmentProfile(), WholeImageDetector()).probabilities(FACES)
    bf16 = Predictor(model, AugmentProfile(), WholeImageDetector(), precision="bf16").probabilities(FACES)
    assert bf16.dtype == np.float32 and np.abs(bf16 - fp32).max() < 3e-2
    with pytest.raises(ValueError, match="precision='fp16'"):
        Predictor(model, AugmentProfile(), precision="fp16")


def test_crop_face_squares_and_pads_boxes_that_leave_the_image() -> None:
    gray = np.arange(100 * 80, dtype=np.uint32).reshape(100, 80).astype(np.uint8)
    assert Box(10, 20, 30, 50).square() == Box(0, 20, 50, 50)
    assert Box(0, 0, 40, 40).square(margin=0.25) == Box(-10, -10, 60, 60)
    for box in (Box(-20, -20, 60, 60), Box(60, 90, 40, 40), Box(0, 0, 10, 10)):
        crop = crop_face(gray, box)
        assert crop.shape == (48, 48) and crop.dtype == np.uint8


def test_to_gray_and_read_image(tmp_path: Path) -> None:
    rgb = np.zeros((4, 4, 3), np.uint8)
    rgb[..., 0] = 255  # red in RGB order
    assert to_gray(rgb, "rgb")[0, 0] == 76 and to_gray(rgb, "bgr")[0, 0] == 29  # 0.299 * 255, 0.114 * 255
    assert to_gray(np.zeros((5, 6, 4), np.uint8)).shape == (5, 6)
    with pytest.raises(ValueError, match="uint8"):
        to_gray(np.zeros((4, 4), np.float32))
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not a jpeg")
    with pytest.raises(ImageReadError, match=r"broken\.jpg: cannot decode image"):
        read_image(bad)
    with pytest.raises(ImageReadError, match="cannot read file"):
        read_image(tmp_path / "missing.png")


def test_annotate_draws_boxes_and_marks_images_without_faces() -> None:
    image = np.full((240, 320), 128, np.uint8)
    torch.manual_seed(0)  # the label (and so the caption's width) comes from an untrained network
    model = EvalNetwork(FERCNN()).eval()
    predictor = Predictor(model, AugmentProfile(), FakeDetector({(240, 320): [Box(20, 20, 96, 96)]}))
    faces = predictor.predict(image)
    drawn = annotate(image, faces)
    assert drawn.shape == (240, 320, 3) and (drawn != 128).any(axis=2)[20, 20:116].all()  # the box's top edge
    assert (drawn[23:113, 23:113] == 128).all()  # nothing drawn over the face itself: the panel went beside it
    blank = annotate(image, [])
    assert (blank[:20, :100] != 128).any() and (blank[100:] == 128).all()


def face_result(box: Box, label: str = "happy") -> FaceResult:
    probabilities = dict.fromkeys(CLASS_NAMES, 0.05)
    probabilities[label] = 0.7
    return FaceResult(box, probabilities)


def test_annotate_upscales_a_crop_and_puts_its_labels_outside_the_face() -> None:
    crop = np.random.default_rng(0).integers(0, 256, (48, 48), np.uint8)
    drawn = annotate(crop, [face_result(Box(0, 0, 48, 48))])
    factor = 5  # ceil(240 / 48): the text is drawn at a legible size
    height, width = drawn.shape[:2]
    assert height == 48 * factor and width > 48 * factor  # the face fills the image: its card goes to the right
    top = 0
    face = cv2.resize(cv2.cvtColor(crop, cv2.COLOR_GRAY2BGR), None, fx=factor, fy=factor,
                      interpolation=cv2.INTER_CUBIC)
    inner = slice(top + 3, top + 48 * factor - 3), slice(3, 48 * factor - 3)  # inside the box outline
    assert np.array_equal(drawn[inner], face[3:-3, 3:-3])


def test_annotate_numbers_faces_whose_panels_go_to_the_margin_and_keeps_video_frames_as_they_are() -> None:
    image = np.full((160, 260, 3), 100, np.uint8)
    faces = [face_result(Box(10, 10, 96, 96), "sad"), face_result(Box(150, 30, 96, 96))]
    drawn = annotate(image, faces)
    assert drawn.shape[0] >= 320 and drawn.shape[1] > 520  # upscaled 2x, plus a right margin for two panels
    assert (drawn[2 * 10 + 3 : 2 * 106 - 3, 2 * 10 + 3 : 2 * 106 - 3] == 100).all()  # face 1 left clear
    assert (drawn[2 * 30 + 3 : 2 * 126 - 3, 2 * 150 + 3 : 2 * 246 - 3] == 100).all()  # face 2 left clear
    assert annotate(image, faces, keep_size=True).shape == image.shape


def test_describe_gives_each_face_its_label_runners_up_and_place() -> None:
    assert describe([]) == "no face found"
    line = describe([face_result(Box(1, 2, 30, 40), "sad")])
    assert line.startswith("sad 70% (") and line.endswith(") at x=1 y=2 30x40")
    assert describe([face_result(Box(0, 0, 9, 9)), face_result(Box(9, 9, 9, 9))]).count("face ") == 2


# --- the pipeline: folders, unreadable files, images without faces, video --------------------------------------


def write_video(path: Path, frames: int, size: tuple[int, int], box: Box) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, size)
    for i in range(frames):
        frame = np.full((size[1], size[0], 3), 60 + 10 * i, np.uint8)
        paste(frame, FACES[i % len(FACES)], box)
        writer.write(frame)
    writer.release()


def count_frames(path: Path) -> int:
    capture = cv2.VideoCapture(str(path))
    n = 0
    while capture.read()[0]:
        n += 1
    capture.release()
    return n


def test_pipeline_on_a_folder_with_faces_no_face_broken_file_and_video(
    tiny_checkpoint: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    inputs, out = tmp_path / "in", tmp_path / "out"
    (inputs / "sub").mkdir(parents=True)
    two = [Box(10, 10, 96, 96), Box(150, 30, 96, 96)]
    group = np.full((160, 260, 3), 100, np.uint8)
    for face, box in zip(FACES, two, strict=False):
        paste(group, face, box)
    cv2.imwrite(str(inputs / "group.png"), group)
    cv2.imwrite(str(inputs / "sub" / "empty.jpg"), np.full((90, 90, 3), 200, np.uint8))
    (inputs / "broken.jpg").write_bytes(b"\xff\xd8 truncated")
    (inputs / "notes.txt").write_text("not an image")
    video_box = Box(16, 16, 48, 48)
    write_video(inputs / "clip.avi", frames=5, size=(128, 96), box=video_box)
    detector = FakeDetector({(160, 260): two, (96, 128): [video_box]})

    cfg = predict_config(f"ckpt_path={tiny_checkpoint}", f"input={inputs}", f"output_dir={out}", "progress=false",
                         "video_stride=2")
    with caplog.at_level(logging.INFO, logger="fer_lightning.inference.pipeline"):
        summary = predict(cfg, detector=detector)
    printed = [r.getMessage() for r in caplog.records]
    assert any(m.startswith(f"{inputs / 'group.png'}: face 1: ") and "face 2: " in m for m in printed)
    assert f"{inputs / 'sub' / 'empty.jpg'}: no face found" in printed
    assert any("clip.avi: 5 frames, 3 classified; faces by label: " in m for m in printed)
    cfg_names = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")

    assert summary == {**summary, "items": 6, "faces": 5, "ok": 4, "no_face": 1, "error": 1}  # 3 video frames
    with (out / "predictions.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    by_source = {}
    for row in rows:
        by_source.setdefault(Path(row["source"]).name, []).append(row)
    assert [(int(r["x"]), int(r["y"]), int(r["w"])) for r in by_source["group.png"]] == [(10, 10, 96), (150, 30, 96)]
    assert all(r["status"] == "ok" and r["label"] in cfg_names for r in by_source["group.png"])
    assert all(0 <= float(r["score"]) <= 1 for r in by_source["group.png"])
    assert abs(sum(float(by_source["group.png"][0][f"p_{n}"]) for n in cfg_names) - 1) < 1e-4
    (empty,) = by_source["empty.jpg"]
    assert empty["status"] == "no_face" and empty["face"] == "" and empty["label"] == ""
    (broken,) = by_source["broken.jpg"]
    assert broken["status"] == "error" and "broken.jpg: cannot decode image" in broken["error"]
    assert "\n" not in broken["error"] and "notes.txt" not in by_source
    assert [int(r["frame"]) for r in by_source["clip.avi"]] == [0, 2, 4]

    record = json.loads((out / "predictions.json").read_text())
    assert record["summary"]["error"] == 1 and record["preprocessing"]["image_size"] == 48
    assert record["class_names"][3] == "happy"
    assert (out / "annotated" / "group.png").is_file() and (out / "annotated" / "sub" / "empty.jpg").is_file()
    assert not (out / "annotated" / "broken.jpg").exists()
    annotated = cv2.imread(str(out / "annotated" / "group.png"))
    assert annotated.shape[0] >= 2 * 160 and annotated.shape[1] > 2 * 260  # small input: upscaled, margin added
    assert count_frames(out / "annotated" / "clip.mp4") == 5  # every frame written, classified or not
    assert not [p for p in out.rglob(".*")]  # no temp files left behind


class FakeCamera:
    """Stands in for cv2.VideoCapture(0): `frames` frames with a face, then Ctrl-C (how a camera run ends);
    frames=None never ends."""

    def __init__(self, frames: int | None, box: Box, opened: bool = True) -> None:
        self.left, self.box, self.opened, self.released = frames, box, opened, False

    def isOpened(self) -> bool:
        return self.opened

    def get(self, prop: int) -> float:
        return 30.0 if prop == cv2.CAP_PROP_FPS else 0.0  # a webcam announces no frame count

    def read(self) -> tuple[bool, np.ndarray]:
        if self.left == 0:
            raise KeyboardInterrupt
        if self.left is not None:
            self.left -= 1
        frame = np.full((96, 128, 3), 90, np.uint8)
        paste(frame, FACES[0], self.box)
        return True, frame

    def release(self) -> None:
        self.released = True


def test_camera_input_reads_frames_until_ctrl_c_or_max_frames(
    tiny_checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    box = Box(16, 16, 48, 48)
    detector = FakeDetector({(96, 128): [box]})
    opened: list[str | int] = []

    def camera(frames: int | None, opened_ok: bool = True) -> FakeCamera:
        fake = FakeCamera(frames, box, opened_ok)
        monkeypatch.setattr(pipeline, "open_capture", lambda source: opened.append(source) or fake)
        return fake

    fake = camera(frames=4)
    out = tmp_path / "ctrl_c"
    summary = predict(predict_config(f"ckpt_path={tiny_checkpoint}", "input=camera:0", f"output_dir={out}",
                                     "progress=false"), detector=detector)
    assert opened == [0] and fake.released
    assert summary == {**summary, "items": 4, "faces": 4, "ok": 4}  # the frames before Ctrl-C are kept
    with (out / "predictions.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert {r["source"] for r in rows} == {"camera:0"} and [int(r["frame"]) for r in rows] == [0, 1, 2, 3]
    assert count_frames(out / "annotated" / "camera0.mp4") == 4 and not list(out.rglob(".*"))

    camera(frames=None)
    summary = predict(predict_config(f"ckpt_path={tiny_checkpoint}", "input=camera:2", f"output_dir={tmp_path / 'n'}",
                                     "progress=false", "max_frames=3", "video_stride=2"), detector=detector)
    assert opened[-1] == 2 and summary["items"] == 2  # frames 0 and 2 of 3

    camera(frames=None, opened_ok=False)
    with pytest.raises(OSError, match=r"^input=camera:1: cannot open camera 1"):
        predict(predict_config(f"ckpt_path={tiny_checkpoint}", "input=camera:1", f"output_dir={tmp_path / 'x'}"),
                detector=detector)
    with pytest.raises(ValueError, match=r"^input=camera:front: expected camera:<index>"):
        predict(predict_config("input=camera:front", f"output_dir={tmp_path / 'x'}"), detector=detector)
    with pytest.raises(ValueError, match=r"^max_frames=0: expected an integer >= 1"):
        predict(predict_config("input=camera:0", "max_frames=0", f"output_dir={tmp_path / 'x'}"), detector=detector)


def test_predict_entry_point_on_face_crops(tiny_checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    """The Hydra app as the command line runs it (in-process: a new interpreter costs ~10 s on 2 busy cores)."""
    inputs = tmp_path / "faces"
    inputs.mkdir()
    for i, face in enumerate(FACES[:3]):
        cv2.imwrite(str(inputs / f"face{i}.png"), face)
    argv = ["fer_lightning.predict", f"ckpt_path={tiny_checkpoint}", f"input={inputs}", "detector=whole_image",
            f"output_dir={tmp_path / 'run'}", "progress=false", "hydra/job_logging=none", "hydra/hydra_logging=none"]
    monkeypatch.setattr(sys, "argv", argv)
    GlobalHydra.instance().clear()
    main()  # run() = check_overrides + main(); its check does not know hydra/job_logging=none (cli.py)
    record = json.loads((tmp_path / "run" / "predictions.json").read_text())
    assert record["summary"] == {"items": 3, "faces": 3, "ok": 3, "no_face": 0, "error": 0}
    assert record["items"][0]["faces"][0]["box"] == {"x": 0, "y": 0, "w": 48, "h": 48}
    assert not (tmp_path / "run" / ".hydra").exists()  # predict's output holds results, not Hydra's records
    monkeypatch.setattr(sys, "argv", [*argv[:1], f"ckpt_path={tmp_path}/none.ckpt", *argv[2:]])
    GlobalHydra.instance().clear()
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("predict: error: ") and err.endswith("none.ckpt: no such checkpoint file\n")
    monkeypatch.setattr(sys, "argv", [*argv[:5], "haar.scale=1.2"])
    with pytest.raises(SystemExit) as exit_info:
        run()
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.startswith(
        "predict: error: haar.scale: no key 'scale' in haar; did you mean haar.scale_factor?")


def test_predict_reports_a_missing_checkpoint_or_input_in_one_line(tiny_checkpoint: Path, tmp_path: Path) -> None:
    cv2.imwrite(str(tmp_path / "face.png"), FACES[0])
    with pytest.raises(CheckpointError, match="no such checkpoint file"):
        predict(predict_config(f"ckpt_path={tmp_path}/none.ckpt", f"input={tmp_path}",
                               f"output_dir={tmp_path}"))
    with pytest.raises(ValueError, match="no such file or folder"):
        predict(predict_config(f"ckpt_path={tiny_checkpoint}", f"input={tmp_path}/nothing", f"output_dir={tmp_path}"),
                detector=WholeImageDetector())


# --- the real Haar cascade ------------------------------------------------------------------------------------


def test_haar_detector_finds_a_synthetic_face_and_nothing_in_a_blank_image() -> None:
    detector = HaarFaceDetector()
    canvas = np.full((240, 320), 128, np.uint8)
    box = Box(80, 40, 168, 168)
    canvas[box.y : box.y + box.h, box.x : box.x + box.w] = cv2.resize(FACES[1], (168, 168))
    found = detector.detect(canvas)
    assert found and max(b.iou(box) for b in found) > 0.4
    assert detector.detect(np.full((240, 320), 128, np.uint8)) == []
    large = cv2.resize(canvas, (640, 480), interpolation=cv2.INTER_NEAREST)  # detected at 320 px, boxes in 640 px
    found = HaarFaceDetector(max_side=320).detect(large)
    assert found and max(b.iou(Box(160, 80, 336, 336)) for b in found) > 0.4
    with pytest.raises(FileNotFoundError, match="opencv-python-headless"):
        HaarFaceDetector("no_such_cascade.xml")


def pasted_face(index: int) -> tuple[np.ndarray, Box]:
    canvas = np.full((240, 320), 128, np.uint8)
    box = Box(80, 40, 168, 168)
    canvas[box.y : box.y + box.h, box.x : box.x + box.w] = cv2.resize(np.asarray(FACES[index]), (168, 168))
    return canvas, box


@pytest.mark.parametrize("detector_class", [MTCNNFaceDetector, DlibFaceDetector])
def test_bundled_detectors_find_a_synthetic_face_and_nothing_in_a_blank_image(detector_class: type) -> None:
    detector = detector_class()
    canvas, box = pasted_face(0)
    found = detector.detect(canvas)
    assert len(found) == 1 and found[0].iou(box) > 0.5
    assert detector.detect(np.full((240, 320), 128, np.uint8)) == []
    large = cv2.resize(canvas, (640, 480), interpolation=cv2.INTER_NEAREST)  # detected at 320 px, boxes in 640 px
    found = detector_class(max_side=320).detect(large)
    assert len(found) == 1 and found[0].iou(Box(160, 80, 336, 336)) > 0.5


class _DotFinder:
    """Stands in for MTCNN: one 20-px box around the brightest pixel of the image it is given."""

    def detect_batch(self, grays: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
        found = []
        for gray in grays:
            y, x = np.unravel_index(int(np.argmax(gray)), gray.shape)
            found.append((np.array([[x - 10.0, y - 10.0, x + 10.0, y + 10.0]]), np.array([0.9])))
        return found


def test_mtcnn_angles_map_boxes_found_on_turned_copies_back_and_keep_one_per_face() -> None:
    detector = MTCNNFaceDetector(angles=[-30, 0, 30])
    detector.mtcnn = _DotFinder()
    image = np.zeros((240, 320), np.uint8)
    cv2.circle(image, (250, 60), 3, 255, cv2.FILLED)  # off centre, so a turned copy moves it
    found = detector.detect(image)
    assert len(found) == 1  # the same dot from three angles: one box
    assert abs(found[0].x + found[0].w / 2 - 250) <= 2 and abs(found[0].y + found[0].h / 2 - 60) <= 2


def test_mtcnn_angles_find_a_tilted_face_as_its_upright_box() -> None:
    canvas, box = pasted_face(0)
    (upright,) = MTCNNFaceDetector().detect(canvas)
    turn = cv2.getRotationMatrix2D((box.x + box.w / 2, box.y + box.h / 2), 35, 1.0)
    tilted = cv2.warpAffine(canvas, turn, canvas.shape[::-1], borderMode=cv2.BORDER_REPLICATE)
    (found,) = MTCNNFaceDetector(angles=[-35, 0, 35]).detect(tilted)
    centre = turn @ np.array([upright.x + upright.w / 2, upright.y + upright.h / 2, 1.0])  # where the face went
    assert np.abs(np.array([found.x + found.w / 2, found.y + found.h / 2]) - centre).max() <= 4
    assert abs(found.w - upright.w) <= 0.1 * upright.w and abs(found.h - upright.h) <= 0.1 * upright.h
    for bad in ([120], [], 15, ["up"]):
        with pytest.raises(ValueError, match=r"mtcnn.angles=.*: expected a non-empty list of degrees"):
            MTCNNFaceDetector(angles=bad)


def test_default_detector_is_the_vendored_mtcnn_and_needs_no_facenet_pytorch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "facenet_pytorch", None)  # not importable: a plain install
    cfg = predict_config("input=x")
    assert cfg.detector == "mtcnn" and isinstance(build_detector(cfg), MTCNNFaceDetector)
    assert isinstance(default_detector(), MTCNNFaceDetector)  # Predictor's when given none
    canvas, box = pasted_face(2)
    found = default_detector().detect(canvas)
    assert len(found) == 1 and found[0].iou(box) > 0.5
    with pytest.raises(ValueError, match="expected one of haar, mtcnn, dlib, whole_image"):
        build_detector(predict_config("input=x", "detector=retina"))


@pytest.mark.parametrize("thresholds", [(0.6, 0.7, 0.7), (0.05, 0.05, 0.05)])
def test_vendored_mtcnn_gives_facenet_pytorchs_boxes_and_scores(thresholds: tuple[float, float, float]) -> None:
    """The same cascade as the reference (`make install` adds facenet-pytorch for this): low thresholds push
    many boxes from blurred noise through all three stages, the default ones find the pasted synthetic faces."""
    reference = pytest.importorskip("facenet_pytorch")
    from fer_lightning.inference.mtcnn import MTCNN

    rng = np.random.default_rng(0)
    images = [cv2.GaussianBlur(rng.integers(0, 256, (240, 320), dtype=np.uint8), (0, 0), sigma) for sigma in (1, 3)]
    images += [pasted_face(index)[0] for index in range(3)]
    ours = MTCNN(min_face_size=20, thresholds=thresholds)
    theirs = reference.MTCNN(keep_all=True, min_face_size=20, thresholds=list(thresholds), post_process=False)
    found = 0
    for gray in images:
        boxes, scores = ours.detect(gray)
        expected, expected_scores = theirs.detect(np.ascontiguousarray(np.repeat(gray[..., None], 3, axis=2)))
        if expected is None:
            assert len(boxes) == 0
            continue
        order = np.argsort(-np.asarray(expected_scores, np.float64))
        mine = np.argsort(-scores.astype(np.float64))
        np.testing.assert_allclose(boxes[mine], np.asarray(expected, np.float32)[order], atol=1e-2)
        np.testing.assert_allclose(scores[mine], np.asarray(expected_scores, np.float32)[order], atol=1e-4)
        found += len(boxes)
    assert found >= 3  # the comparison covered real boxes, not only empty results


def test_mtcnn_batch_gives_each_image_its_own_boxes() -> None:
    """Turned copies go through the cascade as one batch: every image's boxes and scores must be what it gets
    alone, with none leaking between images (low thresholds: many boxes from blurred noise, and one blank image)."""
    from fer_lightning.inference.mtcnn import MTCNN

    rng = np.random.default_rng(1)
    images = [pasted_face(1)[0], cv2.GaussianBlur(rng.integers(0, 256, (240, 320), dtype=np.uint8), (0, 0), 2),
              np.full((240, 320), 128, np.uint8), pasted_face(2)[0]]
    mtcnn = MTCNN(thresholds=(0.05, 0.05, 0.05))
    batch = mtcnn.detect_batch(images)
    assert len(batch) == len(images) and sum(len(scores) for _, scores in batch) > 5
    for image, (boxes, scores) in zip(images, batch, strict=True):
        alone, alone_scores = mtcnn.detect(image)
        order, mine = np.argsort(-alone_scores), np.argsort(-scores)
        np.testing.assert_allclose(boxes[mine], alone[order], atol=1e-2)
        np.testing.assert_allclose(scores[mine], alone_scores[order], atol=1e-4)


def test_each_detector_crops_with_its_own_margin_unless_one_is_given() -> None:
    model = EvalNetwork(FERCNN()).eval()
    assert Predictor(model, AugmentProfile(), WholeImageDetector()).margin == 0.0  # the image is the crop
    assert Predictor(model, AugmentProfile(), HaarFaceDetector()).margin == 0.03
    assert Predictor(model, AugmentProfile(), HaarFaceDetector(), margin=0.2).margin == 0.2


def real_faces(n: int) -> np.ndarray:
    with gzip.open(FER_DIR / "fer2013.csv.gz", "rt") as handle:
        reader = csv.reader(handle)
        next(reader)
        return np.stack([np.array(row[1].split(), np.uint8).reshape(48, 48) for _, row in zip(range(n), reader,
                                                                                             strict=False)])


@pytest.mark.slow
@pytest.mark.skipif(not (FER_DIR / "fer2013.csv.gz").is_file(), reason="real FER-2013 not available")
def test_haar_detector_on_real_faces_pasted_into_larger_images() -> None:
    """50 real faces, two per 640x480 canvas, upscaled 2.5-4.5x at random places: found and where they were."""
    faces, rng, detector = real_faces(50), np.random.default_rng(0), HaarFaceDetector()
    found, ious = 0, []
    for pair in faces.reshape(25, 2, 48, 48):
        canvas = (rng.integers(60, 200) + rng.normal(0, 12, (480, 640))).clip(0, 255).astype(np.uint8)
        boxes = []
        for half, face in enumerate(pair):
            side = int(rng.integers(120, 216))
            box = Box(half * 320 + int(rng.integers(0, 320 - side)), int(rng.integers(0, 480 - side)), side, side)
            canvas[box.y : box.y + side, box.x : box.x + side] = cv2.resize(face, (side, side),
                                                                            interpolation=cv2.INTER_CUBIC)
            boxes.append(box)
        detected = detector.detect(canvas)
        for box in boxes:
            best = max((d.iou(box) for d in detected), default=0.0)
            found += best > 0.4
            ious.append(best)
    print(f"Haar: {found}/50 real faces found, median IoU {np.median(ious):.2f}")
    assert found >= 35, f"found {found} of 50 real faces"  # 70 %
    assert np.median([v for v in ious if v > 0]) > 0.6


def test_a_partly_readable_video_gets_a_note_with_the_frames_it_could_read(
    tiny_checkpoint: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    video = tmp_path / "damaged.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (64, 64))
    for i in range(20):
        writer.write(np.full((64, 64, 3), 10 * i, np.uint8))
    writer.release()
    data = video.read_bytes()
    n = len(data)
    video.write_bytes(data[: n // 2] + bytes(n // 4) + data[n // 2 + n // 4:])  # header and index kept
    readable = count_frames(video)
    assert 0 < readable < 19

    cfg = predict_config(f"ckpt_path={tiny_checkpoint}", f"input={video}", f"output_dir={tmp_path / 'out'}",
                         "progress=false", "annotate=false")
    with caplog.at_level(logging.WARNING, logger="fer_lightning.inference.pipeline"):
        summary = predict(cfg, detector=FakeDetector({}))
    assert summary["items"] == readable
    assert [r.getMessage() for r in caplog.records if "announces" in r.getMessage()] == [
        f"{video}: decoded {readable} of the 20 frames the file announces (damaged or truncated); the results "
        f"cover those {readable}"]
