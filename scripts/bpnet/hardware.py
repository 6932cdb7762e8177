"""What the machine offers: the torch device, and the precision and batch sizes that suit it.

Decisions are made here, from the hardware the job actually runs on, so that a default never pays
on one machine only; every other module asks these functions instead of testing the hardware.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Callable, Mapping, MutableMapping

import torch

from bpnet.errors import BPNetInputError

# what tells a job it was given a GPU, besides CUDA_VISIBLE_DEVICES (Slurm's --gres / --gpus, SGE)
_GPU_VARIABLES = ("SLURM_GPUS", "SLURM_GPUS_ON_NODE", "SLURM_JOB_GPUS", "SLURM_STEP_GPUS", "SLURM_GPUS_PER_NODE",
                  "SLURM_GPUS_PER_TASK", "GPU_DEVICE_ORDINAL")
_NO_GPU_VALUES = ("", "-1", "NoDevFiles")  # CUDA_VISIBLE_DEVICES values that hide every GPU
_NVIDIA_DEVICE = "/dev/nvidia0"
_path_exists = os.path.exists  # looked up at each call: tests replace it
CUDA_FIX = ("install a CUDA build of torch matching the NVIDIA driver (nvidia-smi shows the CUDA version it "
            "supports), e.g. pip install torch --index-url https://download.pytorch.org/whl/cu124")


def inference_batch_size(device: torch.device) -> int:
    """Windows per forward pass without gradients: 64 on CPU, where larger batches push the
    activations out of cache (backbone forward on 2 cores of an AVX-512 BF16 CPU, 1000 bp: 384
    windows/s at 64, 262 at 256 in float32; 1,104 and 739 in bf16), 256 on a GPU."""
    return 64 if device.type == "cpu" else 256


def gpu_hints(environ: Mapping[str, str], path_exists: Callable[[str], bool]) -> list[str]:
    """What says this job was given a GPU, as readable phrases (empty: nothing does).

    Pure, so that tests can pass a fake environment and file check: ``CUDA_VISIBLE_DEVICES``
    naming a device (not empty, ``-1`` or ``NoDevFiles``, which mean "none"), a non-empty Slurm GPU
    variable or ``GPU_DEVICE_ORDINAL``, or the device file ``/dev/nvidia0``.
    """
    hints = []
    visible = environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.strip() not in _NO_GPU_VALUES:
        hints.append(f"CUDA_VISIBLE_DEVICES={visible}")
    for key in _GPU_VARIABLES:
        value = environ.get(key, "")
        if value.strip():
            hints.append(f"{key}={value}")
    if path_exists(_NVIDIA_DEVICE):
        hints.append(f"{_NVIDIA_DEVICE} exists")
    return hints


def torch_build() -> str:
    """``torch 2.13.0+cpu (a CPU-only build)`` or ``torch 2.5.1+cu124 (CUDA 12.4)``."""
    cuda = torch.version.cuda
    return f"torch {torch.__version__} ({'a CPU-only build' if cuda is None else f'CUDA {cuda}'})"


def resolve_device(name: str = "auto", log: logging.Logger | None = None) -> torch.device:
    """``auto`` -> ``cuda`` when a GPU is present, else ``cpu``; ``cpu``, ``cuda``, ``cuda:N`` as given.

    ``auto`` on a job that was given a GPU (see :func:`gpu_hints`) which torch cannot use logs a
    WARNING to ``log`` (default: the ``bpnet`` logger) and falls back to the CPU; ``cuda`` without
    a usable GPU is an error. Both name the torch build and the fix.
    """
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        hints = gpu_hints(os.environ, _path_exists)
        if hints:
            (log or logging.getLogger("bpnet")).warning(
                "GPU NOT USED: this job was given a GPU (%s), but %s cannot use it (torch.cuda.is_available() "
                "is False); running on the CPU instead, which is many times slower. Fix: %s",
                ", ".join(hints), torch_build(), CUDA_FIX,
            )
        return torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise BPNetInputError(
            f"config key device: {name!r} asked for, but no CUDA GPU is available to {torch_build()} "
            f"(use auto or cpu; to use the GPU: {CUDA_FIX})"
        )
    try:
        return torch.device(name)
    except RuntimeError as err:
        raise BPNetInputError(f"config key device: expected auto, cpu, cuda or cuda:N, got {name!r}") from err


# ------------------------------------------------------------------------ precision and kernels

# x86 flags of native bf16 arithmetic (Cooper Lake / Sapphire Rapids and newer, AMD Zen 4 and newer)
_NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")
# measured bf16 training step against float32's on a CPU whose oneDNN has no bf16 kernels (AVX2)
_EMULATED_BF16_SLOWDOWN = "7-8x"


@dataclass(frozen=True)
class CpuInfo:
    """What decides precision and kernels on a CPU.

    ``capability``: ``torch.backends.cpu.get_cpu_capability()`` (``DEFAULT``, ``AVX2``, ``AVX512``,
    ...), the widest vector ISA that torch's own kernels use; ``onednn_bf16``: whether oneDNN runs
    bf16 convolutions natively on it (AVX-512 and newer; on AVX2 torch falls back to emulated
    bf16); ``flags``: the CPU's feature flags as the kernel lists them (empty outside Linux).
    """

    capability: str
    onednn_bf16: bool
    flags: frozenset[str] = frozenset()

    def describe(self) -> str:
        """e.g. ``AVX512 (avx512_bf16, amx_bf16)`` or ``AVX2 (no native bf16)``: named beside every figure."""
        native = [f for f in _NATIVE_BF16_FLAGS if f in self.flags] if self.onednn_bf16 else []
        return f"{self.capability} ({', '.join(native) if native else 'no native bf16'})"


def cpu_flags(cpuinfo: str = "/proc/cpuinfo") -> frozenset[str]:
    """The CPU feature flags of Linux's ``/proc/cpuinfo`` (``flags`` on x86, ``Features`` on Arm);
    empty where the file does not exist (macOS, Windows)."""
    try:
        with open(cpuinfo) as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() in ("flags", "Features"):
                    return frozenset(value.split())
    except OSError:
        pass
    return frozenset()


def cpu_info() -> CpuInfo:
    """This machine's :class:`CpuInfo` (honours ``ATEN_CPU_CAPABILITY`` and ``ONEDNN_MAX_CPU_ISA``,
    which is how benchmarks/bench_kernels.py emulates an AVX2 CPU on a newer one)."""
    return CpuInfo(capability=torch.backends.cpu.get_cpu_capability(), onednn_bf16=_onednn_bf16(), flags=cpu_flags())


def _onednn_bf16() -> bool:
    """oneDNN's own answer (a private torch op: a torch without it answers no, i.e. float32)."""
    try:
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def bf16_capability(device_type: str, cpu: CpuInfo | None = None,
                    cuda_capability: tuple[int, int] | None = None) -> tuple[bool | None, str]:
    """Does bf16 autocast pay on this device? ``(True | False | None, reason)``; ``None`` when the
    capability does not settle it and only timing both can tell.

    - CUDA: native from compute capability 8.0 (Ampere) on, where bf16 runs on the tensor cores;
    - CPU: no when oneDNN has no bf16 kernels (AVX2: emulated, several times slower than
      float32); yes with native bf16 instructions (avx512_bf16, amx_bf16); otherwise (AVX-512
      without them, Arm) undecided. The figures: benchmarks/README.md (bench_train.py).
    """
    if device_type == "cuda":
        if cuda_capability is None:
            return False, "no CUDA device capability known"
        major, minor = cuda_capability
        if cuda_capability >= (8, 0):
            return True, f"CUDA compute capability {major}.{minor} has native bf16 tensor cores"
        return False, f"CUDA compute capability {major}.{minor} has no native bf16 (needs 8.0, Ampere or newer)"
    if device_type != "cpu" or cpu is None:
        return False, f"bf16 is not used on {device_type}"
    if not cpu.onednn_bf16:
        return False, (f"this CPU ({cpu.describe()}) has no oneDNN bf16 kernels: bf16 would be emulated, "
                       f"{_EMULATED_BF16_SLOWDOWN} slower than float32 per training step")
    native = [f for f in _NATIVE_BF16_FLAGS if f in cpu.flags]
    if native:
        return True, f"this CPU ({cpu.describe()}) has native bf16 instructions"
    return None, f"oneDNN runs bf16 on this CPU ({cpu.describe()}) but without native bf16 instructions"


