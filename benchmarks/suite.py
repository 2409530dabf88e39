"""What is benchmarked: the cases (operator × size × parameters), their inputs, and the providers
compared on each case. Shared by the pytest-benchmark suites (``test_bench_<op>.py``) and by
``run_cpu.py`` so that both time exactly the same code.

Providers (DESIGN.md §5):

``eager_idiom``
    what users write in eager PyTorch (``alpha*real + (1-alpha)*fake``, ``g.view(B,-1).norm(2, dim=1)``,
    ``F.binary_cross_entropy_with_logits(real, ones_like(real))`` …).
``best_eager``
    the best eager form we know (``torch.lerp``, ``torch.linalg.vector_norm``, ``F.l1_loss`` /
    ``F.mse_loss`` with ``reduction='none'``, ``F.softplus`` …).
``compiled``
    ``torch.compile(reference, dynamic=False)`` of the operator's reference function
    (``fastgan/ops/<op>.py``); compiled and warmed up before any timing, one compiled object per
    operator reused across sizes (each new size / parameter is a recompile, outside the timings).
``fastgan_<backend>``
    ``fastgan.ops.<op>`` — the public API with its argument checks and dispatch — with
    ``fastgan.use_backend(<backend>)`` held around the timed calls, for every backend of
    ``fastgan.available_backends()``.

Every provider's value and gradients are checked against the reference (:func:`check`) before
it is timed, so a wrong kernel is never timed.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

import common
import fastgan

OPS = ("interpolate", "grad_norm_penalty", "reconstruction_error", "adversarial_loss")
KINDS = ("bce", "wgan", "lsgan", "hinge", "margin")
# operator parameters held fixed in every case (the defaults of the public API)
CENTER, ONE_SIDED = 1.0, False
REAL_TARGET, FAKE_TARGET, MARGIN = 1.0, 0.0, 1.0

IMAGE_SMALL, IMAGE_LARGE, IMAGE_TARGET = (64, 3, 64, 64), (256, 3, 64, 64), (256, 3, 128, 128)
LOGITS, PATCHGAN = (64, 1), (64, 1, 30, 30)


@dataclass(frozen=True)
class Case:
    """One benchmark case: an operator, the shape of each of its big inputs, its parameters.

    ``size`` is ``"small"``, ``"large"`` or ``"target"`` (the bandwidth-target size, only in
    ``run_cpu.py``); ``--quick`` runs the small ones.
    """

    op: str
    shape: tuple[int, ...]
    size: str
    params: tuple[tuple[str, Any], ...] = ()

    @property
    def kw(self) -> dict[str, Any]:
        return dict(self.params)

    @property
    def shape_str(self) -> str:
        return "x".join(map(str, self.shape))

    @property
    def params_str(self) -> str:
        return ",".join(f"{k}={v}" for k, v in self.params)

    @property
    def id(self) -> str:
        return self.shape_str + "".join(f"-{k}{v}" if k == "p" else f"-{v}" for k, v in self.params)

    @property
    def numel(self) -> int:
        """N of the ideal-bytes formula (common.ideal_bytes): elements of one input, or of both
        score tensors together for adversarial_loss."""
        n = math.prod(self.shape)
        return 2 * n if self.op == "adversarial_loss" else n

    @property
    def ideal_bytes(self) -> int:
        return common.ideal_bytes(self.op, self.numel, 4)


def all_cases() -> dict[str, list[Case]]:
    images = [(IMAGE_SMALL, "small"), (IMAGE_LARGE, "large"), (IMAGE_TARGET, "target")]
    return {
        "interpolate": [Case("interpolate", s, z) for s, z in images],
        "grad_norm_penalty": [Case("grad_norm_penalty", s, z) for s, z in images],
        "reconstruction_error": [
            Case("reconstruction_error", s, z, (("p", p),)) for s, z in images for p in (1, 2)
        ],
        "adversarial_loss": [
            Case("adversarial_loss", s, "small", (("kind", k),)) for s in (LOGITS, PATCHGAN) for k in KINDS
        ],
    }


CASES = all_cases()


# --------------------------------------------------------------------------------------------
# inputs


@dataclass
class Inputs:
    """The differentiable inputs of one call and the incoming gradient of its output (``None``
    for a 0-dim output: ``torch.autograd.grad`` then uses 1)."""

    tensors: tuple[torch.Tensor, ...]
    grad_out: torch.Tensor | None

    @property
    def nbytes(self) -> int:
        extra = self.grad_out.nbytes if self.grad_out is not None else 0
        return sum(t.nbytes for t in self.tensors) + extra


def make_inputs(case: Case, seed: int = 0) -> Inputs:
    """Random fp32 inputs of ``case`` (all requiring grad), deterministic in ``seed``."""
    g = torch.Generator().manual_seed(seed)
    shape, B = case.shape, case.shape[0]

    def randn(*s, scale=1.0):
        return (torch.randn(*s, generator=g) * scale).requires_grad_()

    if case.op == "interpolate":
        real, fake = randn(*shape), randn(*shape)
        alpha = torch.rand(B, generator=g).requires_grad_()
        return Inputs((real, fake, alpha), torch.randn(*shape, generator=g))
    if case.op == "grad_norm_penalty":
        # per-sample norms around 1.5, as critic gradients near the WGAN-GP target
        d = math.prod(shape[1:])
        return Inputs((randn(*shape, scale=1.5 / math.sqrt(d)),), None)
    if case.op == "reconstruction_error":
        return Inputs((randn(*shape), randn(*shape)), torch.randn(B, generator=g))
    if case.op == "adversarial_loss":
        return Inputs((randn(*shape, scale=2.0), randn(*shape, scale=2.0)), None)
    raise ValueError(case.op)


def input_sets(case: Case, seed: int = 0) -> list[Inputs]:
    """One input set, or several to cycle when one fits in cache (common.rotation_sets)."""
    first = make_inputs(case, seed)
    n = common.rotation_sets(first.nbytes)
    return [first] + [make_inputs(case, seed + i) for i in range(1, n)]


# --------------------------------------------------------------------------------------------
# the providers: each maps a case to fn(*inputs.tensors) -> output


def reference_fn(op: str) -> Callable[..., torch.Tensor]:
    """The reference function of ``fastgan/ops/<op>.py`` (the module, not the public function
    of the same name that ``fastgan.ops`` exports)."""
    return importlib.import_module(f"fastgan.ops.{op}").reference


def _bcast(alpha: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return alpha.view((-1,) + (1,) * (like.dim() - 1))  # (B, 1, 1, 1)


def eager_idiom(case: Case) -> Callable[..., torch.Tensor]:
    op, kw, B = case.op, case.kw, case.shape[0]
    if op == "interpolate":
        def fn(real, fake, alpha):
            a = _bcast(alpha, real)
            return a * real + (1 - a) * fake
    elif op == "grad_norm_penalty":
        def fn(g):
            return ((g.view(B, -1).norm(2, dim=1) - 1) ** 2).mean()
    elif op == "reconstruction_error":
        if kw["p"] == 1:
            def fn(x, r):
                return (x - r).abs().view(B, -1).mean(1)
        else:
            def fn(x, r):
                return ((x - r) ** 2).view(B, -1).mean(1)
    else:
        fn = {
            "bce": lambda real, fake: F.binary_cross_entropy_with_logits(real, torch.ones_like(real))
            + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake)),
            "wgan": lambda real, fake: fake.mean() - real.mean(),
            "lsgan": lambda real, fake: 0.5 * ((real - 1) ** 2).mean() + 0.5 * (fake**2).mean(),
            "hinge": lambda real, fake: F.relu(1 - real).mean() + F.relu(1 + fake).mean(),
            "margin": lambda real, fake: real.mean() + F.relu(1 - fake).mean(),
        }[kw["kind"]]
    return fn


def best_eager(case: Case) -> Callable[..., torch.Tensor]:
    op, kw, B = case.op, case.kw, case.shape[0]
    if op == "interpolate":
        def fn(real, fake, alpha):
            return torch.lerp(fake, real, _bcast(alpha, real))
    elif op == "grad_norm_penalty":
        def fn(g):
            return (torch.linalg.vector_norm(g.flatten(1), dim=1) - 1).square().mean()
    elif op == "reconstruction_error":
        loss = F.l1_loss if kw["p"] == 1 else F.mse_loss

        def fn(x, r):
            return loss(x, r, reduction="none").view(B, -1).mean(1)
    else:
        fn = {
            "bce": lambda real, fake: F.softplus(-real).mean() + F.softplus(fake).mean(),
            "wgan": lambda real, fake: fake.mean() - real.mean(),
            "lsgan": lambda real, fake: 0.5 * (real - 1).square().mean() + 0.5 * fake.square().mean(),
            "hinge": lambda real, fake: (1 - real).clamp_min(0).mean() + (1 + fake).clamp_min(0).mean(),
            "margin": lambda real, fake: real.mean() + (1 - fake).clamp_min(0).mean(),
        }[kw["kind"]]
    return fn


def _bind(op: str, fn: Callable[..., torch.Tensor], case: Case) -> Callable[..., torch.Tensor]:
    """``fn`` with the reference signature, called with the case's tensors only."""
    kw = case.kw
    if op == "interpolate":
        return lambda real, fake, alpha: fn(real, fake, alpha)
    if op == "grad_norm_penalty":
        return lambda g: fn(g, CENTER, ONE_SIDED)
    if op == "reconstruction_error":
        p = kw["p"]
        return lambda x, r: fn(x, r, p)
    kind = kw["kind"]
    return lambda real, fake: fn(real, fake, kind, REAL_TARGET, FAKE_TARGET, MARGIN)


