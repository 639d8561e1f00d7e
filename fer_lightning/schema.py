"""The type and range of every config key, declared once and checked on the composed config before torch loads:
the CLIs before Hydra creates a run directory, the jobs again (direct calls; a sweeper picks values later). A node
refuses keys its table lacks unless `Open`; a key whose rule is None, or a resolver's value, is checked where used."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from functools import partial
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from omegaconf import DictConfig, OmegaConf

if TYPE_CHECKING:
    from hydra.core.override_parser.types import Override

TTA_VIEWS = ("identity", "hflip", "ten_crop")
NUM_CLASSES = 7
# Lightning's precision flags (its _PRECISION_INPUT without transformer-engine), then its legacy aliases
PRECISIONS = ("bf16-mixed", "16-mixed", "32-true", "bf16-true", "16-true", "64-true")
PRECISION_ALIASES = ("16", "32", "64", "bf16")
ACCELERATORS = ("auto", "cpu", "gpu", "cuda", "mps")
# torch.onnx.export(dynamo=True) writes opset 18 for anything lower; torch.onnx._constants.ONNX_MAX_OPSET is 23
ONNX_OPSETS = (18, 23)
_RESOLVER_CALL = re.compile(r"\$\{[\w.]+:")


class ConfigError(ValueError):
    """An impossible or inconsistent configuration; the message names the key and what is allowed."""


def parse_overrides(lines: Iterable[str]) -> list[Override]:
    """Hydra's own parse of `key=value` lines; ValueError naming the line, with Hydra's first line, for a bad one.
    Hydra is imported here, not above: inference reads this module's rules without loading Hydra."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import OverrideParseException

    parser, parsed = OverridesParser.create(), []
    for line in map(str, lines):
        try:
            parsed += parser.parse_overrides([line])
        except OverrideParseException as error:
            raise ValueError(f"{line}: {str(error).strip().splitlines()[0]}") from None
    return parsed


class Number(NamedTuple):
    """A finite int (or int or float, for kind float; never a bool) within bounds; `optional`: null allowed."""

    kind: type
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    optional: bool = False

    def holds(self, value: Any) -> bool:
        if not (isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
                and (self.kind is float or isinstance(value, int))):
            return False
        return (self.low is None or (value > self.low if self.low_open else value >= self.low)) and (
            self.high is None or (value < self.high if self.high_open else value <= self.high))

    def bounds(self) -> str:
        limits = ((">" if self.low_open else ">=", self.low), ("<" if self.high_open else "<=", self.high))
        return " and ".join(f"{op} {int(bound) if bound == int(bound) else bound}" for op, bound in limits
                            if bound is not None)

    def __call__(self, value: Any) -> str | None:
        if (value is None and self.optional) or self.holds(value):
            return None
        return " ".join(filter(None, ["expected", "an integer" if self.kind is int else "a number", self.bounds()]))


Int = partial(Number, int)  # Int(low, high, optional=...)
Float = partial(Number, float)  # Float(low, high, low_open, high_open, optional)


class OneOf(NamedTuple):
    """One of a few values (of the same type: 1 is not True); `aliases` compared as text (precision=32 is "32")."""

    choices: tuple[Any, ...]
    note: str = ""
    optional: bool = False
    aliases: tuple[str, ...] = ()

    def __call__(self, value: Any) -> str | None:
        if (value is None and self.optional) or any(type(value) is type(c) and value == c for c in self.choices) \
                or (isinstance(value, str | int) and not isinstance(value, bool) and str(value) in self.aliases):
            return None
        names = [str(c).lower() if isinstance(c, bool) else str(c) for c in self.choices]
        expected = names[0] if len(names) == 1 else f"one of {', '.join(names)}"
        return f"expected {expected}{f' ({self.note})' if self.note else ''}"


def boolean(value: Any) -> str | None:
    return None if isinstance(value, bool) else "expected true or false"


