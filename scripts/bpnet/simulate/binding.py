"""Who binds where: the TFs, their motif specificity, accessibility and soft syntax -> occupancy.

:func:`occupancy` is a deterministic function of the motifs of a locus (their kinds, affinities
and distances), so the truth and the expected-rate tracks follow from the sequence alone.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from bpnet.model.network import DEFAULT_TASKS
from bpnet.simulate.motifs import NANOG, OS, SOX2

TFS = DEFAULT_TASKS  # the simulated ChIP-nexus experiments: the paper's four TFs
T_OCT4, T_SOX2, T_NANOG, T_KLF4 = range(len(TFS))  # TF indices
CHUNK_LOCI = 4096  # loci whose pairs are computed at once (bounds memory at large scale)

# How strongly each TF (rows, TFS order) binds each motif (columns, MOTIFS order). Oct4 and Sox2
# both bind the composite; their solo motifs bind more weakly (the partner's support is missing).
SPECIFICITY = np.array(
    [
        [1.0, 0.7, 0.0, 0.0, 0.0],  # Oct4
        [1.0, 0.0, 0.7, 0.0, 0.0],  # Sox2
        [0.0, 0.0, 0.0, 1.0, 0.0],  # Nanog
        [0.0, 0.0, 0.0, 0.0, 1.0],  # Klf4
    ]
)


def helical(d: np.ndarray, period: float, decay: float) -> np.ndarray:
    """Helical-phase partner weight ``exp(-d / decay) * (1 + cos(2 pi d / period)) / 2``."""
    return np.exp(-d / decay) * (1 + np.cos(2 * np.pi * d / period)) / 2


def occupancy(locus: np.ndarray, center: np.ndarray, motif: np.ndarray, aff: np.ndarray,
              cfg: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """Per-TF occupancy of every instance, from the motifs of its locus alone.

    Args:
        locus: ``(n,)`` locus id of each instance (instances of a locus interact).
        center: ``(n,)`` motif centre (bp; any origin shared within a locus).
        motif: ``(n,)`` motif index (:data:`~bpnet.simulate.motifs.MOTIFS`).
        aff: ``(n,)`` affinity in (0, 1].
        cfg: the resolved simulation config.

    Returns:
        ``(occ, access)``: occupancy ``(n, len(TFS))`` in [0, 1) and the accessibility ``(n,)``
        of each instance's locus.
    """
    n = len(locus)
    loci, inv = np.unique(locus, return_inverse=True)
    # Pad instances into a (loci, k) grid so that all pairs of a locus are one array operation.
    order = np.argsort(inv, kind="stable")
    counts = np.bincount(inv, minlength=len(loci))
    k = int(counts.max()) if n else 0
    slot = np.arange(n) - np.repeat(np.cumsum(counts) - counts, counts)
    grid = np.full((len(loci), k), -1)
    grid[inv[order], slot] = order
    occ = np.zeros((n, len(TFS)))
    access_locus = np.zeros(len(loci))
    # Loci in chunks (the pair arrays are (loci, k, k)); every row is padded to the same k, so
    # each locus' sums, and so its figures, do not depend on the chunking.
    for a in range(0, len(loci), CHUNK_LOCI):
        rows = grid[a:a + CHUNK_LOCI]
        valid = rows >= 0
        g_occ, access_locus[a:a + CHUNK_LOCI] = _grid_occupancy(center[rows], motif[rows], aff[rows], valid, cfg)
        occ[rows[valid]] = g_occ[:, valid].T
    return occ, access_locus[inv]


def _grid_occupancy(center: np.ndarray, motif: np.ndarray, aff: np.ndarray, valid: np.ndarray,
                    cfg: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """:func:`occupancy` of loci padded into a grid ``(loci, k)`` (``valid``: the real slots):
    occupancy ``(len(TFS), loci, k)`` and accessibility ``(loci,)``."""
    syn = cfg["syntax"]
    k = valid.shape[1]
    g_center = np.where(valid, center, 0.0)
    g_motif = np.where(valid, motif, -1)
    g_aff = np.where(valid, aff, 0.0)
    dist = np.abs(g_center[:, :, None] - g_center[:, None, :])
    partner = valid[:, None, :] & ~np.eye(k, dtype=bool)[None]  # j != i, j real

    def partner_sum(partner_motif: int, weight: np.ndarray) -> np.ndarray:
        ok = partner & (g_motif[:, None, :] == partner_motif)
        return (np.where(ok, g_aff[:, None, :] * weight, 0.0)).sum(axis=2)

    h = helical(dist, syn["helical_period"], syn["helical_decay"])
    boost_nanog = 1 + syn["nanog_nanog"] * partner_sum(NANOG, h) + syn["nanog_sox2"] * partner_sum(SOX2, h)
    boost_os = 1 + syn["oct4sox2"] * partner_sum(OS, np.exp(-dist / syn["oct4sox2_decay"]))

    # Accessibility: collaborative opening by the summed affinity of the locus' motifs.
    total = g_aff.sum(axis=1)
    hill, kacc = cfg["accessibility_hill"], cfg["accessibility_k"]
    access_locus = total**hill / (total**hill + kacc**hill)

    w = SPECIFICITY[:, g_motif.clip(0)] * g_aff[None]  # (TF, loci, k)
    w[T_NANOG] *= boost_nanog * boost_os
    w[T_KLF4] *= boost_os
    kd = np.array([cfg["tfs"][t]["kd"] for t in TFS])[:, None, None]
    return access_locus[None, :, None] * w / (w + kd), access_locus
