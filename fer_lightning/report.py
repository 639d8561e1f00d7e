"""Ablation tables from finished sweeps: one row per setting (mean ± std over seeds), failures listed, curves.
It reads only what runs leave on disk (fer_lightning.runrecord), so a table can be rebuilt at any time, from several
sweeps or single runs together; failed or unfinished jobs are listed, not silently left out of a row's n."""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.ticker import MaxNLocator
from omegaconf import OmegaConf

from fer_lightning.config import CONFIG_DIR
from fer_lightning.runrecord import Job, atomic_write_text, find_runs, override_settings
from fer_lightning.stats import check_threshold, paired_difference, time_to
from fer_lightning.tables import markdown_table, save_figure

# Per-job numbers taken from a record: column -> (split, key in the classification report, title), val_acc first.
SUMMARY_METRICS = {f"{split}_{column}": (split, key, f"{split} {title}") for split in ("val", "test")
                   for column, key, title in (("acc", "accuracy", "acc"), ("macro_f1", "macro_f1", "macro-F1"),
                                              ("weighted_f1", "weighted_f1", "weighted-F1"))}
BASELINE_METRICS = (("val_acc", "Δ val acc"), ("val_macro_f1", "Δ val macro-F1"))


def varying_keys(jobs: Sequence[Job]) -> list[str]:
    """Override keys whose value differs between jobs, except seed (rows average over it) and the run-control keys
    that run names leave out too (conf/hydra/default.yaml's exclude_keys: skip_completed=true is the same run)."""
    hydra_defaults = OmegaConf.load(Path(CONFIG_DIR) / "hydra" / "default.yaml")
    ignored = {"seed", *(OmegaConf.select(hydra_defaults, "job.config.override_dirname.exclude_keys") or ())}
    keys = dict.fromkeys(k for job in jobs for k in job.overrides if k not in ignored)
    return [k for k in keys if len({job.setting(k) for job in jobs}) > 1]


def time_to_columns(threshold: float) -> tuple[str, str]:
    return f"epochs_to_{threshold:g}", f"s_to_{threshold:g}"


