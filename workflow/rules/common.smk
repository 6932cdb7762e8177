# The helpers of the other rule files, which hold rules only (as `snakemake --lint` asks; see
# tests/test_lint.py): config validation, experiments and their configs, paths, downloads, memory
# requests, and the inputs and targets of the rules.
# Comments here must not pair the word "rule" with a later colon on one line, which the linter
# takes for a rule definition (and then flags this file for mixing rules and functions).

import atexit
import copy
import os
import re
import sys

import numpy as np
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate
from pathlib import Path

from bpnet.config_check import (
    check_config_files,
    task_strands,
    genome_split_lines,
    missing_inputs_lines,
    read_source_dir,
    read_sources,
    resolve_section,
    schema_error_line,
)
from bpnet.data.download import check_download_config, download_targets
from bpnet.data.reads import counting_mem_mb
from bpnet.errors import BPNetInputError
from bpnet.experiments import expand_ensembles, expand_experiments
from bpnet.interpret.contributions import contribution_track_paths
from bpnet.hardware import oversubscribed_openmp
from bpnet.workdir import clear_stale_lock, register_run, stale_lock_check


def _config_error(err):
    """A user mistake found while reading the config: one line, then stop."""
    print(f"error: {err}", file=sys.stderr)
    raise WorkflowError(str(err)) from None


# A key written twice in a config file would silently keep the last value: refuse it. A schema
# error is printed as one line naming the config key before the validator's long text.
try:
    check_config_files(workflow.configfiles)
except BPNetInputError as err:
    _config_error(err)


def _validate(cfg):
    """Check a config against the schema (filling defaults); a violation is first printed as one
    line naming the key."""
    try:
        validate(cfg, schema="../schemas/config.schema.yaml")
    except WorkflowError as err:
        line = schema_error_line(err)
        if line:
            print(line, file=sys.stderr)
        raise


_validate(config)


def _local_cores():
    """--cores of a local run; None where jobs go to a cluster's nodes or no --cores was given."""
    if not workflow.local_exec:
        return None
    try:
        return workflow.cores
    except WorkflowError:
        return None


# An interrupted run resumes with the same command (bpnet/workdir.py): the lock a killed Snakemake
# left is removed once nothing of that run is alive. The outputs its killed jobs left half-written
# are made again with --rerun-incomplete, which the profiles set (the Snakefile cannot: Snakemake
# fixes its DAG settings after reading it); without a profile the hint names the option.
def _resume_interrupted_run():
    lock = stale_lock_check()
    if lock.stale:
        clear_stale_lock()
        print(
            "note: removed the lock left by an interrupted run (nothing of it runs any more)",
            file=sys.stderr,
        )
    elif lock.locked:
        print(
            f"note: this directory is locked by {', '.join(lock.live)}; let it finish or stop it "
            "(`snakemake --unlock` only once nothing runs here)",
            file=sys.stderr,
        )
    if not lock.live and any(Path(".snakemake/incomplete").glob("*")):
        print(
            "note: an interrupted run may have left incomplete outputs: the README's command "
            "(--workflow-profile workflow/profiles/default) remakes them, as does --rerun-incomplete",
            file=sys.stderr,
        )
    atexit.register(Path.unlink, register_run(), missing_ok=True)


if workflow.is_main_process:
    _resume_interrupted_run()


# With --cores above the machine's cores local jobs share cores: their OpenMP threads then wait
# passively instead of spinning (see the function; benchmarks/bench_threads.py).
oversubscribed_openmp(_local_cores())


# Every experiment's config (the merged config is validated on its own, so a bad override names
# its experiment), and the ensembles (bpnet/experiments.py).
try:
    EXPERIMENTS = expand_experiments(config, validate=_validate)
    ENSEMBLES = expand_ensembles(config, EXPERIMENTS)
    READ_SOURCES = read_sources(EXPERIMENTS)
    for _cfg in EXPERIMENTS.values():
        task_strands(_cfg)
except BPNetInputError as err:
    _config_error(err)
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

# The split chromosomes against a genome whose chrom sizes exist already (not yet simulated or
# downloaded: checked by rule peak_windows instead), before any job.
_SPLIT_ERRORS, _SPLIT_WARNINGS = genome_split_lines(EXPERIMENTS.values())
for _line in _SPLIT_WARNINGS:
    print(_line, file=sys.stderr)
