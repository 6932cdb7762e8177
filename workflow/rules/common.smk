# Helpers shared by every rule file: config validation, per-experiment config, paths.

import copy

from snakemake.utils import validate


validate(config, schema="../schemas/config.schema.yaml")


wildcard_constraints:
    exp=r"[A-Za-z0-9_.-]+",
    task=r"[A-Za-z0-9_.-]+",
    strand=r"pos|neg",


def experiment_names():
    """Names of the experiments in the config (one for now: config["experiment"])."""
    return [config["experiment"]]


def exp_config(exp):
    """The validated config of experiment ``exp`` (a deep copy, safe to hand to scripts)."""
    if exp not in experiment_names():
        raise ValueError(f"unknown experiment {exp!r}; the config defines {experiment_names()}")
    return copy.deepcopy(config)


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


def all_outputs():
    """Everything ``rule all`` asks for: metrics, plots and tracks of every experiment."""
    out = []
    for exp in experiment_names():
        out += [
            f"results/{exp}/evaluation/metrics.tsv",
            f"results/{exp}/evaluation/summary.json",
            f"results/{exp}/evaluation/metrics.png",
            f"results/{exp}/model/training_curve.png",
        ]
        out += expand(
            "results/{exp}/tracks/{task}.{strand}.bw",
            exp=exp,
            task=task_names(exp),
            strand=["pos", "neg"],
        )
    return out
