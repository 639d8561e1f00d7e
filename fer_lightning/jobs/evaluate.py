"""The evaluation job behind `python -m fer_lightning.evaluate`: a checkpoint (or an ensemble) on val or test -> the
report's table, confusion matrix and JSON. What is not given comes from the checkpoint's own run (data, input
profile, TTA, precision), so its best checkpoint on val reproduces the run's val report."""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import lightning as L
import matplotlib.pyplot as plt
import pandas as pd
import torch
from omegaconf import DictConfig, OmegaConf

from fer_lightning.callbacks import EvaluationResults
from fer_lightning.callbacks.figures import confusion_matrix_figure
from fer_lightning.checkpoint import LoadedCheckpoint, load_classifier
from fer_lightning.cli import expected_failure, report_failure
from fer_lightning.config import CONFIG_DIR, check_accelerator, fast_precision
from fer_lightning.data.datamodule import FERDataModule
from fer_lightning.ensemble import check_members, checkpoint_paths, mean_probabilities
from fer_lightning.library_noise import silence_known_noise
from fer_lightning.metrics import report_of
from fer_lightning.runrecord import atomic_write_json, atomic_write_text
from fer_lightning.schema import check
from fer_lightning.stats import bootstrap_intervals, mcnemar
from fer_lightning.tables import markdown_table, save_figure

log = logging.getLogger(__name__)

SPLITS = {"val": "PublicTest", "test": "PrivateTest"}
DATA_KEYS = ("path", "synthetic", "cache_dir", "val_fraction", "split_seed", "eval_batch_size")


class EvaluationError(ValueError):
    """A request that cannot be evaluated (an empty split, comparison images that differ)."""


def data_settings(run_data: Mapping[str, Any], requested: Mapping[str, Any]) -> dict[str, Any]:
    """The checkpoint run's data source with the requested (non-null) keys on top; a new path drops synthetic. What
    neither gives comes from training's data=fer2013 (conf/data, conf/paths)."""
    settings = {key: run_data.get(key) for key in DATA_KEYS}
    given = {key: value for key, value in requested.items() if value is not None}
    conf = OmegaConf.create({group: OmegaConf.load(Path(CONFIG_DIR) / group / f"{name}.yaml")
                             for group, name in (("data", "fer2013"), ("paths", "default"))})
    if "path" in given:
        settings["synthetic"] = None
        settings["cache_dir"] = settings["cache_dir"] or str(Path(conf.data.cache_dir))  # outputs/cache (Path drops ./)
    settings.update(given)
    for key in ("val_fraction", "split_seed", "eval_batch_size"):
        settings[key] = conf.data[key] if settings[key] is None else settings[key]
    return settings


def eval_precision(requested: str | None, run_precision: Any) -> str:
    """The run's precision reproduces its numbers; fp16 without CUDA, or the run's bf16 where it is only emulated (an
    AVX2 CPU: 11x slower than fp32, docs/performance.md) unless `precision=` asks for it, fall back to fp32."""
    precision = str(requested or run_precision or "32-true")
    if precision.startswith("16") and not torch.cuda.is_available():
        log.info("precision %s needs CUDA; evaluating in 32-true", precision)
        return "32-true"
    if not requested and precision.startswith("bf16") and fast_precision() != "bf16-mixed":
        log.info("the run's precision %s is emulated on this machine; evaluating in 32-true (precision=%s forces "
                 "it)", precision, precision)
        return "32-true"
    return precision


def build_datamodule(loaded: LoadedCheckpoint, settings: Mapping[str, Any], split: str) -> FERDataModule:
    """The checkpoint's input profile on the chosen source, so preprocessing is exactly the training one; only the
    evaluated split must exist (required_splits=()), checked here with a message saying what to do."""
    datamodule = FERDataModule(**settings, augment=loaded.profile, imbalance="none",
                               batch_size=settings["eval_batch_size"], required_splits=())
    datamodule.setup("validate" if split == "val" else "test")
    if not datamodule.has_split(split):
        source = settings["path"] or "the synthetic source"
        raise EvaluationError(f"split={split}: {source} has no {split} images (no {SPLITS[split]} rows or files); "
                              "evaluate split=val, or give data.path= a source that has them")
    return datamodule


class Evaluated(NamedTuple):
    """One classifier's (a checkpoint's or an ensemble's) report and per-image class probabilities on the split."""

    name: str
    report: dict[str, Any]
    targets: torch.Tensor
    probabilities: torch.Tensor
    epoch: int | None = None


