"""The released model: loads with weights_only=True, matches its card, and still predicts what it predicted when
it was released (a changed file or preprocessing contract fails here)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from fer_lightning.checkpoint import CheckpointError, load_classifier
from fer_lightning.data.synthetic import generate_faces
from fer_lightning.inference import Predictor
from fer_lightning.release import (
    MAX_BYTES,
    RELEASED_PATH,
    card_path,
    make_release,
    recipe_name,
    released_card,
    sha256,
)

# Predictor.from_pretrained().probabilities(generate_faces(4, seed=2026).images), recorded at release time
EXPECTED_LABELS = ["surprise", "neutral", "surprise", "neutral"]
EXPECTED_PROBABILITIES = [
    [0.006703, 0.043292, 0.228501, 0.005080, 0.029688, 0.660794, 0.025942],
    [0.038632, 0.056218, 0.109059, 0.022906, 0.253961, 0.065639, 0.453585],
    [0.014884, 0.062278, 0.060383, 0.278572, 0.018381, 0.515325, 0.050178],
    [0.010498, 0.060165, 0.151705, 0.031026, 0.252817, 0.233160, 0.260629],
]


def test_released_file_matches_its_card() -> None:
    card = released_card()
    assert RELEASED_PATH.stat().st_size == card["bytes"] <= MAX_BYTES
    assert sha256(RELEASED_PATH) == card["sha256"]
    assert card["parameters"] == 584_807 and card["network"] == "FERCNN"
    assert 0.0 < card["val"]["accuracy"] <= 1.0 and card["val"]["split"] == "val"
    checkpoint = torch.load(RELEASED_PATH, map_location="cpu", weights_only=True)
    assert "optimizer_states" not in checkpoint and "current_model_state" not in checkpoint
    assert checkpoint["hyper_parameters"]["tta"] == card["tta"]


def test_pretrained_predicts_what_it_predicted_at_release() -> None:
    predictor = Predictor.from_pretrained()
    faces = generate_faces(4, seed=2026).images
    probabilities = predictor.probabilities(faces)
    labels = [predictor.class_names[i] for i in probabilities.argmax(axis=1)]
    assert labels == EXPECTED_LABELS
    assert np.allclose(probabilities, np.array(EXPECTED_PROBABILITIES), atol=1e-4)


def test_ckpt_path_pretrained_names_the_released_model() -> None:
    loaded = load_classifier("pretrained")
    assert loaded.path == RELEASED_PATH and sum(p.numel() for p in loaded.model.net.parameters()) == 584_807


def test_make_release_strips_a_training_checkpoint(tiny_checkpoint: Path, tmp_path: Path) -> None:
    run_dir = tiny_checkpoint.parent.parent
    out = tmp_path / "model.pt"
    card = make_release(run_dir, tiny_checkpoint, out, ["identity", "hflip"])
    assert out.stat().st_size < tiny_checkpoint.stat().st_size and card["sha256"] == sha256(out)
    assert json.loads(card_path(out).read_text()) == card
    original, released = load_classifier(tiny_checkpoint), load_classifier(out)
    x = torch.rand(3, 1, 48, 48)
    with torch.no_grad():
        assert torch.allclose(original.model(x), released.model(x), atol=1e-6)
    assert released.model.hparams.tta == ["identity", "hflip"]
    with pytest.raises(ValueError, match="--tta"):
        make_release(run_dir, tiny_checkpoint, out, ["vflip"])


def test_the_card_names_the_recipe_not_the_runs_label() -> None:
    record = {"overrides": ["experiment=cnn_best", "seed=1", "task_name=cnn_best_seed1"]}
    assert recipe_name(record, {"task_name": "cnn_best_seed1"}) == "cnn_best"
    assert recipe_name({"overrides": ["seed=1"]}, {"task_name": "train"}) == "train"


def test_the_card_names_a_distilled_models_teacher() -> None:
    from fer_lightning.release import teacher_description

    distill = {"teachers": ["a.ckpt", "b.ckpt"], "mode": "cached", "weight": 0.5, "temperature": 4.0,
               "tta": ["identity", "hflip", "ten_crop"], "cache_dir": "outputs/cache", "batch_size": 512}
    assert teacher_description({"distill": distill}) == {
        "checkpoints": ["a.ckpt", "b.ckpt"], "mode": "cached", "weight": 0.5, "temperature": 4.0,
        "tta": ["identity", "hflip", "ten_crop"]}
    assert teacher_description({"distill": {**distill, "teachers": "a.ckpt"}})["checkpoints"] == ["a.ckpt"]
    assert teacher_description({}) is None


def test_a_text_file_is_not_a_checkpoint(tmp_path: Path) -> None:
    text = tmp_path / "notes.ckpt"
    text.write_text("hello\n")
    with pytest.raises(CheckpointError, match="not a fer_lightning checkpoint"):
        load_classifier(text)
