"""The measurement core of ``fastgan bench`` (DESIGN.md §5): the device and machine description,
the measured copy bandwidth, ideal bytes per operator, input rotation, timers, and the
interleaved timing of forward + backward steps.

Nothing here asserts on a time: a benchmark reports, it never fails because a machine is slow.

Devices and timers (:func:`get_device`)
---------------------------------------
``cpu``
    :class:`WallTimer` (``time.perf_counter``) at torch's default thread count, as users run.
``cuda``
    :class:`CudaEventTimer`: a CUDA event is recorded before and after the calls of a sample
    on the current stream and the elapsed time read once the end event has completed, so a
    sample measures the device's work, launch gaps included, and never the host racing ahead.
    Warm-up and calibration end with ``torch.cuda.synchronize()``. Asking for ``cuda`` where
    torch sees no CUDA device raises :class:`DeviceUnavailableError` with the reason.

What is counted as "ideal bytes" (:func:`ideal_bytes`)
-----------------------------------------------------
The traffic column of DESIGN.md §2, for ONE forward + backward step with gradients w.r.t. every
differentiable input, counting each big tensor read or written once by a kernel that does no
more than it must. ``N`` is the number of elements of one input, ``e`` the element size:

=======================  ======================================  ==============================  =====
operator                 forward                                 backward                        total
=======================  ======================================  ==============================  =====
interpolate              read real, fake (2N), write out (N)     read grad_out (N) + real, fake  8N·e
                                                                 (2N, for alpha's gradient),
                                                                 write d_real, d_fake (2N)
grad_norm_penalty        read grads (N)                          read grads (N), write d_g (N)   3N·e
reconstruction_error     read x, recon (2N)                      read x, recon (2N), write       6N·e
                                                                 d_x, d_recon (2N)
adversarial_loss         read real, fake once (Nr + Nf)          read real, fake (Nr + Nf),      3(Nr+Nf)·e
                                                                 write d_real, d_fake (Nr + Nf)
=======================  ======================================  ==============================  =====

Per-sample vectors of B elements and 0-dim values are not counted (below 0.01 % of N·e at the
benchmarked sizes). Write-allocate traffic is counted neither here nor in the copy bandwidth,
so the two are comparable: "share of copy bandwidth" = (ideal bytes / time) / (copy bytes /
copy time).

Copy bandwidth (:class:`CopyBandwidth`)
---------------------------------------
``y.copy_(x)`` on two fp32 buffers of ``max(8 × last-level cache, 256 MiB)`` each (the L2 cache
on a GPU: a device-to-device copy), counting ``2 × x.nbytes`` (read x + write y) per copy,
median of repeats after warm-up.

Timing (:func:`measure`)
------------------------
Each provider is a zero-argument *step*: one forward + ``torch.autograd.grad`` of the output
w.r.t. every differentiable input (no ``.grad`` is accumulated). Steps are warmed up, calibrated
so that one sample lasts at least ``min_sample_s`` (several calls per sample for tiny inputs),
then sampled in *interleaved rounds*: every round takes a few samples of every provider in turn
(the order rotating from round to round), so a slow phase of a noisy machine hits all providers
alike. Reported: the median time per call, and the inter-quartile range relative to it. The
garbage collector is off while samples are taken.

Input rotation (:func:`rotation_sets`)
--------------------------------------
When one input set (inputs + incoming gradient) is smaller than 4 × the last-level cache,
several independent sets are made and the step cycles through them, so that each timed call
reads data that the previous call did not touch, as in a training step where these tensors come
from other layers.
"""

from __future__ import annotations

import gc
import math
import os
import platform
import re
import statistics
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

import torch

MiB = 1 << 20


class DeviceUnavailableError(RuntimeError):
    """The device asked for cannot be benchmarked on this machine."""


# --------------------------------------------------------------------------------------------
# machine


def _cache_size_bytes(text: str) -> int | None:
    m = re.fullmatch(r"\s*(\d+)\s*([KMG]?)i?B?\s*", text, re.I)
    if not m:
        return None
    return int(m.group(1)) * {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}[m.group(2).upper()]


