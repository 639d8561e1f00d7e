"""Knowledge distillation (Hinton et al., 2015): loss = (1 - weight) * label loss + weight * T^2 * KL(teacher_T ||
student_T). The teacher (a checkpoint or an ensemble) is consulted online, on every augmented batch, or cached: once
per training image before the fit, stored under `cache_dir` keyed by the teachers' and the images' content."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

from fer_lightning.atomicio import atomic_open
from fer_lightning.ensemble import check_members, checkpoint_paths, load_ensemble
from fer_lightning.inference.loading import CheckpointError

if TYPE_CHECKING:
    from fer_lightning.data.datamodule import FERDataModule

log = logging.getLogger(__name__)

KEY = "distill.teachers"


class DistillationError(ValueError):
    """A teacher that cannot teach this student (other classes, another input profile) or a bad setting."""


def distillation_loss(student_logits: torch.Tensor, teacher_log_probs: torch.Tensor,
                      temperature: float) -> torch.Tensor:
    """T^2 * KL(softmax(teacher / T) || softmax(student / T)), averaged over the batch. The teacher is given as
    log-probabilities (an ensemble's log mean probability); dividing them by T softens them like logits."""
    teacher = F.log_softmax(teacher_log_probs.float() / temperature, dim=-1)
    student = F.log_softmax(student_logits.float() / temperature, dim=-1)
    return F.kl_div(student, teacher, log_target=True, reduction="batchmean") * temperature**2


class Distillation:
    """The teacher (one .ckpt, a list or a folder of runs) and how the student learns from it (`distill` group).
    Cached mode needs views a mirror maps onto themselves: an image and its mirror share one cached target."""

    def __init__(self, teachers: Any, mode: str = "cached", weight: float = 0.5, temperature: float = 4.0,
                 tta: Sequence[str] | None = None, tta_crop: float | None = None, cache_dir: str | None = None,
                 batch_size: int = 512) -> None:
        self.mode, self.weight, self.temperature = mode, float(weight), float(temperature)
        self.cache_dir, self.batch_size = cache_dir, batch_size
        try:
            self.teacher = load_ensemble(checkpoint_paths(teachers, key=KEY), tta, tta_crop, key=KEY)
        except CheckpointError as error:
            message = str(error)
            raise CheckpointError(message if message.startswith(KEY) else f"{KEY}: {message}") from None
        unmirrored = [m.tta for m in self.teacher.members if ("identity" in m.tta) != ("hflip" in m.tta)]
        if mode == "cached" and unmirrored:
            raise DistillationError(f"distill.tta={unmirrored[0]}: cached teacher targets need views a mirror maps "
                                    "onto themselves (identity with hflip, ten_crop); add the missing one")

    def attach(self, datamodule: FERDataModule, class_names: Sequence[str], device: torch.device) -> None:
        """Check the teacher against the student's classes and input, move it to `device`; cached: fill the targets."""
        teacher = self.teacher
        check_members(["the student", teacher.paths[0]], [datamodule.augment.profile, teacher.profile],
                      [class_names, teacher.class_names], KEY, error=DistillationError,
                      rules=("a teacher needs the student's classes in its order",
                             "a teacher needs the student's input profile (the same network family)"))
        teacher.to(device)
        if self.mode == "cached":
            datamodule.attach_train_targets(self.cached_log_probs(datamodule, device))

    @torch.no_grad()
    def online_log_probs(self, images: torch.Tensor) -> torch.Tensor:
        """The teacher's log-probabilities of a (normalised, augmented) batch."""
        return self.teacher(images).float()

    def loss(self, student_logits: torch.Tensor, label_loss: torch.Tensor,
             teacher_log_probs: torch.Tensor) -> torch.Tensor:
        soft = distillation_loss(student_logits, teacher_log_probs, self.temperature)
        return (1.0 - self.weight) * label_loss + self.weight * soft

    def _cache_file(self, images: torch.Tensor) -> Path | None:
        if not self.cache_dir:
            return None
        digest = hashlib.blake2b(digest_size=12)
        for path in self.teacher.paths:
            digest.update(path.read_bytes())
        for member in self.teacher.members:
            digest.update(repr((member.tta, member.tta_crop)).encode())
        digest.update(images.cpu().contiguous().numpy().tobytes())
        return Path(self.cache_dir) / f"teacher-{digest.hexdigest()}.pt"

    @torch.no_grad()
    def cached_log_probs(self, datamodule: FERDataModule, device: torch.device) -> torch.Tensor:
        """The teacher's log-probabilities of every training image (evaluation transform, teacher views)."""
        images = datamodule.datasets["train"].images
        cache = self._cache_file(images)
        if cache is not None and cache.is_file():
            log_probs = torch.load(cache, map_location="cpu", weights_only=True)
            if log_probs.shape == (len(images), len(self.teacher.class_names)):
                log.info("teacher probabilities of %d training images read from %s", len(images), cache)
                return log_probs
        started = time.perf_counter()
        log_probs = torch.cat([self.teacher(datamodule.augment.eval(batch.to(device))).float().cpu()
                               for batch in images.split(self.batch_size)])
        log.info("teacher probabilities of %d training images (%d teacher checkpoint(s)) computed in %.0f s",
                 len(images), len(self.teacher.paths), time.perf_counter() - started)
        if cache is not None:
            cache.parent.mkdir(parents=True, exist_ok=True)
            with atomic_open(cache) as handle:
                torch.save(log_probs, handle)
        return log_probs
