"""report: ablation tables from fabricated job trees (seeds aggregated, failures listed, swept keys found)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from fer_lightning.report import build_report, main
from fer_lightning.runrecord import override_settings
from fer_lightning.tables import markdown_table

CLASSES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


def fake_report(acc: float) -> dict[str, Any]:
    per_class = {name: {"precision": acc, "recall": acc, "f1": acc - i / 100, "support": 10}
                 for i, name in enumerate(CLASSES)}
    return {"accuracy": acc, "macro_f1": acc - 0.1, "weighted_f1": acc - 0.05, "support": 70, "per_class": per_class,
            "class_names": list(CLASSES)}


def write_job(path: Path, overrides: list[str], choices: dict[str, str], record: dict[str, Any] | None) -> None:
    """A job directory as train.py leaves it: .hydra/{config,hydra,overrides}.yaml and, if it ended, metrics.json."""
    (path / ".hydra").mkdir(parents=True)
    seed = next((int(o.split("=")[1]) for o in overrides if o.startswith("seed=")), 42)
    (path / ".hydra" / "config.yaml").write_text(yaml.safe_dump(
        {"task_name": "ablation", "seed": seed, "trainer": {"max_epochs": 2}, "model": {"net": {"dropout": 0.55}}}))
    (path / ".hydra" / "hydra.yaml").write_text(yaml.safe_dump({"hydra": {"runtime": {"choices": choices}}}))
    (path / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    if record is not None:
        (path / "metrics.json").write_text(json.dumps({"overrides": overrides, "seed": seed, **record}))


def completed(acc: float, epochs: int = 2) -> dict[str, Any]:
    history = [{"epoch": e, "val/acc": acc * (e + 1) / epochs} for e in range(epochs)]
    return {"status": "completed", "val": fake_report(acc), "test": fake_report(acc - 0.02), "epochs": epochs,
            "fit_time_s": 10.0, "history": history}


@pytest.fixture
def sweep(tmp_path: Path) -> Path:
    """optimizer x seed: sgd has 3 seeds (one in job 10, to test natural order); adam 1 done, 1 failed, 2 unfinished
    (one killed before train.py wrote anything, one whose metrics.json still says running)."""
    root = tmp_path / "sweep"
    jobs = [("0", "sgd", 1, completed(0.5)), ("1", "sgd", 2, completed(0.6)), ("2", "adam", 1, completed(0.7)),
            ("3", "adam", 2, {"status": "failed", "error": "ValueError: dropout probability has to be <= 1"}),
            ("4", "adam", 3, None), ("5", "adam", 4, {"status": "running"}), ("10", "sgd", 3, completed(0.7, epochs=3))]
    for name, optimizer, seed, record in jobs:
        write_job(root / name, [f"optimizer={optimizer}", f"seed={seed}", "data=synthetic", "+trainer.limit=2"],
                  {"optimizer": optimizer, "scheduler": "plateau", "hydra/sweeper": "basic"}, record)
    evaluation = root / "evaluations" / "x" / ".hydra"  # an evaluate run dir: not a training job
    evaluation.mkdir(parents=True)
    (evaluation / "config.yaml").write_text(yaml.safe_dump({"ckpt_path": "a.ckpt", "split": "val"}))
    return root


def test_seeds_are_aggregated_and_failures_listed(sweep: Path) -> None:
    result = build_report([sweep])
    assert result["keys"] == ["optimizer"]
    assert [j.path.name for j in result["jobs"]] == ["0", "1", "2", "3", "4", "5", "10"]
    table = result["table"].set_index("optimizer")
    assert list(table.index) == ["sgd", "adam"]
    assert table.loc["sgd", "n"] == 3 and table.loc["adam", "n"] == 1
    assert table.loc["sgd", "val_acc"] == pytest.approx(0.6) and table.loc["sgd", "val_acc_std"] == pytest.approx(0.1)
    assert table.loc["sgd", "test_macro_f1"] == pytest.approx(0.48)
    assert table.loc["sgd", "val_f1_fear"] == pytest.approx(0.58)
    assert table.loc["adam", "failed"] == 3 and table.loc["sgd", "failed"] == 0
    assert pd.isna(table.loc["adam", "val_acc_std"])

    markdown = (sweep / "ablation.md").read_text()
    assert "| sgd | 3 | 0 | 0.6000 ± 0.1000 | 0.5000 ± 0.1000 |" in markdown
    assert "| adam | 1 | 3 | 0.7000 | 0.6000 |" in markdown
    assert "## Per-class F1 (val)" in markdown and "## Per-class F1 (test)" in markdown
    failures = markdown.split("## Failed or unfinished jobs")[1]
    assert "| 3 | failed | adam | 2 | ValueError: dropout probability" in failures
    assert "| 4 | unfinished | adam | 3 | no metrics.json (still running, or killed) |" in failures
    assert "| 5 | unfinished | adam | 4 | metrics.json says 'running' (still running, or killed) |" in failures
    assert "evaluations" not in markdown

    csv = pd.read_csv(sweep / "ablation.csv")
    assert {"optimizer", "n", "failed", "val_acc", "val_acc_std", "test_acc", "test_f1_disgust"} <= set(csv.columns)
    assert (sweep / "val_acc.png").read_bytes()[:4] == b"\x89PNG"


def test_group_by_and_out(sweep: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--group-by a key nobody overrode: its value comes from the jobs' group choices (.hydra/hydra.yaml)."""
    assert main([str(sweep), "--group-by", "scheduler", "--out", str(tmp_path / "out")]) == 0
    table = pd.read_csv(tmp_path / "out" / "ablation.csv")
    assert list(table["scheduler"]) == ["plateau"] and list(table["n"]) == [4] and list(table["failed"]) == [3]
    assert table["val_acc"][0] == pytest.approx(0.625)
    assert "| plateau | 4 | 3 |" in capsys.readouterr().out
    assert not (sweep / "ablation.md").exists()


