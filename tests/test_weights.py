"""Checkpoints (safetensors) and imports of the official Keras h5 and MultiMolecule weights."""

import json

import h5py
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from bpnet.errors import BPNetInputError
from bpnet.model.network import BPNet, BPNetConfig
from bpnet.model.weights import (
    load_checkpoint,
    load_keras_h5,
    load_multimolecule,
    read_checkpoint_metadata,
    save_checkpoint,
)

# A small architecture in the official layout keeps the numpy reference fast.
H, STEM_K, N_DIL, PROF_K, TASKS = 8, 7, 3, 5, 2


def make_keras_weights(seed=0, hidden=H, stem_k=STEM_K, n_dil=N_DIL, prof_k=PROF_K, tasks=TASKS):
    """Random weights keyed by the official layer names, in Keras kernel layouts."""
    g = np.random.default_rng(seed)
    w = {"conv1d_1": (g.normal(size=(stem_k, 4, hidden)), g.normal(size=hidden))}
    for i in range(n_dil):
        w[f"conv1d_{i + 2}"] = (g.normal(size=(3, hidden, hidden)) * 0.3, g.normal(size=hidden) * 0.1)
    for t in range(tasks):
        w[f"conv2d_transpose_{t + 1}"] = (g.normal(size=(prof_k, 1, 2, hidden)) * 0.3, g.normal(size=2))
        w[f"dense_{2 * t + 1}"] = (g.normal(size=(hidden, 2)), g.normal(size=2))
    return {k: (a.astype(np.float32), b.astype(np.float32)) for k, (a, b) in w.items()}


def write_keras_h5(path, weights, skip=(), layer_names=False):
    """An HDF5 file in the layout of the published bpnet.model.h5 (model_weights/<l>/<l>/kernel:0).

    ``layer_names``: also write Keras' ``layer_names``/``weight_names`` attributes (listing the
    skipped layers too, as a file that lost a layer after Keras wrote it would)."""
    with h5py.File(path, "w") as f:
        mw = f.create_group("model_weights")
        # a layer without weights, as Keras writes for Input/Add/Lambda layers
        mw.create_group("add_1")
        if layer_names:
            mw.attrs["layer_names"] = [n.encode() for n in ["add_1", *weights]]
            mw["add_1"].attrs["weight_names"] = []
        for name, (kernel, bias) in weights.items():
            if name in skip:
                continue
            layer = mw.create_group(name)
            g = layer.create_group(name)
            g["kernel:0"] = kernel
            g["bias:0"] = bias
            if layer_names:
                layer.attrs["weight_names"] = [f"{name}/kernel:0".encode(), f"{name}/bias:0".encode()]


def keras_reference(x, weights, n_dil=N_DIL, tasks=TASKS):
    """Keras semantics written out with explicit numpy sums (independent of torch).

    Conv1D 'same' (cross-correlation): y[t] = b + sum_j x[t + j*d - left] K[j], left = d*(k-1)//2.
    Conv2DTranspose 'same', stride 1: y[t] = b + sum_j x[t + left - j] K[j], left = (k-1)//2.
    """
    def conv_same(x, kernel, bias, d=1):
        k = kernel.shape[0]
        left = d * (k - 1) // 2
        L = x.shape[0]
        y = np.tile(bias, (L, 1)).astype(np.float64)
        for j in range(k):
            src = np.arange(L) + j * d - left
            ok = (src >= 0) & (src < L)
            y[ok] += x[src[ok]] @ kernel[j]
        return y

    def deconv_same(x, kernel, bias):
        k = kernel.shape[0]
        left = (k - 1) // 2
        L = x.shape[0]
        y = np.tile(bias, (L, 1)).astype(np.float64)
        for j in range(k):
            src = np.arange(L) + left - j
            ok = (src >= 0) & (src < L)
            y[ok] += x[src[ok]] @ kernel[j, 0].T  # (in) @ (in, out)
        return y

    def relu(a):
        return np.maximum(a, 0)
    h = relu(conv_same(x, *weights["conv1d_1"]))
    for i in range(n_dil):
        h = h + relu(conv_same(h, *weights[f"conv1d_{i + 2}"], d=2 ** (i + 1)))
    profile = np.concatenate([deconv_same(h, *weights[f"conv2d_transpose_{t + 1}"]) for t in range(tasks)], axis=1)
    pooled = h.mean(axis=0)
    counts = np.concatenate([pooled @ weights[f"dense_{2 * t + 1}"][0] + weights[f"dense_{2 * t + 1}"][1] for t in range(tasks)])
    return profile, counts


