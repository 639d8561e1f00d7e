"""The dashboards do not mislead: a sweep's TensorBoard runs are named by their swept overrides, HPARAMS holds those
settings beside the final metrics, and the end-of-run hint works from any directory.

The check reads a finished tiny sweep with TensorBoard's own loader (EventMultiplexer: what `tensorboard --logdir`
serves its scalars, images and hparams plugins from), without starting a server; docs/check_tensorboard.py asks a
running server the same over HTTP.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import lightning.pytorch as pl
import pytest
from lightning.pytorch.callbacks import TQDMProgressBar
from lightning.pytorch.loggers import TensorBoardLogger
from omegaconf import OmegaConf
from tensorboard.backend.event_processing.event_multiplexer import EventMultiplexer
from tensorboard.plugins.hparams import metadata as hparams_metadata

from fer_lightning.callbacks import ProgressBar
from fer_lightning.dashboard import run_name, shown_overrides, swept_keys
from tests.conftest import REPO_ROOT, TINY_DATA
from tests.test_sweeps import compose_train

ONE_EPOCH = ["trainer.max_epochs=1", "+trainer.limit_train_batches=2", "+trainer.limit_val_batches=1",
             "+trainer.limit_test_batches=1", "trainer.num_sanity_val_steps=0", "trainer.log_every_n_steps=1",
             "callbacks.progress_bar.refresh_rate=0", "logger=tensorboard"]
HPARAMS_TAGS = {hparams_metadata.EXPERIMENT_TAG, hparams_metadata.SESSION_START_INFO_TAG,
                hparams_metadata.SESSION_END_INFO_TAG}


def load_runs(logdir: Path) -> EventMultiplexer:
    """What `tensorboard --logdir <logdir>` loads: one run per directory holding event files."""
    multiplexer = EventMultiplexer(size_guidance={"scalars": 0, "images": 0})
    return multiplexer.AddRunsFromDirectory(str(logdir)).Reload()


def session_hparams(content: bytes) -> dict[str, object]:
    info = hparams_metadata.parse_session_start_info_plugin_data(content)
    return {key: value.WhichOneof("kind") and getattr(value, value.WhichOneof("kind"))
            for key, value in info.hparams.items()}


@pytest.mark.slow
def test_sweep_runs_are_named_by_their_overrides(tmp_path: Path) -> None:
    # a relative hydra.sweep.dir, launched from elsewhere than the checkout: the printed hint is still absolute
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO_ROOT)}
    command = [sys.executable, "-m", "fer_lightning.train", "-m", "optimizer=adamw,sgd", *TINY_DATA, *ONE_EPOCH,
               f"paths.cache_dir={tmp_path / 'cache'}", "hydra.sweep.dir=sweep"]
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    sweep = tmp_path / "sweep"
    assert f"tensorboard --logdir {sweep / 'tensorboard'}\n" in result.stdout + result.stderr

    runs = load_runs(sweep / "tensorboard")
    expected = {"optimizer=adamw", "optimizer=sgd"}  # not 0/tensorboard; the constant overrides are not in it
    assert set(runs.Runs()) == expected
    for run in expected:
        tags = runs.Runs()[run]
        assert {"val/acc", "val/macro_f1", "train/loss_step", "lr/net", "final/val/acc", "final/test/acc",
                "hparams/val_acc", "hparams/test_macro_f1"} <= set(tags["scalars"])
        assert {"val/confusion_matrix", "final/val/confusion_matrix", "final/test/confusion_matrix"} <= set(
            tags["images"])
    hparams = runs.PluginRunToTagToContent(hparams_metadata.PLUGIN_NAME)
    assert set(hparams) == expected and all(set(tags) == HPARAMS_TAGS for tags in hparams.values())
    # HPARAMS: the swept setting only (not ~45 constants), beside the final metrics
    assert {run: session_hparams(tags[hparams_metadata.SESSION_START_INFO_TAG]) for run, tags in hparams.items()} \
        == {"optimizer=adamw": {"optimizer": "adamw"}, "optimizer=sgd": {"optimizer": "sgd"}}
    experiment = hparams_metadata.parse_experiment_plugin_data(hparams["optimizer=sgd"][
        hparams_metadata.EXPERIMENT_TAG])
    assert [m.name.tag for m in experiment.metric_infos] == ["hparams/val_acc", "hparams/val_macro_f1",
                                                             "hparams/test_acc", "hparams/test_macro_f1"]
    assert [h.name for h in experiment.hparam_infos] == ["optimizer"]

    # the jobs' own directories keep their layout; each record says where its TensorBoard run is
    records = [json.loads((sweep / str(i) / "metrics.json").read_text()) for i in range(2)]
    assert [r["tensorboard"] for r in records] == [str(sweep / "tensorboard" / f"optimizer={o}")
                                                   for o in ("adamw", "sgd")]
    assert all((sweep / str(i) / "checkpoints" / "last.ckpt").exists() for i in range(2))
    assert (sweep / "multirun.yaml").exists() and not (sweep / "0" / "tensorboard").exists()


def test_swept_keys_of_an_experiment_and_a_search() -> None:
    # the experiment's own sweep (optimizers x seeds); seed=1 on the command line fixes the seed
    assert swept_keys(compose_train("experiment=ablation_optimizer", "seed=1")) == {"optimizer"}
    assert swept_keys(compose_train("experiment=ablation_optimizer")) == {"optimizer", "seed"}
    command_line = OmegaConf.create({"hydra": {"overrides": {"task": ["optimizer=adamw,sgd", "data.batch_size=16",
                                                                     "+trainer.limit_train_batches=1,2"]}}})
    assert swept_keys(command_line) == {"optimizer", "trainer.limit_train_batches"}
    # Optuna's search space, less the key the command line fixes
    assert swept_keys(compose_train("hparams_search=optuna", "data.batch_size=32")) == {
        "optimizer.lr", "optimizer.weight_decay", "model.net.dropout", "model.label_smoothing"}


EXCLUDE = list(compose_train().hydra.job.config.override_dirname.exclude_keys)
JOB = ["data=fer2013", "data.path=/data/fer2013.csv.gz", "optimizer=sgd", "seed=2", "+trainer.limit_train_batches=2",
       "paths.cache_dir=/scratch/cache", "model.net.weights=/models/w.pt", "skip_completed=true"]


@pytest.mark.parametrize(("swept", "name"), [
    ({"optimizer", "seed"}, "optimizer=sgd,seed=2"),
    # no multirun.yaml: all of the job's overrides, but never a path, a path-valued key or run control
    (None, "+trainer.limit_train_batches=2,data=fer2013,optimizer=sgd,seed=2"),
    # a sweep over data paths: the path stays out, the job number keeps the runs apart
    ({"data.path", "seed"}, "seed=2,job=3"),
])
def test_run_name_is_sanitized(swept: set[str] | None, name: str) -> None:
    shown, dropped = shown_overrides(JOB, swept, EXCLUDE)
    assert run_name(shown, job_num=3, dropped=dropped) == name


def test_a_long_run_name_stays_one_directory() -> None:
    shown, _ = shown_overrides([f"+k{i}={'x' * 30}" for i in range(20)], None)
    name = run_name(shown)
    assert len(name.encode()) <= 200 and "/" not in name and name.startswith("+k0=")


def test_the_training_bar_leaves_out_the_cut_run_name(tmp_path: Path) -> None:
    """Lightning would show a sweep run named optimizer=fast_sgd,seed=2 as v_num=ed=2."""
    logger = TensorBoardLogger(tmp_path, name="", version="optimizer=fast_sgd,seed=2")
    trainer = pl.Trainer(logger=logger, callbacks=[ProgressBar()], accelerator="cpu", enable_model_summary=False)
    module = pl.LightningModule()
    assert TQDMProgressBar().get_metrics(trainer, module)["v_num"] == "ed=2"  # what the plain bar shows
    assert "v_num" not in trainer.progress_bar_callback.get_metrics(trainer, module)