class Text(NamedTuple):
    """A string (a path, a name); `required`: how to give it when null; `many`: a non-empty list of them too."""

    optional: bool = True
    required: str = ""
    many: bool = False

    def __call__(self, value: Any) -> str | None:
        if value is None or value == "???":  # ???: a mandatory value nobody gave
            return None if self.optional and value is None else self.required or "expected a value"
        if self.many and isinstance(value, list) and value and all(self(v) is None and v is not None for v in value):
            return None
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            return None
        return "expected a path or a non-empty list of paths" if self.many else "expected a string"


class Items(NamedTuple):
    """A list of names (non-empty when `choices` limits them) or of numbers within `item`'s bounds."""

    choices: tuple[str, ...] = ()
    item: Number | None = None
    length: int | None = None
    optional: bool = False
    increasing: bool = False

    def holds(self, value: Any) -> bool:
        if not isinstance(value, list) or (self.length is not None and len(value) != self.length):
            return False
        if self.item is not None:
            return all(self.item.holds(v) for v in value) and (
                not self.increasing or all(a <= b for a, b in pairwise(value)))
        if self.choices:
            return bool(value) and all(v in self.choices for v in value)
        return all(isinstance(v, str | int | float) and not isinstance(v, bool) for v in value)

    def __call__(self, value: Any) -> str | None:
        if (value is None and self.optional) or self.holds(value):
            return None
        if self.item is not None:
            size = f"{self.length} " if self.length else ""
            expected = " ".join(filter(None, [f"expected a list of {size}numbers", self.item.bounds()]))
            return expected + (", low <= high" if self.increasing else "")
        if isinstance(value, str) and (value in self.choices or not self.choices):
            return f"expected a list of {'views' if self.choices else 'names'}, e.g. {{key}}=[{value}]"
        if self.choices:
            return f"expected a non-empty list of {', '.join(self.choices)}"
        return "expected a list of names"


def _devices(value: Any) -> str | None:
    """Lightning's `devices`: a count >= 1, -1 (all), "auto", a list of device indices or "0,1"."""
    if value in ("auto", -1) or Int(1).holds(value) or (isinstance(value, str) and re.fullmatch(r"\d+(,\d*)*", value)) \
            or (isinstance(value, list) and value and all(Int(0).holds(v) for v in value)):
        return None
    return "expected a number of devices >= 1, -1 (all), auto, or a list of device indices"


class Open(dict):
    """A node that takes keys the table does not list (Lightning's Trainer and callbacks check them)."""


class ByTarget(NamedTuple):
    """A group node whose keys depend on the chosen option's `_target_`; `common` for a target not listed."""

    tables: Mapping[str, Mapping[str, Any]]
    common: Mapping[str, Any]


