"""One training job: seed -> data -> model -> fit -> evaluate the best (or last) checkpoint -> write metrics.json.

The command-line entry is `fer_lightning.train` (kept free of torch/Lightning imports so that `--help` and a bad
override answer at once); this module holds the work it hands over to.
"""

from __future__ import annotations

import logging
import os
import time
import traceback
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import instantiate
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.loggers import Logger, TensorBoardLogger
from lightning.pytorch.strategies.launchers.subprocess_script import _SubprocessScriptLauncher
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf
from tqdm.contrib.logging import logging_redirect_tqdm

from fer_lightning.allocator import keep_freed_memory
from fer_lightning.callbacks import ConfigInCheckpoint, EpochHistory, RNGStateInCheckpoint
from fer_lightning.checkpoint import AtomicCheckpointIO, CheckpointError, find_resume_checkpoint, read_checkpoint
from fer_lightning.cli import log_to_files
from fer_lightning.config import ConfigError, check_config
from fer_lightning.dashboard import override_hparams
from fer_lightning.library_noise import silence_known_noise
from fer_lightning.runrecord import RECORD_NAME, atomic_write_json, completed_record, environment_info

log = logging.getLogger(__name__)

HPARAM_GROUPS = ("model", "optimizer", "scheduler", "imbalance", "augment")


def _instantiate_dict(configs: DictConfig | None) -> list[Any]:
    return [instantiate(c) for c in (configs or {}).values() if c is not None and "_target_" in c]


def _flat_hparams(cfg: DictConfig) -> dict[str, Any]:
    """With tensorboard_hparams=all: the model/optimizer/... settings beside the overrides (scalars only)."""
    flat: dict[str, Any] = {"seed": cfg.seed, "max_epochs": cfg.trainer.max_epochs,
                            "batch_size": cfg.data.batch_size, "precision": str(cfg.trainer.precision)}

    def walk(prefix: str, node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                walk(f"{prefix}/{key}" if prefix else str(key), value)
        elif isinstance(node, list):
            flat[prefix] = str(node)
        elif node is None or isinstance(node, bool | int | float | str):
            flat[prefix] = "null" if node is None else node

    for group in HPARAM_GROUPS:
        walk(group, OmegaConf.to_container(cfg.get(group), resolve=True) if cfg.get(group) else None)
    return flat


def objective(record: dict[str, Any], metric: str) -> float | None:
    """The number a sweeper optimises: `val/acc` or `val/macro_f1` of the best checkpoint."""
    split, _, name = metric.partition("/")
    report = record.get(split) or {}
    return report.get({"acc": "accuracy"}.get(name, name))


def _overrides() -> list[str]:
    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []


def _resume_checkpoint(cfg: DictConfig, run_dir: Path) -> Path | None:
    """ckpt_path if given; with skip_completed, this job's own last.ckpt if an earlier attempt left one."""
    if cfg.get("ckpt_path"):
        return find_resume_checkpoint(cfg.ckpt_path)
    if cfg.get("skip_completed") and (run_dir / "checkpoints").is_dir():
        try:
            return find_resume_checkpoint(run_dir)
        except ValueError:
            return None
    return None


def _warn_config_drift(cfg: DictConfig, checkpoint: Path) -> None:
    """Resuming with other settings than the interrupted run silently changes the experiment: say so."""
    saved = OmegaConf.create(read_checkpoint(checkpoint)["fer_lightning"]["config"])
    now = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))
    for config in (saved, now):  # training longer than first planned is a legitimate resume
        config.trainer.pop("max_epochs", None)
    differing = [group for group in ("data", "augment", "model", "optimizer", "scheduler", "imbalance", "trainer",
                                     "seed") if OmegaConf.select(saved, group) != OmegaConf.select(now, group)]
    if differing:
        log.warning("resuming %s with settings that differ from the checkpoint's run in: %s", checkpoint,
                    ", ".join(differing))