if _SPLIT_ERRORS:
    print("\n".join(_SPLIT_ERRORS), file=sys.stderr)
    raise WorkflowError("windows.valid_chroms / windows.test_chroms name chromosomes the genome lacks")


def _alternatives(names):
    return "|".join(re.escape(n) for n in names) or "(?!)"


wildcard_constraints:
    exp=_alternatives(list(EXPERIMENTS) + list(ENSEMBLES)),
    trained=_alternatives(EXPERIMENTS),
    ensemble=_alternatives(ENSEMBLES),
    task=r"[A-Za-z0-9_.-]+",
    strand=r"pos|neg",


# ------------------------------------------------------------ input and params functions
# The rules name these instead of lambdas: each takes the job's wildcards (exp: an experiment or
# an ensemble) and reads that experiment's validated config.


def exp_value(*keys):
    """An input/params function: the experiment's config value at ``keys``, e.g.
    ``exp_value("data", "chrom_sizes")`` for ``config["data"]["chrom_sizes"]``."""

    def value(wildcards):
        out = exp_config(wildcards.exp)
        for key in keys:
            out = out[key]
        return out

    value.__name__ = "exp_" + "_".join(keys)
    return value


def tasks_of(wildcards):
    return task_names(wildcards.exp)


def peak_files(wildcards):
    return task_files(wildcards.exp, "peaks")


def count_bigwigs(wildcards):
    """The count bigWigs in channel order: task1 +, task1 -, task2 +, ... or, unstranded tasks,
    task1, task2, ..."""
    return count_files(wildcards.exp)


def source_reads(wildcards):
    """The BAM/CRAM files of a source of reads (``task/<task>`` or ``control``)."""
    return READ_SOURCES[wildcards.source]["bam"]


def source_value(key):
    """An input/params function: ``key`` of a source of reads (its genome files, ``reads`` settings)."""

    def value(wildcards):
        return READ_SOURCES[wildcards.source][key]

    value.__name__ = f"source_{key}"
    return value


def dataset_simulation(wildcards):
    """The ``simulation`` section without ``variants`` (the truth VCF's keys), as the dataset's
    params: the very params of datasets simulated before that section existed, so that adding it,
    or changing it, remakes none."""
    return {key: value for key, value in config["simulation"].items() if key != "variants"}


def reads_mem(wildcards, input):
    """bam_counts holds the distinct 5' positions of its reads: memory by the reads counted (from
    the BAM index, or the file size), as measured (bpnet/data/reads.py)."""
    return counting_mem_mb(list(input.reads))


def control_bigwigs(wildcards):
    return control_files(wildcards.exp)


def truth_bigwigs(wildcards):
    return truth_files(wildcards.exp)


def nan_as_zero(wildcards):
    return bool(exp_config(wildcards.exp)["data"].get("nan_as_zero", False))


def evaluated_dataset(wildcards):
    return dataset_path(wildcards.exp)


def prediction_files(wildcards):
    """The predictions files evaluation scores, in the order of :func:`scored_models`."""
    return [predictions_path(wildcards.exp, name) for name in prediction_names(wildcards.exp)]


def scored_models(wildcards):
    return prediction_names(wildcards.exp)


def pretrained_weights(wildcards):
    return pretrained(wildcards.exp)


def ensemble_members(wildcards):
    """The members' model predictions, averaged by the ensemble."""
    return [predictions_path(member, "model") for member in ENSEMBLES[wildcards.ensemble]]


# ------------------------------------------------------------------------- experiments' files


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


def predictions_path(exp, name):
    """``results/{exp}/predictions/{name}.npz``: name ``model`` (rule predict, or the ensemble's
    average) or ``oracle``."""
    return f"results/{exp}/predictions/{name}.npz"


def task_names(exp):
    """Task names in model output order (the order of data.tasks in the config)."""
    return list(exp_config(exp)["data"]["tasks"])


def task_files(exp, kind):
    """``kind`` peaks: one path per task, in task order."""
    return [files[kind] for files in exp_config(exp)["data"]["tasks"].values()]


def count_files(exp):
    """Count bigWigs in channel order (see count_bigwigs). A task given as BAM/CRAM files has the
    count bigWigs rule bam_counts makes of them."""
    tasks = exp_config(exp)["data"]["tasks"]
    return [f for task, files in tasks.items() for f in _track_files(files, read_source_dir(task))]


