"""One-line errors for bad command-line overrides, checked before Hydra starts the job.

Hydra reports an unknown option or key in several lines with its search path; users of a sweep want the key
and the allowed values in one line, before any data is loaded.
"""

from __future__ import annotations

import difflib
import importlib
import logging
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, OmegaConf

from fer_lightning.config import CONFIG_DIR


def _group_options(group: str) -> list[str] | None:
    folder = Path(CONFIG_DIR) / group
    return sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else None


def closest(word: str, choices: list[str], n: int = 2) -> list[str]:
    """Names the user probably meant: those `word` begins (haar.scale -> scale_factor), else difflib's closest."""
    started = [c for c in choices if c.startswith(word) and c != word]
    return started[:n] or difflib.get_close_matches(word, choices, n=n, cutoff=0.6)


def _did_you_mean(word: str, choices: list[str]) -> str:
    close = closest(word, choices)
    return f" (did you mean {' or '.join(close)}?)" if close else ""


def _values(value: str) -> list[str]:
    """The options of a plain sweep list `a,b,c` (sweep functions like choice(...) are left to Hydra)."""
    return [] if "(" in value else [v.strip() for v in value.split(",")]


def check_overrides(args: list[str], config_name: str = "train") -> str | None:
    """The first problem among `key=value` overrides, as one line, or None."""
    overrides = [a for a in args if "=" in a and not a.startswith("-")]
    groups: list[str] = []
    for override in overrides:
        key, value = override.split("=", 1)
        if key.startswith("hydra"):  # hydra.* keys and hydra/... groups are Hydra's own
            continue
        options = _group_options(key.lstrip("+~"))
        if options is None:
            continue
        for choice in _values(value):
            if choice not in options and choice != "null":
                return f"{key}={choice}: unknown option{_did_you_mean(choice, options)}; expected one of " \
                       f"{', '.join(options)}"
        groups.append(f"{key}={_values(value)[0]}" if _values(value) else override)
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
            cfg = compose(config_name, overrides=groups)
    except Exception as error:  # an experiment that does not compose: Hydra explains it better
        return f"{' '.join(groups)}: {str(error).splitlines()[0]}"
    finally:
        GlobalHydra.instance().clear()
    for override in overrides:
        key = override.split("=", 1)[0]
        if key[0] in "+~" or key.startswith("hydra") or _group_options(key) is not None:
            continue
        problem = _missing_key(cfg, key)
        if problem:
            return problem
    return None


def _missing_key(cfg: DictConfig, key: str) -> str | None:
    node: object = cfg
    parts = key.split(".")
    for depth, part in enumerate(parts):
        if not isinstance(node, DictConfig):
            return None  # a list index or a value: let Hydra judge
        if part not in node.keys():  # noqa: SIM118 - keys(), not `in`: a mandatory `???` value is still a key
            parent = ".".join(parts[:depth]) or "the config"
            names = [str(k) for k in node]
            close = closest(part, names)
            if close:  # a typo: point at the key that exists, not at adding a new one
                fixed = ".".join([*parts[:depth], close[0], *parts[depth + 1:]])
                return f"{key}: no key '{part}' in {parent}; did you mean {fixed}? (keys there: {', '.join(names)})"
            return (f"{key}: no key '{part}' in {parent}; expected one of {', '.join(names)} "
                    f"(use +{key}=... to add a new key)")
        node = OmegaConf.select(node, part, throw_on_missing=False, throw_on_resolution_failure=False)
    return None


PACKAGE_DIR = Path(__file__).resolve().parent


def _raised_here(error: BaseException) -> bool:
    """True when the innermost frame that raised `error` is this package's code (a deliberate, worded error)."""
    frames = traceback.extract_tb(error.__traceback__)
    return bool(frames) and Path(frames[-1].filename).resolve().is_relative_to(PACKAGE_DIR)


def expected_failure(error: BaseException) -> BaseException | None:
    """The user-caused error in `error`'s cause chain (Hydra's InstantiationException wraps the real one), or None
    for a bug, which keeps its traceback. User-caused: files that are missing or unreadable (OSError), and every
    ValueError this package raises on purpose (ConfigError, DataFormatError, CheckpointError, ... subclass it)."""
    seen: BaseException | None = error
    for _ in range(10):
        if seen is None:
            return None
        if isinstance(seen, OSError) or (isinstance(seen, ValueError) and _raised_here(seen)):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def log_to_files(message: str) -> None:
    """Write `message` (e.g. a traceback) to the run's log files only, not to the terminal."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            handler.emit(logging.LogRecord("fer_lightning", logging.ERROR, __file__, 0, message, None, None))


def report_failure(cli: str, error: BaseException) -> None:
    """One line on stderr, `<cli>: error: <message>`; the traceback goes to the log file."""
    log_to_files("".join(traceback.format_exception(error)))
    message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    if isinstance(error, OSError) and error.filename and str(error.filename) not in message:
        message = f"{error.filename}: {message}"
    print(f"{cli}: error: {message}", file=sys.stderr)


def fail(cli: str, error: BaseException) -> NoReturn:
    """report_failure, then exit status 2."""
    report_failure(cli, error)
    raise SystemExit(2)


def _override(args: list[str], key: str) -> str | None:
    values = [a.split("=", 1)[1] for a in args if a.split("=", 1)[0].lstrip("+") == key and "=" in a]
    return values[-1] if values else None


def check_resume_target(args: list[str]) -> str | None:
    """Before Hydra creates or rewrites a run directory: a resume target must exist, and a completed run is only
    re-run with force=true (its metrics.json and .hydra/ would be overwritten)."""
    from fer_lightning.config import resume_run_dir
    from fer_lightning.runrecord import RECORD_NAME, completed_record

    target = _override(args, "ckpt_path")
    if not target or target == "null":
        return None
    if not Path(target).exists():
        return f"ckpt_path={target}: no such checkpoint file or run directory (nothing was created)"
    run_dir = resume_run_dir(target, "")
    force = (_override(args, "force") or "false").lower() == "true"
    if run_dir and completed_record(run_dir) is not None and not force:
        return (f"ckpt_path={target}: {run_dir} is a completed run; resuming would overwrite its {RECORD_NAME}. "
                "Train longer into a new directory (ckpt_path=<its last.ckpt> hydra.run.dir=<new dir>), or pass "
                "force=true")
    return None


def run_checked(main: Callable[[], object], config_name: str) -> None:
    """Command-line entry of a Hydra app: reject a bad override in one line (exit 2), then hand over to Hydra."""
    problem = check_overrides(sys.argv[1:], config_name)
    if problem is None and config_name == "train" and "-m" not in sys.argv and "--multirun" not in sys.argv:
        problem = check_resume_target(sys.argv[1:])
    if problem:
        print(f"{config_name}: error: {problem}", file=sys.stderr)
        raise SystemExit(2)
    main()


def reexport(entry: str, job: str) -> Callable[[str], Any]:
    """A module `__getattr__` for a torch-free entry module: `from <entry> import name` still works, loading the
    job module (which imports torch) only when one of its names is first asked for."""

    def __getattr__(name: str) -> Any:
        try:
            return getattr(importlib.import_module(job), name)
        except AttributeError:
            raise AttributeError(f"module {entry!r} has no attribute {name!r}") from None

    return __getattr__
