"""One-line errors for bad command-line overrides, checked before Hydra starts the job.

Hydra reports an unknown option or key in several lines with its search path; users of a sweep want the key
and the allowed values in one line, before any data is loaded.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, OmegaConf

from fer_lightning.config import CONFIG_DIR


def _group_options(group: str) -> list[str] | None:
    folder = Path(CONFIG_DIR) / group
    return sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else None


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
                return f"{key}={choice}: unknown option; expected one of {', '.join(options)}"
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
            known = ", ".join(str(k) for k in node)
            return (f"{key}: no key '{part}' in {parent}; expected one of {known} "
                    f"(use +{key}=... to add a new key)")
        node = OmegaConf.select(node, part, throw_on_missing=False, throw_on_resolution_failure=False)
    return None


def run_checked(main: Callable[[], object], config_name: str) -> None:
    """Command-line entry of a Hydra app: reject a bad override in one line (exit 2), then hand over to Hydra."""
    problem = check_overrides(sys.argv[1:], config_name)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        raise SystemExit(2)
    main()
