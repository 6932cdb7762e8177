"""The BPNet network: shapes, channel order, parameter count, loss, postprocess, input errors."""

import numpy as np
import pytest
import torch
from scipy.stats import multinomial

from bpnet.errors import BPNetInputError
from bpnet.io.sequence import one_hot_strings
from bpnet.model.network import (
    KERNELS,
    BPNet,
    BPNetConfig,
    BPNetForTokenPrediction,
    BPNetModel,
    bpnet_loss,
    init_weights,
    multinomial_nll,
    postprocess,
)


def random_one_hot(batch, length, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.nn.functional.one_hot(torch.randint(0, 4, (batch, length), generator=g), 4).float()


def test_parameter_count_is_the_papers():
    assert BPNet().num_parameters == 130_960
    # 5-channel MultiMolecule stem has 25 * 64 more weights; our stem is ACGT only.
    assert BPNet().num_parameters + 25 * 64 == 132_560


def test_default_config_is_bpnet_oskn():
    cfg = BPNetConfig()
    assert cfg.dilations == [2, 4, 8, 16, 32, 64, 128, 256, 512]
    assert cfg.tasks == ("Oct4", "Sox2", "Nanog", "Klf4")
    assert cfg.channel_names == ["Oct4+", "Oct4-", "Sox2+", "Sox2-", "Nanog+", "Nanog-", "Klf4+", "Klf4-"]
    # stem 25 + 2 * (2 + 4 + ... + 512) = 2069 bp, i.e. about +-1 kb
    assert cfg.receptive_field == 2069


@pytest.mark.parametrize("length", [1, 37, 1000, 2048])
def test_shapes_any_length(length):
    model = BPNet().eval()
    out = model(random_one_hot(3, length))
    assert out["profile_logits"].shape == (3, length, 8)
    assert out["count_logits"].shape == (3, 8)
    assert postprocess(out).shape == (3, length, 8)


def test_even_profile_kernel_keeps_length():
    model = BPNet(BPNetConfig(profile_kernel=50)).eval()
    assert model(random_one_hot(2, 101))["profile_logits"].shape == (2, 101, 8)


def test_channel_order_is_task_major():
    model = BPNet()
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        for t in range(4):
            model.profile_heads[t].bias.copy_(torch.tensor([10.0 * t, 10.0 * t + 1]))
            model.count_heads[t].bias.copy_(torch.tensor([100.0 * t, 100.0 * t + 1]))
    out = model(random_one_hot(2, 50))
    assert torch.equal(out["profile_logits"][0, 0], torch.tensor([0.0, 1, 10, 11, 20, 21, 30, 31]))
    assert torch.equal(out["count_logits"][1], torch.tensor([0.0, 1, 100, 101, 200, 201, 300, 301]))


def test_backbone_and_token_head():
    cfg = BPNetConfig()
    x = random_one_hot(2, 64)
    assert BPNetModel(cfg)(x).shape == (2, 64, 64)
    tok = BPNetForTokenPrediction(cfg, num_labels=3)
    assert tok(x).shape == (2, 64, 3)
    # The fine-tuning model takes a trained backbone's weights unchanged.
    full = BPNet(cfg)
    tok.backbone.load_state_dict(full.backbone.state_dict())
    assert torch.allclose(tok.backbone(x), full.backbone(x))


def test_receptive_field_is_local():
    """Changing one base far beyond the receptive field leaves the output unchanged."""
    cfg = BPNetConfig(num_dilated_layers=2, stem_kernel=5)  # rf = 5 + 2*(2+4) = 17
    model = BPNet(cfg).eval()
    x = random_one_hot(1, 200)
    y = x.clone()
    y[0, 150] = torch.tensor([1.0, 0, 0, 0]) if x[0, 150, 0] == 0 else torch.tensor([0.0, 1, 0, 0])
    a, b = model(x)["profile_logits"], model(y)["profile_logits"]
    # ConvTranspose head adds +-12 bp, body +-12: positions < 150 - 12 - 12 - 1 are untouched
    assert torch.allclose(a[0, :120], b[0, :120])
    assert not torch.allclose(a[0, 140:160], b[0, 140:160])


def test_postprocess_is_softmax_times_expm1():
    logits = torch.randn(2, 30, 8)
    count_logits = torch.tensor([[0.0, 1, 2, 3, 4, 5, 6, 7]] * 2)
    track = postprocess({"profile_logits": logits, "count_logits": count_logits})
    assert torch.allclose(track.sum(dim=1), torch.expm1(count_logits), rtol=1e-5)
    expected = torch.softmax(logits, dim=1)[0, :, 3] * (np.e**3 - 1)
    assert torch.allclose(track[0, :, 3], expected, rtol=1e-5)
    # a negative count prediction means zero reads, not negative ones
    neg = postprocess({"profile_logits": logits, "count_logits": -torch.ones(2, 8)})
    assert (neg == 0).all()


def test_multinomial_nll_matches_scipy():
    g = np.random.default_rng(0)
    logits = g.normal(size=(2, 6, 2))
    counts = g.integers(0, 5, size=(2, 6, 2)).astype(float)
    nll = multinomial_nll(torch.tensor(logits), torch.tensor(counts)).numpy()
    for b in range(2):
        for c in range(2):
            p = np.exp(logits[b, :, c]) / np.exp(logits[b, :, c]).sum()
            ref = -multinomial.logpmf(counts[b, :, c], n=counts[b, :, c].sum(), p=p)
            assert nll[b, c] == pytest.approx(ref, rel=1e-9)


def test_loss_against_hand_computation():
    # two tasks, two strands, three positions, batch of two
    logits = torch.zeros(2, 3, 4)  # uniform profiles: log p = -log 3
    counts = torch.tensor(
        [[[1, 0, 2, 0], [0, 0, 0, 0], [1, 1, 0, 0]],
         [[0, 0, 0, 3], [0, 0, 0, 0], [0, 0, 0, 0]]], dtype=torch.float32
    )
    count_logits = torch.tensor([[0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 2.0]])
    out = bpnet_loss({"profile_logits": logits, "count_logits": count_logits}, counts, count_loss_weight=10)
    # NLL per (window, channel) = -log[n! / prod(c!) * (1/3)^n]
    from math import factorial, log
    def nll(cs):
        n = sum(cs)
        coef = factorial(n)
        for c in cs:
            coef /= factorial(c)
        return -(log(coef) + n * log(1 / 3))
    per_window = [
        nll([1, 0, 1]) + nll([0, 0, 1]) + nll([2, 0, 0]) + nll([0, 0, 0]),
        nll([0, 0, 0]) + nll([0, 0, 0]) + nll([0, 0, 0]) + nll([3, 0, 0]),
    ]
    assert out["profile"].item() == pytest.approx(sum(per_window) / 2, rel=1e-6)
    # targets log(1 + total): window 0 totals [2, 1, 2, 0]; window 1 totals [0, 0, 0, 3]
    t0 = [log(3), log(2), log(3), 0.0]
    t1 = [0.0, 0.0, 0.0, log(4)]
    p0, p1 = [0, 0, 1, 0], [0, 0, 0, 2]
    se = [[(p0[c] - t0[c]) ** 2 for c in range(4)], [(p1[c] - t1[c]) ** 2 for c in range(4)]]
    task_mse = [(se[0][0] + se[0][1] + se[1][0] + se[1][1]) / 4, (se[0][2] + se[0][3] + se[1][2] + se[1][3]) / 4]
    assert out["count"].item() == pytest.approx(sum(task_mse), rel=1e-6)
    assert out["loss"].item() == pytest.approx(sum(per_window) / 2 + 10 * sum(task_mse), rel=1e-6)


def test_control_track_changes_outputs():
    cfg = BPNetConfig(use_control=True, num_dilated_layers=2)
    model = BPNet(cfg)
    x = random_one_hot(2, 80)
    ctl = torch.rand(2, 80, 2) * 5
    a = model(x, ctl)
    b = model(x, ctl * 3)
    assert not torch.allclose(a["count_logits"], b["count_logits"])
    with pytest.raises(BPNetInputError, match="control"):
        model(x)
    with pytest.raises(BPNetInputError, match="use_control=False"):
        BPNet()(x, ctl)
    with pytest.raises(BPNetInputError, match="expected shape"):
        model(x, ctl[:, :10])


@pytest.mark.parametrize(
    "shape, hint",
    [((2, 100, 5), "drop the N channel"), ((2, 4, 100), "channels-first"), ((100, 4), "batch, length, 4")],
)
def test_wrong_input_shape_is_clear(shape, hint):
    with pytest.raises(BPNetInputError, match=hint):
        BPNet()(torch.zeros(shape))


def test_non_acgt_alphabet_is_clear():
    with pytest.raises(BPNetInputError, match="letter 'U' at position 2"):
        one_hot_strings(["ACUG"])
    x = torch.from_numpy(one_hot_strings(["ACGTN"]))
    assert x[0, 4].sum() == 0  # N is all zeros
    assert BPNet()(x)["profile_logits"].shape == (1, 5, 8)


def test_bad_config_is_clear():
    with pytest.raises(BPNetInputError, match="hidden_size"):
        BPNetConfig(hidden_size=0)
    with pytest.raises(BPNetInputError, match="unknown key"):
        BPNetConfig.from_dict({"hidden": 3})


def test_init_weights_is_deterministic():
    a, b = BPNet(), BPNet()
    init_weights(a, 7)
    init_weights(b, 7)
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p, q)
    init_weights(b, 8)
    assert not torch.equal(a.backbone.stem.conv.weight, b.backbone.stem.conv.weight)


