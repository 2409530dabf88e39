"""Shared helpers of fastgan's benchmarks (DESIGN.md §5): machine description, measured copy
bandwidth, ideal bytes per operator, input rotation, and the timing of forward + backward steps.

Everything here times with :func:`time.perf_counter` and leaves ``torch.set_num_threads`` at its
default, so every provider runs with the threads a user gets. Nothing here asserts on a time.

What is counted as "ideal bytes" (:func:`ideal_bytes`)
-----------------------------------------------------
The traffic column of DESIGN.md §2, for ONE forward + backward step with gradients w.r.t. every
differentiable input, counting each big tensor read or written once from/to memory by a kernel
that does no more than it must. ``N`` is the number of elements of one input, ``e`` the element
size in bytes:

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

Per-sample vectors of B elements (alpha, its gradient, the per-sample errors and their incoming
gradient) and 0-dim values are not counted: they are at most B·e bytes, below 0.01 % of N·e at
the benchmarked sizes. Write-allocate traffic (a cache line read before it is written) is not
counted either, in the ideal bytes or in the copy bandwidth, so the two are comparable: "share
of copy bandwidth" = (ideal bytes / time) / (copy bytes / copy time).

Copy bandwidth (:func:`copy_bandwidth`)
---------------------------------------
``y.copy_(x)`` on two fp32 buffers of ``max(8 × last-level cache, 256 MiB)`` each, counting
``2 × x.nbytes`` (read x + write y) per copy, median of repeats after warm-up, at the default
thread count.

Timing (:func:`measure`)
------------------------
Each provider is a zero-argument *step*: one forward + ``torch.autograd.grad`` of the output
(with a fixed random incoming gradient for non-scalar outputs) w.r.t. every differentiable input.
``torch.autograd.grad`` rather than ``.backward()`` so that no ``.grad`` is accumulated (which
would add a read + write of every gradient). Steps are warmed up, calibrated so that one sample
lasts at least ``min_sample_s`` (several calls per sample for tiny inputs), then sampled in
*interleaved rounds*: every round takes a few samples of every provider in turn (the order
rotating from round to round), so a slow phase of a noisy machine hits all providers alike.
Reported: the median time per call, and the inter-quartile range relative to it. The garbage
collector is off while samples are taken.

Input rotation (:func:`rotation_sets`)
--------------------------------------
When one input set (inputs + incoming gradient) is smaller than ``ROTATE_BYTES`` (4 × the
last-level cache), several independent input sets are made and the step cycles through them,
so that each timed call reads data that the previous call did not touch (cold-ish: out of L1/L2,
mostly out of the LLC), as in a training step where these tensors come from other layers.
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

# --------------------------------------------------------------------------------------------
# machine


def _cache_size_bytes(text: str) -> int | None:
    m = re.fullmatch(r"\s*(\d+)\s*([KMG]?)i?B?\s*", text, re.I)
    if not m:
        return None
    return int(m.group(1)) * {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}[m.group(2).upper()]


def last_level_cache_bytes() -> int:
    """Size of the largest (last-level) cache seen by CPU 0, from sysfs; 32 MiB if unknown."""
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
    except OSError:
        pass
    return best or 32 * MiB


LLC_BYTES = last_level_cache_bytes()
#: an input set smaller than this is rotated (several sets cycled); see the module docstring
ROTATE_BYTES = 4 * LLC_BYTES


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def short_machine_name() -> str:
    """A file-name-friendly CPU name with the core count, e.g. ``amd-epyc-2c``."""
    model = cpu_model()
    model = re.sub(r"\((R|TM|tm|r)\)", " ", model)
    model = re.sub(r"@.*$", "", model)
    model = re.sub(r"\b(CPU|Processor|\d+-Core)\b", " ", model, flags=re.I)
    slug = re.sub(r"[^a-z0-9]+", "-", model.lower()).strip("-") or platform.machine()
    return f"{slug}-{os.cpu_count()}c"


def machine_info() -> dict[str, Any]:
    """What was measured on: CPU, cores, threads, caches, memory, torch, fastgan."""
    info: dict[str, Any] = {
        "cpu_model": cpu_model(),
        "logical_cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "last_level_cache_MiB": LLC_BYTES / MiB,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    # the allocator decides whether each new output is fresh pages (faulted in by the kernel)
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
    try:
        import fastgan

        info["fastgan"] = fastgan.__version__
        info["fastgan_backends"] = fastgan.available_backends()
    except Exception as exc:  # pragma: no cover - benchmarks still describe the machine
        info["fastgan"] = f"not importable: {exc}"
    return info


# --------------------------------------------------------------------------------------------
# other processes' CPU use (the machine is shared: a compiler on one of 2 cores stalls every
# OpenMP barrier of the timed code, and the times jump by scheduler ticks)

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
# copy bandwidth


class CopyBandwidth:
    """Measured copy bandwidth of ``y.copy_(x)`` (see the module docstring), in GB/s (1e9 B/s).

    The two buffers are allocated (and touched) once, so that the measurement can be repeated
    cheaply during a run: the bandwidth of a shared VM moves from one minute to the next.
    """

    def __init__(self, buffer_bytes: int | None = None) -> None:
        nbytes = buffer_bytes or max(8 * LLC_BYTES, 256 * MiB)
        self.x = torch.empty(nbytes // 4, dtype=torch.float32).normal_()
        self.y = torch.empty_like(self.x)
        self.y.copy_(self.x)

    def measure(self, repeats: int = 15, warmup: int = 2) -> dict[str, float]:
        """``{"GBps": median, "GBps_min": ..., "GBps_max": ..., "buffer_MiB": ...}``."""
        x, y = self.x, self.y
        for _ in range(warmup):
            y.copy_(x)
        times = []
        gc_was = gc.isenabled()
        gc.disable()
        try:
            for _ in range(repeats):
                t0 = time.perf_counter()
                y.copy_(x)
                times.append(time.perf_counter() - t0)
        finally:
            if gc_was:
                gc.enable()
        rates = sorted(2 * x.nbytes / t / 1e9 for t in times)
        return {
            "GBps": statistics.median(rates),
            "GBps_min": rates[0],
            "GBps_max": rates[-1],
            "buffer_MiB": x.nbytes / MiB,
        }


def copy_bandwidth(buffer_bytes: int | None = None, repeats: int = 15, warmup: int = 3) -> dict[str, float]:
    """One measurement of the copy bandwidth (see :class:`CopyBandwidth`)."""
    return CopyBandwidth(buffer_bytes).measure(repeats, warmup)


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


def rotation_sets(set_bytes: int, max_sets: int = 64) -> int:
    """How many independent input sets to cycle so that one full cycle spans at least
    ``ROTATE_BYTES`` (1 when a single set already does)."""
    if set_bytes >= ROTATE_BYTES:
        return 1
    return max(2, min(max_sets, math.ceil(ROTATE_BYTES / max(set_bytes, 1))))


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
        """Inter-quartile range relative to the median (a noise indicator)."""
        if len(self.samples) < 4:
            return float("nan")
        q = statistics.quantiles(self.samples, n=4)
        return (q[2] - q[0]) / self.median

    @property
    def minimum(self) -> float:
        return min(self.samples)


def _sample(step: Callable[[], Any], calls: int) -> float:
    t0 = time.perf_counter()
    for _ in range(calls):
        step()
    return (time.perf_counter() - t0) / calls


def measure(
    steps: dict[str, Callable[[], Any]],
    *,
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

    ``contexts[name]()`` (optional) returns a context manager entered around every block of
    ``name``'s calls (warm-up, calibration, each round's samples) — for instance
    ``lambda: fastgan.use_backend("cpu")`` — so that the selection is fixed while it runs and
    never leaks into another provider's calls.

    Each provider gets about ``budget_s`` of timed calls (at least ``min_samples`` samples).
    """
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
            # median of a few short samples: robust to one call hit by another process
            reps = max(1, min(10, calls // 5))
            t_call = statistics.median(_sample(step, reps) for _ in range(5))
        n = max(1, math.ceil(min_sample_s / max(t_call, 1e-9)))
        total = int(min(max_samples, max(min_samples, budget_s / (n * t_call))))
        timings[name] = Timing(calls=n)
        per_round[name] = max(1, math.ceil(total / rounds))
    gc_was = gc.isenabled()
    try:
        for r in range(rounds):
            order = names[r % len(names):] + names[: r % len(names)]
            for name in order:
                step, timing = steps[name], timings[name]
                with ctx[name]():
                    step()  # re-warm after the other providers ran
                    gc.collect()
                    gc.disable()
                    for _ in range(per_round[name]):
                        timing.samples.append(_sample(step, timing.calls))
                    if gc_was:
                        gc.enable()
    finally:
        if gc_was:
            gc.enable()
    return timings


# --------------------------------------------------------------------------------------------
# formatting


def fmt_time(seconds: float) -> str:
    """A time in the unit that suits it (µs below 1 ms, ms otherwise)."""
    if seconds != seconds:  # NaN
        return "–"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} µs"
    return f"{seconds * 1e3:.2f} ms"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)
