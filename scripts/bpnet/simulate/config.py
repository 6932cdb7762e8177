"""The ``simulation`` config section: checked, with its defaults filled in, from its JSON schema.

The schema's ``simulation`` section in ``workflow/schemas/config.schema.yaml`` documents every
key and holds every default and range; it is the only place of them. Snakemake validates the
workflow's config against the whole schema (and fills the defaults) before any job runs;
:func:`resolve_config` does the same for the section alone, so the library called directly (tests,
benchmarks) gets the same settings.

The section stays in the workflow schema rather than in a file of this package referenced with
``$ref``: Snakemake 9's ``validate`` resolves such a reference, but does not fill the defaults of
a schema file that names its ``$schema`` (jsonschema switches to the plain validator there), and
without ``$schema`` the reference does not resolve.
"""

from __future__ import annotations

from typing import Any, Mapping

from bpnet.config_check import resolve_section
from bpnet.errors import BPNetInputError

SECTION = "simulation"


def resolve_config(user: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The ``simulation`` config section ``user`` (partial, or None) with defaults filled in.

    Every value is checked against the schema; a violation raises :class:`BPNetInputError` with
    one line naming the key (``config key simulation.tfs.Oct4.depth: -1 is less than ...``). Two
    checks the schema cannot express follow: ``nanog_pair_spacing`` is ``[min, max]`` with
    ``min <= max`` and the ``motif_mix`` weights have a positive sum. ``user`` is not modified.
    """
    cfg = resolve_section((SECTION,), user)
    lo, hi = cfg["nanog_pair_spacing"]
    if lo > hi:
        raise BPNetInputError(f"config key {SECTION}.nanog_pair_spacing: must be [min, max] bp with min <= max, got {[lo, hi]}")
    if sum(cfg["motif_mix"].values()) <= 0:
        raise BPNetInputError(f"config key {SECTION}.motif_mix: the weights must have a positive sum, got {cfg['motif_mix']}")
    return cfg
