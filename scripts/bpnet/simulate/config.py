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

import copy
import functools
from pathlib import Path
from typing import Any, Mapping

import yaml
from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import best_match
from referencing import Registry, Resource

from bpnet.config_check import key_path
from bpnet.errors import BPNetInputError

SCHEMA_PATH = Path(__file__).resolve().parents[3] / "workflow" / "schemas" / "config.schema.yaml"
SECTION = "simulation"


def _fill_defaults(validator, properties, instance, schema):
    """The ``properties`` keyword that first sets missing properties to their schema default,
    as ``snakemake.utils.validate`` does (defaults are copied, so the cached schema stays as is)."""
    if validator.is_type(instance, "object"):
        for name, subschema in properties.items():
            if "default" in subschema:
                instance.setdefault(name, copy.deepcopy(subschema["default"]))
    yield from Draft202012Validator.VALIDATORS["properties"](validator, properties, instance, schema)


def _strict_integer(checker, instance) -> bool:
    """An integer is an ``int`` (not ``100.0``, which JSON Schema also counts): the values index
    arrays and seed generators."""
    return isinstance(instance, int) and not isinstance(instance, bool)


_Validator = validators.extend(
    Draft202012Validator,
    {"properties": _fill_defaults},
    type_checker=Draft202012Validator.TYPE_CHECKER.redefine("integer", _strict_integer),
)


@functools.cache
def _validator() -> Draft202012Validator:
    """A validator of the ``simulation`` section (its references into the whole schema resolve)."""
    schema = yaml.safe_load(SCHEMA_PATH.read_text())
    uri = SCHEMA_PATH.as_uri()
    registry = Registry().with_resource(uri, Resource.from_contents(schema))
    return _Validator({"$ref": f"{uri}#/properties/{SECTION}"}, registry=registry)


def resolve_config(user: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The ``simulation`` config section ``user`` (partial, or None) with defaults filled in.

    Every value is checked against the schema; a violation raises :class:`BPNetInputError` with
    one line naming the key (``config key simulation.tfs.Oct4.depth: -1 is less than ...``). Two
    checks the schema cannot express follow: ``nanog_pair_spacing`` is ``[min, max]`` with
    ``min <= max`` and the ``motif_mix`` weights have a positive sum. ``user`` is not modified.
    """
    cfg = copy.deepcopy(dict(user)) if user is not None else {}
    error = best_match(_validator().iter_errors(cfg))
    if error is not None:
        message = " ".join(str(error.message).split())
        raise BPNetInputError(f"config key {key_path((SECTION, *error.absolute_path))}: {message}")
    lo, hi = cfg["nanog_pair_spacing"]
    if lo > hi:
        raise BPNetInputError(f"config key {SECTION}.nanog_pair_spacing: must be [min, max] bp with min <= max, got {[lo, hi]}")
    if sum(cfg["motif_mix"].values()) <= 0:
        raise BPNetInputError(f"config key {SECTION}.motif_mix: the weights must have a positive sum, got {cfg['motif_mix']}")
    return cfg
