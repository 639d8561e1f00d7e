from __future__ import annotations

from functools import partial
from typing import Any

import lightning as L
import pytest
import torch
from torch import nn

from fer_lightning import schedulers
from fer_lightning.callbacks import FreezeThenFinetune
from fer_lightning.data import FERDataModule
from fer_lightning.models import ResNet18Classifier
from fer_lightning.module import FERClassifier

TINY = {"n_train": 64, "n_val": 32, "n_test": 32, "seed": 0}


class Symmetric(nn.Module):
    """Logits that depend on the flip-invariant part of the input only."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(48, 7)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear((x + x.flip(-1)).mean(dim=(1, 2)))


def classifier(net: nn.Module, **kwargs: Any) -> FERClassifier:
    return FERClassifier(net, optimizer=partial(torch.optim.SGD, lr=0.1), channels_last=False, **kwargs)


def test_flip_tta_equals_plain_evaluation_for_flip_invariant_input() -> None:
    torch.manual_seed(0)
    half = torch.randn(4, 1, 48, 24)
    x = torch.cat([half, half.flip(-1)], dim=-1)  # mirror-symmetric images
    plain = classifier(nn.Sequential(nn.Conv2d(1, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 7)))
    tta = classifier(plain.net, tta=["identity", "hflip"])
    torch.testing.assert_close(tta.evaluation_logits(x), plain.evaluation_logits(x))
    asymmetric = torch.randn(4, 1, 48, 48)
    assert not torch.allclose(tta.evaluation_logits(asymmetric), plain.evaluation_logits(asymmetric))


def test_flip_tta_averages_the_two_views() -> None:
    net = nn.Sequential(nn.Flatten(), nn.Linear(48 * 48, 7))
    model = classifier(net, tta=["identity", "hflip"])
    x = torch.randn(3, 1, 48, 48)
    torch.testing.assert_close(model.evaluation_logits(x), (net(x) + net(x.flip(-1))) / 2)


def test_unknown_tta_view_is_rejected() -> None:
    with pytest.raises(ValueError, match="model.tta"):
        classifier(Symmetric(), tta=["rot90"])


def test_class_weights_reach_the_loss_only_when_given() -> None:
    logits, labels = torch.randn(10, 7), torch.tensor([0, 1, 2, 3, 4, 5, 6, 1, 1, 1])
    weights = [1.0, 5.0, 1.0, 1.0, 1.0, 1.0, 1.0]
    plain, weighted = classifier(Symmetric()), classifier(Symmetric(), class_weights=weights)
    assert plain.class_weights is None
    torch.testing.assert_close(plain.loss(logits, labels), nn.functional.cross_entropy(logits, labels))
    torch.testing.assert_close(weighted.loss(logits, labels),
                               nn.functional.cross_entropy(logits, labels, weight=torch.tensor(weights)))
    assert "class_weights" in weighted.state_dict()


def test_label_smoothing_reaches_the_loss() -> None:
    logits, labels = torch.randn(6, 7), torch.arange(6)
    model = classifier(Symmetric(), label_smoothing=0.1)
    torch.testing.assert_close(model.loss(logits, labels),
                               nn.functional.cross_entropy(logits, labels, label_smoothing=0.1))


def test_cnn_has_one_param_group_resnet_two() -> None:
    assert [g["name"] for g in classifier(Symmetric()).parameter_groups()] == ["net"]
    groups = classifier(ResNet18Classifier(weights=None), backbone_lr=1e-4).parameter_groups()
    assert [g["name"] for g in groups] == ["head", "backbone"] and groups[1]["lr"] == 1e-4


def test_norm_bias_weight_decay_false_leaves_only_1d_parameters_undecayed() -> None:
    from fer_lightning.models import FERCNN

    net = FERCNN()
    model = FERClassifier(net, optimizer=partial(torch.optim.AdamW, lr=1e-3, weight_decay=0.05),
                          norm_bias_weight_decay=False, channels_last=False)
    optimizer = model.configure_optimizers()
    decay = {g["name"]: g["weight_decay"] for g in optimizer.param_groups}
    assert decay == {"net": 0.05, "net_no_decay": 0.0}
    undecayed = {id(p) for p in optimizer.param_groups[1]["params"]}
    norms = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    layers = [m for m in net.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    expected = {id(m.weight) for m in norms} | {id(m.bias) for m in norms + layers}
    assert undecayed == expected
    assert sum(p.numel() for g in optimizer.param_groups for p in g["params"]) == 584_807
    groups = classifier(ResNet18Classifier(weights=None), backbone_lr=1e-4,
                        norm_bias_weight_decay=False).parameter_groups()
    assert [g["name"] for g in groups] == ["head", "head_no_decay", "backbone", "backbone_no_decay"]
    assert groups[3]["lr"] == 1e-4 and groups[3]["weight_decay"] == 0.0 and "weight_decay" not in groups[2]


class Probe(L.Callback):
    """Records, at each epoch's start and end, what the backbone looks like to the optimizer."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def on_train_epoch_start(self, trainer: L.Trainer, module: FERClassifier) -> None:
        backbone = module.net.backbone
        self.rows.append({
            "epoch": trainer.current_epoch,
            "requires_grad": all(p.requires_grad for p in backbone.parameters()),
            "lrs": {g["name"]: g["lr"] for g in trainer.optimizers[0].param_groups},
            "start": backbone.conv1.weight.detach().clone(),
            "head_start": module.net.head[-1].weight.detach().clone(),
        })

    def on_train_epoch_end(self, trainer: L.Trainer, module: FERClassifier) -> None:
        self.rows[-1]["end"] = module.net.backbone.conv1.weight.detach().clone()
        self.rows[-1]["head_end"] = module.net.head[-1].weight.detach().clone()


