"""Launch helpers shared by the Triton kernels: their registration, read-only arguments,
block-size heuristics, scalar arguments, the row-split reduction scaffold and its counters.
(The layout rule and output allocation are :mod:`fastgan.ops._layout`'s.)

Registration
------------
The ops ``fastgan_triton::<op>`` are declared by the compiled extension with the same schemas as
the C++ kernels' ``fastgan::<op>`` and get the same C++ autograd (``csrc/autograd.cpp``) and the
same fake implementations (``fastgan/ops/<op>.py``); :func:`implement` registers the Triton host
functions as their kernels for CUDA tensors (and CPU tensors under Triton's interpreter).

Read-only arguments
-------------------
A constant input that the backward reads is saved as a copy-on-write clone (``csrc/autograd.cpp``),
which makes the input copy-on-write too. Triton takes a pointer argument's address with
``data_ptr()``, when it specialises the kernel and again when it launches it, and ``data_ptr()``
materialises a copy-on-write tensor: a full copy of it. The host code therefore passes what a
kernel only reads through :func:`read_only`, whose address is taken without materialising.

Row split
---------
Every operator sees its big tensors as ``B`` rows of ``M`` elements (one row per sample; the
adversarial scores are one row per side). A row is cut into ``C`` chunks of ``tiles`` tiles of
``BLOCK`` elements, and one program handles one chunk, so a batch of 16 long rows still gives a
large GPU thousands of programs. :func:`row_split` picks ``BLOCK``, ``C`` and ``tiles`` from the
sizes alone (no autotuning), so the same sizes always give the same split.

Deterministic reductions in one launch
--------------------------------------
A program that reduces writes its partial sum to a workspace slot of its own, then increments an
integer counter (``atomic_add`` with acquire-release semantics). The program that sees the
counter at ``programs - 1`` is the last one: every other partial is visible to it; it sums the
partials of each row **in a fixed order** (chunk 0, 1, …, independent of which program finished
last), writes the results and resets the counter to 0 for the next launch. No float atomics, and
the result is bitwise the same on every run. The counters live in a small int32 workspace kept
per device and stream (kernels on one stream run one after another, so they never share a
counter at the same time).
"""

from __future__ import annotations

import contextlib
import functools
import struct
from typing import Iterator

import torch
import triton
import triton.language as tl

from triton.runtime.jit import TensorWrapper

from fastgan import backends

#: True when Triton runs kernels in its interpreter (``TRITON_INTERPRET=1``), on CPU tensors.
INTERPRET = backends.triton_interpreter()

# In the interpreter each program costs milliseconds and each tile a few numpy calls: large
# tiles and few programs keep the tests fast; rows longer than a few tiles are still split into
# several chunks (the same code paths as on a GPU).
_INTERP_BLOCK = 1024
_INTERP_PROGRAMS = 4

#: Finishing tile of the last program: rows × chunks of partial sums.
FIN_ROWS = 64
FIN_CHUNKS = 16

#: float-valued scalars are passed to kernels as fp32 pairs (hi, lo) with hi + lo == x to about
#: 2**-48 relative: Triton types Python floats as fp32, and an fp64 kernel needs more.
FP32_MAX = float(torch.finfo(torch.float32).max)


