"""The reproducible BPNet pipeline: the shared package every rule script and test imports.

Modules
-------
model       the BPNet network (Avsec et al. 2021), its config, loss and postprocess
weights     safetensors checkpoints; import of the official Keras h5 and MultiMolecule weights
sequence    one-hot encoding, reverse complement, reading windows from a FASTA
tracks      bigWig reading (block-wise, many windows at once) and writing; chrom sizes
errors      ``BPNetInputError``: the one exception type for a user mistake
runner      the wrapper every ``scripts/*.py`` uses (logging to the rule's log, clear errors)
"""

__version__ = "0.1.0"