def _track_files(files, reads_dir):
    """[pos, neg] of a {pos, neg} entry, [bw] of an unstranded {bw} entry, or the count bigWigs
    of the reads a {bam} entry names."""
    if "bam" in files:
        return [f"{reads_dir}/counts.{s}.bw" for s in ("pos", "neg")]
    return [files["bw"]] if "bw" in files else [files["pos"], files["neg"]]


def control_files(exp):
    """The control bigWigs [pos, neg] when the model uses them, else []."""
    cfg = exp_config(exp)
    if not cfg["model"]["use_control"]:
        return []
    if cfg["data"]["control"] is None:
        raise ValueError("model.use_control is true but data.control is null: give data.control.pos and .neg")
    return _track_files(cfg["data"]["control"], read_source_dir(None))


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
    out += exported_tracks(exp)
    out += interpretation_outputs(exp)  # [] unless interpretation.enabled
    out += igv_outputs(exp)  # [] unless igv.enabled
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
    out += all_region_outputs()  # [] unless the config has predict_regions
    out += all_variant_outputs()  # [] unless the config has variants
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


def input_mem(factor, floor=2000, per_file=False, extra=0):
    """A ``mem_mb`` base for :func:`scaled_mem`: ``factor`` times the job's input in MB (per input
    file with ``per_file``) plus ``extra`` MB, at least ``floor``."""

    def mb(wildcards, input):
        size = input.size_mb / max(len(input), 1) if per_file else input.size_mb
        return max(floor, int(factor * size) + extra)

    return mb


# Memory of the rules whose arrays grow with the windows, from the measured true peaks (#17:
# README, At the paper's size). A job is sized when it is about to run, when its inputs exist.


def _split_windows(dataset, splits):
    """Windows of ``splits`` in a dataset.npz and its ``split`` member (read alone), or Nones."""
    try:
        with np.load(dataset) as npz:
            return int(np.isin(npz["split"].astype(str), list(splits)).sum()), npz["split"].astype(str)
    except (OSError, KeyError, ValueError):
        return None, None


def dataset_mem(wildcards, input):
    """build_dataset: per window and position the counts (2 bytes x 2T channels), the sequence,
    one float32 track being read and its integer copy (and a float32 control), plus 1.5 GB.
    Measured: 4.1 GB for the paper's 157k windows of 1000 bp (this asks 4.9 GB)."""
    cfg = exp_config(wildcards.exp)
    try:
        with open(input.windows) as fh:
            n = sum(1 for _ in fh) - 1
    except OSError:
        n = 150_000
    length = cfg["windows"]["width"] + 2 * cfg["dataset"]["extra_context"]
    per_base = 4 * len(cfg["data"]["tasks"]) + 1 + 4 + 2 + (8 if cfg["model"]["use_control"] else 0)
    return int(1500 + n * length * per_base / 2**20)


def prediction_mem(wildcards, input):
    """predict, oracle_predictions: the float32 tracks of every window of evaluation.splits
    (2T channels) and 20% for the reading, plus 800 MB. Measured: 2.4 / 2.5 GB for the paper's
    60k evaluation windows (this asks 3.1 GB)."""
    cfg = exp_config(wildcards.exp)
    n, _ = _split_windows(input.dataset, cfg["evaluation"]["splits"])
    n = 60_000 if n is None else n
    return int(800 + 1.2 * n * cfg["windows"]["width"] * 8 * len(cfg["data"]["tasks"]) / 2**20)


def evaluate_mem(wildcards, input):
    """evaluate (2 tasks at a time): the auPRC bins of the largest split, ~50 bytes per window
    and base for each task being scored (labels, scores, the sort), plus 2 GB. Measured:
    4.2 GB for the paper's 31k validation windows (this asks 5.0 GB)."""
    cfg = exp_config(wildcards.exp)
    n, split = _split_windows(input.dataset, cfg["evaluation"]["splits"])
    largest = 30_000
    if split is not None:
        largest = max(int((split == s).sum()) for s in cfg["evaluation"]["splits"])
    return int(2000 + 2 * 50 * largest * cfg["windows"]["width"] / 2**20)


# ------------------------------------------------------------------- downloads (download.smk)

