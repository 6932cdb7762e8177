"""The interpretation of a simulated dataset against its planted truth (rule ``interpretation_check``).

The simulator (:mod:`bpnet.simulate`) writes the motif instances it planted
(``truth/instances.tsv.gz``) and the syntax it planted (``truth/syntax.tsv.gz``, the effect of one
motif on the binding at another by distance). :func:`truth_check` scores the discovered motifs
(:mod:`bpnet.interpret.modisco`), the scanned instances (:mod:`bpnet.interpret.instances`,
precision and recall by :func:`instance_recovery`) and the marginalisation curves
(:mod:`bpnet.interpret.syntax`) against them; :func:`check_against_truth` is the rule.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import pybedtools
from scipy.stats import pearsonr

from bpnet.errors import BPNetInputError
from bpnet.interpret.contributions import load_contributions
from bpnet.interpret.meme import read_meme_motifs, resolve_known_motifs
from bpnet.interpret.modisco import Pattern, read_modisco_h5, similarity_table
from bpnet.interpret.syntax import detrended, pair_label, periodicity, plot_pair

# --------------------------------------------------------------------------------------------
# The simulator's truth, and instances against it
# --------------------------------------------------------------------------------------------


def _read_truth_table(path: str | Path, columns: Sequence[str], key: str, what: str) -> pd.DataFrame:
    """A table the simulator wrote under ``truth/``: it must exist and have ``columns``."""
    path = Path(path)
    if not path.exists():
        raise BPNetInputError(f"{what} file {path} does not exist (config key {key})")
    table = pd.read_csv(path, sep="\t")
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise BPNetInputError(f"{path}: columns {missing} missing; expected the simulator's {what} table (config key {key})")
    return table


def read_truth_instances(path: str | Path) -> pd.DataFrame:
    """The simulator's ``truth/instances.tsv.gz`` (columns chrom, start, end, motif, bound, ...)."""
    return _read_truth_table(path, ("chrom", "start", "end", "motif", "bound"),
                             "interpretation.truth_instances", "truth instances")


def read_planted_syntax(path: str | Path) -> pd.DataFrame:
    """The simulator's ``truth/syntax.tsv.gz`` (:func:`bpnet.simulate.truth.planted_syntax`)."""
    return _read_truth_table(path, ("motif_a", "motif_b", "distance", "task", "log2fc_a", "log2fc_b"),
                             "interpretation.truth_syntax", "planted syntax")


def _interval_hits(a: pd.DataFrame, b: pd.DataFrame, tolerance: int) -> np.ndarray:
    """bool ``(len(a),)``: interval ``a[i]`` lies within ``tolerance`` bp of some interval of ``b``
    (``bedtools window -u``)."""
    if a.empty or b.empty:
        return np.zeros(len(a), dtype=bool)
    a_bed = pd.DataFrame({"chrom": a["chrom"].astype(str), "start": a["start"].astype(int),
                          "end": a["end"].astype(int), "name": np.arange(len(a))})
    b_bed = b[["chrom", "start", "end"]].astype({"chrom": str, "start": int, "end": int})
    found = pybedtools.BedTool.from_dataframe(a_bed).window(
        pybedtools.BedTool.from_dataframe(b_bed), w=tolerance, u=True)
    names = [int(f.name) for f in found]
    out = np.zeros(len(a), dtype=bool)
    out[names] = True
    pybedtools.cleanup()
    return out


