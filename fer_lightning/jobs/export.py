"""The export job behind `python -m fer_lightning.export`: a network to ONNX or TorchScript (float32 NCHW logits,
dynamic batch), its preprocessing contract in a JSON sidecar and the file's metadata. Nothing is left at `output`
unless the export completed and (with `verify`) reproduced PyTorch."""

from __future__ import annotations

import copy
import datetime as dt
import io
import json
import logging
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import OmegaConf
from torch import nn

from fer_lightning import schema
from fer_lightning.atomicio import atomic_open
from fer_lightning.checkpoint import LoadedCheckpoint, load_classifier
from fer_lightning.data.augment import BatchAugment
from fer_lightning.data.synthetic import generate_faces
from fer_lightning.inference.exported import ExportedModel, preprocessing_contract, sidecar_path
from fer_lightning.inference.loading import EvalNetwork
from fer_lightning.release import sha256
from fer_lightning.runrecord import atomic_write_json, environment_info, package_versions

log = logging.getLogger(__name__)

FORMATS = {"onnx": ".onnx", "torchscript": ".pt"}
INPUT_NAME, OUTPUT_NAME = "input", "logits"
CONTRACT_KEY = "fer_lightning.contract"  # ONNX metadata_props key / TorchScript extra file stem
VERIFY_TOLERANCE = 1e-4


class ExportError(RuntimeError):
    """The export ran but the exported model does not reproduce PyTorch's probabilities."""


def build_contract(loaded: LoadedCheckpoint, fmt: str, output: Path, fold_tta: bool, opset: int) -> dict[str, Any]:
    """Everything a consumer needs besides the weights: input/output spec, preprocessing, classes, TTA, origin."""
    environment = environment_info()
    pre = preprocessing_contract(loaded.profile, loaded.model.class_names, loaded.model.hparams.tta)
    return {
        "format": fmt, "file": output.name,
        "input": {"name": INPUT_NAME, "shape": pre["input_shape"], "dtype": "float32", "layout": "NCHW",
                  "dynamic_axes": {"0": "batch"}},
        "output": {"name": OUTPUT_NAME, "shape": ["batch", len(loaded.model.class_names)], "dtype": "float32",
                   "meaning": "logits in class_names order; softmax over the last axis gives probabilities"},
        "preprocessing": pre, "class_names": list(loaded.model.class_names), "tta_folded": fold_tta,
        "opset": opset if fmt == "onnx" else None,
        "source_checkpoint": {"path": str(loaded.path.resolve()), "sha256": sha256(loaded.path),
                              "epoch": loaded.epoch, "network": loaded.config.model.net._target_},
        "versions": {**environment["versions"], **package_versions("onnx", "onnxruntime", "onnxscript")},
        "git_commit": environment["git_commit"],
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }


def _export_onnx(module: nn.Module, example: torch.Tensor, contract: dict[str, Any], opset: int) -> bytes:
    """torch.export-based exporter (onnxscript), dynamic batch; the contract goes into metadata_props."""
    import onnx

    for name in ("onnxscript", "onnx_ir", "torch.onnx"):  # their INFO lines (and handled tracebacks) flood the log
        logging.getLogger(name).setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(module, (example,), dynamo=True, input_names=[INPUT_NAME],
                                    output_names=[OUTPUT_NAME], opset_version=opset, external_data=False, verbose=False,
                                    dynamic_shapes=({0: torch.export.Dim("batch", min=1, max=65536)},))
    proto = program.model_proto
    written = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), None)
    if written != opset:  # the exporter may write another opset than asked for: record what the file holds
        log.warning("export: opset=%s requested, the ONNX exporter wrote opset %s; the contract records %s",
                    opset, written, written)
    contract["opset"], contract["opset_requested"] = written, opset
    shown = {**contract["preprocessing"], **contract}  # the contract, and its main keys one by one for viewers
    onnx.helper.set_model_props(proto, {CONTRACT_KEY: json.dumps(contract), **{key: json.dumps(shown[key]) for key in (
        "class_names", "image_size", "channels", "mean", "std", "interpolation", "tta", "tta_folded")}})
    onnx.checker.check_model(proto)
    return proto.SerializeToString()