DOWNLOADS = check_download_config(config.get("download", {}))
# resources/<path> -> entry name, for the wildcard of the download rule.
DOWNLOAD_BY_PATH = {
    os.path.relpath(os.path.normpath(entry["dest"]), "resources"): name for name, entry in DOWNLOADS.items()
}


def download_name(wildcards):
    """The name of the ``download.files`` entry whose destination is resources/{path}."""
    return DOWNLOAD_BY_PATH[wildcards.path]


def download_entry(wildcards):
    """What is downloaded to resources/{path}: its url and checksums (a change reruns the download)."""
    entry = DOWNLOADS[download_name(wildcards)]
    pinned = {key: entry[key] for key in ("url", "sha256")}
    if entry.get("md5"):  # only when set: a new params key would rerun every finished download
        pinned["md5"] = entry["md5"]
    return pinned


# ---------------------------------------------------------------------- windows (windows.smk)


def chrom_alias_files(wildcards):
    """data.chrom_aliases as a list (empty when null), so that it is tracked as an input."""
    path = exp_config(wildcards.exp)["data"]["chrom_aliases"]
    return [path] if path else []


def blacklist_files(wildcards):
    """The blacklist BED as a list (empty when windows.blacklist is null), so it is tracked."""
    path = exp_config(wildcards.exp)["windows"]["blacklist"]
    return [path] if path else []


def background_fasta(wildcards):
    """The genome FASTA as a list when windows.background is enabled (its GC content is read),
    else empty: windowing without background does not depend on the FASTA."""
    cfg = exp_config(wildcards.exp)
    return [cfg["data"]["genome_fasta"]] if cfg["windows"]["background"]["enabled"] else []


def windows_settings(wildcards):
    """The ``windows`` section as rule peak_windows' params. Without background it is the section
    as it was before background existed (no ``background`` key, no seed), so that neither a new
    seed nor the new defaults rerun windowing and all that follows; with background, the seed of
    its draw comes along (key ``seed``)."""
    cfg = exp_config(wildcards.exp)
    section = dict(cfg["windows"])
    # exclude_patterns only when not the default: windows made before it existed are not remade
    if section["exclude_patterns"] == resolve_section(("windows",), {})["exclude_patterns"]:
        del section["exclude_patterns"]
    if section["background"]["enabled"]:
        section["seed"] = cfg["seed"]
    else:
        del section["background"]
    return section


def dataset_settings(wildcards):
    """The ``dataset`` section as params, ``outlier_quantile`` only when set (so that datasets
    built before it existed are not rebuilt), and ``data.minus_strand_negative`` when on."""
    cfg = exp_config(wildcards.exp)
    settings = {k: v for k, v in cfg["dataset"].items() if v is not None}
    if cfg["data"]["minus_strand_negative"]:  # only when on: datasets built before it are kept
        settings["minus_strand_negative"] = True
    if task_strands(cfg) == 1:  # likewise
        settings["strands"] = 1
    return settings


# ------------------------------------------------------------------------ export (export.smk)


def exported_tracks(exp):
    """``results/{exp}/tracks/{task}.{pos,neg}.bw`` in channel order, or ``{task}.bw`` per task when
    the tasks are unstranded (an ensemble: its first member's tasks)."""
    tracks = f"results/{exp}/tracks"
    if task_strands(exp_config(exp)) == 1:
        return [f"{tracks}/{task}.bw" for task in task_names(exp)]
    return [f"{tracks}/{task}.{strand}.bw" for task in task_names(exp) for strand in ("pos", "neg")]


def export_rule_name(exp):
    """export_tracks_<exp>, with the characters a rule name cannot hold (., -) replaced by _."""
    safe = re.sub(r"\W", "_", exp)
    return f"export_tracks_{safe}"


def export_inputs(exp):
    """Inputs by mode: the model's test predictions, or the parts of a genome tiling (in order)."""
    cfg = exp_config(exp)
    inputs = {"chrom_sizes": cfg["data"]["chrom_sizes"]}
    if cfg["export"]["regions"] == "test":
        inputs["dataset"] = dataset_path(exp)  # the windows
        inputs["predictions"] = predictions_path(exp, "model")
    else:
        n = cfg["export"]["parts"]
        inputs["parts"] = [f"results/{exp}/tracks/parts/{i}-of-{n}" for i in range(n)]
    return inputs


