"""Core I/O: DNA sequence, bigWig tracks, the .npz stores."""
