"""Config checks that Snakemake does not do itself: duplicate YAML keys and one-line schema errors.

PyYAML (and so Snakemake's ``--configfile``) keeps the last of two equal keys in a mapping without
a word; :func:`check_duplicate_keys` reads a config file again with a loader that refuses them.
:func:`one_line` turns a :class:`jsonschema.ValidationError` into one line naming the config key,
printed before Snakemake's long validation text.
"""

from __future__ import annotations

import copy
import functools
import os
from pathlib import Path
from typing import Any, Mapping

import yaml
from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import ValidationError, best_match
from referencing import Registry, Resource
from yaml.constructor import ConstructorError

from bpnet.errors import BPNetInputError
from bpnet.io.tracks import read_chrom_sizes


class _DuplicateKeyError(ConstructorError):
    """A key that appears twice in one mapping (carries the key and both lines)."""

    def __init__(self, key: Any, first_line: int, line: int, mark: Any) -> None:
        super().__init__(None, None, f"duplicate key {key!r}", mark)
        self.key, self.first_line, self.line = key, first_line, line


class UniqueKeyLoader(yaml.SafeLoader):
    """A :class:`yaml.SafeLoader` that raises on a key appearing twice in one mapping."""

    def construct_mapping(self, node, deep=False):  # type: ignore[override]
        if isinstance(node, yaml.MappingNode):
            self.flatten_mapping(node)  # resolve `<<:` merge keys first: they may legitimately repeat
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=True)
                try:
                    hash(key)
                except TypeError:
                    continue  # the base class reports unhashable keys
                line = key_node.start_mark.line + 1
                if key in seen:
                    raise _DuplicateKeyError(key, seen[key], line, key_node.start_mark)
                seen[key] = line
        return super().construct_mapping(node, deep=deep)