def setting_label(keys: Sequence[str], values: Sequence[Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in zip(keys, values, strict=True)) or "all jobs"


def jobs_frame(jobs: Sequence[Job], keys: Sequence[str], thresholds: Sequence[float] = ()) -> pd.DataFrame:
    """One row per completed job: its settings (without keys: `setting`, all jobs), seed, summary metrics, time to
    each threshold, per-class F1, epochs and fit time; metrics as numbers (NaN where the record has none)."""
    done = [job for job in jobs if job.status == "completed"]
    # the classes as the records name them, in their order (the records, not this package, are the truth)
    classes = list(dict.fromkeys(n for job in done for split in ("val", "test")
                                 for n in (job.record.get(split) or {}).get("per_class", {})))
    rows = []
    for job in done:
        row: dict[str, Any] = {**({k: job.setting(k) for k in keys} or {"setting": "all jobs"}), "seed": job.seed}
        for threshold in thresholds:
            reached = time_to(job.record.get("history") or [], threshold)
            row.update(zip(time_to_columns(threshold), reached or (None, None), strict=True))
        for column, (split, key, _) in SUMMARY_METRICS.items():
            row[column] = (job.record.get(split) or {}).get(key)
        for split in ("val", "test"):
            per_class = (job.record.get(split) or {}).get("per_class", {})
            row.update({f"{split}_f1_{name}": per_class.get(name, {}).get("f1") for name in classes})
        rows.append({**row, "epochs": job.record.get("epochs"), "fit_time_s": job.record.get("fit_time_s")})
    frame = pd.DataFrame(rows)
    metric_columns = [c for c in frame.columns if c not in (*keys, "setting", "seed")]
    frame[metric_columns] = frame[metric_columns].apply(pd.to_numeric, errors="coerce")
    return frame


def ablation_frame(frame: pd.DataFrame, jobs: Sequence[Job], keys: Sequence[str],
                   thresholds: Sequence[float] = ()) -> pd.DataFrame:
    """One row per setting of `jobs_frame`: n, mean and sample std (`<metric>_std`), and `failed` counting the
    setting's other jobs. Time-to-threshold means are over the jobs that reached it; `reached_<t>` counts them."""
    if frame.empty:
        return frame
    labels = list(keys) or ["setting"]
    metric_columns = [c for c in frame.columns if c not in (*labels, "seed")]
    grouped = frame.groupby(labels, sort=False)
    spread = grouped[metric_columns].agg(["mean", "std"])  # each metric's mean, then its std
    spread.columns = [metric if stat == "mean" else f"{metric}_std" for metric, stat in spread.columns]
    reached = [grouped[time_to_columns(t)[1]].count().rename(f"reached_{t:g}") for t in thresholds]
    table = pd.concat([grouped.size().rename("n"), spread, *reached], axis=1).dropna(axis=1, how="all").reset_index()
    failed = [[job.setting(k) for k in keys] for job in jobs if job.status != "completed"]
    table.insert(len(labels), "failed", [failed.count([row[k] for k in keys]) for _, row in table.iterrows()])
    return table


def baseline_frame(frame: pd.DataFrame, keys: Sequence[str], baseline: Mapping[str, str]) -> pd.DataFrame:
    """Per row: paired-seed difference (row - baseline) of val acc and macro-F1, mean and 95 % t-interval."""
    settings = {} if frame.empty else dict(iter(frame.groupby(list(keys), sort=False)))
    wanted = tuple(baseline.get(k) for k in keys)
    if wanted not in settings:
        raise ValueError(f"--baseline {setting_label(keys, wanted)}: no completed row with that setting; "
                         f"rows: {'; '.join(sorted(setting_label(keys, label) for label in settings))}")
    rows = []
    for label, runs in settings.items():
        row: dict[str, Any] = dict(zip(keys, label, strict=True))
        for column, title in BASELINE_METRICS:
            per_seed = [s.set_index("seed")[column].dropna().to_dict() for s in (runs, settings[wanted])]
            interval = paired_difference(*per_seed)
            if label == wanted:
                row[title] = "baseline"
            elif interval is None:
                row[title] = "no shared seed"
            elif interval.n < 2:
                row[title] = f"{interval.estimate:+.4f} (1 seed, no interval)"
            else:
                marker = " *" if interval.excludes_zero() else ""
                row[title] = (f"{interval.estimate:+.4f} [{interval.low:+.4f}, {interval.high:+.4f}] "
                              f"n={interval.n}{marker}")
        rows.append(row)
    return pd.DataFrame(rows)


def _display(table: pd.DataFrame, labels: Sequence[str], columns: Sequence[tuple[str, str]]) -> pd.DataFrame:
    """Label columns, n, then 'mean ± std' cells (the std where n > 1) for the metrics present."""
    shown = table[[*labels, "n"]].copy()
    for column, title in columns:
        if column in table:
            number = "{:.1f}" if column in ("epochs", "fit_time_s") else "{:.4f}"
            std = table.get(f"{column}_std", pd.Series(float("nan"), index=table.index)).where(table["n"] > 1)
            shown[title] = (table[column].map(number.format, na_action="ignore").fillna("")
                            + std.map((" ± " + number).format, na_action="ignore").fillna(""))
    return shown


def time_to_cells(table: pd.DataFrame, thresholds: Sequence[float]) -> dict[str, list[str]]:
    """'mean epochs / mean s (reached/n)' per threshold; '-' where no job of the row reached it."""
    cells: dict[str, list[str]] = {}
    for threshold in thresholds:
        epochs, seconds = (table.get(c, pd.Series(float("nan"), index=table.index)) for c in time_to_columns(threshold))
        reached = table[f"reached_{threshold:g}"].astype(int)
        cells[f"to val acc {threshold:g}"] = [f"{e:.1f} ep / {s:.0f} s ({r}/{n})" if r else f"- (0/{n})"
                                              for e, s, r, n in zip(epochs, seconds, reached, table["n"], strict=True)]
    return cells


def _relative(path: Path, root: Path) -> str:
    return str(path.relative_to(root) if path.is_relative_to(root) else path)


def evaluations_frame(evaluations: Sequence[tuple[Path, dict[str, Any]]], root: Path) -> pd.DataFrame:
    """One row per evaluate record: a single checkpoint or an ensemble (with its members' own accuracies)."""
    rows = []
    for path, record in evaluations:
        members, interval = record.get("members") or [], (record.get("bootstrap") or {}).get("accuracy")
        rows.append({"evaluation": _relative(path, root),
                     "model": f"ensemble of {len(members)}" if members else Path(str(record.get("ckpt_path"))).name,
                     "split": record.get("split"), "TTA": "+".join(record.get("tta") or []),
                     "accuracy": f"{record['report']['accuracy']:.4f}",
                     "95 % interval": f"[{interval['low']:.4f}, {interval['high']:.4f}]" if interval else "",
                     "macro-F1": f"{record['report']['macro_f1']:.4f}",
                     "members' accuracy": ", ".join(f"{m['accuracy']:.4f}" for m in members)})
    return pd.DataFrame(rows)


def render_markdown(table: pd.DataFrame, failures: pd.DataFrame, keys: Sequence[str], roots: Sequence[Path],
                    where: dict[str, str] | None = None, thresholds: Sequence[float] = (),
                    baseline: pd.DataFrame | None = None, evaluations: pd.DataFrame | None = None) -> str:
    labels = list(keys) or ["setting"]
    selection = f" (jobs with {', '.join(f'{k}={v}' for k, v in where.items())})" if where else ""
    parts = [f"# Ablation: {', '.join(str(r) for r in roots)}{selection}\n",
             "val: the evaluated checkpoint's validation (PublicTest) report (the best or the last epoch, as the run's "
             "eval_weights says), the split used for model selection; test: PrivateTest, evaluated once on that "
             "checkpoint. Cells are mean ± sample std over n completed jobs (seeds); `failed` counts this setting's "
             "failed or unfinished jobs.\n"]
    if table.empty:
        parts.append("No completed job.\n")
    else:
        summary = [*((c, title) for c, (_, _, title) in SUMMARY_METRICS.items()), ("epochs", "epochs"),
                   ("fit_time_s", "fit time (s)")]
        shown = _display(table, labels, summary)
        shown.insert(len(labels) + 1, "failed", table["failed"])
        parts.append(markdown_table(shown.assign(**time_to_cells(table, thresholds)), len(labels)))
        if thresholds:
            parts.append("`to val acc t`: mean epochs / seconds of training until the per-epoch val accuracy first "
                         "reached t, over the (reached/n) jobs that reached it.\n")
        if baseline is not None and not baseline.empty:
            parts += ["\n## Paired difference against the baseline\n",
                      "Mean over the seeds both rows ran of (row - baseline), 95 % t-interval over those per-seed "
                      "differences; * marks an interval that excludes 0.\n", markdown_table(baseline, len(labels))]
        for split in ("val", "test"):
            prefix = f"{split}_f1_"
            per_class = [(c, c.removeprefix(prefix)) for c in table if c.startswith(prefix) and not c.endswith("_std")]
            if per_class:
                parts += [f"\n## Per-class F1 ({split})\n", markdown_table(_display(table, labels, per_class),
                                                                          len(labels))]
    if not failures.empty:
        parts += ["\n## Failed or unfinished jobs\n", markdown_table(failures, len(failures.columns))]
    if evaluations is not None and not evaluations.empty:
        parts += ["\n## Evaluations (single checkpoints and ensembles)\n",
                  "`python -m fer_lightning.evaluate` records found beside the runs; an ensemble averages its "
                  "members' softmax probabilities.\n", markdown_table(evaluations, 4)]
    return "\n".join(parts)


def save_val_acc_figure(jobs: Sequence[Job], keys: Sequence[str], path: Path) -> bool:
    """Val accuracy per epoch, one line per setting (mean over its completed jobs); False without history."""
    curves: dict[str, list[pd.Series]] = {}
    for job in jobs:
        history = [r for r in job.record.get("history") or [] if r.get("val/acc") is not None]
        if job.status != "completed" or not history:
            continue
        series = pd.Series({int(r["epoch"]) + 1: float(r["val/acc"]) for r in history})
        curves.setdefault(setting_label(keys, [job.setting(k) for k in keys]), []).append(series)
    if not curves:
        return False
    fig, ax = plt.subplots(figsize=(8, 5), constrained_layout=True)
    for label, series in curves.items():
        mean = pd.concat(series, axis=1).mean(axis=1).sort_index()
        ax.plot(mean.index, mean.values, marker="o" if len(mean) < 30 else None, markersize=3,
                label=f"{label} (n={len(series)})")
    ax.set(xlabel="epoch", ylabel="val accuracy", title="Validation accuracy per epoch (mean over seeds)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    save_figure(fig, path)
    plt.close(fig)
    return True


def parse_where(conditions: Sequence[str], option: str = "--where") -> dict[str, str]:
    """`['scheduler=plateau']` -> {'scheduler': 'plateau'} (Hydra's override syntax, values written as the config
    prints them); ValueError (one line) for a condition that is not KEY=VALUE."""
    parsed: dict[str, str] = {}
    for condition in conditions:
        try:
            override = override_settings([condition])
        except ValueError:
            override = {}
        if "=" not in condition or len(override) != 1 or "(deleted)" in override.values():
            raise ValueError(f"{option} {condition!r}: expected KEY=VALUE, e.g. scheduler=plateau")
        parsed.update(override)
    return parsed


def parse_baseline(baseline: str | None, keys: Sequence[str]) -> dict[str, str] | None:
    """`optimizer=adamw` (or `k1=v1,k2=v2` for several row keys) -> {key: value}; every key must be a row key."""
    if not baseline:
        return None
    parsed = parse_where(re.split(r",(?=[\w.]+=)", baseline), option="--baseline")
    if unknown := [k for k in parsed if k not in keys]:
        raise ValueError(f"--baseline {baseline}: {', '.join(unknown)} is not a row key of this table "
                         f"(rows differ in: {', '.join(keys) or 'nothing'}); use --group-by to set them")
    return parsed


def build_report(roots: Sequence[str | Path], group_by: Sequence[str] | None = None,
                 out: str | Path | None = None, where: Sequence[str] = (), time_to: str | None = None,
                 baseline: str | None = None) -> dict[str, Any]:
    """Find the jobs (those matching every `where` KEY=VALUE), write ablation.md / ablation.csv / val_acc.png;
    return the tables and the paths. `where` lets one table take a shared baseline row from another sweep."""
    roots = [Path(r) for r in roots]
    conditions = parse_where(where)
    found, evaluated = find_runs(roots)
    jobs = [job for job in found if all(job.matches(k, v) for k, v in conditions.items())]
    evaluations = evaluations_frame(evaluated, roots[0])
    if not jobs and (conditions or evaluations.empty):
        selection = f" with {', '.join(where)}" if conditions and found else ""
        raise FileNotFoundError(f"no training job (metrics.json or .hydra/){selection} or evaluate record under "
                                f"{', '.join(map(str, roots))}")
    keys = list(group_by) if group_by else varying_keys(jobs)
    if missing := [key for key in keys if all(job.setting(key) == "-" for job in jobs)]:
        known = sorted({k for job in jobs for k in (*job.overrides, *job.choices)})
        raise ValueError(f"--group-by {' '.join(missing)}: no job has such a key; groups and overridden keys: "
                         f"{', '.join(known) or 'none'} (or any config key, e.g. model.net.dropout)")
    thresholds = [check_threshold(part) for part in (time_to or "").split(",") if part.strip()]
    baseline_setting = parse_baseline(baseline, keys)
    frame = jobs_frame(jobs, keys, thresholds)
    table = ablation_frame(frame, jobs, keys, thresholds)
    paired = baseline_frame(frame, keys, baseline_setting) if baseline_setting else None
    failures = pd.DataFrame([{"job": _relative(job.path, roots[0]), "status": job.status,
                              **{k: job.setting(k) for k in keys}, "seed": job.seed, "reason": job.error}
                             for job in jobs if job.status != "completed"])
    out_dir = Path(out) if out is not None else roots[0]
    markdown = render_markdown(table, failures, keys, roots, conditions, thresholds, paired, evaluations)
    paths = {"markdown": out_dir / "ablation.md", "csv": out_dir / "ablation.csv", "plot": out_dir / "val_acc.png"}
    atomic_write_text(paths["markdown"], markdown)
    atomic_write_text(paths["csv"], table.to_csv(index=False, float_format="%.6g"))
    if not save_val_acc_figure(jobs, keys, paths["plot"]):
        del paths["plot"]
    return {"jobs": jobs, "keys": keys, "table": table, "failures": failures, "markdown": markdown, "paths": paths,
            "baseline": paired}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fer_lightning.report", description=__doc__.split("\n")[0])
    parser.add_argument("dirs", nargs="+", help="multirun or run directories (searched recursively)")
    parser.add_argument("--group-by", nargs="+", metavar="KEY",
                        help="row keys, e.g. optimizer (default: the override keys that vary across jobs, not seed)")
    parser.add_argument("--where", nargs="+", metavar="KEY=VALUE", default=[],
                        help="only jobs with these settings, e.g. scheduler=plateau (a baseline shared by sweeps)")
    parser.add_argument("--out", help="output directory (default: the first dir)")
    parser.add_argument("--time-to", metavar="T1,T2", help="val accuracy thresholds in (0, 1], e.g. 0.65,0.68: "
                        "epochs and seconds until each was first reached")
    parser.add_argument("--baseline", metavar="KEY=VALUE", help="the row every other row is compared with "
                        "(paired by seed, 95 %% t-interval), e.g. optimizer=adamw")
    args = parser.parse_args(argv)
    try:
        result = build_report(args.dirs, args.group_by, args.out, args.where, args.time_to, args.baseline)
    except (OSError, ValueError) as error:
        print(f"report: error: {error}", file=sys.stderr)
        return 2
    print(result["markdown"])
    print("wrote " + ", ".join(str(p) for p in result["paths"].values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