def export_part_inputs(wildcards):
    """A tiling part: the checkpoint, the genome, the control, and the dataset (its width W)."""
    cfg = exp_config(wildcards.exp)
    return {
        "chrom_sizes": cfg["data"]["chrom_sizes"],
        "dataset": dataset_path(wildcards.exp),
        "model": f"results/{wildcards.exp}/model/model.safetensors",
        "fasta": cfg["data"]["genome_fasta"],
        "control": control_files(wildcards.exp),
    }


def export_part_settings(wildcards):
    return export_settings(wildcards.exp)


def export_settings(exp):
    """The ``export`` section as params; ``decimals`` and ``floor`` only when set, so that tracks
    exported before they existed are not remade; ``reverse_complement_average`` (from section
    ``predict``, for tiling) only when on."""
    cfg = exp_config(exp)
    # parts: how the work is cut into jobs (in the part folders' names), not what is written
    settings = {key: value for key, value in cfg["export"].items() if value is not None and key != "parts"}
    if cfg["predict"]["reverse_complement_average"]:
        settings["reverse_complement_average"] = True
    return settings


def export_is_tiling(exp):
    return exp_config(exp)["export"]["regions"] != "test"


def export_mem(exp):
    """The ``mem_mb`` base of export_tracks_<exp>. Merging parts reads 1 Mb blocks; test mode
    loads the predictions file whole, plus its stitched copy and a per-track transpose of each
    segment."""

    def mb(wildcards, input):
        if export_is_tiling(exp) or not os.path.exists(input.predictions):  # sized again once predict has run
            return 2000
        return max(2000, int(3 * os.path.getsize(input.predictions) / 2**20))

    return mb


# ---------------------------------------------------------------- your regions (regions.smk)

# predict_regions: name -> {bed: path} or {fasta: path} (the schema allows exactly one), predicted
# by the model of every experiment (not the ensembles, which have no model of their own).
REGION_SETS = config.get("predict_regions") or {}
BED_REGIONS = [name for name, entry in REGION_SETS.items() if entry.get("bed")]


def region_outputs(exp, name):
    """What one predict_regions entry delivers for one experiment (tracks for BED regions only)."""
    folder = f"results/{exp}/regions/{name}"
    out = [f"{folder}/counts.tsv", f"{folder}/predictions.npz"]
    if name in BED_REGIONS:
        out.append(f"{folder}/tracks")
    return out


def all_region_outputs():
    """Every entry of predict_regions for every experiment; [] without the key."""
    return [f for exp in experiment_names() for name in REGION_SETS for f in region_outputs(exp, name)]


def region_value(key):
    """A params function: the value at ``key`` of the job's predict_regions entry (wildcard name)."""

    def value(wildcards):
        return REGION_SETS[wildcards.name].get(key)

    value.__name__ = f"region_{key}"
    return value


def region_inputs(wildcards):
    """The checkpoint, the dataset (its window width), and the BED with the genome (and control
    bigWigs when the model uses them), or the FASTA of sequences."""
    exp, entry = wildcards.exp, REGION_SETS[wildcards.name]
    inputs = {"model": f"results/{exp}/model/model.safetensors", "dataset": dataset_path(exp)}
    if entry.get("bed"):
        genome = exp_config(exp)["data"]["genome_fasta"]
        inputs.update(bed=entry["bed"], genome=genome, control=control_files(exp))
    else:
        inputs["sequences"] = entry["fasta"]
    return inputs


def _region_bp(entry):
    """Bases an entry asks for: the BED's summed region lengths, or the FASTA's size (x4 gzipped)."""
    path = entry.get("bed") or entry["fasta"]
    try:
        if entry.get("fasta"):
            return os.path.getsize(path) * (4 if path.endswith(".gz") else 1)
        total = 0
        with open(path, "rb") as fh:
            for line in fh:
                fields = line.split()
                if len(fields) >= 3 and fields[1].isdigit() and fields[2].isdigit():
                    total += max(int(fields[2]) - int(fields[1]), 0)
        return total
    except OSError:
        return 10_000_000


def region_mem(wildcards, input):
    """region_predictions: the float32 profile of every base asked for (2T channels), held until
    written, twice over (the profile and its records or regions), plus 1.5 GB (the model, a chunk
    of 512 windows, the genome's index)."""
    bp = _region_bp(REGION_SETS[wildcards.name])
    return int(1500 + 2 * bp * 8 * len(task_names(wildcards.exp)) / 2**20)


