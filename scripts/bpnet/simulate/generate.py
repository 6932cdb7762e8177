"""The whole simulation: :func:`simulate_dataset` runs every stage in order from one seed, writes
the files and logs the realism figures (the layout and the model: :mod:`bpnet.simulate`)."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from bpnet.simulate.binding import TFS
from bpnet.simulate.config import resolve_config
from bpnet.simulate.files import output_paths, write_dataset
from bpnet.simulate.genome import make_genome
from bpnet.simulate.loci import plant_loci
from bpnet.simulate.peaks import call_all_peaks
from bpnet.simulate.summary import TEST_CHROMS, oracle_check, summarize
from bpnet.simulate.tracks import signal_tracks
from bpnet.simulate.truth import SYNTAX_MAX_BP, planted_syntax, truth_table


def simulate_dataset(out_dir: str | Path, config: Mapping[str, Any] | None = None,
                     log: logging.Logger | None = None, threads: int = 1) -> dict[str, Any]:
    """Generate the dataset into ``out_dir`` (layout: :func:`~bpnet.simulate.files.output_paths`).

    Args:
        out_dir: output directory (created).
        config: the ``simulation`` config section, plain and possibly partial (the schema's
            defaults fill missing keys, :func:`~bpnet.simulate.config.resolve_config`); its
            ``seed`` seeds everything, so the same config gives byte-identical files.
        log: optional logger for progress and summary figures.
        threads: processes that write the bigWigs (the output does not depend on it).

    Returns:
        A summary dict: per TF ``peaks`` (number), ``reads_per_peak`` (median two-strand reads in
        the 1 kb window at each summit), ``false_peak_share`` (summit > 50 bp from every bound
        site of the TF), ``missed_share`` (bound sites of the TF outside all its peaks);
        ``oracle`` (DataFrame of :func:`~bpnet.simulate.summary.oracle_check`), ``seconds``
        (generation and writing), ``config`` (resolved), ``truth`` and ``peak_tables`` (the
        written tables).
    """
    t0 = time.perf_counter()
    log = log or logging.getLogger("bpnet.simulate")
    cfg = resolve_config(config)
    rng_genome, rng_loci, rng_motifs, rng_bias, rng_noise, rng_control = (
        np.random.default_rng(s) for s in np.random.SeedSequence(cfg["seed"]).spawn(6)
    )
    genome = make_genome(cfg, rng_genome, log)
    planted = plant_loci(cfg, genome, rng_loci, rng_motifs)
    expected, observed = signal_tracks(cfg, genome, planted, rng_bias, rng_noise, rng_control, log)
    peak_tables = call_all_peaks(cfg, genome, observed, log)
    truth = truth_table(cfg, genome, planted)
    syntax = planted_syntax(cfg, np.arange(1, SYNTAX_MAX_BP + 1))
    write_dataset(output_paths(out_dir), genome, expected, observed, peak_tables, truth, syntax, threads, log)
    seconds = time.perf_counter() - t0

    summary = summarize(truth, peak_tables, observed, genome.sizes, cfg["bound_threshold"])
    summary["oracle"] = oracle_check(observed, expected, peak_tables, genome.sizes)
    summary.update(seconds=seconds, config=cfg, truth=truth, peak_tables=peak_tables)
    is_enh = truth.groupby("locus")["kind"].agg(lambda k: (k != "isolated").any())
    log.info("simulated %d chromosomes (%.1f Mb), %d enhancers, %d isolated sites, %d motif "
             "instances (%d bound) in %.1f s", len(genome.sizes), genome.length / 1e6,
             int(is_enh.sum()), int((~is_enh).sum()), len(truth), int(truth["bound"].sum()), seconds)
    for tf in TFS:
        log.info("%-5s %5d peaks, median %5.0f reads per peak window, %4.1f%% of peaks not near a "
                 "bound site, %4.1f%% of bound sites without a peak", tf, summary["peaks"][tf],
                 summary["reads_per_peak"][tf], 100 * summary["false_peak_share"][tf],
                 100 * summary["missed_share"][tf])
    for row in summary["oracle"].itertuples():
        log.info("oracle on %d test windows (%s), %-5s: count Pearson %.3f, Spearman %.3f; profile "
                 "auPRC (binsize 1, %d regions) %.3f", row.windows, ",".join(TEST_CHROMS), row.task,
                 row.count_pearson, row.count_spearman, row.auprc_regions, row.auprc)
    return summary
