"""Weights: the project's safetensors checkpoints and imports of the published formats.

- :func:`save_checkpoint` / :func:`load_checkpoint`: our own format, a ``.safetensors`` file whose
  metadata holds the :class:`~bpnet.model.BPNetConfig` as JSON (no pickle anywhere on load).
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
import re
from pathlib import Path

import numpy as np
import torch

from .errors import BPNetInputError
from .model import DEFAULT_TASKS, BPNet, BPNetConfig

FORMAT = "bpnet-pipeline"
FORMAT_VERSION = "1"


# --------------------------------------------------------------------------------------------
# Our checkpoints
# --------------------------------------------------------------------------------------------


def save_checkpoint(model: BPNet, path: str | Path, metadata: dict | None = None) -> None:
    """Save weights and config to ``path`` (safetensors); ``metadata`` is stored as JSON strings."""
    from safetensors.torch import save_file

    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "config": json.dumps(model.config.to_dict())}
    for key, value in (metadata or {}).items():
        meta[key] = value if isinstance(value, str) else json.dumps(value)
    save_file(state, str(path), metadata=meta)


def read_checkpoint_metadata(path: str | Path) -> dict[str, str]:
    """The metadata dict of a checkpoint (config JSON, format, anything saved with it)."""
    from safetensors import safe_open

    path = Path(path)
    if not path.exists():
        raise BPNetInputError(f"checkpoint {path} does not exist")
    try:
        with safe_open(str(path), framework="pt") as f:
            return dict(f.metadata() or {})
    except Exception as err:  # safetensors raises its own error types for corrupt headers
        raise BPNetInputError(f"cannot read {path} as a safetensors checkpoint: {err}") from err


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> BPNet:
    """Load a model saved by :func:`save_checkpoint`."""
    from safetensors.torch import load_file

    meta = read_checkpoint_metadata(path)
    if meta.get("format") != FORMAT or "config" not in meta:
        raise BPNetInputError(
            f"{path} is a safetensors file but not a bpnet-pipeline checkpoint (no 'config' metadata); "
            "for MultiMolecule weights use load_multimolecule"
        )
    config = BPNetConfig.from_dict(json.loads(meta["config"]))
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


# --------------------------------------------------------------------------------------------
# The official Keras h5
# --------------------------------------------------------------------------------------------


def _layer_number(name: str) -> int:
    match = re.search(r"_(\d+)$", name)
    return int(match.group(1)) if match else 0


def _h5_layer_weights(group, layer: str, path: str) -> dict[str, np.ndarray]:
    """``{'kernel': ..., 'bias': ...}`` of a Keras layer group, wherever the datasets sit below it."""
    import h5py

    found: dict[str, np.ndarray] = {}

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset):
            leaf = name.rsplit("/", 1)[-1].split(":")[0]
            if leaf in ("kernel", "bias") and leaf not in found:
                found[leaf] = np.asarray(obj[()], dtype=np.float32)

    group[layer].visititems(visit)
    if "kernel" not in found:
        raise BPNetInputError(f"{path}: layer {layer!r} has no kernel:0 dataset")
    return found


def load_keras_h5(path: str | Path, tasks: tuple[str, ...] | list[str] | None = None) -> BPNet:
    """Import the official Keras BPNet (``bpnet.model.h5`` layout) into a :class:`BPNet`.

    The architecture is read from the file: hidden size and stem kernel from ``conv1d_1``, the
    dilated layers from the following ``conv1d_*`` layers with kernel 3 x hidden x hidden, the
    profile kernel from ``conv2d_transpose_1``, one task per ``conv2d_transpose_*`` layer, count
    heads from the ``dense_*`` layers of shape (hidden, strands) in numeric order. ``tasks``
    names the heads (default: Oct4, Sox2, Nanog, Klf4 for a 4-task file, else task0, task1, ...).
    Layers for control inputs of older model files are not imported.
    """
    import h5py

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
        if "conv1d_1" not in layers:
            raise BPNetInputError(
                f"{path}: layer 'conv1d_1' (the stem convolution) is missing; expected the official "
                f"bpnet.model.h5 layout with layers conv1d_1..conv1d_10, conv2d_transpose_1..4, dense_1/3/5/7 "
                f"(found: {', '.join(sorted(layers)[:12])})"
            )
        stem = _h5_layer_weights(root, "conv1d_1", str(path))
        stem_k, in_ch, hidden = stem["kernel"].shape
        if in_ch != 4:
            raise BPNetInputError(f"{path}: conv1d_1 expects {in_ch} input channels, BPNet uses 4 (A, C, G, T)")
        conv_names = sorted((n for n in layers if re.fullmatch(r"conv1d_\d+", n) and n != "conv1d_1"), key=_layer_number)
        dilated = []
        for name in conv_names:
            w = _h5_layer_weights(root, name, str(path))
            if w["kernel"].ndim == 3 and w["kernel"].shape[1:] == (hidden, hidden):
                dilated.append((name, w))
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
            w = _h5_layer_weights(root, name, str(path))
            if w["kernel"].shape == (hidden, strands):
                counts.append((name, w))
        # One task per head pair; a head missing on either side is an error, not a smaller model.
        n_tasks = max(len(profile_names), len(counts))
        for i in range(n_tasks):
            if i >= len(profile_names) or profile_names[i] != f"conv2d_transpose_{i + 1}":
                raise BPNetInputError(f"{path}: layer 'conv2d_transpose_{i + 1}' (profile head {i + 1}) is missing")
        profiles = [_h5_layer_weights(root, n, str(path)) for n in profile_names]
        if len(counts) != n_tasks:
            expected = ", ".join(f"dense_{2 * i + 1}" for i in range(n_tasks))
            got = ", ".join(n for n, _ in counts) or "none"
            raise BPNetInputError(
                f"{path}: count head layer(s) missing: expected {n_tasks} dense layers of shape "
                f"({hidden}, {strands}) ({expected}), found {got}"
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
    source: str | Path | dict[str, torch.Tensor], tasks: tuple[str, ...] | list[str] | None = None
) -> BPNet:
    """Import a MultiMolecule ``BPNetForProfilePrediction`` state dict (or its .safetensors file).

    Keys (any prefix before ``encoder.``): ``encoder.stem.conv.*`` (stem, 5 input channels
    ACGTN: the N column is dropped), ``encoder.layer.{i}.conv.*``,
    ``profile_count_head.profile.{t}.*`` and ``profile_count_head.count.{t}.*``.
    """
    name = "MultiMolecule state dict"
    if not isinstance(source, dict):
        from safetensors.torch import load_file

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

    def get(key: str) -> torch.Tensor:
        if key not in state:
            raise BPNetInputError(f"{name}: weight {key!r} is missing")
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
    _load_state(model, {k: v.contiguous() for k, v in ours.items()}, name)
    return model


def import_weights(path: str | Path, tasks: list[str] | tuple[str, ...]) -> BPNet:
    """Any supported weights file as a :class:`BPNet` predicting ``tasks`` (in that order).

    ``.h5``: the official Keras model; ``.safetensors``: this pipeline's checkpoint, else a
    MultiMolecule state dict. The file's number of task heads must equal ``len(tasks)``.
    """
    path = Path(path)
    if path.suffix in (".h5", ".hdf5"):
        return load_keras_h5(path, tasks=tuple(tasks))
    if path.suffix == ".safetensors":
        if read_checkpoint_metadata(path).get("format") == FORMAT:
            model = load_checkpoint(path)
            if tuple(model.config.tasks) != tuple(tasks):
                raise BPNetInputError(f"checkpoint {path} predicts tasks {model.config.tasks}, the config's data.tasks are {tuple(tasks)}")
            return model
        return load_multimolecule(path, tasks=tuple(tasks))
    raise BPNetInputError(
        f"config key model.pretrained: {path} is neither a Keras .h5 nor a .safetensors file"
    )


def import_main(smk, log) -> None:
    """Rule ``import_weights``: model.pretrained -> results/{exp}/model/model.safetensors."""
    from .npz import read_npz

    tasks = [str(t) for t in read_npz(smk.input.dataset, ["tasks"], "dataset", "build_dataset")["tasks"]]
    model = import_weights(smk.input.weights, tasks)
    log.info("imported %s (%d parameters, tasks %s)", smk.input.weights, model.num_parameters, ", ".join(tasks))
    save_checkpoint(model, smk.output.model, metadata={"imported_from": str(smk.input.weights)})
