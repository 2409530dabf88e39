"""The torch thread count of a training run, chosen while it trains (``fastgan train --threads auto``).

The toy networks are small MLPs. On an idle machine two threads make a step faster; on a
machine whose cores are busy with other work they make it many times slower, because OpenMP's
threads wait for each other on a shared core. No fixed count is right for both, so
:class:`ThreadChooser` times the steps and keeps the faster count, probing again from time to
time as the machine's load changes.

It is used only where the thread count does not change the results: on the 2-D data the MLPs'
weights are bit-identical on 1, 2 or 4 threads, even when the count changes at every step
(tested at the default sizes; checked by hand at batch 512), so the choice changes the speed of
a run and nothing else. At much larger sizes a matrix product may split its sums by thread and
change the last bits; ``--threads N`` fixes the count. The convolutional digits networks are not
(oneDNN's convolutions split their sums by thread), so they keep one thread unless told.
"""

from __future__ import annotations

import os
import statistics
from collections import deque
from collections.abc import Callable, Sequence

import torch

__all__ = ["ThreadChooser", "available_cores", "auto_counts"]


def available_cores() -> int:
    """The CPU cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def auto_counts(cores: int | None = None) -> tuple[int, ...]:
    """The thread counts ``--threads auto`` chooses among: 1, 2 and 4, as far as the cores go
    (more threads than that only split these small matrix products into slivers)."""
    cores = available_cores() if cores is None else cores
    return tuple(n for n in (1, 2, 4) if n <= cores)


class ThreadChooser:
    """Keeps the fastest of ``counts`` torch threads by timing training steps.

    Call it after every step with the step's duration in seconds. It starts on ``counts[0]``;
    after ``warmup`` steps, and then every ``probe_every`` steps, it runs each other count for
    ``probe_steps`` steps (the first step after a switch is not timed: the thread pool starts)
    and switches to the count with the fastest median step if that beats the current one by at
    least ``min_gain``; it probes at once when the median of the last five steps grows past
    ``slowdown`` × the median the current count was chosen on (the machine got busy). A probe
    step slower than ``abort_factor`` × the current median ends that
    count's probe at once, so a busy machine costs one slow step per probe. A probe that finds
    nothing faster doubles the interval to the next one (up to ``max_interval``). ``choices``
    records every switch as ``(step, threads)``, starting with ``(first_step, counts[0])``.
    """

    def __init__(
        self,
        counts: Sequence[int],
        probe_every: int = 500,
        probe_steps: int = 8,
        warmup: int = 20,
        abort_factor: float = 3.0,
        min_gain: float = 0.1,
        slowdown: float = 1.5,
        max_interval: int = 4000,
        set_threads: Callable[[int], None] = torch.set_num_threads,
        first_step: int = 0,
    ) -> None:
        counts = list(dict.fromkeys(int(c) for c in counts))
        if not counts or min(counts) < 1:
            raise ValueError(f"counts must be thread counts >= 1, got {list(counts)}")
        for name, value in (("probe_every", probe_every), ("probe_steps", probe_steps), ("warmup", warmup),
                            ("max_interval", max_interval)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        for name, value in (("abort_factor", abort_factor), ("slowdown", slowdown)):
            if not value > 1:  # also refuses NaN
                raise ValueError(f"{name} must be > 1, got {value!r}")
        if not 0 <= min_gain < 1:
            raise ValueError(f"min_gain must be in [0, 1), got {min_gain!r}")
        self.counts = counts
        self.probe_every, self.probe_steps, self.warmup = probe_every, probe_steps, warmup
        self.abort_factor, self.min_gain, self.max_interval = abort_factor, min_gain, max_interval
        self.slowdown = slowdown
        self._set = set_threads
        self.current = counts[0]
        self._set(self.current)
        self.steps = first_step  # the training step the run is at (a resumed run's)
        self.choices: list[tuple[int, int]] = [(first_step, self.current)]
        self._recent: deque[float] = deque(maxlen=max(2 * probe_steps, 16))
        self._interval = warmup
        self._since = 0
        self._queue: list[int] = []  # counts still to probe in this round
        self._probing: int | None = None
        self._probe_times: list[float] = []
        self._results: dict[int, float] = {}
        self._chosen_at: float | None = None  # the median step of the current count when chosen

    @property
    def probing(self) -> bool:
        """Whether the next step runs on a count under trial (not the current one)."""
        return self._probing is not None

    def __call__(self, seconds: float) -> None:
        """Record one training step of ``seconds`` and decide the threads of the next (a
        duration that is not a finite number >= 0 counts the step but is not timed)."""
        self.steps += 1
        if not 0 <= seconds < float("inf"):
            return
        if self._probing is None:
            self._recent.append(seconds)
            self._since += 1
            due = self._since >= self._interval or self._slowed()
            if len(self.counts) > 1 and due and len(self._recent) >= self.probe_steps:
                self._results = {self.current: statistics.median(self._recent)}
                self._queue = [c for c in self.counts if c != self.current]
                self._next_probe()
            return
        self._probe_times.append(seconds)
        timed = self._probe_times[1:]  # the first step after a switch starts the pool
        if timed and timed[-1] > self.abort_factor * self._results[self.current]:
            self._results[self._probing] = float("inf")
            self._next_probe()
        elif len(timed) >= self.probe_steps:
            self._results[self._probing] = statistics.median(timed)
            self._next_probe()

    def _slowed(self) -> bool:
        """The last few steps are much slower than when this count was chosen: the machine's
        load changed, so probe now rather than at the next interval."""
        if self._chosen_at is None or len(self._recent) < max(5, self.probe_steps):
            return False
        last = statistics.median(list(self._recent)[-5:])
        return last > self.slowdown * self._chosen_at

    def _next_probe(self) -> None:
        if self._queue:
            self._probing = self._queue.pop(0)
            self._probe_times = []
            self._set(self._probing)
            return
        self._probing = None
        base = self._results[self.current]
        best = min(self._results, key=self._results.__getitem__)
        if best != self.current and self._results[best] < (1.0 - self.min_gain) * base:
            self.current = best
            self.choices.append((self.steps, best))
            self._interval = self.probe_every
        else:
            self._interval = min(2 * max(self._interval, self.probe_every // 2), self.max_interval)
        self._chosen_at = self._results[self.current]
        self._recent.clear()
        self._since = 0
        self._set(self.current)
