"""Predict emotions of the faces in an image, a folder or a video with a trained checkpoint (usage: USAGE below).
Imports only Hydra, so `--help`, a rejected override and a missing input answer before torch loads (the job:
`jobs.predict`)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from fer_lightning.cli import expected_failure, fail, run_checked
from fer_lightning.config import CONFIG_DIR

USAGE = """usage: python -m fer_lightning.predict PHOTO|FOLDER|VIDEO|camera:N [key=value ...]
       (the same as input=PHOTO ...; fer-predict once installed)

Options (key=value), with their defaults:
"""
# Hydra's flags that take a value: the word after them is not an input path
_FLAGS_WITH_VALUE = frozenset({"--cfg", "-c", "--package", "-p", "--config-path", "-cp", "--config-name", "-cn",
                               "--config-dir", "-cd", "--info", "--experimental-rerun"})


def options_help() -> str:
    """predict's own options: conf/predict.yaml up to its hydra block, with the comments that describe each key."""
    text = (Path(CONFIG_DIR) / "predict.yaml").read_text().split("\nhydra:", 1)[0].partition("\ndefaults:\n")[2]
    options = re.sub(r"^(  .*\n)+", "", text).strip()  # without the defaults list
    return f"{USAGE}\n{options}\n\nHydra's own flags (--cfg job, -m, ...): --hydra-help\n"


def command_line(args: list[str]) -> list[str]:
    """`photo.jpg` -> `input='photo.jpg'` (quoted for Hydra's override grammar); several bare words: one line."""
    bare = [i for i, a in enumerate(args)
            if "=" not in a and not a.startswith("-") and (i == 0 or args[i - 1] not in _FLAGS_WITH_VALUE)]
    if len(bare) > 1:
        raise ValueError(f"{' '.join(args[i] for i in bare)}: give one input (a folder for several files), "
                         "e.g. input=photos/")
    if bare:
        quoted = args[bare[0]].replace("\\", "\\\\").replace("'", "\\'")
        args = [*args[: bare[0]], f"input='{quoted}'", *args[bare[0] + 1 :]]
    return args


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="predict")
def main(cfg: DictConfig) -> None:
    """A user-caused failure (missing input, unreadable checkpoint): one line, exit 2; a bug keeps its traceback.
    run() has checked the values (input included) before Hydra started; the job checks them for direct calls."""
    try:
        from fer_lightning.jobs import predict as prediction

        prediction.predict(cfg)
    except (OSError, ValueError) as error:  # CheckpointError is a ValueError
        if expected_failure(error) is None:
            raise
        fail("predict", error)


def run() -> None:
    """Command-line entry: predict's own --help, a bare path as input=, a bad override rejected in one line."""
    if {"--help", "-h"} & set(sys.argv[1:]):
        print(options_help(), end="")
        return
    try:
        sys.argv[1:] = command_line(sys.argv[1:])
    except ValueError as error:
        fail("predict", error)
    run_checked(main, "predict", composed=True)


if __name__ == "__main__":
    run()
