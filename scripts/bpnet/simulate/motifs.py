"""The five OSKN motifs of the simulation: their JASPAR PFMs, PWM sampling and affinity."""

from __future__ import annotations

from importlib import resources

import numpy as np

from bpnet.interpret.meme import read_meme_motifs

# Motif names used in the truth table -> JASPAR IDs in data/oskn_motifs.meme.
MOTIF_IDS = {
    "Oct4-Sox2": "MA0142.1",
    "Oct4": "MA1115.1",
    "Sox2": "MA0143.5",
    "Nanog": "MA2339.1",
    "Klf4": "MA0039.5",
}
MOTIFS = tuple(MOTIF_IDS)
OS, OCT4, SOX2, NANOG, KLF4 = range(len(MOTIFS))  # motif indices


def load_motifs() -> dict[str, np.ndarray]:
    """The five OSKN PFMs ``(width, 4)`` of the package's ``data/oskn_motifs.meme``, keyed by
    :data:`MOTIFS` (read with :func:`read_meme_motifs`)."""

    with resources.as_file(resources.files("bpnet").joinpath("data/oskn_motifs.meme")) as path:
        by_id = read_meme_motifs(path)
    return {name: by_id[jaspar_id] for name, jaspar_id in MOTIF_IDS.items()}


def background_probs(gc: float) -> np.ndarray:
    """Base probabilities ``(4,)`` A, C, G, T of a genome with GC content ``gc``."""
    return np.array([(1 - gc) / 2, gc / 2, gc / 2, (1 - gc) / 2])


def affinity(codes: np.ndarray, pfm: np.ndarray, background: np.ndarray, temperature: float) -> np.ndarray:
    """Relative affinity ``(n,)`` of sequences ``codes`` ``(n, width)`` (motif orientation).

    ``exp(-(LLR_max - LLR) / (temperature * D))``: LLR is the log-odds of the PFM against the
    background (pseudocount 0.001), so the consensus has affinity 1; ``D`` is the mean deficit
    ``LLR_max - LLR`` of sequences drawn from the PFM, so a typical PFM sample has affinity about
    ``exp(-1 / temperature)`` whatever the motif's length and information content.
    """
    logodds = np.log((pfm + 1e-3) / (1 + 4e-3)) - np.log(background)[None, :]
    deficit_per_base = logodds.max(axis=1, keepdims=True) - logodds
    mean_deficit = float((pfm / pfm.sum(axis=1, keepdims=True) * deficit_per_base).sum())
    deficit = deficit_per_base[np.arange(pfm.shape[0])[None, :], codes].sum(axis=1)
    return np.exp(-deficit / (temperature * mean_deficit))


def sample_pwm(rng: np.random.Generator, probs: np.ndarray, n: int) -> np.ndarray:
    """``n`` sequences ``(n, width)`` uint8 codes drawn column by column from ``probs`` ``(width, 4)``."""
    cum = np.cumsum(probs / probs.sum(axis=1, keepdims=True), axis=1)
    u = rng.random((n, probs.shape[0]))
    return np.minimum((u[:, :, None] > cum[None, :, :]).sum(axis=2), 3).astype(np.uint8)
