# The helpers of the other rule files, which hold rules only (as `snakemake --lint` asks; see
# tests/test_lint.py): config validation, experiments and their configs, paths, downloads, memory
# requests, and the inputs and targets of the rules.
# Comments here must not pair the word "rule" with a later colon on one line, which the linter
# takes for a rule definition (and then flags this file for mixing rules and functions).

import copy
import os
import re
import sys

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from bpnet.config_check import check_config_files, missing_inputs_lines, schema_error_line
from bpnet.data.download import check_download_config, download_targets
from bpnet.errors import BPNetInputError
from bpnet.hardware import oversubscribed_openmp


# A key written twice in a config file would silently keep the last value: refuse it. A schema
# error is printed as one line naming the config key before the validator's long text.
try:
    check_config_files(workflow.configfiles)
except BPNetInputError as err:
    print(f"error: {err}", file=sys.stderr)
    raise WorkflowError(str(err)) from None

try:
    validate(config, schema="../schemas/config.schema.yaml")
except WorkflowError as err:
    _line = schema_error_line(err)
    if _line:
        print(_line, file=sys.stderr)
    raise



def _local_cores():
    """--cores of a local run; None where jobs go to a cluster's nodes or no --cores was given."""
    if not workflow.local_exec:
        return None
    try:
        return workflow.cores
    except WorkflowError:
        return None


# With --cores above the machine's cores local jobs share cores: their OpenMP threads then wait
# passively instead of spinning (see the function; benchmarks/bench_threads.py).
oversubscribed_openmp(_local_cores())

# Sections an experiment may override; everything else is shared by all experiments.
EXPERIMENT_SECTIONS = ("seed", "device", "kernels", "data", "windows", "dataset", "model", "training", "evaluation", "export", "interpretation")


