"""The truth VCF of the simulated dataset (rule ``simulate_variants``): variants whose planted
effect on every TF's expected reads is known, so variant-effect predictions can be checked.

:func:`simulate_variants` writes, beside the dataset's other truth files::

    truth/variants.vcf.gz          VCF 4.2, bgzip-compressed, sorted; INFO KIND, TYPE, TF, MOTIF, ...
    truth/variants.vcf.gz.tbi      its tabix index
    truth/variant_effects.tsv.gz   one row per variant and task: chrom, pos, id, ref, alt, kind,
                                   task, ref_total, alt_total, planted_effect

Kinds of variants (the counts: config section ``simulation.variants``):

- ``destroy``: an SNV changing the most informative base (highest information content) of a
  bound motif instance (occupancy >= ``min_occupancy`` for some TF) to the base of lowest
  probability in that column, and short deletions / insertions inside such an instance; each
  cuts the instance's affinity to at most :data:`DESTROY_MAX_RATIO` of its own (else another
  instance is taken: a weak instance may hold a poor base there already).
- ``create``: an SNV completing a near-match to a motif within :data:`CREATE_REACH` bp of a bound
  instance, clear of every planted instance: the k-mer's affinity is <= :data:`CREATE_MAX_REF`
  (no site) before and >= :data:`CREATE_MIN_ALT` after, and the simulator binds the new instance
  (occupancy >= ``bound_threshold`` for some TF).
- ``neutral_peak``: an SNV within a bound locus, >= :data:`NEUTRAL_MARGIN` bp from every instance.
- ``neutral_background``: SNVs and short insertions / deletions whose window (``width`` bp around
  it) lies outside every locus' frame: only the constant background there.

Every variant lies where no k-mer that it touches reaches affinity :data:`NEUTRAL_MAX_AFFINITY`
(no accidental motif) unless it is meant to destroy or create one.

The planted effect follows from the simulator's own rules. The loci, their motif instances
(affinities) and the cut bias table are made again from ``simulation.seed`` (the same streams as
:func:`~bpnet.simulate.generate.simulate_dataset`; checked against ``truth/instances.tsv.gz``), the
sequence is read from the genome FASTA. For the variant's locus (and any locus whose frame reaches
its window) the expected 5'-end rate tracks of every TF are computed with the simulator's functions
(:func:`~bpnet.simulate.binding.occupancy`: accessibility, binding, soft syntax;
:func:`~bpnet.simulate.tracks.expected_track`: footprints, cut bias, open chromatin), once for the
reference and once for the alternative sequence: a changed instance gets the affinity of its new
sequence (:func:`~bpnet.simulate.motifs.affinity`), a created one is added to the locus, an indel
moves the instances, the locus centre and the signal beyond it. ``ref_total`` / ``alt_total`` are
the noise-free expected reads, both strands and the background summed, over ``width`` bp centred
on the variant (the SNV's base; for an indel the first base after the anchor, in the reference and
in the alternative coordinates alike), and ``planted_effect = log((1 + alt_total) / (1 + ref_total))``.
The reference totals are those of ``truth/{TF}/expected.{pos,neg}.bw`` over the same window.

Randomness: the choice of variants has its own stream, the next child of ``simulation.seed``'s
:class:`numpy.random.SeedSequence` after the dataset's six, so the same config gives byte-identical
files.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

from bpnet.errors import BPNetInputError
from bpnet.io.sequence import encode, open_fasta
from bpnet.progress import progress_bar
from bpnet.simulate.binding import TFS, occupancy
from bpnet.simulate.config import resolve_config
from bpnet.simulate.files import write_gzip_table
from bpnet.simulate.genome import chrom_sizes_for
from bpnet.simulate.loci import Planted, plan_loci
from bpnet.simulate.motifs import MOTIFS, affinity, background_probs, load_motifs
from bpnet.simulate.tracks import (
    FRAME_HALF,
    FRAME_PAD,
    LocusSequence,
    background_rate,
    cut_bias_table,
    expected_track,
)

KINDS = ("destroy", "create", "neutral_peak", "neutral_background")
DATASET_STREAMS = 6  # simulate_dataset's random streams (genome, loci, motifs, cut bias, reads, control)
DESTROY_MAX_RATIO = 0.5  # a variant destroys an instance when it cuts its affinity at least 2-fold
CREATE_MAX_REF = 0.1  # a created instance's k-mer has at most this affinity before the SNV (no site)
CREATE_MIN_ALT = 0.5  # ... and at least this one after it
CREATE_REACH = 200  # bp from a created instance's centre to a bound instance's centre, at most
NEUTRAL_MAX_AFFINITY = 0.1  # no k-mer a neutral variant touches reaches this affinity (ref or alt)
NEUTRAL_MARGIN = 10  # bp from a neutral_peak SNV to every motif instance of its locus, at least
LOCUS_HALF = 600  # created instances lie within this many bp of their locus centre (signal in frame)
MAX_INDEL = 5  # bp: reads of the genome reach this far beyond a frame (a deletion's bases)
FRAME_WIDTH = 2 * (FRAME_HALF + FRAME_PAD)  # a locus' frame of sequence (tracks.LocusSequence)
INFO_FIELDS = (  # (ID, Number, Type, Description) of the VCF header
    ("KIND", "1", "String", "destroy, create, neutral_peak or neutral_background"),
    ("TYPE", "1", "String", "snv, ins (insertion) or del (deletion)"),
    ("TF", ".", "String", "TFs binding the motif instance destroyed or created (occupancy >= bound_threshold), the strongest first"),
    ("MOTIF", "1", "String", "motif of the instance destroyed or created"),
    ("INSTANCE", "1", "Integer", "row (0-based, header excluded) of truth/instances.tsv.gz of the instance destroyed"),
    ("LOCUS", "1", "Integer", "locus (column locus of truth/instances.tsv.gz) of a variant in a locus"),
    ("MSTART", "1", "Integer", "1-based position of the first base of the instance destroyed or created"),
    ("MSTRAND", "1", "String", "strand of the instance destroyed or created"),
    ("AFF_REF", "1", "Float", "affinity of the instance's k-mer in the reference sequence"),
    ("AFF_ALT", "1", "Float", "affinity of the instance's k-mer in the alternative sequence"),
)
EFFECT_COLUMNS = ["chrom", "pos", "id", "ref", "alt", "kind", "task", "ref_total", "alt_total", "planted_effect"]


def variant_paths(outdir: str | Path) -> dict[str, Path]:
    """The two files of :func:`simulate_variants` in the dataset folder ``outdir``."""
    truth = Path(outdir) / "truth"
    return {"vcf": truth / "variants.vcf.gz", "tbi": truth / "variants.vcf.gz.tbi",
            "effects": truth / "variant_effects.tsv.gz"}


@dataclass
class Variant:
    """One variant in global coordinates (see :class:`~bpnet.simulate.genome.Genome`).

    ``gpos`` is the 0-based position of the VCF POS (the SNV's base, or an indel's anchor base),
    ``ref`` / ``alt`` the VCF alleles. ``instance`` indexes the planted instances (truth table
    rows), ``new`` is a created instance ``(motif, gstart, strand, affinity)``.
    """

    gpos: int
    ref: str
    alt: str
    kind: str
    locus: int = -1
    instance: int = -1
    motif: str = ""
    mstart: int = -1
    mstrand: int = 0
    tfs: tuple[str, ...] = ()
    aff_ref: float = float("nan")
    aff_alt: float = float("nan")
    new: tuple | None = field(default=None, repr=False)

    @property
    def type(self) -> str:
        return "snv" if len(self.ref) == len(self.alt) == 1 else ("ins" if len(self.alt) > len(self.ref) else "del")

    @property
    def delta(self) -> int:
        """Bases the alternative sequence has more than the reference."""
        return len(self.alt) - len(self.ref)

    @property
    def center(self) -> int:
        """The window's centre: the SNV's base, or the first base after an indel's anchor (in the
        reference and in the alternative coordinates alike)."""
        return self.gpos if self.type == "snv" else self.gpos + 1

    def to_alt(self, gpos: np.ndarray) -> np.ndarray:
        """Reference positions -> alternative ones (deleted bases: the base after the anchor)."""
        gpos = np.asarray(gpos)
        after = gpos >= self.gpos + len(self.ref)
        deleted = (gpos > self.gpos) & ~after
        return np.where(after, gpos + self.delta, np.where(deleted, self.gpos + 1, gpos))


class GenomeSequence:
    """Codes of stretches of the genome FASTA in global coordinates, and of their alternatives."""

    def __init__(self, fasta: str | Path, sizes: Mapping[str, int]):
        self.path = str(fasta)
        self.fasta = open_fasta(fasta)
        found = {name: len(self.fasta[name]) for name in self.fasta.keys()}
        if found != dict(sizes):
            raise BPNetInputError(
                f"{fasta}: chromosomes {_brief(found)} are not those of config section simulation "
                f"({_brief(sizes)}): the genome was simulated with another config; remake it (rule simulate_dataset)"
            )
        self.names = list(sizes)
        self.offsets = np.concatenate([[0], np.cumsum(list(sizes.values()))[:-1]]).astype(np.int64)

    def locate(self, gpos: int) -> tuple[str, int]:
        """Global position -> (chromosome, 0-based position)."""
        i = int(np.searchsorted(self.offsets, gpos, side="right") - 1)
        return self.names[i], int(gpos - self.offsets[i])

    def codes(self, start: int, length: int) -> np.ndarray:
        """``(length,)`` codes of bases ``[start, start + length)`` (one chromosome)."""
        chrom, local = self.locate(start)
        text = self.fasta[chrom][local:local + length]
        if len(text) != length:
            raise RuntimeError(f"bug: {chrom}:{local}-{local + length} lies beyond the chromosome end")
        return encode(text, where=f"{self.path} {chrom}:{local + 1}")

    def alt_codes(self, variant: Variant, start: int, length: int) -> np.ndarray:
        """``(length,)`` codes of the alternative sequence from ``start`` (at or before the
        variant; alternative coordinates, equal to the reference ones up to the anchor)."""
        ref = self.codes(start, length + max(0, -variant.delta))
        at = variant.gpos - start
        if not 0 <= at < length:
            raise RuntimeError("bug: the variant lies outside the stretch asked for")
        if ref[at:at + len(variant.ref)].tolist() != encode(variant.ref).tolist():
            raise RuntimeError(f"bug: REF {variant.ref} is not the genome at {self.locate(variant.gpos)}")
        return np.concatenate([ref[:at], encode(variant.alt), ref[at + len(variant.ref):]])[:length]


def _brief(sizes: Mapping[str, int]) -> str:
    items = [f"{k}:{v}" for k, v in sizes.items()]
    return ", ".join(items[:3] + (["..."] if len(items) > 3 else []))


@dataclass
class Motif:
    """A PFM as the simulator scores it: the base that makes each column best (the consensus
    under :func:`affinity`), the most informative column and its least probable base."""

    name: str
    pfm: np.ndarray
    best: np.ndarray  # (width,) codes
    key_column: int
    worst_base: int

    @property
    def width(self) -> int:
        return self.pfm.shape[0]


def load_scored_motifs(bg: np.ndarray, temperature: float) -> list[Motif]:
    out = []
    for name, pfm in load_motifs().items():
        w = pfm.shape[0]
        # affinity() sums a per-column term: the best base of column j is the best of 4 sequences
        # differing in column j only
        trial = np.zeros((w, 4, w), dtype=np.uint8)
        trial[np.arange(w), :, np.arange(w)] = np.arange(4)[None, :]
        best = affinity(trial.reshape(-1, w), pfm, bg, temperature).reshape(w, 4).argmax(axis=1)
        p = pfm / pfm.sum(axis=1, keepdims=True)
        info = 2 + (p * np.log2(np.clip(p, 1e-12, None))).sum(axis=1)
        key = int(np.argmax(info))
        out.append(Motif(name, pfm, best.astype(np.uint8), key, int(np.argmin(p[key]))))
    return out


class Simulator:
    """The simulator's deterministic pieces re-made from the config: the loci and their motif
    instances, the cut bias table, and the expected tracks of one locus for any sequence."""

    def __init__(self, cfg: Mapping[str, Any], fasta: str | Path):
        self.cfg = cfg
        seeds = np.random.SeedSequence(cfg["seed"]).spawn(DATASET_STREAMS + 1)
        rng_loci, rng_motifs, rng_bias = (np.random.default_rng(s) for s in seeds[1:4])
        self.sizes = chrom_sizes_for(cfg)
        self.planted: Planted = plan_loci(cfg, self.sizes, rng_loci, rng_motifs)
        self.table = cut_bias_table(rng_bias, cfg["cut_bias_sd"])
        self.rng = np.random.default_rng(seeds[DATASET_STREAMS])  # the choice of variants
        self.genome = GenomeSequence(fasta, self.sizes)
        inst = self.planted.instances
        self.locus = inst["locus"].to_numpy()
        self.gstart = inst["gstart"].to_numpy()
        self.width = inst["width"].to_numpy()
        self.motif = inst["motif"].to_numpy()
        self.strand = inst["strand"].to_numpy()
        self.aff = inst["affinity"].to_numpy()
        n_loci = len(self.planted.centers)
        self.first = np.searchsorted(self.locus, np.arange(n_loci))
        self.last = np.searchsorted(self.locus, np.arange(n_loci), side="right")
        self.bg = background_probs(cfg["gc_content"])
        self.motifs = load_scored_motifs(self.bg, cfg["affinity_temperature"])
        self._frames: dict[int, np.ndarray] = {}
        self._tracks: dict[int, dict] = {}

    def check_instances(self, path: str | Path) -> None:
        """``truth/instances.tsv.gz`` lists the instances made again here (else another config)."""
        try:
            table = pd.read_csv(path, sep="\t", usecols=["chrom", "start", "motif"])
        except (OSError, ValueError) as err:
            raise BPNetInputError(f"{path}: cannot read the planted instances ({err})") from err
        idx = np.searchsorted(self.genome.offsets, self.gstart, side="right") - 1
        same = (len(table) == len(self.gstart)
                and table["chrom"].astype(str).tolist() == [self.genome.names[c] for c in idx]
                and np.array_equal(table["start"].to_numpy(), self.gstart - self.genome.offsets[idx])
                and table["motif"].tolist() == [MOTIFS[m] for m in self.motif])
        if not same:
            raise BPNetInputError(
                f"{path}: the planted instances are not those of config section simulation (seed "
                f"{self.cfg['seed']}, scale {self.cfg['scale']}): the dataset was simulated with another "
                "config; remake it (rule simulate_dataset)"
            )

    def frame_start(self, locus: int) -> int:
        return int(self.planted.centers[locus]) - FRAME_HALF - FRAME_PAD

    def frame(self, locus: int) -> np.ndarray:
        """Reference codes of the locus' frame plus :data:`MAX_INDEL` bases (cached)."""
        if locus not in self._frames:
            self._frames[locus] = self.genome.codes(self.frame_start(locus), FRAME_WIDTH + MAX_INDEL)
        return self._frames[locus]

    def rows(self, locus: int) -> np.ndarray:
        return np.arange(self.first[locus], self.last[locus])

    def occupancy(self, gcenter: np.ndarray, motif: np.ndarray, aff: np.ndarray) -> tuple[np.ndarray, float]:
        """Occupancy ``(n, TFs)`` and accessibility of one locus' instances."""
        occ, access = occupancy(np.zeros(len(gcenter), dtype=np.int64), gcenter, motif, aff, self.cfg)
        return occ, float(access[0]) if len(access) else 0.0

    def locus_tracks(self, center: int, gcenter: np.ndarray, motif: np.ndarray, aff: np.ndarray,
                     codes: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """The expected tracks ``{tf: (pos (k,), rate (k,))}`` (both strands, above the
        background) of one locus: centre, instances and the codes of its frame (from ``center -
        FRAME_HALF - FRAME_PAD``) as given; the simulator's own functions."""
        occ, access = self.occupancy(gcenter, motif, aff)
        one = Planted(np.array([center], dtype=np.int64), np.array([access]),
                      pd.DataFrame({"locus": np.zeros(len(gcenter), dtype=np.int64), "gcenter": gcenter}), occ)
        seq = LocusSequence(np.array([center - FRAME_HALF - FRAME_PAD], dtype=np.int64),
                            codes[None, :FRAME_WIDTH], np.ones(1, dtype=bool))
        out = {}
        for tf in TFS:
            parts = [expected_track(self.cfg, seq, one, self.table, tf, strand)[:2] for strand in (1, -1)]
            out[tf] = (np.concatenate([p for p, _ in parts]), np.concatenate([r for _, r in parts]))
        return out

    def ref_tracks(self, locus: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """:meth:`locus_tracks` of a locus as simulated (cached)."""
        if locus not in self._tracks:
            rows = self.rows(locus)
            self._tracks[locus] = self.locus_tracks(
                int(self.planted.centers[locus]), self.planted.instances["gcenter"].to_numpy()[rows],
                self.motif[rows], self.aff[rows], self.frame(locus))
        return self._tracks[locus]

    def alt_tracks(self, v: Variant) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """:meth:`locus_tracks` of the variant's locus with the alternative sequence."""
        rows = self.rows(v.locus)
        gstart = v.to_alt(self.gstart[rows])  # instances never start inside a deletion
        width, motif, aff = self.width[rows], self.motif[rows], self.aff[rows].copy()
        if v.instance >= 0:
            aff[v.instance - rows[0]] = v.aff_alt
        if v.new is not None:
            m, start, _, a = v.new
            gstart, width = np.r_[gstart, start], np.r_[width, self.motifs[m].width]
            motif, aff = np.r_[motif, m], np.r_[aff, a]
        center = int(v.to_alt(int(self.planted.centers[v.locus])))
        codes = self.genome.alt_codes(v, center - FRAME_HALF - FRAME_PAD, FRAME_WIDTH)
        return self.locus_tracks(center, gstart + (width - 1) / 2, motif, aff, codes)

    def instance_codes(self, variant: Variant | None, gstart: int, width: int, strand: int) -> np.ndarray:
        """Codes of a k-mer in motif orientation, in the reference (``variant`` None) or the
        alternative sequence (``gstart`` at or before the variant)."""
        codes = (self.genome.codes(gstart, width) if variant is None
                 else self.genome.alt_codes(variant, gstart, width))
        return codes if strand > 0 else (3 - codes)[::-1]

    def max_affinity(self, codes: np.ndarray, lo: int, hi: int) -> float:
        """The highest affinity, over every motif and both strands, of a k-mer of ``codes``
        overlapping ``[lo, hi)`` (indices into ``codes``)."""
        best = 0.0
        for m in self.motifs:
            w = m.width
            a, b = max(0, lo - w + 1), min(len(codes) - w, hi - 1)
            if b < a:
                continue
            win = sliding_window_view(codes, w)[a:b + 1]
            win = win[(win < 4).all(axis=1)]
            if len(win):
                for oriented in (win, (3 - win)[:, ::-1]):
                    best = max(best, float(affinity(oriented, m.pfm, self.bg, self.cfg["affinity_temperature"]).max()))
        return best

    def no_motif_touched(self, v: Variant) -> bool:
        """Neither allele touches a k-mer of affinity >= :data:`NEUTRAL_MAX_AFFINITY`."""
        start = v.gpos - 20
        ref = self.genome.codes(start, 41 + len(v.ref))
        alt = self.genome.alt_codes(v, start, 41 + len(v.alt))
        return (self.max_affinity(ref, 20, 20 + len(v.ref)) < NEUTRAL_MAX_AFFINITY
                and self.max_affinity(alt, 20, 20 + len(v.alt)) < NEUTRAL_MAX_AFFINITY)

    def bound_tfs(self, occ_row: np.ndarray) -> tuple[str, ...]:
        order = np.argsort(-occ_row, kind="stable")
        return tuple(TFS[t] for t in order if occ_row[t] >= self.cfg["bound_threshold"])


def _letters(codes: np.ndarray) -> str:
    return "".join("ACGTN"[c] for c in codes)


# ------------------------------------------------------------------------ choosing variants


def destroy_variant(sim: Simulator, i: int, rng: np.random.Generator, kind: str, max_indel: int) -> Variant | None:
    """Destroy instance ``i`` by an SNV (``kind`` snv: its most informative base to the least
    probable one), a deletion or an insertion there; None where that does not destroy it."""
    m = sim.motifs[sim.motif[i]]
    g, w, s = int(sim.gstart[i]), int(sim.width[i]), int(sim.strand[i])
    key = g + m.key_column if s > 0 else g + w - 1 - m.key_column
    ref = sim.genome.codes(g - 1, w + 1)  # the base before the instance, then the instance
    if kind == "snv":
        base = m.worst_base if s > 0 else 3 - m.worst_base
        if ref[key - g + 1] == base:
            return None
        v = Variant(key, _letters(ref[key - g + 1:key - g + 2]), "ACGT"[base], "destroy")
    else:
        d = int(rng.integers(1, max_indel + 1))
        if kind == "del":
            first = int(np.clip(key - d // 2, g + 1, g + w - d))
            v = Variant(first - 1, _letters(ref[first - 1 - g + 1:first + d - g + 1]), _letters(ref[first - g:first - g + 1]), "destroy")
        else:
            anchor = int(np.clip(key - 1, g, g + w - 2))
            v = Variant(anchor, _letters(ref[anchor - g + 1:anchor - g + 2]),
                        _letters(np.r_[ref[anchor - g + 1], rng.integers(0, 4, d)]), "destroy")
    if len(v.ref) > 1 and v.ref[0] != v.alt[0]:
        raise RuntimeError("bug: an indel's alleles must share the anchor base")
    aff_alt = float(affinity(sim.instance_codes(v, g, w, s)[None], m.pfm, sim.bg, sim.cfg["affinity_temperature"])[0])
    if aff_alt > DESTROY_MAX_RATIO * sim.aff[i]:
        return None
    v.locus, v.instance, v.motif, v.mstart, v.mstrand = int(sim.locus[i]), i, m.name, g, s
    v.tfs, v.aff_ref, v.aff_alt = sim.bound_tfs(sim.planted.occ[i]), float(sim.aff[i]), aff_alt
    return v


def create_candidates(sim: Simulator, locus: int) -> list[Variant]:
    """Every SNV of the locus that completes a near-match (see the module), each with the TFs
    that would bind it; in genome order, then motif and strand."""
    rows = sim.rows(locus)
    occ = sim.planted.occ[rows]
    bound = rows[(occ >= sim.cfg["bound_threshold"]).any(axis=1)]
    if not len(bound):
        return []
    center = int(sim.planted.centers[locus])
    codes = sim.frame(locus)
    base = sim.frame_start(locus)
    gcenter = sim.planted.instances["gcenter"].to_numpy()
    taken = np.zeros(len(codes), dtype=bool)  # planted instances and 2 bp around them
    for r in rows:
        taken[max(0, sim.gstart[r] - base - 2):sim.gstart[r] - base + sim.width[r] + 2] = True
    t = sim.cfg["affinity_temperature"]
    out = []
    for mi, m in enumerate(sim.motifs):
        w = m.width
        starts = np.arange(center - LOCUS_HALF, center + LOCUS_HALF - w) - base
        win = sliding_window_view(codes, w)[starts]
        mid = starts + base + (w - 1) / 2
        ok = ~sliding_window_view(taken, w)[starts].any(axis=1) & (win < 4).all(axis=1)
        ok &= (np.abs(mid[:, None] - gcenter[bound][None, :]) <= CREATE_REACH).any(axis=1)
        for strand in (1, -1):
            oriented = win if strand > 0 else (3 - win)[:, ::-1]
            aff_ref = affinity(oriented, m.pfm, sim.bg, t)
            cand = np.flatnonzero(ok & (aff_ref <= CREATE_MAX_REF))
            if not len(cand):
                continue
            # every single substitution to the column's best base
            alt = np.repeat(oriented[cand][:, None, :], w, axis=1)
            alt[:, np.arange(w), np.arange(w)] = m.best[None, :]
            aff_alt = affinity(alt.reshape(-1, w), m.pfm, sim.bg, t).reshape(len(cand), w)
            aff_alt[oriented[cand] == m.best[None, :]] = 0  # no change
            for k, c in enumerate(cand):
                col = int(aff_alt[k].argmax())
                a = float(aff_alt[k, col])
                if a < CREATE_MIN_ALT:
                    continue
                g = int(starts[c] + base)
                pos = g + col if strand > 0 else g + w - 1 - col
                new_base = int(m.best[col]) if strand > 0 else 3 - int(m.best[col])
                v = Variant(pos, "ACGT"[codes[pos - base]], "ACGT"[new_base], "create", locus=locus, motif=m.name,
                            mstart=g, mstrand=strand, aff_ref=float(aff_ref[c]), aff_alt=a, new=(mi, g, strand, a))
                # the simulator binds it: add it to the locus
                occ_new, _ = sim.occupancy(np.r_[gcenter[rows], g + (w - 1) / 2], np.r_[sim.motif[rows], mi],
                                           np.r_[sim.aff[rows], a])
                v.tfs = sim.bound_tfs(occ_new[-1])
                if v.tfs:
                    out.append(v)
    return sorted(out, key=lambda v: (v.gpos, v.motif, v.mstrand))


def neutral_peak_variant(sim: Simulator, locus: int, rng: np.random.Generator) -> Variant | None:
    """An SNV in the locus' span of instances, >= NEUTRAL_MARGIN bp from each, near no motif."""
    rows = sim.rows(locus)
    lo, hi = int(sim.gstart[rows].min()) - 2 * NEUTRAL_MARGIN, int((sim.gstart[rows] + sim.width[rows]).max()) + 2 * NEUTRAL_MARGIN
    allowed = np.ones(hi - lo, dtype=bool)
    for r in rows:
        allowed[max(0, sim.gstart[r] - NEUTRAL_MARGIN - lo):sim.gstart[r] + sim.width[r] + NEUTRAL_MARGIN - lo] = False
    where = np.flatnonzero(allowed)
    if not len(where):
        return None
    pos = int(lo + where[rng.integers(len(where))])
    ref = int(sim.genome.codes(pos, 1)[0])
    alt = int((ref + rng.integers(1, 4)) % 4) if ref < 4 else None
    if alt is None:
        return None
    v = Variant(pos, "ACGT"[ref], "ACGT"[alt], "neutral_peak", locus=locus)
    return v if sim.no_motif_touched(v) else None


def background_variant(sim: Simulator, gpos: int, rng: np.random.Generator, kind: str, max_indel: int) -> Variant | None:
    """An SNV, deletion or insertion (``kind``) at ``gpos``, touching no motif."""
    d = int(rng.integers(1, max_indel + 1)) if kind != "snv" else 0
    ref = sim.genome.codes(gpos, d + 1)
    if (ref >= 4).any():
        return None
    if kind == "snv":
        v = Variant(gpos, "ACGT"[ref[0]], "ACGT"[(ref[0] + rng.integers(1, 4)) % 4], "neutral_background")
    elif kind == "del":
        v = Variant(gpos, _letters(ref), _letters(ref[:1]), "neutral_background")
    else:
        v = Variant(gpos, _letters(ref[:1]), _letters(np.r_[ref[0], rng.integers(0, 4, d)]), "neutral_background")
    return v if sim.no_motif_touched(v) else None


def choose_variants(sim: Simulator, counts: Mapping[str, Any], window: int,
                    log: logging.Logger | None = None) -> list[Variant]:
    """The variants of every kind (``counts``: config section ``simulation.variants``)."""
    rng, cfg = sim.rng, sim.cfg
    max_indel = counts["max_indel_length"]
    n_indel_destroy = counts["indels"] // 2 + counts["indels"] % 2
    n_indel_background = counts["indels"] // 2
    used: list[tuple[int, int]] = []

    def free(v: Variant) -> bool:
        a, b = v.gpos - 1, v.gpos + len(v.ref) + 1
        if any(x < b and a < y for x, y in used):
            return False
        used.append((a, b))
        return True

    def short(what: str, got: int, asked: int) -> None:
        if got < asked and log is not None:
            log.warning("%s: %d of the %d asked for (simulation.variants); the dataset has no more candidate sites",
                        what, got, asked)

    out: list[Variant] = []
    # destroy: instances bound with occupancy >= min_occupancy, in a seeded order
    occ_max = sim.planted.occ.max(axis=1)
    order = rng.permutation(np.flatnonzero(occ_max >= counts["min_occupancy"]))
    jobs = ["snv"] * counts["destroy"] + [("del", "ins")[k % 2] for k in range(n_indel_destroy)]
    got = {"snv": 0, "del": 0, "ins": 0}
    k = 0
    for i in order:
        if k == len(jobs):
            break
        v = destroy_variant(sim, int(i), rng, jobs[k], max_indel)
        if v is not None and free(v):
            out.append(v)
            got[jobs[k]] += 1
            k += 1
    short("destroy SNVs", got["snv"], counts["destroy"])
    short("destroying indels", got["del"] + got["ins"], n_indel_destroy)

    # create and neutral_peak: bound loci in a seeded order
    occ_locus = np.zeros(len(sim.planted.centers))
    np.maximum.at(occ_locus, sim.locus, occ_max)
    bound_loci = rng.permutation(np.flatnonzero(occ_locus >= cfg["bound_threshold"]))
    n_create = 0
    for locus in bound_loci:
        if n_create == counts["create"]:
            break
        cands = create_candidates(sim, int(locus))
        if cands:
            v = cands[int(rng.integers(len(cands)))]
            if free(v):
                out.append(v)
                n_create += 1
    short("create SNVs", n_create, counts["create"])
    n_neutral = 0
    for _ in range(3):  # up to 3 passes over the bound loci, one SNV per locus and pass
        for locus in bound_loci:
            if n_neutral == counts["neutral_peak"]:
                break
            v = neutral_peak_variant(sim, int(locus), rng)
            if v is not None and free(v):
                out.append(v)
                n_neutral += 1
    short("neutral_peak SNVs", n_neutral, counts["neutral_peak"])

    # neutral_background: the window outside every locus' frame (and 5 bp of reach)
    centers = np.sort(sim.planted.centers)
    reach = FRAME_HALF + FRAME_PAD + MAX_INDEL + window // 2 + 2
    jobs = ["snv"] * counts["neutral_background"] + [("del", "ins")[k % 2] for k in range(n_indel_background)]
    total = int(sum(sim.sizes.values()))
    lengths = np.array(list(sim.sizes.values()))
    k, tries = 0, 0
    while k < len(jobs) and tries < 50 * len(jobs) + 100:
        tries += 1
        gpos = int(rng.integers(0, total))
        c = int(np.searchsorted(sim.genome.offsets, gpos, side="right") - 1)
        local = gpos - sim.genome.offsets[c]
        if local < reach or local > lengths[c] - reach:
            continue
        near = np.searchsorted(centers, gpos)
        dist = min(abs(gpos - centers[j]) for j in (near - 1, near) if 0 <= j < len(centers))
        if dist < reach:
            continue
        v = background_variant(sim, gpos, rng, jobs[k], max_indel)
        if v is not None and free(v):
            out.append(v)
            k += 1
    short("neutral_background variants", k, len(jobs))
    return sorted(out, key=lambda v: (v.gpos, v.ref, v.alt))


# ---------------------------------------------------------------------------- planted effects


def window_totals(sim: Simulator, v: Variant, width: int) -> tuple[dict[str, float], dict[str, float]]:
    """Noise-free expected reads (both strands, background included) over ``width`` bp centred
    on the variant: ``(ref_total, alt_total)``, each ``{tf: reads}``."""
    a = v.center - width // 2
    loci = np.flatnonzero(np.abs(sim.planted.centers - v.center) < FRAME_HALF + width + MAX_INDEL)
    ref = {tf: width * 2 * background_rate(sim.cfg, tf) for tf in TFS}
    alt = dict(ref)
    for locus in loci:
        tracks = sim.ref_tracks(int(locus))
        for tf in TFS:
            pos, rate = tracks[tf]
            ref[tf] += float(rate[(pos >= a) & (pos < a + width)].sum())
            if locus != v.locus:  # elsewhere only the coordinates change
                pos = v.to_alt(pos)
                alt[tf] += float(rate[(pos >= a) & (pos < a + width)].sum())
    if v.locus >= 0:
        for tf, (pos, rate) in sim.alt_tracks(v).items():
            alt[tf] += float(rate[(pos >= a) & (pos < a + width)].sum())
    return ref, alt


def effects_table(sim: Simulator, variants: list[Variant], width: int, log: logging.Logger | None = None) -> pd.DataFrame:
    """One row per variant and task (columns :data:`EFFECT_COLUMNS`), in the variants' order."""
    rows = []
    with progress_bar(log, len(variants), "planted variant effects", unit="variant") as bar:
        for v, vid in zip(variants, variant_ids(variants)):
            ref, alt = window_totals(sim, v, width)
            chrom, local = sim.genome.locate(v.gpos)
            for tf in TFS:
                rows.append((chrom, local + 1, vid, v.ref, v.alt, v.kind, tf, ref[tf], alt[tf],
                             np.log((1 + alt[tf]) / (1 + ref[tf]))))
            bar.update(1)
    table = pd.DataFrame(rows, columns=EFFECT_COLUMNS)
    return table.astype({"pos": np.int64, "ref_total": np.float64, "alt_total": np.float64, "planted_effect": np.float64})


def variant_ids(variants: list[Variant]) -> list[str]:
    """``<kind>_<type>_<n>``, n counting from 1 in file order within kind and type."""
    seen: dict[tuple[str, str], int] = {}
    out = []
    for v in variants:
        seen[v.kind, v.type] = seen.get((v.kind, v.type), 0) + 1
        out.append(f"{v.kind}_{v.type}_{seen[v.kind, v.type]}")
    return out


# ---------------------------------------------------------------------------------- the files


def write_vcf(path: str | Path, sim: Simulator, variants: list[Variant], fasta_name: str) -> None:
    """The sorted, bgzip-compressed VCF 4.2 of ``variants`` (sorted already) and its tabix
    index (``path`` + ``.tbi``)."""
    import pysam  # imported here: only this step writes VCF

    header = pysam.VariantHeader()
    header.add_line("##source=bpnet.simulate.variants (rule simulate_variants)")
    header.add_line(f"##reference={fasta_name}")
    for chrom, length in sim.sizes.items():
        header.contigs.add(chrom, length=length)
    for key, number, kind, text in INFO_FIELDS:
        header.info.add(key, number, kind, text)
    with pysam.VariantFile(str(path), "wz", header=header) as vcf:
        for v, vid in zip(variants, variant_ids(variants)):
            chrom, local = sim.genome.locate(v.gpos)
            rec = vcf.new_record(contig=chrom, start=local, alleles=(v.ref, v.alt), id=vid)
            rec.info["KIND"], rec.info["TYPE"] = v.kind, v.type
            if v.tfs:
                rec.info["TF"] = list(v.tfs)
            if v.motif:
                rec.info["MOTIF"] = v.motif
                rec.info["MSTART"] = sim.genome.locate(v.mstart)[1] + 1
                rec.info["MSTRAND"] = "+" if v.mstrand > 0 else "-"
                rec.info["AFF_REF"], rec.info["AFF_ALT"] = round(v.aff_ref, 5), round(v.aff_alt, 5)
            if v.instance >= 0:
                rec.info["INSTANCE"] = v.instance
            if v.locus >= 0:
                rec.info["LOCUS"] = v.locus
            vcf.write(rec)
    pysam.tabix_index(str(path), preset="vcf", force=True)  # path + .tbi: region queries


def simulate_variants(fasta: str | Path, instances: str | Path, vcf: str | Path, effects: str | Path,
                      config: Mapping[str, Any] | None = None, width: int = 1000,
                      log: logging.Logger | None = None) -> pd.DataFrame:
    """Write the truth VCF ``vcf`` and the planted effects ``effects`` of a simulated dataset.

    Args:
        fasta: the dataset's ``genome.fa`` (indexed).
        instances: its ``truth/instances.tsv.gz`` (checked to be that of ``config``).
        vcf, effects: the outputs (``truth/variants.vcf.gz``, ``truth/variant_effects.tsv.gz``).
        config: the ``simulation`` config section the dataset was made with (partial: the
            schema's defaults fill it), ``variants`` holding the counts.
        width: bp of the window the expected reads are summed over (config ``windows.width``).
        log: progress and the figures per kind.

    Returns:
        The effects table as written (columns :data:`EFFECT_COLUMNS`).
    """
    cfg = resolve_config(config)
    if int(width) != width or width < 1:
        raise BPNetInputError(f"config key windows.width: must be a positive integer, got {width!r}")
    width = int(width)
    sim = Simulator(cfg, fasta)
    sim.check_instances(instances)
    variants = choose_variants(sim, cfg["variants"], width, log)
    table = effects_table(sim, variants, width, log)
    for p in (vcf, effects):
        Path(p).parent.mkdir(parents=True, exist_ok=True)
    write_vcf(vcf, sim, variants, Path(fasta).name)
    written = table.copy()
    written[["ref_total", "alt_total"]] = written[["ref_total", "alt_total"]].round(4)
    written["planted_effect"] = written["planted_effect"].round(6)
    write_gzip_table(Path(effects), written, header=True)
    if log is not None:
        for (kind, vtype), rows in table.groupby(["kind", table["id"].str.split("_").str[-2]], sort=False):
            log.info("%-18s %-3s %4d variants, planted effect (all tasks) median %+.3f, range %+.3f..%+.3f",
                     kind, vtype, rows["id"].nunique(), rows["planted_effect"].median(),
                     rows["planted_effect"].min(), rows["planted_effect"].max())
    return written
