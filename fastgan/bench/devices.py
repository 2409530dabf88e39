"""Devices and timers of ``fastgan bench`` (:func:`get_device`).

``cpu``
    :class:`WallTimer` (``time.perf_counter``) at torch's default thread count, as users run.
``cuda``
    :class:`CudaEventTimer`: a CUDA event is recorded before and after the calls of a sample
    on the current stream and the elapsed time read once the end event has completed, so a
    sample measures the device's work, launch gaps included, and never the host racing ahead.
    Warm-up and calibration end with ``torch.cuda.synchronize()``. Asking for ``cuda`` where
    torch sees no CUDA device raises :class:`DeviceUnavailableError` with the reason.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from fastgan.bench.machine import LLC_BYTES, MiB, cpu_is_virtual, cpu_model


class DeviceUnavailableError(RuntimeError):
    """The device asked for cannot be benchmarked on this machine."""


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
