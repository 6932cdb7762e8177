"""The whole simulation: :func:`simulate_dataset` runs every stage in order from one seed, writes
the files and logs the realism figures (the layout and the model: :mod:`bpnet.simulate`)."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from bpnet.io.tracks import STRANDS, read_windows
from bpnet.progress import progress_bar
from bpnet.simulate.binding import TFS
from bpnet.simulate.config import resolve_config
from bpnet.simulate.files import (
    FastaWriter,
    bigwig_jobs,
    output_paths,
    write_bigwigs,
    write_chrom_sizes,
    write_gzip_table,
    write_truth,
)
from bpnet.simulate.genome import Genome, chrom_sizes_for, chromosome_sequences
from bpnet.simulate.loci import plan_loci
from bpnet.simulate.peaks import call_tf_peaks
from bpnet.simulate.summary import (
    ORACLE_MAX_WINDOWS,
    ORACLE_WIDTH,
    TEST_CHROMS,
    gather_windows,
    oracle_scores,
    oracle_windows,
    peak_window_reads,
    sample_windows,
    summarize,
)
from bpnet.simulate.tracks import (
    CONTROL,
    LocusSequence,
    background_rate,
    cut_bias_table,
    expected_track,
    tf_tracks,
)
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

    Memory stays bounded at the paper's genome size: the genome is made, planted and written one
    chromosome at a time (only the sequence around the loci is kept, for the cut bias), and the
    tracks one TF at a time (sparse; its peaks called chromosome by chromosome and its files
    written before the next TF's draws); only the loci, their sequence, peaks and truth are kept
    for the whole genome. The oracle check reads the counts back from the written files and makes
    the expected rates of the test chromosomes again (scoring at most
    :data:`~bpnet.simulate.summary.ORACLE_MAX_WINDOWS` windows). The random draws are those of the
    whole-genome order, so the files do not depend on this streaming.
    """
    t0 = time.perf_counter()
    log = log or logging.getLogger("bpnet.simulate")
    cfg = resolve_config(config)
    rng_genome, rng_loci, rng_motifs, rng_bias, rng_noise, rng_control = (
        np.random.default_rng(s) for s in np.random.SeedSequence(cfg["seed"]).spawn(6)
    )
    genome = Genome(chrom_sizes_for(cfg))  # the sequence is streamed, never held whole
    sizes = genome.sizes
    planted = plan_loci(cfg, sizes, rng_loci, rng_motifs)
    paths = output_paths(out_dir)
    for p in paths.values():
        p.parent.mkdir(parents=True, exist_ok=True)

    # The genome: each chromosome made, planted, written, and its loci's sequence kept.
    around_loci = LocusSequence.around(planted.centers)
    with FastaWriter(paths["fasta"]) as fasta:
        for chrom, offset, seq in chromosome_sequences(cfg, rng_genome, planted.plant, log):
            fasta.add(chrom, seq)
            around_loci.fill(seq, offset)
            del seq
    write_chrom_sizes(paths["chrom_sizes"], sizes)
    if not around_loci.filled.all():
        raise RuntimeError("bug: a locus' frame of sequence does not lie within one chromosome")

    # The tracks, one TF at a time: its peaks, its files.
    table = cut_bias_table(rng_bias, cfg["cut_bias_sd"])
    peak_tables, reads_per_peak = {}, {}
    n_files = len(paths) - 1  # the FASTA index is written with the FASTA
    with progress_bar(log, 2 * len(TFS + (CONTROL,)), "simulate tracks", unit="track") as track_bar, \
            progress_bar(log, len(TFS) * len(sizes), "call peaks", unit="chrom") as peak_bar, \
            progress_bar(log, n_files, "write dataset", unit="file") as write_bar:
        write_bar.update(2)  # the FASTA and chrom sizes, written above
        for tf, expected, observed in tf_tracks(cfg, around_loci, genome.length, planted, table, rng_noise,
                                                rng_control, track_bar):
            if tf != CONTROL:
                strands = [observed[f"{tf}.{s}"] for s in STRANDS]
                peak_tables[tf] = call_tf_peaks(cfg, sizes, strands, tf, peak_bar)
                reads_per_peak[tf] = peak_window_reads(peak_tables[tf], strands, sizes)
                del strands
            write_bigwigs(bigwig_jobs(paths, sizes, expected, observed), threads, write_bar)
            if tf != CONTROL:
                write_gzip_table(paths[f"{tf}.peaks"], peak_tables[tf], header=False)
                write_bar.update(1)
            del expected, observed
        truth = truth_table(cfg, genome, planted)
        syntax = planted_syntax(cfg, np.arange(1, SYNTAX_MAX_BP + 1))
        write_truth(paths, truth, syntax)
        write_bar.update(2)
    seconds = time.perf_counter() - t0

    summary = summarize(truth, peak_tables, reads_per_peak, sizes, cfg["bound_threshold"])
    # The oracle check (summary.oracle_check's figures): the counts read back from the written
    # files, the expected rates made again on the test chromosomes (no draws), one TF at a time.
    all_windows = oracle_windows(peak_tables, sizes, TEST_CHROMS, ORACLE_WIDTH)
    starts = sample_windows(all_windows, ORACLE_MAX_WINDOWS)
    chroms, local = genome.to_local(starts)
    test_loci = np.flatnonzero(np.isin(genome.to_local(planted.centers)[0], TEST_CHROMS))

    def windows(tf: str) -> tuple[np.ndarray, np.ndarray]:
        obs = read_windows([paths[f"{tf}.counts.{s}"] for s in STRANDS], chroms, local, ORACLE_WIDTH, np.float64)
        exp = np.empty(obs.shape)
        for i, strand in enumerate((1, -1)):  # STRANDS order
            pos, rate, _ = expected_track(cfg, around_loci, planted, table, tf, strand, test_loci)
            gather_windows(pos, rate, starts, ORACLE_WIDTH, background_rate(cfg, tf), out=exp[:, :, i])
        return obs, exp

    summary["oracle"] = oracle_scores(windows, len(starts))
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
    if len(starts) < len(all_windows):
        log.info("oracle check on a seeded sample of %d of the %d test windows (memory)", len(starts), len(all_windows))
    for row in summary["oracle"].itertuples():
        log.info("oracle on %d test windows (%s), %-5s: count Pearson %.3f, Spearman %.3f; profile "
                 "auPRC (binsize 1, %d regions) %.3f", row.windows, ",".join(TEST_CHROMS), row.task,
                 row.count_pearson, row.count_spearman, row.auprc_regions, row.auprc)
    return summary
