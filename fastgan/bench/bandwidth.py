"""Memory traffic: the measured copy bandwidth of a device and the ideal bytes of each
operator, whose ratio is the "% copy BW" column of ``fastgan bench``.

What is counted as "ideal bytes" (:func:`ideal_bytes`)
-----------------------------------------------------
The traffic column of docs/design.md §2, for ONE forward + backward step with gradients w.r.t.
every differentiable input, counting each big tensor read or written once by a kernel that does
no more than it must. ``N`` is the number of elements of one input, ``e`` the element size:

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
"""

from __future__ import annotations

import gc
import statistics

import torch

from fastgan.bench.devices import Device
from fastgan.bench.machine import MiB


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
