"""Distillation: the loss is the hand-computed one, cached and online teachers train a student end to end, and a
teacher that cannot teach the student is refused in one line."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from omegaconf import DictConfig

from fer_lightning.config import ConfigError, check_config
from fer_lightning.distill import Distillation, DistillationError, distillation_loss
from fer_lightning.jobs.train import train
from tests.conftest import ONE_EPOCH


def test_the_loss_is_t_squared_kl_of_the_softened_distributions() -> None:
    student = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 0.0]])
    teacher_probs = torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]])
    temperature = 2.0
    expected = 0.0
    for s_row, t_row in zip(student.tolist(), teacher_probs.tolist(), strict=True):
        soft_t = [p ** (1 / temperature) for p in t_row]  # softmax(log p / T) = p^(1/T) / sum
        soft_t = [p / sum(soft_t) for p in soft_t]
        exp_s = [torch.tensor(z / temperature).exp().item() for z in s_row]
        soft_s = [e / sum(exp_s) for e in exp_s]
        expected += sum(t * (torch.tensor(t / s).log().item()) for t, s in zip(soft_t, soft_s, strict=True))
    expected = expected / 2 * temperature**2
    got = distillation_loss(student, teacher_probs.log(), temperature)
    assert got.item() == pytest.approx(expected, rel=1e-5)
    assert distillation_loss(teacher_probs.log(), teacher_probs.log(), temperature).item() == pytest.approx(0, abs=1e-6)


def test_the_soft_term_is_mixed_with_the_label_loss(tiny_checkpoint: Path) -> None:
    distillation = Distillation(str(tiny_checkpoint), mode="online", weight=0.25, temperature=3.0)
    logits, teacher = torch.randn(4, 7), torch.randn(4, 7).log_softmax(1)
    label_loss = torch.tensor(1.5)
    want = 0.75 * 1.5 + 0.25 * distillation_loss(logits, teacher, 3.0)
    torch.testing.assert_close(distillation.loss(logits, label_loss, teacher), want)


@pytest.mark.parametrize("mode", ["cached", "online"])
def test_a_student_trains_against_its_teacher_and_keeps_no_teacher_weights(
        make_cfg: Callable[..., DictConfig], tiny_checkpoint: Path, tmp_path: Path, mode: str) -> None:
    overrides = [*ONE_EPOCH, f"distill={mode}", f"distill.teachers=[{tiny_checkpoint},{tiny_checkpoint}]",
                 f"paths.cache_dir={tmp_path / 'cache'}", "distill.cache_dir=${paths.cache_dir}"]
    record = train(make_cfg(*overrides))
    assert record["status"] == "completed" and record["val"]["support"] == 48
    weights = torch.load(record["evaluated"]["ckpt_path"], map_location="cpu", weights_only=True)["state_dict"]
    assert all(key.startswith("net.") for key in weights if key != "class_weights")
    cached = list((tmp_path / "cache").glob("teacher-*.pt"))
    assert len(cached) == (1 if mode == "cached" else 0)
    if mode == "cached":
        log_probs = torch.load(cached[0], weights_only=True)
        assert log_probs.shape == (96, 7) and torch.allclose(log_probs.exp().sum(1), torch.ones(96))


def _edited_checkpoint(source: Path, target: Path, edit: Callable[[dict], None]) -> Path:
    checkpoint = torch.load(source, map_location="cpu", weights_only=True)
    edit(checkpoint)
    torch.save(checkpoint, target)
    return target


def _swap_classes(checkpoint: dict) -> None:
    names = checkpoint["hyper_parameters"]["class_names"]
    checkpoint["hyper_parameters"]["class_names"] = [names[1], names[0], *names[2:]]


def _larger_input(checkpoint: dict) -> None:
    checkpoint["fer_lightning"]["config"]["augment"]["image_size"] = 64


@pytest.mark.parametrize(("edit", "message"), [
    (_swap_classes, "a teacher needs the student's classes in its order"),
    (_larger_input, "takes 64 px x 1 channel input, the student 48 px"),
])
def test_a_teacher_of_other_classes_or_input_is_refused_in_one_line(
        make_cfg: Callable[..., DictConfig], tiny_checkpoint: Path, tmp_path: Path,
        edit: Callable[[dict], None], message: str) -> None:
    teacher = _edited_checkpoint(tiny_checkpoint, tmp_path / "teacher.ckpt", edit)
    with pytest.raises(DistillationError, match=message) as raised:
        train(make_cfg(*ONE_EPOCH, "distill=online", f"distill.teachers={teacher}"))
    assert "\n" not in str(raised.value)


def test_a_missing_or_foreign_teacher_is_named_by_its_key(tmp_path: Path) -> None:
    from fer_lightning.inference.loading import CheckpointError

    with pytest.raises(CheckpointError, match=r"^distill.teachers: .*nope.ckpt: no such checkpoint file$"):
        Distillation(str(tmp_path / "nope.ckpt"), mode="online")
    (tmp_path / "notes.txt").write_text("not a checkpoint")
    with pytest.raises(CheckpointError, match=r"^distill.teachers: .*notes.txt: not a fer_lightning checkpoint"):
        Distillation([str(tmp_path / "notes.txt")], mode="online")


def test_cached_targets_need_unmixed_images_and_mirror_closed_views(make_cfg: Callable[..., DictConfig],
                                                                   tiny_checkpoint: Path) -> None:
    with pytest.raises(ConfigError, match="distill=cached with model.mixup_alpha"):
        check_config(make_cfg("distill=cached", f"distill.teachers={tiny_checkpoint}", "model.mixup_alpha=0.2"))
    with pytest.raises(DistillationError, match=r"distill.tta=\['identity'\]: cached teacher targets need views"):
        Distillation(str(tiny_checkpoint), mode="cached", tta=["identity"])
