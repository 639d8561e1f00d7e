"""Release and checkpoint reading under faults: the card describes the run it came from, another run's weights
are refused, malformed arguments and foreign files get one line; release imports no Lightning."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from fer_lightning.checkpoint import CheckpointError, read_checkpoint
from fer_lightning.release import main, make_release
from tests.faults_helpers import completed_run


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("runs")
    return completed_run(root / "a", seed=1), completed_run(root / "b", seed=2)


def release_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().err


def test_the_card_describes_the_runs_own_data(runs: tuple[Path, Path], tmp_path: Path) -> None:
    run, _ = runs
    card = make_release(run, run / "checkpoints/last.ckpt", tmp_path / "m.pt", ["identity"])
    assert "FER-2013" not in card["trained_on"] and "28,709" not in card["trained_on"]
    assert card["trained_on"].startswith("synthetic faces") and "96 train" in card["trained_on"]
    assert "48 val" in card["trained_on"] and card["val"]["images"] == 48


def test_another_runs_checkpoint_is_refused(runs: tuple[Path, Path], tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    run, other = runs
    code, err = release_cli(capsys, str(run), "--ckpt", str(other / "checkpoints/last.ckpt"),
                            "--out", str(tmp_path / "m.pt"))
    assert code == 2 and err.count("\n") == 1 and f"not a checkpoint of {run}" in err
    assert not list(tmp_path.iterdir())
    # the run's checkpoint copied elsewhere is still its own (written by it)
    moved = tmp_path / "copy.ckpt"
    moved.write_bytes((run / "checkpoints/last.ckpt").read_bytes())
    assert make_release(run, moved, tmp_path / "m.pt", ["identity"])["epoch"] == 0


@pytest.mark.parametrize(("setup", "expected"), [
    ("no-evaluated", "names no evaluated checkpoint"),
    ("failed", "status 'failed'; release a completed run"),
    ("list", "expected the record of a training run (a JSON object), got a JSON list"),
    ("result-no-equals", "--result val_flip: expected KEY=EVALUATION_JSON"),
    ("result-no-split", "not an evaluate record"),
    ("result-not-json", "cannot read an evaluate record"),
])
def test_bad_release_arguments_are_one_line(runs: tuple[Path, Path], tmp_path: Path, setup: str, expected: str,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    run.mkdir()
    record = json.loads((runs[0] / "metrics.json").read_text())
    args = [str(run), "--out", str(tmp_path / "out" / "m.pt")]
    if setup == "no-evaluated":
        del record["evaluated"]
    if setup == "failed":
        record["status"] = "failed"
    if setup.startswith("result"):
        args = [str(runs[0]), "--out", str(tmp_path / "out" / "m.pt")]
        bad = tmp_path / "eval.json"
        bad.write_text("{oops" if setup == "result-not-json" else json.dumps({"report": {}}))
        args += ["--result", "val_flip" if setup == "result-no-equals" else f"val_flip={bad}"]
    (run / "metrics.json").write_text(json.dumps([record] if setup == "list" else record))
    code, err = release_cli(capsys, *args)
    assert code == 2 and err.count("\n") == 1 and expected in err, err
    assert not (tmp_path / "out").exists()


class Foreign:
    pass


def test_a_foreign_pickle_is_one_plain_line(tmp_path: Path) -> None:
    for name, write in (("torch", lambda p: torch.save({"x": Foreign()}, p)),
                        ("pickle", lambda p: p.write_bytes(pickle.dumps({"x": Foreign()}, protocol=4)))):
        path = tmp_path / f"{name}.ckpt"
        write(path)
        with pytest.raises(CheckpointError) as info:
            read_checkpoint(path)
        message = str(info.value)
        assert message == (f"{path}: not a fer_lightning checkpoint (it holds objects other than tensors and "
                           "plain values)")
        assert "\x1b" not in message and "trust" not in message


def test_release_imports_no_lightning() -> None:
    """Import circles in general: tests/test_startup.py::test_no_import_circle."""
    probe = "import sys, fer_lightning.release; print('lightning' in sys.modules)"
    light = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True)
    assert light.stdout.strip() == "False"  # inference imports PRETRAINED from release: it must stay light