def _check_compatible(model: L.LightningModule, checkpoint: Path) -> None:
    """The resume checkpoint's weights must fit this run's network (same keys and shapes)."""
    saved = read_checkpoint(checkpoint)["state_dict"]
    current = model.state_dict()
    wrong = [k for k in current if k not in saved or tuple(saved[k].shape) != tuple(current[k].shape)]
    wrong += [k for k in saved if k not in current]
    if wrong:
        raise CheckpointError(f"ckpt_path={checkpoint}: its weights do not fit this run's network ({len(wrong)} "
                              f"tensors differ, e.g. {wrong[0]}); resume with the original run's overrides")


def threads_per_job(cfg: DictConfig) -> int | None:
    """CPU threads for this job: `threads_per_job`, else the launcher's share (submitit's cpus_per_task, or the
    cores divided by joblib's n_jobs) so parallel sweep jobs do not oversubscribe the machine."""
    if cfg.get("threads_per_job"):
        return int(cfg.threads_per_job)
    if not HydraConfig.initialized():
        return None
    launcher = HydraConfig.get().launcher
    if launcher.get("cpus_per_task"):
        return int(launcher.cpus_per_task)
    n_jobs = launcher.get("n_jobs")
    if isinstance(n_jobs, int) and n_jobs > 1:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        return max(1, cores // n_jobs)  # the cores this process may use (affinity/cgroups), shared out
    return None


def _check_ddp_launch(trainer: L.Trainer) -> None:
    """Lightning starts the other DDP ranks of this machine by re-running the command line; in a sweep (-m) that
    command is the whole sweep, which every rank would then run on its own. Refuse before any rank is started."""
    launcher = trainer.strategy.launcher
    multirun = HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN
    if (multirun and isinstance(launcher, _SubprocessScriptLauncher) and launcher.num_processes > 1
            and not trainer.strategy.cluster_environment.creates_processes_externally):  # SLURM, torchrun: fine
        raise ConfigError(f"trainer=ddp with {launcher.num_processes} processes in a sweep (-m): Lightning would "
                          "re-run the whole sweep in every rank; run each job without -m, or submit the sweep with "
                          "cluster=slurm (one SLURM task per device)")


def _tensorboard(loggers: list[Logger]) -> TensorBoardLogger | None:
    return next((lg for lg in loggers if isinstance(lg, TensorBoardLogger)), None)


def tensorboard_hint(loggers: list[Logger]) -> str | None:
    """`tensorboard --logdir <absolute dir>`, working from any directory: a single run's directory, or the
    sweep's tensorboard/ folder, where its runs are named by their overrides."""
    tensorboard = _tensorboard(loggers)
    if tensorboard is None:
        return None
    root = Path(tensorboard.root_dir).absolute()  # <run dir>/tensorboard or <sweep dir>/tensorboard
    return f"tensorboard --logdir {root if tensorboard.version else root.parent}"


def _checkpoint(trainer: L.Trainer, monitored: bool) -> tuple[ModelCheckpoint | None, str | None]:
    """The monitored checkpoint callback (best model) or the unmonitored one (last.ckpt), and the file it saved."""
    callback = next((c for c in trainer.checkpoint_callbacks
                     if isinstance(c, ModelCheckpoint) and bool(c.monitor) == monitored), None)
    return callback, (callback.best_model_path or None) if callback is not None else None


def train(cfg: DictConfig) -> dict[str, Any]:
    """Run one training job described by `cfg` and return its record (also written to metrics.json)."""
    started = time.perf_counter()
    check_config(cfg)
    keep_freed_memory()  # CPU steps reuse their activation memory instead of page-faulting it in (allocator.py)
    threads = threads_per_job(cfg)
    if threads:
        torch.set_num_threads(threads)
        os.environ["OMP_NUM_THREADS"] = str(threads)  # DDP: Lightning keeps it and its ranks inherit it
    run_dir = Path(cfg.paths.output_dir)
    if completed_record(run_dir) is not None and not cfg.get("force"):
        raise ConfigError(f"{run_dir}: this run already completed; re-running into it would overwrite its "
                          f"{RECORD_NAME} (use a new directory, or force=true)")
    resume_from = _resume_checkpoint(cfg, run_dir)
    if resume_from is not None:
        _warn_config_drift(cfg, resume_from)
        log.info("resuming from %s", resume_from)
    log.info("run directory: %s", run_dir)
    L.seed_everything(cfg.seed, workers=True, verbose=False)

    datamodule = instantiate(cfg.data, augment=OmegaConf.to_container(cfg.augment, resolve=True),
                             imbalance=cfg.imbalance.strategy, imbalance_power=cfg.imbalance.get("power", 1.0),
                             _convert_="all")
    scheduler = instantiate(cfg.scheduler) if cfg.get("scheduler") else None
    model_kwargs: dict[str, Any] = {"optimizer": instantiate(cfg.optimizer), "scheduler": scheduler}
    datamodule.setup("fit")
    class_weights = datamodule.class_weights
    if class_weights is not None:
        model_kwargs["class_weights"] = class_weights.tolist()
    model = instantiate(cfg.model, **model_kwargs, _convert_="all")
    if resume_from is not None:  # a checkpoint of another network fails here, before the run directory is touched
        _check_compatible(model, resume_from)
    if rank_zero_only.rank == 0:  # DDP: every rank runs train(); only rank 0 writes the record
        atomic_write_json(run_dir / RECORD_NAME, {"status": "running", "task_name": cfg.task_name,
                                                  "run_dir": str(run_dir), "seed": cfg.seed,
                                                  "overrides": _overrides(), "tags": list(cfg.get("tags") or [])})

    history = EpochHistory()
    config_dict = OmegaConf.to_container(cfg, resolve=True)
    callbacks: list[Callback] = [*_instantiate_dict(cfg.get("callbacks")), history, ConfigInCheckpoint(config_dict),
                                 RNGStateInCheckpoint()]
    loggers: list[Logger] = _instantiate_dict(cfg.get("logger"))
    silence_known_noise()
    trainer: L.Trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False,
                                     plugins=[AtomicCheckpointIO()])
    _check_ddp_launch(trainer)

    with logging_redirect_tqdm(loggers=[logging.getLogger()]):  # log lines above the progress bar, not inside it
        trainer.fit(model, datamodule=datamodule, ckpt_path=resume_from)
    checkpoint, best_path = _checkpoint(trainer, monitored=True)
    eval_weights = cfg.get("eval_weights", "best")
    eval_path = best_path if eval_weights == "best" else _checkpoint(trainer, monitored=False)[1]
    fit_time, epoch_rows = history.elapsed(), list(history.rows)  # before validate() restores older callback state

    model.log_prefix = "final/"
    if cfg.get("final_tta"):
        model.set_tta(list(cfg.final_tta))
    trainer.validate(model, datamodule=datamodule, ckpt_path=eval_path, verbose=False)
    val_report = model.reports.get("val")
    test_report = None
    if cfg.get("test") and datamodule.has_split("test"):
        trainer.test(model, datamodule=datamodule, ckpt_path=eval_path, verbose=False)
        test_report = model.reports.get("test")

    best_epoch = None
    if best_path and checkpoint is not None and checkpoint.best_model_score is not None:
        best_epoch = next((r["epoch"] for r in epoch_rows if r.get(checkpoint.monitor) is not None
                           and abs(r[checkpoint.monitor] - float(checkpoint.best_model_score)) < 1e-7), None)
    record: dict[str, Any] = {
        "status": "completed",
        "task_name": cfg.task_name,
        "run_dir": str(run_dir),
        "overrides": _overrides(),
        "tags": list(cfg.get("tags") or []),
        "resumed_from": str(resume_from) if resume_from else None,
        "seed": cfg.seed,
        "threads": torch.get_num_threads(),
        "model": {"network": cfg.model.net._target_.rsplit(".", 1)[-1],
                  "parameters": sum(p.numel() for p in model.net.parameters())},
        "epochs": trainer.current_epoch,
        "global_step": trainer.global_step,
        "fit_time_s": round(fit_time, 2),
        "wall_time_s": round(time.perf_counter() - started, 2),
        "best": {"monitor": checkpoint.monitor if checkpoint else None, "epoch": best_epoch,
                 "score": float(checkpoint.best_model_score) if checkpoint and checkpoint.best_model_score is not None
                 else None, "ckpt_path": best_path},
        "evaluated": {"weights": eval_weights, "ckpt_path": eval_path, "tta": list(model.hparams.tta)},
        "val": val_report,
        "test": test_report,
        "history": epoch_rows,
        **environment_info(),
    }
    tensorboard = _tensorboard(trainer.loggers)
    if tensorboard is not None:  # where this job's TensorBoard run is (in a sweep: beside the jobs)
        record["tensorboard"] = str(Path(tensorboard.log_dir).absolute())
    if not trainer.is_global_zero:
        return record
    atomic_write_json(run_dir / RECORD_NAME, record)
    if val_report is None:  # trainer.limit_val_batches=0: nothing was evaluated, so no final metrics to show
        log.info("no validation ran (trainer.limit_val_batches=0); record: %s", run_dir / RECORD_NAME)
    else:
        _log_final_hparams(cfg, trainer.loggers, val_report, test_report)  # fast_dev_run: Lightning's DummyLogger
        log.info("val acc %.4f macro-F1 %.4f; record: %s", val_report["accuracy"], val_report["macro_f1"],
                 run_dir / RECORD_NAME)
    hint = tensorboard_hint(trainer.loggers)
    log.info("run directory: %s%s", run_dir.absolute(), f"\nTensorBoard: {hint}" if hint else "")
    return record


