"""Bad inputs and faults against every CLI: build them in a temp folder, run each case, count the outcomes.

    python benchmarks/bench_faults.py [--quick] [--jobs 2] [--json out.json]

Each case is one command (`python -m fer_lightning.<cli> ...`) on inputs made here: hand-made CSV / npz /
folder / tar sources, a checkpoint and a completed run built without training (random weights), foreign files,
and out-of-range config values. Outcomes:

- one-line: expected an error and got exit 2 with at most 2 stderr lines and no traceback;
- traceback: expected an error and got a traceback (or another exit status, e.g. Hydra's exit 1);
- silent: expected an error and got exit 0;
- accepted / refused: expected success (a valid but unusual input) and got exit 0 / anything else;
- lost: a file that existed before the case (an earlier output, a run's record) changed or vanished.

`--quick` runs the cheap cases (data sources, checkpoints, release, export, report, predict, a few config
values); the full set adds every config value of the list and the training-side faults. Prints one table.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import pickle
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CLASSES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
TINY = ["data.synthetic.n_train=64", "data.synthetic.n_val=32", "data.synthetic.n_test=32", "data.batch_size=32",
        "data.eval_batch_size=32", "trainer.max_epochs=1", "+trainer.limit_train_batches=1",
        "+trainer.limit_val_batches=1", "trainer.num_sanity_val_steps=0", "logger=csv", "test=false"]


@dataclass
class Case:
    group: str
    name: str
    argv: list[str]
    expect: str = "error"  # "error" or "ok"
    guard: list[Path] = field(default_factory=list)  # files that must not change
    quick: bool = True


def digest(paths: list[Path]) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for p in paths:
        files = sorted(q for q in p.rglob("*") if q.is_file()) if p.is_dir() else [p]
        for q in files:
            out[str(q)] = hashlib.sha256(q.read_bytes()).hexdigest() if q.is_file() else None
    return out


def run_case(case: Case, timeout: float, cwd: Path) -> dict[str, object]:
    before = digest(case.guard)
    start = time.perf_counter()
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
           "OMP_NUM_THREADS": "1", "HYDRA_FULL_ERROR": "0"}
    try:
        proc = subprocess.run([sys.executable, *case.argv], capture_output=True, text=True, timeout=timeout, env=env,
                              cwd=cwd)  # Hydra's default outputs/ lands in the temp folder
        code, err = proc.returncode, proc.stderr
    except subprocess.TimeoutExpired:
        code, err = -1, "timeout"
    seconds = time.perf_counter() - start
    lines = [line for line in err.splitlines() if line.strip() and "Warning" not in line and "warn(" not in line]
    if before != digest(case.guard):
        outcome = "lost"
    elif case.expect == "ok":
        outcome = "accepted" if code == 0 else "refused"
    elif code == 0:
        outcome = "silent"
    elif code == 2 and len(lines) <= 2 and "Traceback" not in err:
        outcome = "one-line"
    else:
        outcome = "traceback"
    return {"group": case.group, "case": case.name, "outcome": outcome, "exit": code, "seconds": round(seconds, 1),
            "stderr": (lines[-1] if lines else "")[:160]}


# --------------------------------------------------------------------------------------- the inputs


def face(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (48, 48), dtype=np.uint8)


def csv_text(rows: int = 14, bad: str = "") -> str:
    lines = ["emotion,pixels,Usage"]
    for i in range(rows):
        usage = "Training" if i < rows - 4 else "PublicTest"
        lines.append(f"{i % 7},{' '.join(map(str, face(i).ravel()))},{usage}")
    if bad == "fields":
        lines[3] += ",extra"
    elif bad == "label":
        lines[3] = "9" + lines[3][1:]
    elif bad == "pixel":
        lines[3] = lines[3].replace(" ", " 300 ", 1)
    elif bad == "quote":
        lines[3] = lines[3][:2] + '"' + lines[3][2:]
    elif bad == "usage":
        lines[3] = lines[3].rsplit(",", 1)[0] + ",Validation"
    return "\n".join(lines) + "\n"


def folders(root: Path) -> Path:
    for top, n in (("train", 3), ("test", 1)):
        for c, name in enumerate(CLASSES):
            (root / top / name).mkdir(parents=True, exist_ok=True)
            for i in range(n):
                prefix = "PublicTest_" if top == "test" else ""
                Image.fromarray(face(100 * c + i), "L").save(root / top / name / f"{prefix}{i}.png")
    return root


def data_cases(work: Path) -> list[Case]:
    d = work / "data"
    d.mkdir()
    earlier = d / "earlier.npz"
    earlier.write_bytes(b"an earlier pack output that a failed run must not replace")
    cases: list[Case] = []

    def pack(name: str, source: Path, expect: str = "error") -> None:
        out = earlier if expect == "error" else d / f"ok{len(cases)}.npz"
        cases.append(Case("data", name, ["-m", "fer_lightning.data.pack", str(source), str(out)], expect,
                          [earlier] if expect == "error" else []))

    for bad in ("fields", "label", "pixel", "quote", "usage"):
        (d / f"{bad}.csv").write_text(csv_text(bad=bad))
        pack(f"csv: bad {bad}", d / f"{bad}.csv")
    good = csv_text()
    (d / "ok.csv.gz").write_bytes(gzip.compress(good.encode()))
    raw = (d / "ok.csv.gz").read_bytes()
    (d / "corrupt.csv.gz").write_bytes(raw[:300] + bytes(b ^ 0x5A for b in raw[300:360]) + raw[360:])
    pack("csv.gz: corrupt stream", d / "corrupt.csv.gz")
    (d / "truncated.csv.gz").write_bytes(raw[: len(raw) // 2])
    pack("csv.gz: truncated", d / "truncated.csv.gz")
    (d / "empty.csv").write_text("")
    pack("csv: empty file", d / "empty.csv")
    (d / "bom_crlf.csv").write_bytes(b"\xef\xbb\xbf" + good.replace("\n", "\r\n").encode())
    pack("csv: BOM + CRLF (valid)", d / "bom_crlf.csv", "ok")
    (d / "binary.csv").write_bytes(bytes(range(256)) * 8)
    pack("csv: binary garbage", d / "binary.csv")
    np.savez(d / "label9.npz", train_images=np.zeros((2, 48, 48), np.uint8), train_labels=np.array([0, 9]),
             val_images=np.zeros((1, 48, 48), np.uint8), val_labels=np.array([0]))
    pack("npz: label 9", d / "label9.npz")
    np.savez(d / "shape.npz", train_images=np.zeros((2, 32, 32), np.uint8), train_labels=np.array([0, 1]))
    pack("npz: 32x32 images", d / "shape.npz")
    (d / "pickle.npz").write_bytes(pickle.dumps({"train_images": 1}))
    pack("npz: a pickle", d / "pickle.npz")
    f = folders(d / "folders")
    pack("folders: valid", f, "ok")
    loop = folders(d / "loop")
    (loop / "train" / "sad" / "loop.png").symlink_to(loop / "train" / "sad" / "loop.png")
    pack("folders: symlink loop", loop)
    broken = folders(d / "broken")
    (broken / "train" / "sad" / "gone.png").symlink_to(d / "nowhere.png")
    pack("folders: broken symlink", broken)
    wrong = folders(d / "wrongclass")
    (wrong / "train" / "joy").mkdir()
    Image.fromarray(face(1), "L").save(wrong / "train" / "joy" / "x.png")
    pack("folders: unknown class folder", wrong)
    big = folders(d / "big")
    Image.fromarray(np.zeros((64, 64), np.uint8), "L").save(big / "train" / "sad" / "big.png")
    pack("folders: a 64x64 image", big)
    (big / "train" / "sad" / "big.png").unlink()
    (big / "train" / "sad" / "text.png").write_text("not an image")
    pack("folders: a text file named .png", big)
    val = folders(d / "imagefolder")
    shutil.copytree(val / "test", val / "val")
    pack("folders: train/ val/ test/ (valid)", val, "ok")
    linked = folders(d / "linked")
    shutil.move(linked / "train" / "happy", d / "happy_elsewhere")
    (linked / "train" / "happy").symlink_to(d / "happy_elsewhere")
    pack("folders: symlinked class folder (valid)", linked, "ok")
    with tarfile.open(d / "dup.tar", "w") as tar:
        tar.add(f / "train", arcname="train")
        tar.add(f / "train" / "sad", arcname="train/sad")
    pack("tar: duplicate members (valid)", d / "dup.tar", "ok")
    (d / "notar.tar").write_bytes(b"\0" * 1000)
    pack("tar: not a tar", d / "notar.tar")
    pack("missing source", d / "nope.csv")
    return cases


def model_cases(work: Path) -> list[Case]:
    from tests.faults_helpers import completed_run

    runs = work / "runs"
    run, other = completed_run(runs / "a", seed=1), completed_run(runs / "b", seed=2)
    ck = run / "checkpoints" / "last.ckpt"
    text = work / "notes.ckpt"
    text.write_text("hello\n")
    foreign = work / "foreign.ckpt"
    foreign.write_bytes(pickle.dumps({"x": Counter("abc")}, protocol=4))
    truncated = work / "truncated.ckpt"
    truncated.write_bytes(ck.read_bytes()[:5000])
    earlier_pt = work / "earlier" / "m.pt"
    earlier_pt.parent.mkdir()
    earlier_pt.write_bytes(b"an earlier export")
    out_dir = work / "outdir.onnx"
    out_dir.mkdir()
    record = run / "metrics.json"
    cases = [
        Case("checkpoint", "evaluate: a text file as ckpt_path",
             ["-m", "fer_lightning.evaluate", f"ckpt_path={text}", f"hydra.run.dir={work / 'ev1'}"]),
        Case("checkpoint", "evaluate: a foreign pickle", ["-m", "fer_lightning.evaluate", f"ckpt_path={foreign}",
                                                          f"hydra.run.dir={work / 'ev2'}"]),
        Case("checkpoint", "evaluate: a truncated checkpoint",
             ["-m", "fer_lightning.evaluate", f"ckpt_path={truncated}", f"hydra.run.dir={work / 'ev3'}"]),
        Case("export", "export: opset=7", ["-m", "fer_lightning.export", f"ckpt_path={ck}", "opset=7",
                                           f"output={work / 'o7.onnx'}"]),
        Case("export", "export: format=tflite", ["-m", "fer_lightning.export", f"ckpt_path={ck}", "format=tflite",
                                                 f"hydra.run.dir={work / 'ex2'}"]),
        Case("export", "export: output is a directory", ["-m", "fer_lightning.export", f"ckpt_path={ck}",
                                                         f"output={out_dir}"]),
        Case("export", "export: foreign pickle over an earlier output",
             ["-m", "fer_lightning.export", f"ckpt_path={foreign}", "format=torchscript", f"output={earlier_pt}"],
             guard=[earlier_pt]),
        Case("export", "export: torchscript (valid)", ["-m", "fer_lightning.export", f"ckpt_path={ck}",
                                                       "format=torchscript", f"output={work / 'ok.pt'}"], "ok"),
        Case("release", "release: another run's --ckpt",
             ["-m", "fer_lightning.release", str(run), "--ckpt", str(other / "checkpoints/last.ckpt"),
              "--out", str(work / "rel" / "m.pt")], guard=[record]),
        Case("release", "release: --result without =", ["-m", "fer_lightning.release", str(run), "--result", "x",
                                                        "--out", str(work / "rel" / "m.pt")]),
        Case("release", "release: --result not an evaluation",
             ["-m", "fer_lightning.release", str(run), "--result", f"x={record}", "--out", str(work / "rel/m.pt")]),
        Case("release", "release: a synthetic run (valid)", ["-m", "fer_lightning.release", str(run), "--out",
                                                             str(work / "rel" / "ok.pt")], "ok"),
    ]
    listed = work / "report_list" / "run"
    listed.mkdir(parents=True)
    (listed / "metrics.json").write_text("[1, 2]")
    # handled like any unreadable record: the job is listed under "Failed or unfinished jobs" with the reason
    cases.append(Case("report", "report: metrics.json holds a list", ["-m", "fer_lightning.report",
                                                                      str(listed.parent)], "ok"))
    cases.append(Case("report", "report: no such dir", ["-m", "fer_lightning.report", str(work / "nope")]))
    earlier = work / "predictions"
    earlier.mkdir()
    (earlier / "predictions.csv").write_text("source,label\nold.jpg,happy\n")
    empty = work / "empty_in"
    empty.mkdir()
    broken = work / "broken.jpg"
    broken.write_text("not a jpeg")
    cases += [
        Case("predict", "predict: missing input", ["-m", "fer_lightning.predict", f"input={work / 'nope.jpg'}",
                                                   f"ckpt_path={ck}", f"output_dir={work / 'p1'}"]),
        Case("predict", "predict: folder with no images over earlier results",
             ["-m", "fer_lightning.predict", f"input={empty}", f"ckpt_path={ck}", f"output_dir={earlier}"],
             guard=[earlier / "predictions.csv"]),
        Case("predict", "predict: a text file named .jpg", ["-m", "fer_lightning.predict", f"input={broken}",
                                                            f"ckpt_path={ck}", f"output_dir={work / 'p3'}"]),
        Case("predict", "predict: ckpt_path a foreign pickle", ["-m", "fer_lightning.predict", f"input={broken}",
                                                                f"ckpt_path={foreign}", f"output_dir={work / 'p4'}"]),
    ]
    return cases


CONFIG_VALUES = [  # (override, quick) - each must be refused in one line naming the key
    ("data.batch_size=0", True), ("optimizer.lr=-1", True), ("augment.hflip=2", True), ("seed=-1", True),
    ("model.net.num_classes=3", True), ("scheduler.factor=-1", False), ("scheduler.factor=2", False),
    ("scheduler.patience=-1", False), ("trainer.gradient_clip_val=-1", False), ("augment.brightness=5", False),
    ("augment.erasing_p=2", False), ("augment.translate_px=-4", False), ("augment.contrast=abc", False),
    ("augment.interpolation=foo", False), ("augment.image_size=abc", False), ("model.compile=abc", False),
    ("trainer.check_val_every_n_epoch=0", False), ("data.synthetic.n_train=-5", False),
    ("data.synthetic.n_train=abc", False), ("data.synthetic.seed=-1", False), ("+optimizer.momentum=0.9", False),
    ("model.net.dropout=1.5", False), ("trainer.devices=0", False), ("trainer.precision=foo", False),
    ("+data.foo=1", False), ("imbalance.power=abc", False), ("tags=abc", False), ("trainer.min_epochs=5", False),
]


def config_cases(work: Path) -> list[Case]:
    return [Case("config", f"train {value}", ["-m", "fer_lightning.train", *TINY, value,
                                              f"hydra.run.dir={work / 'cfg' / str(i)}"], quick=quick)
            for i, (value, quick) in enumerate(CONFIG_VALUES)]


def training_cases(work: Path) -> list[Case]:
    from tests.faults_helpers import completed_run

    run = completed_run(work / "done", seed=3)
    hydra_dir = run / ".hydra"
    hydra_dir.mkdir()
    (hydra_dir / "config.yaml").write_text("optimizer: adamw\n")
    return [
        Case("training", "train over a completed run", ["-m", "fer_lightning.train", *TINY, "optimizer=sgd",
                                                        f"hydra.run.dir={run}"], guard=[run / "metrics.json",
                                                                                       hydra_dir], quick=False),
        Case("training", "evaluate output_dir=<a run>", ["-m", "fer_lightning.evaluate",
                                                         f"ckpt_path={run / 'checkpoints/last.ckpt'}",
                                                         f"output_dir={run}"], guard=[hydra_dir], quick=False),
        Case("training", "train ckpt_path=<a text file>", ["-m", "fer_lightning.train", *TINY,
                                                           f"ckpt_path={work / 'notes.ckpt'}",
                                                           f"hydra.run.dir={work / 'tr3'}"], quick=False),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="only the cheap cases (a few minutes)")
    parser.add_argument("--jobs", type=int, default=2, help="cases run at once")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per case")
    parser.add_argument("--json", type=Path, help="also write every case's outcome here")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench_faults_"))
    try:
        cases = data_cases(work) + model_cases(work) + config_cases(work) + training_cases(work)
        cases = [c for c in cases if c.quick or not args.quick]
        started = time.perf_counter()
        with ThreadPoolExecutor(args.jobs) as pool:
            results = list(pool.map(lambda c: run_case(c, args.timeout, work), cases))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for r in results:
        print(json.dumps(r))
    outcomes = ("one-line", "traceback", "silent", "lost", "accepted", "refused")
    print(f"\n| group | cases | {' | '.join(outcomes)} |\n|---|---:|{'---:|' * len(outcomes)}")
    groups = list(dict.fromkeys(r["group"] for r in results))
    for group in [*groups, "all"]:
        rows = [r for r in results if group in ("all", r["group"])]
        counts = Counter(r["outcome"] for r in rows)
        print(f"| {group} | {len(rows)} | {' | '.join(str(counts[o]) for o in outcomes)} |")
    print(f"\n{len(results)} cases in {time.perf_counter() - started:.0f} s "
          f"({'--quick, ' if args.quick else ''}{args.jobs} at once, load {os.getloadavg()[0]:.1f})")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
