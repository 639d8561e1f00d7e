"""What TensorBoard shows of a run: its logs in `<run dir>/tensorboard`, or a sweep's job's in `<sweep dir>/tensorboard/
<name>`, named by its overrides of the keys the sweep varies (`optimizer=sgd,seed=2`, read from multirun.yaml), and
its HPARAMS settings. Torch-free: its resolvers are registered before Hydra composes the config."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Collection, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from fer_lightning.schema import parse_overrides

if TYPE_CHECKING:
    from hydra.core.override_parser.types import Override

SWEEP_CONFIG = "multirun.yaml"
MAX_NAME = 200  # a directory name is at most 255 bytes; longer names keep their start and a hash of the whole


def swept_keys(sweep_config: DictConfig) -> set[str]:
    """The keys a sweep varies, as Hydra's basic sweeper and Optuna's read them: `hydra.sweeper.params` (an
    experiment's sweep, an Optuna search space), then the command line, where `key=value` fixes a key again."""
    params = OmegaConf.select(sweep_config, "hydra.sweeper.params") or {}
    lines = [f"{key}={value}" for key, value in params.items()]
    lines += list(OmegaConf.select(sweep_config, "hydra.overrides.task") or [])
    swept = {override.key_or_group: override.is_sweep_override() for override in parse_overrides(lines)}
    return {key for key, is_swept in swept.items() if is_swept}


def shown_overrides(task_overrides: Iterable[str], swept: set[str] | None,
                    exclude_keys: Collection[str] = ()) -> tuple[list[Override], bool]:
    """The overrides of the swept keys (all keys when unknown), less Hydra's, the excluded keys and path values (they
    would nest directories); and whether a swept key was left out (then the name may not tell two jobs apart)."""
    shown, dropped = [], False
    for override in parse_overrides(task_overrides):
        key = override.key_or_group
        if swept is not None and key not in swept:
            continue
        value = override.get_value_element_as_str()
        if key in exclude_keys or override.is_hydra_override() or override.is_delete() or "/" in value or "\\" in value:
            dropped = swept is not None
        else:
            shown.append(override)
    return shown, dropped


def run_name(shown: list[Override], dropped: bool = False, job_num: int | None = None) -> str:
    """`optimizer=sgd,seed=2`: Hydra's override_dirname of the shown overrides, with `job=<n>` where that alone may
    not be unique (nothing shown, or a swept key left out); no path separators, at most MAX_NAME bytes."""
    name = ",".join(sorted(o.input_line or "" for o in shown))
    if job_num is not None and (dropped or not name):
        name = ",".join(filter(None, [name, f"job={job_num}"]))
    name = name.replace("/", "_").replace("\\", "_")
    if len(name.encode()) > MAX_NAME:
        digest = hashlib.sha1(name.encode()).hexdigest()[:10]
        name = name.encode()[:MAX_NAME - 11].decode(errors="ignore") + "~" + digest
    return name


def _hydra() -> tuple[DictConfig | None, bool]:
    """The running job's Hydra config (None outside Hydra) and whether the job is one of a sweep."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    hydra_cfg = HydraConfig.get() if HydraConfig.initialized() else None
    return hydra_cfg, hydra_cfg is not None and hydra_cfg.get("mode") == RunMode.MULTIRUN


def sweep_dir(hydra_cfg: DictConfig) -> Path:
    """The sweep's directory: the job's output dir less `hydra.sweep.subdir` (a `${now:...}` there could re-resolve)."""
    output_dir = Path(hydra_cfg.runtime.output_dir).absolute()
    subdir = Path(str(hydra_cfg.sweep.subdir)).parts
    if subdir and output_dir.parts[-len(subdir):] == subdir:
        return Path(*output_dir.parts[:-len(subdir)])
    return Path(hydra_cfg.sweep.dir).absolute()


def job_overrides() -> tuple[list[Override], bool]:
    """`shown_overrides` of the running job (sweep or single run), with the project's exclude_keys."""
    hydra_cfg, multirun = _hydra()
    if hydra_cfg is None:
        return [], False
    exclude = list(OmegaConf.select(hydra_cfg, "job.config.override_dirname.exclude_keys") or [])
    task = list(hydra_cfg.overrides.task)
    swept = None
    with contextlib.suppress(Exception):  # a missing or foreign multirun.yaml only loses the filter, never the run
        swept = swept_keys(OmegaConf.load(sweep_dir(hydra_cfg) / SWEEP_CONFIG)) if multirun else None
    shown, dropped = shown_overrides(task, swept, exclude)
    if swept is not None and not shown:  # a "sweep" of one job (or of paths only): its own overrides name it
        shown = shown_overrides(task, None, exclude)[0]
    return shown, dropped


def tensorboard_save_dir(output_dir: str) -> str:
    """Resolver `fer.tensorboard_save_dir`: the run directory, or in a sweep the sweep's directory."""
    hydra_cfg, multirun = _hydra()
    return str(sweep_dir(hydra_cfg)) if multirun else output_dir


def tensorboard_version() -> str:
    """Resolver `fer.tensorboard_version`: "" for a single run, the job's `run_name` in a sweep."""
    hydra_cfg, multirun = _hydra()
    return run_name(*job_overrides(), job_num=int(hydra_cfg.job.num)) if multirun else ""


def override_hparams(cfg: DictConfig) -> dict[str, Any]:
    """HPARAMS settings: each shown override's key and its value in the run's config (a group: its option)."""
    hydra_cfg, _ = _hydra()
    choices = dict(hydra_cfg.runtime.choices) if hydra_cfg is not None else {}
    settings: dict[str, Any] = {}
    for override in job_overrides()[0]:
        key, written = override.key_or_group, override.get_value_element_as_str()
        value = choices[key] if key in choices else OmegaConf.select(cfg, key, default=written)
        if OmegaConf.is_config(value):
            value = OmegaConf.to_container(value, resolve=True)
        if not isinstance(value, bool | int | float | str):
            value = "null" if value is None else str(value)
        settings[key] = value
    return settings


class SaveSweepConfig(Callback):
    """Writes `<sweep dir>/multirun.yaml` as a sweep starts (Optuna's sweeper does not): jobs read swept keys there."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        directory = Path(config.hydra.sweep.dir)
        directory.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(config, directory / SWEEP_CONFIG)
