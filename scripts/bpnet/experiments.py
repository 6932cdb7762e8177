"""Experiments of one config: the top-level settings, each ``experiments`` entry, folds, ensembles.

A config without an ``experiments`` section is one experiment, named by ``experiment``, with the
top-level settings. With one, each entry is the top-level config deep-merged with the entry's
overrides (the schema says which sections an entry may hold); its optional ``tasks`` list picks a
subset of ``data.tasks`` in that order. ``cross_validation.folds`` turns every experiment into one
per fold, ``<name>_fold<i>``, with the fold's ``windows`` keys (valid/test chromosomes).
``ensembles`` name groups of experiments whose predictions are averaged; members must share the
dataset. ``workflow/rules/common.smk`` calls these once at parse time.
"""

from __future__ import annotations

import copy
from typing import Any, Callable, Mapping

from bpnet.errors import BPNetInputError

# Top-level keys that describe the set of experiments rather than one experiment.
_SET_KEYS = ("experiments", "ensembles", "cross_validation")


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any] | None) -> dict[str, Any]:
    """``base`` updated with ``override``, recursing into dicts (a copy; inputs untouched)."""
    out = copy.deepcopy(dict(base))
    for key, value in (override or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def expand_experiments(
    config: Mapping[str, Any], validate: Callable[[dict], None] | None = None
) -> dict[str, dict[str, Any]]:
    """``{name: config}`` of every experiment of a validated ``config``, folds expanded.

    Args:
        config: the whole (validated) config.
        validate: called on each merged experiment config (the schema check), so that a bad
            override is reported for its experiment.

    Raises :class:`BPNetInputError` naming the key for a task subset outside ``data.tasks``.
    """
    base = {k: v for k, v in config.items() if k not in _SET_KEYS}
    specs = config.get("experiments") or {config["experiment"]: {}}
    exps: dict[str, dict[str, Any]] = {}
    for name, spec in specs.items():
        spec = dict(spec or {})
        tasks = spec.pop("tasks", None)
        cfg = deep_merge(base, spec)
        cfg["experiment"] = name
        if tasks is not None:
            known = list(cfg["data"]["tasks"])
            unknown = [t for t in tasks if t not in known]
            if unknown:
                raise BPNetInputError(f"config key experiments.{name}.tasks: {unknown} not in data.tasks ({known})")
            cfg["data"]["tasks"] = {t: cfg["data"]["tasks"][t] for t in tasks}
            if cfg["data"].get("truth"):
                cfg["data"]["truth"] = {t: v for t, v in cfg["data"]["truth"].items() if t in tasks}
        if validate is not None:
            validate(cfg)
        exps[name] = cfg
    folds = (config.get("cross_validation") or {}).get("folds") or []
    if not folds:
        return exps
    expanded = {}
    for name, cfg in exps.items():
        for i, fold in enumerate(folds, start=1):
            fold_cfg = copy.deepcopy(cfg)
            fold_cfg["windows"].update(fold)
            fold_cfg["experiment"] = f"{name}_fold{i}"
            expanded[fold_cfg["experiment"]] = fold_cfg
    return expanded


def expand_ensembles(
    config: Mapping[str, Any], experiments: Mapping[str, Mapping[str, Any]]
) -> dict[str, list[str]]:
    """``{name: [member experiments]}`` of ``config["ensembles"]``; members must share the dataset.

    Raises :class:`BPNetInputError` naming the key for a name that is already an experiment, an
    unknown member, or members that differ in ``data``, ``windows`` or ``dataset``.
    """
    ensembles = {}
    for name, members in (config.get("ensembles") or {}).items():
        if name in experiments:
            raise BPNetInputError(f"config key ensembles.{name}: the name is already an experiment")
        unknown = [m for m in members if m not in experiments]
        if unknown:
            raise BPNetInputError(
                f"config key ensembles.{name}: unknown experiment(s) {unknown}; known: {list(experiments)}"
            )
        first = experiments[members[0]]
        for m in members[1:]:
            for section in ("data", "windows", "dataset"):
                if experiments[m][section] != first[section]:
                    raise BPNetInputError(
                        f"config key ensembles.{name}: members {members[0]} and {m} differ in section "
                        f"{section!r}; an ensemble averages predictions on one dataset"
                    )
        ensembles[name] = list(members)
    return ensembles
