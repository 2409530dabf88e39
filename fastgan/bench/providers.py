"""The providers compared on every case (docs/design.md §5): each maps ``(case, device)`` to
``fn(*inputs.tensors) -> output``, with a context held around its calls.

``eager_idiom``
    what users write in eager PyTorch (``alpha*real + (1-alpha)*fake``,
    ``g.view(B,-1).norm(2, dim=1)``, ``F.binary_cross_entropy_with_logits(real, ones_like(real))``
    …); for a family, its losses written with these idioms (:mod:`fastgan.bench.idioms`).
``best_eager``
    the best eager form we know (``torch.lerp``, ``torch.linalg.vector_norm``, ``F.l1_loss`` /
    ``F.mse_loss`` with ``reduction='none'``, ``F.softplus`` …).
``compiled``
    ``torch.compile(…, dynamic=False)`` of the reference: an operator's reference
    (``fastgan/ops/<op>.py``'s ``reference``), or a family's loss object on fastgan's
    ``reference`` backend; compiled and warmed up before any timing (compile time is never
    timed).
``fastgan_<backend>``
    the public API — ``fastgan.ops.<op>`` with its argument checks and dispatch, or the family's
    loss object — with ``fastgan.use_backend(<backend>)`` held around the calls, for every
    backend of ``fastgan.available_backends()`` that runs on the benchmarked device.

:func:`reference` is what every provider is checked against.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

import torch

import fastgan
from fastgan.bench import families, idioms
from fastgan.bench.catalogue import CENTER, FAKE_TARGET, MARGIN, ONE_SIDED, REAL_TARGET, Case

Fn = Callable[..., torch.Tensor]


def eager_idiom(case: Case, device: str = "cpu") -> Fn:
    return idioms.family_fn(idioms.EAGER_IDIOM, case) if case.family else idioms.op_fn(idioms.EAGER_IDIOM, case)


def best_eager(case: Case, device: str = "cpu") -> Fn:
    return idioms.family_fn(idioms.BEST_EAGER, case) if case.family else idioms.op_fn(idioms.BEST_EAGER, case)


def reference(case: Case, device: str = "cpu") -> Fn:
    """The reference of the case: the operator's reference, or the family's loss object on the
    ``reference`` backend."""
    return families.reference_loss_fn(case, device) if case.family else idioms.op_fn(idioms.REFERENCE, case)


_COMPILED: dict[Any, Fn] = {}


def configure_compile(device: str = "cpu") -> None:
    """Room for every size and parameter of a run in one compiled object per operator
    (``dynamic=False`` recompiles per shape; past the recompile limit dynamo would silently fall
    back to eager), and on the CPU in-process compilation: no compile-worker processes left
    competing for the cores with the timed code."""
    import torch._dynamo
    import torch._inductor.config

    for name in ("recompile_limit", "cache_size_limit"):
        if hasattr(torch._dynamo.config, name):
            setattr(torch._dynamo.config, name, max(64, getattr(torch._dynamo.config, name)))
    if device == "cpu":
        torch._inductor.config.compile_threads = 1


def _compiled_ref(op: str) -> Fn:
    """``torch.compile`` of operator ``op``'s reference: one compiled object per operator,
    reused across sizes and parameters (each new one is a recompile, outside the timings)."""
    if op not in _COMPILED:
        _COMPILED[op] = torch.compile(idioms.reference_fn(op), dynamic=False)
    return _COMPILED[op]


#: the references of the operators, each compiled on its own
COMPILED_OPS: idioms.Table = idioms.reference_table(_compiled_ref)


def compiled(case: Case, device: str = "cpu") -> Fn:
    """``torch.compile`` of the reference. An operator: its reference compiled (one compiled
    object per operator, reused across sizes). A family: its loss object's full loss compiled as
    one function, run on the ``reference`` backend (the provider's context) — except
    ``wgan-gp``, whose penalty needs a double backward that ``torch.compile`` does not support:
    there the reference operators are compiled one by one and composed in eager mode, as a user
    can (:func:`fastgan.bench.idioms.family_fn`)."""
    configure_compile(device)
    if not case.family:
        return idioms.op_fn(COMPILED_OPS, case)
    if case.op == "wgan-gp":
        return idioms.family_fn(COMPILED_OPS, case)
    key = (case.op, case.shape)
    if key not in _COMPILED:
        _COMPILED[key] = torch.compile(families.loss_fn(case, device), dynamic=False)
    return _COMPILED[key]


def fastgan_fn(case: Case, device: str = "cpu") -> Fn:
    """The public API: ``fastgan.functional.<op>`` or the family's loss object."""
    if case.family:
        return families.loss_fn(case, device)
    if case.op == "interpolate":
        return lambda real, fake, alpha: fastgan.functional.interpolate(real, fake, alpha)
    if case.op == "grad_norm_penalty":
        return lambda g: fastgan.functional.grad_norm_penalty(g, center=CENTER, one_sided=ONE_SIDED)
    if case.op == "reconstruction_error":
        p = case.kw["p"]
        return lambda x, r: fastgan.functional.reconstruction_error(x, r, p=p)
    kind = case.kw["kind"]
    return lambda real, fake: fastgan.functional.adversarial_loss(
        real, fake, kind, real_target=REAL_TARGET, fake_target=FAKE_TARGET, margin=MARGIN
    )


@dataclass
class Provider:
    """A named way of computing a case: ``make(case, device) -> fn(*tensors)``, and a context
    held around every call (a backend selection)."""

    name: str
    make: Callable[..., Fn]
    context: Callable[[], Any] = field(default=nullcontext)
    kind: str = "baseline"  # "baseline" or "fastgan"


def _on_reference() -> Any:
    return fastgan.use_backend("reference")


#: the baselines: ``name -> (make, context)``
BASELINE_TABLE: dict[str, tuple[Callable[..., Fn], Callable[[], Any]]] = {
    "eager_idiom": (eager_idiom, nullcontext),
    "best_eager": (best_eager, nullcontext),
    "compiled": (compiled, _on_reference),
}
BASELINES = tuple(BASELINE_TABLE)

#: device types each backend runs on (``None``: every device)
BACKEND_DEVICES: dict[str, tuple[str, ...] | None] = {"reference": None, "cpu": ("cpu",), "triton": ("cuda",), "cuda": ("cuda",)}

#: more providers, checked and timed like the others (for experiments and tests):
#: ``name -> Provider``
EXTRA_PROVIDERS: dict[str, Provider] = {}


def backends_for(device: str, wanted: list[str] | None = None) -> list[str]:
    """The available fastgan backends that run on ``device`` (restricted to ``wanted``)."""
    names = []
    for b in fastgan.available_backends():
        devs = BACKEND_DEVICES.get(b, None)
        if devs is not None and device not in devs:
            continue
        if wanted is not None and b not in wanted:
            continue
        names.append(b)
    return names


def providers(device: str = "cpu", backends: list[str] | None = None, baselines: tuple[str, ...] = BASELINES) -> dict[str, Provider]:
    """The baselines, one ``fastgan_<backend>`` per backend of :func:`backends_for`, and
    :data:`EXTRA_PROVIDERS`."""
    out = {name: Provider(name, *BASELINE_TABLE[name]) for name in baselines}
    for b in backends_for(device, backends):
        out[f"fastgan_{b}"] = Provider(f"fastgan_{b}", fastgan_fn, context=lambda b=b: fastgan.use_backend(b), kind="fastgan")
    out.update(EXTRA_PROVIDERS)
    return out
