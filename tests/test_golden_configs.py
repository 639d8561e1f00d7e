"""Every experiment's composed config equals its golden file tests/golden/<experiment>.yaml (_default.yaml: no
experiment), so a change to a recipe or to a group option it selects shows as a diff in review.

The files are what `python -m fer_lightning.train experiment=<name> --cfg job` prints, composed here in-process.
After an intended change, regenerate them and review the diff:

    python tests/test_golden_configs.py --update      (or: make golden)
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from fer_lightning.config import CONFIG_DIR

GOLDEN_DIR = Path(__file__).resolve().parent / "golden"
EXPERIMENTS = sorted(p.stem for p in (Path(CONFIG_DIR) / "experiment").glob("*.yaml"))
NO_EXPERIMENT = "_default"


def composed(*overrides: str) -> str:
    """The YAML that `--cfg job` prints for these overrides (the job's config, interpolations unresolved)."""
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
            return OmegaConf.to_yaml(compose("train", overrides=list(overrides)))
    finally:
        GlobalHydra.instance().clear()


def experiment_config(name: str) -> str:
    return composed() if name == NO_EXPERIMENT else composed(f"experiment={name}")


@pytest.mark.parametrize("name", [NO_EXPERIMENT, *EXPERIMENTS])
def test_composed_config_matches_its_golden_file(name: str) -> None:
    golden = GOLDEN_DIR / f"{name}.yaml"
    assert golden.is_file(), f"{golden} missing: run `python tests/test_golden_configs.py --update`"
    assert experiment_config(name) == golden.read_text(), (
        f"experiment={name} composes differently from {golden}; if intended, run "
        "`python tests/test_golden_configs.py --update` and commit the diff")


def test_no_golden_file_without_an_experiment() -> None:
    assert sorted(p.stem for p in GOLDEN_DIR.glob("*.yaml")) == sorted([NO_EXPERIMENT, *EXPERIMENTS])


@pytest.mark.parametrize(("experiment", "group", "option"),
                         [("cnn_best", "optimizer", "sgd"), ("seed_resnet18", "optimizer", "sgd"),
                          ("cnn_best", "scheduler", "cosine"), ("cnn_fast", "augment", "gray48_strong"),
                          ("seed_cnn", "optimizer", "adam")])
def test_an_option_chosen_on_top_of_a_recipe_keeps_its_own_values(experiment: str, group: str, option: str) -> None:
    """Recipes select options rather than override their values: `experiment=cnn_best optimizer=sgd` trains SGD
    with sgd.yaml's lr and weight decay, not the recipe's AdamW values."""
    on_recipe = OmegaConf.create(composed(f"experiment={experiment}", f"{group}={option}"))
    alone = OmegaConf.create(composed(f"{group}={option}"))
    assert on_recipe[group] == alone[group]


def update() -> None:
    """Rewrite every golden file from the current configs (and drop those of removed experiments)."""
    GOLDEN_DIR.mkdir(exist_ok=True)
    names = [NO_EXPERIMENT, *EXPERIMENTS]
    for stale in GOLDEN_DIR.glob("*.yaml"):
        if stale.stem not in names:
            stale.unlink()
    for name in names:
        (GOLDEN_DIR / f"{name}.yaml").write_text(experiment_config(name))
    print(f"wrote {len(names)} golden configs to {GOLDEN_DIR}")


if __name__ == "__main__":
    if sys.argv[1:] != ["--update"]:
        sys.exit(f"usage: python {Path(__file__).name} --update   (rewrites {GOLDEN_DIR}/*.yaml)")
    update()
