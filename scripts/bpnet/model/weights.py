"""Weights: the project's safetensors checkpoints and imports of the published formats.

- :func:`save_checkpoint` / :func:`load_checkpoint`: our own format, a ``.safetensors`` file whose
  metadata holds the :class:`~bpnet.model.network.BPNetConfig` as JSON (no pickle anywhere on load).
- :func:`load_keras_h5`: the official Keras 2.2 ``bpnet.model.h5`` (Zenodo 4294904). Layers under
  ``model_weights``: ``conv1d_1`` (stem), ``conv1d_2`` .. ``conv1d_10`` (dilated, in order),
  ``conv2d_transpose_1`` .. ``_4`` (profile heads, task order), ``dense_1/3/5/7`` (count heads).
  Kernel layouts: Conv1D ``(k, in, out)`` -> torch ``(out, in, k)``; Conv2DTranspose
  ``(k, 1, out, in)`` -> torch ConvTranspose1d ``(in, out, k)``; Dense ``(in, out)`` -> ``(out, in)``.
  Keras' stride-1 'same' transposed convolution and torch's ``ConvTranspose1d(padding=(k-1)//2)``
  compute the same sum (no kernel flip).
- :func:`load_multimolecule`: a MultiMolecule ``BPNetForProfilePrediction`` state dict, whose stem
  has 5 input channels (A, C, G, T, N); we keep A, C, G, T (our N is all zeros, so the N column
  never contributes).
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any, Mapping, Sequence

import h5py
import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save

from bpnet.errors import BPNetInputError
from bpnet.io.npz import read_npz
from bpnet.model.network import DEFAULT_TASKS, BPNet, BPNetConfig

FORMAT = "bpnet-pipeline"
FORMAT_VERSION = "1"


# --------------------------------------------------------------------------------------------
# Our checkpoints
# --------------------------------------------------------------------------------------------


def save_checkpoint(model: BPNet, path: str | Path, metadata: dict | None = None) -> None:
    """Save weights and config to ``path`` (safetensors); ``metadata`` is stored as JSON strings.

    Identical models and metadata give byte-identical files: every JSON value is written with
    sorted keys, and the safetensors header (whose metadata map the Rust writer emits in hash
    order, different from run to run) is rewritten with the metadata keys sorted.
    """

    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "config": json.dumps(model.config.to_dict(), sort_keys=True),
    }
    for key, value in (metadata or {}).items():
        meta[str(key)] = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    Path(path).write_bytes(_canonical_safetensors(save(state, metadata=meta)))


def _canonical_safetensors(raw: bytes) -> bytes:
    """``raw`` with its JSON header in a fixed order: ``__metadata__`` (keys sorted), then the tensors
    by name. Data offsets are relative to the end of the header, so the tensor bytes are unchanged."""
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + n])
    ordered = {}
    if "__metadata__" in header:
        ordered["__metadata__"] = {k: header["__metadata__"][k] for k in sorted(header["__metadata__"])}
    for name in sorted(k for k in header if k != "__metadata__"):
        ordered[name] = header[name]
    text = json.dumps(ordered, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * (-len(text) % 8)  # safetensors pads the header to 8 bytes with spaces
    return len(text).to_bytes(8, "little") + text + raw[8 + n :]


def read_checkpoint_metadata(path: str | Path) -> dict[str, str]:
    """The metadata dict of a checkpoint (config JSON, format, anything saved with it)."""

    path = Path(path)
    if not path.exists():
        raise BPNetInputError(f"checkpoint {path} does not exist")
    try:
        with safe_open(str(path), framework="pt") as f:
            return dict(f.metadata() or {})
    except Exception as err:  # safetensors raises its own error types for corrupt headers
        raise BPNetInputError(f"cannot read {path} as a safetensors checkpoint: {err}") from err


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu",
                    tasks: Sequence[str] | None = None, tasks_of: str = "data.tasks") -> BPNet:
    """Load a model saved by :func:`save_checkpoint`. With ``tasks``, a model that predicts other
    tasks (or the same in another order) is an error naming ``tasks_of`` (what ``tasks`` came from:
    the config key, or a dataset file) and the remedy."""

    meta = read_checkpoint_metadata(path)
    if meta.get("format") != FORMAT or "config" not in meta:
        raise BPNetInputError(
            f"{path} is a safetensors file but not a bpnet-pipeline checkpoint (no 'config' metadata); "
            "for MultiMolecule weights use load_multimolecule"
        )
    config = BPNetConfig.from_dict(json.loads(meta["config"]))
    if tasks is not None and list(config.tasks) != [str(t) for t in tasks]:
        raise BPNetInputError(
            f"checkpoint {path} predicts tasks {list(config.tasks)}, but {tasks_of} has {[str(t) for t in tasks]}; "
            "retrain the model (or rebuild the dataset) for these tasks"
        )
    model = BPNet(config)
    state = load_file(str(path), device=str(map_location))
    _load_state(model, state, str(path))
    return model


def _load_state(model: torch.nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise BPNetInputError(
            f"{source}: weights do not match the model: missing {missing[:5]}, unexpected {unexpected[:5]}"
        )
    for key, tensor in state.items():
        if tuple(tensor.shape) != tuple(expected[key].shape):
            raise BPNetInputError(
                f"{source}: weight {key} has shape {tuple(tensor.shape)}, the model expects "
                f"{tuple(expected[key].shape)}"
            )
    model.load_state_dict(state)


_ARCH_KEYS = ("hidden_size", "stem_kernel", "num_dilated_layers", "dilated_kernel", "profile_kernel")


def _short(names: list[str], n: int = 8) -> str:
    """A short, readable list of names for an error message."""
    more = f" (and {len(names) - n} more)" if len(names) > n else ""
    return ", ".join(names[:n]) + more


def _check_expected(config: BPNetConfig, expected: dict | None, source: str, layer_name) -> None:
    """The imported architecture must be the configured one (``expected``: the config's ``model``
    section; only the architecture keys present are compared). ``layer_name(i)`` is the file's
    name of dilated layer ``i`` (0-based), so a missing or extra layer is named."""
    if not expected:
        return
    want = expected.get("num_dilated_layers")
    have = config.num_dilated_layers
    if want is not None and int(want) != have:
        if int(want) > have:
            names = [layer_name(i) for i in range(have, int(want))]
            raise BPNetInputError(
                f"{source}: the configured network has {want} dilated layers (model.num_dilated_layers), "
                f"the file has {have}: missing layer(s) {_short(names)}"
            )
        names = [layer_name(i) for i in range(int(want), have)]
        raise BPNetInputError(
            f"{source}: the configured network has {want} dilated layers (model.num_dilated_layers), "
            f"the file has {have}: extra layer(s) {_short(names)}"
        )
    for key in _ARCH_KEYS:
        if expected.get(key) is not None and int(expected[key]) != getattr(config, key):
            raise BPNetInputError(
                f"{source}: model.{key} is {expected[key]} in the config but {getattr(config, key)} in the file"
            )


# --------------------------------------------------------------------------------------------
# The official Keras h5
# --------------------------------------------------------------------------------------------


def _layer_number(name: str) -> int:
    match = re.search(r"_(\d+)$", name)
    return int(match.group(1)) if match else 0


def _h5_layer_weights(group, layer: str, path: str, used: set[str] | None = None) -> dict[str, np.ndarray]:
    """``{'kernel': ..., 'bias': ...}`` of a Keras layer group, wherever the datasets sit below it.

    The names (relative to ``group``) of the datasets read are added to ``used``."""

    found: dict[str, np.ndarray] = {}

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset):
            leaf = name.rsplit("/", 1)[-1].split(":")[0]
            if leaf in ("kernel", "bias") and leaf not in found:
                found[leaf] = np.asarray(obj[()], dtype=np.float32)
                if used is not None:
                    used.add(f"{layer}/{name}")

    group[layer].visititems(visit)
    if "kernel" not in found:
        raise BPNetInputError(f"{path}: layer {layer!r} has no kernel:0 dataset")
    return found


def _h5_datasets(group) -> list[str]:
    """Names (relative to ``group``) of every dataset below it."""

    names: list[str] = []

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset):
            names.append(name)

    group.visititems(visit)
    return names


def _check_h5_listed(root, path: str) -> None:
    """Every layer in Keras' ``layer_names`` attribute, and every weight in each layer's
    ``weight_names``, must be in the file (Keras writes both; a file without them is not checked)."""

    def text(v) -> str:
        return v.decode("utf-8") if isinstance(v, bytes) else str(v)

    missing = []
    for layer in (text(n) for n in root.attrs.get("layer_names", [])):
        if layer not in root:
            missing.append(layer)
            continue
        missing += [f"{layer}/{text(w)}" for w in root[layer].attrs.get("weight_names", []) if text(w) not in root[layer]]
    if missing:
        raise BPNetInputError(f"{path}: layer(s)/weight(s) listed in the file but missing: {_short(missing)}")


def load_keras_h5(
    path: str | Path, tasks: tuple[str, ...] | list[str] | None = None, expected: dict | None = None
) -> BPNet:
    """Import the official Keras BPNet (``bpnet.model.h5`` layout) into a :class:`BPNet`.

    The architecture is read from the file: hidden size and stem kernel from ``conv1d_1``, the
    dilated layers from the following ``conv1d_*`` layers with kernel 3 x hidden x hidden, the
    profile kernel from ``conv2d_transpose_1``, one task per ``conv2d_transpose_*`` layer, count
    heads from the ``dense_*`` layers of shape (hidden, strands) in numeric order. ``tasks``
    names the heads (default: Oct4, Sox2, Nanog, Klf4 for a 4-task file, else task0, task1, ...).
    Layers for control inputs of older model files are not imported: 1-wide ``conv1d_*`` after
    the dilated layers and ``dense_*`` layers mapping to ``strands`` from anything but the hidden
    size. Every other weight in the file must be imported, and every layer the file's
    ``layer_names``/``weight_names`` attributes list must be present; ``expected`` (the config's
    ``model`` section) must match the imported architecture. Anything else is a
    :class:`BPNetInputError` naming the layers or tensors.
    """

    path = Path(path)
    if not path.exists():
        raise BPNetInputError(f"Keras model file {path} does not exist")
    try:
        f = h5py.File(path, "r")
    except OSError as err:
        raise BPNetInputError(f"cannot open {path} as an HDF5 file: {err}") from err
    with f:
        root = f["model_weights"] if "model_weights" in f else f
        layers = list(root.keys())
        _check_h5_listed(root, str(path))
        used: set[str] = set()
        if "conv1d_1" not in layers:
            raise BPNetInputError(
                f"{path}: layer 'conv1d_1' (the stem convolution) is missing; expected the official "
                f"bpnet.model.h5 layout with layers conv1d_1..conv1d_10, conv2d_transpose_1..4, dense_1/3/5/7 "
                f"(found: {', '.join(sorted(layers)[:12])})"
            )
        stem = _h5_layer_weights(root, "conv1d_1", str(path), used)
        stem_k, in_ch, hidden = stem["kernel"].shape
        if in_ch != 4:
            raise BPNetInputError(f"{path}: conv1d_1 expects {in_ch} input channels, BPNet uses 4 (A, C, G, T)")
        conv_names = sorted((n for n in layers if re.fullmatch(r"conv1d_\d+", n) and n != "conv1d_1"), key=_layer_number)
        dilated = []
        candidates = {}
        for name in conv_names:
            layer_used: set[str] = set()
            w = _h5_layer_weights(root, name, str(path), layer_used)
            if w["kernel"].ndim == 3 and w["kernel"].shape[1:] == (hidden, hidden):
                dilated.append((name, w))
                used |= layer_used
            else:
                candidates[name] = w["kernel"].shape
        # The dilated layers must be consecutive: conv1d_2 .. conv1d_{n+1}.
        for i, (name, _) in enumerate(dilated):
            if name != f"conv1d_{i + 2}":
                raise BPNetInputError(f"{path}: layer 'conv1d_{i + 2}' (dilated layer {i + 1}) is missing")
        if not dilated:
            raise BPNetInputError(f"{path}: layer 'conv1d_2' (the first dilated layer) is missing")
        profile_names = sorted((n for n in layers if re.fullmatch(r"conv2d_transpose_\d+", n)), key=_layer_number)
        if not profile_names:
            raise BPNetInputError(f"{path}: layer 'conv2d_transpose_1' (the first profile head) is missing")
        first_profile = _h5_layer_weights(root, profile_names[0], str(path))
        prof_k, _, strands, prof_in = first_profile["kernel"].shape
        dense_names = sorted((n for n in layers if re.fullmatch(r"dense_\d+", n)), key=_layer_number)
        counts = []
        for name in dense_names:
            layer_used = set()
            w = _h5_layer_weights(root, name, str(path), layer_used)
            if w["kernel"].shape == (hidden, strands):
                counts.append((name, w))
                used |= layer_used
            else:
                candidates[name] = w["kernel"].shape
        # One task per head pair; a head missing on either side is an error, not a smaller model.
        n_tasks = max(len(profile_names), len(counts))
        for i in range(n_tasks):
            if i >= len(profile_names) or profile_names[i] != f"conv2d_transpose_{i + 1}":
                raise BPNetInputError(f"{path}: layer 'conv2d_transpose_{i + 1}' (profile head {i + 1}) is missing")
        profiles = [_h5_layer_weights(root, n, str(path), used) for n in profile_names]
        if len(counts) != n_tasks:
            expected = ", ".join(f"dense_{2 * i + 1}" for i in range(n_tasks))
            got = ", ".join(n for n, _ in counts) or "none"
            raise BPNetInputError(
                f"{path}: count head layer(s) missing: expected {n_tasks} dense layers of shape "
                f"({hidden}, {strands}) ({expected}), found {got}"
            )
        # Every tensor in the file is imported, or belongs to a control-input layer (not imported).
        last_dilated = _layer_number(dilated[-1][0])
        control = {
            name
            for name, shape in candidates.items()
            if (name.startswith("conv1d_") and _layer_number(name) > last_dilated and len(shape) == 3
                and shape[0] == 1 and shape[2] == strands)
            or (name.startswith("dense_") and len(shape) == 2 and shape[0] != hidden and shape[1] == strands)
        }
        ignored_top = {"optimizer_weights"} if root is f else set()
        leftover = [
            n for n in _h5_datasets(root)
            if n not in used and n.split("/", 1)[0] not in control and n.split("/", 1)[0] not in ignored_top
        ]
        if leftover:
            raise BPNetInputError(
                f"{path}: weight tensor(s) that map to no layer of the network: {_short(sorted(leftover))}"
            )

    if tasks is None:
        tasks = DEFAULT_TASKS if n_tasks == 4 else tuple(f"task{i}" for i in range(n_tasks))
    if len(tasks) != n_tasks:
        raise BPNetInputError(f"{path}: the file has {n_tasks} task heads but {len(tasks)} task names were given")
    config = BPNetConfig(
        hidden_size=int(hidden),
        stem_kernel=int(stem_k),
        num_dilated_layers=len(dilated),
        dilated_kernel=int(dilated[0][1]["kernel"].shape[0]),
        profile_kernel=int(prof_k),
        tasks=tuple(tasks),
        num_strands=int(strands),
        extra={"imported_from": f"keras-h5:{path.name}"},
    )
    _check_expected(config, expected, str(path), lambda i: f"conv1d_{i + 2}")
    model = BPNet(config)
    state: dict[str, torch.Tensor] = {}

    def t(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(a))

    state["backbone.stem.conv.weight"] = t(stem["kernel"].transpose(2, 1, 0))
    state["backbone.stem.conv.bias"] = t(stem["bias"])
    for i, (_, w) in enumerate(dilated):
        state[f"backbone.layers.{i}.conv.weight"] = t(w["kernel"].transpose(2, 1, 0))
        state[f"backbone.layers.{i}.conv.bias"] = t(w["bias"])
    for i, w in enumerate(profiles):
        state[f"profile_heads.{i}.weight"] = t(w["kernel"][:, 0].transpose(2, 1, 0))  # (in, out, k)
        state[f"profile_heads.{i}.bias"] = t(w["bias"])
    for i, (_, w) in enumerate(counts):
        state[f"count_heads.{i}.weight"] = t(w["kernel"].T)
        state[f"count_heads.{i}.bias"] = t(w["bias"])
    _load_state(model, state, str(path))
    return model


# --------------------------------------------------------------------------------------------
# MultiMolecule
# --------------------------------------------------------------------------------------------


def load_multimolecule(
    source: str | Path | dict[str, torch.Tensor],
    tasks: tuple[str, ...] | list[str] | None = None,
    expected: dict | None = None,
) -> BPNet:
    """Import a MultiMolecule ``BPNetForProfilePrediction`` state dict (or its .safetensors file).

    Keys (any prefix before ``encoder.``): ``encoder.stem.conv.*`` (stem, 5 input channels
    ACGTN: the N column is dropped), ``encoder.layer.{i}.conv.*``,
    ``profile_count_head.profile.{t}.*`` and ``profile_count_head.count.{t}.*``. Every tensor
    must be one of these (a left-over tensor is an error naming it), and ``expected`` (the
    config's ``model`` section) must match the imported architecture.
    """
    name = "MultiMolecule state dict"
    if not isinstance(source, dict):

        path = Path(source)
        name = str(path)
        if not path.exists():
            raise BPNetInputError(f"MultiMolecule weights {path} do not exist")
        if path.suffix != ".safetensors":
            raise BPNetInputError(f"{path}: expected a .safetensors file (pickled .bin files are not loaded)")
        source = load_file(str(path))
    state = dict(source)
    stem_keys = [k for k in state if k.endswith("encoder.stem.conv.weight")]
    if len(stem_keys) != 1:
        raise BPNetInputError(f"{name}: no 'encoder.stem.conv.weight' found; not a MultiMolecule BPNet state dict")
    prefix = stem_keys[0][: -len("encoder.stem.conv.weight")]
    head_prefix = prefix[: -len("model.")] if prefix.endswith("model.") else prefix

    used: set[str] = set()

    def get(key: str) -> torch.Tensor:
        if key not in state:
            raise BPNetInputError(f"{name}: weight {key!r} is missing")
        used.add(key)
        return state[key].float()

    stem_w = get(prefix + "encoder.stem.conv.weight")
    hidden, in_ch, stem_k = stem_w.shape
    if in_ch not in (4, 5):
        raise BPNetInputError(f"{name}: the stem has {in_ch} input channels; expected 5 (ACGTN) or 4 (ACGT)")
    n_layers = len({int(m.group(1)) for k in state if (m := re.match(re.escape(prefix) + r"encoder\.layer\.(\d+)\.", k))})
    n_tasks = len({int(m.group(1)) for k in state if (m := re.match(re.escape(head_prefix) + r"profile_count_head\.profile\.(\d+)\.", k))})
    if n_tasks == 0:
        raise BPNetInputError(f"{name}: no profile_count_head.profile.* weights (a backbone-only state dict?)")
    prof_w = get(f"{head_prefix}profile_count_head.profile.0.weight")
    if tasks is None:
        tasks = DEFAULT_TASKS if n_tasks == 4 else tuple(f"task{i}" for i in range(n_tasks))
    if len(tasks) != n_tasks:
        raise BPNetInputError(f"{name}: {n_tasks} task heads but {len(tasks)} task names were given")
    first_layer = get(prefix + "encoder.layer.0.conv.weight") if n_layers else None
    config = BPNetConfig(
        hidden_size=int(hidden),
        stem_kernel=int(stem_k),
        num_dilated_layers=n_layers,
        dilated_kernel=int(first_layer.shape[2]) if first_layer is not None else 3,
        profile_kernel=int(prof_w.shape[2]),
        tasks=tuple(tasks),
        num_strands=int(prof_w.shape[1]),
        extra={"imported_from": "multimolecule"},
    )
    _check_expected(config, expected, name, lambda i: f"{prefix}encoder.layer.{i}")
    model = BPNet(config)
    ours = {
        "backbone.stem.conv.weight": stem_w[:, :4, :],
        "backbone.stem.conv.bias": get(prefix + "encoder.stem.conv.bias"),
    }
    for i in range(n_layers):
        for p in ("weight", "bias"):
            ours[f"backbone.layers.{i}.conv.{p}"] = get(f"{prefix}encoder.layer.{i}.conv.{p}")
    for i in range(n_tasks):
        for p in ("weight", "bias"):
            ours[f"profile_heads.{i}.{p}"] = get(f"{head_prefix}profile_count_head.profile.{i}.{p}")
            ours[f"count_heads.{i}.{p}"] = get(f"{head_prefix}profile_count_head.count.{i}.{p}")
    leftover = sorted(set(state) - used)
    if leftover:
        raise BPNetInputError(f"{name}: weight tensor(s) that map to no layer of the network: {_short(leftover)}")
    _load_state(model, {k: v.contiguous() for k, v in ours.items()}, name)
    return model


def import_weights(
    path: str | Path, tasks: list[str] | tuple[str, ...], expected: dict | None = None
) -> BPNet:
    """Any supported weights file as a :class:`BPNet` predicting ``tasks`` (in that order).

    ``.h5``: the official Keras model; ``.safetensors``: this pipeline's checkpoint, else a
    MultiMolecule state dict. The file's number of task heads must equal ``len(tasks)``, and its
    architecture the configured one (``expected``: the config's ``model`` section), layer for layer.
    """
    path = Path(path)
    if path.suffix in (".h5", ".hdf5"):
        return load_keras_h5(path, tasks=tuple(tasks), expected=expected)
    if path.suffix == ".safetensors":
        if read_checkpoint_metadata(path).get("format") == FORMAT:
            model = load_checkpoint(path)
            if tuple(model.config.tasks) != tuple(tasks):
                raise BPNetInputError(f"checkpoint {path} predicts tasks {model.config.tasks}, the config's data.tasks are {tuple(tasks)}")
            _check_expected(model.config, expected, str(path), lambda i: f"backbone.layers.{i}")
            return model
        return load_multimolecule(path, tasks=tuple(tasks), expected=expected)
    raise BPNetInputError(
        f"config key model.pretrained: {path} is neither a Keras .h5 nor a .safetensors file"
    )


def import_checkpoint(
    weights: str,
    dataset: str,
    out_path: str,
    expected: Mapping[str, Any] | None = None,
    log: logging.Logger = logging.getLogger(__name__),
) -> BPNet:
    """Rule ``import_weights``: ``model.pretrained`` -> model.safetensors for the dataset's tasks.

    ``expected``: the experiment's ``model`` section; the imported network must be that one.
    """
    tasks = [str(t) for t in read_npz(dataset, ["tasks"], "dataset", "build_dataset")["tasks"]]
    model = import_weights(weights, tasks, expected=dict(expected or {}))
    log.info("imported %s (%d parameters, tasks %s)", weights, model.num_parameters, ", ".join(tasks))
    save_checkpoint(model, out_path, metadata={"imported_from": str(weights)})
    return model