# ------------------------------------------------------------------- variants (variants.smk)

VARIANT_SETS = config.get("variants") or {}


def variant_outputs(exp, name):
    """What one variants entry delivers for one experiment or ensemble."""
    folder = f"results/{exp}/variants/{name}"
    out = [f"{folder}/scores.tsv", f"{folder}/top_variants.png"]
    if VARIANT_SETS[name].get("effects"):
        out.append(f"{folder}/truth_check.tsv")
    return out


def all_variant_outputs():
    """Every variants entry for every experiment and ensemble; [] without the key."""
    exps = experiment_names() + list(ENSEMBLES)
    return [f for exp in exps for name in VARIANT_SETS for f in variant_outputs(exp, name)]


def variant_value(key):
    """An input/params function: ``key`` of the job's variants entry (wildcard name)."""

    def value(wildcards):
        return VARIANT_SETS[wildcards.name].get(key)

    value.__name__ = f"variant_{key}"
    return value


def variant_mem(wildcards, input):
    """score_variants: 1.5 GB (the models, a chunk of windows, the genome's index) plus the
    variants' table and their scores, ~1 kB per variant with 4 tasks; a gzipped VCF holds ~20 bytes
    per variant, hence 50 MB per MB of VCF (an overestimate for a plain VCF)."""
    return int(1500 + 50 * os.path.getsize(input.vcf) / 1e6) if os.path.exists(input.vcf) else 2000


def variant_models(wildcards):
    """The checkpoint of an experiment, or its members' for an ensemble (their outputs averaged)."""
    members = ENSEMBLES.get(wildcards.exp, [wildcards.exp])
    return [f"results/{m}/model/model.safetensors" for m in members]


# --------------------------------------------------------------- interpretation (interpret.smk)


def interpretation_config(exp):
    return exp_config(exp)["interpretation"]


def known_motifs_file(exp):
    """The MEME file of known motifs: interpretation.known_motifs, or the package's OSKN motifs."""
    path = interpretation_config(exp)["known_motifs"]
    return path or os.path.join(workflow.basedir, "scripts", "bpnet", "data", "oskn_motifs.meme")


def known_motifs(wildcards):
    return known_motifs_file(wildcards.exp)


def contrib_mem(wildcards, input):
    """contrib_scores: per explained window its float16 hypothetical scores (tasks x 2 heads x W x
    4 x 2 bytes), its shuffled references and one float32 track being written, ~100 kB for 4
    tasks and 1000 bp, plus 2 GB; the windows are interpretation.max_windows of its splits."""
    cfg = exp_config(wildcards.exp)
    interp = cfg["interpretation"]
    n, _ = _split_windows(input.dataset, interp["splits"])
    n = 30_000 if n is None else n
    if interp["max_windows"] is not None:
        n = min(n, interp["max_windows"])
    per_window = cfg["windows"]["width"] * (len(cfg["data"]["tasks"]) * len(interp["heads"]) * 8 + 10 + 16)
    return int(2000 + 1.2 * n * per_window / 2**20)