def check_duplicate_keys(path: str) -> None:
    """Raise :class:`BPNetInputError` when the YAML file ``path`` repeats a key in one mapping."""
    with open(path, encoding="utf-8") as fh:
        text = fh.read()
    try:
        yaml.load(text, Loader=UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except _DuplicateKeyError as err:
        raise BPNetInputError(
            f"{path}, line {err.line}: key {err.key!r} appears twice (first on line {err.first_line}); "
            "YAML would silently keep only the last value, remove one of them"
        ) from None
    except yaml.YAMLError:
        return  # other YAML errors are Snakemake's to report (it has read the file already)


def key_path(parts: Any) -> str:
    """``training.bf16`` or ``experiments.a.tasks[0]`` from a jsonschema ``absolute_path``."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def one_line(err: Any) -> str:
    """``error: config key <dotted.path>: <message>`` for a jsonschema ``ValidationError``.

    A ``oneOf`` of alternatives that each only require keys (``predict_regions.<name>``: bed or
    fasta) says which keys, instead of jsonschema's "is not valid under any of the given schemas".
    """
    message = " ".join(str(err.message).split())
    alternatives = _required_alternatives(err)
    if alternatives:  # "is not valid under any of the given schemas" names no key: say which are expected
        message = (f"give {' or '.join(alternatives)} (exactly one of these), found "
                   f"{', '.join(sorted(map(str, err.instance))) or 'no key'}")
    return f"error: config key {key_path(err.absolute_path)}: {message}"


def _required_alternatives(err: Any) -> list[str]:
    """For a ``oneOf`` over objects whose branches differ by their required keys (a task's
    ``pos`` + ``neg`` or ``bam``): the branches as ``pos + neg``, ``bam``; else []."""
    if getattr(err, "validator", None) != "oneOf" or not isinstance(err.instance, dict):
        return []
    branches = [b for b in err.validator_value if isinstance(b, dict)]
    if not branches or not all("required" in b for b in branches):
        # a nullable entry (data.control: null or {pos, neg} or {bam}): the object branch's error
        for sub in err.context or ():
            if sub.instance is err.instance and _required_alternatives(sub):
                return _required_alternatives(sub)
        return []
    return [" + ".join(b["required"]) for b in branches]


def check_config_files(paths: Any) -> None:
    """:func:`check_duplicate_keys` for each config file Snakemake read (``workflow.configfiles``)."""
    for path in paths:
        if os.path.exists(path):  # Snakemake has reported a missing one already
            check_duplicate_keys(str(path))


def schema_error_line(err: BaseException) -> str | None:
    """The :func:`one_line` of the jsonschema ``ValidationError`` behind Snakemake's ``WorkflowError``.

    ``snakemake.utils.validate`` raises ``WorkflowError("Error validating config file.", e)``; the
    ``ValidationError`` is one of its args (or its cause). ``None`` when there is none.
    """

    candidates = [*getattr(err, "args", ()), err.__cause__, err.__context__, err]
    for cand in candidates:
        if isinstance(cand, ValidationError):
            return one_line(cand)
    return None


# ----------------------------------------------------------------------- missing input files

def input_paths(config: dict[str, Any]) -> list[tuple[str, str]]:
    """``(dotted config key, path)`` of every input file one experiment's config names.

    Optional entries that are null (``data.control``, ``data.truth``, ``windows.blacklist``,
    ``model.pretrained``, the interpretation files) name no file and are skipped.
    """
    pairs: list[tuple[str, str]] = []

    def add(key: str, value: Any) -> None:
        if isinstance(value, str) and value:
            pairs.append((key, value))

    data = config.get("data") or {}
    add("data.genome_fasta", data.get("genome_fasta"))
    add("data.chrom_sizes", data.get("chrom_sizes"))
    add("data.chrom_aliases", data.get("chrom_aliases"))
    for task, files in (data.get("tasks") or {}).items():
        for name in ("pos", "neg", "bw", "peaks"):
            add(f"data.tasks.{task}.{name}", (files or {}).get(name))
        for path in reads_list((files or {}).get("bam")):
            add(f"data.tasks.{task}.bam", path)
    control = data.get("control")
    if isinstance(control, dict):
        for name in ("pos", "neg", "bw"):
            add(f"data.control.{name}", control.get(name))
        for path in reads_list(control.get("bam")):
            add("data.control.bam", path)
    truth = data.get("truth")
    if isinstance(truth, dict):
        for task, files in truth.items():
            for name in ("pos", "neg"):
                add(f"data.truth.{task}.{name}", (files or {}).get(name))
    add("windows.blacklist", (config.get("windows") or {}).get("blacklist"))
    add("model.pretrained", (config.get("model") or {}).get("pretrained"))
    interpretation = config.get("interpretation") or {}
    for name in ("known_motifs", "truth_instances", "truth_syntax"):
        add(f"interpretation.{name}", interpretation.get(name))
    add("ism.regions", (config.get("ism") or {}).get("regions"))
    for name, entry in (config.get("variants") or {}).items():
        for kind in ("vcf", "effects"):
            add(f"variants.{name}.{kind}", (entry or {}).get(kind))
    for name, entry in (config.get("predict_regions") or {}).items():
        for kind in ("bed", "fasta"):
            add(f"predict_regions.{name}.{kind}", (entry or {}).get(kind))
    return pairs


def reads_list(value: Any) -> list[str]:
    """``data.tasks.<task>.bam`` (or ``data.control.bam``) as a list: one path or a list of them."""
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def task_strands(config: Mapping[str, Any]) -> int:
    """Channels per task of an experiment: 2 when its tasks are stranded ({pos, neg} or {bam}),
    1 when they are unstranded ({bw}). One model's tasks share one layout, as its control and its
    truth tracks do: anything else is an error naming the config key."""
    data = config.get("data") or {}
    kinds = {task: 1 if "bw" in (files or {}) else 2 for task, files in (data.get("tasks") or {}).items()}
    if len(set(kinds.values())) > 1:
        one = [t for t, k in kinds.items() if k == 1]
        two = [t for t, k in kinds.items() if k == 2]
        raise BPNetInputError(
            f"config key data.tasks: {', '.join(one)} unstranded (bw) but {', '.join(two)} stranded (pos + neg "
            "or bam): a model's tasks are all stranded or all unstranded; run them as two experiments")
    strands = next(iter(kinds.values()), 2)
    control = data.get("control")
    if (config.get("model") or {}).get("use_control") and isinstance(control, dict):
        if ("bw" in control) != (strands == 1):
            raise BPNetInputError(
                "config key data.control: the control must be "
                + ("one unstranded bw, as the tasks are" if strands == 1 else "stranded (pos + neg or bam), as the tasks are"))
    if strands == 1 and data.get("truth"):
        raise BPNetInputError("config key data.truth: truth tracks are stranded (pos, neg); the tasks are unstranded")
    if strands == 1 and data.get("minus_strand_negative"):
        raise BPNetInputError("config key data.minus_strand_negative: the tasks are unstranded (bw), there is no - strand")
    return strands


# Where rule bam_counts writes the count bigWigs of a source of reads: a task, or the control.
READS_DIR = "results/reads"


def read_source_dir(task: str | None) -> str:
    """``results/reads/task/<task>`` for a task's reads, ``results/reads/control`` for the control's."""
    return f"{READS_DIR}/control" if task is None else f"{READS_DIR}/task/{task}"


def read_sources(experiments: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """The sources of reads that rule bam_counts counts, over every experiment's config.

    Returns ``{source: {"bam": [...], "reads": data.reads, "genome_fasta", "chrom_sizes",
    "experiment"}}`` with ``source`` as in :func:`read_source_dir` minus the ``results/reads/``
    prefix (``task/Oct4``, ``control``). A task's reads are counted once for all experiments, so
    two experiments that give one task name other files, other ``data.reads`` settings or another
    genome are an error (rename the task in one of them).
    """
    sources: dict[str, dict[str, Any]] = {}
    for exp, cfg in experiments.items():
        data = cfg.get("data") or {}
        entries = [(f"task/{t}", f"data.tasks.{t}", files) for t, files in (data.get("tasks") or {}).items()]
        if (cfg.get("model") or {}).get("use_control") and isinstance(data.get("control"), dict):
            entries.append(("control", "data.control", data["control"]))
        for source, key, files in entries:
            bams = reads_list((files or {}).get("bam"))
            if not bams:
                continue
            entry = {"bam": bams, "reads": dict(data.get("reads") or {}),
                     "genome_fasta": data.get("genome_fasta"), "chrom_sizes": data.get("chrom_sizes"),
                     "chrom_aliases": [data["chrom_aliases"]] if data.get("chrom_aliases") else [],
                     "experiment": exp}
            seen = sources.setdefault(source, entry)
            if any(seen[k] != entry[k] for k in ("bam", "reads", "genome_fasta", "chrom_sizes", "chrom_aliases")):
                raise BPNetInputError(
                    f"config key {key}.bam: experiments {seen['experiment']} and {exp} count the reads of "
                    f"{key} differently (other files, data.reads or genome), but they are counted once "
                    f"into {read_source_dir(None if source == 'control' else source[5:])}: give the task "
                    "another name in one of them"
                )
    return sources


def _is_produced(path: str, produced: set[str]) -> bool:
    """Whether a rule makes ``path``: it is in ``produced`` or under a folder there (``results/``)."""
    norm = os.path.normpath(path)
    for entry in produced:
        target = os.path.normpath(entry)
        if norm == target:
            return True
        if entry.endswith("/") and (norm + os.sep).startswith(target + os.sep):
            return True
    return False


def missing_inputs(
    config: dict[str, Any], produced: set[str], exists: Any = os.path.exists
) -> list[tuple[str, str]]:
    """``(config key, path)`` of the input files ``config`` names that are absent and no rule makes.

    ``produced`` holds the files rules create (the download targets) and, ending with ``/``, the
    folders whose every file a rule creates (``results/``, where the simulated dataset is written).
    """
    return [(key, path) for key, path in input_paths(config) if not _is_produced(path, produced) and not exists(path)]


def missing_inputs_lines(
    configs: Any, produced: set[str], exists: Any = os.path.exists
) -> list[str]:
    """``error: config key <key>: <path> does not exist``, once per pair, over every config."""
    seen: dict[tuple[str, str], None] = {}
    for config in configs:
        for pair in missing_inputs(config, produced, exists):
            seen.setdefault(pair, None)
    return [f"error: config key {key}: {path} does not exist" for key, path in seen]


def genome_split_lines(configs: Any, exists: Any = os.path.exists) -> tuple[list[str], list[str]]:
    """Checks of ``windows`` against each genome whose chrom sizes file already exists, run when
    the config is read, before any job (#19: a valid/test chromosome the genome lacks used to
    surface only at training, after windowing and dataset building).

    Returns ``(errors, warnings)``, one line each: ``error: config key windows.valid_chroms: ...``
    for split chromosomes missing from the genome, and a warning where ``windows.exclude_chroms``
    names ``chrX`` in a genome numbered in Roman numerals (yeast's chrX is chromosome 10, not a
    sex chromosome).
    """
    errors: dict[str, None] = {}
    warnings: dict[str, None] = {}
    for config in configs:
        path = str((config.get("data") or {}).get("chrom_sizes") or "")
        windows = config.get("windows") or {}
        if not path or not exists(path):
            continue
        try:
            names = list(read_chrom_sizes(path))
        except BPNetInputError:
            continue  # the rule that reads it reports the bad line
        shown = ", ".join(names[:10]) + (f", ... ({len(names)} in all)" if len(names) > 10 else "")
        for key in ("valid_chroms", "test_chroms"):
            missing = [c for c in dict.fromkeys(windows.get(key) or []) if c not in names]
            if missing:
                errors.setdefault(
                    f"error: config key windows.{key}: {', '.join(map(str, missing))} not in the genome's "
                    f"chrom sizes {path} (it has {shown}); set windows.valid_chroms and windows.test_chroms "
                    "to chromosomes of this genome", None)
        roman = {"chrI", "chrII", "chrIX", "chrXI"} & set(names)
        if "chrX" in names and len(roman) >= 2 and "chrX" in (windows.get("exclude_chroms") or []):
            warnings.setdefault(
                f"warning: config key windows.exclude_chroms drops chrX, but {path} numbers its chromosomes "
                "in Roman numerals (chrI, chrII, ...): chrX is chromosome 10 there, not a sex chromosome; "
                "set windows.exclude_chroms for this genome", None)
    return list(errors), list(warnings)


# ------------------------------------------------------------- one section, checked by the schema

# The workflow's config schema: the one place of every config key's default and range.
SCHEMA_PATH = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "config.schema.yaml"


def _fill_defaults(validator, properties, instance, schema):
    """The ``properties`` keyword that first sets missing properties to their schema default,
    as ``snakemake.utils.validate`` does (defaults are copied, so the cached schema stays as is)."""
    if validator.is_type(instance, "object"):
        for name, subschema in properties.items():
            if "default" in subschema:
                instance.setdefault(name, copy.deepcopy(subschema["default"]))
    yield from Draft202012Validator.VALIDATORS["properties"](validator, properties, instance, schema)


def _strict_integer(checker, instance) -> bool:
    """An integer is an ``int`` (not ``100.0``, which JSON Schema also counts): the values index
    arrays and seed generators."""
    return isinstance(instance, int) and not isinstance(instance, bool)


_Validator = validators.extend(
    Draft202012Validator,
    {"properties": _fill_defaults},
    type_checker=Draft202012Validator.TYPE_CHECKER.redefine("integer", _strict_integer),
)


@functools.cache
def _section_validator(section: tuple[str, ...]) -> Draft202012Validator:
    """A validator of one config section (its references into the whole schema resolve)."""
    schema = yaml.safe_load(SCHEMA_PATH.read_text())
    uri = SCHEMA_PATH.as_uri()
    registry = Registry().with_resource(uri, Resource.from_contents(schema))
    pointer = "".join(f"/properties/{key}" for key in section)
    return _Validator({"$ref": f"{uri}#{pointer}"}, registry=registry)


def resolve_section(section: tuple[str, ...], user: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Config section ``section`` (e.g. ``("windows", "background")``) from ``user`` (partial, or
    None), checked against the workflow's schema with its defaults filled in, as Snakemake does
    for the whole config; so the library called directly (tests, notebooks) gets the settings a
    workflow run gets. A violation is a :class:`BPNetInputError` naming the key in one line.
    ``user`` is not modified."""
    cfg = copy.deepcopy(dict(user)) if user is not None else {}
    error = best_match(_section_validator(tuple(section)).iter_errors(cfg))
    if error is not None:
        message = " ".join(str(error.message).split())
        raise BPNetInputError(f"config key {key_path((*section, *error.absolute_path))}: {message}")
    return cfg