def acc_dtype(dtype: torch.dtype) -> torch.dtype:
    """Accumulation dtype of the kernels: fp64 for fp64 inputs, fp32 otherwise."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def tl_acc(dtype: torch.dtype):
    """:func:`acc_dtype` as a Triton dtype (a ``tl.constexpr`` argument of the kernels)."""
    return tl.float64 if dtype == torch.float64 else tl.float32


def _f32(x: float) -> float:
    return struct.unpack("f", struct.pack("f", x))[0]


def split_scalar(x: float) -> tuple[float, float]:
    """``x`` (within fp32's range, see :func:`scalars_fit`) as two fp32 values ``(hi, lo)``
    whose fp64 sum is ``x`` to about 2**-48 relative."""
    hi = _f32(x)
    return hi, _f32(x - hi)


def scalars_fit(*xs: float) -> bool:
    """Whether every scalar is within fp32's range (what the Triton kernels take)."""
    return all(abs(x) <= FP32_MAX for x in xs)


#: Device types the Triton kernels are registered for (ROCm tensors are ``cuda`` tensors to torch).
DEVICE_TYPES = ("cuda", "cpu") if INTERPRET else ("cuda",)

_LIB = torch.library.Library("fastgan_triton", "IMPL")


def implement(name: str):
    """Decorator: register the function as the kernel of ``fastgan_triton::<name>`` (schema:
    ``csrc/fastgan.cpp``) for :data:`DEVICE_TYPES`."""

    def register(fn):
        torch.library.impl(f"fastgan_triton::{name}", DEVICE_TYPES, fn, lib=_LIB)
        return fn

    return register


def _const_address(t: torch.Tensor) -> int:
    """Address of ``t``'s first element, without materialising a copy-on-write tensor (torch
    releases without ``Tensor.const_data_ptr`` have only the storage's const address)."""
    if hasattr(t, "const_data_ptr"):
        return t.const_data_ptr()
    return torch._C._data_address(t) + t.storage_offset() * t.element_size()


class _ReadOnly(TensorWrapper):
    """A tensor a kernel only reads, as a launch argument (Triton's own wrapper type, so its
    interpreter unwraps it too) whose address is taken without materialising it."""

    def __init__(self, t: torch.Tensor) -> None:
        super().__init__(t, t.dtype)

    def data_ptr(self) -> int:
        return _const_address(self.base)


def read_only(t: torch.Tensor) -> TensorWrapper:
    """``t`` as the launch argument of a kernel that only reads it (see the module docstring)."""
    return _ReadOnly(t)


def row_stride(t: torch.Tensor) -> int:
    """Elements between consecutive rows of a sample-blocked tensor."""
    rows = t.shape[0] if t.dim() else 1
    return t.numel() // rows if rows else 0


@functools.lru_cache(maxsize=None)
def _sm_count(index: int) -> int:
    return torch.cuda.get_device_properties(index).multi_processor_count


def _target_programs(device: torch.device) -> int:
    if device.type != "cuda":
        return _INTERP_PROGRAMS
    index = device.index if device.index is not None else torch.cuda.current_device()
    return 8 * _sm_count(index)


def block_size(dtype: torch.dtype, device: torch.device) -> int:
    """Elements per tile: 2 × 16-byte vectors for each of 128 threads (4 warps)."""
    if device.type != "cuda":
        return _INTERP_BLOCK
    return 128 * 2 * (16 // torch.empty((), dtype=dtype).element_size())


def row_split(rows: int, m: int, dtype: torch.dtype, device: torch.device) -> tuple[int, int, int]:
    """``(BLOCK, C, tiles)``: tile size, chunks per row and tiles per chunk for ``rows`` rows of
    ``m`` elements, so that there are about 8 programs per SM (fewer for short rows)."""
    block = block_size(dtype, device)
    tiles_row = max(1, triton.cdiv(m, block))
    want = max(1, triton.cdiv(_target_programs(device), max(rows, 1)))
    c = min(want, tiles_row)
    tiles = triton.cdiv(tiles_row, c)
    c = triton.cdiv(tiles_row, tiles)
    return block, c, tiles


_COUNTERS: dict[tuple, torch.Tensor] = {}


def counter(device: torch.device) -> torch.Tensor:
    """The int32 counter of the last-program pattern for the current stream of ``device``
    (zero between launches: the last program of each launch resets it)."""
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        key = ("cuda", index, torch.cuda.current_stream(index).cuda_stream)
    else:
        key = (device.type, device.index)
    c = _COUNTERS.get(key)
    if c is None:
        c = _COUNTERS[key] = torch.zeros(1, dtype=torch.int32, device=device)
    return c


@contextlib.contextmanager
def on_device(t: torch.Tensor) -> Iterator[None]:
    """Launch on ``t``'s GPU (Triton launches on the current device)."""
    if t.device.type == "cuda" and t.device.index is not None and t.device.index != torch.cuda.current_device():
        with torch.cuda.device(t.device.index):
            yield
    else:
        yield


#: Launch options of every kernel: no contraction of a*b+c into FMA, as the C++ kernels are
#: built (-ffp-contract=off), so the GPU results round like the reference's separate operations.
LAUNCH = {"num_warps": 4}
if not INTERPRET:
    LAUNCH["enable_fp_fusion"] = False


# ------------------------------------------------------------------------ device-side helpers
@triton.jit
def load_acc(ptr, offs, mask, ACC: tl.constexpr):
    """Masked load converted to the accumulation dtype (0 where masked). Half types go through
    fp32 (exact), which is also what Triton's interpreter needs to carry Inf/NaN into fp64."""
    v = tl.load(ptr + offs, mask=mask, other=0.0)
    if v.dtype != tl.float64:
        v = v.to(tl.float32)
    return v.to(ACC)


@triton.jit
def narrow(v, ptr):
    """``v`` in the element type of ``ptr`` (fp64 goes through fp32 to the half types: exact to
    fp32, then one rounding -- and what Triton's interpreter converts correctly)."""
    ty = ptr.dtype.element_ty
    if v.dtype == tl.float64:
        if ty != tl.float64:
            v = v.to(tl.float32)
    return v.to(ty)


@triton.jit
def scalar(hi, lo, ACC: tl.constexpr):
    """A scalar argument passed as an fp32 pair, in the accumulation dtype."""
    return tl.cast(hi, ACC) + tl.cast(lo, ACC)


@triton.jit
def chunk_of(pid, C, TILES, BLOCK: tl.constexpr):
    """Row, and the first element within the row (int64), of program ``pid``."""
    b = pid // C
    start = (pid - b * C).to(tl.int64) * TILES * BLOCK
    return b, start


@triton.jit
def arrive(cnt_ptr, programs):
    """Count this program as done; True in the last program of the launch (which then sees
    every partial written before the other programs arrived). The barrier orders every thread's
    stores before the (cumulative) release of the counter update; the last program reads the
    partials from L2 (``.cg``), after its acquire."""
    tl.debug_barrier()
    done = tl.atomic_add(cnt_ptr, 1, sem="acq_rel")
    return done == programs - 1


@triton.jit
def depart(cnt_ptr):
    """Reset the counter for the next launch (the last program only)."""
    tl.atomic_xchg(cnt_ptr, 0, sem="release")


@triton.jit
def row_sums(part_ptr, r0, rows, C, FR: tl.constexpr, FC: tl.constexpr):
    """Sums of the ``C`` partials of rows ``r0 … r0 + FR − 1`` (rows × C, row-major), in a fixed
    order: each tile of FC chunks is reduced, and tiles are added in chunk order."""
    r = r0 + tl.arange(0, FR)
    rmask = r < rows
    acc = tl.zeros([FR], dtype=part_ptr.dtype.element_ty)
    for c0 in range(0, C, FC):
        c = c0 + tl.arange(0, FC)
        m = rmask[:, None] & (c[None, :] < C)
        offs = r[:, None].to(tl.int64) * C + c[None, :]
        acc += tl.sum(tl.load(part_ptr + offs, mask=m, other=0.0, cache_modifier=".cg"), axis=1)
    return acc


@triton.jit
def total(part_ptr, n, FC: tl.constexpr):
    """Sum of ``n`` partials in a fixed order."""
    acc = tl.zeros([FC], dtype=part_ptr.dtype.element_ty)
    for c0 in range(0, n, FC):
        c = c0 + tl.arange(0, FC)
        acc += tl.load(part_ptr + c, mask=c < n, other=0.0, cache_modifier=".cg")
    return tl.sum(acc, axis=0)
