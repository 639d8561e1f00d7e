"""predict as a person runs it: a bare path, its own --help, inputs checked before torch loads, a result per line on
the terminal, nothing written by a failed run; and inference that loads without Lightning."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig

from fer_lightning.checkpoint import load_classifier
from fer_lightning.cli import run_checked
from fer_lightning.data.augment import AugmentProfile, BatchAugment
from fer_lightning.data.synthetic import generate_faces
from fer_lightning.inference import Predictor, WholeImageDetector
from fer_lightning.inference.loading import EvalNetwork, load_network
from fer_lightning.jobs.predict import set_threads
from fer_lightning.models import FERCNN
from fer_lightning.predict import command_line, options_help, run
from fer_lightning.tta import ten_crops

FACES = generate_faces(6, seed=11).images  # uint8 [6, 48, 48]
REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("crop", [0.9, 0.875, 0.5])
def test_ten_crops_are_torchvisions_ten_crop(crop: float) -> None:
    from torchvision.transforms.v2.functional import ten_crop

    x = torch.randn(2, 1, 48, 40)
    side = [max(1, round(crop * 48)), max(1, round(crop * 40))]
    expected = [F.interpolate(c, size=(48, 40), mode="bilinear", align_corners=False) for c in ten_crop(x, side)]
    assert all(torch.equal(a, b) for a, b in zip(ten_crops(x, crop), expected, strict=True))


@pytest.mark.parametrize("tta", [["identity", "hflip"], ["identity", "hflip", "ten_crop"]])
def test_lightning_free_loader_gives_the_classifiers_probabilities_bit_for_bit(tiny_checkpoint: Path,
                                                                               tta: list[str]) -> None:
    classifier, loaded = load_classifier(tiny_checkpoint), load_network(tiny_checkpoint)
    classifier.model.set_tta(tta)
    classifier.model.net.to(memory_format=torch.channels_last)  # as the Predictor used to
    loaded.network.tta = tta
    assert loaded.profile == classifier.profile and loaded.network.class_names == classifier.model.class_names
    with torch.inference_mode():
        x = BatchAugment(loaded.profile).eval(torch.from_numpy(FACES))
        assert torch.equal(loaded.network(x), classifier.model.evaluation_logits(x))


def test_inference_never_imports_lightning_torchmetrics_hydra_or_torchvision(tmp_path: Path) -> None:
    cv2.imwrite(str(tmp_path / "face.png"), FACES[0])
    code = f"""
import sys
from fer_lightning.inference import Predictor, WholeImageDetector
from fer_lightning.inference.exported import ExportedModel
faces = Predictor.from_pretrained(WholeImageDetector()).predict({str(tmp_path / "face.png")!r})
assert len(faces) == 1 and 0 < faces[0].score <= 1
print(sorted(m for m in ("lightning", "pytorch_lightning", "torchmetrics", "hydra", "torchvision", "matplotlib")
             if m in sys.modules))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]", done.stdout + done.stderr


def test_predictor_rejects_bad_arguments_naming_them() -> None:
    network = EvalNetwork(FERCNN())
    for kwargs, name in (({"batch_size": 0}, "batch_size=0"), ({"margin": -1}, "margin=-1"),
                         ({"device": "foo"}, "device=foo"), ({"precision": "fp16"}, "precision='fp16'")):
        with pytest.raises(ValueError, match=f"^{name}"):
            Predictor(network, AugmentProfile(), WholeImageDetector(), **kwargs)
    predictor = Predictor(network, AugmentProfile(), WholeImageDetector())
    with pytest.raises(ValueError, match="^channel_order='foo': expected one of bgr, rgb"):
        predictor.predict(np.zeros((48, 48, 3), np.uint8), channel_order="foo")
    with pytest.raises(ValueError, match=r"^faces: expected uint8 gray crops \[N, 48, 48\].* got uint8 \[2, 64, 64\]"):
        predictor.probabilities(np.zeros((2, 64, 64), np.uint8))
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="^device=cuda: torch finds no such device"):
            Predictor.from_checkpoint("pretrained", device="cuda")


def test_a_bare_path_is_the_input() -> None:
    assert command_line(["photo.jpg", "threads=1"]) == ["input='photo.jpg'", "threads=1"]
    assert command_line(["it's here.jpg"]) == ["input='it\\'s here.jpg'"]
    assert command_line(["--cfg", "job", "input=a.jpg"]) == ["--cfg", "job", "input=a.jpg"]
    with pytest.raises(ValueError, match="^a.jpg b.jpg: give one input"):
        command_line(["a.jpg", "b.jpg"])


def test_help_lists_predicts_own_options(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys, "argv", ["fer_lightning.predict", "--help"])
    run()
    shown = capsys.readouterr().out
    assert shown == options_help() and shown.startswith("usage: python -m fer_lightning.predict PHOTO")
    for key in ("input:", "ckpt_path:", "output_dir:", "detector:", "threads:", "device:", "min_confidence:"):
        assert f"\n{key}" in shown or f"  {key}" in shown, key
    assert "optimizer" not in shown and "launcher" not in shown and "job_logging" not in shown


