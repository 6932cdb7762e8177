"""The BPNet network (Avsec et al. 2021, BPNet-OSKN), its loss and its postprocess.

Architecture at the defaults (``BPNetConfig()``), 130,960 parameters:

    one-hot DNA (B, L, 4)                                   channels A, C, G, T; N = all zeros
      -> stem: Conv1d(4, 64, 25, 'same') + ReLU              the "motif" layer
      -> 9 x residual dilated Conv1d(64, 64, 3, dilation 2, 4, ..., 512, 'same'):
             h = h + ReLU(conv(h))                           no batch norm
      -> features (B, L, 64)                                 ``BPNetModel`` stops here
      -> per task t:
           profile head: ConvTranspose1d(64, 2, 25, 'same')  logits over positions, one per strand
           count head:   mean over positions -> Linear(64, 2)  log(1 + total counts) per strand

Outputs are task-major: channel ``2 t + s`` is task ``t``, strand ``s`` (0 = +, 1 = -), i.e.
Oct4+, Oct4-, Sox2+, Sox2-, Nanog+, Nanog-, Klf4+, Klf4- at the defaults. Every convolution uses
'same' padding, so any input length works and the output length equals the input length.

Inputs and outputs are channels-last ``(B, L, C)``. The modules hold torch's own layers and call
them on ``(B, C, L)`` (the plain path, ``kernels="plain"``); ``kernels="channels_last"`` runs the
same parameters through :mod:`bpnet.model.channels_last`, which keeps every tensor ``(B, L, C)``
(``bpnet.hardware.choose_kernels`` picks the path per machine, from what
benchmarks/bench_kernels.py measured). Both paths compute the same function; the tests check
outputs and gradients to 1e-9.

The count head predicts ``log(1 + total)`` per strand (the official training target). The usable
track is therefore ``softmax(profile_logits over positions) * (exp(count_logits) - 1)``; see
:func:`postprocess`. (MultiMolecule's seed card multiplies by ``exp(count_logits)``, which is off
by one read per strand against a model trained on log(1 + n); we keep the two consistent.)

Optional control ("bias") track, as in the paper's code: a 2-strand control profile ``(B, L, 2)``
is smoothed by moving averages of 1 and 50 bp (4 channels) and mapped by a 1x1 convolution without
bias into each task's profile logits; ``log(1 + control total)`` per strand goes through a Linear
layer without bias into each task's count output.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from bpnet.errors import BPNetInputError
from bpnet.model import channels_last

DEFAULT_TASKS = ("Oct4", "Sox2", "Nanog", "Klf4")
# Moving-average windows applied to the control profile (the paper's [1, 50]).
CONTROL_SMOOTHING = (1, 50)
# How the convolutions run: torch's modules on (B, C, L), or bpnet.model.channels_last on (B, L, C).
KERNELS = ("plain", "channels_last")


@dataclass
class BPNetConfig:
    """Hyper-parameters of BPNet; the defaults are the paper's BPNet-OSKN model."""

    hidden_size: int = 64
    stem_kernel: int = 25
    num_dilated_layers: int = 9
    dilated_kernel: int = 3
    profile_kernel: int = 25  # 25 for ChIP-nexus, 50 for ChIP-seq
    tasks: tuple[str, ...] = DEFAULT_TASKS
    num_strands: int = 2
    use_control: bool = False
    count_loss_weight: float = 10.0  # lambda of the composite loss
    activation: str = "relu"
    alphabet: str = "ACGT"
    extra: dict = field(default_factory=dict)  # free-form provenance (e.g. imported from)

    def __post_init__(self):
        self.tasks = tuple(self.tasks)
        for key in ("hidden_size", "stem_kernel", "dilated_kernel", "profile_kernel", "num_strands"):
            value = getattr(self, key)
            if not isinstance(value, int) or value < 1:
                raise BPNetInputError(f"model config {key}: expected a positive integer, got {value!r}")
        if not isinstance(self.num_dilated_layers, int) or self.num_dilated_layers < 0:
            raise BPNetInputError(
                f"model config num_dilated_layers: expected an integer >= 0, got {self.num_dilated_layers!r}"
            )
        if not self.tasks or len(set(self.tasks)) != len(self.tasks):
            raise BPNetInputError(f"model config tasks: expected distinct task names, got {self.tasks!r}")
        if self.activation not in _ACTIVATIONS:
            raise BPNetInputError(
                f"model config activation: expected one of {sorted(_ACTIVATIONS)}, got {self.activation!r}"
            )
        if self.alphabet != "ACGT":
            raise BPNetInputError(f"model config alphabet: only 'ACGT' is supported, got {self.alphabet!r}")

    @property
    def num_tasks(self) -> int:
        return len(self.tasks)

    @property
    def num_outputs(self) -> int:
        """Output channels: tasks x strands."""
        return self.num_tasks * self.num_strands

    @property
    def dilations(self) -> list[int]:
        """Dilation of each residual layer: 2, 4, ..., 2^num_dilated_layers."""
        return [2 ** (i + 1) for i in range(self.num_dilated_layers)]

    @property
    def receptive_field(self) -> int:
        """Receptive field of one output position of the backbone, in bp."""
        return self.stem_kernel + sum((self.dilated_kernel - 1) * d for d in self.dilations)

    @property
    def channel_names(self) -> list[str]:
        """Output channel names, task-major: ``['Oct4+', 'Oct4-', ...]``."""
        signs = ["+", "-"] if self.num_strands == 2 else [f"/{s}" for s in range(self.num_strands)]
        return [f"{t}{s}" for t in self.tasks for s in signs]

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["tasks"] = list(self.tasks)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "BPNetConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise BPNetInputError(f"model config: unknown key(s) {sorted(unknown)}; known: {sorted(known)}")
        return cls(**d)


_ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU}


class BPNetStem(nn.Module):
    """The first ("motif") convolution: one-hot ``(B, 4, L)`` -> features ``(B, H, L)``."""

    def __init__(self, config: BPNetConfig):
        super().__init__()
        self.conv = nn.Conv1d(4, config.hidden_size, config.stem_kernel, padding="same")
        self.act = _ACTIVATIONS[config.activation]()

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.conv(x))


class BPNetLayer(nn.Module):
    """Residual dilated convolution: ``h + act(conv(h))``, shapes ``(B, H, L)`` -> ``(B, H, L)``."""

    def __init__(self, config: BPNetConfig, dilation: int):
        super().__init__()
        self.conv = nn.Conv1d(
            config.hidden_size, config.hidden_size, config.dilated_kernel, dilation=dilation, padding="same"
        )
        self.act = _ACTIVATIONS[config.activation]()

    def forward(self, h: Tensor) -> Tensor:
        return h + self.act(self.conv(h))


def codes_to_one_hot(codes: Tensor) -> Tensor:
    """uint8/long codes ``(B, L)`` (A=0, C=1, G=2, T=3, N=4) -> float one-hot ``(B, L, 4)``, N = zeros."""
    return F.one_hot(codes.long(), 5)[..., :4].float()


def strand_swap_permutation(num_tasks: int, num_strands: int = 2) -> Tensor:
    """Channel permutation that swaps the strands of every task (Oct4+ <-> Oct4-, ...)."""
    perm = torch.arange(num_tasks * num_strands).view(num_tasks, num_strands).flip(1)
    return perm.reshape(-1)


def _check_one_hot(x: Tensor) -> None:
    if x.dim() != 3 or x.shape[-1] != 4:
        extra = ""
        if x.dim() == 3 and x.shape[-1] == 5:
            extra = " (a 5-channel ACGTN encoding: drop the N channel; N is all zeros here)"
        elif x.dim() == 3 and x.shape[1] == 4:
            extra = " (this looks channels-first (B, 4, L): transpose it to (B, L, 4))"
        raise BPNetInputError(
            f"BPNet input: expected one-hot DNA of shape (batch, length, 4) in channel order "
            f"A, C, G, T; got shape {tuple(x.shape)}{extra}"
        )


class BPNetModel(nn.Module):
    """The bare backbone: one-hot ``(B, L, 4)`` -> per-position features ``(B, L, H)``.

    ``kernels`` (an attribute, see :data:`KERNELS`) chooses how the convolutions run; the plain
    path transposes to ``(B, C, L)`` once on the way in and returns a transposed view.
    """

    kernels = "plain"

    def __init__(self, config: BPNetConfig):
        super().__init__()
        self.config = config
        self.stem = BPNetStem(config)
        self.layers = nn.ModuleList(BPNetLayer(config, d) for d in config.dilations)

    def forward(self, x: Tensor) -> Tensor:
        """Per-position features ``(B, L, H)``."""
        _check_one_hot(x)
        if self.kernels == "channels_last":
            return channels_last.backbone_nlc(self.stem, self.layers, x)
        h = self.stem(x.transpose(1, 2))
        for layer in self.layers:
            h = layer(h)
        return h.transpose(1, 2)