def run_split(loaded: LoadedCheckpoint, datamodule: FERDataModule, split: str, precision: str,
              accelerator: str) -> Evaluated:
    """The module's own val/test loop (TTA, metrics, report), as in training, under a throwaway Trainer."""
    silence_known_noise()
    results = EvaluationResults(keep_predictions=True)
    trainer = L.Trainer(accelerator=accelerator, devices=1, precision=precision, logger=False, callbacks=[results],
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    (trainer.validate if split == "val" else trainer.test)(loaded.model, datamodule=datamodule, verbose=False)
    targets, logits = results.predictions[split]
    return Evaluated(str(loaded.path), results.reports[split], targets, mean_probabilities([logits]), loaded.epoch)


def evaluate_members(members: Sequence[LoadedCheckpoint], datamodule: FERDataModule, split: str, precision: str,
                     accelerator: str) -> tuple[Evaluated, list[Evaluated]]:
    """Each member on the split, and the classifier they make together: the member itself, or their ensemble."""
    evaluated = [run_split(member, datamodule, split, precision, accelerator) for member in members]
    if len(evaluated) == 1:
        return evaluated[0], []
    targets, probabilities = evaluated[0].targets, torch.stack([m.probabilities for m in evaluated]).mean(0)
    report = report_of(probabilities, targets, members[0].model.class_names)
    return Evaluated(f"ensemble of {len(members)}", report, targets, probabilities), evaluated


def report_table(report: Mapping[str, Any]) -> pd.DataFrame:
    """The report's Tables 2-3: per class precision/recall/F1/support, accuracy, macro and weighted averages."""
    averages = [(f"{kind} avg", report[f"{kind}_avg"]) for kind in ("macro", "weighted")]
    rows = [(name, v["precision"], v["recall"], v["f1"], v["support"]) for name, v in report["per_class"].items()]
    rows += [("accuracy", math.nan, math.nan, report["accuracy"], report["support"])]
    rows += [(name, v["precision"], v["recall"], v["f1"], report["support"]) for name, v in averages]
    return pd.DataFrame(rows, columns=["class", "precision", "recall", "f1-score", "support"])


def markdown_report(table: pd.DataFrame, members: Sequence[Evaluated]) -> str:
    """The table with 4 decimals (blank where the report has none), then an ensemble's members with their own."""
    shown = table.astype({"support": int}).map(lambda v: f"{v:.4f}" if isinstance(v, float) else v, na_action="ignore")
    rows = [{"member": m.name, "epoch": "" if m.epoch is None else m.epoch, "accuracy": f"{m.report['accuracy']:.4f}",
             "macro-F1": f"{m.report['macro_f1']:.4f}"} for m in members]
    return markdown_table(shown) + ("\n## members\n\n" + markdown_table(pd.DataFrame(rows)) if rows else "")


def evaluate(cfg: DictConfig, out_dir: str | Path) -> dict[str, Any]:
    """Evaluate `cfg.ckpt_path` on `cfg.split`, write the report files into `out_dir`; the record + its Markdown."""
    check(cfg, "evaluate")  # the command line's rules (schema), which the CLI ran before Hydra started
    split, accelerator, resamples = str(cfg.split), str(cfg.get("accelerator", "auto")), cfg.get("bootstrap") or 0
    check_accelerator(accelerator, "accelerator")
    raw_weights = bool(cfg.get("raw_weights", False))
    members = [load_classifier(path, raw_weights=raw_weights) for path in checkpoint_paths(cfg.ckpt_path)]
    check_members([m.path for m in members], [m.profile for m in members], [m.model.class_names for m in members])
    other = load_classifier(cfg.compare_ckpt_path, raw_weights=raw_weights) if cfg.get("compare_ckpt_path") else None
    loaded, first = members[0], members[0].model.hparams
    for model in [m.model for m in members] + ([other.model] if other else []):  # null: the first checkpoint's views
        model.set_tta(cfg.get("tta") or first.tta, cfg.get("tta_crop") or first.tta_crop, key="tta")
    requested = OmegaConf.to_container(cfg.get("data") or {}, resolve=True)
    settings = data_settings(OmegaConf.to_container(loaded.config.get("data") or {}, resolve=True), requested)
    precision = eval_precision(cfg.get("precision"), OmegaConf.select(loaded.config, "trainer.precision"))
    datamodule = build_datamodule(loaded, settings, split)
    result, member_results = evaluate_members(members, datamodule, split, precision, accelerator)
    targets, predictions, report = result.targets, result.probabilities.argmax(dim=1), result.report
    baseline = None  # McNemar: against compare_ckpt_path, or for an ensemble against its best member
    if other is not None:
        # the other network may take another input (ResNet18: 224 px, 3 channels): same images, its own transform
        other_data = datamodule if other.profile == loaded.profile else build_datamodule(other, settings, split)
        baseline = run_split(other, other_data, split, precision, accelerator)
        if not torch.equal(targets, baseline.targets):
            raise EvaluationError(f"compare_ckpt_path={cfg.compare_ckpt_path}: its {split} images differ from "
                                  f"{loaded.path}'s; McNemar needs the same images in the same order")
    elif member_results:
        baseline = max(member_results, key=lambda member: member.report["accuracy"])

    paths = {name: Path(out_dir) / f"{split}_{suffix}" for name, suffix in (
        ("markdown", "report.md"), ("csv", "report.csv"), ("figure", "confusion_matrix.png"),
        ("json", "evaluation.json"), ("predictions", "predictions.csv"))}
    record = {"ckpt_path": [str(m.path) for m in members] if member_results else str(loaded.path),
              "checkpoint_epoch": [m.epoch for m in members] if member_results else loaded.epoch,
              "raw_weights": raw_weights, "split": split, "tta": first.tta, "tta_crop": first.tta_crop,
              "precision": precision, "data_path": settings["path"], "data": settings, "report": report,
              "files": {name: str(path) for name, path in paths.items()}}
    weights = ", raw (not averaged) weights" if raw_weights else ""
    described = ", ".join(f"`{m.path}` (epoch {m.epoch}{weights})" for m in members)
    described = (f"ensemble of {len(members)} checkpoints (mean of their softmax probabilities): {described}"
                 if member_results else f"checkpoint {described}")
    crop_note = f" (ten_crop side {first.tta_crop:g})" if "ten_crop" in first.tta else ""
    source = settings["path"] or f"synthetic {settings['synthetic']}"
    header = f"# {split} classification report\n\n{described}, data {source}, TTA {first.tta}{crop_note}, " \
             f"precision {precision}\n\n"
    if member_results:
        record["members"] = [{"ckpt_path": m.name, "accuracy": m.report["accuracy"], "macro_f1": m.report["macro_f1"]}
                             for m in member_results]
    if resamples:
        intervals = bootstrap_intervals(targets.numpy(), predictions.numpy(), len(report["class_names"]), resamples)
        header += (f"95 % bootstrap interval over images ({intervals['accuracy'].n} images): " + "; ".join(
            f"{name} {iv.estimate:.4f} [{iv.low:.4f}, {iv.high:.4f}]" for name, iv in intervals.items()) + "\n\n")
        record["bootstrap"] = {"resamples": resamples, "confidence": 0.95,
                               **{name: dataclasses.asdict(iv) for name, iv in intervals.items()}}
    if baseline is not None:
        comparison = mcnemar((predictions == targets).numpy(), (baseline.probabilities.argmax(1) == targets).numpy())
        header += (f"McNemar vs `{baseline.name}` (accuracy {baseline.report['accuracy']:.4f}): {comparison.b} "
                   f"images only this checkpoint gets right, {comparison.c} only the other; exact p = "
                   f"{comparison.p_value:.4g}\n\n")
        record["mcnemar"] = {"other_ckpt_path": baseline.name, "other_accuracy": baseline.report["accuracy"],
                             "only_this_correct": comparison.b, "only_other_correct": comparison.c,
                             "statistic": comparison.statistic, "p_value": comparison.p_value}
    table = report_table(report)
    markdown = markdown_report(table, member_results)
    atomic_write_text(paths["markdown"], header + markdown)
    atomic_write_text(paths["csv"], table.to_csv(index=False, float_format="%.4f"))
    title = f"{split} {result.name if member_results else loaded.path.name}"
    fig = confusion_matrix_figure(report["confusion_matrix"], report["class_names"], title)
    save_figure(fig, paths["figure"])
    plt.close(fig)
    per_image = pd.DataFrame({"target": targets.numpy(), "prediction": predictions.numpy()}).rename_axis("index")
    atomic_write_text(paths["predictions"], per_image.to_csv())
    atomic_write_json(paths["json"], record)
    return {**record, "markdown": markdown}


def run(cfg: DictConfig, out_dir: str | Path) -> int:
    """Evaluate and print the table; bad input (e.g. accelerator=gpu without one): one line on stderr, status 2."""
    try:
        result = evaluate(cfg, out_dir)
    except Exception as error:
        if (expected := expected_failure(error)) is None:
            raise
        report_failure("evaluate", expected)
        return 2
    print(f"{result['markdown']}\nwrote {out_dir}")
    return 0
