"""Fast start: the command-line entry points answer `--help` and a bad override without importing
torch, and `fer_lightning.inference` imports no Lightning, Hydra or matplotlib.

Checked by the modules a fresh interpreter ends up with, never by timing, so the tests hold on a busy machine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT

ENTRY_MODULES = ("train", "evaluate", "predict", "export")
TORCH = ("torch", "lightning", "torchmetrics")
INFERENCE_FORBIDDEN = ("lightning", "hydra", "matplotlib")

# Runs `python -m <module> <args>` in-process (runpy does what -m does) and reports the exit status and which
# of the watched top-level packages were imported, as the last stdout line.
PROBE = """
import json, runpy, sys
module, args, watched = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
sys.argv = [module, *args]
try:
    runpy.run_module(module, run_name="__main__", alter_sys=True)
    code = 0
except SystemExit as exit:
    code = exit.code or 0
print(json.dumps({"code": code, "imported": [m for m in watched if m in sys.modules]}))
"""


def python(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run([sys.executable, *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                          timeout=300)


def probe(module: str, *args: str, watched: tuple[str, ...] = TORCH) -> tuple[dict[str, object], str]:
    result = python("-c", PROBE, module, json.dumps(list(args)), json.dumps(list(watched)))
    assert result.stdout.strip(), result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1]), result.stderr


@pytest.mark.parametrize("name", ENTRY_MODULES)
def test_help_does_not_import_torch(name: str) -> None:
    report, stderr = probe(f"fer_lightning.{name}", "--help")
    assert report == {"code": 0, "imported": []}, stderr[-3000:]


@pytest.mark.parametrize(("name", "override", "message"), [
    ("train", "scheduler=cosin", "unknown option"),
    ("evaluate", "splt=test", "did you mean split?"),
    ("predict", "haar.scale=1.2", "did you mean haar.scale_factor?"),
    ("export", "fromat=onnx", "did you mean format?"),
])
def test_a_bad_override_is_rejected_before_torch(name: str, override: str, message: str) -> None:
    report, stderr = probe(f"fer_lightning.{name}", override)
    assert report == {"code": 2, "imported": []}, stderr[-3000:]
    assert stderr.startswith(f"{name}: error: ") and message in stderr and stderr.count("\n") == 1, stderr


def test_importing_the_entry_modules_does_not_import_torch() -> None:
    code = ("import sys; import " + ", ".join(f"fer_lightning.{name}" for name in ENTRY_MODULES)
            + f"; print([m for m in {TORCH!r} if m in sys.modules])")
    result = python("-c", code)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "[]"


def test_evaluate_help_exits_zero() -> None:
    result = python("-m", "fer_lightning.evaluate", "--help")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "ckpt_path" in result.stdout


def test_inference_imports_no_lightning_hydra_or_matplotlib() -> None:
    code = ("import sys; import fer_lightning.inference; from fer_lightning.inference import Predictor; "
            f"print([m for m in {INFERENCE_FORBIDDEN!r} if m in sys.modules])")
    result = python("-c", code)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "[]"


def test_the_data_package_loads_its_datamodule_on_first_use() -> None:
    import hydra.utils

    import fer_lightning.data
    from fer_lightning.data.datamodule import FERDataModule

    assert fer_lightning.data.FERDataModule is FERDataModule  # loaded on first use, also as a Hydra _target_
    assert hydra.utils.get_class("fer_lightning.data.FERDataModule") is FERDataModule
    with pytest.raises(AttributeError, match="no_such_name"):
        fer_lightning.data.no_such_name  # noqa: B018 - the lookup itself is the test


def _package_imports() -> dict[str, set[str]]:
    """Each module of fer_lightning -> the package's modules it imports, deferred (in a function) ones included."""
    import ast

    root = REPO_ROOT / "fer_lightning"
    names = {".".join(p.relative_to(REPO_ROOT).with_suffix("").parts).removesuffix(".__init__"): p
             for p in root.rglob("*.py")}
    graph = {}
    for name, path in names.items():
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                found |= {node.module, *(f"{node.module}.{alias.name}" for alias in node.names)}
            elif isinstance(node, ast.Import):
                found |= {alias.name for alias in node.names}
        # a module's own package is imported first anyway; only edges to other modules count
        graph[name] = {m for m in found & names.keys() if m != name and not name.startswith(f"{m}.")}
    return graph


def test_no_import_circle() -> None:
    """A circle hides itself behind an import moved into a function; the graph here counts those too."""
    from graphlib import CycleError, TopologicalSorter

    try:
        TopologicalSorter(_package_imports()).prepare()
    except CycleError as error:
        pytest.fail(f"import circle: {' -> '.join(error.args[1])}")