@pytest.mark.parametrize("scheduler", ["cosine", "plateau"])
def test_backbone_frozen_until_k_then_learns_with_its_own_lr(scheduler: str, tmp_path: Any) -> None:
    L.seed_everything(0)
    dm = FERDataModule(synthetic=TINY, batch_size=32, eval_batch_size=32,
                       augment={"image_size": 32, "channels": 3, "mean": [0.5] * 3, "std": [0.5] * 3})
    model = FERClassifier(ResNet18Classifier(weights=None), optimizer=partial(torch.optim.AdamW, lr=1e-2),
                          scheduler=partial(getattr(schedulers, scheduler)), backbone_lr=1e-3)
    probe = Probe()
    trainer = L.Trainer(max_epochs=3, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
                        limit_train_batches=2, limit_val_batches=1,
                        callbacks=[FreezeThenFinetune(unfreeze_at_epoch=2), probe], default_root_dir=tmp_path)
    trainer.fit(model, datamodule=dm)
    assert [r["requires_grad"] for r in probe.rows] == [False, False, True]
    for row in probe.rows:
        assert set(row["lrs"]) == {"head", "backbone"}
        assert row["lrs"]["backbone"] == pytest.approx(row["lrs"]["head"] / 10)  # the ratio survives scheduling
        assert not torch.equal(row["head_start"], row["head_end"])  # the head always learns
    assert torch.equal(probe.rows[0]["start"], probe.rows[1]["end"])  # frozen: untouched for K epochs
    assert not torch.equal(probe.rows[2]["start"], probe.rows[2]["end"])  # after K the backbone really learns
    if scheduler == "cosine":
        assert probe.rows[1]["lrs"]["head"] < probe.rows[0]["lrs"]["head"]


def test_finetuning_resumes_from_a_checkpoint_past_k(tmp_path: Any) -> None:
    def fit(max_epochs: int, ckpt_path: str | None) -> Probe:
        L.seed_everything(0)
        dm = FERDataModule(synthetic=TINY, batch_size=32, eval_batch_size=32,
                           augment={"image_size": 32, "channels": 3, "mean": [0.5] * 3, "std": [0.5] * 3})
        model = FERClassifier(ResNet18Classifier(weights=None), optimizer=partial(torch.optim.AdamW, lr=1e-2),
                              scheduler=partial(schedulers.plateau), backbone_lr=1e-3)
        probe = Probe()
        checkpoint = L.pytorch.callbacks.ModelCheckpoint(dirpath=tmp_path, save_last=True)
        trainer = L.Trainer(max_epochs=max_epochs, accelerator="cpu", logger=False, enable_progress_bar=False,
                            enable_model_summary=False, num_sanity_val_steps=0, limit_train_batches=2,
                            limit_val_batches=1, default_root_dir=tmp_path,
                            callbacks=[FreezeThenFinetune(unfreeze_at_epoch=1), probe, checkpoint])
        trainer.fit(model, datamodule=dm, ckpt_path=ckpt_path)
        return probe

    fit(2, None)
    resumed = fit(3, str(tmp_path / "last.ckpt"))
    assert [r["epoch"] for r in resumed.rows] == [2]
    row = resumed.rows[0]
    assert row["requires_grad"] and set(row["lrs"]) == {"head", "backbone"}
    assert row["lrs"]["backbone"] == pytest.approx(1e-3)
    assert not torch.equal(row["start"], row["end"])
