"""The released model: one trained checkpoint shipped inside the package, with its card.

    python -m fer_lightning.release RUN_DIR [--ckpt checkpoints/last.ckpt] [--tta identity,hflip]
        [--out fer_lightning/weights/fer_cnn.pt] [--ten-crop-val ACC,F1]

writes a stripped copy of a run's checkpoint (the evaluated weights, the run's config - network and input
profile - and the class names and TTA views; no optimizer state, no raw weights beside the averaged ones) and a
JSON card beside it (recipe, command, commit, seed, val accuracy and macro-F1 with their TTA, sha256). The file
is an ordinary fer_lightning checkpoint, so `ckpt_path=pretrained` works wherever a checkpoint does: predict,
evaluate, export, `Predictor.from_pretrained()`.
"""

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
from fer_lightning.runrecord import RECORD_NAME, atomic_write_json

PRETRAINED = "pretrained"
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
RELEASED_PATH = WEIGHTS_DIR / "fer_cnn.pt"
MAX_BYTES = 3 * 1024 * 1024


def card_path(weights: Path) -> Path:
    return weights.with_suffix(".json")


def resolve(path: str | Path) -> Path:
    """`pretrained` -> the released file inside the package; any other path unchanged."""
    if str(path) != PRETRAINED:
        return Path(path)
    if not RELEASED_PATH.is_file():
        raise FileNotFoundError(f"ckpt_path=pretrained: the released model {RELEASED_PATH} is missing from this "
                                "installation; reinstall fer_lightning or pass ckpt_path=<your .ckpt>")
    return RELEASED_PATH


def released_card() -> dict[str, Any]:
    """The released model's card (recipe, val numbers, sha256)."""
    return json.loads(card_path(resolve(PRETRAINED)).read_text())


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def strip_checkpoint(checkpoint: dict[str, Any], tta: Sequence[str]) -> dict[str, Any]:
    """What inference needs from a training checkpoint: the (averaged) weights in fp32, hyper-parameters with the
    released TTA views, the run config and the epoch."""
    hparams = {**checkpoint.get("hyper_parameters", {}), "tta": list(tta), "compile": False}
    state = {k: v.float() if v.is_floating_point() else v for k, v in checkpoint["state_dict"].items()}
    return {"state_dict": state, "hyper_parameters": hparams, "epoch": checkpoint.get("epoch"),
            "fer_lightning": checkpoint["fer_lightning"]}


def make_release(run_dir: Path, ckpt: Path, out: Path, tta: Sequence[str],
                 extra_results: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write the stripped checkpoint and its card (both atomically); return the card."""
    from fer_lightning.checkpoint import read_checkpoint
    from fer_lightning.tta import check_views

    check_views(tta)
    record = json.loads((run_dir / RECORD_NAME).read_text())
    if record.get("status") != "completed":
        raise ValueError(f"{run_dir / RECORD_NAME}: status {record.get('status')!r}; release a completed run")
    released = strip_checkpoint(read_checkpoint(ckpt), tta)
    buffer = io.BytesIO()
    torch.save(released, buffer)
    if buffer.tell() > MAX_BYTES:
        raise ValueError(f"{ckpt}: the released file would be {buffer.tell()} bytes (> {MAX_BYTES})")
    with atomic_open(out) as handle:
        handle.write(buffer.getvalue())
    config = released["fer_lightning"]["config"]
    val = record["val"]
    card = {
        "name": out.stem,
        "file": out.name,
        "sha256": sha256(out),
        "bytes": out.stat().st_size,
        "network": config["model"]["net"]["_target_"].rsplit(".", 1)[-1],
        "parameters": record["model"]["parameters"],
        "classes": list(released["hyper_parameters"].get("class_names", [])),
        "input": {k: config["augment"][k] for k in ("image_size", "channels", "mean", "std")},
        "tta": list(tta),
        "recipe": recipe_name(record, config),
        "command": "python -m fer_lightning.train " + " ".join(record.get("overrides") or []),
        "seed": record.get("seed"),
        "git_commit": record.get("git_commit"),
        "trained_on": "FER-2013 Training (28,709 images); selected on PublicTest (3,589 images)",
        "epoch": released["epoch"],
        "fit_time_s": record.get("fit_time_s"),
        "machine": record.get("machine"),
        "val": {"split": "PublicTest", "tta": record.get("evaluated", {}).get("tta"),
                "accuracy": val["accuracy"], "macro_f1": val["macro_f1"]},
        **(extra_results or {}),
    }
    atomic_write_json(card_path(out), card)
    return card


def recipe_name(record: dict[str, Any], config: dict[str, Any]) -> str | None:
    """The run's `experiment=` (a renamed task_name such as cnn_best_seed1 is a run's label, not its recipe)."""
    for override in record.get("overrides") or []:
        if override.startswith("experiment="):
            return override.partition("=")[2]
    return config.get("task_name")


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
        record = json.loads((args.run_dir / RECORD_NAME).read_text())
        ckpt = args.ckpt or Path(record["evaluated"]["ckpt_path"])
        extra = {}
        for item in args.result:
            key, _, path = item.partition("=")
            evaluation = json.loads(Path(path).read_text())
            extra[key] = {"split": evaluation["split"], "tta": evaluation["tta"],
                          "accuracy": evaluation["report"]["accuracy"], "macro_f1": evaluation["report"]["macro_f1"],
                          **({"bootstrap": evaluation["bootstrap"]} if "bootstrap" in evaluation else {})}
        if args.note:
            extra["note"] = args.note
        card = make_release(args.run_dir, ckpt, args.out, args.tta.split(","), extra)
    except (OSError, KeyError, ValueError) as error:
        print(f"release: error: {error}", file=sys.stderr)
        return 2
    print(json.dumps(card, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
