"""evaluate: a checkpoint's val/test numbers reproduce its run's record; files are written; errors are one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig

from fer_lightning.checkpoint import CheckpointError
from fer_lightning.config import CONFIG_DIR
from fer_lightning.data.splits import DataFormatError
from fer_lightning.jobs.evaluate import EvaluationError, data_settings, evaluate, run
from fer_lightning.jobs.train import train
from tests.conftest import REPO_ROOT, TINY_DATA, compose_config

SHORT = ["trainer.max_epochs=1", "+trainer.limit_train_batches=2", "+trainer.limit_val_batches=1",
         "trainer.num_sanity_val_steps=0", "callbacks.progress_bar.refresh_rate=0", "logger=csv"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One tiny training run (val and test splits of 48 images, one batch each) shared by the module."""
    torch.set_num_threads(2)
    record = train(compose_config([*TINY_DATA, *SHORT], tmp_path_factory.mktemp("trained") / "run"))
    GlobalHydra.instance().clear()
    return record


def eval_cfg(*overrides: str) -> DictConfig:
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose("evaluate", overrides=list(overrides))
    GlobalHydra.instance().clear()
    return cfg


def assert_same_report(got: dict[str, Any], want: dict[str, Any]) -> None:
    assert got["confusion_matrix"] == want["confusion_matrix"] and got["support"] == want["support"]
    assert got["accuracy"] == pytest.approx(want["accuracy"], abs=1e-7)
    assert got["macro_f1"] == pytest.approx(want["macro_f1"], abs=1e-7)
    for name, values in want["per_class"].items():
        assert got["per_class"][name] == pytest.approx(values, abs=1e-7)


@pytest.mark.parametrize("split", ["val", "test"])
def test_best_checkpoint_reproduces_the_runs_report(trained: dict[str, Any], tmp_path: Path, split: str) -> None:
    result = evaluate(eval_cfg(f"ckpt_path={trained['best']['ckpt_path']}", f"split={split}"), tmp_path)
    assert_same_report(result["report"], trained[split])
    assert result["tta"] == ["identity"] and result["data_path"] is None

    table = pd.read_csv(tmp_path / f"{split}_report.csv")
    want = trained[split]
    assert list(table["class"]) == [*want["class_names"], "accuracy", "macro avg", "weighted avg"]
    rows = table.set_index("class")
    for name, values in want["per_class"].items():
        assert rows.loc[name, "f1-score"] == pytest.approx(round(values["f1"], 4), abs=1e-9)
        assert rows.loc[name, "recall"] == pytest.approx(round(values["recall"], 4), abs=1e-9)
        assert rows.loc[name, "support"] == values["support"]
    assert rows.loc["accuracy", "f1-score"] == pytest.approx(round(want["accuracy"], 4), abs=1e-9)
    assert pd.isna(rows.loc["accuracy", "precision"]) and rows.loc["accuracy", "support"] == 48
    assert rows.loc["weighted avg", "f1-score"] == pytest.approx(round(want["weighted_avg"]["f1"], 4), abs=1e-9)

    markdown = (tmp_path / f"{split}_report.md").read_text()
    assert f"| accuracy |  |  | {want['accuracy']:.4f} | 48 |" in markdown and result["markdown"] in markdown
    on_disk = json.loads((tmp_path / f"{split}_evaluation.json").read_text())
    assert on_disk["split"] == split and on_disk["ckpt_path"] == trained["best"]["ckpt_path"]
    assert on_disk["report"]["confusion_matrix"] == want["confusion_matrix"]
    assert (tmp_path / f"{split}_confusion_matrix.png").read_bytes()[:4] == b"\x89PNG"


def test_tta_override_is_applied_and_recorded(trained: dict[str, Any], tmp_path: Path) -> None:
    result = evaluate(eval_cfg(f"ckpt_path={trained['best']['ckpt_path']}", "tta=[identity,hflip]"), tmp_path)
    assert result["tta"] == ["identity", "hflip"] and result["report"]["support"] == 48
    with pytest.raises(ValueError, match=r"^tta=\['vflip'\]: expected a non-empty list of identity, hflip"):
        evaluate(eval_cfg(f"ckpt_path={trained['best']['ckpt_path']}", "tta=[vflip]"), tmp_path)


