"""One training job behind `fer_lightning.train`: build -> fit -> evaluate the best (or last) checkpoint -> record."""

from __future__ import annotations

import contextlib
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
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import Logger, TensorBoardLogger
from lightning.pytorch.strategies.launchers.subprocess_script import _SubprocessScriptLauncher
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf
from tqdm.contrib.logging import logging_redirect_tqdm

from fer_lightning import rundir
from fer_lightning.allocator import keep_freed_memory
from fer_lightning.callbacks import EpochHistory, EvaluationResults, RunInCheckpoint
from fer_lightning.checkpoint import AtomicCheckpointIO, CheckpointError, find_resume_checkpoint
from fer_lightning.cli import log_to_files
from fer_lightning.config import ConfigError, check_config
from fer_lightning.dashboard import override_hparams
from fer_lightning.data.datamodule import FERDataModule
from fer_lightning.library_noise import silence_known_noise
from fer_lightning.module import FERClassifier
from fer_lightning.runrecord import RECORD_NAME, RunRecord, completed_record

log = logging.getLogger(__name__)

# the settings whose change between an interrupted run and its resume changes the experiment
RUN_SETTINGS = ("data", "augment", "model", "optimizer", "scheduler", "imbalance", "distill", "trainer", "seed")


def train(cfg: DictConfig) -> dict[str, Any]:
    """Run one training job described by `cfg` and return its record (also written to metrics.json)."""
    started = time.perf_counter()
    record = run_record(cfg)
    if cfg.get("skip_completed") and (done := completed_record(record.run_dir)):
        log.info("skip_completed: %s already finished", record.run_dir)
        return done
    check_config(cfg)
    if problem := rundir.train_problem(cfg, record.run_dir):  # direct calls: the rules the CLI applies before Hydra
        raise ConfigError(problem)
    _configure_cpu(threads_per_job(cfg))
    resume_from, saved = _resume_checkpoint(cfg, record.run_dir)
    log.info("run directory: %s", record.run_dir)
    config = OmegaConf.to_container(cfg, resolve=True)
    L.seed_everything(cfg.seed, workers=True, verbose=False)

    datamodule: FERDataModule = instantiate(cfg.data, _convert_="all")
    scheduler = instantiate(cfg.scheduler) if cfg.get("scheduler") else None
    distillation = instantiate(cfg.distill, _convert_="all") if cfg.get("distill") else None
    model: FERClassifier = instantiate(cfg.model, optimizer=instantiate(cfg.optimizer), scheduler=scheduler,
                                       distillation=distillation, _convert_="all")
    if resume_from is not None:  # a checkpoint of another network fails here, before the record is touched
        _check_resume(resume_from, saved, model, datamodule, config)
    record.running()
    history, results = EpochHistory(), EvaluationResults()
    callbacks = [*_instantiate_all(cfg.get("callbacks")), history, results, RunInCheckpoint(config)]
    loggers: list[Logger] = _instantiate_all(cfg.get("logger"))
    silence_known_noise()
    trainer: L.Trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False,
                                     plugins=[AtomicCheckpointIO()])
    _check_ddp_launch(trainer)
    with logging_redirect_tqdm(loggers=[logging.getLogger()]):  # log lines above the progress bar, not inside it
        trainer.fit(model, datamodule=datamodule, ckpt_path=resume_from)
    fit_time, epoch_rows = history.elapsed(), list(history.rows)  # before validate() restores older callback state

    best = _best_checkpoint(trainer)
    evaluated = best["ckpt_path"] if cfg.eval_weights == "best" else _checkpoint(trainer, monitored=False)[1]
    if cfg.get("final_tta"):
        model.set_tta(list(cfg.final_tta), key="final_tta")
    val, test = _evaluate_checkpoint(trainer, model, datamodule, results, evaluated, test=bool(cfg.test))
    outcome = record.completed(
        resumed_from=str(resume_from) if resume_from else None, threads=torch.get_num_threads(),
        model={"network": type(model.net).__name__, "parameters": sum(p.numel() for p in model.net.parameters())},
        epochs=trainer.current_epoch, global_step=trainer.global_step, fit_time_s=round(fit_time, 2),
        wall_time_s=round(time.perf_counter() - started, 2), best=best,
        evaluated={"weights": cfg.eval_weights, "ckpt_path": evaluated, "tta": list(model.hparams.tta)},
        val=val, test=test, history=epoch_rows, tensorboard=_tensorboard_dir(trainer.loggers))
    if trainer.is_global_zero:
        _announce(outcome, trainer.loggers, override_hparams(cfg))
    return outcome


