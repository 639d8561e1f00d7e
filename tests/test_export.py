"""Export: ONNX Runtime and TorchScript reproduce PyTorch's probabilities; the contract says how to get there."""

from __future__ import annotations

import json
import sys
import zipfile
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from hydra.core.global_hydra import GlobalHydra

from fer_lightning.checkpoint import CheckpointError, LoadedCheckpoint, load_classifier
from fer_lightning.data.augment import BatchAugment
from fer_lightning.data.synthetic import generate_faces
from fer_lightning.export import main
from fer_lightning.inference.exported import ExportedModel, preprocess, sidecar_path
from fer_lightning.jobs.export import CONTRACT_KEY, export_checkpoint

FACES = torch.from_numpy(generate_faces(9, seed=11).images)


@pytest.fixture(scope="module")
def loaded(tiny_checkpoint: Path) -> LoadedCheckpoint:
    return load_classifier(tiny_checkpoint)


def reference(loaded: LoadedCheckpoint, faces: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """(network input, PyTorch probabilities with the checkpoint's TTA)."""
    x = BatchAugment(loaded.profile).eval(faces)
    with torch.inference_mode():
        return x.numpy(), loaded.model.evaluation_logits(x).softmax(-1).numpy()


def test_onnx_runtime_matches_pytorch_with_tta_from_the_contract(loaded: LoadedCheckpoint, tmp_path: Path) -> None:
    output = tmp_path / "fer.onnx"
    contract = export_checkpoint(loaded.path, "onnx", output, fold_tta=False)
    assert contract["verification"]["max_abs_prob_diff"] <= 1e-4
    exported = ExportedModel(output)
    for batch in (1, 4, 9):  # dynamic batch axis
        x, expected = reference(loaded, FACES[:batch])
        assert exported.input_probabilities(x).shape == (batch, 7)
        assert np.abs(exported.input_probabilities(x) - expected).max() <= 1e-4
        # the same uint8 crops Predictor.probabilities takes, preprocessed by the contract
        assert np.abs(exported.probabilities(FACES[:batch].numpy()) - expected).max() <= 1e-4
    with pytest.raises(ValueError, match="expected uint8 faces"):
        exported.probabilities(x)
    # a consumer with onnxruntime alone: plain logits of the network, no TTA in the graph
    session = ort.InferenceSession(str(output), providers=["CPUExecutionProvider"])
    x, _ = reference(loaded, FACES[:5])
    (logits,) = session.run(["logits"], {"input": x})
    with torch.inference_mode():
        assert np.abs(logits - loaded.model.net(torch.from_numpy(x)).numpy()).max() <= 1e-4
    assert session.get_inputs()[0].shape[0] == "batch"

    props = {p.key: p.value for p in onnx.load(str(output)).metadata_props}
    embedded = json.loads(props[CONTRACT_KEY])
    sidecar = json.loads(sidecar_path(output).read_text())
    assert embedded["preprocessing"] == sidecar["preprocessing"] == contract["preprocessing"]
    assert json.loads(props["tta"]) == ["identity", "hflip"] and json.loads(props["tta_folded"]) is False
    assert json.loads(props["mean"]) == [0.5] and json.loads(props["image_size"]) == 48
    assert sidecar["class_names"] == list(loaded.model.class_names) and sidecar["input"]["shape"][1:] == [1, 48, 48]
    assert sidecar["source_checkpoint"]["epoch"] == loaded.epoch and len(sidecar["source_checkpoint"]["sha256"]) == 64
    assert sidecar["versions"]["onnxruntime"] and sidecar["versions"]["torch"]


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:FutureWarning")
def test_torchscript_with_folded_tta_matches_pytorch(loaded: LoadedCheckpoint, tmp_path: Path) -> None:
    output = tmp_path / "fer.pt"
    contract = export_checkpoint(loaded.path, "torchscript", output, check=False)  # folded by default; checked below
    assert contract["tta_folded"] is True
    module = torch.jit.load(str(output))
    for batch in (1, 9):
        x, expected = reference(loaded, FACES[:batch])
        with torch.inference_mode():
            probs = module(torch.from_numpy(x)).softmax(-1).numpy()  # one call: the TTA is in the graph
        assert np.abs(probs - expected).max() <= 1e-4
    with zipfile.ZipFile(output) as archive:
        name = next(n for n in archive.namelist() if n.endswith(f"extra/{CONTRACT_KEY}.json"))
        assert json.loads(archive.read(name))["preprocessing"]["tta"] == ["identity", "hflip"]


def test_the_contract_alone_reproduces_the_network_input(loaded: LoadedCheckpoint, tmp_path: Path) -> None:
    output = tmp_path / "fer.pt"
    contract = export_checkpoint(loaded.path, "torchscript", output, fold_tta=False, check=False)
    x, _ = reference(loaded, FACES)
    assert np.allclose(preprocess(FACES.numpy(), contract), x, atol=1e-6)  # numpy, from the JSON only
    assert "verification" not in contract
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fer.pt", "fer.pt.json"]  # no temp files left


def test_export_entry_point_writes_into_its_run_directory(tiny_checkpoint: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["fer_lightning.export", f"ckpt_path={tiny_checkpoint}", "format=torchscript", "verify=false",
            f"hydra.run.dir={tmp_path}", "hydra/job_logging=none", "hydra/hydra_logging=none"]
    monkeypatch.setattr(sys, "argv", argv)
    GlobalHydra.instance().clear()
    main()
    assert json.loads((tmp_path / "model.pt.json").read_text())["file"] == "model.pt"
    monkeypatch.setattr(sys, "argv", [argv[0], "format=tflite", *argv[3:]])
    GlobalHydra.instance().clear()
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.startswith("export: error: ckpt_path=... is required")


def test_export_errors_are_one_line(tmp_path: Path, tiny_checkpoint: Path) -> None:
    with pytest.raises(CheckpointError, match="no such checkpoint file"):
        export_checkpoint(tmp_path / "missing.ckpt", "onnx", tmp_path / "m.onnx")
    with pytest.raises(ValueError, match="^format=tflite: expected one of onnx, torchscript$"):
        export_checkpoint(tiny_checkpoint, "tflite", tmp_path / "m.tflite")
    assert not list(tmp_path.iterdir())


def test_the_contract_records_the_opset_the_file_holds(loaded: LoadedCheckpoint, tmp_path: Path) -> None:
    """The exporter writes opset 18 or newer: an older one is refused up front (by the schema's rule, as on the
    command line), a newer one is what the file holds."""
    for opset in (0, 7, 17, 99):
        with pytest.raises(ValueError, match=rf"^opset={opset}: expected an integer >= 18 and <= 23$"):
            export_checkpoint(loaded.path, "onnx", tmp_path / "old.onnx", opset=opset)
    assert not list(tmp_path.iterdir())
    output = tmp_path / "fer19.onnx"
    contract = export_checkpoint(loaded.path, "onnx", output, opset=19, check=False)
    written = next(o.version for o in onnx.load(str(output)).opset_import if o.domain in ("", "ai.onnx"))
    sidecar = json.loads(sidecar_path(output).read_text())
    assert contract["opset"] == sidecar["opset"] == written == 19 and sidecar["opset_requested"] == 19
