"""The released model: one trained checkpoint shipped inside the package, with its card.

`python -m fer_lightning.release RUN_DIR` writes a stripped copy of a run's own checkpoint (no optimizer state) and a
JSON card beside it (recipe, command, commit, seed, data, val numbers, sha256); `ckpt_path=pretrained` loads it."""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from fer_lightning.atomicio import atomic_open
from fer_lightning.inference.loading import read_checkpoint
from fer_lightning.pretrained import PRETRAINED, RELEASED_PATH, card_path, released_card
from fer_lightning.runrecord import RECORD_NAME, atomic_write_json, read_json
from fer_lightning.tta import check_views

__all__ = ["PRETRAINED", "RELEASED_PATH", "card_path", "make_release", "released_card"]
MAX_BYTES = 3 * 1024 * 1024


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def completed_record(run_dir: Path) -> dict[str, Any]:
    """The run's record; only a completed run has the numbers a card quotes."""
    record = read_json(run_dir / RECORD_NAME, "the record of a training run")
    if record.get("status") != "completed":
        raise ValueError(f"{run_dir / RECORD_NAME}: status {record.get('status')!r}; release a completed run")
    if not isinstance(record.get("val"), dict):
        raise ValueError(f"{run_dir / RECORD_NAME}: no val metrics (validation did not run); the card needs them")
    return record


def data_description(config: dict[str, Any], record: dict[str, Any]) -> str:
    """What the run was trained and selected on, from its config and record (not a fixed FER-2013 text)."""
    data, val_images = config.get("data") or {}, record["val"].get("support")
    if data.get("path"):
        return f"{Path(data['path']).name}: its train split; selected on its val split ({val_images:,} images)"
    synthetic = data.get("synthetic") or {}
    return (f"synthetic faces (fer_lightning.data.synthetic, seed {synthetic.get('seed', 0)}): "
            f"{synthetic.get('n_train', 0):,} train; selected on {val_images:,} val images")


def make_release(run_dir: Path, ckpt: Path, out: Path, tta: Sequence[str],
                 extra_results: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write the stripped checkpoint (what inference needs: the evaluated weights in fp32, hyper-parameters with the
    released views, config, epoch) and its card, both atomically; return the card."""
    check_views(tta, key="--tta")
    record, checkpoint = completed_record(run_dir), read_checkpoint(ckpt)
    config = checkpoint["fer_lightning"]["config"]
    # the card quotes the run's numbers: the weights must be that run's (inside it, or written by it)
    written_in, run = config.get("paths", {}).get("output_dir"), run_dir.resolve()
    if run not in ckpt.resolve().parents and (not written_in or Path(written_in).resolve() != run):
        raise ValueError(f"--ckpt {ckpt}: not a checkpoint of {run_dir} (written by the run in {written_in}); "
                         "release each run with its own checkpoint")
    hparams = {**checkpoint.get("hyper_parameters", {}), "tta": list(tta), "compile": False}
    state = {k: v.float() if v.is_floating_point() else v for k, v in checkpoint["state_dict"].items()}
    buffer = io.BytesIO()
    torch.save({"state_dict": state, "hyper_parameters": hparams, "epoch": checkpoint.get("epoch"),
                "fer_lightning": checkpoint["fer_lightning"]}, buffer)
    if buffer.tell() > MAX_BYTES:
        raise ValueError(f"{ckpt}: the released file would be {buffer.tell()} bytes (> {MAX_BYTES})")
    with atomic_open(out) as handle:
        handle.write(buffer.getvalue())
    val = record["val"]
    card = {"name": out.stem, "file": out.name, "sha256": sha256(out), "bytes": out.stat().st_size,
            "network": config["model"]["net"]["_target_"].rsplit(".", 1)[-1],
            "parameters": record["model"]["parameters"], "classes": list(hparams.get("class_names", [])),
            "input": {k: config["augment"][k] for k in ("image_size", "channels", "mean", "std")}, "tta": list(tta),
            "recipe": recipe_name(record, config),
            "command": "python -m fer_lightning.train " + " ".join(record.get("overrides") or []),
            "seed": record.get("seed"), "git_commit": record.get("git_commit"),
            "trained_on": data_description(config, record), "teacher": teacher_description(config),
            "epoch": checkpoint.get("epoch"), "fit_time_s": record.get("fit_time_s"), "machine": record.get("machine"),
            "val": {"split": "val", "images": val.get("support"), "tta": record.get("evaluated", {}).get("tta"),
                    "accuracy": val["accuracy"], "macro_f1": val["macro_f1"]},
            **(extra_results or {})}
    atomic_write_json(card_path(out), card)
    return card


def teacher_description(config: dict[str, Any]) -> dict[str, Any] | None:
    """A distilled model's teacher (checkpoints, mode, loss weight, temperature); None for labels alone."""
    if not (distill := config.get("distill")):
        return None
    teachers = distill["teachers"]
    return {"checkpoints": teachers if isinstance(teachers, list) else [teachers],
            **{key: distill.get(key) for key in ("mode", "weight", "temperature", "tta")}}


def recipe_name(record: dict[str, Any], config: dict[str, Any]) -> str | None:
    """The run's `experiment=` (a renamed task_name such as cnn_best_seed1 is a run's label, not its recipe)."""
    chosen = [o.partition("=")[2] for o in record.get("overrides") or [] if o.startswith("experiment=")]
    return chosen[0] if chosen else config.get("task_name")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fer_lightning.release", description=__doc__.split("\n")[0])
    parser.add_argument("run_dir", type=Path, help="a completed training run directory (its metrics.json)")
    parser.add_argument("--ckpt", type=Path, help="checkpoint inside it (default: the one metrics.json evaluated)")
    parser.add_argument("--tta", default="identity,hflip", help="views the released model applies (default: flip)")
    parser.add_argument("--out", type=Path, default=RELEASED_PATH)
    parser.add_argument("--note", default="", help="free text for the card (e.g. how the run was made)")
    parser.add_argument("--result", action="append", default=[], metavar="KEY=EVALUATION_JSON",
                        help="add an evaluate run's numbers to the card, e.g. val_flip=outputs/.../val_evaluation.json")
    args = parser.parse_args(argv)
    try:
        record = completed_record(args.run_dir)
        if not (ckpt := args.ckpt or (record.get("evaluated") or {}).get("ckpt_path")):
            raise ValueError(f"{args.run_dir / RECORD_NAME}: names no evaluated checkpoint; pass --ckpt <its .ckpt>")
        extra = {}
        for item in args.result:
            key, _, path = item.partition("=")
            if not key or not path:
                raise ValueError(f"--result {item}: expected KEY=EVALUATION_JSON, e.g. "
                                 "val_flip=outputs/evaluations/.../val_evaluation.json")
            evaluation = read_json(Path(path), "an evaluate record ({split}_evaluation.json)")
            if not {"split", "tta", "report"} <= evaluation.keys():
                raise ValueError(f"{path}: not an evaluate record (it lacks split, tta or report); expected a "
                                 "{split}_evaluation.json written by fer_lightning.evaluate")
            extra[key] = {"split": evaluation["split"], "tta": evaluation["tta"],
                          "accuracy": evaluation["report"]["accuracy"], "macro_f1": evaluation["report"]["macro_f1"],
                          **({"bootstrap": evaluation["bootstrap"]} if "bootstrap" in evaluation else {})}
        if args.note:
            extra["note"] = args.note
        card = make_release(args.run_dir, Path(ckpt), args.out, args.tta.split(","), extra)
    except (OSError, ValueError) as error:
        print(f"release: error: {error}", file=sys.stderr)
        return 2
    print(json.dumps(card, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