def instance_recovery(instances: pd.DataFrame, truth: pd.DataFrame, windows: pd.DataFrame,
                      labels: Sequence[str], tolerance: int = 5) -> pd.DataFrame:
    """Precision and recall of scanned instances against the planted bound instances, per motif.

    Args:
        instances: located instances with a ``motif`` column (the known motif their pattern was
            assigned to, empty when none).
        truth: planted instances (chrom, start, end, motif, bound).
        windows: scanned regions (chrom, start, end); only planted instances inside them count.
        labels: known motif labels (the truth's motif names).
        tolerance: bp allowed between a hit and a planted instance.

    Returns:
        One row per label: n_hits, n_bound (planted bound instances inside the windows),
        precision (hits within ``tolerance`` of a bound planted instance of the motif),
        precision_any (... of any planted instance of the motif, bound or not), recall (bound
        planted instances with a hit of the motif).
    """
    win = windows[["chrom", "start", "end"]].astype({"chrom": str, "start": int, "end": int})
    inside = np.zeros(len(truth), dtype=bool)
    if not truth.empty and not win.empty:
        t_bed = pd.DataFrame({"chrom": truth["chrom"].astype(str), "start": truth["start"].astype(int),
                              "end": truth["end"].astype(int), "name": np.arange(len(truth))})
        found = pybedtools.BedTool.from_dataframe(t_bed).intersect(
            pybedtools.BedTool.from_dataframe(win), u=True, f=1.0)
        inside[[int(f.name) for f in found]] = True
        pybedtools.cleanup()
    truth = truth[inside]
    rows = []
    for label in labels:
        hits = instances[instances["motif"] == label]
        planted = truth[truth["motif"] == label]
        bound = planted[planted["bound"].astype(bool)]
        hit_bound = _interval_hits(hits, bound, tolerance)
        hit_any = _interval_hits(hits, planted, tolerance)
        found = _interval_hits(bound, hits, tolerance)
        rows.append({
            "motif": label, "n_hits": len(hits), "n_bound": len(bound),
            "precision": float(hit_bound.mean()) if len(hits) else np.nan,
            "precision_any": float(hit_any.mean()) if len(hits) else np.nan,
            "recall": float(found.mean()) if len(bound) else np.nan,
        })
    return pd.DataFrame(rows)



# --------------------------------------------------------------------------------------------
# The whole check
# --------------------------------------------------------------------------------------------

# A planted curve "has a period" when its peak holds this share of the band power: 0.96 for the
# helical Nanog rules, 0.14 for the monotone Oct4-Sox2 boost (whose "period" is meaningless).
PLANTED_PERIOD_SHARE = 0.5


