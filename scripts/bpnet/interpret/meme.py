"""Motif matrices: MEME files of known motifs, and how similar two motifs are.

A motif is a ``(width, 4)`` matrix over A, C, G, T: a position frequency matrix (PFM, rows of
probabilities) or a contribution weight matrix (CWM). :func:`read_meme_motifs` reads a MEME file
(the known motifs of ``interpretation.known_motifs``, by default the package's
``data/oskn_motifs.meme``; the simulator's planted motifs) and :func:`resolve_known_motifs`
picks the ones ``interpretation.motifs`` names.

**Similarity to a known motif** (:func:`motif_similarity`), TOMTOM-like: both PFMs are weighted
by their per-position information content (bits against a uniform background), the discovered
motif is slid along the known one in both orientations, and at every offset with at least
``min(4, widths)`` overlapping columns the **Pearson correlation** of the two flattened weighted
matrices is computed over the union of their columns (a column outside a motif counts as zero,
i.e. no information, so unmatched informative columns lower the score). The similarity is the
maximum over offsets and orientations: 1 for identical motifs, about 0 or below for unrelated ones.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np

from bpnet.errors import BPNetInputError

ALPHABET = "ACGT"
PSEUDOCOUNT = 1e-3  # added to PFMs before logs (information content)


def read_meme_motifs(path: str | Path) -> dict[str, np.ndarray]:
    """Read a MEME file into ``{name: PFM (width, 4)}`` (A, C, G, T), in file order.

    ``name`` is the MOTIF line's identifier (e.g. ``MA0142.1``); the alternate name (e.g.
    ``Pou5f1::Sox2``), when present, is a second key for the same matrix. Parsing uses memelite's
    reader; a missing file, a file without motifs or rows that are not probabilities are errors.
    """
    from memelite.io import read_meme  # here: memelite takes about a second to import

    path = Path(path)
    if not path.exists():
        raise BPNetInputError(f"motif file {path} does not exist")
    try:
        raw = read_meme(str(path))
    except (ValueError, AttributeError, IndexError) as err:
        raise BPNetInputError(f"cannot read {path} as a MEME motif file: {err}") from err
    if not raw:
        raise BPNetInputError(f"motif file {path} holds no motif (expected MEME format: MOTIF lines "
                              "followed by a 'letter-probability matrix' block)")
    motifs: dict[str, np.ndarray] = {}
    for key, pwm in raw.items():
        pfm = np.asarray(pwm, dtype=np.float64).T  # memelite gives (4, width)
        if pfm.shape[1] != 4 or np.any(pfm < 0) or not np.allclose(pfm.sum(axis=1), 1, atol=0.02):
            raise BPNetInputError(
                f"{path}, motif {key!r}: expected rows of 4 probabilities (A, C, G, T) summing to 1"
            )
        for name in key.split(" ")[:2]:
            motifs.setdefault(name, pfm)
    return motifs


def resolve_known_motifs(meme: Mapping[str, np.ndarray], labels: Mapping[str, str], path: str) -> dict[str, np.ndarray]:
    """``{label: PFM}`` for the ``interpretation.motifs`` mapping ``label -> motif id or name``."""
    out = {}
    for label, name in labels.items():
        if name not in meme:
            raise BPNetInputError(
                f"config key interpretation.motifs.{label}: motif {name!r} is not in {path} "
                f"(it has {', '.join(list(meme)[:10])})"
            )
        out[label] = meme[name]
    if not out:
        raise BPNetInputError("config key interpretation.motifs: name at least one known motif")
    return out


def information_content(pfm: np.ndarray) -> np.ndarray:
    """Bits per position ``(width,)`` of a PFM ``(width, 4)`` against a uniform background."""
    p = pfm + PSEUDOCOUNT
    p = p / p.sum(axis=1, keepdims=True)
    return 2.0 + (p * np.log2(p)).sum(axis=1)


def ic_weighted(pfm: np.ndarray) -> np.ndarray:
    """The PFM ``(width, 4)`` with every row scaled by its information content (a logo's heights)."""
    return pfm * information_content(pfm)[:, None]


def reverse_complement_matrix(m: np.ndarray) -> np.ndarray:
    """Reverse complement of a ``(width, 4)`` A, C, G, T matrix."""
    return m[::-1, ::-1]


def consensus(pfm: np.ndarray) -> str:
    """The most likely base at each position."""
    return "".join(np.array(list(ALPHABET))[np.argmax(pfm, axis=1)])


def motif_similarity(query: np.ndarray, target: np.ndarray) -> tuple[float, int, str]:
    """Similarity of two PFMs ``(w, 4)``: max Pearson correlation of IC-weighted matrices (see module doc).

    Returns:
        ``(similarity, offset, orientation)``: the best score, the column of ``target`` where the
        first column of the (oriented) query lies (may be negative), and ``+`` or ``-`` (the query
        reverse-complemented).
    """
    t = ic_weighted(np.asarray(target, dtype=np.float64))
    wt = len(t)
    best = (-np.inf, 0, "+")
    q_fwd = ic_weighted(np.asarray(query, dtype=np.float64))
    wq = len(q_fwd)
    min_overlap = min(4, wq, wt)
    for orientation, q in (("+", q_fwd), ("-", reverse_complement_matrix(q_fwd))):
        for offset in range(min_overlap - wq, wt - min_overlap + 1):
            lo, hi = min(0, offset), max(wt, offset + wq)
            a = np.zeros((hi - lo, 4))
            b = np.zeros((hi - lo, 4))
            a[offset - lo:offset - lo + wq] = q
            b[-lo:-lo + wt] = t
            a, b = a.ravel() - a.mean(), b.ravel() - b.mean()
            denom = np.sqrt((a * a).sum() * (b * b).sum())
            r = float((a * b).sum() / denom) if denom > 0 else 0.0
            if r > best[0]:
                best = (r, offset, orientation)
    return best