def decide_bf16(setting: bool | str, capable: bool | None, reason: str,
                time_steps: Callable[[], tuple[float, float]] | None = None,
                margin: float = 1.2) -> tuple[bool, str]:
    """The precision to train in: ``(use_bf16, why)``.

    ``setting`` is the config's ``training.bf16``: ``true`` / ``false`` force it; ``auto`` follows
    ``capable`` (from :func:`bf16_capability`), and where that is ``None`` times both precisions
    with ``time_steps() -> (float32 s, bf16 s)`` per training step and takes bf16 only when it is
    at least ``margin`` times faster (so that a noisy timing does not flip the choice).
    """
    if setting is True or setting is False:
        why = f"training.bf16 is {str(setting).lower()} in the config"
        if setting and capable is False:
            why += f" (warning: {reason})"
        return setting, why
    if setting != "auto":
        raise BPNetInputError(f"config key training.bf16: expected true, false or auto, got {setting!r}")
    if capable is not None:
        return capable, reason
    if time_steps is None:
        return False, f"{reason}; nothing timed, float32"
    fp32_s, bf16_s = time_steps()
    use = bf16_s * margin <= fp32_s
    return use, (f"{reason}; timed a training step: float32 {fp32_s:.3f} s, bf16 {bf16_s:.3f} s "
                 f"-> {'bf16' if use else f'float32 (bf16 is not {margin}x faster)'}")


