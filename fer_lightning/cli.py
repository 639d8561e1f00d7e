"""The torch-free front of every command line: one-line errors for bad overrides, values (schema) and run
directories (rundir) before Hydra creates a run directory (Hydra's own take several lines, or come after torch)."""

from __future__ import annotations

import difflib
import logging
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.types import Override
from omegaconf import DictConfig, OmegaConf, open_dict

from fer_lightning import rundir, schema
from fer_lightning.config import CONFIG_DIR


def _group_options(group: str) -> list[str] | None:
    folder = Path(CONFIG_DIR) / group
    return sorted(p.stem for p in folder.glob("*.yaml") if not p.stem.startswith("_")) if folder.is_dir() else None


def closest(word: str, choices: list[str], n: int = 2) -> list[str]:
    """Names the user probably meant: those `word` begins (haar.scale -> scale_factor), else difflib's closest."""
    started = [c for c in choices if c.startswith(word) and c != word]
    return started[:n] or difflib.get_close_matches(word, choices, n=n, cutoff=0.6)


def _choices(override: Override) -> list[str]:
    """An override's values as written: one, or each of a sweep's (none for a range or interval to sample)."""
    if not override.is_sweep_override():
        return [override.get_value_element_as_str()] if override.value() is not None or "=" in (
            override.input_line or "") else []
    return list(override.sweep_string_iterator()) if override.is_discrete_sweep() else []


def _unknown_option(overrides: list[Override]) -> str | None:
    for override in overrides:
        options = None if override.is_hydra_override() else _group_options(override.key_or_group)
        for choice in _choices(override) if options is not None else []:
            if choice not in options and choice != "null":
                close = " or ".join(closest(choice, options))
                hint = f" (did you mean {close}?)" if close else ""
                return f"{override.key_or_group}={choice}: unknown option{hint}; expected one of {', '.join(options)}"
    return None


def _jobs(overrides: list[Override]) -> list[list[str]]:
    """Every sweep at its first value, then each further value of one sweep at a time (not a sampled range)."""
    kept = [(o, _choices(o)) for o in overrides if _choices(o) or not o.is_sweep_override()]
    line = [f"{o.get_key_element()}={values[0]}" if values else o.input_line or "" for o, values in kept]
    jobs = [line]
    for i, (override, values) in enumerate(kept):
        jobs += [[*line[:i], f"{override.get_key_element()}={value}", *line[i + 1:]] for value in values[1:]]
    return jobs


def compose_task(config_name: str, overrides: list[str]) -> DictConfig:
    """The config a job would get, with its `hydra` node (run directory, mode), composed without running it."""
    GlobalHydra.instance().clear()  # initialize_config_dir restores this cleared state when it exits
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return compose(config_name, overrides=overrides, return_hydra_config=True)


def _missing_key_problem(config_name: str, overrides: list[Override]) -> str | None:
    """The `key=value` naming a key that the config composed from the group choices lacks, with the closest key."""
    groups = [o for o in overrides if not o.is_hydra_override() and _group_options(o.key_or_group) is not None]
    try:
        cfg = compose_task(config_name, _jobs(groups)[0])
    except Exception as error:
        return f"{' '.join(o.input_line or '' for o in groups)}: {str(error).strip().splitlines()[0]}"
    keys = [o.key_or_group for o in overrides
            if not (o.is_add() or o.is_force_add() or o.is_hydra_override() or o in groups)]
    return next(filter(None, (_missing_key(cfg, key) for key in keys)), None)


def check_overrides(args: list[str], config_name: str = "train") -> str | None:
    """The first problem of a command line, as one line, or None: an unparsable override, an unknown option or key,
    a value the schema refuses in any job of a sweep, then what it would do to its run (or sweep) directory."""
    return _checked(args, config_name)[0]