LR = POSITIVE = Float(0, low_open=True)
DECAY = Float(0)
PROBABILITY = Float(0, 1)
BELOW_ONE = Float(0, 1, high_open=True)  # a dropout, a momentum
OPEN_UNIT = Float(0, 1, True, True)
SEED = Int(0, 2**32 - 1)  # what numpy's and torch's seeding take
COUNT = Int(0, 10**7)
FRACTION_PAIR = Items(item=Float(0, 1, low_open=True), length=2, increasing=True)
RATIO_PAIR = Items(item=POSITIVE, length=2, increasing=True)
BETAS = Items(item=Float(0, 1, high_open=True), length=2)
CLASSES = OneOf((NUM_CLASSES,), "the FER-2013 classes")
VIEWS = Items(TTA_VIEWS, optional=True)  # null: the checkpoint's own views
OPEN_UNIT_OR_NULL = Float(0, 1, True, True, optional=True)  # null: the checkpoint's own value
ADAM = {"lr": LR, "weight_decay": DECAY, "betas": BETAS, "eps": POSITIVE, "amsgrad": boolean}
OPTIMIZER = ByTarget({
    "torch.optim.AdamW": ADAM,
    "torch.optim.Adam": ADAM,
    "torch.optim.SGD": {"lr": LR, "momentum": BELOW_ONE, "dampening": PROBABILITY, "nesterov": boolean,
                        "weight_decay": DECAY},
    "fer_lightning.optim.MuonAdamW": {"lr": LR, "momentum": BELOW_ONE, "weight_decay": DECAY, "adam_lr": LR,
                                      "betas": BETAS, "eps": POSITIVE, "adam_weight_decay": DECAY},
}, common={"lr": LR, "weight_decay": DECAY})
INTERVAL = {"interval": OneOf(("epoch", "step"))}
SCHEDULER = ByTarget({
    **{f"fer_lightning.schedulers.{name}": INTERVAL for name in ("cosine", "linear", "inverse_sqrt")},
    "fer_lightning.schedulers.warmup_cosine": {**INTERVAL, "warmup_epochs": Float(0)},
    "fer_lightning.schedulers.plateau": {"monitor": OneOf(("val/acc", "val/macro_f1", "val/loss")),
                                         "mode": OneOf(("max", "min")), "factor": OPEN_UNIT, "patience": Int(0),
                                         "min_lr": Float(0)},
}, common={})
NET = ByTarget({
    "fer_lightning.models.FERCNN": {"num_classes": CLASSES, "dropout": BELOW_ONE, "in_channels": OneOf((1, 3)),
                                    "init": OneOf(("default", "dirac"))},
    "fer_lightning.models.ResNet18Classifier": {"num_classes": CLASSES, "weights": Text(), "dropout": BELOW_ONE},
}, common={"num_classes": CLASSES})
# FERClassifier's arguments (optimizer and scheduler: their groups' tables)
MODEL = {"net": NET, "optimizer": None, "scheduler": None, "label_smoothing": BELOW_ONE,
         "class_weights": Items(item=Float(0), length=NUM_CLASSES, optional=True),
         "backbone_lr": Float(0, optional=True), "tta": Items(TTA_VIEWS), "tta_crop": OPEN_UNIT,
         "mixup_alpha": Float(0), "cutmix_alpha": Float(0), "mix_prob": PROBABILITY, "norm_bias_weight_decay": boolean,
         "channels_last": boolean, "compile": boolean, "class_names": Items(length=NUM_CLASSES)}
# AugmentProfile's fields
AUGMENT = {"name": Text(), "image_size": Int(8, 1024), "channels": OneOf((1, 3)), "mean": Items(item=Float()),
           "std": Items(item=POSITIVE), "interpolation": OneOf(("bilinear", "bicubic", "nearest")),
           "hflip": PROBABILITY, "translate_px": Int(0), "rotation": Float(0, 180), "scale": FRACTION_PAIR,
           "ratio": RATIO_PAIR, "brightness": PROBABILITY, "contrast": PROBABILITY, "erasing_p": PROBABILITY,
           "erasing_scale": FRACTION_PAIR, "erasing_ratio": RATIO_PAIR}
# FERDataModule's arguments (augment and imbalance: interpolated from their groups)
DATA = {"path": Text(), "synthetic": {"n_train": COUNT, "n_val": COUNT, "n_test": COUNT, "seed": SEED},
        "cache_dir": Text(), "val_fraction": OPEN_UNIT, "split_seed": SEED, "batch_size": Int(1),
        "eval_batch_size": Int(1), "device_resident": OneOf((True, False, "auto")), "augment": None,
        "imbalance": None, "imbalance_power": None, "required_splits": None}
TRAINER = Open({"accelerator": OneOf(ACCELERATORS), "devices": _devices,
                "precision": OneOf(PRECISIONS, aliases=PRECISION_ALIASES), "min_epochs": Int(0, optional=True),
                "max_epochs": Int(1), "check_val_every_n_epoch": Int(1, optional=True), "log_every_n_steps": Int(1),
                "deterministic": boolean, "benchmark": boolean, "num_sanity_val_steps": Int(-1),
                "gradient_clip_val": Float(0, optional=True), "num_nodes": Int(1), "sync_batchnorm": boolean})
