"""The simulated OSKN ChIP-nexus dataset with known ground truth (rule ``simulate_dataset``).

From ``simulation.seed`` alone, :func:`bpnet.simulate.generate.simulate_dataset` writes a complete,
deterministic dataset laid out like the paper's data, so the same downstream config keys serve both::

    genome.fa, genome.fa.fai, genome.chrom.sizes          chromosomes chr1..chrN (N >= 10)
    chip-nexus/{Oct4,Sox2,Nanog,Klf4}/counts.{pos,neg}.bw  5'-end counts per strand (integers)
    chip-nexus/{Oct4,Sox2,Nanog,Klf4}/idr-optimal-set.narrowPeak.gz   peaks called from the counts
    chip-nexus/patchcap/counts.{pos,neg}.bw               PATCH-CAP-like control (bias) track
    truth/instances.tsv.gz                                every planted motif instance
    truth/syntax.tsv.gz                                   planted effect of every motif pair vs distance
    truth/{TF}/expected.{pos,neg}.bw                      noise-free expected 5'-end rate

The modules, each using only those listed above it:

- :mod:`~bpnet.simulate.config`: the ``simulation`` config section, checked and with defaults
  filled from its JSON schema (the schema's ``simulation`` section is the only place of the
  defaults).
- :mod:`~bpnet.simulate.genome`: chromosome sizes and the background sequence (step 1 below).
- :mod:`~bpnet.simulate.motifs`: the five OSKN motifs, PWM sampling and affinity (step 3).
- :mod:`~bpnet.simulate.binding`: the TFs, who binds which motif, accessibility and soft syntax
  -> occupancy (steps 4-5).
- :mod:`~bpnet.simulate.loci`: enhancers and isolated sites placed, their motifs laid out and
  planted, the TFs bound (step 2).
- :mod:`~bpnet.simulate.tracks`: the ChIP-nexus signal, expected rates and sampled counts
  (steps 6-7).
- :mod:`~bpnet.simulate.peaks`: MACS-like peak calling on the counts (step 8).
- :mod:`~bpnet.simulate.truth`: the truth tables (planted instances, planted syntax).
- :mod:`~bpnet.simulate.files`: the output layout (:func:`~bpnet.simulate.files.output_paths`)
  and the writers.
- :mod:`~bpnet.simulate.summary`: the realism figures (peaks, reads per peak, false and missed
  peaks, the oracle's scores).
- :mod:`~bpnet.simulate.generate`: :func:`~bpnet.simulate.generate.simulate_dataset`, every stage
  in order, the files and the logged summary.
- :mod:`~bpnet.simulate.variants`: :func:`~bpnet.simulate.variants.simulate_variants` (rule
  ``simulate_variants``, asked for by path): ``truth/variants.vcf.gz`` and
  ``truth/variant_effects.tsv.gz``, variants whose planted effect follows from the stages above
  (the loci and cut bias made again from the seed, the expected tracks of the reference and the
  alternative sequence).

The generative model (every step is a deterministic function of the sequence except the read
sampling, so a sequence model can in principle reach the oracle):

1. **Genome.** Chromosome lengths follow the mouse autosomes (mm10 chr1..chrN, scaled), so the
   paper's split (valid chr2-4, test chr1/8/9) keeps about 60 % of the genome for training. The
   background has a realistic GC content with 100 kb isochores of varying GC, and CpG depletion
   (a share of CpG is deaminated to TpG/CpA, as in mammalian genomes).
2. **Loci.** Enhancers (clusters of motifs) and isolated single motifs are placed at least 2 kb
   apart. An enhancer holds a geometric number of strong motif instances (sampled from the
   JASPAR PWMs of ``data/oskn_motifs.meme``, sharpened), Poisson decoys (sampled from the PWM mixed with
   background) and, in a share of enhancers, a planted Nanog pair at a chosen spacing, laid out
   with random gaps; instances never overlap.
3. **Affinity** of an instance is ``exp(-(LLR_max - LLR) / (T * D))`` of its planted sequence
   (log-odds against the genome background; ``D`` is the mean deficit of PWM samples, so that
   motifs of any length have comparable affinities; ``T = affinity_temperature``).
4. **Accessibility** of a locus is a Hill function of the summed affinity of its motifs: motifs
   open chromatin collaboratively, so isolated motifs stay mostly closed and unbound.
5. **Soft syntax.** The Oct4-Sox2 composite binds Oct4 and Sox2 (solo Oct4/Sox2 motifs bind
   more weakly). Nanog at a Nanog motif is boosted by another Nanog motif or a Sox2 motif at
   helical spacing: ``1 + b * a_partner * exp(-d / decay) * (1 + cos(2 pi d / period)) / 2``.
   An Oct4-Sox2 motif raises Nanog and Klf4 binding nearby (``1 + b * a * exp(-d / reach)``).
   Occupancy ``= accessibility * w / (w + kd)`` with ``w`` = specificity x affinity x boosts.
6. **ChIP-nexus signal.** A site of TF t yields ``depth_t * occupancy`` expected reads, half per
   strand: + strand 5' ends peak ``footprint_t / 2`` upstream of the motif centre, - strand ends
   downstream (a sharp Gaussian mode plus a broader Laplace tail), redistributed by a 4-mer
   exonuclease cut bias. Accessible loci add a broad nonspecific signal to every track and to the
   PATCH-CAP control. A constant genome-wide background is added.
7. **Noise** is in the read sampling only: a gamma factor per (locus, track) (the region-level
   overdispersion of replicate ChIP) and a negative binomial per position.
8. **Peaks** are called from the noisy counts like MACS: a Poisson test of the reads in a sliding
   window against max(genome-wide, 10 kb local) background, nearby runs merged, summit = the
   maximum of the 31 bp smoothed two-strand signal. False and missed peaks arise naturally.

The truth table lists every planted instance (decoys and isolated sites included) with its
affinity, accessibility, per-TF occupancy and whether it is bound. The expected-rate tracks are
the noise-free mean of the observed counts, so evaluation can score them as the "oracle" model.
:func:`~bpnet.simulate.generate.simulate_dataset` logs, and returns, the figures that check the
realism: peaks per TF, reads per peak, the shares of false and missed peaks, and the oracle's count
Pearson and profile auPRC on the test chromosomes (the defaults put them in the paper's replicate
range).

Randomness: one :class:`numpy.random.SeedSequence` from ``simulation.seed`` spawns an independent
stream per stage (genome, loci, motifs, cut bias, TF reads, control reads), so the same seed gives
byte-identical files, and changing, say, the noise leaves the genome and the truth unchanged.

Memory (issue #17: the paper's 2.7 Gb genome): no per-base array of the whole genome is ever made.
The loci and their motifs are sampled first (they need only the chromosome sizes); then each
chromosome's sequence is drawn, planted, written to the FASTA and dropped, keeping only the 2 kb
around each locus (all the cut bias reads). The tracks are sparse and made one TF at a time: its
peaks are called chromosome by chromosome in dense pieces of a few Mb, and its bigWigs written from
the sparse tracks, before the next TF's draws. The draws are those of the whole-genome order, so
the files are the same as from the whole genome in memory (``tests/test_simulate.py`` checks it).
"""