def test_single_runs_and_several_dirs(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.json").write_text(json.dumps({**completed(0.4), "overrides": [], "seed": 42, "test": None}))
    result = build_report([run])
    assert list(result["table"]["setting"]) == ["all jobs"] and "test_acc" not in result["table"]
    assert "## Per-class F1 (test)" not in result["markdown"]

    other = tmp_path / "other"
    write_job(other / "0", ["imbalance=sampler"], {"imbalance": "sampler"}, completed(0.8))
    result = build_report([run, other], out=tmp_path / "both")
    assert result["keys"] == ["imbalance"]
    assert list(result["table"]["imbalance"]) == ["-", "sampler"]  # no override, no .hydra: unknown, shown as '-'


def test_where_takes_a_baseline_row_from_another_sweep(sweep: Path, tmp_path: Path) -> None:
    other = tmp_path / "schedulers"
    write_job(other / "0", ["scheduler=cosine", "seed=1"], {"optimizer": "sgd", "scheduler": "cosine"},
              completed(0.9))
    result = build_report([sweep, other], group_by=["optimizer"], out=tmp_path, where=["scheduler=plateau"])
    table = result["table"].set_index("optimizer")
    assert table.loc["sgd", "n"] == 3 and table.loc["sgd", "val_acc"] == pytest.approx(0.6)  # cosine job left out
    assert "(jobs with scheduler=plateau)" in result["markdown"]
    with pytest.raises(FileNotFoundError, match="with scheduler=none"):
        build_report([sweep], where=["scheduler=none"])
    with pytest.raises(ValueError, match="expected KEY=VALUE"):
        build_report([sweep], where=["plateau"])


def test_missing_dir_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(tmp_path / "nope")]) == 2
    assert capsys.readouterr().err == f"report: error: {tmp_path / 'nope'}: no such directory\n"
    assert main([str(tmp_path)]) == 2
    assert "no training job" in capsys.readouterr().err


def test_run_control_keys_do_not_split_a_row(tmp_path: Path) -> None:
    """A sweep finished with skip_completed=true (and another thread count) is still one experiment per setting."""
    root = tmp_path / "resumed"
    write_job(root / "0", ["optimizer=sgd", "seed=1"], {"optimizer": "sgd"}, completed(0.5))
    write_job(root / "1", ["optimizer=sgd", "seed=2", "skip_completed=true", "threads_per_job=1"],
              {"optimizer": "sgd"}, completed(0.6))
    write_job(root / "2", ["optimizer=adam", "seed=1", "skip_completed=true"], {"optimizer": "adam"}, completed(0.7))
    result = build_report([root])
    assert result["keys"] == ["optimizer"] and list(result["table"]["n"]) == [2, 1]


def test_helpers() -> None:
    assert override_settings(["+a.b=1", "~c", "hydra.job.chdir=true", "lr=1e-3", "tta=[identity,hflip]"]) == {
        "a.b": "1", "c": "(deleted)", "lr": "0.001", "tta": "['identity', 'hflip']"}
    frame = pd.DataFrame({"k": ["a|b"], "v": [0.5], "w": [float("nan")]})
    assert markdown_table(frame) == "| k | v | w |\n|---|---:|---:|\n| a\\|b | 0.5 |  |\n"


def timed(acc: float, seconds_per_epoch: float, curve: list[float]) -> dict[str, Any]:
    """A completed record whose history has val accuracies `curve` at `seconds_per_epoch` per epoch."""
    record = completed(acc, epochs=len(curve))
    record["history"] = [{"epoch": e, "time_s": seconds_per_epoch * (e + 1), "val/acc": v} for e, v in enumerate(curve)]
    return record


