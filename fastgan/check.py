"""``fastgan check``: the correctness matrix on this machine — a user's first step on new hardware.

Every operator of :mod:`fastgan.ops` (each kind, ``p``, one-sidedness and center, over odd sizes,
a batch of one, rows longer than one parallel chunk, channels-last, batch-inner and sliced
layouts) and every family of :mod:`fastgan.functional` (GAN, WGAN, WGAN-GP, R1, LSGAN, hinge,
EBGAN with the pulling-away term, BEGAN and its k update) runs on every available backend
(or those asked for) × device × dtype, forward and the gradient with respect to every
differentiable input, and is compared with the ``reference`` backend evaluated in float64 on the
same (already rounded) input values. A table of the largest errors is printed; the exit status
is 1 when any comparison fails or raises.

Pass rule, per compared tensor: ``|actual − expected| <= atol + rtol·|expected|`` with
``atol = atol_scaled · scale + floor`` and ``scale = max|expected|`` (for results that sum
terms of both signs, the magnitude of those terms); NaN and infinities must match exactly, an
expected value beyond the dtype's range must be the infinity it rounds to, and one below the
dtype's smallest normal number (``tiny``) is met by any result within ``tiny`` of it.

=========  ============  ===========  ============  ===========  ==========
dtype      operators:    rtol         atol_scaled   floor        families:
                                                                 rtol = atol_scaled
=========  ============  ===========  ============  ===========  ==========
float64                  1e-10        1e-12         0            1e-9
float32                  2e-5         2e-6          0            1e-4
bfloat16                 eps + 2e-5   2e-5          0            8 eps
float16                  eps + 2e-5   2e-5          2**-24       8 eps
=========  ============  ===========  ============  ===========  ==========

Why: an operator result is computed in fp32 (fp64 for fp64) and rounded once to its dtype —
within one ulp (``eps``) of the exact value — plus fp32 accumulation error over rows of up to
~5e4 elements (~2e-5 relative); fp16 gradients of means over many elements fall into fp16's
subnormal range (spacing 2**-24). The families also run plain PyTorch code in the input dtype
(a critic's forward and double backward for WGAN-GP and R1, the pulling-away term's cosines,
sums of several rounded terms), so their results carry several roundings of the dtype: 8 eps.
Real defects (a wrong sign, a missing 1/B, a wrong index) are off by far more.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import time
import zlib
from collections.abc import Callable, Sequence
from typing import Any, TextIO

import torch

F64, F32, F16, BF16 = torch.float64, torch.float32, torch.float16, torch.bfloat16
DTYPES: dict[str, torch.dtype] = {"f32": F32, "f64": F64, "bf16": BF16, "f16": F16}
DTYPE_NAMES = {v: k for k, v in DTYPES.items()}

#: (rtol, atol_scaled, floor) of an operator result, by dtype (module docstring).
OP_TOL: dict[torch.dtype, tuple[float, float, float]] = {
    F64: (1e-10, 1e-12, 0.0),
    F32: (2e-5, 2e-6, 0.0),
    BF16: (torch.finfo(BF16).eps + 2e-5, 2e-5, 0.0),
    F16: (torch.finfo(F16).eps + 2e-5, 2e-5, 2.0**-24),
}
#: (rtol, atol_scaled, floor) of a family result, by dtype (module docstring).
FAMILY_TOL: dict[torch.dtype, tuple[float, float, float]] = {
    F64: (1e-9, 1e-9, 0.0),
    F32: (1e-4, 1e-4, 0.0),
    BF16: (8 * torch.finfo(BF16).eps, 8 * torch.finfo(BF16).eps, 0.0),
    F16: (8 * torch.finfo(F16).eps, 8 * torch.finfo(F16).eps, 2.0**-24),
}

#: The device types ``fastgan check`` runs on (``--device``).
SUPPORTED_DEVICES = ("cpu", "cuda")

#: Elements per parallel chunk of a row in the CPU kernels: the "long" shapes exceed it.
CHUNK = 16384


# ------------------------------------------------------------------------------ the items
@dataclasses.dataclass(frozen=True)
class Item:
    """One row of the matrix: a call of an operator or a family.

    ``make(g)`` returns the inputs as float64 CPU tensors (drawn from ``g``); ``fn(*tensors)``
    makes the call on tensors of the dtype and device under test (layout changes happen inside
    ``fn``, differentiably, so that the backend sees them); ``grad`` says which inputs are
    differentiated (all floating inputs by default; none for forward-only items).
    ``alpha_scale`` marks interpolate, whose gradient w.r.t. alpha sums terms of both signs."""

    name: str
    group: str  # "operator" or "family"
    make: Callable[[torch.Generator], list[torch.Tensor]]
    fn: Callable[..., torch.Tensor]
    grad: tuple[bool, ...] | None = None
    cancellation: bool = False  # the forward sums terms of both signs
    alpha_scale: bool = False


def _gen(*key: object) -> torch.Generator:
    return torch.Generator().manual_seed(zlib.crc32(repr(key).encode()))


def _randn(g: torch.Generator, *shape: int, std: float = 1.0) -> torch.Tensor:
    return torch.randn(shape, generator=g, dtype=F64) * std


def _rows_with_norms(g: torch.Generator, shape: tuple[int, ...]) -> torch.Tensor:
    """Random rows rescaled to per-sample norms away from the centers 0, 0.5 and 1."""
    norms = (1.7, 0.6, 2.5, 0.3, 3.4, 1.3, 0.8)
    x = torch.randn(shape, generator=g, dtype=F64)
    flat = x.reshape(shape[0], -1)
    target = torch.tensor([norms[i % len(norms)] for i in range(shape[0])], dtype=F64)
    return (flat * (target / torch.linalg.vector_norm(flat, dim=1))[:, None]).reshape(shape)


_LAYOUTS = ("contig", "channels_last", "batch_inner", "sliced")


def _lay(t: torch.Tensor, layout: str) -> torch.Tensor:
    """``t`` (a leaf of the full shape; for ``sliced``, of twice the batch and last size) in
    ``layout``, as a differentiable view or copy."""
    if layout == "contig":
        return t
    if layout == "channels_last":
        return t.contiguous(memory_format=torch.channels_last) if t.dim() == 4 else t
    if layout == "batch_inner":
        rev = tuple(reversed(range(t.dim())))
        return t.permute(rev).contiguous().permute(rev)
    if layout == "sliced":
        index = (slice(None, None, 2),) + (slice(None),) * (t.dim() - 2) + ((slice(None, None, 2),) if t.dim() > 1 else ())
        return t[index]
    raise ValueError(layout)


def _leaf_shape(shape: tuple[int, ...], layout: str) -> tuple[int, ...]:
    if layout != "sliced":
        return shape
    s = list(shape)
    s[0] *= 2
    if len(s) > 1:
        s[-1] *= 2
    return tuple(s)


#: (id, shape, layout) of the operators over per-sample rows.
ROW_SHAPES = (
    ("odd", (5, 3, 7, 9), "contig"),
    ("B1", (1, 37), "contig"),
    ("long", (2, 3, 100, 70), "contig"),
    ("channels_last", (5, 3, 7, 9), "channels_last"),
    ("batch_inner", (4, 33), "batch_inner"),
    ("sliced", (3, 5, 11), "sliced"),
)
#: (id, shape of real, shape of fake, layout) of the discriminator outputs.
SCORE_SHAPES = (
    ("Bx1", (7, 1), (7, 1), "contig"),
    ("B", (6,), (6,), "contig"),
    ("patch", (4, 1, 6, 5), (4, 1, 6, 5), "contig"),
    ("batch_differs", (5, 1), (3, 1), "contig"),
    ("long", (2, 1, 150, 150), (2, 1, 150, 150), "contig"),
    ("channels_last", (4, 3, 6, 5), (4, 3, 6, 5), "channels_last"),
    ("sliced", (6, 3), (6, 3), "sliced"),
)
ADV_PARAMS = {"real_target": 0.75, "fake_target": -0.25, "margin": 1.5}


def operator_items() -> list[Item]:
    import fastgan.ops as ops

    items: list[Item] = []
    for sid, shape, layout in ROW_SHAPES:
        leaf = _leaf_shape(shape, layout)
        b = shape[0]
        items.append(Item(
            f"interpolate[{sid}]", "operator",
            lambda g, leaf=leaf, b=b, layout=layout: [
                _randn(g, *leaf), _randn(g, *leaf),
                torch.rand(leaf[0], generator=g, dtype=F64)[::2] if layout == "sliced" else torch.rand(b, generator=g, dtype=F64),
            ],
            lambda r, f, a, layout=layout: ops.interpolate(_lay(r, layout), _lay(f, layout), a),
            alpha_scale=True,
        ))
        for one_sided in (False, True):
            for center in ((1.0, 0.0) if not one_sided else (1.0,)):
                items.append(Item(
                    f"grad_norm_penalty[{sid}, center={center:g}{', one_sided' if one_sided else ''}]", "operator",
                    lambda g, leaf=leaf: [_rows_with_norms(g, leaf)],
                    lambda x, layout=layout, c=center, o=one_sided: ops.grad_norm_penalty(_lay(x, layout), c, o),
                ))
        for p in (1, 2):
            items.append(Item(
                f"reconstruction_error[{sid}, p={p}]", "operator",
                lambda g, leaf=leaf: [_randn(g, *leaf), _randn(g, *leaf)],
                lambda x, r, layout=layout, p=p: ops.reconstruction_error(_lay(x, layout), _lay(r, layout), p),
            ))
    for sid, s1, s2, layout in SCORE_SHAPES:
        l1, l2 = _leaf_shape(s1, layout), _leaf_shape(s2, layout)
        for kind in ("bce", "wgan", "lsgan", "hinge", "margin"):
            items.append(Item(
                f"adversarial_loss[{sid}, {kind}]", "operator",
                lambda g, l1=l1, l2=l2: [_randn(g, *l1, std=2.0), _randn(g, *l2, std=2.0)],
                lambda r, f, layout=layout, kind=kind: ops.adversarial_loss(_lay(r, layout), _lay(f, layout), kind, **ADV_PARAMS),
                cancellation=kind in ("wgan", "margin"),
            ))
    for side in ("real_only", "fake_only"):
        items.append(Item(
            f"adversarial_loss[Bx1, bce, {side}]", "operator",
            lambda g: [_randn(g, 7, 1, std=2.0)],
            lambda x, side=side: ops.adversarial_loss(x if side == "real_only" else None, x if side == "fake_only" else None, "bce"),
        ))
    return items


def _critic(w: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    """A small differentiable critic with weights ``w`` of shape (features, 8): its input
    gradient depends on the input (tanh), so the penalty's double backward is exercised."""
    def critic(x: torch.Tensor) -> torch.Tensor:
        h = torch.tanh(x.flatten(1) @ w)
        return h.sum(1, keepdim=True) - 0.5 * h[:, :1]
    return critic