def _checked(args: list[str], config_name: str) -> tuple[str | None, DictConfig | None]:
    """check_overrides' problem, and the config of a single run that passed (None for a sweep or a printing command)."""
    try:  # flags such as -m are not overrides
        overrides = schema.parse_overrides(a for a in args if ("=" in a or a.startswith("~")) and not a.startswith("-"))
    except ValueError as error:
        return str(error), None
    printing = bool({"-c", "--cfg", "-i", "--info"} & set(args))  # shows the config, runs nothing
    jobs, first = _jobs(overrides), None
    for job in jobs:
        try:
            cfg = compose_task(config_name, job)
        except Exception as error:
            return (_unknown_option(overrides) or _missing_key_problem(config_name, overrides)
                    or str(error).strip().splitlines()[0]), None
        if not printing and (problem := schema.problem(cfg, config_name)):
            return problem, None
        first = first or cfg
    if printing or os.environ.get("LOCAL_RANK", "0") != "0":  # a DDP rank Lightning started: rank 0 checked it
        return None, None
    if {"-m", "--multirun"} & set(args) or str(first.hydra.mode) == "RunMode.MULTIRUN":
        return rundir.sweep_problem(first, config_name), None
    return rundir.problem(first, config_name), first if len(jobs) == 1 else None


def _missing_key(cfg: DictConfig, key: str) -> str | None:
    node: object = cfg
    parts = key.split(".")
    for depth, part in enumerate(parts):
        parent = ".".join(parts[:depth]) or "the config"
        if node is None:  # data=fer2013 data.synthetic.n_train=300: a key of another option of the group
            return f"{key}: {parent} is null in this config, so it has no key '{part}'"
        if not isinstance(node, DictConfig):
            return None  # a list index or a value: let Hydra judge
        if part not in node.keys():  # noqa: SIM118 - keys(), not `in`: a mandatory `???` value is still a key
            names = [str(k) for k in node]
            close = closest(part, names)
            if close:  # a typo: point at the key that exists, not at adding a new one
                fixed = ".".join([*parts[:depth], close[0], *parts[depth + 1:]])
                return f"{key}: no key '{part}' in {parent}; did you mean {fixed}? (keys there: {', '.join(names)})"
            return (f"{key}: no key '{part}' in {parent}; expected one of {', '.join(names)} "
                    f"(use +{key}=... to add a new key)")
        node = OmegaConf.select(node, part, throw_on_missing=False, throw_on_resolution_failure=False)
    return None


def expected_failure(error: BaseException | None) -> BaseException | None:
    """The user-caused error in `error`'s cause chain (an OSError, a ValueError or FloatingPointError this package
    raises, Lightning's MisconfigurationException), or None for a bug, which keeps its traceback."""
    package = Path(__file__).resolve().parent
    while error is not None:
        frames = traceback.extract_tb(error.__traceback__)  # raised here: the innermost frame is this package's code
        raised_here = bool(frames) and Path(frames[-1].filename).resolve().is_relative_to(package)
        if isinstance(error, OSError) or (isinstance(error, ValueError | FloatingPointError) and raised_here) \
                or type(error).__name__ == "MisconfigurationException":
            return error
        error = error.__cause__ or error.__context__
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
    report_failure(cli, error)
    raise SystemExit(2)


def run_checked(main: Callable[..., object], config_name: str, composed: bool = False) -> None:
    """Reject a bad command line in one line (exit 2), then hand over to Hydra (directly for help or another config).
    `composed` (predict: runs in the working directory, saves no config): a single run gets the checked config with
    Hydra's logging and HydraConfig set, sparing Hydra's two more compositions (0.4 s of a 3.2 s cold start)."""
    flags = {a.split("=")[0] for a in sys.argv[1:] if a.startswith("-")}
    to_hydra = {"-h", "--help", "--hydra-help", "-cp", "--config-path", "-cn", "--config-name", "-cd", "--config-dir",
                "-sc", "--shell-completion"}
    problem, cfg = (None, None) if flags & to_hydra else _checked(sys.argv[1:], config_name)
    if problem:
        fail(config_name, ValueError(problem))
    if not (composed and cfg is not None):
        main()
        return
    from hydra.core.hydra_config import HydraConfig
    from hydra.core.utils import configure_log

    HydraConfig.instance().set_config(cfg)
    configure_log(cfg.hydra.job_logging, cfg.hydra.verbose)
    task = cfg.copy()
    with open_dict(task):
        del task["hydra"]
    main(task)