def test_tta_crop_override_reaches_the_model(trained: dict[str, Any], tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    import fer_lightning.module as module

    crops: list[float] = []

    def recording(model: Any, x: Any, views: Any, crop: float) -> Any:
        crops.append(crop)
        return average_logits(model, x, views, crop)

    average_logits = module.average_logits
    monkeypatch.setattr(module, "average_logits", recording)
    ckpt = f"ckpt_path={trained['best']['ckpt_path']}"
    assert evaluate(eval_cfg(ckpt, "tta=[ten_crop]"), tmp_path / "default")["tta_crop"] == pytest.approx(0.9)
    assert crops and all(crop == pytest.approx(0.9) for crop in crops)
    crops.clear()
    assert evaluate(eval_cfg(ckpt, "tta=[ten_crop]", "tta_crop=0.5"), tmp_path / "half")["tta_crop"] == 0.5
    assert crops and all(crop == 0.5 for crop in crops)
    assert "ten_crop side 0.5" in (tmp_path / "half" / "val_report.md").read_text()
    with pytest.raises(ValueError, match=r"^tta_crop=1.5: expected a number > 0 and < 1$"):
        evaluate(eval_cfg(ckpt, "tta_crop=1.5"), tmp_path / "bad")


def test_data_path_replaces_the_checkpoints_source() -> None:
    run = {"path": None, "synthetic": {"n_train": 96}, "cache_dir": None, "val_fraction": 0.2, "split_seed": 3,
           "eval_batch_size": 48}
    assert data_settings(run, {"path": None, "eval_batch_size": None}) == run
    given = data_settings(run, {"path": "fer2013.csv", "cache_dir": None})
    assert given["synthetic"] is None and given["cache_dir"] == "outputs/cache" and given["split_seed"] == 3
    # what neither the run nor the request gives: training's data=fer2013 settings (conf/data/fer2013.yaml)
    assert data_settings({}, {"path": "fer2013.csv"}) == {"path": "fer2013.csv", "synthetic": None,
                                                          "cache_dir": "outputs/cache", "val_fraction": 0.1,
                                                          "split_seed": 0, "eval_batch_size": 512}


def fer_csv(path: Path, usages: list[str]) -> Path:
    pixels = " ".join(["128"] * 48 * 48)
    rows = [f"{i % 7},{pixels},{usage}" for i, usage in enumerate(usages)]
    path.write_text("emotion,pixels,Usage\n" + "\n".join(rows) + "\n")
    return path


def test_errors_are_one_line(trained: dict[str, Any], tmp_path: Path) -> None:
    ckpt = trained["best"]["ckpt_path"]
    no_test = fer_csv(tmp_path / "no_test.csv", ["Training"] * 7 + ["PublicTest"] * 3)
    with pytest.raises(EvaluationError, match="split=test: .*no_test.csv has no test images") as error:
        evaluate(eval_cfg(f"ckpt_path={ckpt}", "split=test", f"data.path={no_test}",
                          f"data.cache_dir={tmp_path / 'cache'}"), tmp_path / "out")
    assert "\n" not in str(error.value)
    # the same checkpoint on that CSV's val split works: a FER-2013 layout through the checkpoint's profile
    result = evaluate(eval_cfg(f"ckpt_path={ckpt}", f"data.path={no_test}", f"data.cache_dir={tmp_path / 'cache'}"),
                      tmp_path / "out")
    assert result["report"]["support"] == 3 and result["data_path"] == str(no_test)

    foreign = tmp_path / "foreign.ckpt"
    torch.save({"state_dict": {}}, foreign)
    with pytest.raises(CheckpointError, match="not a fer_lightning checkpoint"):
        evaluate(eval_cfg(f"ckpt_path={foreign}"), tmp_path / "out")
    with pytest.raises(ValueError, match="^split=train: expected one of val, test$"):
        evaluate(eval_cfg(f"ckpt_path={ckpt}", "split=train"), tmp_path / "out")
    with pytest.raises(CheckpointError, match="no raw weights beside averaged ones"):
        evaluate(eval_cfg(f"ckpt_path={ckpt}", "raw_weights=true"), tmp_path / "out")


def test_errors_print_one_line_and_return_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "missing.ckpt"
    assert run(eval_cfg(f"ckpt_path={missing}"), tmp_path / "out") == 2
    assert capsys.readouterr().err == f"evaluate: error: {missing}: no such checkpoint file\n"
    assert run(eval_cfg(), tmp_path / "out") == 2
    assert capsys.readouterr().err.startswith("evaluate: error: ckpt_path=... is required: python -m")


@pytest.mark.slow
def test_cli_writes_into_output_dir_and_prints_the_table(trained: dict[str, Any], tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "fer_lightning.evaluate", f"ckpt_path={trained['best']['ckpt_path']}",
               "split=test", f"output_dir={tmp_path / 'out'}"]
    result = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"| accuracy |  |  | {trained['test']['accuracy']:.4f} | 48 |" in result.stdout
    assert {"test_report.md", "test_report.csv", "test_confusion_matrix.png", "test_evaluation.json",
            ".hydra"} <= {p.name for p in (tmp_path / "out").iterdir()}


def test_bootstrap_and_mcnemar_agree_with_the_per_image_predictions(trained: dict[str, Any], tiny_checkpoint: Path,
                                                                    tmp_path: Path) -> None:
    ckpt = f"ckpt_path={trained['best']['ckpt_path']}"
    result = evaluate(eval_cfg(ckpt, "bootstrap=200", f"compare_ckpt_path={tiny_checkpoint}"), tmp_path / "a")
    mine = pd.read_csv(tmp_path / "a" / "val_predictions.csv")
    assert len(mine) == 48
    assert (mine["target"] == mine["prediction"]).mean() == pytest.approx(result["report"]["accuracy"])
    boot = result["bootstrap"]
    assert boot["resamples"] == 200 and boot["accuracy"]["estimate"] == pytest.approx(result["report"]["accuracy"])
    assert boot["accuracy"]["low"] <= boot["accuracy"]["estimate"] <= boot["accuracy"]["high"]
    assert boot["macro_f1"]["estimate"] == pytest.approx(result["report"]["macro_f1"], abs=1e-6)

    other = evaluate(eval_cfg(f"ckpt_path={tiny_checkpoint}", "tta=[identity]"), tmp_path / "b")
    theirs = pd.read_csv(tmp_path / "b" / "val_predictions.csv")
    mine_right, theirs_right = mine["target"] == mine["prediction"], theirs["target"] == theirs["prediction"]
    test = result["mcnemar"]
    assert test["only_this_correct"] == int((mine_right & ~theirs_right).sum())
    assert test["only_other_correct"] == int((~mine_right & theirs_right).sum())
    assert test["other_accuracy"] == pytest.approx(other["report"]["accuracy"])
    assert 0.0 <= test["p_value"] <= 1.0
    markdown = (tmp_path / "a" / "val_report.md").read_text()
    assert "95 % bootstrap interval over images (48 images)" in markdown and "McNemar vs" in markdown
    with pytest.raises(ValueError, match="^bootstrap=-5: expected an integer >= 0 and <= 100000$"):
        evaluate(eval_cfg(ckpt, "bootstrap=-5"), tmp_path / "bad")


def test_a_source_holding_only_the_evaluated_split_is_enough(trained: dict[str, Any], tmp_path: Path) -> None:
    """Another dataset in FER-2013 format, PrivateTest rows only: evaluation needs that split, not train/val."""
    from fer_lightning.data.synthetic import generate_faces

    faces = generate_faces(20, seed=5)
    rows = [f"{label},{' '.join(map(str, image.ravel()))},PrivateTest"
            for image, label in zip(faces.images, faces.labels, strict=True)]
    csv = tmp_path / "private_only.csv"
    csv.write_text("emotion,pixels,Usage\n" + "\n".join(rows) + "\n")
    result = evaluate(eval_cfg(f"ckpt_path={trained['best']['ckpt_path']}", "split=test", f"data.path={csv}",
                               f"data.cache_dir={tmp_path / 'cache'}"), tmp_path / "out")
    assert result["report"]["support"] == 20
    with pytest.raises((EvaluationError, DataFormatError), match="val"):
        evaluate(eval_cfg(f"ckpt_path={trained['best']['ckpt_path']}", "split=val", f"data.path={csv}",
                          f"data.cache_dir={tmp_path / 'cache2'}"), tmp_path / "out2")


def test_an_ensemble_is_the_mean_of_its_members_softmax(trained: dict[str, Any], tiny_checkpoint: Path,
                                                         tmp_path: Path) -> None:
    """evaluate ckpt_path=[a,b]: each member's own numbers, and the ensemble's predictions are the argmax of the
    mean of the members' softmax probabilities, as the Ensemble module (distillation's teacher) computes them."""
    from fer_lightning.checkpoint import load_classifier
    from fer_lightning.ensemble import load_ensemble
    from fer_lightning.jobs.evaluate import build_datamodule

    paths = [trained["best"]["ckpt_path"], str(tiny_checkpoint)]
    result = evaluate(eval_cfg(f"ckpt_path=[{paths[0]},{paths[1]}]", "tta=[identity,hflip]", "bootstrap=50"),
                      tmp_path / "ens")
    assert [Path(p).name for p in result["ckpt_path"]] == [Path(p).name for p in paths]

    loaded = load_classifier(paths[0])
    datamodule = build_datamodule(loaded, data_settings(loaded.config.data, {}), "val")
    images, targets = datamodule.augment.eval(datamodule.datasets["val"].images), datamodule.datasets["val"].labels
    ensemble = load_ensemble(paths, tta=["identity", "hflip"])
    with torch.no_grad():
        probabilities = ensemble(images).softmax(dim=1)
        alone = [member(images).softmax(dim=1) for member in ensemble.members]
    torch.testing.assert_close(probabilities, torch.stack(alone).mean(0))
    assert [m["accuracy"] for m in result["members"]] == pytest.approx(
        [float((p.argmax(dim=1) == targets).float().mean()) for p in alone])
    written = pd.read_csv(tmp_path / "ens" / "val_predictions.csv")
    assert written["prediction"].tolist() == probabilities.argmax(dim=1).tolist()
    assert result["report"]["accuracy"] == pytest.approx((written["prediction"] == written["target"]).mean())
    best = max(result["members"], key=lambda m: m["accuracy"])
    assert result["mcnemar"]["other_accuracy"] == pytest.approx(best["accuracy"])
    markdown = (tmp_path / "ens" / "val_report.md").read_text()
    assert "ensemble of 2 checkpoints" in markdown and "## members" in markdown

    from fer_lightning.report import build_report

    evaluate(eval_cfg(f"ckpt_path={paths[1]}"), tmp_path / "single")
    listed = build_report([tmp_path], out=tmp_path)["markdown"]  # report lists ensembles beside single checkpoints
    rows = [line for line in listed.splitlines() if "_evaluation.json" in line]
    assert len(rows) == 2 and sum("ensemble of 2" in row for row in rows) == 1
    assert f"{result['report']['accuracy']:.4f}" in next(row for row in rows if "ensemble" in row)


def test_a_sweep_folder_evaluates_the_ensemble_of_its_runs(trained: dict[str, Any], tmp_path: Path) -> None:
    from fer_lightning.ensemble import checkpoint_paths

    run_dir = Path(trained["run_dir"])
    assert checkpoint_paths(str(run_dir.parent)) == [trained["evaluated"]["ckpt_path"]]
    with pytest.raises(CheckpointError, match="a folder with no training run in it"):
        checkpoint_paths(str(tmp_path))


def test_an_ensemble_member_with_another_class_order_is_refused(trained: dict[str, Any], tmp_path: Path) -> None:
    checkpoint = torch.load(trained["best"]["ckpt_path"], map_location="cpu", weights_only=True)
    names = checkpoint["hyper_parameters"]["class_names"]
    checkpoint["hyper_parameters"]["class_names"] = [names[1], names[0], *names[2:]]
    swapped = tmp_path / "swapped.ckpt"
    torch.save(checkpoint, swapped)
    with pytest.raises(CheckpointError, match="every member needs the same classes in the same order"):
        evaluate(eval_cfg(f"ckpt_path=[{trained['best']['ckpt_path']},{swapped}]"), tmp_path / "out")


def test_the_runs_bf16_falls_back_to_fp32_where_it_would_be_emulated(monkeypatch: pytest.MonkeyPatch) -> None:
    from fer_lightning.jobs import evaluate as evaluation

    monkeypatch.setattr(evaluation, "fast_precision", lambda: "32-true")  # an AVX2 CPU
    assert evaluation.eval_precision(None, "bf16-mixed") == "32-true"
    assert evaluation.eval_precision("bf16-mixed", "bf16-mixed") == "bf16-mixed"  # asked for: kept
    monkeypatch.setattr(evaluation, "fast_precision", lambda: "bf16-mixed")  # native bf16
    assert evaluation.eval_precision(None, "bf16-mixed") == "bf16-mixed"