def run_record(cfg: DictConfig) -> RunRecord:
    """metrics.json of this job; Ctrl-C marks it `interrupted` (resumable with ckpt_path=<run dir>)."""
    overrides = list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []
    return RunRecord(cfg.paths.output_dir, cfg.task_name, cfg.seed, overrides, list(cfg.get("tags") or []),
                     rank=rank_zero_only.rank)  # DDP: every rank runs train(); only rank 0 writes the record


def record_failure(cfg: DictConfig, error: BaseException) -> None:
    """failure.txt and a failed metrics.json; over a completed run's record, the traceback goes to the log only."""
    if not run_record(cfg).failed(error):
        log_to_files("".join(traceback.format_exception(error)))


def objective(record: dict[str, Any], metric: str) -> float | None:
    """The number a sweeper optimises: `val/acc` or `val/macro_f1` of the evaluated checkpoint."""
    split, _, name = metric.partition("/")
    return (record.get(split) or {}).get({"acc": "accuracy"}.get(name, name))


def _instantiate_all(group: DictConfig | None) -> list[Any]:
    """The callbacks or loggers of a config group: one `_target_` node each, null entries switched off."""
    return [instantiate(node) for node in (group or {}).values() if node is not None and "_target_" in node]


def threads_per_job(cfg: DictConfig) -> int | None:
    """`threads_per_job`, else the launcher's share of the cores, so parallel sweep jobs do not oversubscribe them."""
    launcher = HydraConfig.get().launcher if HydraConfig.initialized() else {}
    if cfg.get("threads_per_job") or launcher.get("cpus_per_task"):  # given, or submitit's
        return int(cfg.get("threads_per_job") or launcher.get("cpus_per_task"))
    n_jobs = launcher.get("n_jobs")  # joblib's: the cores this process may use (affinity/cgroups), shared out
    if isinstance(n_jobs, int) and n_jobs > 1:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        return max(1, cores // n_jobs)
    return None


def _configure_cpu(threads: int | None) -> None:
    """CPU threads (None: torch's default) and an allocator that keeps freed memory for reuse (allocator.py)."""
    keep_freed_memory()  # CPU steps reuse their activation memory instead of page-faulting it in
    if threads:
        torch.set_num_threads(threads)
        os.environ["OMP_NUM_THREADS"] = str(threads)  # DDP: Lightning keeps it and its ranks inherit it


def _resume_checkpoint(cfg: DictConfig, run_dir: Path) -> tuple[Path | None, dict[str, Any]]:
    """ckpt_path, or with skip_completed an earlier attempt's last.ckpt; with its contents, read once."""
    if cfg.get("ckpt_path"):
        return find_resume_checkpoint(cfg.ckpt_path)
    with contextlib.suppress(ValueError):  # no readable checkpoint: start afresh
        if cfg.get("skip_completed") and (run_dir / "checkpoints").is_dir():
            return find_resume_checkpoint(run_dir)
    return None, {}


def _check_resume(checkpoint: Path, saved: dict[str, Any], model: FERClassifier, datamodule: FERDataModule,
                  config: dict[str, Any]) -> None:
    """Warn where the run's settings changed; refuse weights that do not fit this network, or a scheduler state
    that this run's scheduler cannot load (e.g. written by an earlier version of its code)."""
    log.info("resuming from %s", checkpoint)
    if model.scheduler_factory is not None and saved.get("lr_schedulers"):
        probe = model.scheduler_factory(torch.optim.SGD([torch.zeros(1)], lr=1.0), max_epochs=1, steps_per_epoch=1)
        expected = set(probe["scheduler"].state_dict())
        if any(set(state) != expected for state in saved["lr_schedulers"]):
            raise CheckpointError(f"ckpt_path={checkpoint}: its LR-scheduler state does not fit this run's "
                                  f"{type(probe['scheduler']).__name__} (written by other scheduler code); start a "
                                  "fresh run without ckpt_path, or one with another scheduler=")
    then, now = ({**run, "trainer": {**run["trainer"], "max_epochs": None}}  # training longer: a legitimate resume
                 for run in (saved["fer_lightning"]["config"], config))
    if differing := [key for key in RUN_SETTINGS if then.get(key) != now.get(key)]:
        log.warning("resuming %s with settings that differ from the checkpoint's run in: %s", checkpoint,
                    ", ".join(differing))
    current = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    if datamodule.imbalance == "weighted_loss":  # FERClassifier.setup fills them from the data
        current.setdefault("class_weights", (len(model.class_names),))
    saved_shapes = {k: tuple(v.shape) for k, v in saved["state_dict"].items()}
    if wrong := sorted({key for key, _ in current.items() ^ saved_shapes.items()}):  # missing, extra or reshaped
        raise CheckpointError(f"ckpt_path={checkpoint}: its weights do not fit this run's network ({len(wrong)} "
                              f"tensors differ, e.g. {wrong[0]}); resume with the original run's overrides")


def _check_ddp_launch(trainer: L.Trainer) -> None:
    """Lightning starts the other DDP ranks by re-running the command line: in a sweep (-m), the whole sweep."""
    launcher = trainer.strategy.launcher
    multirun = HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN
    if (multirun and isinstance(launcher, _SubprocessScriptLauncher) and launcher.num_processes > 1
            and not trainer.strategy.cluster_environment.creates_processes_externally):  # SLURM, torchrun: fine
        raise ConfigError(f"trainer=ddp with {launcher.num_processes} processes in a sweep (-m): Lightning would "
                          "re-run the whole sweep in every rank; run each job without -m, or submit the sweep with "
                          "cluster=slurm (one SLURM task per device)")


def _checkpoint(trainer: L.Trainer, monitored: bool) -> tuple[ModelCheckpoint | None, str | None]:
    """The monitored checkpoint callback (best model) or the unmonitored one (last.ckpt), and the file it saved."""
    callback = next((c for c in trainer.checkpoint_callbacks
                     if isinstance(c, ModelCheckpoint) and bool(c.monitor) == monitored), None)
    return callback, getattr(callback, "best_model_path", None) or None


def _best_checkpoint(trainer: L.Trainer) -> dict[str, Any]:
    """The monitored checkpoint's monitor, file, score and epoch (the one saved in the file itself)."""
    callback, path = _checkpoint(trainer, monitored=True)
    score = getattr(callback, "best_model_score", None)
    return {"monitor": getattr(callback, "monitor", None),
            "epoch": torch.load(path, map_location="cpu", weights_only=True, mmap=True)["epoch"] if path else None,
            "score": None if score is None else float(score), "ckpt_path": path}


def _evaluate_checkpoint(trainer: L.Trainer, model: FERClassifier, datamodule: FERDataModule,
                         results: EvaluationResults, ckpt_path: str | None,
                         test: bool) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """The val and (when asked, and the source has one) test reports of `ckpt_path` (None: the current weights)."""
    results.reports.clear()
    trainer.validate(model, datamodule=datamodule, ckpt_path=ckpt_path, verbose=False)
    if test and datamodule.has_split("test"):
        trainer.test(model, datamodule=datamodule, ckpt_path=ckpt_path, verbose=False)
    return results.reports.get("val"), results.reports.get("test")


def _tensorboard(loggers: list[Logger]) -> TensorBoardLogger | None:
    """This job's TensorBoard logger (fast_dev_run replaces it with Lightning's DummyLogger: None)."""
    return next((lg for lg in loggers if isinstance(lg, TensorBoardLogger)), None)


def _tensorboard_dir(loggers: list[Logger]) -> str | None:
    tensorboard = _tensorboard(loggers)
    return str(Path(tensorboard.log_dir).absolute()) if tensorboard is not None else None


def _announce(record: dict[str, Any], loggers: list[Logger], settings: dict[str, Any]) -> None:
    """The final numbers in the log, and in TensorBoard's HPARAMS tab beside `settings` (the swept overrides)."""
    path, tensorboard, val = Path(record["run_dir"]) / RECORD_NAME, _tensorboard(loggers), record["val"]
    if val is None:  # trainer.limit_val_batches=0: nothing was evaluated, so no final metrics to show
        log.info("no validation ran (trainer.limit_val_batches=0); record: %s", path)
    else:
        log.info("val acc %.4f macro-F1 %.4f; record: %s", val["accuracy"], val["macro_f1"], path)
    hint = ""
    if tensorboard is not None:  # an absolute --logdir: the run's own, or the sweep's (runs named by overrides)
        if val is not None:
            final = {f"hparams/{split}_{name}": record[split][key] for split in ("val", "test") if record[split]
                     for name, key in (("acc", "accuracy"), ("macro_f1", "macro_f1"))}
            tensorboard.log_hyperparams(settings, metrics=final)
            tensorboard.save()  # hparams.yaml beside the events: these settings, not the {} of the fit's end
            tensorboard.experiment.flush()
        root = Path(tensorboard.root_dir).absolute()
        hint = f"\nTensorBoard: tensorboard --logdir {root if tensorboard.version else root.parent}"
    log.info("run directory: %s%s", path.parent.absolute(), hint)