def test_keras_h5_import_reproduces_reference(tmp_path):
    weights = make_keras_weights()
    path = tmp_path / "bpnet.model.h5"
    write_keras_h5(path, weights)
    model = load_keras_h5(path, tasks=["A", "B"]).eval()
    assert model.config.hidden_size == H and model.config.num_dilated_layers == N_DIL
    assert model.config.profile_kernel == PROF_K and model.config.tasks == ("A", "B")
    g = np.random.default_rng(1)
    x = np.eye(4, dtype=np.float32)[g.integers(0, 4, size=60)]
    x[10] = 0  # an N
    with torch.no_grad():
        out = model(torch.from_numpy(x)[None])
    ref_profile, ref_counts = keras_reference(x.astype(np.float64), weights)
    np.testing.assert_allclose(out["profile_logits"][0].numpy(), ref_profile, atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(out["count_logits"][0].numpy(), ref_counts, atol=1e-5, rtol=1e-5)


def test_keras_h5_default_shape_and_task_names(tmp_path):
    """The published model's shapes import into the paper's architecture (130,960 parameters)."""
    weights = make_keras_weights(hidden=64, stem_k=25, n_dil=9, prof_k=25, tasks=4)
    # Keras' numbering of the count heads skips even numbers (dense_1, _3, _5, _7).
    assert sorted(k for k in weights if k.startswith("dense")) == ["dense_1", "dense_3", "dense_5", "dense_7"]
    path = tmp_path / "bpnet.model.h5"
    write_keras_h5(path, weights)
    model = load_keras_h5(path)
    assert model.num_parameters == 130_960
    assert model.config.tasks == ("Oct4", "Sox2", "Nanog", "Klf4")
    torch.testing.assert_close(
        model.count_heads[2].weight, torch.from_numpy(weights["dense_5"][0].T)
    )


@pytest.mark.parametrize(
    "skip, message",
    [
        (["conv1d_3"], "'conv1d_3' \\(dilated layer 2\\) is missing"),
        (["conv1d_1"], "'conv1d_1' \\(the stem convolution\\) is missing"),
        (["conv2d_transpose_2"], "'conv2d_transpose_2' \\(profile head 2\\) is missing"),
        (["dense_3"], "count head layer\\(s\\) missing"),
    ],
)
def test_keras_h5_missing_layer_is_clear(tmp_path, skip, message):
    path = tmp_path / "broken.h5"
    write_keras_h5(path, make_keras_weights(), skip=skip)
    with pytest.raises(BPNetInputError, match=message) as err:
        load_keras_h5(path)
    assert "broken.h5" in str(err.value)


def test_keras_h5_not_hdf5(tmp_path):
    path = tmp_path / "model.h5"
    path.write_text("not hdf5")
    with pytest.raises(BPNetInputError, match="cannot open .*model.h5 as an HDF5 file"):
        load_keras_h5(path)
    with pytest.raises(BPNetInputError, match="does not exist"):
        load_keras_h5(tmp_path / "missing.h5")


def multimolecule_state(seed=0):
    """A state dict named as MultiMolecule's BPNetForProfilePrediction, 5-channel (ACGTN) stem."""
    g = torch.Generator().manual_seed(seed)
    def r(*s):
        return torch.randn(*s, generator=g) * 0.3
    sd = {"model.encoder.stem.conv.weight": r(H, 5, STEM_K), "model.encoder.stem.conv.bias": r(H)}
    for i in range(N_DIL):
        sd[f"model.encoder.layer.{i}.conv.weight"] = r(H, H, 3)
        sd[f"model.encoder.layer.{i}.conv.bias"] = r(H)
    for t in range(TASKS):
        sd[f"profile_count_head.profile.{t}.weight"] = r(H, 2, PROF_K)
        sd[f"profile_count_head.profile.{t}.bias"] = r(2)
        sd[f"profile_count_head.count.{t}.weight"] = r(2, H)
        sd[f"profile_count_head.count.{t}.bias"] = r(2)
    return sd


def multimolecule_reference(codes, sd):
    """MultiMolecule's forward written with torch.nn.functional on its 5-channel one-hot."""
    x = F.one_hot(torch.as_tensor(codes), 5).float().T[None]  # (1, 5, L) with the N channel
    h = F.relu(F.conv1d(x, sd["model.encoder.stem.conv.weight"], sd["model.encoder.stem.conv.bias"], padding="same"))
    for i in range(N_DIL):
        h = h + F.relu(F.conv1d(h, sd[f"model.encoder.layer.{i}.conv.weight"], sd[f"model.encoder.layer.{i}.conv.bias"],
                                dilation=2 ** (i + 1), padding="same"))
    prof = torch.cat([F.conv_transpose1d(h, sd[f"profile_count_head.profile.{t}.weight"],
                                         sd[f"profile_count_head.profile.{t}.bias"], padding=(PROF_K - 1) // 2)
                      for t in range(TASKS)], dim=1)
    cnt = torch.cat([F.linear(h.mean(2), sd[f"profile_count_head.count.{t}.weight"], sd[f"profile_count_head.count.{t}.bias"])
                     for t in range(TASKS)], dim=1)
    return prof[0].T, cnt[0]


def test_multimolecule_import(tmp_path):
    sd = multimolecule_state()
    codes = np.random.default_rng(2).integers(0, 4, size=50)  # ACGT only: the N column is dropped
    ref_prof, ref_cnt = multimolecule_reference(codes, sd)
    for source in (sd, tmp_path / "model.safetensors"):
        if not isinstance(source, dict):
            from safetensors.torch import save_file
            save_file(sd, str(source))
        model = load_multimolecule(source).eval()
        assert model.backbone.stem.conv.weight.shape == (H, 4, STEM_K)
        x = F.one_hot(torch.as_tensor(codes), 4).float()[None]
        with torch.no_grad():
            out = model(x)
        torch.testing.assert_close(out["profile_logits"][0], ref_prof, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(out["count_logits"][0], ref_cnt, atol=1e-5, rtol=1e-5)


def test_multimolecule_errors(tmp_path):
    sd = multimolecule_state()
    del sd["model.encoder.layer.1.conv.bias"]
    with pytest.raises(BPNetInputError, match="encoder.layer.1.conv.bias"):
        load_multimolecule(sd)
    with pytest.raises(BPNetInputError, match="not a MultiMolecule"):
        load_multimolecule({"foo": torch.zeros(1)})
    (tmp_path / "pytorch_model.bin").write_bytes(b"")
    with pytest.raises(BPNetInputError, match="pickled"):
        load_multimolecule(tmp_path / "pytorch_model.bin")


def test_checkpoint_round_trip(tmp_path):
    cfg = BPNetConfig(tasks=("a", "b", "c"), num_dilated_layers=4, use_control=True, count_loss_weight=3.5)
    model = BPNet(cfg).eval()
    path = tmp_path / "model.safetensors"
    save_checkpoint(model, path, metadata={"epoch": 3, "note": "best"})
    loaded = load_checkpoint(path).eval()
    assert loaded.config == cfg
    meta = read_checkpoint_metadata(path)
    assert meta["epoch"] == "3" and meta["note"] == "best"
    x = F.one_hot(torch.randint(0, 4, (2, 40)), 4).float()
    ctl = torch.rand(2, 40, 2)
    for key in ("profile_logits", "count_logits"):
        assert torch.equal(model(x, ctl)[key], loaded(x, ctl)[key])
    # the file holds no pickle: it starts with the safetensors header length and JSON
    raw = path.read_bytes()
    assert raw[8:9] == b"{"


def test_checkpoint_errors(tmp_path):
    from safetensors.torch import save_file

    other = tmp_path / "other.safetensors"
    save_file({"w": torch.zeros(2)}, str(other))
    with pytest.raises(BPNetInputError, match="not a bpnet-pipeline checkpoint"):
        load_checkpoint(other)
    with pytest.raises(BPNetInputError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.safetensors")
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"garbage")
    with pytest.raises(BPNetInputError, match="cannot read"):
        load_checkpoint(bad)


def test_import_weights_dispatches_by_format(tmp_path):
    from bpnet.model.weights import import_weights

    h5 = tmp_path / "bpnet.model.h5"
    write_keras_h5(h5, make_keras_weights())
    assert import_weights(h5, ["x", "y"]).config.tasks == ("x", "y")
    with pytest.raises(BPNetInputError, match="2 task heads but 3 task names"):
        import_weights(h5, ["x", "y", "z"])
    ours = tmp_path / "ours.safetensors"
    save_checkpoint(BPNet(BPNetConfig(tasks=("x", "y"), num_dilated_layers=1)), ours)
    assert import_weights(ours, ["x", "y"]).config.num_dilated_layers == 1
    with pytest.raises(BPNetInputError, match="predicts tasks"):
        import_weights(ours, ["y", "x"])
    from safetensors.torch import save_file
    mm = tmp_path / "mm.safetensors"
    save_file(multimolecule_state(), str(mm))
    assert import_weights(mm, ["x", "y"]).config.hidden_size == H
    with pytest.raises(BPNetInputError, match="model.pretrained"):
        import_weights(tmp_path / "weights.pt", ["x"])


# --------------------------------------------------------------------------------------------
# Imports account for every layer and every tensor; checkpoints are reproducible bytes
# --------------------------------------------------------------------------------------------


def test_keras_h5_with_layer_names_imports(tmp_path):
    path = tmp_path / "bpnet.model.h5"
    weights = make_keras_weights()
    write_keras_h5(path, weights, layer_names=True)
    model = load_keras_h5(path, expected={"hidden_size": H, "num_dilated_layers": N_DIL, "stem_kernel": STEM_K,
                                          "dilated_kernel": 3, "profile_kernel": PROF_K})
    assert model.config.num_dilated_layers == N_DIL


def test_keras_h5_last_dilated_layer_missing(tmp_path):
    """Without its last dilated layer the file would import as a smaller network: an error instead."""
    last = f"conv1d_{N_DIL + 1}"
    path = tmp_path / "short.h5"
    write_keras_h5(path, make_keras_weights(), skip=[last])
    # against the configured network (model.num_dilated_layers)
    with pytest.raises(BPNetInputError, match=f"missing layer\\(s\\) {last}") as err:
        load_keras_h5(path, expected={"num_dilated_layers": N_DIL})
    assert "short.h5" in str(err.value)
    # against the file's own list of layers (Keras' layer_names attribute)
    listed = tmp_path / "listed.h5"
    write_keras_h5(listed, make_keras_weights(), skip=[last], layer_names=True)
    with pytest.raises(BPNetInputError, match=f"listed in the file but missing: {last}") as err:
        load_keras_h5(listed)
    assert "listed.h5" in str(err.value)
    # and through import_weights, which the workflow calls with the experiment's model section
    from bpnet.model.weights import import_weights

    with pytest.raises(BPNetInputError, match=last):
        import_weights(path, ["A", "B"], expected={"num_dilated_layers": N_DIL})
    # a file with more layers than configured names the extra one
    with pytest.raises(BPNetInputError, match=f"extra layer\\(s\\) conv1d_{N_DIL}$"):
        load_keras_h5(tmp_path / "short.h5", expected={"num_dilated_layers": N_DIL - 2})


@pytest.mark.parametrize("where", ["new_layer", "in_layer"])
def test_keras_h5_extra_weight_is_an_error(tmp_path, where):
    path = tmp_path / "extra.h5"
    write_keras_h5(path, make_keras_weights())
    with h5py.File(path, "a") as f:
        if where == "new_layer":
            f["model_weights"].create_group("mystery_1").create_group("mystery_1")["kernel:0"] = np.zeros((3, 3), np.float32)
            name = "mystery_1/mystery_1/kernel:0"
        else:
            f["model_weights/conv1d_2/conv1d_2"]["gamma:0"] = np.ones(H, np.float32)
            name = "conv1d_2/conv1d_2/gamma:0"
    with pytest.raises(BPNetInputError, match="map to no layer") as err:
        load_keras_h5(path)
    assert name in str(err.value) and "extra.h5" in str(err.value)


def test_keras_h5_control_layers_are_known(tmp_path):
    """Control-input layers of older model files (1-wide conv after the profile heads, dense on
    the concatenated counts) are recognised and left out, not reported as unknown."""
    weights = make_keras_weights()
    g = np.random.default_rng(5)
    n = N_DIL + 2
    for t in range(TASKS):
        weights[f"conv1d_{n + t}"] = (g.normal(size=(1, 4, 2)).astype(np.float32), np.zeros(2, np.float32))
        weights[f"dense_{2 * t + 2}"] = (g.normal(size=(4, 2)).astype(np.float32), np.zeros(2, np.float32))
    path = tmp_path / "bpnet.model.h5"
    write_keras_h5(path, weights)
    assert load_keras_h5(path).config.num_dilated_layers == N_DIL


def test_multimolecule_missing_and_extra_keys(tmp_path):
    sd = multimolecule_state()
    del sd["profile_count_head.count.1.weight"]
    with pytest.raises(BPNetInputError, match="'profile_count_head.count.1.weight' is missing"):
        load_multimolecule(sd)
    sd = multimolecule_state()
    sd["model.encoder.layer.0.norm.weight"] = torch.ones(H)
    sd["lm_head.bias"] = torch.zeros(4)
    with pytest.raises(BPNetInputError, match="map to no layer of the network: lm_head.bias, model.encoder.layer.0.norm.weight"):
        load_multimolecule(sd)
    from safetensors.torch import save_file

    path = tmp_path / "mm.safetensors"
    save_file(sd, str(path))
    with pytest.raises(BPNetInputError, match="mm.safetensors: weight tensor\\(s\\) that map to no layer"):
        load_multimolecule(path)
    # the last dilated layer removed entirely: against the configured network it is named
    sd = multimolecule_state()
    for p in ("weight", "bias"):
        del sd[f"model.encoder.layer.{N_DIL - 1}.conv.{p}"]
    with pytest.raises(BPNetInputError, match=f"missing layer\\(s\\) model.encoder.layer.{N_DIL - 1}"):
        load_multimolecule(sd, expected={"num_dilated_layers": N_DIL})
    with pytest.raises(BPNetInputError, match="model.hidden_size is 64 in the config but 8 in the file"):
        load_multimolecule(multimolecule_state(), expected={"hidden_size": 64})


def test_checkpoint_bytes_are_reproducible(tmp_path):
    cfg = BPNetConfig(tasks=("a", "b"), num_dilated_layers=2, extra={"z": 1, "a": {"y": 2.5, "b": [1, 2]}})
    torch.manual_seed(0)
    model = BPNet(cfg).eval()
    meta1 = {"epoch": 3, "history": {"val": 0.1, "train": 0.2}, "note": "best", "b": "x", "a": [1.5, {"q": 1, "p": 2}]}
    meta2 = {"a": [1.5, {"p": 2, "q": 1}], "b": "x", "note": "best", "history": {"train": 0.2, "val": 0.1}, "epoch": 3}
    paths = [tmp_path / f"m{i}.safetensors" for i in range(4)]
    for i, path in enumerate(paths):
        save_checkpoint(model, path, metadata=meta1 if i % 2 == 0 else meta2)
    raw = paths[0].read_bytes()
    assert all(p.read_bytes() == raw for p in paths[1:])
    loaded = load_checkpoint(paths[1]).eval()
    assert loaded.config == cfg
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value)
    meta = read_checkpoint_metadata(paths[1])
    assert json.loads(meta["history"]) == meta1["history"] and meta["note"] == "best"
    # the header lists the metadata keys in sorted order
    header = raw[8 : 8 + int.from_bytes(raw[:8], "little")]
    assert header.index(b'"a"') < header.index(b'"b"') < header.index(b'"config"') < header.index(b'"epoch"')


def test_a_checkpoint_for_other_tasks_is_an_error_naming_both(tmp_path):
    from bpnet.model.network import BPNet, BPNetConfig, init_weights
    from bpnet.model.weights import load_checkpoint, save_checkpoint

    model = BPNet(BPNetConfig(hidden_size=4, stem_kernel=5, num_dilated_layers=2, dilated_kernel=3, profile_kernel=5,
                              tasks=("Oct4", "Sox2")))
    init_weights(model, 0)
    save_checkpoint(model, tmp_path / "m.safetensors")
    assert list(load_checkpoint(tmp_path / "m.safetensors", tasks=["Oct4", "Sox2"]).config.tasks) == ["Oct4", "Sox2"]
    with pytest.raises(BPNetInputError, match=r"predicts tasks \['Oct4', 'Sox2'\], but data.tasks has \['Sox2', 'Oct4'\]"):
        load_checkpoint(tmp_path / "m.safetensors", tasks=["Sox2", "Oct4"])
    with pytest.raises(BPNetInputError, match=r"but d.npz has \['Nanog'\]; retrain"):
        load_checkpoint(tmp_path / "m.safetensors", tasks=["Nanog"], tasks_of="d.npz")
