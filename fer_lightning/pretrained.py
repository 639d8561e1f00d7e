"""Where the released model lives (`ckpt_path=pretrained`: fer_lightning/weights/fer_cnn.pt, its card beside it) and
how a checkpoint file is told from any other file. Torch-free: the inference entry points resolve `pretrained` first,
and both the checkpoint reader and the release tool use it (not each other)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

PRETRAINED = "pretrained"
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
RELEASED_PATH = WEIGHTS_DIR / "fer_cnn.pt"


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


def is_torch_save(path: Path) -> bool:
    """Whether the file begins as torch.save writes (zip or legacy pickle): a photo given as a checkpoint is named."""
    with path.open("rb") as handle:
        return handle.read(4).startswith((b"PK\x03\x04", b"\x80"))


def released_card() -> dict[str, Any]:
    """The released model's card (recipe, val numbers, sha256)."""
    return json.loads(card_path(resolve(PRETRAINED)).read_text())