def _export_torchscript(module: nn.Module, example: torch.Tensor, contract: dict[str, Any]) -> bytes:
    """torch.jit.trace with the contract as an extra file, saved to memory: torch's file writer aborts the process on
    a full disk, Python's write raises ENOSPC."""
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        traced = torch.jit.trace(module, example, check_trace=False)  # `verify` compares with PyTorch instead
        torch.jit.save(traced, buffer, _extra_files={f"{CONTRACT_KEY}.json": json.dumps(contract)})
    return buffer.getvalue()


def verify(loaded: LoadedCheckpoint, output: Path, n: int = 16) -> dict[str, Any]:
    """Largest |p_exported - p_pytorch| over n synthetic faces, at batch n and at batch 1 (the dynamic axis)."""
    faces = torch.from_numpy(generate_faces(n, seed=0).images)
    x = BatchAugment(loaded.profile).eval(faces)
    with torch.inference_mode():
        reference = loaded.model.evaluation_logits(x).softmax(dim=-1).numpy()
    exported = ExportedModel(output)
    batch = exported.probabilities(faces.numpy())  # from uint8 faces: the consumer's path, preprocessing included
    single = exported.input_probabilities(x[:1].numpy())
    diff = float(max(np.abs(batch - reference).max(), np.abs(single - reference[:1]).max()))
    return {"faces": n, "batch_sizes": [n, 1], "max_abs_prob_diff": diff, "tolerance": VERIFY_TOLERANCE}


def export_checkpoint(ckpt_path: str | Path, fmt: str, output: str | Path, fold_tta: bool = True, opset: int = 18,
                      check: bool = True) -> dict[str, Any]:
    """`output` and `<output>.json` (returned), written and verified beside `output`, moved into place when done;
    the arguments are checked by the CLI's rules (the schema), which the command line ran before Hydra started."""
    schema.check(OmegaConf.create({"ckpt_path": None if ckpt_path is None else str(ckpt_path), "format": fmt,
                                   "fold_tta": fold_tta, "opset": opset, "verify": check}), "export")
    loaded = load_classifier(ckpt_path)
    output = Path(output)
    if output.is_dir():
        raise ValueError(f"output={output}: is a directory; expected a file name, e.g. output={output / 'model.onnx'}")
    output.parent.mkdir(parents=True, exist_ok=True)
    net = copy.deepcopy(loaded.model.net).float().to(memory_format=torch.contiguous_format).eval()
    tta = tuple(loaded.model.hparams.tta)
    if "ten_crop" in tta and not fold_tta:  # the contract's runtimes apply identity/hflip views only
        raise ValueError(f"{ckpt_path}: model.tta={list(tta)} includes ten_crop, which exported runtimes do not "
                         "apply; export with fold_tta=true")
    views = tta if fold_tta else ("identity",)
    module = EvalNetwork(net, views, loaded.model.hparams.tta_crop, channels_last=False).eval()
    example = torch.zeros(2, loaded.profile.channels, loaded.profile.image_size, loaded.profile.image_size)
    contract = build_contract(loaded, fmt, output, fold_tta, opset)
    data = (_export_onnx(module, example, contract, opset) if fmt == "onnx"
            else _export_torchscript(module, example, contract))
    with tempfile.TemporaryDirectory(dir=output.parent, prefix=f".{output.name}.") as work:
        staged = Path(work) / output.name
        with atomic_open(staged) as handle:  # a full disk: one "no space left" line, no partial file
            handle.write(data)
        atomic_write_json(sidecar_path(staged), contract)
        if check:
            contract["verification"] = verify(loaded, staged)
            diff = contract["verification"]["max_abs_prob_diff"]
            if diff > VERIFY_TOLERANCE:
                raise ExportError(f"{output}: exported probabilities differ from PyTorch by {diff:.2e} "
                                  f"(> {VERIFY_TOLERANCE:g}); nothing was written")
            atomic_write_json(sidecar_path(staged), contract)
            log.info("verified: max |p_%s - p_pytorch| = %.2e over %d synthetic faces", fmt, diff,
                     contract["verification"]["faces"])
        os.replace(staged, output)
        os.replace(sidecar_path(staged), sidecar_path(output))
    log.info("exported %s (%s, TTA %s) and its contract %s", output, fmt,
             "folded in" if fold_tta else f"recorded: {contract['preprocessing']['tta']}", sidecar_path(output))
    return contract
