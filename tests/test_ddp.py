"""Lightning DDP: per-rank shards of the weighted sampler, and a 2-process CPU (gloo) run through the Hydra entry
point that writes one record, with half the batches per rank and every evaluation image counted once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from lightning.fabric.plugins.environments import SLURMEnvironment
from lightning.fabric.utilities.distributed import DistributedSamplerWrapper
from lightning.pytorch.trainer.connectors.data_connector import _get_distributed_sampler
from lightning.pytorch.trainer.states import RunningStage
from lightning.pytorch.utilities.data import _update_dataloader
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch.utils.data import WeightedRandomSampler

from fer_lightning.data.datamodule import FERDataModule
from tests.conftest import REPO_ROOT, TINY_DATA, compose_config
from tests.test_launchers import group

# FER-2013's training-set class counts (angry ... neutral): disgust is 15x rarer than happy
FER_COUNTS = [3995, 436, 4097, 7215, 4830, 3171, 4965]


def imbalanced_labels() -> torch.Tensor:
    return torch.cat([torch.full((n // 4,), k) for k, n in enumerate(FER_COUNTS)])


def test_weighted_sampler_is_sharded_per_rank() -> None:
    """Lightning wraps WeightedRandomSampler in DistributedSamplerWrapper: each rank gets a disjoint half of one
    weighted draw (every rank seeds the same, so draws the same), and each half is class-balanced."""
    labels = imbalanced_labels()
    weights = (1.0 / torch.bincount(labels).double())[labels]
    def draw() -> WeightedRandomSampler:
        return WeightedRandomSampler(weights, len(labels), replacement=True, generator=torch.Generator().manual_seed(3))

    shards = []
    for rank in (0, 1):
        inner = draw()
        sampler = DistributedSamplerWrapper(inner, num_replicas=2, rank=rank, shuffle=True, seed=42)
        sampler.set_epoch(0)
        shards.append(list(sampler))
    full = list(draw())
    assert len(shards[0]) == len(shards[1]) == len(labels) // 2
    assert sorted(shards[0] + shards[1]) == sorted(full)  # the two shards partition the draw
    for shard in shards:
        share = torch.bincount(labels[shard], minlength=7).double() / len(shard)
        assert torch.all((share - 1 / 7).abs() < 0.03), share  # balanced although the labels are not


def test_lightning_puts_our_train_loader_behind_a_distributed_sampler() -> None:
    """What Lightning does to the datamodule's loader under DDP: a DistributedSamplerWrapper around the weighted
    sampler, the loader rebuilt with our batch-at-once collate, each rank half the batches."""
    datamodule = FERDataModule(synthetic={"n_train": 96, "n_val": 8, "n_test": 8}, imbalance="sampler", batch_size=16)
    datamodule.setup("fit")
    loader = datamodule.train_dataloader()
    assert isinstance(loader.sampler, WeightedRandomSampler)
    seen = []
    for rank in (0, 1):
        sampler = _get_distributed_sampler(loader, shuffle=True, overfit_batches=0, mode=RunningStage.TRAINING,
                                           num_replicas=2, rank=rank)
        assert isinstance(sampler, DistributedSamplerWrapper)
        per_rank = _update_dataloader(loader, sampler, mode=RunningStage.TRAINING)
        batches = list(per_rank)
        assert len(per_rank) == len(batches) == 3  # 96 images / 2 ranks / 16
        images, labels = batches[0]
        assert images.shape == (16, 48, 48) and images.dtype == torch.uint8 and labels.shape == (16,)
        seen.append(torch.cat([b[1] for b in batches]))
    assert seen[0].numel() == seen[1].numel() == 48


@pytest.mark.slow
def test_ddp_two_cpu_processes_write_one_record(tmp_path: Path) -> None:
    """`trainer=ddp` on 2 CPU processes (gloo) through `python -m fer_lightning.train`: Lightning re-runs the
    command for rank 1 with the same hydra.run.dir; rank 0 alone writes the record, checkpoints and TensorBoard."""
    run_dir = tmp_path / "run"
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "fer_lightning.train", "trainer=ddp", "trainer.accelerator=cpu",
               "trainer.devices=2", "imbalance=sampler", "data.synthetic.n_train=96", "data.synthetic.n_val=47",
               "data.synthetic.n_test=47", "data.batch_size=16", "data.eval_batch_size=16", "trainer.max_epochs=2",
               "trainer.num_sanity_val_steps=0", "trainer.log_every_n_steps=1", "logger=tensorboard",
               "callbacks.progress_bar.refresh_rate=0", "~callbacks.confusion_matrix", f"hydra.run.dir={run_dir}"]
    process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, start_new_session=True)
    try:
        output, _ = process.communicate(timeout=180)
    finally:
        if process.poll() is None:  # a hung rank: end the whole process group (rank 0 and the rank it started)
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
    assert process.returncode == 0, output[-3000:]
    assert "GLOBAL_RANK: 1, MEMBER: 2/2" in output and "distributed_backend=gloo" in output

    assert [p.relative_to(tmp_path) for p in tmp_path.rglob("metrics.json")] == [Path("run/metrics.json")]
    record = json.loads((run_dir / "metrics.json").read_text())
    assert record["status"] == "completed" and record["epochs"] == 2
    # 96 training images, 16 per batch: 6 batches per epoch on one device, 3 per rank with 2 ranks
    assert record["global_step"] == 2 * 3
    assert [row["step"] for row in record["history"]] == [3, 6]
    # val/test metrics summed over both ranks (torchmetrics sync), each of the 47 images counted once
    assert record["val"]["support"] == 47 and record["test"]["support"] == 47
    assert sum(map(sum, record["val"]["confusion_matrix"])) == 47
    checkpoints = sorted(p.name for p in (run_dir / "checkpoints").iterdir())
    assert len(checkpoints) == 2 and checkpoints[1] == "last.ckpt" and checkpoints[0].startswith("epoch_")
    events = list((run_dir / "tensorboard").glob("events.out.tfevents.*"))  # ...tfevents.<time>.<host>.<pid>.<n>
    assert len({p.name.rsplit(".", 2)[1] for p in events}) == 1  # one process writes TensorBoard: rank 0
    scalars = EventAccumulator(str(run_dir / "tensorboard")).Reload().Tags()["scalars"]
    assert "hparams/val_acc" in scalars and "val/acc" in scalars


def test_on_slurm_the_ranks_are_the_slurm_tasks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """cluster=slurm with tasks_per_node = trainer.devices: Lightning reads rank and world size from SLURM and
    starts no process of its own (what submitit's srun started are the ranks)."""
    slurm = {"SLURM_NTASKS": "2", "SLURM_NTASKS_PER_NODE": "2", "SLURM_JOB_NAME": "train", "SLURM_JOB_ID": "4242",
             "SLURM_PROCID": "1", "SLURM_LOCALID": "1", "SLURM_NODEID": "0", "SLURM_NODELIST": "node1"}
    for key, value in slurm.items():
        monkeypatch.setenv(key, value)
    from lightning.pytorch.utilities import rank_zero_only

    # the Trainer below sets the process-wide rank to 1; put it back so later tests log as rank 0 again
    monkeypatch.setattr(rank_zero_only, "rank", rank_zero_only.rank)
    cfg = compose_config([group("cluster", "slurm"), "trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2",
                          "trainer.precision=32-true", "hydra.launcher.tasks_per_node=2", "hydra.mode=MULTIRUN"],
                         tmp_path)
    trainer = instantiate(cfg.trainer, logger=False, enable_checkpointing=False)
    assert isinstance(trainer.strategy.cluster_environment, SLURMEnvironment)
    assert (trainer.global_rank, trainer.world_size) == (1, 2)
    # no re-run of the command line: SLURM started both ranks, so a SLURM sweep may use DDP
    assert trainer.strategy.cluster_environment.creates_processes_externally
    from fer_lightning.jobs.train import _check_ddp_launch

    _check_ddp_launch(trainer)  # not refused, although this is a sweep job


@pytest.mark.slow
def test_ddp_in_a_local_sweep_is_refused(tmp_path: Path) -> None:
    """Lightning would start rank 1 by re-running the command line, i.e. the whole sweep: refused, and recorded
    as the job's failure (the sweep goes on)."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "fer_lightning.train", "-m", *TINY_DATA, "trainer=ddp", "trainer.accelerator=cpu",
               "trainer.devices=2", "logger=csv", f"hydra.sweep.dir={tmp_path}", "seed=1"]
    result = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]
    record = json.loads((tmp_path / "0" / "metrics.json").read_text())
    assert record["status"] == "failed" and "re-run the whole sweep in every rank" in record["error"]
    assert "GLOBAL_RANK: 1" not in result.stdout + result.stderr