def truth_check(patterns: Sequence[Pattern], known: Mapping[str, np.ndarray], instances: pd.DataFrame,
                truth: pd.DataFrame, windows: pd.DataFrame, syntax_summary: pd.DataFrame, tasks: Sequence[str],
                tolerance: int, syntax: pd.DataFrame | None = None, planted: pd.DataFrame | None = None,
                near: int = 50) -> pd.DataFrame:
    """Score the interpretation of a simulated dataset against its planted truth.

    Returns a tidy table (check, subject, metric, value, detail):

    - ``motif_recovery``: per known motif label, the similarity of the most similar positive
      pattern of any task (detail: the pattern);
    - ``instances``: per label, precision, precision_any, recall, n_hits, n_bound of the scanned
      instances (:func:`instance_recovery`);
    - ``syntax``: per pair (A, B) of the summary, for the task named like B the effect of A on the
      binding at B (``log2fc_b``) and for the task named like A the effect of B on the binding at A
      (``log2fc_a``): mean log2 fold change over near distances, period and its power share;
      with the curves (``syntax``, the rows of ``syntax.tsv``) and the simulator's planted syntax
      (``planted``, ``truth/syntax.tsv.gz``) also the planted curve's mean log2 fold change over
      near distances (``planted_log2fc_near``), its period (``planted_period_bp``, by the same
      :func:`bpnet.interpret.syntax.periodicity`; NaN when the planted curve does not oscillate, i.e. the
      peak holds less than :data:`PLANTED_PERIOD_SHARE` of the band power), the Pearson correlation of the model's curve with the
      planted one over the same distances (``corr_planted``: the shape, since the model's fold
      changes are of profile heights, not occupancies) and that of their oscillations
      (``corr_planted_oscillation``: both curves minus their moving average, as the period is
      found; near 1 only when the model's peaks fall where the planted ones do).
    """
    rows = []
    sim = similarity_table([p for p in patterns if p.metacluster == "pos"], known)
    for label in known:
        s = sim[sim["motif"] == label].sort_values("similarity", ascending=False, kind="stable")
        best = s.iloc[0] if len(s) else None
        rows.append({"check": "motif_recovery", "subject": label, "metric": "similarity",
                     "value": float(best["similarity"]) if best is not None else np.nan,
                     "detail": f"{best['pattern']} ({best['orientation']})" if best is not None else "no pattern"})
    rec = instance_recovery(instances, truth, windows, list(known), tolerance)
    for r in rec.itertuples():
        for metric in ("precision", "precision_any", "recall", "n_hits", "n_bound"):
            rows.append({"check": "instances", "subject": r.motif, "metric": metric, "value": getattr(r, metric),
                         "detail": f"tolerance {tolerance} bp"})
    for r in syntax_summary.itertuples():
        a, b = r.pair.split("__", 1)
        if (r.measure == "log2fc_b" and r.task == b) or (r.measure == "log2fc_a" and r.task == a):
            site = "B" if r.measure == "log2fc_b" else "A"
            detail = f"{r.task} binding at {site} ({r.measure})"
            for metric in ("mean_log2fc_near", "period_bp", "period_power_share"):
                rows.append({"check": "syntax", "subject": f"{r.pair}:{r.task}", "metric": metric,
                             "value": getattr(r, metric), "detail": detail})
            if syntax is None or planted is None:
                continue
            model = syntax[(syntax["pair"] == r.pair) & (syntax["task"] == r.task)].sort_values("distance")
            truth_curve = planted[(planted["motif_a"] == a) & (planted["motif_b"] == b) & (planted["task"] == r.task)]
            truth_curve = truth_curve.set_index("distance")[r.measure].reindex(model["distance"]).to_numpy()
            model_curve = model[r.measure].to_numpy()
            ok = np.isfinite(truth_curve) & np.isfinite(model_curve)
            if ok.sum() < 3:
                continue  # a pair of motifs the simulator does not plant, or distances it does not cover
            close = ok & (model["distance"].to_numpy() <= near)
            planted_period, planted_share = periodicity(truth_curve[ok])
            values = {
                "planted_log2fc_near": float(truth_curve[close].mean()) if close.any() else np.nan,
                "planted_period_bp": planted_period if planted_share >= PLANTED_PERIOD_SHARE else np.nan,
                "corr_planted": _pearson(model_curve[ok], truth_curve[ok]),
                "corr_planted_oscillation": _pearson(detrended(model_curve[ok]), detrended(truth_curve[ok])),
            }
            for metric, value in values.items():
                rows.append({"check": "syntax", "subject": f"{r.pair}:{r.task}", "metric": metric,
                             "value": value, "detail": f"{detail} vs the planted syntax"})
    return pd.DataFrame(rows, columns=["check", "subject", "metric", "value", "detail"])


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson r, NaN when either side is constant (a flat planted curve has no shape to match)."""
    if len(x) < 3 or np.ptp(x) < 1e-12 or np.ptp(y) < 1e-12:
        return float("nan")
    return float(pearsonr(x, y)[0])


# --------------------------------------------------------------------------------------------
# Rule interpretation_check
# --------------------------------------------------------------------------------------------


def check_against_truth(
    truth_instances_path: str | Path | None,
    contrib_path: str | Path,
    modisco_h5: Mapping[str, str | Path],
    instances_path: str | Path,
    syntax_path: str | Path,
    syntax_summary_path: str | Path,
    known_motifs_path: str | Path,
    check_path: str | Path,
    interpretation: Mapping[str, Any],
    planted_syntax_path: str | Path | None = None,
    log: logging.Logger = logging.getLogger(__name__),
) -> pd.DataFrame:
    """Rule ``interpretation_check``: interpretation outputs vs. the simulator's planted instances.

    Args:
        truth_instances_path: the simulator's ``truth/instances.tsv.gz``
            (``interpretation.truth_instances``); None is an error naming that key.
        contrib_path: contrib.npz of rule contrib_scores (its windows were scanned).
        modisco_h5: ``{task: modisco.h5}`` of rule motif_discovery, in task order.
        instances_path: instances.tsv of rule motif_instances.
        syntax_path, syntax_summary_path: syntax.tsv and syntax_summary.tsv of rule marginalize
            (the curves are read only with ``planted_syntax_path``).
        known_motifs_path: MEME file of the known motifs (``interpretation.motifs`` names them).
        check_path: the output, :func:`truth_check`'s table (values rounded to 4 digits).
        interpretation: the config's ``interpretation`` section (``motifs``,
            ``modisco.trim_threshold``, ``scan.tolerance``, ``syntax.near``).
        planted_syntax_path: the simulator's ``truth/syntax.tsv.gz``
            (``interpretation.truth_syntax``), or None: no comparison of the curves.

    Returns the table written to ``check_path``.
    """
    cfg = interpretation
    tasks = list(modisco_h5)
    known = resolve_known_motifs(read_meme_motifs(known_motifs_path), cfg["motifs"], known_motifs_path)
    patterns = [p for task, h5 in modisco_h5.items()
                for p in read_modisco_h5(h5, task, float(cfg["modisco"]["trim_threshold"]))]
    instances = pd.read_csv(instances_path, sep="\t", keep_default_na=False,
                            dtype={"motif": str, "chrom": str})
    if not truth_instances_path:
        raise BPNetInputError("rule interpretation_check needs config key interpretation.truth_instances "
                              "(the simulator's truth/instances.tsv.gz)")
    truth = read_truth_instances(truth_instances_path)
    unknown = sorted(set(truth["motif"]) - set(known))
    if unknown:
        log.warning("planted motif(s) %s have no label in interpretation.motifs; they are not scored", unknown)
    c = load_contributions(contrib_path)
    windows = pd.DataFrame({"chrom": c.chrom, "start": c.start, "end": c.start + c.sequence.shape[1]})
    summary = pd.read_csv(syntax_summary_path, sep="\t")
    syntax = planted = None
    if planted_syntax_path:
        planted = read_planted_syntax(planted_syntax_path)
        syntax = pd.read_csv(syntax_path, sep="\t")
    table = truth_check(patterns, known, instances, truth, windows, summary, tasks, int(cfg["scan"]["tolerance"]),
                        syntax, planted, int(cfg["syntax"]["near"]))
    table.round({"value": 4}).to_csv(check_path, sep="\t", index=False)
    for r in table.itertuples():
        log.info("%-15s %-24s %-19s %10.4f  %s", r.check, r.subject, r.metric, r.value, r.detail)
    return table


def plot_against_planted(syntax_path: str | Path, planted_path: str | Path, outdir: str | Path,
                         log: logging.Logger | None = None) -> int:
    """Rule ``syntax_vs_planted``: every pair of rule marginalize's ``syntax.tsv`` drawn with the
    simulator's planted curves (``truth/syntax.tsv.gz``) overlaid, ``outdir/{A}__{B}.png``; returns
    the plots written. A pair the truth lacks is drawn without planted curves (and logged)."""
    table = pd.read_csv(syntax_path, sep="\t")
    planted = read_planted_syntax(planted_path)
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    n = 0
    for (a, b), g in table.groupby(["motif_a", "motif_b"], sort=False):
        p = planted[(planted["motif_a"] == a) & (planted["motif_b"] == b)]
        if p.empty and log:
            log.info("pair %s: no planted curve in %s", pair_label(a, b), planted_path)
        plot_pair(g, out / f"{pair_label(a, b)}.png",
                  f"{a} at the centre, {b} at distance d: model (solid) vs planted (dashed)", p if len(p) else None)
        n += 1
    if log:
        log.info("wrote %d pair plots with the planted curves to %s", n, out)
    return n