def _began_update(x, rx, y, ry):
    import fastgan.functional as FG

    k = torch.tensor(0.3, dtype=x.dtype, device=x.device)
    k_next, convergence = FG.began_update(
        k, FG.reconstruction_error(x, rx, p=1), FG.reconstruction_error(y, ry, p=1), gamma=0.5, lambda_k=0.01
    )
    return torch.stack([k_next.to(x.dtype), convergence.to(x.dtype)])  # k_next is >= fp32


def family_items() -> list[Item]:
    import fastgan.functional as FG

    B, S, X = 6, (6, 1), (6, 3, 4, 5)
    feat = 3 * 4 * 5
    scores2 = lambda g: [_randn(g, *S, std=2.0), _randn(g, *S, std=2.0)]  # noqa: E731
    scores1 = lambda g: [_randn(g, *S, std=2.0)]  # noqa: E731
    patch2 = lambda g: [_randn(g, 5, 1, 4, 3, std=2.0), _randn(g, 5, 1, 4, 3, std=2.0)]  # noqa: E731
    images4 = lambda g: [_randn(g, *X), _randn(g, *X), _randn(g, *X), _randn(g, *X)]  # noqa: E731
    items = [
        Item("gan discriminator", "family", scores2, FG.gan_discriminator_loss),
        Item("gan discriminator (B,1,H,W)", "family", patch2, FG.gan_discriminator_loss),
        Item("gan generator", "family", scores1, FG.gan_generator_loss),
        Item("gan generator saturating", "family", scores1, lambda f: FG.gan_generator_loss(f, saturating=True)),
        Item("wgan critic", "family", scores2, FG.wgan_critic_loss, cancellation=True),
        Item("wgan generator", "family", scores1, FG.wgan_generator_loss, cancellation=True),
        Item("lsgan discriminator", "family", scores2, lambda r, f: FG.lsgan_discriminator_loss(r, f, a=-0.5, b=0.75)),
        Item("lsgan generator", "family", scores1, lambda f: FG.lsgan_generator_loss(f, c=0.75)),
        Item("hinge discriminator", "family", scores2, FG.hinge_discriminator_loss),
        Item("hinge generator", "family", scores1, FG.hinge_generator_loss, cancellation=True),
        Item(
            "wgan-gp gradient_penalty", "family",
            lambda g: [_randn(g, *X), _randn(g, *X), torch.rand(B, generator=g, dtype=F64), _randn(g, feat, 8, std=0.3)],
            lambda r, f, a, w: FG.gradient_penalty(_critic(w), r, f, alpha=a),
            grad=(False, False, False, True),
        ),
        Item(
            "wgan-gp gradient_penalty one_sided", "family",
            lambda g: [_randn(g, *X), _randn(g, *X), torch.rand(B, generator=g, dtype=F64), _randn(g, feat, 8, std=0.3)],
            lambda r, f, a, w: FG.gradient_penalty(_critic(w), r, f, alpha=a, center=0.5, one_sided=True),
            grad=(False, False, False, True),
        ),
        Item(
            "r1_penalty", "family",
            lambda g: [_randn(g, *X), _randn(g, feat, 8, std=0.3)],
            lambda x, w: FG.r1_penalty(_critic(w), x, gamma=5.0),
            grad=(False, True),
        ),
        Item(
            "ebgan discriminator", "family", images4,
            lambda x, rx, y, ry: FG.ebgan_discriminator_loss(FG.reconstruction_error(x, rx, p=2), FG.reconstruction_error(y, ry, p=2), margin=0.6),
        ),
        Item(
            "ebgan generator + pulling-away term", "family",
            lambda g: [_randn(g, *X), _randn(g, *X), _randn(g, B, 2, 5)],
            lambda y, ry, emb: FG.ebgan_generator_loss(FG.reconstruction_error(y, ry, p=2), emb, pt_weight=0.1),
        ),
        Item(
            "began discriminator", "family", images4,
            lambda x, rx, y, ry: FG.began_discriminator_loss(FG.reconstruction_error(x, rx, p=1), FG.reconstruction_error(y, ry, p=1), k=0.3),
        ),
        Item(
            "began generator", "family",
            lambda g: [_randn(g, *X), _randn(g, *X)],
            lambda y, ry: FG.began_generator_loss(FG.reconstruction_error(y, ry, p=1)),
        ),
        Item(
            "began update (k, M_global)", "family", images4,
            lambda x, rx, y, ry: _began_update(x, rx, y, ry),
            grad=(False, False, False, False),
        ),
    ]
    return items


