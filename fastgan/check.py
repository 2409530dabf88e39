"""``fastgan check``: the correctness matrix on this machine — a user's first step on new hardware.

Every operator of :mod:`fastgan.ops` (each kind, ``p``, one-sidedness and center, over odd sizes,
a batch of one, rows longer than one parallel chunk, channels-last, batch-inner and sliced
layouts) and every family of :mod:`fastgan.functional` (GAN, WGAN, WGAN-GP, R1, LSGAN, hinge,
EBGAN with the pulling-away term, BEGAN and its k update) runs on every available backend
(or those asked for) × device × dtype, forward and the gradient with respect to every
differentiable input, and is compared with the ``reference`` backend evaluated in float64 on the
same (already rounded) input values. A table of the largest errors is printed; the exit status
is 1 when any comparison fails or raises.

Pass rule, per compared tensor: :func:`fastgan.testing.compare` (NaN and infinities must match
exactly, overflow to infinity, the subnormal band), with the rows ``operator`` and ``family`` of
the one tolerance table, :data:`fastgan.testing.TOLERANCES` (its reasons are written there and in
docs/testing.md). The items themselves live in :mod:`fastgan.testing.items`.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import time
import zlib
from collections.abc import Sequence
from typing import Any, TextIO

import torch

from fastgan.testing import compare as _compare
from fastgan.testing.items import (  # noqa: F401 (the items are part of this module's API)
    ADV_PARAMS,
    ROW_SHAPES,
    SCORE_SHAPES,
    Item,
    all_items,
    family_items,
    operator_items,
)
from fastgan.testing.items import cotangent as _cotangent
from fastgan.testing.items import scales as _scales
from fastgan.testing.layouts import lay as _lay  # noqa: F401 (kept for old imports)
from fastgan.testing.tolerances import CHUNK, DTYPE_NAMES, DTYPES, TOLERANCES  # noqa: F401

F64, F32, F16, BF16 = torch.float64, torch.float32, torch.float16, torch.bfloat16

#: (rtol, atol_scaled, floor) of an operator result, by dtype: ``TOLERANCES["operator"]``.
OP_TOL: dict[torch.dtype, tuple[float, float, float]] = {dt: t.as_tuple() for dt, t in TOLERANCES["operator"].items()}
#: (rtol, atol_scaled, floor) of a family result, by dtype: ``TOLERANCES["family"]``.
FAMILY_TOL: dict[torch.dtype, tuple[float, float, float]] = {dt: t.as_tuple() for dt, t in TOLERANCES["family"].items()}

#: The device types ``fastgan check`` runs on (``--device``).
SUPPORTED_DEVICES = ("cpu", "cuda")


def _gen(*key: object) -> torch.Generator:
    return torch.Generator().manual_seed(zlib.crc32(repr(key).encode()))


# ------------------------------------------------------------------------------ comparing
@dataclasses.dataclass
class Result:
    backend: str
    device: str
    dtype: torch.dtype
    item: str
    group: str
    forward_error: float = 0.0  # largest |actual - expected| of the forward
    grad_error: float = 0.0  # largest |actual - expected| over every gradient
    ratio: float = 0.0  # largest error as a fraction of its tolerance (> 1: fail)
    failure: str | None = None

    @property
    def ok(self) -> bool:
        return self.failure is None


def compare(actual: torch.Tensor, expected: torch.Tensor, dtype: torch.dtype, tol: tuple[float, float, float], scale: float = 0.0) -> tuple[float, float, str | None]:
    """``(max |error| over finite values, max error / tolerance, failure message or None)``:
    :func:`fastgan.testing.compare` with the tolerance ``tol`` = ``(rtol, atol_scaled, floor)``."""
    verdict = _compare(actual, expected, dtype, tolerance=tol, scale=scale)
    return verdict.max_error, verdict.ratio, verdict.message


def _evaluate(item: Item, backend: str, values: Sequence[torch.Tensor], dtype: torch.dtype, device: str, cot_key: object, cot_dtype: torch.dtype):
    """(output, gradients, cotangent) of ``item`` on ``backend`` with ``values`` as inputs."""
    import fastgan

    wants = item.grad if item.grad is not None else tuple(True for _ in values)
    leaves = [v.to(device=device, dtype=dtype).detach().requires_grad_(w) for v, w in zip(values, wants)]
    with fastgan.use_backend(backend):
        out = item.fn(*leaves)
        diff = [t for t, w in zip(leaves, wants) if w]
        cot = _cotangent(out.shape, _gen("cotangent", cot_key)).to(cot_dtype).to(device=device, dtype=out.dtype)
        grads = torch.autograd.grad(out, diff, cot, allow_unused=True) if diff and out.requires_grad else ()
    grads = tuple(torch.zeros_like(t) if g is None else g for t, g in zip(diff, grads))
    return out.detach(), grads, cot, leaves


def check_item(item: Item, backend: str, device: str, dtype: torch.dtype, expected_cache: dict | None = None) -> Result:
    """One cell of the matrix: ``item`` on ``backend``/``device`` in ``dtype`` against the
    reference in float64 on the same rounded values."""
    res = Result(backend, device, dtype, item.name, item.group)
    tol = TOLERANCES[item.group][dtype]
    key = (item.name, dtype)
    try:
        values = [v.to(dtype).to(F64) for v in item.make(_gen(item.name))]  # rounded once
        if expected_cache is not None and key in expected_cache:
            out64, grads64, cot64 = expected_cache[key]
        else:
            out64, grads64, cot, _ = _evaluate(item, "reference", values, F64, "cpu", key, dtype)
            cot64 = cot
            if expected_cache is not None:
                expected_cache[key] = (out64, grads64, cot64)
        out, grads, _, _ = _evaluate(item, backend, values, dtype, device, key, dtype)
    except Exception as exc:  # a crash is a failure of this cell, reported in the table
        res.failure = f"raised {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        res.ratio = math.inf
        return res
    scales = _scales(item, values, cot64, out64)
    if out.device.type != torch.device(device).type:
        res.failure = f"output on {out.device}, inputs on {device}"
        res.ratio = math.inf
        return res
    err, ratio, why = compare(out, out64, dtype, tol, scales.get("forward", 0.0))
    res.forward_error, res.ratio = err, ratio
    if why:
        res.failure = f"forward: {why}"
    if len(grads) != len(grads64):
        res.failure = res.failure or f"{len(grads)} gradients, expected {len(grads64)}"
        return res
    for i, (gr, ge) in enumerate(zip(grads, grads64)):
        err, ratio, why = compare(gr, ge, dtype, tol, scales.get(f"grad{i}", 0.0))
        res.grad_error, res.ratio = max(res.grad_error, err), max(res.ratio, ratio)
        if why and res.failure is None:
            res.failure = f"gradient of input {i}: {why}"
    return res


# --------------------------------------------------------------------------------- matrix
def backend_devices(backend_names: Sequence[str] | None = None, devices: Sequence[str] | None = None) -> list[tuple[str, str]]:
    """The (backend, device) pairs to check: each backend on each asked-for device it runs on
    (default: the CPU, and the GPU when there is one)."""
    from fastgan import backends

    available = backends.available_backends()
    names = list(backend_names) if backend_names else available
    for n in names:
        if n not in backends.BACKENDS:
            raise ValueError(f"--backend: unknown backend {n!r}; expected one of {', '.join(backends.BACKENDS)}")
        if n not in available:
            raise backends.BackendUnavailableError(
                f"--backend: backend {n!r} is not available on this machine ({backends.backend_status()[n][1]}); "
                f"available: {', '.join(available)}"
            )
    if devices:
        devs = list(devices)
        for d in devs:
            try:
                dev = torch.device(d)
            except (RuntimeError, TypeError, ValueError):
                raise ValueError(f"--device: {d!r} is not a device; fastgan check runs on "
                                 f"{', '.join(SUPPORTED_DEVICES)} (cuda:N for one GPU)") from None
            if dev.type not in SUPPORTED_DEVICES:
                raise ValueError(f"--device: {d!r} is not supported; fastgan check runs on "
                                 f"{', '.join(SUPPORTED_DEVICES)} (cuda:N for one GPU)")
            if dev.type == "cuda" and not torch.cuda.is_available():
                raise ValueError(f"--device: {d!r} asked for, but no CUDA device is available here")
            if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
                raise ValueError(f"--device: {d!r} asked for, but there are {torch.cuda.device_count()} CUDA devices "
                                 f"(cuda:0 to cuda:{torch.cuda.device_count() - 1})")
            if dev.type == "cpu" and dev.index not in (None, 0):
                raise ValueError(f"--device: {d!r} is not a device; expected cpu")
    else:
        devs = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    runs_on: dict[str, Any] = getattr(backends, "_DEVICES", {})
    pairs = []
    for n in names:
        for d in devs:
            allowed = runs_on.get(n)
            if allowed is None or torch.device(d).type in allowed:
                pairs.append((n, d))
    if backend_names:
        idle = [n for n in names if not any(b == n for b, _ in pairs)]
        if idle:
            n = idle[0]
            raise ValueError(f"--backend: {n!r} runs on {'/'.join(sorted(runs_on.get(n) or ()))} tensors, and no "
                             f"such --device is asked for ({', '.join(devs)})")
    return pairs


#: An interpreted backend (Triton's interpreter, ``TRITON_INTERPRET=1``) runs ~1000x slower than
#: torch: it is checked on the items whose inputs have at most this many elements in all.
INTERPRETED_MAX_NUMEL = 8192


def interpreted(backend: str) -> bool:
    """Whether ``backend`` runs its kernels in an interpreter here (Triton with
    ``TRITON_INTERPRET=1``)."""
    import os

    return backend == "triton" and os.environ.get("TRITON_INTERPRET", "0").strip() not in ("", "0")


def _numel(item: Item) -> int:
    return sum(v.numel() for v in item.make(_gen(item.name)))


def run_matrix(
    backend_names: Sequence[str] | None = None,
    devices: Sequence[str] | None = None,
    dtypes: Sequence[torch.dtype] | None = None,
    items: Sequence[Item] | None = None,
) -> list[Result]:
    """Every item × (backend, device) × dtype; returns one :class:`Result` per cell."""
    pairs = backend_devices(backend_names, devices)
    dtypes = list(dtypes) if dtypes else [F32, F64, BF16, F16]
    items = list(items) if items is not None else all_items()
    cache: dict = {}
    results = []
    for backend, device in pairs:
        chosen = [i for i in items if _numel(i) <= INTERPRETED_MAX_NUMEL] if interpreted(backend) else items
        for dtype in dtypes:
            for item in chosen:
                results.append(check_item(item, backend, device, dtype, cache))
    return results


def format_table(results: Sequence[Result]) -> str:
    """One line per (backend, device, dtype, item): the largest forward and gradient errors,
    the largest error as a fraction of its tolerance, and ok / FAIL with the reason."""
    lines = []
    header = f"{'backend':<10} {'device':<6} {'dtype':<5} {'check':<52} {'max|err| fwd':>12} {'max|err| grad':>13} {'err/tol':>8}  result"
    lines.append(header)
    lines.append("-" * len(header))
    for r in results:
        ratio = "inf" if math.isinf(r.ratio) else f"{r.ratio:.3f}"
        status = "ok" if r.ok else f"FAIL  {r.failure}"
        lines.append(
            f"{r.backend:<10} {r.device:<6} {DTYPE_NAMES[r.dtype]:<5} {r.item:<52} {r.forward_error:>12.2e} {r.grad_error:>13.2e} {ratio:>8}  {status}"
        )
    return "\n".join(lines)


def summary(results: Sequence[Result], seconds: float) -> str:
    failed = [r for r in results if not r.ok]
    lines = []
    worst: dict[tuple[str, str, torch.dtype], Result] = {}
    for r in results:
        k = (r.backend, r.device, r.dtype)
        if k not in worst or r.ratio > worst[k].ratio:
            worst[k] = r
    lines.append("largest error relative to its tolerance, per backend / device / dtype:")
    for (b, d, dt), r in worst.items():
        ratio = "inf" if math.isinf(r.ratio) else f"{r.ratio:.3f}"
        lines.append(f"  {b:<10} {d:<6} {DTYPE_NAMES[dt]:<5} {ratio:>8}  ({r.item})")
    verdict = "PASS" if not failed else "FAIL"
    lines.append(f"{verdict}: {len(results) - len(failed)} of {len(results)} checks passed in {seconds:.1f} s")
    for r in failed:
        lines.append(f"  FAILED {r.backend} {r.device} {DTYPE_NAMES[r.dtype]} {r.item}: {r.failure}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------- the command
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", action="append", default=None, metavar="DEVICE",
                        help="device to check on (cpu, cuda, cuda:1, ...; repeatable; default: cpu, and cuda when present)")
    parser.add_argument("--backend", action="append", default=None, metavar="NAME",
                        help="backend to check (repeatable; default: every available backend)")
    parser.add_argument("--dtype", action="append", default=None, choices=sorted(DTYPES),
                        help="dtype to check (repeatable; default: all four)")
    parser.add_argument("--failures-only", action="store_true", help="print only the failing rows and the summary")


def check(
    backend_names: Sequence[str] | None = None,
    devices: Sequence[str] | None = None,
    dtypes: Sequence[torch.dtype] | None = None,
    out: TextIO | None = None,
    failures_only: bool = False,
    items: Sequence[Item] | None = None,
) -> int:
    """Run the matrix, print the table and the summary to ``out``; returns the exit status:
    0 when every check passed, 1 otherwise (2 for an unknown or unavailable backend).
    ``items`` restricts the matrix to some of :func:`all_items`."""
    import fastgan

    out = out or sys.stdout
    t0 = time.perf_counter()
    try:
        results = run_matrix(backend_names, devices, dtypes, items)
    except (ValueError, fastgan.BackendUnavailableError) as exc:
        print(f"fastgan check: {exc}", file=out)
        return 2
    seconds = time.perf_counter() - t0
    shown = [r for r in results if not r.ok] if failures_only else results
    print(f"fastgan {fastgan.__version__}, torch {torch.__version__}; every result against the reference in float64", file=out)
    if shown:
        print(format_table(shown), file=out)
    print(summary(results, seconds), file=out)
    return 0 if all(r.ok for r in results) else 1


def run(args: argparse.Namespace) -> int:
    """``fastgan check`` (the hook :mod:`fastgan.cli` calls): a bad ``FASTGAN_BACKEND``, an
    unknown or unavailable ``--backend``, or a ``--device`` that is not available or not
    supported is a :class:`~fastgan.cli.UsageError` (exit status 2, one line on stderr)."""
    from fastgan import backends
    from fastgan.cli import UsageError, backend_selection

    backend_selection()
    try:
        backend_devices(args.backend, args.device)
    except (ValueError, backends.BackendUnavailableError) as exc:
        raise UsageError(str(exc)) from None
    dtypes = [DTYPES[d] for d in args.dtype] if args.dtype else None
    return check(args.backend, args.device, dtypes, failures_only=args.failures_only)
