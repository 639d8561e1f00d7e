"""Parallel sweeps through Hydra launchers (joblib, submitit local), a submitit requeue that resumes from
last.ckpt, and the sbatch script that `cluster=slurm` submits (built by the plugin's own launch code)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import submitit
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from fer_lightning.config import CONFIG_DIR
from fer_lightning.jobs.train import threads_per_job
from tests.conftest import REPO_ROOT, TINY_DATA, compose_config

QUICK = ["+trainer.limit_train_batches=2", "+trainer.limit_val_batches=1", "trainer.max_epochs=1",
         "trainer.num_sanity_val_steps=0", "logger=csv", "callbacks.progress_bar.refresh_rate=0", "test=false"]


def group(name: str, option: str) -> str:
    """`name=option` when conf/train.yaml lists the group in its defaults (`- launcher: null`), else `+name=option`."""
    defaults = OmegaConf.load(Path(CONFIG_DIR) / "train.yaml").defaults
    listed = any(isinstance(entry, DictConfig) and name in entry for entry in defaults)
    return f"{'' if listed else '+'}{name}={option}"


@pytest.fixture(autouse=True)
def _clear_hydra() -> Iterator[None]:
    yield
    GlobalHydra.instance().clear()


def sweep(sweep_dir: Path, *overrides: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONWARNINGS": "ignore", **(env or {})}
    env.pop("OMP_NUM_THREADS", None)  # the threads a job gets must come from threads_per_job, not from the env
    command = [sys.executable, "-m", "fer_lightning.train", "-m", *TINY_DATA, *QUICK,
               f"hydra.sweep.dir={sweep_dir}", *overrides]
    return subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)


def records(sweep_dir: Path) -> list[dict]:
    return [json.loads((sweep_dir / str(i) / "metrics.json").read_text()) for i in range(2)]


def test_threads_per_job_comes_from_the_setting_then_the_launcher(tmp_path: Path) -> None:
    cores = os.cpu_count() or 1
    assert threads_per_job(compose_config([group("launcher", "parallel_cpu")], tmp_path)) == max(1, cores // 2)
    assert threads_per_job(compose_config([group("launcher", "parallel_cpu"), "hydra.launcher.n_jobs=1"],
                                          tmp_path)) is None
    assert threads_per_job(compose_config([group("launcher", "parallel_cpu"), "threads_per_job=3"], tmp_path)) == 3
    assert threads_per_job(compose_config([group("launcher", "parallel_gpu")], tmp_path)) == 2
    assert threads_per_job(compose_config([group("launcher", "parallel_gpu"), "threads_per_job=null",
                                           "hydra.launcher.cpus_per_task=5"], tmp_path)) == 5
    assert threads_per_job(compose_config(["experiment=ablation_optimizer", group("cluster", "slurm")],
                                          tmp_path)) == 8


@pytest.mark.slow
def test_joblib_sweep_runs_jobs_in_parallel_processes(tmp_path: Path) -> None:
    result = sweep(tmp_path, group("launcher", "parallel_cpu"), "seed=1,2")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Joblib.Parallel(n_jobs=2,backend=loky" in result.stderr + result.stdout
    first, second = records(tmp_path)
    assert [first["status"], second["status"]] == ["completed", "completed"]
    assert [first["run_dir"], second["run_dir"]] == [str(tmp_path / "0"), str(tmp_path / "1")]
    assert [first["seed"], second["seed"]] == [1, 2]
    # threads_per_job unset: each loky worker takes cores // n_jobs torch threads
    assert first["threads"] == second["threads"] == max(1, (os.cpu_count() or 1) // 2)


@pytest.mark.slow
def test_submitit_local_sweep_and_a_requeued_job_resumes_from_its_last_checkpoint(tmp_path: Path) -> None:
    result = sweep(tmp_path, group("launcher", "parallel_gpu"), "trainer=cpu", "hydra.launcher.gpus_per_node=0",
                   "threads_per_job=null", "hydra.launcher.cpus_per_task=1", "seed=1,2")
    assert result.returncode == 0, result.stderr[-3000:]
    first, second = records(tmp_path)
    assert [first["status"], second["status"]] == ["completed", "completed"]
    assert [first["run_dir"], second["run_dir"]] == [str(tmp_path / "0"), str(tmp_path / "1")]
    assert first["threads"] == second["threads"] == 1  # submitit's cpus_per_task
    assert first["resumed_from"] is None

    # Requeue job 0 as submitit does on SIGUSR2 (timeout or preemption): the launcher's checkpoint() returns the
    # same call, which the requeued job runs. Pretend the job was stopped mid-way: its record says running.
    pickles = {}
    for path in tmp_path.glob(".submitit/*/*_submitted.pkl"):
        pickles[submitit.helpers.DelayedSubmission.load(path).args[2]] = path  # args: overrides, key, job num, ...
    assert sorted(pickles) == [0, 1]
    record_path = tmp_path / "0" / "metrics.json"
    record_path.write_text(json.dumps({**first, "status": "running"}))
    script = ("import sys, submitit\n"
              "delayed = submitit.helpers.DelayedSubmission.load(sys.argv[1])\n"
              "requeued = delayed.function.checkpoint(*delayed.args, **delayed.kwargs)\n"
              "requeued.result()\n")
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "SUBMITIT_EXECUTOR": "local", "SUBMITIT_LOCAL_JOB_ID": "4242"}
    requeued = subprocess.run([sys.executable, "-c", script, str(pickles[0])], cwd=REPO_ROOT, env=env,
                              capture_output=True, text=True, timeout=300)
    assert requeued.returncode == 0, requeued.stderr[-3000:]
    resumed = json.loads(record_path.read_text())
    assert resumed["status"] == "completed" and resumed["run_dir"] == str(tmp_path / "0")
    assert resumed["resumed_from"] == str(tmp_path / "0" / "checkpoints" / "last.ckpt")
    assert resumed["seed"] == 1 and resumed["epochs"] == first["epochs"]


def test_slurm_cluster_config_composes_with_an_experiment(tmp_path: Path) -> None:
    cfg = compose_config(["experiment=ablation_optimizer", group("cluster", "slurm")], tmp_path)
    assert cfg.hydra.launcher._target_.endswith("submitit_launcher.SlurmLauncher")
    assert cfg.trainer.accelerator == "gpu" and cfg.skip_completed is True
    assert str(cfg.hydra.mode) == "RunMode.MULTIRUN"  # submitted even without -m, never run on the login node
    assert cfg.task_name == "ablation_optimizer" and cfg.trainer.max_epochs == 16
    assert dict(cfg.hydra.sweeper.params) == {"optimizer": "fast_sgd,fast_adam,fast_adamw", "seed": "1,2,3"}
    ddp = compose_config(["experiment=seed_cnn", group("cluster", "slurm"), "trainer=ddp", "trainer.devices=4",
                          "hydra.launcher.gpus_per_node=4", "hydra.launcher.tasks_per_node=4"], tmp_path)
    assert ddp.trainer.strategy == "ddp" and ddp.hydra.launcher.tasks_per_node == ddp.trainer.devices == 4


def test_slurm_sbatch_script_has_the_resources_signal_and_requeue(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Run the plugin's own launch() against a fake `sbatch` that keeps the script it is given (and a fake `srun`,
    which submitit looks for to believe it is on a SLURM cluster)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "srun").write_text("#!/bin/sh\nexit 1\n")
    (bin_dir / "srun").chmod(0o755)
    sbatch = bin_dir / "sbatch"
    sbatch.write_text(f'#!/bin/sh\ncp "$1" {tmp_path}/submitted.sh\necho "Submitted batch job 4242"\n')
    sbatch.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    submitted: list[submitit.AutoExecutor] = []
    real_map_array = submitit.AutoExecutor.map_array

    def map_array_without_waiting(self: submitit.AutoExecutor, fn: object, *iterables: object) -> list:
        submitted.append(self)
        real_map_array(self, fn, *iterables)  # writes the pickles and the script, calls (fake) sbatch
        return []  # the plugin would wait for the jobs' results

    monkeypatch.setattr(submitit.AutoExecutor, "map_array", map_array_without_waiting)

    sweep_dir = tmp_path / "sweep"
    overrides = ["experiment=ablation_optimizer", group("cluster", "slurm"), "trainer=ddp", "trainer.devices=2",
                 "hydra.launcher.partition=gpu", "hydra.launcher.timeout_min=120", "hydra.launcher.mem_gb=24",
                 "hydra.launcher.gpus_per_node=2", "hydra.launcher.tasks_per_node=2",
                 "+hydra.launcher.additional_parameters.account=fer", f"hydra.sweep.dir={sweep_dir}"]
    cfg = compose_config(overrides, tmp_path / "run")
    HydraConfig.instance().set_config(cfg)
    launcher = instantiate(cfg.hydra.launcher)
    launcher.setup(hydra_context=None, task_function=lambda c: None, config=cfg)
    jobs = [[f"optimizer={o}", f"seed={s}"] for o in ("sgd", "adam", "adamw") for s in (1, 2, 3)]
    assert launcher.launch(jobs, initial_job_idx=0) == []

    executor = submitted[0]
    assert executor.cluster == "slurm" and executor._executor.max_num_timeout == 3
    text = (tmp_path / "submitted.sh").read_text()
    lines = set(text.splitlines())
    for expected in ("#SBATCH --partition=gpu", "#SBATCH --time=120", "#SBATCH --gpus-per-node=2",
                     "#SBATCH --ntasks-per-node=2", "#SBATCH --cpus-per-task=8", "#SBATCH --mem=24GB",
                     "#SBATCH --nodes=1", "#SBATCH --signal=USR2@120", "#SBATCH --requeue",
                     "#SBATCH --account=fer", "#SBATCH --array=0-8%9", "#SBATCH --job-name=ablation_optimizer"):
        assert expected in lines, f"{expected} not in:\n{text}"
    assert f"--output {sweep_dir}/.submitit/%A_%a/%A_%a_%t_log.out" in text
    assert "srun" in text and "-m submitit.core._submit" in text
    # one pickled job per sweep point, each running the plugin's launcher (whose checkpoint() requeues it)
    pickles = list(sweep_dir.glob(".submitit/4242_*/*_submitted.pkl"))
    assert len(pickles) == 9
    delayed = submitit.helpers.DelayedSubmission.load(pickles[0])
    assert type(delayed.function).__name__ == "SlurmLauncher" and delayed.args[1] == "hydra.sweep.dir"