def reference(case: Case) -> Callable[..., torch.Tensor]:
    return _bind(case.op, reference_fn(case.op), case)


_COMPILED: dict[str, Callable[..., torch.Tensor]] = {}


def configure_compile() -> None:
    """Room for every size and parameter of a case list in one compiled object per operator
    (dynamic=False recompiles per shape; past the recompile limit dynamo would silently fall back
    to eager), and in-process compilation: no compile-worker processes left competing for the
    cores with the timed code."""
    import torch._dynamo
    import torch._inductor.config

    for name in ("recompile_limit", "cache_size_limit"):
        if hasattr(torch._dynamo.config, name):
            setattr(torch._dynamo.config, name, max(64, getattr(torch._dynamo.config, name)))
    torch._inductor.config.compile_threads = 1


def compiled(case: Case) -> Callable[..., torch.Tensor]:
    if case.op not in _COMPILED:
        configure_compile()
        _COMPILED[case.op] = torch.compile(reference_fn(case.op), dynamic=False)
    return _bind(case.op, _COMPILED[case.op], case)


def fastgan_fn(case: Case) -> Callable[..., torch.Tensor]:
    kw = case.kw
    if case.op == "interpolate":
        return lambda real, fake, alpha: fastgan.ops.interpolate(real, fake, alpha)
    if case.op == "grad_norm_penalty":
        return lambda g: fastgan.ops.grad_norm_penalty(g, center=CENTER, one_sided=ONE_SIDED)
    if case.op == "reconstruction_error":
        p = kw["p"]
        return lambda x, r: fastgan.ops.reconstruction_error(x, r, p=p)
    kind = kw["kind"]
    return lambda real, fake: fastgan.ops.adversarial_loss(
        real, fake, kind, real_target=REAL_TARGET, fake_target=FAKE_TARGET, margin=MARGIN
    )


