"""Every config value is checked once, by fer_lightning.schema, on the composed config and before torch loads:
one line naming the key, the value and what is expected, for each job of a sweep."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from omegaconf import DictConfig, OmegaConf

from fer_lightning import schema
from fer_lightning.cli import check_overrides, compose_task
from tests.conftest import REPO_ROOT

TRAIN_CASES = [
    ("augment.hflip=2", "augment.hflip=2: expected a number >= 0 and <= 1"),
    ("augment.hflip=-1", "augment.hflip=-1: expected a number >= 0 and <= 1"),
    ("augment.brightness=5", "augment.brightness=5: expected a number >= 0 and <= 1"),
    ("augment.erasing_p=2", "augment.erasing_p=2: expected a number >= 0 and <= 1"),
    ("scheduler.factor=-1", "scheduler.factor=-1: expected a number > 0 and < 1"),
    ("scheduler.factor=2", "scheduler.factor=2: expected a number > 0 and < 1"),
    ("scheduler.patience=-1", "scheduler.patience=-1: expected an integer >= 0"),
    ("trainer.gradient_clip_val=-1", "trainer.gradient_clip_val=-1: expected a number >= 0"),
    ("trainer.min_epochs=50", "trainer.min_epochs=50 must be <= trainer.max_epochs=30"),
    ("model.compile=abc", "model.compile=abc: expected true or false"),
    ("deterministic=abc", "deterministic=abc: expected true or false"),
    ("test=abc", "test=abc: expected true or false"),
    ("tags=abc", "tags=abc: expected a list of names, e.g. tags=[abc]"),
    ("seed=-1", "seed=-1: expected an integer >= 0 and <= 4294967295"),
    (f"seed={2**40}", f"seed={2**40}: expected an integer >= 0 and <= 4294967295"),
    ("model.net.num_classes=3", "model.net.num_classes=3: expected 7 (the FER-2013 classes)"),
    ("model.net.num_classes=8", "model.net.num_classes=8: expected 7 (the FER-2013 classes)"),
    ("augment.translate_px=-4", "augment.translate_px=-4: expected an integer >= 0"),
    ("augment.contrast=abc", "augment.contrast=abc: expected a number >= 0 and <= 1"),
    ("augment.interpolation=foo", "augment.interpolation=foo: expected one of bilinear, bicubic, nearest"),
    ("augment.image_size=100000", "augment.image_size=100000: expected an integer >= 8 and <= 1024"),
    ("augment.image_size=abc", "augment.image_size=abc: expected an integer >= 8 and <= 1024"),
    ("trainer.check_val_every_n_epoch=0", "trainer.check_val_every_n_epoch=0: expected an integer >= 1"),
    ("data.synthetic.n_train=abc", "data.synthetic.n_train=abc: expected an integer >= 0 and <= 10000000"),
    ("data.synthetic.n_train=1e12", "data.synthetic.n_train=1000000000000.0: expected an integer >= 0"),
    ("data.synthetic.seed=-1", "data.synthetic.seed=-1: expected an integer >= 0"),
    ("data.batch_size=0", "data.batch_size=0: expected an integer >= 1"),
    ("optimizer.lr=-1", "optimizer.lr=-1: expected a number > 0"),
    ("optimizer.lr=inf", "optimizer.lr=inf: expected a number > 0"),  # no NaN loss after torch loaded
    ("augment.std=[0]", "augment.std=[0]: expected a list of numbers > 0"),
    ("final_tta=[foo]", "final_tta=['foo']: expected a non-empty list of identity, hflip, ten_crop"),
    ("data.val_fraction=2", "data.val_fraction=2: expected a number > 0 and < 1"),
    ("model.net.dropout=1.5", "model.net.dropout=1.5: expected a number >= 0 and < 1"),
    ("trainer.devices=0", "trainer.devices=0: expected a number of devices >= 1, -1 (all), auto"),
    ("trainer.precision=foo", "trainer.precision=foo: expected one of bf16-mixed, 16-mixed, 32-true"),
    ("trainer.accelerator=tpu", "trainer.accelerator=tpu: expected one of auto, cpu, gpu, cuda, mps"),
    ("+data.foo=1", "data.foo: data has no key 'foo'; expected one of augment, batch_size,"),
    ("imbalance=sampler imbalance.power=abc", "imbalance.power=abc: expected a number >= 0"),
    ("imbalance.power=abc", "imbalance.power: no key 'power' in imbalance;"),  # imbalance=none has no power
    ("data=fer2013 data.synthetic.n_train=300", "data.synthetic.n_train: data.synthetic is null in this config"),
    ("+optimizer.momentum=0.9", "optimizer.momentum: torch.optim.AdamW has no key 'momentum'; expected one of "
                                "amsgrad, betas, eps, lr, weight_decay"),
    ("model.tta=hflip", "model.tta=hflip: expected a list of views, e.g. model.tta=[hflip]"),
    ("seed=1,2,-3", "seed=-3: expected an integer >= 0"),  # every job of a sweep
    ("optimizer=adamw,sgd optimizer.momentum=2", "optimizer.momentum: no key 'momentum' in optimizer"),
    ("key=[unclosed", "key=[unclosed: "),
]
OTHER_CASES = [
    ("evaluate", "ckpt_path=x data.eval_batch_size=0", "data.eval_batch_size=0: expected an integer >= 1"),
    ("evaluate", "ckpt_path=x data.val_fraction=2", "data.val_fraction=2: expected a number > 0 and < 1"),
    ("evaluate", "ckpt_path=x precision=foo", "precision=foo: expected one of bf16-mixed, 16-mixed, 32-true"),
    ("evaluate", "ckpt_path=x accelerator=tpu", "accelerator=tpu: expected one of auto, cpu, gpu, cuda, mps"),
    ("evaluate", "ckpt_path=x bootstrap=1000000000", "bootstrap=1000000000: expected an integer >= 0 and <= 100000"),
    ("evaluate", "split=val", "ckpt_path=... is required: python -m fer_lightning.evaluate ckpt_path="),
    ("export", "ckpt_path=x opset=abc", "opset=abc: expected an integer >= 18 and <= 23"),
    ("export", "ckpt_path=x opset=0", "opset=0: expected an integer >= 18 and <= 23"),
    ("export", "ckpt_path=x opset=7", "opset=7: expected an integer >= 18 and <= 23"),
    ("export", "ckpt_path=x opset=99", "opset=99: expected an integer >= 18 and <= 23"),
    ("export", "ckpt_path=x fold_tta=abc", "fold_tta=abc: expected true or false"),
    ("export", "ckpt_path=x verify=abc", "verify=abc: expected true or false"),
    ("predict", "ckpt_path=x batch_size=0", "batch_size=0: expected an integer >= 1"),
]


@pytest.mark.parametrize(("line", "message"), TRAIN_CASES, ids=[c[0] for c in TRAIN_CASES])
def test_a_bad_train_value_is_one_line_naming_the_key(line: str, message: str, tmp_path: Path) -> None:
    problem = check_overrides([*line.split(), f"hydra.run.dir={tmp_path / 'run'}"], "train")
    assert problem is not None and problem.startswith(message) and "\n" not in problem, problem
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(("task", "line", "message"), OTHER_CASES, ids=[f"{c[0]}:{c[1]}" for c in OTHER_CASES])
def test_a_bad_value_of_the_other_clis_is_one_line(task: str, line: str, message: str) -> None:
    problem = check_overrides(line.split(), task)
    assert problem is not None and problem.startswith(message) and "\n" not in problem, problem


@pytest.mark.parametrize("line", ["trainer.precision=32", "trainer.precision=bf16-mixed", "trainer.devices=auto",
                                  "trainer=ddp trainer.devices=2", "optimizer=fast_muon", "tags=[a,b]",
                                  "final_tta=[identity,hflip]", "trainer.gradient_clip_val=1.0",
                                  "optimizer=sgd +optimizer.dampening=0.1", "+model.class_weights=[1,1,1,1,1,1,1]",
                                  "-m optimizer=adamw,sgd seed=1,2", "hparams_search=optuna"])
def test_good_values_pass(line: str, tmp_path: Path) -> None:
    assert check_overrides([*line.split(), f"hydra.run.dir={tmp_path / 'run'}"], "train") is None


def _options(group: str) -> list[str]:
    return sorted(p.stem for p in (REPO_ROOT / "conf" / group).glob("*.yaml") if not p.stem.startswith("_"))


RECIPES = [f"{group}={option}" for group in ("data", "augment", "model", "optimizer", "scheduler", "imbalance",
                                             "distill", "trainer", "callbacks", "debug", "experiment", "launcher")
           for option in _options(group)]


@pytest.mark.parametrize("recipe", RECIPES)
def test_every_shipped_option_and_recipe_passes_the_schema(recipe: str, tmp_path: Path) -> None:
    source = tmp_path / "fer2013.csv"
    source.write_text("emotion,pixels,Usage\n")
    cfg = compose_task("train", [recipe, f"data.path={source}"])
    if cfg.get("distill"):  # the one value a distill recipe leaves to the command line
        cfg = compose_task("train", [recipe, f"data.path={source}", "distill.teachers=[a.ckpt,b.ckpt]"])
    assert schema.problem(cfg, "train") is None


def test_job_time_check_catches_a_value_a_sweeper_picked() -> None:
    cfg = compose_task("train", [])
    cfg.optimizer.lr = -0.5  # what an Optuna interval could hand to a job; the command line never showed it
    with pytest.raises(schema.ConfigError, match=r"optimizer.lr=-0.5: expected a number > 0"):
        schema.check(cfg, "train")


def test_interpolated_values_are_checked_where_they_are_set() -> None:
    cfg = compose_task("train", ["deterministic=true"])
    assert OmegaConf.to_container(cfg.trainer)["deterministic"] == "${deterministic}"
    assert schema.problem(cfg, "train") is None  # the interpolation resolves to true; precision's resolver is skipped


def test_the_cli_rejects_a_bad_value_before_torch_and_creates_no_directory(tmp_path: Path) -> None:
    probe = ("import json, runpy, sys; sys.argv = ['train', 'data.batch_size=0']\n"
             "try:\n    runpy.run_module('fer_lightning.train', run_name='__main__', alter_sys=True)\n"
             "except SystemExit as exit:\n    print(json.dumps([exit.code, 'torch' in sys.modules]))")
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "PYTHONWARNINGS": "ignore"}
    result = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=120)
    assert json.loads(result.stdout.strip().splitlines()[-1]) == [2, False], result.stderr[-2000:]
    assert result.stderr == "train: error: data.batch_size=0: expected an integer >= 1\n"
    assert list(tmp_path.iterdir()) == []  # no outputs/runs/... directory, no failed record


@pytest.mark.parametrize(("overrides", "message"), [
    (["model.net.init=orthogonal"], "model.net.init=orthogonal"),
    (["scheduler=cosine", "scheduler.interval=batch"], "scheduler.interval=batch"),
    (["optimizer=fast_muon", "optimizer.adam_lr=-1"], "optimizer.adam_lr=-1"),
    (["optimizer=fast_muon", "optimizer.momentum=1.0"], "optimizer.momentum=1.0"),
])
def test_constructor_arguments_are_checked_once_here(make_cfg: Callable[..., DictConfig], overrides: list[str],
                                                      message: str) -> None:
    found = schema.problem(make_cfg(*overrides), "train")
    assert found is not None and found.startswith(message), found


def test_each_schema_table_lists_exactly_what_its_class_takes() -> None:
    """A key the schema accepts but the class does not take passes the check and then fails in the constructor;
    one the class takes but the schema lacks is refused although it works. Both directions are checked here."""
    import dataclasses
    import inspect

    from fer_lightning.data.augment import AugmentProfile
    from fer_lightning.data.datamodule import FERDataModule
    from fer_lightning.distill import Distillation
    from fer_lightning.models import FERCNN, ResNet18Classifier
    from fer_lightning.module import FERClassifier

    def arguments(owner: type) -> set[str]:
        if dataclasses.is_dataclass(owner):
            return {field.name for field in dataclasses.fields(owner)}
        return set(inspect.signature(owner).parameters)

    tables = [(schema.MODEL, FERClassifier, {"distillation"}),  # built by train(), not a config key
              (schema.DATA, FERDataModule, set()), (schema.AUGMENT, AugmentProfile, set()),
              (schema.DISTILL, Distillation, set()),
              (schema.NET.tables["fer_lightning.models.FERCNN"], FERCNN, set()),
              (schema.NET.tables["fer_lightning.models.ResNet18Classifier"], ResNet18Classifier, set())]
    for table, owner, not_config in tables:
        assert set(table) == arguments(owner) - not_config, owner.__name__