def reference_forward(model: BPNet, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """The network written with torch's own channels-first modules (Conv1d 'same', ConvTranspose1d heads)."""
    h = model.backbone.stem.act(model.backbone.stem.conv(x.transpose(1, 2)))
    for layer in model.backbone.layers:
        h = h + layer.act(layer.conv(h))
    profile = torch.cat([head(h)[..., : x.shape[1]] for head in model.profile_heads], dim=1)
    counts = torch.cat([head(h.mean(dim=2)) for head in model.count_heads], dim=1)
    return {"profile_logits": profile.transpose(1, 2), "count_logits": counts}


@pytest.mark.parametrize("kernels", KERNELS)
@pytest.mark.parametrize(
    "cfg",
    [
        BPNetConfig(num_dilated_layers=3),
        # even kernels: 'same' puts the extra padding right; the even transposed head is trimmed
        BPNetConfig(num_dilated_layers=2, stem_kernel=4, dilated_kernel=2, profile_kernel=50),
    ],
)
def test_both_kernel_paths_equal_torch_modules(cfg, kernels):
    """Forward and every parameter's gradient of each kernel path equal the textbook channels-first
    layers (float64)."""
    model = BPNet(cfg).double().set_kernels(kernels)
    assert model.kernels == kernels
    init_weights(model, 3)
    x = random_one_hot(3, 77).double()
    counts = torch.poisson(torch.full((3, 77, 8), 0.7, dtype=torch.float64), generator=torch.Generator().manual_seed(1))
    grads = []
    for forward in (model, lambda x: reference_forward(model, x)):
        model.zero_grad()
        out = forward(x)
        bpnet_loss(out, counts, 10.0)["loss"].backward()
        grads.append([out["profile_logits"], out["count_logits"]] + [p.grad.clone() for p in model.parameters()])
    for ours, ref in zip(*grads):
        assert torch.allclose(ours, ref, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("kernel,padding", [(25, (12, 12)), (50, (25, 24)), (4, (0, 3))])
def test_wide_conv_gradients(kernel, padding):
    """The hand-written backward of the profile head's convolution passes torch's gradcheck."""
    from bpnet.model.channels_last import WideConv

    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 30, 5, dtype=torch.float64, generator=g, requires_grad=True)
    w = torch.randn(3, 5, kernel, dtype=torch.float64, generator=g, requires_grad=True)
    b = torch.randn(3, dtype=torch.float64, generator=g, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, w, b: WideConv.apply(x, w, b, *padding), (x, w, b))


@pytest.mark.parametrize("kernels", KERNELS)
def test_bf16_autocast_gradients_track_float32(kernels):
    """Under bf16 autocast (training where bf16 is native) the gradients stay close to float32's."""
    model = BPNet(BPNetConfig(num_dilated_layers=3)).set_kernels(kernels)
    init_weights(model, 5)
    x = random_one_hot(8, 200)
    counts = torch.poisson(torch.full((8, 200, 8), 0.5), generator=torch.Generator().manual_seed(2))
    grads = []
    for bf16 in (False, True):
        model.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = bpnet_loss(model(x), counts, 10.0)["loss"]
        loss.backward()
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters()]))
    assert grads[1].dtype == torch.float32
    cos = torch.nn.functional.cosine_similarity(grads[0], grads[1], dim=0)
    assert cos > 0.99


def test_unknown_kernels_are_refused():
    with pytest.raises(BPNetInputError, match="kernels: expected one of"):
        BPNet().set_kernels("fast")