@dataclass
class Provider:
    name: str
    make: Callable[[Case], Callable[..., torch.Tensor]]
    context: Callable[[], Any] = field(default=nullcontext)


def providers(backends: list[str] | None = None) -> dict[str, Provider]:
    """Every provider, with one ``fastgan_<backend>`` per available backend (or per name of
    ``backends``)."""
    out = {
        "eager_idiom": Provider("eager_idiom", eager_idiom),
        "best_eager": Provider("best_eager", best_eager),
        "compiled": Provider("compiled", compiled),
    }
    for b in backends if backends is not None else fastgan.available_backends():
        out[f"fastgan_{b}"] = Provider(
            f"fastgan_{b}", fastgan_fn, context=lambda b=b: fastgan.use_backend(b)
        )
    return out


# --------------------------------------------------------------------------------------------
# checks and steps


def _grads(fn: Callable[..., torch.Tensor], inputs: Inputs) -> tuple[torch.Tensor, tuple]:
    out = fn(*inputs.tensors)
    grads = torch.autograd.grad(out, inputs.tensors, inputs.grad_out)
    return out.detach(), grads


def check(case: Case, provider: Provider, fn: Callable[..., torch.Tensor] | None = None) -> None:
    """Value and gradients of ``provider`` on ``case`` against the reference, with
    ``torch.testing.assert_close`` (rtol 1e-5; atol 1e-5 × the largest reference magnitude of
    each tensor — the fp32 reductions of the providers sum in different orders)."""
    fn = fn or provider.make(case)
    inputs = make_inputs(case, seed=12345)
    exp_out, exp_grads = _grads(reference(case), inputs)
    with provider.context():
        out, grads = _grads(fn, inputs)
    names = ["output"] + [f"grad[{i}]" for i in range(len(grads))]
    for name, a, e in zip(names, (out, *grads), (exp_out, *exp_grads)):
        atol = 1e-5 * max(float(e.abs().max()), 1e-30)
        torch.testing.assert_close(
            a, e, rtol=1e-5, atol=atol,
            msg=lambda m, name=name: f"{provider.name} on {case.op} {case.id}: {name} differs from the reference\n{m}",
        )


def make_step(fn: Callable[..., torch.Tensor], sets: list[Inputs]) -> Callable[[], None]:
    """One forward + backward per call, on the next input set of ``sets``."""
    next_set = common.rotating(sets)
    grad = torch.autograd.grad

    def step() -> None:
        inputs = next_set()
        out = fn(*inputs.tensors)
        grad(out, inputs.tensors, inputs.grad_out)

    return step
