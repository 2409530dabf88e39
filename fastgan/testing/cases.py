"""The cases of fastgan's operator checks: shapes, layouts and values of every operator.

A *case* is one call of one operator: its positional arguments (the tensors in the dtype, device
and memory layout under test, then the operator's other parameters, in the order of the
operator's reference), the same values as contiguous float64 CPU tensors for the reference, and
a cotangent for the backward. Every tensor is drawn from a ``torch.Generator`` seeded from the
case's name, so every run sees the same values; no input is all zeros.

Shapes include odd sizes, a batch of one, 1-D inputs and rows longer than one parallel chunk
(:data:`~fastgan.testing.CHUNK`, and three times it); layouts are those of
:data:`~fastgan.testing.LAYOUTS`, also mixed between the inputs. Values are kept away from the
kinks of relu/abs (hinge and margin terms, ``|x − recon|``, the one-sided penalty), so that every
gradient is defined and finite differences are valid, and the per-sample gradient norms are kept
away from the penalty's centers. :func:`cases` yields every case of one operator.
"""

from __future__ import annotations

import dataclasses
import functools
import zlib
from collections.abc import Iterator, Sequence
from typing import Any

import torch

from fastgan.ops import OPERATORS

from fastgan.testing.layouts import arrange
from fastgan.testing.tolerances import CHUNK

F64 = torch.float64
#: The four operators, in the order of docs/design.md §2.
OP_NAMES = ("interpolate", "grad_norm_penalty", "reconstruction_error", "adversarial_loss")
#: Names of each operator's tensor arguments, in order (for messages).
ARG_NAMES = {
    "interpolate": ("real", "fake", "alpha"),
    "grad_norm_penalty": ("grads",),
    "reconstruction_error": ("x", "recon"),
    "adversarial_loss": ("real", "fake"),
}
ADV_PARAMS = (0.75, -0.25, 1.5)  # real_target, fake_target, margin (not the defaults, on purpose)


def op_module(op: str) -> Any:
    """The module of operator ``op`` (its ``reference``, and adversarial_loss's ``KINDS``,
    ``real_term`` and ``fake_term``): the one place the checks reach into ``fastgan.ops``."""
    if op not in OP_NAMES:
        raise ValueError(f"op: unknown operator {op!r}; expected one of {', '.join(OP_NAMES)}")
    return OPERATORS[op]


#: adversarial_loss's kinds, in their defined order.
KINDS: tuple[str, ...] = tuple(op_module("adversarial_loss").KINDS)


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




_BUILDERS = {
    "interpolate": lambda spec, dtype, device: [("", interpolate_case(spec, dtype, device))],
    "grad_norm_penalty": lambda spec, dtype, device: [
        (f"one_sided={o}", grad_norm_penalty_case(spec, dtype, o, device)) for o in (False, True)],
    "reconstruction_error": lambda spec, dtype, device: [
        (f"p={p}", reconstruction_error_case(spec, dtype, p, device)) for p in (1, 2)],
}


def specs(op: str) -> list[Spec]:
    """The shape / layout specs of ``op``."""
    op_module(op)
    return {"grad_norm_penalty": GNP_SPECS, "adversarial_loss": ADV_SPECS}.get(op, ROW_SPECS)


def cases(op: str, dtype: torch.dtype, device: str = "cpu") -> Iterator[tuple[str, Case]]:
    """Every case of ``op`` in ``dtype`` on ``device``: ``(id, case)`` over the specs and the
    operator's variants (one-sidedness, ``p``, kind and the side left out)."""
    if op == "adversarial_loss":
        for spec, side in ADV_CASES:
            for kind in KINDS:
                yield f"{spec.id}-{kind}-{side}", adversarial_loss_case(spec, dtype, kind, side, device)
        return
    for spec in specs(op):
        for variant, case in _BUILDERS[op](spec, dtype, device):
            yield f"{spec.id}-{variant}" if variant else spec.id, case
