"""Ask a real TensorBoard server what it shows of a sweep: runs, scalar and image tags, the HPARAMS experiment.

    python docs/check_tensorboard.py                       # trains a tiny synthetic 2-job sweep first (~15 s)
    python docs/check_tensorboard.py <sweep dir>/tensorboard optimizer=adamw optimizer=sgd

Starts `tensorboard --logdir <dir> --port 0` (a free port), queries the HTTP API its dashboards use
(/data/runs, /data/plugin/scalars/tags, /data/plugin/images/tags, /data/plugin/hparams/experiment), prints one JSON
summary and exits non-zero if an expected run, tag or hparam is missing. tests/test_tensorboard.py checks the same
on TensorBoard's loader without a server.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
SWEEP = ["-m", "optimizer=adamw,sgd", "data.synthetic.n_train=96", "data.synthetic.n_val=48",
         "data.synthetic.n_test=48", "data.batch_size=32", "data.eval_batch_size=48", "trainer.max_epochs=1",
         "+trainer.limit_train_batches=2", "+trainer.limit_val_batches=1", "+trainer.limit_test_batches=1",
         "trainer.num_sanity_val_steps=0", "trainer.log_every_n_steps=1", "callbacks.progress_bar.refresh_rate=0"]
SCALARS = {"val/acc", "val/macro_f1", "lr/net", "final/test/acc", "hparams/val_acc"}
IMAGES = {"val/confusion_matrix", "final/test/confusion_matrix"}
METRICS = ["hparams/val_acc", "hparams/val_macro_f1", "hparams/test_acc", "hparams/test_macro_f1"]


def tiny_sweep(directory: Path) -> Path:
    """A 2-job synthetic sweep over optimizers; returns its tensorboard/ folder."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, "-m", "fer_lightning.train", *SWEEP, f"hydra.sweep.dir={directory}"],
                   cwd=REPO_ROOT, env=env, check=True, capture_output=True, timeout=600)
    return directory / "tensorboard"


def start_server(logdir: Path) -> tuple[subprocess.Popen[str], str]:
    """TensorBoard on a free port of 127.0.0.1; returns the process and its base URL."""
    command = [sys.executable, "-m", "tensorboard.main", "--logdir", str(logdir), "--host", "127.0.0.1",
               "--port", "0", "--load_fast", "false", "--reload_interval", "1"]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    assert server.stderr is not None
    deadline = time.monotonic() + 60
    for line in server.stderr:  # "TensorBoard 2.x at http://127.0.0.1:PORT/ (Press CTRL+C to quit)"
        found = re.search(r"(http://127\.0\.0\.1:\d+)/", line)
        if found:
            return server, found.group(1)
        if time.monotonic() > deadline:
            break
    server.terminate()
    raise RuntimeError("TensorBoard did not start")


def request(url: str, body: dict[str, Any] | None = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json", "X-TensorBoard-Feature-Flags": "{}"}
    with urllib.request.urlopen(urllib.request.Request(url, data=data, headers=headers), timeout=30) as response:
        return json.loads(response.read())


def summary(base: str, runs: list[str], timeout: float = 60) -> dict[str, Any]:
    """What the dashboards would show, once every expected run is loaded."""
    deadline = time.monotonic() + timeout
    while set(request(f"{base}/data/runs")) < set(runs) and time.monotonic() < deadline:
        time.sleep(0.5)
    scalars = request(f"{base}/data/plugin/scalars/tags")
    images = request(f"{base}/data/plugin/images/tags")
    experiment = request(f"{base}/data/plugin/hparams/experiment", {"experimentName": ""})
    return {"runs": sorted(request(f"{base}/data/runs")),
            "scalars": {run: sorted(tags) for run, tags in scalars.items()},
            "images": {run: sorted(tags) for run, tags in images.items()},
            "hparams": [h["name"] for h in experiment.get("hparamInfos", [])],
            "metrics": [m["name"]["tag"] for m in experiment.get("metricInfos", [])]}


def problems(shown: dict[str, Any], runs: list[str], hparams: list[str]) -> list[str]:
    found = []
    if shown["runs"] != sorted(runs):
        found.append(f"runs {shown['runs']}, expected {sorted(runs)}")
    for run in runs:
        missing = (SCALARS - set(shown["scalars"].get(run, []))) | (IMAGES - set(shown["images"].get(run, [])))
        if missing:
            found.append(f"{run}: no {', '.join(sorted(missing))}")
    if shown["hparams"] != hparams:
        found.append(f"hparams {shown['hparams']}, expected {hparams}")
    if shown["metrics"] != METRICS:
        found.append(f"metrics {shown['metrics']}, expected {METRICS}")
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("logdir", nargs="?", type=Path, help="a sweep's tensorboard/ folder (default: a tiny sweep)")
    parser.add_argument("runs", nargs="*", help="the run names expected (default: optimizer=adamw optimizer=sgd)")
    parser.add_argument("--hparams", nargs="*", default=["optimizer"], help="the HPARAMS settings expected")
    args = parser.parse_args()
    runs = args.runs or ["optimizer=adamw", "optimizer=sgd"]
    with tempfile.TemporaryDirectory() as scratch:
        logdir = args.logdir or tiny_sweep(Path(scratch) / "sweep")
        server, base = start_server(logdir.absolute())
        try:
            shown = summary(base, runs)
        finally:
            server.terminate()
            server.wait(timeout=30)
    found = problems(shown, runs, args.hparams)
    print(json.dumps({"logdir": str(logdir), "ok": not found, "problems": found,
                      **{k: v for k, v in shown.items() if k in ("runs", "hparams", "metrics")},
                      "scalar_tags": {r: len(t) for r, t in shown["scalars"].items()}, "images": shown["images"]},
                     indent=1))
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
