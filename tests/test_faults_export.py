"""Export under faults: a ResNet18 (resized input) exports and verifies, a failed verification or a full disk
leaves nothing behind, and the README's command exports the released model as written."""

from __future__ import annotations

import errno
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from hydra.core.global_hydra import GlobalHydra

from fer_lightning import atomicio
from fer_lightning.checkpoint import load_classifier
from fer_lightning.data.synthetic import generate_faces
from fer_lightning.export import main
from fer_lightning.inference.exported import ExportedModel
from fer_lightning.jobs import export as exporting
from tests.faults_helpers import constructed_checkpoint


@pytest.fixture(scope="module")
def cnn_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return constructed_checkpoint(tmp_path_factory.mktemp("cnn") / "cnn.ckpt", "model.tta=[identity,hflip]")


def test_a_resnet18_checkpoint_exports_and_verifies(tmp_path: Path) -> None:
    """Its profile resizes 48 -> image_size (bicubic): the contract's numpy preprocessing must do the same."""
    ckpt = constructed_checkpoint(tmp_path / "r18.ckpt", "model=resnet18", "model.net.weights=null",
                                  "augment.image_size=64")
    output = tmp_path / "out" / "r18.onnx"
    contract = exporting.export_checkpoint(ckpt, "onnx", output)
    assert contract["verification"]["max_abs_prob_diff"] <= 1e-4
    assert contract["preprocessing"]["image_size"] == 64 and contract["preprocessing"]["channels"] == 3
    faces = generate_faces(3, seed=5).images
    from fer_lightning.inference import Predictor

    expected = Predictor.from_checkpoint(ckpt).probabilities(faces)
    assert np.abs(ExportedModel(output).probabilities(faces) - expected).max() <= 1e-4


def test_a_failed_verification_leaves_no_output(cnn_ckpt: Path, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(exporting, "VERIFY_TOLERANCE", -1.0)
    with pytest.raises(exporting.ExportError, match="nothing was written"):
        exporting.export_checkpoint(cnn_ckpt, "torchscript", tmp_path / "m.pt")
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
def test_a_full_disk_is_one_line_and_leaves_no_temp_file(cnn_ckpt: Path, tmp_path: Path, fmt: str,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(atomicio.os, "fsync", full)
    with pytest.raises(OSError, match="no space left") as info:
        exporting.export_checkpoint(cnn_ckpt, fmt, tmp_path / f"m.{fmt}", check=False)
    assert info.value.errno == errno.ENOSPC and "\n" not in str(info.value) and ".tmp" not in str(info.value)
    assert not list(tmp_path.iterdir())


def test_an_output_that_is_a_directory_is_named_not_its_temp_file(tmp_path: Path) -> None:
    (tmp_path / "table.csv").mkdir()
    with pytest.raises(IsADirectoryError) as info:
        atomicio.atomic_write_text(tmp_path / "table.csv", "a,b\n")
    assert str(info.value) == f"{tmp_path / 'table.csv'}: is a directory; expected a file name to write"
    assert [p.name for p in tmp_path.iterdir()] == ["table.csv"]


@pytest.mark.slow
def test_the_readmes_export_command_works_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`python -m fer_lightning.export ckpt_path=pretrained format=onnx`: the released ten-crop TTA is folded."""
    monkeypatch.setattr(sys, "argv", ["fer_lightning.export", "ckpt_path=pretrained", "format=onnx",
                                      f"hydra.run.dir={tmp_path}", "hydra/job_logging=none"])
    GlobalHydra.instance().clear()
    main()
    contract = json.loads((tmp_path / "model.onnx.json").read_text())
    assert contract["tta_folded"] is True and "ten_crop" in contract["preprocessing"]["tta"]
    assert contract["verification"]["max_abs_prob_diff"] <= 1e-4
    faces = generate_faces(4, seed=2026).images
    from fer_lightning.inference import Predictor

    expected = Predictor.from_checkpoint(load_classifier("pretrained").path).probabilities(faces)
    assert np.abs(ExportedModel(tmp_path / "model.onnx").probabilities(faces) - expected).max() <= 1e-4
