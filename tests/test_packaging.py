"""The wheel carries what an installed package needs: every module, the Hydra configs, the released model with its
card, and the default face detector's weights with their licence."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT


@pytest.mark.slow
def test_wheel_ships_the_configs_and_the_released_model(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "-w", str(tmp_path), str(REPO_ROOT)], check=True, capture_output=True, timeout=300)
    (wheel,) = tmp_path.glob("fer_lightning-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    repo_configs = {f"fer_lightning/conf/{p.relative_to(REPO_ROOT / 'conf').as_posix()}"
                    for p in (REPO_ROOT / "conf").rglob("*.yaml")}
    assert repo_configs and repo_configs <= names, sorted(repo_configs - names)[:5]
    modules = {f"fer_lightning/{p.relative_to(REPO_ROOT / 'fer_lightning').as_posix()}"
               for p in (REPO_ROOT / "fer_lightning").rglob("*.py")}
    assert modules <= names, sorted(modules - names)[:5]  # every subpackage listed in pyproject.toml
    assert {"fer_lightning/weights/fer_cnn.pt", "fer_lightning/weights/fer_cnn.json",
            "fer_lightning/weights/mtcnn.pt", "fer_lightning/weights/MTCNN_LICENSE.md"} <= names
