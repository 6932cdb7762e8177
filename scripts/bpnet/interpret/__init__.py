"""Interpretation of a trained model: what it learned, and how that compares with the truth.

The modules, in the order the rules use them (``workflow/rules/interpret.smk``):
:mod:`~bpnet.interpret.contributions` (rule ``contrib_scores``: DeepLIFT / DeepSHAP contribution
scores against dinucleotide-shuffled references, the choice of windows, contrib.npz and the
contribution bigWigs); :mod:`~bpnet.interpret.meme` (motif matrices: MEME files of known motifs,
information content, the similarity of two motifs); :mod:`~bpnet.interpret.modisco` (rule
``motif_discovery``: TF-MoDISco lite per task, its trimmed patterns, their MEME files, logos and
best known motif); :mod:`~bpnet.interpret.instances` (rule ``motif_instances``: CWM scanning of
the contributions for motif instances); :mod:`~bpnet.interpret.syntax` (rule ``marginalize``:
in-silico marginalisation of motif pairs by distance, and the periodicity of the curves);
:mod:`~bpnet.interpret.truth` (rule ``interpretation_check``: motifs, instances and syntax against
what the simulator planted). Each imports only the ones before it (``meme`` and
``contributions`` none), so there is no import cycle.
"""