def all_items() -> list[Item]:
    return operator_items() + family_items()


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
    """``(max |error| over finite values, max error / tolerance, failure message or None)``."""
    if actual.shape != expected.shape:
        return math.inf, math.inf, f"shape {tuple(actual.shape)}, expected {tuple(expected.shape)}"
    if actual.dtype != dtype:
        return math.inf, math.inf, f"dtype {actual.dtype}, expected {dtype}"
    rtol, atol_scaled, floor = tol
    a = actual.detach().to("cpu", F64)
    e = expected.detach().to("cpu", F64)
    # an exact value beyond the dtype's range rounds to an infinity: that is the expected result
    rounded = e.to(dtype).to(F64)
    e = torch.where(torch.isinf(rounded) & torch.isfinite(e), rounded, e)
    finite = torch.isfinite(e)
    e_abs = e.abs()
    scale = max(scale, e_abs[finite].max().item() if bool(finite.any()) else 0.0)
    atol = atol_scaled * scale + floor
    diff = (a - e).abs()
    same = (a == e) | (a.isnan() & e.isnan())
    tol_t = atol + rtol * e_abs
    # a value below the dtype's smallest normal number is met by any result within that number
    tiny = torch.finfo(dtype).tiny
    in_band = (e_abs < tiny) & (diff <= tiny)
    bad = ~(((diff <= tol_t) & finite) | same | in_band)
    both = finite & torch.isfinite(a)
    max_err = diff[both].max().item() if bool(both.any()) else 0.0
    ratio = (diff[both] / tol_t[both].clamp_min(1e-300)).max().item() if bool(both.any()) else 0.0
    if bool(bad.any()):
        i = int(bad.flatten().nonzero()[0, 0])
        got, exp = a.flatten()[i].item(), e.flatten()[i].item()
        n = int(bad.sum())
        return max_err, max(ratio, 1.0 + 1e-9 if not math.isfinite(max_err) else ratio), (
            f"{n} of {e.numel()} values out of tolerance (rtol={rtol:g}, atol={atol:g}); "
            f"e.g. got {got!r}, expected {exp!r}"
        )
    return max_err, ratio, None


