"""Every CLI ends an expected failure with one stderr line `<cli>: error: <message>` and exit status 2; the
traceback goes to the run's failure.txt / log file, not to the terminal. A bug keeps its traceback."""

from __future__ import annotations

import gzip
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from hydra.core.global_hydra import GlobalHydra

from fer_lightning.cli import expected_failure

QUIET = ["hydra/job_logging=none", "hydra/hydra_logging=none"]


def run_cli(main: Callable[[], object], argv: list[str], monkeypatch: pytest.MonkeyPatch,
            capsys: pytest.CaptureFixture[str]) -> str:
    """Run a Hydra entry point in-process as the command line would; return its stderr (it must exit 2)."""
    monkeypatch.setattr(sys, "argv", argv)
    GlobalHydra.instance().clear()
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main()
    GlobalHydra.instance().clear()
    assert exit_info.value.code == 2
    return capsys.readouterr().err


def assert_one_line(err: str, cli: str, *fragments: str) -> None:
    assert err.count("\n") == 1 and err.startswith(f"{cli}: error: "), err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in err, err


def test_train_bad_csv_row_is_one_line_and_the_traceback_goes_to_failure_txt(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from fer_lightning.train import main

    csv = tmp_path / "bad.csv"
    csv.write_text("emotion,pixels,Usage\n0," + " ".join(["0"] * 100) + ",Training\n")
    run_dir = tmp_path / "run"
    err = run_cli(main, ["train", "data=fer2013", f"data.path={csv}", f"hydra.run.dir={run_dir}", *QUIET],
                  monkeypatch, capsys)
    assert_one_line(err, "train", "bad.csv")
    assert "Traceback" in (run_dir / "failure.txt").read_text()


def test_train_missing_file_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    from fer_lightning.train import main

    err = run_cli(main, ["train", "data=fer2013", f"data.path={tmp_path}/nope.csv.gz", f"hydra.run.dir={tmp_path}/r",
                         *QUIET], monkeypatch, capsys)
    assert_one_line(err, "train", "nope.csv.gz", "data.path is required", "Kaggle folder")


def test_evaluate_a_jpeg_as_checkpoint_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    from fer_lightning.evaluate import main

    jpeg = tmp_path / "photo.jpg"
    jpeg.write_bytes(b"\xff\xd8\xff\xe0" + b"\0" * 64)
    err = run_cli(main, ["evaluate", f"ckpt_path={jpeg}", f"output_dir={tmp_path}/e", *QUIET], monkeypatch, capsys)
    assert_one_line(err, "evaluate", "photo.jpg")
    assert "weights_only" not in err


def test_predict_missing_input_is_one_line(tiny_checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    from fer_lightning.predict import main

    err = run_cli(main, ["predict", f"ckpt_path={tiny_checkpoint}", f"input={tmp_path}/none.png",
                         f"hydra.run.dir={tmp_path}/p", *QUIET], monkeypatch, capsys)
    assert_one_line(err, "predict", "none.png")


def test_export_bad_format_is_one_line(tiny_checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    from fer_lightning.export import main

    err = run_cli(main, ["export", f"ckpt_path={tiny_checkpoint}", "format=tflite", f"hydra.run.dir={tmp_path}/x",
                         *QUIET], monkeypatch, capsys)
    assert_one_line(err, "export", "format=tflite: expected one of onnx, torchscript")


def test_report_missing_dir_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from fer_lightning.report import main

    assert main([str(tmp_path / "none")]) == 2
    assert_one_line(capsys.readouterr().err, "report", "none")


def test_a_bug_is_not_an_expected_failure() -> None:
    try:
        [].pop()
    except IndexError as error:
        assert expected_failure(error) is None
    try:
        int("x")  # a ValueError raised outside this package: not worded for the user, keeps its traceback
    except ValueError as error:
        assert expected_failure(error) is None
    try:
        gzip.decompress(b"not gzip")
    except OSError as error:  # file problems are the user's to fix
        assert expected_failure(error) is error