def _log_final_hparams(cfg: DictConfig, loggers: list[Logger], val: dict[str, Any],
                       test: dict[str, Any] | None) -> None:
    """TensorBoard's HPARAMS tab: this run's real final metrics (no placeholder hp_metric) beside the settings that
    tell it apart (tensorboard_hparams=overrides: the swept overrides), not ~45 constants of .hydra/config.yaml."""
    final = {"hparams/val_acc": val["accuracy"], "hparams/val_macro_f1": val["macro_f1"]}
    if test:
        final |= {"hparams/test_acc": test["accuracy"], "hparams/test_macro_f1": test["macro_f1"]}
    settings = override_hparams(cfg)
    if cfg.get("tensorboard_hparams", "overrides") == "all":
        settings |= _flat_hparams(cfg)
    for logger in loggers:
        if isinstance(logger, TensorBoardLogger):
            logger.log_hyperparams(settings, metrics=final)
            logger.save()  # hparams.yaml beside the events: these settings, not the {} of the fit's end
            logger.experiment.flush()


def failure_reason(error: BaseException) -> str:
    """One line: the error and, if it wraps another (Hydra's InstantiationException does), the root cause."""
    chain = [error]
    while chain[-1].__cause__ is not None and len(chain) < 10:
        chain.append(chain[-1].__cause__)
    lines = [f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}" for e in chain]
    return " <- ".join(dict.fromkeys(lines))