# Distillation's arguments
DISTILL = {"teachers": Text(optional=False, many=True, required="required: the teacher checkpoints, e.g. "
                                                                 "distill.teachers=[a.ckpt,b.ckpt]"),
           "mode": OneOf(("online", "cached")), "weight": PROBABILITY, "temperature": POSITIVE, "tta": VIEWS,
           "tta_crop": OPEN_UNIT_OR_NULL, "cache_dir": Text(), "batch_size": Int(1)}

TRAIN = Open({
    "task_name": Text(optional=False), "tags": Items(), "seed": SEED, "test": boolean, "force": boolean,
    "eval_weights": OneOf(("best", "last")), "final_tta": VIEWS, "ckpt_path": Text(), "skip_completed": boolean,
    "deterministic": boolean, "threads_per_job": Int(1, optional=True),
    "optimized_metric": OneOf(("val/acc", "val/macro_f1")),
    "data": DATA, "augment": AUGMENT, "model": MODEL, "optimizer": OPTIMIZER, "scheduler": SCHEDULER,
    "imbalance": {"strategy": OneOf(("none", "sampler", "weighted_loss")), "power": Float(0)},
    "trainer": TRAINER, "callbacks": Open({"finetune": Open({"unfreeze_at_epoch": Int(0)})}), "distill": DISTILL,
})
EVALUATE = Open({
    "ckpt_path": Text(optional=False, many=True,
                      required="required: python -m fer_lightning.evaluate ckpt_path=path/to/x.ckpt"),
    "split": OneOf(("val", "test")), "tta": VIEWS, "tta_crop": OPEN_UNIT_OR_NULL, "raw_weights": boolean,
    "precision": OneOf(PRECISIONS, optional=True, aliases=PRECISION_ALIASES), "accelerator": OneOf(ACCELERATORS),
    "bootstrap": Int(0, 100_000), "compare_ckpt_path": Text(), "output_dir": Text(optional=False),
    "data": {"path": Text(), "cache_dir": Text(), "val_fraction": OPEN_UNIT_OR_NULL,
             "split_seed": Int(0, 2**32 - 1, optional=True), "eval_batch_size": Int(1, optional=True)},
})
EXPORT = Open({
    "ckpt_path": Text(optional=False, required="required (python -m fer_lightning.export ckpt_path=X.ckpt, or "
                                               "ckpt_path=pretrained for the released model)"),
    "format": OneOf(("onnx", "torchscript")), "output": Text(), "fold_tta": boolean, "opset": Int(*ONNX_OPSETS),
    "verify": boolean,
})
PREDICT = Open({"tta": VIEWS, "batch_size": Int(1), "video_stride": Int(1), "max_frames": Int(1, optional=True),
                "margin": Float(0, optional=True), "threads": Int(1, optional=True), "detect_every": Int(1),
                "smooth": Float(0),
                "input": Text(optional=False, required="required (python -m fer_lightning.predict "
                                                       "input=photo.jpg|folder|clip.mp4|camera:0, or --help)")})