def last_level_cache_bytes() -> int:
    """Size of the largest (last-level) data cache seen by CPU 0, from sysfs; 32 MiB if unknown."""
    best_level, best = -1, None
    base = "/sys/devices/system/cpu/cpu0/cache"
    try:
        for entry in os.listdir(base):
            if not entry.startswith("index"):
                continue
            with open(os.path.join(base, entry, "level")) as f:
                level = int(f.read())
            with open(os.path.join(base, entry, "type")) as f:
                kind = f.read().strip()
            with open(os.path.join(base, entry, "size")) as f:
                size = _cache_size_bytes(f.read())
            if kind != "Instruction" and size and level > best_level:
                best_level, best = level, size
    except (OSError, ValueError):
        pass
    return best or 32 * MiB


LLC_BYTES = last_level_cache_bytes()


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_is_virtual() -> bool:
    """Whether the CPU flags say this runs under a hypervisor (a VM)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return "hypervisor" in line.split()
    except OSError:
        pass
    return False


def _slug(text: str) -> str:
    text = re.sub(r"\((R|TM|tm|r)\)", " ", text)
    text = re.sub(r"@.*$", "", text)
    text = re.sub(r"\b(CPU|Processor|\d+-Core|NVIDIA|GPU)\b", " ", text, flags=re.I)
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def short_machine_name(device: str = "cpu") -> str:
    """A file-name-friendly name of what is measured: the CPU model and core count
    (``amd-epyc-2c``), or the GPU model (``h200``)."""
    if device == "cuda" and torch.cuda.is_available():
        return _slug(torch.cuda.get_device_name()) or "cuda"
    return f"{_slug(cpu_model()) or platform.machine()}-{os.cpu_count()}c"


def machine_info(device: str = "cpu") -> dict[str, Any]:
    """What was measured on: CPU, cores, threads, caches, memory, GPU, torch, fastgan."""
    info: dict[str, Any] = {
        "device": device,
        "cpu_model": cpu_model(),
        "virtual_machine": cpu_is_virtual(),
        "logical_cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "last_level_cache_MiB": LLC_BYTES / MiB,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    alloc = {k: v for k, v in os.environ.items() if k in ("LD_PRELOAD", "GLIBC_TUNABLES") or k.startswith("MALLOC_")}
    info["allocator"] = alloc or f"default ({platform.libc_ver()[0] or 'libc'} {platform.libc_ver()[1]})".strip()
    try:
        with open("/sys/kernel/mm/transparent_hugepage/enabled") as f:
            info["transparent_hugepage"] = f.read().strip()
    except OSError:
        pass
    try:
        with open("/proc/meminfo") as f:
            info["memory_GiB"] = round(int(f.readline().split()[1]) / (1 << 20), 1)
    except (OSError, ValueError, IndexError):
        pass
    if device == "cuda" and torch.cuda.is_available():
        props = torch.cuda.get_device_properties(torch.cuda.current_device())
        info.update(
            gpu=props.name,
            gpu_memory_GiB=round(props.total_memory / (1 << 30), 1),
            gpu_capability=f"{props.major}.{props.minor}",
            gpu_multiprocessors=props.multi_processor_count,
            gpu_l2_cache_MiB=getattr(props, "L2_cache_size", 0) / MiB or None,
            torch_cuda=torch.version.cuda,
        )
    try:
        import importlib.metadata

        info["triton"] = importlib.metadata.version("triton")
    except Exception:
        info["triton"] = None
    try:
        import fastgan

        info["fastgan"] = fastgan.__version__
        info["fastgan_backends"] = fastgan.available_backends()
    except Exception as exc:  # pragma: no cover - the benchmark still describes the machine
        info["fastgan"] = f"not importable: {exc}"
    return info


# --------------------------------------------------------------------------------------------
# other processes' CPU use (on a small shared machine, a compiler on one core stalls every
# OpenMP barrier of the timed code and the times jump by scheduler ticks)

_HZ = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _machine_cpu_seconds() -> tuple[float, float] | None:
    """(busy, total) CPU seconds of the whole machine since boot, from /proc/stat."""
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    total = sum(fields[:8])  # user nice system idle iowait irq softirq steal
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (total - idle) / _HZ, total / _HZ


def _own_cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system


class ForeignLoad:
    """Share of the machine's CPU capacity used by OTHER processes between :meth:`start` and
    :meth:`stop` (0: this process ran alone; 0.5 on 2 CPUs: another process kept one busy).
    ``None`` where /proc/stat is unreadable."""

    def start(self) -> "ForeignLoad":
        self._m, self._own = _machine_cpu_seconds(), _own_cpu_seconds()
        return self

    def stop(self) -> float | None:
        m, own = _machine_cpu_seconds(), _own_cpu_seconds()
        if m is None or self._m is None:
            return None
        busy, total = m[0] - self._m[0], m[1] - self._m[1]
        if total <= 0:
            return 0.0
        return min(1.0, max(0.0, (busy - (own - self._own)) / total))


def wait_until_quiet(threshold: float = 0.1, max_wait_s: float = 60.0, window_s: float = 0.5) -> tuple[float, float | None]:
    """Sleep until other processes use less than ``threshold`` of the CPUs over ``window_s``,
    for at most ``max_wait_s``. Returns (seconds waited, last foreign load seen)."""
    t0 = time.perf_counter()
    while True:
        mon = ForeignLoad().start()
        time.sleep(window_s)
        load = mon.stop()
        waited = time.perf_counter() - t0
        if load is None or load < threshold or waited >= max_wait_s:
            return waited, load


# --------------------------------------------------------------------------------------------
# timers


class WallTimer:
    """Host wall-clock timing (``time.perf_counter``) for CPU work."""

    name = "perf_counter"

    def sync(self) -> None:
        """Nothing to wait for: CPU work is done when the call returns."""

    def sample(self, step: Callable[[], Any], calls: int) -> float:
        """Seconds per call of ``calls`` consecutive calls of ``step``."""
        t0 = time.perf_counter()
        for _ in range(calls):
            step()
        return (time.perf_counter() - t0) / calls


class CudaEventTimer:
    """Device-side timing with CUDA events on the current stream.

    ``event`` and ``synchronize`` default to ``torch.cuda.Event`` and
    ``torch.cuda.synchronize``; they are parameters so that the timer's logic can be exercised
    without a GPU (any object with ``record()``, ``synchronize()`` and ``elapsed_time(end)`` in
    milliseconds will do).
    """

    name = "cuda events"

    def __init__(self, event: Callable[..., Any] | None = None, synchronize: Callable[[], None] | None = None) -> None:
        self._event = event or torch.cuda.Event
        self._sync = synchronize or torch.cuda.synchronize

    def sync(self) -> None:
        self._sync()

    def sample(self, step: Callable[[], Any], calls: int) -> float:
        start, end = self._event(enable_timing=True), self._event(enable_timing=True)
        start.record()
        for _ in range(calls):
            step()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1e3 / calls


# --------------------------------------------------------------------------------------------
# devices


@dataclass
class Device:
    """What a benchmark runs on: the torch device type, its timer and its cache size (for the
    input rotation and the copy-bandwidth buffers)."""

    type: str
    timer: Any
    cache_bytes: int
    description: str

    @property
    def torch_device(self) -> torch.device:
        return torch.device(self.type)

    @property
    def rotate_bytes(self) -> int:
        """An input set smaller than this is rotated (several sets cycled)."""
        return 4 * self.cache_bytes

    def synchronize(self) -> None:
        self.timer.sync()


def cuda_unavailable_reason() -> str | None:
    """Why ``--device cuda`` cannot run here, or ``None`` when it can."""
    if torch.version.cuda is None and getattr(torch.version, "hip", None) is None:
        return f"this torch ({torch.__version__}) is a CPU-only build"
    if not torch.cuda.is_available():
        return "torch sees no CUDA device (torch.cuda.is_available() is False)"
    return None


def get_device(name: str) -> Device:
    """The :class:`Device` ``"cpu"`` or ``"cuda"``; :class:`DeviceUnavailableError` (with the
    reason) when there is no usable CUDA device, ``ValueError`` for another name."""
    if name == "cpu":
        vm = " VM" if cpu_is_virtual() else ""
        return Device("cpu", WallTimer(), LLC_BYTES, f"{cpu_model()}{vm}, {os.cpu_count()} logical CPUs, "
                      f"{torch.get_num_threads()} torch threads")
    if name == "cuda":
        why = cuda_unavailable_reason()
        if why is not None:
            raise DeviceUnavailableError(f"--device cuda: no GPU to benchmark on: {why}")
        props = torch.cuda.get_device_properties(torch.cuda.current_device())
        l2 = getattr(props, "L2_cache_size", 0) or 64 * MiB
        return Device("cuda", CudaEventTimer(), l2, f"{props.name} ({props.total_memory / (1 << 30):.0f} GiB)")
    raise ValueError(f"device must be 'cpu' or 'cuda', got {name!r}")


# --------------------------------------------------------------------------------------------
# copy bandwidth


class CopyBandwidth:
    """Measured copy bandwidth of ``y.copy_(x)`` on ``device`` (see the module docstring), in
    GB/s (1e9 B/s). The two buffers are allocated (and touched) once, so that the measurement
    can be repeated cheaply during a run: the bandwidth of a shared VM moves from one minute to
    the next."""

    def __init__(self, device: Device, buffer_bytes: int | None = None) -> None:
        self.device = device
        nbytes = buffer_bytes or max(8 * device.cache_bytes, 256 * MiB)
        self.x = torch.empty(nbytes // 4, dtype=torch.float32, device=device.type).normal_()
        self.y = torch.empty_like(self.x)
        self.y.copy_(self.x)
        device.synchronize()

    def measure(self, repeats: int = 15, warmup: int = 2) -> dict[str, float]:
        """``{"GBps": median, "GBps_min": ..., "GBps_max": ..., "buffer_MiB": ...}``."""
        x, y, timer = self.x, self.y, self.device.timer

        def copy() -> None:
            y.copy_(x)

        for _ in range(warmup):
            copy()
        timer.sync()
        gc_was = gc.isenabled()
        gc.disable()
        try:
            times = [timer.sample(copy, 1) for _ in range(repeats)]
        finally:
            if gc_was:
                gc.enable()
        rates = sorted(2 * x.nbytes / max(t, 1e-12) / 1e9 for t in times)
        return {
            "GBps": statistics.median(rates),
            "GBps_min": rates[0],
            "GBps_max": rates[-1],
            "buffer_MiB": x.nbytes / MiB,
        }

    def close(self) -> None:
        del self.x, self.y


# --------------------------------------------------------------------------------------------
# ideal bytes (DESIGN.md §2), see the module docstring for what is counted

#: (forward, backward) traffic in units of N elements of one input, per operator
TRAFFIC_UNITS: dict[str, tuple[int, int]] = {
    "interpolate": (3, 5),  # fwd: read real, fake, write out; bwd: read g, real, fake, write 2
    "grad_norm_penalty": (1, 2),  # fwd: read grads; bwd: read grads, write d_grads
    "reconstruction_error": (2, 4),  # fwd: read x, recon; bwd: read x, recon, write both grads
    "adversarial_loss": (1, 2),  # N = Nr + Nf: fwd read both; bwd read both, write both grads
}


def ideal_bytes(op: str, numel: int, element_size: int = 4, *, backward: bool = True) -> int:
    """Ideal memory traffic in bytes of one forward (+ backward) of ``op``.

    ``numel`` is N, the element count of one input (for ``adversarial_loss``: Nr + Nf, the
    elements of both score tensors together).
    """
    fwd, bwd = TRAFFIC_UNITS[op]
    return (fwd + (bwd if backward else 0)) * numel * element_size


# --------------------------------------------------------------------------------------------
# input rotation


def rotation_sets(set_bytes: int, rotate_bytes: int, max_sets: int = 64) -> int:
    """How many independent input sets to cycle so that one full cycle spans at least
    ``rotate_bytes`` (1 when a single set already does)."""
    if set_bytes >= rotate_bytes:
        return 1
    return max(2, min(max_sets, math.ceil(rotate_bytes / max(set_bytes, 1))))


def rotating(sets: Sequence[Any]) -> Callable[[], Any]:
    """A zero-argument function returning the next element of ``sets``, cyclically."""
    state = {"i": -1}
    n = len(sets)

    def next_set() -> Any:
        state["i"] = (state["i"] + 1) % n
        return sets[state["i"]]

    return next_set


# --------------------------------------------------------------------------------------------
# timing


@dataclass
class Timing:
    """Per-call times in seconds of one provider (each sample averages ``calls`` calls)."""

    samples: list[float] = field(default_factory=list)
    calls: int = 1

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def iqr_rel(self) -> float:
        """Inter-quartile range relative to the median (a noise indicator); NaN below 4 samples."""
        if len(self.samples) < 4:
            return float("nan")
        q = statistics.quantiles(self.samples, n=4)
        return (q[2] - q[0]) / self.median

    @property
    def minimum(self) -> float:
        return min(self.samples)


def measure(
    steps: dict[str, Callable[[], Any]],
    *,
    timer: Any = None,
    contexts: dict[str, Callable[[], Any]] | None = None,
    warmup_s: float = 0.1,
    min_warmup_calls: int = 3,
    min_sample_s: float = 1e-3,
    budget_s: float = 1.0,
    min_samples: int = 10,
    max_samples: int = 200,
    rounds: int = 5,
) -> dict[str, Timing]:
    """Time every zero-argument ``step`` (one forward + backward each) in interleaved rounds.

    ``timer`` is a :class:`WallTimer` (default) or :class:`CudaEventTimer`. ``contexts[name]()``
    (optional) returns a context manager entered around every block of ``name``'s calls
    (warm-up, calibration, each round's samples) — for instance ``lambda:
    fastgan.use_backend("cpu")`` — so that the selection is fixed while it runs and never leaks
    into another provider's calls.

    Each provider gets about ``budget_s`` of timed calls (at least ``min_samples`` samples,
    unless one round of a provider lasts more than twice its share ``budget_s / rounds``: a
    calibration made while other processes ran can be far off, and the run must still end).
    """
    timer = timer or WallTimer()
    contexts = contexts or {}
    names = list(steps)
    ctx = {name: contexts.get(name, nullcontext) for name in names}
    timings: dict[str, Timing] = {}
    per_round: dict[str, int] = {}
    for name in names:  # warm-up and calibration
        step = steps[name]
        with ctx[name]():
            t0, calls = time.perf_counter(), 0
            while calls < min_warmup_calls or time.perf_counter() - t0 < warmup_s:
                step()
                calls += 1
                if calls % 8 == 0:
                    timer.sync()  # on a GPU: the warm-up lasts warmup_s of device work
            timer.sync()
            # median of a few short samples: robust to one call hit by another process
            reps = max(1, min(10, calls // 5))
            t_call = statistics.median(timer.sample(step, reps) for _ in range(5))
        n = max(1, math.ceil(min_sample_s / max(t_call, 1e-9)))
        total = int(min(max_samples, max(min_samples, budget_s / (n * max(t_call, 1e-9)))))
        timings[name] = Timing(calls=n)
        per_round[name] = max(1, math.ceil(total / rounds))
    round_cap = max(2.0 * budget_s / rounds, min_sample_s)
    gc_was = gc.isenabled()
    try:
        for r in range(rounds):
            order = names[r % len(names):] + names[: r % len(names)]
            for name in order:
                step, timing = steps[name], timings[name]
                with ctx[name]():
                    step()  # re-warm after the other providers ran
                    timer.sync()
                    gc.collect()
                    gc.disable()
                    t_round = time.perf_counter()
                    for _ in range(per_round[name]):
                        timing.samples.append(timer.sample(step, timing.calls))
                        # calibration on a busy machine can be far off: never spend more than
                        # twice this round's share of the budget
                        if time.perf_counter() - t_round > round_cap:
                            break
                    if gc_was:
                        gc.enable()
    finally:
        if gc_was:
            gc.enable()
    return timings


# --------------------------------------------------------------------------------------------
# formatting


def fmt_time(seconds: float | None) -> str:
    """A time in the unit that suits it (µs below 1 ms, ms otherwise); ``–`` for none."""
    if seconds is None or seconds != seconds:
        return "–"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} µs"
    return f"{seconds * 1e3:.2f} ms"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)