def record_failure(cfg: DictConfig, error: BaseException) -> None:
    """failure.txt and a failed metrics.json - never over a completed run's record (a refused or failed resume)."""
    run_dir = Path(cfg.paths.output_dir)
    if completed_record(run_dir) is not None:
        log_to_files("".join(traceback.format_exception(error)))
        return
    reason = failure_reason(error)
    rank = rank_zero_only.rank
    trace = "".join(traceback.format_exception(error))
    if rank != 0:  # DDP: a failing rank leaves its traceback; the record is rank 0's
        (run_dir / f"failure_rank{rank}.txt").write_text(trace)
        return
    (run_dir / "failure.txt").write_text(trace)
    atomic_write_json(run_dir / RECORD_NAME, {
        "status": "failed", "error": reason, "task_name": cfg.task_name, "run_dir": str(run_dir), "seed": cfg.seed,
        "overrides": _overrides(),
        **environment_info(),
    })


def record_interrupted(cfg: DictConfig) -> None:
    """Ctrl-C: the record says `interrupted` (resumable with ckpt_path=<run dir>), not `running` forever."""
    run_dir = Path(cfg.paths.output_dir)
    if rank_zero_only.rank != 0 or completed_record(run_dir) is not None or not run_dir.is_dir():
        return
    atomic_write_json(run_dir / RECORD_NAME, {"status": "interrupted", "task_name": cfg.task_name,
                                              "run_dir": str(run_dir), "seed": cfg.seed, "overrides": _overrides(),
                                              "resume": f"python -m fer_lightning.train <same overrides> "
                                                        f"ckpt_path={run_dir}"})