def _cotangent(shape: torch.Size, g: torch.Generator) -> torch.Tensor:
    mag = 0.5 + 1.5 * torch.rand(shape, generator=g, dtype=F64)
    return torch.where(torch.rand(shape, generator=g, dtype=F64) < 0.5, -mag, mag)


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


def _scales(item: Item, values64: Sequence[torch.Tensor], cot64: torch.Tensor, out64: torch.Tensor) -> dict[str, float]:
    scales: dict[str, float] = {}
    if item.alpha_scale:  # d/dalpha_b = sum_i cot_bi (real_bi - fake_bi), terms of both signs
        real, fake = values64[0], values64[1]
        if real.shape[0] != cot64.shape[0]:  # sliced: the leaf holds twice the batch
            real, fake = _lay(real, "sliced"), _lay(fake, "sliced")
        scales["grad2"] = (cot64 * (real - fake)).abs().reshape(real.shape[0], -1).sum(1).max().item()
    if item.cancellation:  # sums of terms of both signs: the scale is the terms' magnitude
        scales["forward"] = max(v.abs().mean().item() for v in values64) + abs(ADV_PARAMS["margin"])
    return scales


def check_item(item: Item, backend: str, device: str, dtype: torch.dtype, expected_cache: dict | None = None) -> Result:
    """One cell of the matrix: ``item`` on ``backend``/``device`` in ``dtype`` against the
    reference in float64 on the same rounded values."""
    res = Result(backend, device, dtype, item.name, item.group)
    tol = OP_TOL[dtype] if item.group == "operator" else FAMILY_TOL[dtype]
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
