"""FERClassifier: the one LightningModule for both networks (loss, metrics, TTA, optimizer/scheduler wiring)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import torch
from lightning import LightningModule
from torch import nn
from torchmetrics.classification import MulticlassAccuracy

from fer_lightning.data.splits import CLASS_NAMES
from fer_lightning.metrics import classification_report, evaluation_metrics, scalar_logs
from fer_lightning.mixing import build_batch_mix, cross_entropy
from fer_lightning.tta import TEN_CROP_FRACTION, average_logits, check_views

if TYPE_CHECKING:
    from fer_lightning.distill import Distillation


def learning_rates(optimizers: Sequence[torch.optim.Optimizer]) -> dict[str, float]:
    """`lr/<param group name>` (lr/net; lr/head, lr/backbone) -> current LR: the same tags for every optimizer."""
    return {f"lr/{group.get('name', i)}": float(group["lr"])
            for optimizer in optimizers for i, group in enumerate(optimizer.param_groups)}


class NonFiniteLossError(FloatingPointError):
    """Training produced a NaN or infinite loss: stop instead of training on garbage."""


class FERClassifier(LightningModule):
    """Cross-entropy classifier over `net` (any nn.Module; `backbone`/`head` attributes get separate LRs).
    `optimizer`/`scheduler`: Hydra partials (None: inference only); `tta`: the val/test views, changed by `set_tta`."""

    def __init__(self, net: nn.Module, optimizer: Callable[..., torch.optim.Optimizer] | None = None,
                 scheduler: Callable[..., dict[str, Any]] | None = None, label_smoothing: float = 0.0,
                 class_weights: Sequence[float] | None = None, backbone_lr: float | None = None,
                 tta: Sequence[str] = ("identity",), tta_crop: float = TEN_CROP_FRACTION, mixup_alpha: float = 0.0,
                 cutmix_alpha: float = 0.0, mix_prob: float = 1.0, norm_bias_weight_decay: bool = True,
                 channels_last: bool = True, compile: bool = False, class_names: Sequence[str] = CLASS_NAMES,
                 distillation: Distillation | None = None) -> None:
        super().__init__()
        check_views(tta, tta_crop)
        # Plain values only, so checkpoints load with torch.load(weights_only=True); the network and the
        # optimizer/scheduler factories are rebuilt from the run config stored in the checkpoint.
        self.save_hyperparameters(ignore=["net", "optimizer", "scheduler", "distillation"], logger=False)
        self.net = net
        self.distillation = distillation  # not a submodule: the teacher's weights stay out of checkpoints
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        self.class_names = tuple(class_names)
        weights = None if class_weights is None else torch.as_tensor(list(class_weights), dtype=torch.float32)
        self.register_buffer("class_weights", weights)
        num_classes = len(self.class_names)
        self.batch_mix = build_batch_mix(mixup_alpha, cutmix_alpha, mix_prob, num_classes)
        self.train_acc = MulticlassAccuracy(num_classes, average="micro")
        self.eval_metrics = nn.ModuleDict({s: evaluation_metrics(num_classes) for s in ("val", "test")})
        self._loss_not_finite = torch.tensor(False)  # any NaN/inf loss since the start, kept on the loss's device

    def setup(self, stage: str) -> None:
        """`imbalance=weighted_loss`: the loss weights come from the data module's training labels, and go into the
        hyper-parameters so checkpoints rebuild the same loss; a distillation teacher is checked against the data."""
        datamodule = self.trainer.datamodule if stage == "fit" else None
        if (weights := getattr(datamodule, "class_weights", None)) is not None:
            self.class_weights = weights
            self.hparams.class_weights = weights.tolist()
        if datamodule is not None and self.distillation is not None:
            self.distillation.attach(datamodule, self.class_names, self.trainer.strategy.root_device)

    @property
    def log_prefix(self) -> str:
        """"final/" outside fit (train's final evaluation): those numbers must not extend the per-epoch curves."""
        return "" if self._trainer is None or self.trainer.state.fn == "fit" else "final/"

    def configure_model(self) -> None:
        if self.hparams.channels_last:
            self.net.to(memory_format=torch.channels_last)
        if self.hparams.compile:
            self.net.compile()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.hparams.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.net(x)

    def set_tta(self, views: Sequence[str], crop: float | None = None, key: str = "model.tta") -> None:
        """Evaluate with other views from now on (train's `final_tta`, evaluate's `tta`); `key` names it in errors."""
        crop = self.hparams.tta_crop if crop is None else crop
        check_views(views, crop, key)
        self.hparams.tta, self.hparams.tta_crop = list(views), crop

    def evaluation_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Test-time augmentation: mean of the logits over the configured views."""
        return average_logits(self, x, self.hparams.tta, self.hparams.tta_crop)

    def loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Weighted, smoothed cross-entropy; targets are class indices or (mixed batches) label distributions."""
        return cross_entropy(logits, targets, self.class_weights, self.hparams.label_smoothing)

    def training_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> torch.Tensor:
        images, labels, *teacher = batch  # a cached distillation teacher's log-probabilities travel with the batch
        images, targets = self.batch_mix(images, labels) if self.batch_mix is not None else (images, labels)
        logits = self(images)
        loss = self.loss(logits, targets)
        if self.distillation is not None:
            teacher_log_probs = teacher[0] if teacher else self.distillation.online_log_probs(images)
            loss = self.distillation.loss(logits, loss, teacher_log_probs)
        self.train_acc.update(logits.detach(), labels)  # each image's own label, also in a mix
        self._loss_not_finite = self._loss_not_finite | ~torch.isfinite(loss.detach())  # read every few steps
        self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True)
        self.log("train/acc", self.train_acc, on_step=False, on_epoch=True)
        return loss

    def check_loss_finite(self) -> None:
        """Raise if any loss so far was NaN/inf (one host sync per call, not per step); DDP: every rank together."""
        if self.trainer.strategy.reduce_boolean_decision(bool(self._loss_not_finite), all=False):
            raise NonFiniteLossError(f"train/loss became NaN or infinite by epoch {self.current_epoch}, step "
                                     f"{self.global_step}; lower optimizer.lr, add trainer.gradient_clip_val, or "
                                     "check the data")

    on_train_epoch_end = check_loss_finite

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        if (batch_idx + 1) % max(1, self.trainer.log_every_n_steps) == 0:
            self.check_loss_finite()

    def on_train_epoch_start(self) -> None:
        """`learning_rates`' tags, whatever the optimizer, so a sweep's LR curves overlay in TensorBoard."""
        self.log_dict(learning_rates(self.trainer.optimizers), on_step=False, on_epoch=True)

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        """The TTA logits, returned for callbacks (callbacks.results keeps each image's prediction for evaluate)."""
        images, labels = batch
        stage = "test" if self.trainer.testing else "val"
        logits = self.evaluation_logits(images)
        self.log(f"{self.log_prefix}{stage}/loss", self.loss(logits, labels), on_step=False, on_epoch=True,
                 sync_dist=True)
        self.eval_metrics[stage].update(logits, labels)
        return logits

    test_step = validation_step

    def evaluation_report(self, stage: str) -> dict[str, Any]:
        """The `stage` epoch's classification report so far (torchmetrics caches the compute for the callbacks)."""
        return classification_report(self.eval_metrics[stage].compute(), self.class_names)

    def on_validation_epoch_end(self) -> None:
        stage = "test" if self.trainer.testing else "val"
        results = self.eval_metrics[stage].compute()
        self.eval_metrics[stage].reset()
        # results are already summed over DDP ranks (torchmetrics syncs in compute); sync_dist only tells Lightning
        prefix = f"{self.log_prefix}{stage}"
        logs = scalar_logs(prefix, results, self.class_names)
        headline = {k: logs.pop(k) for k in (f"{prefix}/acc", f"{prefix}/macro_f1")}  # shown in the progress bar
        self.log_dict(headline, sync_dist=True, prog_bar=True)
        self.log_dict(logs, sync_dist=True)

    on_test_epoch_end = on_validation_epoch_end

    def parameter_groups(self) -> list[dict[str, Any]]:
        """Head and backbone groups (even while the backbone is frozen), else one; with norm_bias_weight_decay=False
        each split into decayed and `<name>_no_decay` (1-D parameters, weight decay 0: timm's filter_bias_and_bn)."""
        backbone, head = getattr(self.net, "backbone", None), getattr(self.net, "head", None)
        if backbone is None or head is None:
            groups: list[dict[str, Any]] = [{"params": list(self.net.parameters()), "name": "net"}]
        else:
            lr = {} if self.hparams.backbone_lr is None else {"lr": self.hparams.backbone_lr}
            groups = [{"params": list(head.parameters()), "name": "head"},
                      {"params": list(backbone.parameters()), "name": "backbone", **lr}]
        if self.hparams.norm_bias_weight_decay:
            return groups
        split = [{**group, "params": [p for p in group["params"] if (p.ndim <= 1) == no_decay],
                  **({"name": f"{group['name']}_no_decay", "weight_decay": 0.0} if no_decay else {})}
                 for group in groups for no_decay in (False, True)]
        return [group for group in split if group["params"]]

    def configure_optimizers(self) -> Any:
        if self.optimizer_factory is None:
            raise ValueError("FERClassifier was built without an optimizer (inference only); pass optimizer=...")
        optimizer = self.optimizer_factory(params=self.parameter_groups())
        if self.scheduler_factory is None:
            return optimizer
        max_epochs = max(1, self.trainer.max_epochs or 1)
        total_steps = self.trainer.estimated_stepping_batches
        steps_per_epoch = max(1, math.ceil(total_steps / max_epochs)) if math.isfinite(total_steps) else 1
        scheduler = self.scheduler_factory(optimizer, max_epochs=max_epochs, steps_per_epoch=steps_per_epoch)
        return {"optimizer": optimizer, "lr_scheduler": scheduler}