def run_predict(monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    """The command line in this process, as `python -m fer_lightning.predict ARGS` runs it; its exit status."""
    monkeypatch.setattr(sys, "argv", ["fer_lightning.predict", *args, "hydra/hydra_logging=none",
                                      "hydra/job_logging=none"])
    GlobalHydra.instance().clear()
    try:
        run()
    except SystemExit as error:
        return int(error.code or 0)
    return 0


def test_failures_are_one_line_and_write_nothing(tiny_checkpoint: Path, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    earlier = tmp_path / "earlier"
    earlier.mkdir()
    (earlier / "predictions.csv").write_text("earlier results\n")
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes.txt").write_text("no image")
    cv2.imwrite(str(tmp_path / "face.png"), FACES[0])
    cases = [
        ([f"input={tmp_path}/nope.jpg"], "predict: error: input=", "nope.jpg: no such file or folder"),
        (["input=empty", f"output_dir={earlier}", f"ckpt_path={tiny_checkpoint}"], "predict: error: input=empty",
         "no image or video found there"),
        (["notes.txt", f"output_dir={earlier}", f"ckpt_path={tiny_checkpoint}", "detector=whole_image"],
         "predict: error: input=notes.txt: none of the 1 inputs could be read", "cannot decode image"),
        (["face.png", "device=foo"], "predict: error: device=foo", "expected cpu, cuda"),
        (["face.png", "threads=0"], "predict: error: threads=0", "expected an integer >= 1"),
        (["a.png", "b.png"], "predict: error: a.png b.png: give one input", ""),
    ]
    if not torch.cuda.is_available():
        cases.append((["face.png", "device=cuda"], "predict: error: device=cuda", "use device=cpu"))
    for args, start, middle in cases:
        assert run_predict(monkeypatch, *args) == 2, args
        err = capsys.readouterr().err  # an unreadable file's own log line may come first
        last = err.splitlines()[-1]
        assert last.startswith(start) and middle in last and "Traceback" not in err, (args, err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["earlier", "empty", "face.png", "notes.txt"]
    assert [p.name for p in earlier.iterdir()] == ["predictions.csv"]
    assert (earlier / "predictions.csv").read_text() == "earlier results\n"


def test_one_run_gets_the_config_the_check_composed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No third composition by Hydra's run: the checked config reaches the job through hydra.main's pass-through,
    with HydraConfig set as a Hydra run sets it; a command that only prints still goes to Hydra."""
    cv2.imwrite(str(tmp_path / "face.png"), FACES[0])
    monkeypatch.chdir(tmp_path)
    calls: list[object] = []
    for args in (["input=face.png", "detector=haar", "hydra/job_logging=none"], ["--cfg", "job", "input=face.png"]):
        monkeypatch.setattr(sys, "argv", ["fer_lightning.predict", *args])
        GlobalHydra.instance().clear()
        run_checked(lambda cfg=None: calls.append(cfg), "predict", composed=True)
    task, printed = calls
    assert printed is None
    assert task.input == "face.png" and task.detector == "haar" and "hydra" not in task
    assert HydraConfig.get().run.dir == "." and HydraConfig.get().output_subdir is None
    assert not list(tmp_path.glob("outputs"))


def test_a_missing_input_fails_before_torch_loads(tmp_path: Path) -> None:
    code = """
import sys
sys.argv = ["fer_lightning.predict", "input=/nope/photo.jpg"]
from fer_lightning.predict import run
try:
    run()
except SystemExit as error:
    print(error.code, "torch" in sys.modules)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, check=True)
    assert done.stdout.strip() == "2 False", done.stdout + done.stderr
    assert done.stderr == "predict: error: input=/nope/photo.jpg: no such file or folder (nothing was written)\n"
    assert not list(tmp_path.iterdir())


def test_terminal_shows_results_and_the_log_file_keeps_the_records(tmp_path: Path) -> None:
    """The command as a user types it, in a fresh interpreter: one result line per image, no Hydra folders."""
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(2):
        cv2.imwrite(str(photos / f"face{i}.png"), FACES[i])
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-m", "fer_lightning.predict", "photos", f"output_dir={out}",
                           "detector=whole_image", "threads=1", "progress=false"],
                          capture_output=True, text=True, cwd=tmp_path, env=env, check=True)
    lines = done.stdout.splitlines()
    results = [line for line in lines if line.startswith("photos/")]
    assert len(results) == 2 and "[INFO]" not in done.stdout, done.stdout
    assert results[0].startswith("photos/face0.png: ") and results[0].endswith(" at x=0 y=0 48x48")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "photos"]  # no ./outputs, no .hydra
    assert sorted(p.name for p in out.iterdir()) == ["annotated", "predict.log", "predictions.csv",
                                                      "predictions.json"]
    logged = (out / "predict.log").read_text()
    assert "[fer_lightning.inference.pipeline.results][INFO] - " + results[0] in logged
    assert json.loads((out / "predictions.json").read_text())["threads"] == 1


@pytest.mark.parametrize(("cores", "load", "expected"), [(2, 0.1, 2), (8, 0.0, 4), (8, 5.6, 2), (2, 12.0, 1)])
def test_default_threads_are_the_idle_cores_at_most_four(monkeypatch: pytest.MonkeyPatch, cores: int, load: float,
                                                         expected: int) -> None:
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cores)))
    monkeypatch.setattr(os, "getloadavg", lambda: (load, load, load))
    assert set_threads(None) == expected == torch.get_num_threads() and cv2.getNumThreads() == expected
    assert set_threads(3) == 3 == torch.get_num_threads()