def contrib_runtime(wildcards):
    """Minutes for contrib_scores: ~1 s per window on 2 CPU cores (500 windows took 7.6 min)."""
    return max(30, int(interpretation_config(wildcards.exp)["max_windows"] or 5000) // 20)


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
        out += [
            _interp(exp, f"modisco/{task}/{name}")
            for name in ("modisco.h5", "motifs.meme", "cwms.meme", "patterns.tsv", "logos")
        ]
    out += [_interp(exp, n) for n in ("instances.tsv", "motifs.tsv", "syntax.tsv", "syntax_summary.tsv")]
    out.append(_interp(exp, "syntax"))
    if cfg["truth_instances"]:
        out.append(_interp(exp, "truth_check.tsv"))
    if cfg["truth_syntax"]:
        out.append(_interp(exp, "syntax_vs_planted"))
    return out + ism_outputs(exp)


# ------------------------------------------------------- in-silico mutagenesis (interpret.smk)
# Section `ism` of its own: the interpretation rules take the whole `interpretation` section as
# params, so a key added there would rerun every finished interpretation.


def ism_outputs(exp):
    """ism.npz, windows.tsv and one max-effect bigWig per task; [] unless ism.enabled."""
    if not exp_config(exp)["ism"]["enabled"]:
        return []
    folder = _interp(exp, "ism")
    tracks = [f"{folder}/{task}.max_effect.bw" for task in task_names(exp)]
    return [f"{folder}/ism.npz", f"{folder}/windows.tsv"] + tracks


def ism_region_inputs(wildcards):
    """With ism.regions: the BED, the genome FASTA and (a model with a control track) the
    control bigWigs; else nothing (the windows come from the dataset)."""
    cfg = exp_config(wildcards.exp)
    if not cfg["ism"]["regions"]:
        return {}
    return {
        "bed": cfg["ism"]["regions"],
        "genome": cfg["data"]["genome_fasta"],
        "control": control_files(wildcards.exp),
    }


def ism_contrib(wildcards):
    """contrib.npz of the experiment, read only if it exists (a correlation logged, nothing written)."""
    return _interp(wildcards.exp, "contrib.npz")


def _ism_windows(exp):
    cfg = exp_config(exp)["ism"]
    if cfg["regions"]:
        try:
            with open(cfg["regions"], "rb") as fh:
                return sum(
                    1 for line in fh if line.strip() and not line.startswith((b"#", b"track", b"browser"))
                )
        except OSError:
            return 1000
    return cfg["n_windows"]


def ism_mem(wildcards, input):
    """ism: the float32 effects (windows x W x 4 bases x 2T outputs) twice (on the device and
    copied out), plus 1.5 GB (the model, a batch, the dataset's test counts a chunk at a time)."""
    cfg = exp_config(wildcards.exp)
    per_window = cfg["windows"]["width"] * 4 * 2 * len(cfg["data"]["tasks"]) * 4
    return int(1500 + 2 * _ism_windows(wildcards.exp) * per_window / 2**20)


def ism_runtime(wildcards):
    """Minutes for ism: 3 W mutants per window, ~100 mutants of 1 kb per second on 2 (shared)
    CPU cores (benchmarks/bench_ism.py: 30 s per window of 1 kb, 53 s with reverse-complement
    averaging), doubled; at least 15."""
    cfg = exp_config(wildcards.exp)
    rc = 2 if cfg["predict"]["reverse_complement_average"] else 1
    seconds = _ism_windows(wildcards.exp) * 3 * cfg["windows"]["width"] ** 2 / 1000 / 100 * rc
    return max(15, int(2 * seconds / 60))


# ------------------------------------------------------------------ genome browser (igv.smk)


def igv_outputs(exp):
    """The IGV session of an experiment and its BEDs; [] when igv.enabled is false."""
    if not exp_config(exp)["igv"]["enabled"]:
        return []
    return [f"results/{exp}/igv/{name}" for name in ("session.xml", "test_windows.bed", "top_windows.bed")]


def igv_session_inputs(wildcards):
    """What the session opens (so that it exists first): the genome FASTA (unless igv.genome_id),
    the observed count bigWigs, the predicted tracks, the control the model uses, and with
    interpretation the contribution bigWigs' folder and the motif instances BED; plus windows.tsv
    and dataset.npz (the observed reads per test window)."""
    exp = wildcards.exp
    cfg = exp_config(exp)
    inputs = {
        "windows": f"results/{exp}/windows.tsv",
        "dataset": dataset_path(exp),
        "observed": count_files(exp),
        "predicted": exported_tracks(exp),
        "control": control_files(exp),
    }
    if not cfg["igv"]["genome_id"]:
        inputs["genome"] = cfg["data"]["genome_fasta"]
    if cfg["interpretation"]["enabled"]:
        inputs["contributions"] = _interp(exp, "tracks")
        inputs["motifs"] = f"results/{exp}/igv/motif_instances.bed"
    return inputs


def igv_contribution_tracks(wildcards):
    """The contribution bigWigs in the session, in (task, head) order; [] without interpretation."""
    cfg = interpretation_config(wildcards.exp)
    if not cfg["enabled"]:
        return []
    folder = _interp(wildcards.exp, "tracks")
    return [str(path) for path in contribution_track_paths(folder, task_names(wildcards.exp), cfg["heads"])]


def igv_contribution_heads(wildcards):
    cfg = interpretation_config(wildcards.exp)
    return list(cfg["heads"]) if cfg["enabled"] else []
