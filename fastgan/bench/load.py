"""Other processes' use of the CPUs while a benchmark runs: on a small shared machine, a
compiler on one core stalls every OpenMP barrier of the timed code and the times jump by
scheduler ticks. :class:`ForeignLoad` measures that share over an interval, :func:`wait_until_quiet`
waits for it to fall, and :class:`Quiet` spends a whole run's budget of such waits."""

from __future__ import annotations

import os
import sys
import time

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


class Quiet:
    """Waits for other processes to leave the CPUs, within a total budget of seconds (CPU runs;
    a budget of 0 never waits). A wait ends when their load is below ``threshold``."""

    def __init__(self, budget_s: float, window_s: float = 0.5, log=None, threshold: float = 0.1) -> None:
        self.left, self.waited, self.window_s, self.threshold = budget_s, 0.0, window_s, threshold
        self.log = log or (lambda msg: print(msg, file=sys.stderr))

    def wait(self) -> None:
        if self.left <= 0:
            return
        waited, load = wait_until_quiet(threshold=self.threshold, max_wait_s=min(60.0, self.left), window_s=self.window_s)
        self.left -= waited
        self.waited += waited
        if waited > 1:
            self.log(f"  waited {waited:.0f}s for other processes to leave the CPUs (their load now {load:.0%})")
