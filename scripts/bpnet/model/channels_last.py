"""The channels-last speed path of :class:`bpnet.model.network.BPNet`: the same network, other kernels.

The plain path in ``model.py`` calls torch's ``nn.Conv1d`` / ``nn.ConvTranspose1d`` modules on
``(batch, channels, length)``. This path keeps every tensor ``(batch, length, channels)`` and runs
each convolution on the same modules' parameters as a height-1 ``conv2d`` in channels_last
memory format, which a ``(B, L, C)`` tensor already is; the four transposed-convolution profile
heads run as one convolution with the flipped kernel, whose weight gradient is one matrix product
(:class:`WideConv`). ``tests/test_model.py`` checks outputs and every gradient against the plain
path. Which path is faster depends on the hardware (oneDNN's channels-last kernels pay on CPUs
with AVX-512, not on AVX2 ones): :func:`bpnet.hardware.choose_kernels` picks, and
``benchmarks/bench_kernels.py`` measures both on the machine at hand.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def conv1d_nlc(
    x: Tensor, weight: Tensor, bias: Tensor | None, dilation: int = 1, padding: tuple[int, int] | None = None
) -> Tensor:
    """A 1-d convolution on channels-last sequences: ``(B, L, C_in)`` -> ``(B, L', C_out)``.

    ``weight`` is ``(C_out, C_in, k)`` as in ``nn.Conv1d``. ``padding`` (left, right) defaults to
    'same' as torch places it (for an odd total the extra position goes right).
    """
    if padding is None:
        total = dilation * (weight.shape[-1] - 1)
        padding = (total // 2, total - total // 2)
    left, right = padding
    if left != right:
        x = F.pad(x, (0, 0, left, right))
        left = 0
    y = F.conv2d(x.transpose(1, 2).unsqueeze(2), weight.unsqueeze(2), bias, padding=(0, left), dilation=(1, dilation))
    return y.squeeze(2).transpose(1, 2)


def conv_module_nlc(conv: nn.Conv1d, x: Tensor) -> Tensor:
    """``conv`` (an ``nn.Conv1d`` with 'same' padding) applied to channels-last ``x`` ``(B, L, C)``."""
    return conv1d_nlc(x, conv.weight, conv.bias, conv.dilation[0])


class WideConv(torch.autograd.Function):
    """:func:`conv1d_nlc` whose weight gradient is one GEMM over the unfolded output gradient.

    For the profile heads (64 channels in, 8 out, 25 bp) oneDNN's weight gradient is slower than
    that GEMM (benchmarks/bench_kernels.py). Inputs share one dtype (the caller casts the weights
    under autocast).
    """

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, bias: Tensor, left: int, right: int) -> Tensor:
        ctx.save_for_backward(x, weight)
        ctx.padding = (left, right)
        return conv1d_nlc(x, weight, bias, padding=(left, right))

    @staticmethod
    def backward(ctx, grad: Tensor):
        x, weight = ctx.saved_tensors
        left, right = ctx.padding
        c_out, c_in, k = weight.shape
        n, length, _ = grad.shape
        grad = grad.contiguous()
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:  # the transposed convolution: flipped kernel, swapped channels
            grad_x = conv1d_nlc(grad, weight.transpose(0, 1).flip(-1), None, padding=(right, left))
        if ctx.needs_input_grad[1]:
            # dW[o, c, k-1-m] = sum over (b, l) of g[b, l + m, o] * x[b, l, c], g padded by (right, left)
            g = F.pad(grad, (0, 0, right, left))
            s = g.stride()
            unfolded = g.as_strided((n, length, c_out, k), (s[0], s[1], s[2], s[1])).reshape(n * length, c_out * k)
            grad_w = (unfolded.t() @ x.reshape(n * length, c_in)).view(c_out, k, c_in).flip(1).transpose(1, 2)
        if ctx.needs_input_grad[2]:
            grad_b = grad.sum(dim=(0, 1))
        return grad_x, grad_w, grad_b, None, None


def profile_heads_nlc(heads: nn.ModuleList, h: Tensor) -> Tensor:
    """All ``ConvTranspose1d`` profile heads at once on features ``(B, L, H)`` -> ``(B, L, T * S)``.

    A stride-1 ``ConvTranspose1d`` with padding ``p`` is a convolution with the kernel flipped,
    the in / out channels swapped and padding ``(k - 1 - p, p)``: for an even ``k`` that drops
    the transposed convolution's one extra position at the end, as Keras does.
    """
    k, p = heads[0].kernel_size[0], heads[0].padding[0]
    weight = torch.cat([head.weight for head in heads], dim=1)  # (H, T*S, k)
    weight = weight.transpose(0, 1).flip(-1).to(h.dtype)  # (T*S, H, k); h is bf16 under autocast
    bias = torch.cat([head.bias for head in heads]).to(h.dtype)
    return WideConv.apply(h, weight, bias, k - 1 - p, p)


def backbone_nlc(stem: nn.Module, layers: nn.ModuleList, x: Tensor) -> Tensor:
    """The backbone (``BPNetStem`` + ``BPNetLayer`` s) on one-hot ``(B, L, 4)`` -> features ``(B, L, H)``,
    calling each module's activation (so hooks on it, e.g. DeepLIFT's, see the same tensors)."""
    h = stem.act(conv_module_nlc(stem.conv, x))
    for layer in layers:
        h = h + layer.act(conv_module_nlc(layer.conv, h))
    return h
