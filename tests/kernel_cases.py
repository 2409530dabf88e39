"""Shared case generators of the backend-parametrised kernel tests (``test_kernels.py``,
``test_compile.py``).

A *case* is one call of one operator: its positional arguments (the tensors in the dtype, device
and memory layout under test, then the operator's other parameters, in the order of the
operator's ``reference`` function), the same values as contiguous float64 CPU tensors for the
reference, and a cotangent for the backward. Every tensor is drawn from a ``torch.Generator``
seeded from the case's name, so every run sees the same values.

Values are kept away from the kinks of relu/abs (hinge and margin terms, ``|x - recon|``, the
one-sided penalty) so that every gradient is defined and finite differences are valid, and the
per-sample gradient norms are kept away from the penalty's center.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import importlib.util
import zlib
from collections.abc import Callable, Sequence
from typing import Any

import torch

import fastgan
import fastgan.check
from fastgan import backends

F64, F32, F16, BF16 = torch.float64, torch.float32, torch.float16, torch.bfloat16
DTYPES = (F32, F64, BF16, F16)
DTYPE_IDS = {F32: "f32", F64: "f64", BF16: "bf16", F16: "f16"}

#: Elements per parallel chunk of a sample in the CPU kernels (a row longer than this is split).
CHUNK = 16384

# ------------------------------------------------------------------------------- tolerances
#: Per-dtype tolerance of a backend's result against the float64 reference evaluated on the
#: same (already rounded) input values:  |actual - expected| <= atol + rtol * |expected|, with
#:     atol = ATOL_SCALED * scale + ATOL_FLOOR,   scale = max|expected|
#: (max over the compared tensor, so that tiny gradients such as 1/N of a mean are judged
#: relative to the tensor's own scale; for a sum of terms of both signs -- the wgan / margin
#: losses, interpolate's d/dalpha -- scale is the magnitude of the summed terms instead, see
#: :func:`cancellation_scales`).
#:
#: * rtol: one ulp of the output dtype (a result computed in fp32 and rounded once is within half
#:   an ulp) plus fp32 accumulation error over rows of up to ~5e4 elements (~2e-5 relative).
#: * ATOL_SCALED: cancellation (e.g. ``fake + alpha (real - fake)`` near 0) and fp32
#:   accumulation, relative to the tensor's largest value.
#: * ATOL_FLOOR: the spacing of fp16 subnormals (2**-24) -- gradients of means over ~5e4
#:   elements fall below fp16's smallest normal number.
#:
#: dtype      rtol                        ATOL_SCALED   ATOL_FLOOR
#: float64    1e-10                       1e-12         0
#: float32    2e-5  (1 ulp = 1.2e-7)      2e-6          0
#: float16    1e-3  (1 ulp = 9.8e-4)      2e-5          2**-24
#: bfloat16   8e-3  (1 ulp = 7.8e-3)      2e-5          0
#:
#: The same table is what ``fastgan check`` applies to the operators; it is defined once there.
TOL: dict[torch.dtype, tuple[float, float, float]] = fastgan.check.OP_TOL


def assert_matches(actual: torch.Tensor, expected: torch.Tensor, dtype: torch.dtype, what: str, scale: float = 0.0) -> None:
    """``actual`` (a backend's result in ``dtype``) against ``expected`` (the float64 reference)
    within :data:`TOL`; NaN must sit exactly where the reference has NaN (and infinities match
    exactly). ``scale`` raises the scale of the absolute tolerance above ``max|expected|``: the
    magnitude of the summed terms, for a reduction of terms of both signs (cancellation)."""
    assert isinstance(actual, torch.Tensor), f"{what}: expected a tensor, got {type(actual).__name__}"
    assert actual.dtype == dtype, f"{what}: dtype {actual.dtype}, expected {dtype}"
    assert actual.shape == expected.shape, f"{what}: shape {tuple(actual.shape)}, expected {tuple(expected.shape)}"
    rtol, atol_scaled, floor = TOL[dtype]
    a = actual.detach().to("cpu", F64)
    e = expected.detach().to("cpu", F64)
    e_abs = e.abs()
    finite = torch.isfinite(e)
    scale = max(scale, e_abs.masked_fill(~finite, 0.0).max().item() if e.numel() else 0.0)
    atol = atol_scaled * scale + floor
    diff = (a - e).abs()
    bad = ~(diff <= atol + rtol * e_abs)  # NaN anywhere compares False
    if bool(bad.any()):
        bad &= ~((a == e) | (a.isnan() & e.isnan()))
    if bool(bad.any()):
        n_bad = int(bad.sum())
        first = tuple(int(i) for i in torch.unravel_index(bad.flatten().nonzero()[0, 0], bad.shape)) if bad.dim() else ()
        both = finite & torch.isfinite(a)
        max_abs = diff[both].max().item() if bool(both.any()) else float("nan")
        max_rel = (diff[both] / e_abs[both].clamp_min(1e-300)).max().item() if bool(both.any()) else float("nan")
        raise AssertionError(
            f"{what} ({DTYPE_IDS[dtype]}): {n_bad} of {e.numel()} elements differ beyond rtol={rtol:g}, "
            f"atol={atol:g}; max abs error {max_abs:.3g}, max rel error {max_rel:.3g} "
            f"(scale {scale:.3g}); first at {first}: got {a[first].item()!r}, expected {e[first].item()!r}"
        )


# ---------------------------------------------------------------------------------- operators
_MODULES = {
    name: importlib.import_module(f"fastgan.ops.{name}")
    for name in ("interpolate", "grad_norm_penalty", "reconstruction_error", "adversarial_loss")
}
OP_NAMES = tuple(_MODULES)


def _adversarial_public(real, fake, kind, real_target, fake_target, margin):
    return fastgan.ops.adversarial_loss(real, fake, kind, real_target=real_target, fake_target=fake_target, margin=margin)


#: ``op -> callable`` taking the reference's positional arguments and calling the public operator
#: (which dispatches to the selected backend).
PUBLIC: dict[str, Callable[..., torch.Tensor]] = {
    "interpolate": lambda real, fake, alpha: fastgan.ops.interpolate(real, fake, alpha),
    "grad_norm_penalty": lambda g, center, one_sided: fastgan.ops.grad_norm_penalty(g, center, one_sided),
    "reconstruction_error": lambda x, recon, p: fastgan.ops.reconstruction_error(x, recon, p),
    "adversarial_loss": _adversarial_public,
}
#: ``op -> the module's reference(...)``, the ground truth.
REFERENCE: dict[str, Callable[..., torch.Tensor]] = {name: m.reference for name, m in _MODULES.items()}
#: Names of each operator's tensor arguments, in order (for messages).
ARG_NAMES = {
    "interpolate": ("real", "fake", "alpha"),
    "grad_norm_penalty": ("grads",),
    "reconstruction_error": ("x", "recon"),
    "adversarial_loss": ("real", "fake"),
}
KINDS = _MODULES["adversarial_loss"].KINDS
ADV_PARAMS = (0.75, -0.25, 1.5)  # real_target, fake_target, margin (not the defaults, on purpose)

#: Backends under test, and the device each runs on.
BACKENDS = fastgan.available_backends()  # also loads the compiled extension when it is built
#: whether the triton backend runs here for real (a GPU and triton; not the interpreter)
TRITON_ON_GPU = importlib.util.find_spec("triton") is not None and torch.cuda.is_available()
#: triton runs on the GPU when there is one, else in Triton's interpreter on CPU tensors (conftest.py).
DEVICE = {"reference": "cpu", "cpu": "cpu", "cuda": "cuda", "triton": "cuda" if torch.cuda.is_available() else "cpu"}
COMPILED = [b for b in BACKENDS if b != "reference"]


def fastgan_op_names() -> list[str]:
    """The public (not ``_``-prefixed) operators of the ``torch.ops.fastgan`` namespace."""
    names = {n.split("::", 1)[1].split(".", 1)[0] for n in torch._C._dispatch_get_all_op_names() if n.startswith("fastgan::")}
    for n in dir(torch.ops.fastgan):
        if isinstance(getattr(torch.ops.fastgan, n, None), torch._ops.OpOverloadPacket):
            names.add(n)
    return sorted(n for n in names if not n.startswith("_"))


HAS_CUSTOM_OPS = hasattr(torch.ops.fastgan, "interpolate")


# ------------------------------------------------------------------------------------ layouts
def arrange(t: torch.Tensor, layout: str) -> torch.Tensor:
    """The values of contiguous ``t`` in memory layout ``layout`` (a new tensor, never ``t``).

    * ``contig``: contiguous.
    * ``permuted``: every dimension reversed in memory (the batch is the innermost dimension).
    * ``strided``: a view with step 2 in the first and last dimensions into a buffer filled
      with NaN, so that a kernel that ignores strides reads NaN.
    * ``channels_last``: ``torch.channels_last`` (4-D only).
    """
    out = _arrange(t, layout)
    if out.untyped_storage().data_ptr() == t.untyped_storage().data_ptr():
        out = out.clone()
    return out


def _arrange(t: torch.Tensor, layout: str) -> torch.Tensor:
    if layout == "contig":
        return t.clone()
    if layout == "permuted":
        rev = tuple(reversed(range(t.dim())))
        return t.permute(rev).contiguous().permute(rev)
    if layout == "strided":
        big_shape = list(t.shape)
        big_shape[0] *= 2
        if t.dim() > 1:
            big_shape[-1] *= 2
        big = torch.full(big_shape, float("nan"), dtype=t.dtype, device=t.device)
        index = (slice(None, None, 2),) + (slice(None),) * (t.dim() - 2) + ((slice(None, None, 2),) if t.dim() > 1 else ())
        view = big[index]
        view.copy_(t)
        return view
    if layout == "channels_last":
        assert t.dim() == 4, "channels_last needs a 4-D tensor"
        return t.contiguous(memory_format=torch.channels_last)
    raise ValueError(layout)


# -------------------------------------------------------------------------------------- specs
@dataclasses.dataclass(frozen=True)
class Spec:
    """A shape / layout case. ``layouts`` has one entry per tensor argument (the cotangent takes
    the layout of the first); ``shape2`` is the second tensor's shape when it differs
    (adversarial_loss: the fake batch may differ from the real one); ``params`` are extra
    operator parameters (grad_norm_penalty's ``center``)."""

    id: str
    shape: tuple[int, ...]
    layouts: tuple[str, ...] = ("contig", "contig", "contig")
    shape2: tuple[int, ...] | None = None
    params: tuple[tuple[str, Any], ...] = ()

    def param(self, name: str, default: Any) -> Any:
        return dict(self.params).get(name, default)


C3, S3, P3 = ("contig",) * 3, ("strided",) * 3, ("permuted",) * 3
L3 = ("channels_last", "channels_last", "contig")  # alpha is 1-D
ODD = (3, 5, 7, 9)
LONG = (2, 3, 100, 70)  # 21000 elements per sample: more than one parallel chunk
LONG3 = (1, 3, 130, 130)  # 50700 elements per sample: more than three chunks, batch of one
assert CHUNK < 3 * 100 * 70 < 2 * CHUNK and 3 * 130 * 130 > 3 * CHUNK

#: Shapes and layouts of the operators over per-sample rows (interpolate, grad_norm_penalty,
#: reconstruction_error): layouts are (first, second, alpha).
ROW_SPECS = [
    Spec("B1", (1, 37)),
    Spec("B1_4d", (1, 3, 5, 7)),
    Spec("1d", (5,)),
    Spec("odd", ODD),
    Spec("manyB", (33, 3, 4, 5)),
    Spec("long", LONG),
    Spec("long3chunks_B1", LONG3),
    Spec("permuted", ODD, P3),
    Spec("strided", ODD, S3),
    Spec("channels_last", ODD, L3),
    Spec("mixed_contig_cl", ODD, ("contig", "channels_last", "contig")),
    Spec("mixed_strided_permuted", ODD, ("strided", "permuted", "strided")),
    Spec("long_mixed_cl_contig", LONG, ("channels_last", "contig", "contig")),
    Spec("long_permuted", LONG, ("permuted", "permuted", "strided")),
    Spec("long3chunks_strided", LONG3, S3),
]
#: grad_norm_penalty adds two centers (0 is R1's ``mean ||g||^2``).
GNP_SPECS = ROW_SPECS + [
    Spec("odd_center0", ODD, params=(("center", 0.0),)),
    Spec("long_center0.5", LONG, params=(("center", 0.5),)),
]
#: Discriminator outputs for adversarial_loss.
ADV_SPECS = [
    Spec("B1x1", (1, 1)),
    Spec("Bx1", (7, 1)),
    Spec("B", (6,)),
    Spec("patch64", (64, 1, 30, 30)),
    Spec("odd_patch", (3, 1, 5, 7)),
    Spec("batch_differs", (5, 1), shape2=(3, 1)),
    Spec("long", (3, 1, 100, 100)),
    Spec("strided_Bx1", (7, 1), S3),
    Spec("permuted_patch64", (64, 1, 30, 30), P3),
    Spec("channels_last", (4, 3, 6, 5), L3),
    Spec("mixed_contig_cl", (4, 3, 6, 5), ("contig", "channels_last")),
]
SIDES = ("both", "real_only", "fake_only")
#: (spec, side): either side left out on the plain shapes, both sides on the layout cases.
ADV_CASES = [(sp, side) for sp in ADV_SPECS for side in (SIDES if sp.layouts == C3 and sp.id != "odd_patch" else ("both",))]


def spec_id(spec: Spec) -> str:
    return spec.id


# ------------------------------------------------------------------------------------- values
def generator(*key: object) -> torch.Generator:
    """A CPU generator seeded from ``key`` (stable across runs and processes)."""
    return torch.Generator().manual_seed(zlib.crc32(repr(key).encode()))


def away_from(x: torch.Tensor, points: Sequence[float], gap: float = 0.05) -> torch.Tensor:
    """Push the values of ``x`` that lie within ``gap`` of a point of ``points`` to ``2 gap`` from
    it (kinks of relu / abs stay well away, also after rounding to bf16)."""
    for p in points:
        near = (x - p).abs() < gap
        x = torch.where(near, x + torch.where(x >= p, 2 * gap, -2 * gap), x)
    return x


TARGET_NORMS = (1.7, 0.6, 2.5, 0.3, 3.4, 1.3, 0.8)  # all >= 0.2 away from center 1 and 0.5


def rows_with_norms(shape: tuple[int, ...], g: torch.Generator, norms: Sequence[float] = TARGET_NORMS) -> torch.Tensor:
    """Random float64 rows (samples) rescaled to the per-sample L2 norms ``norms`` (cyclic)."""
    x = torch.randn(shape, generator=g, dtype=F64)
    b = shape[0]
    target = torch.tensor([norms[i % len(norms)] for i in range(b)], dtype=F64)
    flat = x.reshape(b, -1)
    flat = flat * (target / torch.linalg.vector_norm(flat, dim=1))[:, None]
    return flat.reshape(shape)


def logits(shape: tuple[int, ...], g: torch.Generator) -> torch.Tensor:
    """Raw scores around 0 (std 2), away from the hinge / margin kinks at +-margin."""
    return away_from(torch.randn(shape, generator=g, dtype=F64) * 2.0, (ADV_PARAMS[2], -ADV_PARAMS[2]))


def cotangent(shape: tuple[int, ...], g: torch.Generator) -> torch.Tensor:
    """A random upstream gradient with values of magnitude in [0.5, 2] (never 1 exactly, so a
    backward that ignores grad_output is caught)."""
    mag = 0.5 + 1.5 * torch.rand(shape, generator=g, dtype=F64)
    sign = torch.where(torch.rand(shape, generator=g, dtype=F64) < 0.5, -1.0, 1.0)
    return mag * sign


# -------------------------------------------------------------------------------------- cases
@dataclasses.dataclass
class Case:
    op: str
    args: list  # the call's positional arguments (tensors in dtype / layout / device)
    ref_args: list  # the same values, tensors as contiguous float64 CPU tensors
    cot: torch.Tensor  # cotangent of the output, in dtype / device
    cot64: torch.Tensor
    dtype: torch.dtype

    @property
    def tensor_positions(self) -> list[int]:
        return [i for i, a in enumerate(self.args) if isinstance(a, torch.Tensor)]

    def tensor_names(self) -> list[str]:
        names = ARG_NAMES[self.op]
        return [names[i] for i in self.tensor_positions]


def _place(values64: torch.Tensor, dtype: torch.dtype, device: str, layout: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(tensor in dtype / device / layout, float64 CPU copy of its rounded values)."""
    rounded = values64.to(dtype)
    return arrange(rounded.to(device), layout), rounded.to(F64, copy=True)


def _finish(op, values, layouts, params, out_shape, cot_layout, dtype, device, g) -> Case:
    args, ref_args = [], []
    for v, layout in zip(values, layouts):
        if v is None:
            args.append(None)
            ref_args.append(None)
            continue
        a, r = _place(v, dtype, device, layout)
        args.append(a)
        ref_args.append(r)
    cot, cot64 = _place(cotangent(out_shape, g), dtype, device, cot_layout if len(out_shape) else "contig")
    return Case(op, args + list(params), ref_args + list(params), cot, cot64, dtype)


@functools.lru_cache(maxsize=None)
def _values(op: str, shape: tuple[int, ...], shape2: tuple[int, ...] | None, seed: object) -> tuple[torch.Tensor, ...]:
    """The float64 input values of ``op`` for one shape (cached: shared by every dtype, layout,
    kind and backend; never modified -- :func:`_place` copies them)."""
    g = generator(op, shape, shape2, seed)
    if op == "interpolate":
        return (torch.randn(shape, generator=g, dtype=F64), torch.randn(shape, generator=g, dtype=F64), torch.rand(shape[0], generator=g, dtype=F64))
    if op == "grad_norm_penalty":
        return (rows_with_norms(shape, g),)
    if op == "reconstruction_error":
        x = torch.randn(shape, generator=g, dtype=F64)
        # |x - recon| in [0.1, 1]: away from abs's kink at 0, also after rounding to bf16
        d = 0.1 + 0.9 * torch.rand(shape, generator=g, dtype=F64)
        d = torch.where(torch.rand(shape, generator=g, dtype=F64) < 0.5, -d, d)
        return (x, x + d)
    if op == "adversarial_loss":
        return (logits(shape, g), logits(shape2 or shape, g))
    raise ValueError(op)


def interpolate_case(spec: Spec, dtype: torch.dtype, device: str = "cpu", seed: object = 0) -> Case:
    values = list(_values("interpolate", spec.shape, None, seed))
    g = generator("interpolate", spec, seed, "cotangent")
    return _finish("interpolate", values, spec.layouts, (), spec.shape, spec.layouts[0], dtype, device, g)


def grad_norm_penalty_case(spec: Spec, dtype: torch.dtype, one_sided: bool, device: str = "cpu", seed: object = 0) -> Case:
    values = list(_values("grad_norm_penalty", spec.shape, None, seed))
    g = generator("grad_norm_penalty", spec, seed, "cotangent")
    center = float(spec.param("center", 1.0))
    return _finish("grad_norm_penalty", values, spec.layouts[:1], (center, one_sided), (), "contig", dtype, device, g)


def reconstruction_error_case(spec: Spec, dtype: torch.dtype, p: int, device: str = "cpu", seed: object = 0) -> Case:
    values = list(_values("reconstruction_error", spec.shape, None, seed))
    g = generator("reconstruction_error", spec, seed, "cotangent")
    cot_layout = "strided" if "strided" in spec.layouts[:2] else "contig"
    return _finish("reconstruction_error", values, spec.layouts[:2], (p,), (spec.shape[0],), cot_layout, dtype, device, g)


def adversarial_loss_case(spec: Spec, dtype: torch.dtype, kind: str, side: str = "both", device: str = "cpu", seed: object = 0) -> Case:
    real, fake = _values("adversarial_loss", spec.shape, spec.shape2, seed)
    if side == "real_only":
        fake = None
    elif side == "fake_only":
        real = None
    g = generator("adversarial_loss", spec, seed, "cotangent")
    return _finish("adversarial_loss", [real, fake], spec.layouts[:2], (kind, *ADV_PARAMS), (), "contig", dtype, device, g)


# ------------------------------------------------------------------------ running a case
def with_grad(case: Case) -> tuple[list, list[torch.Tensor], list, list[torch.Tensor]]:
    """Fresh copies of the case's arguments whose tensors require grad: (args, their tensors,
    ref_args, their tensors)."""
    args = list(case.args)
    ref_args = list(case.ref_args)
    leaves, ref_leaves = [], []
    for i in case.tensor_positions:
        args[i] = args[i].detach().requires_grad_(True)
        ref_args[i] = ref_args[i].detach().clone().requires_grad_(True)
        leaves.append(args[i])
        ref_leaves.append(ref_args[i])
    return args, leaves, ref_args, ref_leaves


def run_backend(backend: str, case: Case, args: list, leaves: list[torch.Tensor]) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
    """Forward and the gradient w.r.t. every tensor argument on ``backend``."""
    with fastgan.use_backend(backend):
        out = PUBLIC[case.op](*args)
        grads = torch.autograd.grad(out, leaves, case.cot)
    return out, grads


def run_reference64(case: Case, ref_args: list, ref_leaves: list[torch.Tensor]) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
    """The module's reference on the float64 copies: forward and gradients (the ground truth)."""
    out = REFERENCE[case.op](*ref_args)
    grads = torch.autograd.grad(out, ref_leaves, case.cot64)
    return out.detach(), grads


def cancellation_scales(case: Case) -> dict[str, float]:
    """For the results that sum terms of both signs, the magnitude of those terms (the scale of
    their accumulation error): ``{"forward" or tensor name: scale}``."""
    a = case.ref_args
    if case.op == "adversarial_loss":
        mod = _MODULES["adversarial_loss"]
        kind, real_target, fake_target, margin = a[2:]
        total = 0.0
        if a[0] is not None:
            total += mod.real_term(kind, a[0], real_target, margin).abs().mean().item()
        if a[1] is not None:
            total += mod.fake_term(kind, a[1], fake_target, margin).abs().mean().item()
        return {"forward": total}
    if case.op == "interpolate":  # d/dalpha_b = sum_i cot_i (real_i - fake_i)
        terms = (case.cot64 * (a[0] - a[1])).abs().reshape(a[0].shape[0], -1).sum(1)
        return {"alpha": terms.max().item()}
    return {}


def check_against_reference(backend: str, case: Case, label: str = "") -> None:
    args, leaves, ref_args, ref_leaves = with_grad(case)
    out, grads = run_backend(backend, case, args, leaves)
    expected, expected_grads = run_reference64(case, ref_args, ref_leaves)
    where = f"{backend} {case.op}{(' ' + label) if label else ''}"
    scales = cancellation_scales(case)
    assert out.device == leaves[0].device, f"{where}: output on {out.device}"
    assert_matches(out, expected, case.dtype, f"{where} forward", scales.get("forward", 0.0))
    for name, got, exp in zip(case.tensor_names(), grads, expected_grads):
        assert_matches(got, exp, case.dtype, f"{where} d/d{name}", scales.get(name, 0.0))