def _deep_merge(base, override):
    """``base`` updated with ``override``, recursing into dicts (a copy; inputs untouched)."""
    out = copy.deepcopy(base)
    for key, value in (override or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _build_experiments():
    """``{name: config}`` of every experiment, cross-validation folds included.

    Without an ``experiments`` section there is one experiment, named by ``experiment``, with the
    top-level settings. Each entry of ``experiments`` is the top-level config deep-merged with the
    entry's overrides; its optional ``tasks`` list picks a subset of ``data.tasks`` (in that order).
    ``cross_validation.folds`` turns every experiment into one per fold, ``<name>_fold<i>``, with
    the fold's valid/test chromosomes.
    """
    base = {k: v for k, v in config.items() if k not in ("experiments", "ensembles", "cross_validation")}
    specs = config.get("experiments") or {config["experiment"]: {}}
    exps = {}
    for name, spec in specs.items():
        spec = dict(spec or {})
        tasks = spec.pop("tasks", None)
        cfg = _deep_merge(base, spec)
        cfg["experiment"] = name
        if tasks is not None:
            unknown = [t for t in tasks if t not in cfg["data"]["tasks"]]
            if unknown:
                raise ValueError(
                    f"config key experiments.{name}.tasks: {unknown} not in data.tasks ({list(cfg['data']['tasks'])})"
                )
            cfg["data"]["tasks"] = {t: cfg["data"]["tasks"][t] for t in tasks}
            if cfg["data"].get("truth"):
                cfg["data"]["truth"] = {t: v for t, v in cfg["data"]["truth"].items() if t in tasks}
        # the merged config is validated on its own, so a bad override names its key
        validate(cfg, schema="../schemas/config.schema.yaml")
        exps[name] = cfg
    folds = (config.get("cross_validation") or {}).get("folds") or []
    if folds:
        expanded = {}
        for name, cfg in exps.items():
            for i, fold in enumerate(folds, start=1):
                fold_cfg = copy.deepcopy(cfg)
                fold_cfg["windows"].update(fold)
                fold_cfg["experiment"] = f"{name}_fold{i}"
                expanded[fold_cfg["experiment"]] = fold_cfg
        exps = expanded
    return exps


EXPERIMENTS = _build_experiments()
TRAINED = [e for e, c in EXPERIMENTS.items() if not c["model"]["pretrained"]]
PRETRAINED = [e for e, c in EXPERIMENTS.items() if c["model"]["pretrained"]]


# An input file the config names that is absent and that no rule makes (the downloads; results/,
# which holds the simulated dataset) is one line per file here, before Snakemake's long text.
_MISSING = missing_inputs_lines(
    EXPERIMENTS.values(), set(download_targets(config.get("download") or {})) | {"results/"}
)
if _MISSING:
    print("\n".join(_MISSING), file=sys.stderr)
    raise WorkflowError(f"{len(_MISSING)} input file(s) named in the config do not exist")


def _build_ensembles():
    """``{name: [member experiments]}``; members must share the dataset (windows and data)."""
    ensembles = {}
    for name, members in (config.get("ensembles") or {}).items():
        if name in EXPERIMENTS:
            raise ValueError(f"config key ensembles.{name}: the name is already an experiment")
        unknown = [m for m in members if m not in EXPERIMENTS]
        if unknown:
            raise ValueError(f"config key ensembles.{name}: unknown experiment(s) {unknown}; known: {list(EXPERIMENTS)}")
        first = EXPERIMENTS[members[0]]
        for m in members[1:]:
            for section in ("data", "windows", "dataset"):
                if EXPERIMENTS[m][section] != first[section]:
                    raise ValueError(
                        f"config key ensembles.{name}: members {members[0]} and {m} differ in section "
                        f"{section!r}; an ensemble averages predictions on one dataset"
                    )
        ensembles[name] = list(members)
    return ensembles


ENSEMBLES = _build_ensembles()


def _alternatives(names):
    return "|".join(re.escape(n) for n in names) or "(?!)"


wildcard_constraints:
    exp=_alternatives(list(EXPERIMENTS) + list(ENSEMBLES)),
    trained=_alternatives(EXPERIMENTS),
    ensemble=_alternatives(ENSEMBLES),
    task=r"[A-Za-z0-9_.-]+",
    strand=r"pos|neg",


def pretrained(exp):
    """The weights file an experiment evaluates instead of training, or None."""
    return exp_config(exp)["model"]["pretrained"]


def experiment_names():
    """Names of the trained experiments (cross-validation folds expanded)."""
    return list(EXPERIMENTS)


def exp_config(exp):
    """The validated config of experiment ``exp`` (an ensemble: its first member's); a deep copy."""
    if exp in ENSEMBLES:
        exp = ENSEMBLES[exp][0]
    if exp not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {exp!r}; the config defines {experiment_names()}")
    return copy.deepcopy(EXPERIMENTS[exp])


def dataset_path(exp):
    """The dataset an experiment (or an ensemble, through its first member) is evaluated on."""
    source = ENSEMBLES[exp][0] if exp in ENSEMBLES else exp
    return f"results/{source}/dataset.npz"


def task_names(exp):
    """Task names in model output order (the order of data.tasks in the config)."""
    return list(exp_config(exp)["data"]["tasks"])


def task_files(exp, kind):
    """``kind`` in pos/neg/peaks: one path per task, in task order."""
    return [t[kind] for t in exp_config(exp)["data"]["tasks"].values()]


def control_files(exp):
    """The control bigWigs [pos, neg] when the model uses them, else []."""
    cfg = exp_config(exp)
    if not cfg["model"]["use_control"]:
        return []
    if cfg["data"]["control"] is None:
        raise ValueError("model.use_control is true but data.control is null: give data.control.pos and .neg")
    return [cfg["data"]["control"]["pos"], cfg["data"]["control"]["neg"]]


def truth_files(exp):
    """Expected-rate bigWigs [task1 pos, task1 neg, ...] for the oracle, or [] without truth."""
    cfg = exp_config(exp)
    truth = cfg["data"]["truth"]
    if not truth:
        return []
    missing = [t for t in cfg["data"]["tasks"] if t not in truth]
    if missing:
        raise ValueError(f"data.truth has no tracks for task(s) {missing}")
    return [truth[t][s] for t in cfg["data"]["tasks"] for s in ("pos", "neg")]


def prediction_names(exp):
    """Models scored by evaluation: the trained model, plus the oracle when truth exists."""
    return ["model"] + (["oracle"] if truth_files(exp) else [])


def experiment_outputs(exp):
    """What one trained experiment delivers: metrics, plots, tracks (and interpretation)."""
    out = [
        f"results/{exp}/evaluation/metrics.tsv",
        f"results/{exp}/evaluation/summary.json",
        f"results/{exp}/evaluation/metrics.png",
        f"results/{exp}/evaluation/top_peaks.png",
    ]
    if not pretrained(exp):
        out.append(f"results/{exp}/model/training_curve.png")
    out += expand("results/{exp}/tracks/{task}.{strand}.bw", exp=exp, task=task_names(exp), strand=["pos", "neg"])
    out += interpretation_outputs(exp)  # [] unless interpretation.enabled
    return out


def all_outputs():
    """The default target: each experiment's outputs, the ensembles, the comparison."""
    out = []
    for exp in experiment_names():
        out += experiment_outputs(exp)
    for ens in ENSEMBLES:
        out.append(f"results/{ens}/evaluation/metrics.tsv")
    if len(EXPERIMENTS) + len(ENSEMBLES) > 1:
        out += ["results/comparison/experiments.tsv", "results/comparison/experiments.png"]
    return out


# --------------------------------------------------------------------------- memory requests


def scaled_mem(base):
    """A rule's ``mem_mb``: ``base`` MB (a number, or a function of wildcards and input) times the
    attempt, so a job retried by a profile's ``retries`` (after SLURM killed it for memory, say)
    asks for 2x, then 3x. A first attempt, and every local run, asks for ``base``."""

    def mem_mb(wildcards, input, attempt):
        mb = base(wildcards, input) if callable(base) else base
        return int(mb * attempt)

    return mem_mb


# ------------------------------------------------------------------- downloads (download.smk)

DOWNLOADS = check_download_config(config.get("download", {}))
# resources/<path> -> entry name, for the wildcard of the download rule.
DOWNLOAD_BY_PATH = {
    os.path.relpath(os.path.normpath(entry["dest"]), "resources"): name for name, entry in DOWNLOADS.items()
}


def download_name(wildcards):
    """The name of the ``download.files`` entry whose destination is resources/{path}."""
    return DOWNLOAD_BY_PATH[wildcards.path]


# ---------------------------------------------------------------------- windows (windows.smk)


def blacklist_files(wildcards):
    """The blacklist BED as a list (empty when windows.blacklist is null), so it is tracked."""
    path = exp_config(wildcards.exp)["windows"]["blacklist"]
    return [path] if path else []


# ------------------------------------------------------------------------ export (export.smk)


def export_rule_name(exp):
    """export_tracks_<exp>, with the characters a rule name cannot hold (., -) replaced by _."""
    safe = re.sub(r"\W", "_", exp)
    return f"export_tracks_{safe}"


def export_inputs(exp):
    """Inputs by mode: the model's test predictions, or the checkpoint, FASTA and control."""
    cfg = exp_config(exp)
    inputs = {
        "chrom_sizes": cfg["data"]["chrom_sizes"],
        # test mode: the windows; tiling: the training width W of the tiles
        "dataset": f"results/{exp}/dataset.npz",
    }
    if cfg["export"]["regions"] == "test":
        inputs["predictions"] = f"results/{exp}/predictions/model.npz"
    else:
        inputs["model"] = f"results/{exp}/model/model.safetensors"
        inputs["fasta"] = cfg["data"]["genome_fasta"]
        inputs["control"] = control_files(exp)
    return inputs


def export_is_tiling(exp):
    return exp_config(exp)["export"]["regions"] != "test"


def export_mem_mb(exp, input):
    """A tiling holds one chunk of 512 tiles whatever the genome size; test mode loads the
    predictions file whole, plus its stitched copy and a per-track transpose of each segment."""
    if export_is_tiling(exp):
        return 4000
    if not os.path.exists(input.predictions):  # sized again once rule predict has run
        return 4000
    return max(2000, int(3 * os.path.getsize(input.predictions) / 2**20))


# --------------------------------------------------------------- interpretation (interpret.smk)


def interpretation_config(exp):
    return exp_config(exp)["interpretation"]


def known_motifs_file(exp):
    """The MEME file of known motifs: interpretation.known_motifs, or the package's OSKN motifs."""
    path = interpretation_config(exp)["known_motifs"]
    return path or os.path.join(workflow.basedir, "scripts", "bpnet", "data", "oskn_motifs.meme")


def _interp(exp, name):
    return f"results/{exp}/interpretation/{name}"


def interpretation_outputs(exp, always=False):
    """Every file the interpretation rules produce for experiment `exp`.

    [] when interpretation.enabled is false, unless `always` (the `interpret` target)."""
    cfg = interpretation_config(exp)
    if not (cfg["enabled"] or always):
        return []
    out = [_interp(exp, "contrib.npz")]
    out.append(_interp(exp, "tracks"))
    for task in task_names(exp):
        out += [_interp(exp, f"modisco/{task}/{name}") for name in ("modisco.h5", "motifs.meme", "cwms.meme", "patterns.tsv", "logos")]
    out += [_interp(exp, n) for n in ("instances.tsv", "motifs.tsv", "syntax.tsv", "syntax_summary.tsv")]
    out.append(_interp(exp, "syntax"))
    if cfg["truth_instances"]:
        out.append(_interp(exp, "truth_check.tsv"))
    return out
