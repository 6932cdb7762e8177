"""Data: downloads, summit-centred peak windows, the training dataset (and bundled JASPAR motifs)."""