def _train_combinations(cfg: DictConfig) -> str | None:
    """Cross-key rules that need no network class (check_config has those that do)."""
    data, trainer = cfg.get("data") or {}, cfg.get("trainer") or {}
    path = data.get("path")
    if "synthetic" in data and data.get("synthetic") is None and (not path or not Path(str(path)).exists()):
        found = f"data.path={path}: no such file or folder; " if path else ""
        return (f"{found}data.path is required with a real-data config (data=fer2013): give the challenge CSV "
                "(fer2013.csv or fer2013.csv.gz: emotion,pixels,Usage) or the Kaggle folder layout (train/<class>/*.png"
                " and test/<class>/*.png, or its .tar), or an .npz of arrays (python -m fer_lightning.data.pack), e.g. "
                "data.path=/data/fer2013.csv.gz (or use data=synthetic)")
    min_epochs, max_epochs = trainer.get("min_epochs"), trainer.get("max_epochs")
    if isinstance(min_epochs, int) and isinstance(max_epochs, int) and min_epochs > max_epochs:
        return f"trainer.min_epochs={min_epochs} must be <= trainer.max_epochs={max_epochs}"
    distill = cfg.get("distill") or {}
    if distill.get("mode") == "cached" and (cfg.model.get("mixup_alpha") or cfg.model.get("cutmix_alpha")):
        return ("distill=cached with model.mixup_alpha/cutmix_alpha: the cached teacher probabilities are those of "
                "unmixed images; use distill=online, or no Mixup/CutMix")
    if cfg.imbalance.get("strategy") == "sampler" and cfg.model.get("class_weights") is not None:
        return ("model.class_weights is set with imbalance=sampler: the sampler and a weighted loss are never "
                "combined; use imbalance=weighted_loss, or drop model.class_weights")
    finetune = (cfg.get("callbacks") or {}).get("finetune")
    if finetune is not None and isinstance(max_epochs, int) and finetune.get("unfreeze_at_epoch", 0) >= max_epochs:
        return (f"callbacks.finetune.unfreeze_at_epoch={finetune.unfreeze_at_epoch} must be < "
                f"trainer.max_epochs={max_epochs}, or the backbone never trains")
    return None


def _predict_input(cfg: DictConfig) -> str | None:
    """The input must exist (a `camera:<index>` is checked when the camera opens)."""
    source = str(cfg.input)
    if not source.startswith("camera:") and not Path(source).exists():
        return f"input={source}: no such file or folder (nothing was written)"
    return None


SCHEMAS = {"train": TRAIN, "evaluate": EVALUATE, "export": EXPORT, "predict": PREDICT}
COMBINATIONS = {"train": _train_combinations, "predict": _predict_input}


def _walk(cfg: DictConfig, raw: Any, table: Mapping[str, Any] | ByTarget, path: str) -> str | None:
    owner = path.rstrip(".") or "the config"
    if isinstance(table, ByTarget):
        target = raw.get("_target_")
        owner = target if target in table.tables else owner
        table = table.tables.get(target, Open(table.common))
    unknown = [k for k in raw if k not in table and not (k.startswith("_") and k.endswith("_"))]
    if unknown and not isinstance(table, Open):
        return f"{path}{unknown[0]}: {owner} has no key '{unknown[0]}'; expected one of {', '.join(sorted(table))}"
    for key, rule in table.items():
        if key not in raw or rule is None:
            continue
        value = raw[key]
        if isinstance(value, str) and "${" in value:  # an interpolation: its value, unless a resolver makes it
            if _RESOLVER_CALL.search(value):
                continue
            try:
                value = OmegaConf.select(cfg, path + key)
                value = OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value
            except Exception:
                continue
        if isinstance(rule, Mapping | ByTarget):
            if isinstance(value, dict) and (found := _walk(cfg, value, rule, f"{path}{key}.")):
                return found
            if value is not None and not isinstance(value, dict):
                return f"{path}{key}={value}: expected a group of settings"
            continue
        if expected := rule(value):
            expected = expected.replace("{key}", path + key)
            return f"{path}{key}=... is {expected}" if expected.startswith("required") else \
                f"{path}{key}={value}: {expected}"
    return None


def problem(cfg: DictConfig, task: str) -> str | None:
    """The first bad value of a composed `task` config (train, evaluate, export, predict) as one line, or None."""
    raw = OmegaConf.to_container(cfg, resolve=False)
    raw.pop("hydra", None)
    return _walk(cfg, raw, SCHEMAS[task], "") or (COMBINATIONS[task](cfg) if task in COMBINATIONS else None)


def check(cfg: DictConfig, task: str) -> None:
    """problem(), raised as a ConfigError."""
    if found := problem(cfg, task):
        raise ConfigError(found)