def resolve_bf16(setting: bool | str, device: torch.device,
                 time_steps: Callable[[], tuple[float, float]] | None = None) -> tuple[bool, str]:
    """:func:`decide_bf16` for ``device`` as it is (its CUDA capability or this CPU's)."""
    cuda_cap = torch.cuda.get_device_capability(device) if device.type == "cuda" else None
    capable, reason = bf16_capability(device.type, cpu_info() if device.type == "cpu" else None, cuda_cap)
    return decide_bf16(setting, capable, reason, time_steps)


def choose_kernels(setting: str, device_type: str, cpu: CpuInfo | None = None) -> tuple[str, str]:
    """How the convolutions run (``plain`` or ``channels_last``, see :mod:`bpnet.model.channels_last`):
    ``(kernels, why)``. ``setting`` is the config's ``kernels``; ``auto`` decides by the hardware.

    benchmarks/bench_kernels.py measures both per training step and prediction pass (figures in
    benchmarks/README.md): channels-last was faster on every x86 CPU measured, AVX2 and AVX-512,
    in float32 and bf16. So ``auto`` takes channels-last on x86 CPUs and on CUDA (cuDNN's
    tensor-core kernels are channels-last; benchmarks/gpu_check.sh measures both), and the plain
    path on CPUs where nothing was measured (Arm, Apple Silicon).
    """
    if setting != "auto":
        if setting not in ("plain", "channels_last"):
            raise BPNetInputError(f"config key kernels: expected auto, plain or channels_last, got {setting!r}")
        return setting, f"kernels is {setting} in the config"
    if device_type == "cuda":
        return "channels_last", "CUDA: cuDNN's channels-last convolutions"
    if cpu is not None and cpu.capability.startswith(("AVX2", "AVX512")):
        return "channels_last", f"faster on x86 CPUs with {cpu.capability} (benchmarks/bench_kernels.py)"
    capability = cpu.capability if cpu is not None else "unknown"
    return "plain", f"torch's own kernels on a CPU without AVX2 ({capability}), where channels-last is unmeasured"


def micro_batch_size(device: torch.device) -> int:
    """Windows per forward / backward pass in training: a batch of 128 runs as passes of 64 whose
    gradients add up to the batch's (the same step) on CPU, where the smaller activations stay in
    cache and more windows/s pass (benchmarks/bench_kernels.py); whole batches on a GPU."""
    return 64 if device.type == "cpu" else 1 << 30


# ----------------------------------------------------------------------------------------- threads


def available_cores() -> int:
    """Cores this process may run on: its CPU affinity (what a cluster's cgroup or ``taskset``
    grants), else ``os.cpu_count()``."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # macOS, Windows
        return max(1, os.cpu_count() or 1)


def usable_threads(requested: int, log: logging.Logger | None = None) -> int:
    """The threads to compute with: the rule's ``threads`` (what Snakemake gave the job), but never
    more than the cores the process may run on (``snakemake --cores 8`` on a 2-core machine gives
    a rule 8 threads, which would fight over 2 cores)."""
    requested = max(1, int(requested))
    cores = available_cores()
    if requested > cores:
        if log is not None:
            log.info("threads: %d given, but this process may run on %d cores: using %d", requested, cores, cores)
        return cores
    return requested


def setup_inference(model: torch.nn.Module, device: str, kernels: str, threads: int,
                    log: logging.Logger | None = None) -> torch.device:
    """Everything a rule that runs a trained model (predict, export, contributions, marginalisation)
    sets from the hardware: the device (:func:`resolve_device`), torch's threads
    (:func:`usable_threads`) and the model's kernels (:func:`choose_kernels`). Prediction stays
    float32 on every machine, so its numbers do not depend on the hardware's precision."""
    dev = resolve_device(device, log)
    torch.set_num_threads(usable_threads(threads, log))
    chosen, why = choose_kernels(kernels, dev.type, cpu_info() if dev.type == "cpu" else None)
    model.set_kernels(chosen)
    if log is not None:
        where = f"cpu, {cpu_info().describe()}" if dev.type == "cpu" else str(dev)
        log.info("running on %s, %d threads, kernels %s (%s), float32", where, torch.get_num_threads(), chosen, why)
    return dev


def oversubscribed_openmp(cores: int | None, environ: MutableMapping[str, str] = os.environ) -> bool:
    """Let OpenMP threads wait passively when Snakemake's ``cores`` exceed the machine's; True if set.

    torch's OpenMP threads spin while they wait for each other: the fastest on free cores, but
    much slower when another process holds one of them, where passive waiting wins
    (benchmarks/bench_threads.py measures both). Local jobs share cores exactly when
    ``--cores`` is above the cores the machine has, so only then is ``OMP_WAIT_POLICY=PASSIVE``
    set (in ``environ``, which the jobs inherit); a value the user set is kept.
    """
    if cores is None or cores <= available_cores() or "OMP_WAIT_POLICY" in environ:
        return False
    environ["OMP_WAIT_POLICY"] = "PASSIVE"
    return True