@pytest.fixture
def paired_sweep(tmp_path: Path) -> Path:
    """optimizer x seeds 1-3: adamw 0.68/0.69/0.70, sgd 0.66/0.66/0.69 (per-seed differences -0.02, -0.03, -0.01)."""
    root = tmp_path / "paired"
    accs = {"adamw": (0.68, 0.69, 0.70), "sgd": (0.66, 0.66, 0.69)}
    curves = {"adamw": [0.60, 0.66, 0.69], "sgd": [0.50, 0.60, 0.66]}
    job = 0
    for optimizer, values in accs.items():
        for seed, acc in enumerate(values, start=1):
            curve = curves[optimizer] if seed != 3 or optimizer == "adamw" else [0.5, 0.55, 0.6]
            write_job(root / str(job), [f"optimizer={optimizer}", f"seed={seed}"], {"optimizer": optimizer},
                      timed(acc, 10.0 * seed, curve))
            job += 1
    return root


def test_time_to_columns_from_the_history(paired_sweep: Path) -> None:
    result = build_report([paired_sweep], time_to="0.65,0.68")
    table = result["table"].set_index("optimizer")
    # adamw reaches 0.65 at epoch 2 in every seed, after 20, 40, 60 s; 0.68 at epoch 3 (30, 60, 90 s)
    assert table.loc["adamw", "epochs_to_0.65"] == pytest.approx(2.0)
    assert table.loc["adamw", "s_to_0.65"] == pytest.approx(40.0)
    assert table.loc["adamw", "s_to_0.68"] == pytest.approx(60.0)
    # sgd: seeds 1 and 2 reach 0.65 at epoch 3 (30 s, 60 s), seed 3 never; nobody reaches 0.68
    assert table.loc["sgd", "reached_0.65"] == 2 and table.loc["sgd", "s_to_0.65"] == pytest.approx(45.0)
    assert table.loc["sgd", "reached_0.68"] == 0
    assert "| 2.0 ep / 40 s (3/3) | 3.0 ep / 60 s (3/3) |" in result["markdown"]
    assert "| 3.0 ep / 45 s (2/3) | - (0/3) |" in result["markdown"]


def test_paired_baseline_difference_with_t_interval(paired_sweep: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(paired_sweep), "--baseline", "optimizer=adamw"]) == 0
    out = capsys.readouterr().out
    # differences -0.02, -0.03, -0.01: mean -0.02, s 0.01, half-width 4.302653 * 0.01 / sqrt(3) = 0.024841
    assert "| sgd | -0.0200 [-0.0448, +0.0048] n=3 |" in out
    assert "| adamw | baseline |" in out


@pytest.mark.parametrize(("args", "message"), [
    (["--baseline", "scheduler=plateau"], "--baseline scheduler=plateau: scheduler is not a row key"),
    (["--baseline", "optimizer=adam"], "--baseline optimizer=adam: no completed row with that setting"),
    (["--time-to", "0.65,1.5"], "--time-to 1.5: expected accuracies in (0, 1]"),
    (["--time-to", "abc"], "--time-to 'abc': expected accuracies in (0, 1]"),
])
def test_bad_time_to_and_baseline_are_one_line(paired_sweep: Path, args: list[str], message: str,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(paired_sweep), *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"report: error: {message}") and err.count("\n") == 1


def test_group_by_a_key_no_job_has_is_one_line(sweep: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(sweep), "--group-by", "nosuchkey"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("report: error: --group-by nosuchkey: no job has such a key; groups and overridden keys: "
                          "data, optimizer, scheduler, seed, trainer.limit") and err.count("\n") == 1, err
    assert not (sweep / "ablation.md").exists()
    assert main([str(sweep), "--group-by", "model.net.dropout"]) == 0  # a config key no job overrode


@pytest.mark.parametrize("content", ["[1, 2]", '"done"', "3"])
def test_a_metrics_json_that_is_not_an_object_is_listed_as_failed(sweep: Path, content: str) -> None:
    (sweep / "1" / "metrics.json").write_text(content)
    result = build_report([sweep])
    failures = result["markdown"].split("## Failed or unfinished jobs")[1]
    assert "| 1 | failed | sgd | 2 | metrics.json holds a JSON " in failures and "not a run record |" in failures
    assert result["table"].set_index("optimizer").loc["sgd", "n"] == 2


def test_where_compares_values_as_the_config_prints_them(tmp_path: Path) -> None:
    """`--where optimizer.lr=1e-3` matches a job launched with `optimizer.lr=0.001` and one whose config says so."""
    root = tmp_path / "lr"
    write_job(root / "0", ["optimizer.lr=0.001", "seed=1"], {}, completed(0.5))
    write_job(root / "1", ["optimizer.lr=1e-2", "seed=1"], {}, completed(0.6))
    result = build_report([root], where=["optimizer.lr=1e-3"])
    assert list(result["table"]["setting"]) == ["all jobs"] and list(result["table"]["n"]) == [1]
    assert result["table"]["val_acc"][0] == pytest.approx(0.5)
    result = build_report([root], baseline="optimizer.lr=1e-2")
    assert list(result["baseline"]["optimizer.lr"]) == ["0.001", "0.01"]
