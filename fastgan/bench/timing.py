"""The timing of ``fastgan bench`` (docs/design.md §5): the interleaved timing of forward +
backward steps (:func:`measure`), the input rotation, and the formatting of times.

Nothing here asserts on a time: a benchmark reports, it never fails because a machine is slow.
The rest of the measurement core lives beside it, one concern a module:
:mod:`~fastgan.bench.machine` (what was measured on), :mod:`~fastgan.bench.load` (other
processes' CPU use), :mod:`~fastgan.bench.devices` (devices and timers) and
:mod:`~fastgan.bench.bandwidth` (copy bandwidth, ideal bytes); their names stay importable from
here.

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
import statistics
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

# the measurement core's other modules, importable from here as before the split
from fastgan.bench.bandwidth import TRAFFIC_UNITS, CopyBandwidth, ideal_bytes  # noqa: F401
from fastgan.bench.devices import (  # noqa: F401
    CudaEventTimer,
    Device,
    DeviceUnavailableError,
    WallTimer,
    cuda_unavailable_reason,
    get_device,
)
from fastgan.bench.load import ForeignLoad, wait_until_quiet  # noqa: F401
from fastgan.bench.machine import (  # noqa: F401
    LLC_BYTES,
    MiB,
    cpu_is_virtual,
    cpu_model,
    last_level_cache_bytes,
    machine_info,
    short_machine_name,
)


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


def calibrate(step: Callable[[], Any], timer: Any, *, warmup_s: float = 0.1, min_warmup_calls: int = 3,
              min_sample_s: float = 1e-3, budget_s: float = 1.0, min_samples: int = 10,
              max_samples: int = 200) -> tuple[int, int]:
    """Warm ``step`` up (at least ``min_warmup_calls`` calls and ``warmup_s`` seconds), then
    return (calls per sample, so that one lasts at least ``min_sample_s``; samples, so that
    they last about ``budget_s`` in all, between ``min_samples`` and ``max_samples``)."""
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
    return n, total


def _round(step: Callable[[], Any], timer: Any, timing: Timing, samples: int, cap_s: float, gc_was: bool) -> None:
    """One round of one provider: re-warm, then up to ``samples`` samples (garbage collector
    off), stopping once the round has lasted ``cap_s``."""
    step()  # re-warm after the other providers ran
    timer.sync()
    gc.collect()
    gc.disable()
    t_round = time.perf_counter()
    for _ in range(samples):
        timing.samples.append(timer.sample(step, timing.calls))
        # calibration on a busy machine can be far off: never spend more than twice this
        # round's share of the budget
        if time.perf_counter() - t_round > cap_s:
            break
    if gc_was:
        gc.enable()


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
        with ctx[name]():
            n, total = calibrate(steps[name], timer, warmup_s=warmup_s, min_warmup_calls=min_warmup_calls,
                                 min_sample_s=min_sample_s, budget_s=budget_s, min_samples=min_samples,
                                 max_samples=max_samples)
        timings[name] = Timing(calls=n)
        per_round[name] = max(1, math.ceil(total / rounds))
    round_cap = max(2.0 * budget_s / rounds, min_sample_s)
    gc_was = gc.isenabled()
    try:
        for r in range(rounds):
            for name in names[r % len(names):] + names[: r % len(names)]:
                with ctx[name]():
                    _round(steps[name], timer, timings[name], per_round[name], round_cap, gc_was)
    finally:
        if gc_was:
            gc.enable()
    return timings


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
