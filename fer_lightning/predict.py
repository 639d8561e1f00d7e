"""Predict emotions of the faces in an image, a folder or a video with a trained checkpoint.

    python -m fer_lightning.predict input=photo.jpg [ckpt_path=.../last.ckpt] [output_dir=...] [detector=whole_image]
    (without ckpt_path: the model released inside the package, fer_lightning/weights/fer_cnn.pt)
    fer-predict ...   (the same, installed as a script)

This entry point imports only Hydra: `--help` and a rejected override answer before torch loads
(docs/performance.md); the job itself runs in `fer_lightning.prediction`.
"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from fer_lightning.cli import expected_failure, fail, reexport, run_checked
from fer_lightning.config import CONFIG_DIR


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="predict")
def main(cfg: DictConfig) -> None:
    """A user-caused failure (missing input, unreadable checkpoint) exits 2 after one line; a bug keeps its
    traceback."""
    from fer_lightning import prediction

    try:
        prediction.predict(cfg)
    except (OSError, ValueError) as error:  # CheckpointError is a ValueError
        if expected_failure(error) is None:
            raise
        fail("predict", error)


def run() -> None:
    """Command-line entry: reject a bad override in one line, then hand over to Hydra."""
    run_checked(main, "predict")


# `from fer_lightning.predict import ...` of the job's names still works: loaded on first use
__getattr__ = reexport("fer_lightning.predict", "fer_lightning.prediction")


if __name__ == "__main__":
    run()