class BPNet(nn.Module):
    """BPNet with the factorised profile / count heads (``BPNetForProfilePrediction``).

    ``forward(x, control=None)`` takes one-hot ``x`` ``(B, L, 4)`` and, when
    ``config.use_control``, the control profile ``(B, L, num_strands)``; it returns a dict:

    - ``profile_logits`` ``(B, L, T * S)``: per-position logits (softmax over positions),
    - ``count_logits`` ``(B, T * S)``: predicted ``log(1 + total counts)`` per task and strand.
    """

    def __init__(self, config: BPNetConfig | None = None):
        super().__init__()
        self.config = config = config or BPNetConfig()
        self.backbone = BPNetModel(config)
        h, s, k = config.hidden_size, config.num_strands, config.profile_kernel
        # ConvTranspose1d with padding (k-1)//2 is Keras' Conv2DTranspose 'same' for odd k; for
        # even k it yields one extra position at the end, trimmed in forward (as Keras does).
        self.profile_heads = nn.ModuleList(
            nn.ConvTranspose1d(h, s, k, padding=(k - 1) // 2) for _ in config.tasks
        )
        self.count_heads = nn.ModuleList(nn.Linear(h, s) for _ in config.tasks)
        if config.use_control:
            n_smooth = len(CONTROL_SMOOTHING) * s
            self.control_profile = nn.ModuleList(nn.Conv1d(n_smooth, s, 1, bias=False) for _ in config.tasks)
            self.control_count = nn.ModuleList(nn.Linear(s, s, bias=False) for _ in config.tasks)

    def forward(self, x: Tensor, control: Tensor | None = None) -> dict[str, Tensor]:
        h = self.backbone(x)  # (B, L, H)
        profile = self.profile_logits(h)  # (B, L, T*S)
        pooled = h.mean(dim=1)  # (B, H)
        counts = torch.cat([head(pooled) for head in self.count_heads], dim=1)  # (B, T*S)
        if self.config.use_control:
            if control is None:
                raise BPNetInputError("this BPNet uses a control track: pass control of shape (batch, length, strands)")
            if control.shape != (x.shape[0], x.shape[1], self.config.num_strands):
                raise BPNetInputError(
                    f"control track: expected shape {(x.shape[0], x.shape[1], self.config.num_strands)}, "
                    f"got {tuple(control.shape)}"
                )
            c = control.transpose(1, 2).to(h.dtype)  # (B, S, L)
            smoothed = smooth_control(c)  # (B, 2S, L)
            log_total = torch.log1p(c.sum(dim=2))  # (B, S)
            profile = profile + torch.cat([m(smoothed) for m in self.control_profile], dim=1).transpose(1, 2)
            counts = counts + torch.cat([m(log_total) for m in self.control_count], dim=1)
        elif control is not None:
            raise BPNetInputError("control track given, but this BPNet was built with use_control=False")
        return {"profile_logits": profile, "count_logits": counts}

    def profile_logits(self, h: Tensor) -> Tensor:
        """All tasks' profile heads: features ``(B, L, H)`` -> logits ``(B, L, T * S)``.

        For an even kernel the transposed convolution yields one extra position at the end,
        trimmed as Keras does.
        """
        if self.kernels == "channels_last":
            return channels_last.profile_heads_nlc(self.profile_heads, h)
        h = h.transpose(1, 2)  # (B, H, L)
        length = h.shape[2]
        return torch.cat([head(h)[..., :length] for head in self.profile_heads], dim=1).transpose(1, 2)

    @property
    def kernels(self) -> str:
        """How the convolutions run: ``plain`` or ``channels_last`` (:data:`KERNELS`)."""
        return self.backbone.kernels

    def set_kernels(self, kernels: str) -> "BPNet":
        """Run the convolutions as ``kernels`` (same parameters, same function); returns the model."""
        if kernels not in KERNELS:
            raise BPNetInputError(f"kernels: expected one of {list(KERNELS)}, got {kernels!r}")
        self.backbone.kernels = kernels
        return self

    @property
    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


def smooth_control(c: Tensor) -> Tensor:
    """Moving averages of the control ``(B, S, L)`` over 1 and 50 bp -> ``(B, 2 S, L)``.

    Zero padding at the ends ('same' placement: for even windows the extra position is on the
    right), so the sum over a window near an edge counts the missing positions as zero reads.
    """
    out = []
    for w in CONTROL_SMOOTHING:
        if w == 1:
            out.append(c)
            continue
        kernel = torch.full((c.shape[1], 1, w), 1.0 / w, dtype=c.dtype, device=c.device)
        out.append(F.conv1d(F.pad(c, ((w - 1) // 2, w // 2)), kernel, groups=c.shape[1]))
    return torch.cat(out, dim=1)


class BPNetForTokenPrediction(nn.Module):
    """The backbone with a fresh per-position head for fine-tuning: ``(B, L, 4)`` -> ``(B, L, num_labels)``.

    The head is a 1x1 convolution (a Linear layer applied at every position) on the 64-d features.
    Load a trained backbone with ``model.backbone.load_state_dict(bpnet.backbone.state_dict())``.
    """

    def __init__(self, config: BPNetConfig | None = None, num_labels: int | None = None):
        super().__init__()
        self.config = config = config or BPNetConfig()
        self.num_labels = num_labels or config.num_outputs
        self.backbone = BPNetModel(config)
        self.head = nn.Linear(config.hidden_size, self.num_labels)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.backbone(x))


def postprocess(outputs: dict[str, Tensor]) -> Tensor:
    """The predicted track ``(B, L, C)``: ``softmax(profile_logits, positions) * expm1(count_logits)``.

    Since the count head predicts ``log(1 + total)``, ``expm1`` gives the predicted total; it is
    clamped at 0 so that a slightly negative prediction means "no reads", not negative counts.
    """
    probs = torch.softmax(outputs["profile_logits"].float(), dim=1)
    totals = torch.expm1(outputs["count_logits"].float()).clamp_min(0)
    return probs * totals.unsqueeze(1)


def multinomial_nll(profile_logits: Tensor, counts: Tensor) -> Tensor:
    """Multinomial negative log-likelihood of ``counts`` under ``softmax(profile_logits)``.

    Args:
        profile_logits: ``(B, L, C)`` logits; the distribution is over the ``L`` positions.
        counts: ``(B, L, C)`` observed counts.

    Returns:
        ``(B, C)`` NLL per window and channel, including the multinomial coefficient so that the
        value is a true negative log-probability.
    """
    counts = counts.to(profile_logits.dtype)
    log_probs = F.log_softmax(profile_logits, dim=1)
    total = counts.sum(dim=1)
    log_coef = torch.lgamma(total + 1) - torch.lgamma(counts + 1).sum(dim=1)
    return -(log_coef + (counts * log_probs).sum(dim=1))


def bpnet_loss(
    outputs: dict[str, Tensor], counts: Tensor, count_loss_weight: float, num_strands: int = 2
) -> dict[str, Tensor]:
    """The paper's composite loss for a batch.

    Args:
        outputs: the model's ``profile_logits`` ``(B, L, C)`` and ``count_logits`` ``(B, C)``.
        counts: observed counts ``(B, L, C)``, channels as the outputs.
        count_loss_weight: lambda.

    Returns:
        dict with ``loss`` = ``profile + lambda * count``, where ``profile`` is the multinomial
        NLL summed over strands and tasks and averaged over the batch, and ``count`` is, per task,
        the MSE of ``log(1 + total)`` averaged over batch and strands, summed over tasks (the
        official Keras model: one loss per task head, Keras' MSE averaging over the strand axis).
    """
    logits = outputs["profile_logits"].float()
    counts = counts.float()
    profile = multinomial_nll(logits, counts).sum(dim=1).mean()
    target = torch.log1p(counts.sum(dim=1))  # (B, C)
    sq = (outputs["count_logits"].float() - target) ** 2  # (B, C)
    count = sq.view(sq.shape[0], -1, num_strands).mean(dim=(0, 2)).sum()
    return {"loss": profile + count_loss_weight * count, "profile": profile, "count": count}


def init_weights(model: nn.Module, seed: int) -> None:
    """Re-initialise all weights from ``seed`` (PyTorch's default schemes), independent of global RNG."""
    gen = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, (nn.Conv1d, nn.ConvTranspose1d, nn.Linear)):
            fan_in = nn.init._calculate_fan_in_and_fan_out(m.weight)[0]
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
            with torch.no_grad():
                # kaiming_uniform(a=sqrt(5)) as torch's default: bound = 1 / sqrt(fan_in)
                m.weight.uniform_(-bound, bound, generator=gen)
                if m.bias is not None:
                    m.bias.uniform_(-bound, bound, generator=gen)
