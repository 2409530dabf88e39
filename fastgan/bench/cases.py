"""What ``fastgan bench`` measures: the cases (operator or family × size × parameters), their
inputs, the providers compared on each case, and the check of every provider against the
reference before it is timed.

Operator cases time ``fastgan.ops.<op>`` (forward + backward w.r.t. every input). Family cases
time a family's **full loss**: the discriminator loss plus the generator loss of the loss object
``fastgan.losses.create(family)`` with a discriminator reduced to almost nothing, so that the
loss itself is what is measured — forward + backward w.r.t. the real and fake inputs and D's
parameters:

* ``gan``, ``cgan``, ``wgan``, ``lsgan``, ``hinge``: D is the identity on PatchGAN-shaped score
  maps (B, 1, 30, 30) (``cgan``: ``D(x, labels)``, the labels unused by this D);
* ``wgan-gp``: a linear critic ``D(x)_b = Σ_i w_i x_{b,i}`` on images; the penalty at per-sample
  interpolates runs a double backward through it;
* ``ebgan``, ``began``: an autoencoder ``AE(x) = w ⊙ x`` on images (EBGAN's embedding: the
  per-channel means of the reconstruction, for the pulling-away term).

Providers (DESIGN.md §5):

``eager_idiom``
    what users write in eager PyTorch (``alpha*real + (1-alpha)*fake``,
    ``g.view(B,-1).norm(2, dim=1)``, ``F.binary_cross_entropy_with_logits(real, ones_like(real))``
    …); for a family, its losses written with these idioms.
``best_eager``
    the best eager form we know (``torch.lerp``, ``torch.linalg.vector_norm``, ``F.l1_loss`` /
    ``F.mse_loss`` with ``reduction='none'``, ``F.softplus`` …).
``compiled``
    ``torch.compile(…, dynamic=False)`` of the reference (``fastgan/ops/<op>.py``'s
    ``reference``; for a family, its losses composed of those references); compiled and warmed
    up before any timing (compile time is never timed).
``fastgan_<backend>``
    the public API — ``fastgan.ops.<op>`` with its argument checks and dispatch, or the family's
    loss object — with ``fastgan.use_backend(<backend>)`` held around the calls, for every
    backend of ``fastgan.available_backends()`` that runs on the benchmarked device.

:func:`check` compares every provider's value and gradients with the reference and returns the
largest error; a provider that fails it is never timed.
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

import fastgan
from fastgan.bench import timing

OPS = ("interpolate", "grad_norm_penalty", "reconstruction_error", "adversarial_loss")
FAMILIES = ("gan", "cgan", "wgan", "wgan-gp", "ebgan", "began", "lsgan", "hinge")
KINDS = ("bce", "wgan", "lsgan", "hinge", "margin")
SIZES = ("tiny", "small", "large", "target")
SCORE_FAMILIES = ("gan", "cgan", "wgan", "lsgan", "hinge")
# operator parameters held fixed in every case (the defaults of the public API)
CENTER, ONE_SIDED = 1.0, False
REAL_TARGET, FAKE_TARGET, MARGIN = 1.0, 0.0, 1.0
# family hyper-parameters: the defaults, except BEGAN's k0 (0 would hide the fake term)
GP_WEIGHT, EBGAN_MARGIN, PT_WEIGHT, BEGAN_K0, BEGAN_GAMMA, BEGAN_LAMBDA_K = 10.0, 1.0, 0.1, 0.5, 0.5, 0.001
N_CLASSES = 10

IMAGES = {"tiny": (4, 3, 8, 8), "small": (64, 3, 64, 64), "large": (256, 3, 64, 64), "target": (256, 3, 128, 128)}
LOGITS, PATCHGAN, TINY_SCORES = (64, 1), (64, 1, 30, 30), (4, 1, 5, 5)
SCORE_MAPS = {"tiny": TINY_SCORES, "small": PATCHGAN, "large": (256, 1, 30, 30)}

#: tolerance of :func:`check`: largest |provider − reference| relative to the largest
#: |reference| of each tensor (fp32 reductions sum in different orders)
TOL_OP, TOL_FAMILY = 1e-5, 1e-4


@dataclass(frozen=True)
class Case:
    """One benchmark case: an operator or a family, the shape of each big input, parameters.

    ``size`` is ``"tiny"`` (smoke tests), ``"small"``, ``"large"`` or ``"target"`` (the
    bandwidth-target size); ``quick`` marks the cases ``--quick`` runs.
    """

    op: str
    shape: tuple[int, ...]
    size: str
    params: tuple[tuple[str, Any], ...] = ()
    quick: bool = False

    @property
    def family(self) -> bool:
        """A family's full loss (else an operator)."""
        return self.op in FAMILIES

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
    def label(self) -> str:
        return " ".join(filter(None, (self.op, self.shape_str, self.params_str)))

    @property
    def numel(self) -> int:
        """N of the ideal-bytes formula (timing.ideal_bytes): elements of one input, or of both
        score tensors together for adversarial_loss."""
        n = math.prod(self.shape)
        return 2 * n if self.op == "adversarial_loss" else n

    def ideal_bytes(self, element_size: int = 4) -> int | None:
        """Ideal bytes of one forward + backward (operators only; ``None`` for a family)."""
        if self.family:
            return None
        return timing.ideal_bytes(self.op, self.numel, element_size)


def all_cases() -> list[Case]:
    """Every case, in the order they run."""
    out: list[Case] = []
    for z, s in IMAGES.items():
        out.append(Case("interpolate", s, z, quick=z == "small"))
    for z, s in IMAGES.items():
        out.append(Case("grad_norm_penalty", s, z, quick=z == "small"))
    for z, s in IMAGES.items():
        for p in (1, 2):
            out.append(Case("reconstruction_error", s, z, (("p", p),), quick=z == "small"))
    out += [Case("adversarial_loss", TINY_SCORES, "tiny", (("kind", k),)) for k in KINDS]
    for s in (LOGITS, PATCHGAN):
        for k in KINDS:
            quick = s == PATCHGAN and k in ("bce", "lsgan")
            out.append(Case("adversarial_loss", s, "small", (("kind", k),), quick=quick))
    for fam in FAMILIES:
        table = SCORE_MAPS if fam in SCORE_FAMILIES else IMAGES
        for z, s in table.items():
            if z != "target":
                out.append(Case(fam, s, z, quick=z == "small"))
    return out


CASES = all_cases()
NAMES = OPS + FAMILIES


def select(names: list[str] | None = None, sizes: list[str] | None = None, quick: bool = False) -> list[Case]:
    """The cases of the operators / families ``names`` (default all) with a size in ``sizes``
    (default: all but ``tiny``); with ``quick`` and no ``sizes``, the quick cases only."""
    names = list(names or NAMES)
    unknown = [n for n in names if n not in NAMES]
    if unknown:
        raise ValueError(f"unknown operator or family {', '.join(unknown)}; choose from {', '.join(NAMES)}")
    bad = [z for z in sizes or () if z not in SIZES]
    if bad:
        raise ValueError(f"unknown size {', '.join(bad)}; choose from {', '.join(SIZES)}")
    order = {n: i for i, n in enumerate(names)}
    if sizes:
        chosen = [c for c in CASES if c.op in order and c.size in sizes]
    elif quick:
        chosen = [c for c in CASES if c.op in order and c.quick]
    else:
        chosen = [c for c in CASES if c.op in order and c.size != "tiny"]
    return sorted(chosen, key=lambda c: order[c.op])  # stable: keeps the sizes' order


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


def make_inputs(case: Case, seed: int = 0, device: str = "cpu") -> Inputs:
    """Random fp32 inputs of ``case`` (all requiring grad) on ``device``, deterministic in
    ``seed`` (drawn on the CPU, then moved)."""
    g = torch.Generator().manual_seed(seed)
    shape, B = case.shape, case.shape[0]

    def rnd(*s, scale=1.0, shift=0.0, uniform=False):
        t = torch.rand(*s, generator=g) if uniform else torch.randn(*s, generator=g)
        return (t * scale + shift).to(device).requires_grad_()

    def const(*s):
        return torch.randn(*s, generator=g).to(device)

    op = case.op
    if op == "interpolate":
        return Inputs((rnd(*shape), rnd(*shape), rnd(B, uniform=True)), const(*shape))
    if op == "grad_norm_penalty":
        # per-sample norms around 1.5, as critic gradients near the WGAN-GP target
        return Inputs((rnd(*shape, scale=1.5 / math.sqrt(math.prod(shape[1:]))),), None)
    if op == "reconstruction_error":
        return Inputs((rnd(*shape), rnd(*shape)), const(B))
    if op == "adversarial_loss" or op in SCORE_FAMILIES:
        return Inputs((rnd(*shape, scale=2.0), rnd(*shape, scale=2.0)), None)
    if op == "wgan-gp":  # critic weights: input-gradient norms around 1.5
        w = rnd(*shape[1:], scale=1.5 / math.sqrt(math.prod(shape[1:])))
        return Inputs((rnd(*shape), rnd(*shape), w), None)
    if op in ("ebgan", "began"):  # autoencoder weights around 1: energies around 0.3
        w = rnd(*shape[1:], scale=0.5, shift=0.75, uniform=True)
        return Inputs((rnd(*shape), rnd(*shape), w), None)
    raise ValueError(f"unknown case operator {op!r}")


def input_sets(case: Case, device: timing.Device | None = None, seed: int = 0) -> list[Inputs]:
    """One input set, or several to cycle when one fits in cache (timing.rotation_sets)."""
    device = device or timing.get_device("cpu")
    first = make_inputs(case, seed, device.type)
    n = timing.rotation_sets(first.nbytes, device.rotate_bytes)
    return [first] + [make_inputs(case, seed + i, device.type) for i in range(1, n)]


def _labels(case: Case, device: str) -> torch.Tensor:
    return (torch.arange(case.shape[0]) % N_CLASSES).to(device)


# --------------------------------------------------------------------------------------------
# operator-level building blocks of each provider


def reference_fn(op: str) -> Callable[..., torch.Tensor]:
    """The reference function of ``fastgan/ops/<op>.py`` (the module, not the public function
    of the same name that ``fastgan.ops`` exports)."""
    return importlib.import_module(f"fastgan.ops.{op}").reference


def _bcast(alpha: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return alpha.view((-1,) + (1,) * (like.dim() - 1))  # (B, 1, 1, 1)


class _Idiom:
    """What users write."""

    @staticmethod
    def interpolate(real, fake, alpha):
        a = _bcast(alpha, real)
        return a * real + (1 - a) * fake

    @staticmethod
    def grad_norm_penalty(g):
        return ((g.view(g.shape[0], -1).norm(2, dim=1) - CENTER) ** 2).mean()

    @staticmethod
    def reconstruction_error(x, r, p):
        d = (x - r).abs() if p == 1 else (x - r) ** 2
        return d.view(x.shape[0], -1).mean(1)

    @staticmethod
    def d_loss(kind, real, fake):
        if kind == "bce":
            return F.binary_cross_entropy_with_logits(real, torch.ones_like(real)) + F.binary_cross_entropy_with_logits(
                fake, torch.zeros_like(fake)
            )
        if kind == "wgan":
            return fake.mean() - real.mean()
        if kind == "lsgan":
            return 0.5 * ((real - REAL_TARGET) ** 2).mean() + 0.5 * ((fake - FAKE_TARGET) ** 2).mean()
        if kind == "hinge":
            return F.relu(MARGIN - real).mean() + F.relu(MARGIN + fake).mean()
        return real.mean() + F.relu(MARGIN - fake).mean()  # margin (EBGAN, on energies)

    @staticmethod
    def g_loss(kind, fake):
        if kind == "bce":  # non-saturating
            return F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake))
        if kind == "lsgan":
            return 0.5 * ((fake - REAL_TARGET) ** 2).mean()
        return -fake.mean()  # wgan, hinge

    @staticmethod
    def mean(t):
        return t.mean()


class _Best(_Idiom):
    """The best eager forms we know."""

    @staticmethod
    def interpolate(real, fake, alpha):
        return torch.lerp(fake, real, _bcast(alpha, real))

    @staticmethod
    def grad_norm_penalty(g):
        return (torch.linalg.vector_norm(g.flatten(1), dim=1) - CENTER).square().mean()

    @staticmethod
    def reconstruction_error(x, r, p):
        loss = F.l1_loss if p == 1 else F.mse_loss
        return loss(x, r, reduction="none").view(x.shape[0], -1).mean(1)

    @staticmethod
    def d_loss(kind, real, fake):
        if kind == "bce":
            return F.softplus(-real).mean() + F.softplus(fake).mean()
        if kind == "lsgan":
            return 0.5 * (real - REAL_TARGET).square().mean() + 0.5 * (fake - FAKE_TARGET).square().mean()
        if kind == "hinge":
            return (MARGIN - real).clamp_min(0).mean() + (MARGIN + fake).clamp_min(0).mean()
        if kind == "margin":
            return real.mean() + (MARGIN - fake).clamp_min(0).mean()
        return _Idiom.d_loss(kind, real, fake)

    @staticmethod
    def g_loss(kind, fake):
        if kind == "bce":
            return F.softplus(-fake).mean()
        if kind == "lsgan":
            return 0.5 * (fake - REAL_TARGET).square().mean()
        return -fake.mean()


def _ops_via(get: Callable[[str], Callable[..., Any]], doc: str) -> type:
    """The operator interface :func:`_op_fn` and :func:`family_fn` call, with each operator's
    reference taken from ``get(op)`` (the reference itself, or its compiled form)."""

    class Ops:
        @staticmethod
        def interpolate(real, fake, alpha):
            return get("interpolate")(real, fake, alpha)

        @staticmethod
        def grad_norm_penalty(g):
            return get("grad_norm_penalty")(g, CENTER, ONE_SIDED)

        @staticmethod
        def reconstruction_error(x, r, p):
            return get("reconstruction_error")(x, r, p)

        @staticmethod
        def d_loss(kind, real, fake):
            return get("adversarial_loss")(real, fake, kind, REAL_TARGET, FAKE_TARGET, MARGIN)

        @staticmethod
        def g_loss(kind, fake):
            g_kind = kind if kind in ("bce", "lsgan") else "wgan"  # hinge's generator loss is wgan's
            return get("adversarial_loss")(fake, None, g_kind, REAL_TARGET, FAKE_TARGET, MARGIN)

        @staticmethod
        def mean(t):
            return get("adversarial_loss")(None, t, "wgan", REAL_TARGET, FAKE_TARGET, MARGIN)

    Ops.__doc__ = doc
    return Ops


_Ref = _ops_via(reference_fn, "fastgan's references (``fastgan/ops/<op>.py``), called directly.")


def _op_fn(impl: type, case: Case) -> Callable[..., torch.Tensor]:
    """Operator ``case.op`` in the style ``impl``, called with the case's tensors only."""
    kw = case.kw
    if case.op == "interpolate":
        return impl.interpolate
    if case.op == "grad_norm_penalty":
        return impl.grad_norm_penalty
    if case.op == "reconstruction_error":
        p = kw["p"]
        return lambda x, r: impl.reconstruction_error(x, r, p)
    kind = kw["kind"]
    return lambda real, fake: impl.d_loss(kind, real, fake)


# --------------------------------------------------------------------------------------------
# families: full loss (discriminator + generator) in the style of ``impl``

_KIND = {"gan": "bce", "cgan": "bce", "wgan": "wgan", "lsgan": "lsgan", "hinge": "hinge"}


def _linear_critic(w: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    return lambda x: (x * w).flatten(1).sum(1)


def _autoencoder(w: torch.Tensor) -> Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    def ae(x):
        recon = x * w
        return recon, recon.flatten(2).mean(2)  # embedding: per-channel means, (B, C)

    return ae


def _pulling_away(emb: torch.Tensor) -> torch.Tensor:
    n = emb.shape[0]
    s = emb.reshape(n, -1)
    s = s / torch.linalg.vector_norm(s, dim=1, keepdim=True).clamp_min(torch.finfo(s.dtype).tiny ** 0.5)
    cos2 = (s @ s.T).square()
    return cos2.masked_fill(torch.eye(n, dtype=torch.bool, device=s.device), 0.0).sum() / (n * (n - 1))


def family_fn(impl: type, case: Case) -> Callable[..., torch.Tensor]:
    """``fn(*tensors) -> d_loss + g_loss`` of family ``case.op`` written with ``impl``'s
    operators (what a user writes in eager PyTorch, or fastgan's reference composition)."""
    fam = case.op
    if fam in SCORE_FAMILIES:
        kind = _KIND[fam]

        def fn(real, fake):  # D is the identity: the inputs are its scores
            return impl.d_loss(kind, real, fake.detach()) + impl.g_loss(kind, fake)

        return fn
    if fam == "wgan-gp":

        def fn(real, fake, w):
            D = _linear_critic(w)
            d = impl.d_loss("wgan", D(real), D(fake.detach()))
            alpha = torch.rand(real.shape[0], device=real.device, dtype=real.dtype)
            x_hat = impl.interpolate(real.detach(), fake.detach(), alpha).requires_grad_(True)
            (g,) = torch.autograd.grad(D(x_hat).sum(), x_hat, create_graph=True)
            return d + GP_WEIGHT * impl.grad_norm_penalty(g) + impl.g_loss("wgan", D(fake))

        return fn
    if fam == "ebgan":

        def fn(real, fake, w):
            ae = _autoencoder(w)
            e_real = impl.reconstruction_error(real, ae(real)[0], 2)
            e_fake = impl.reconstruction_error(fake.detach(), ae(fake.detach())[0], 2)
            d = impl.d_loss("margin", e_real, e_fake)
            recon, emb = ae(fake)
            return d + impl.mean(impl.reconstruction_error(fake, recon, 2)) + PT_WEIGHT * _pulling_away(emb)

        return fn
    if fam == "began":
        state = {"k": None}

        def fn(real, fake, w):
            ae = _autoencoder(w)
            if state["k"] is None:
                state["k"] = torch.tensor(BEGAN_K0, dtype=torch.float32, device=real.device)
            l_real = impl.reconstruction_error(real, ae(real)[0], 1)
            l_fake = impl.reconstruction_error(fake.detach(), ae(fake.detach())[0], 1)
            k = state["k"].clone()
            d = l_real.mean() - k * l_fake.mean()
            with torch.no_grad():  # k's proportional control, on the device
                state["k"].copy_((k + BEGAN_LAMBDA_K * (BEGAN_GAMMA * l_real.mean() - l_fake.mean())).clamp(0, 1))
            return d + impl.mean(impl.reconstruction_error(fake, ae(fake)[0], 1))

        return fn
    raise ValueError(f"unknown family {fam!r}")


def _loss_object(case: Case) -> Any:
    hp = {"wgan-gp": {"gp_weight": GP_WEIGHT}, "ebgan": {"margin": EBGAN_MARGIN, "pt_weight": PT_WEIGHT},
          "began": {"k0": BEGAN_K0, "gamma": BEGAN_GAMMA, "lambda_k": BEGAN_LAMBDA_K}}.get(case.op, {})
    return fastgan.losses.create(case.op, **hp)


def fastgan_family_fn(case: Case, device: str = "cpu") -> Callable[..., torch.Tensor]:
    """``fn(*tensors) -> d_loss + g_loss`` through the family's loss object."""
    fam = case.op
    loss = _loss_object(case).to(device)
    if fam in SCORE_FAMILIES:
        if fam == "cgan":
            labels = _labels(case, device)

            def D(x, y):  # noqa: ARG001 - a conditional D that ignores its labels
                return x

            return lambda real, fake: loss.discriminator_loss(D, real, fake, labels)[0] + loss.generator_loss(D, fake, labels)[0]

        def ident(x):
            return x

        return lambda real, fake: loss.discriminator_loss(ident, real, fake)[0] + loss.generator_loss(ident, fake)[0]
    make_d = _linear_critic if fam == "wgan-gp" else _autoencoder

    def fn(real, fake, w):
        D = make_d(w)
        return loss.discriminator_loss(D, real, fake)[0] + loss.generator_loss(D, fake)[0]

    return fn


# --------------------------------------------------------------------------------------------
# the providers: each maps (case, device) to fn(*inputs.tensors) -> output


def eager_idiom(case: Case, device: str = "cpu") -> Callable[..., torch.Tensor]:
    return family_fn(_Idiom, case) if case.family else _op_fn(_Idiom, case)


def best_eager(case: Case, device: str = "cpu") -> Callable[..., torch.Tensor]:
    return family_fn(_Best, case) if case.family else _op_fn(_Best, case)


def reference(case: Case, device: str = "cpu") -> Callable[..., torch.Tensor]:
    """The reference of the case: the operator's reference, or the family composed of them."""
    return family_fn(_Ref, case) if case.family else _op_fn(_Ref, case)


_COMPILED: dict[Any, Callable[..., torch.Tensor]] = {}


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


def _compiled_ref(op: str) -> Callable[..., torch.Tensor]:
    """``torch.compile`` of operator ``op``'s reference: one compiled object per operator,
    reused across sizes and parameters (each new one is a recompile, outside the timings)."""
    if op not in _COMPILED:
        _COMPILED[op] = torch.compile(reference_fn(op), dynamic=False)
    return _COMPILED[op]


_CompiledOps = _ops_via(_compiled_ref, "The references of the operators, each compiled on its own.")


def compiled(case: Case, device: str = "cpu") -> Callable[..., torch.Tensor]:
    """``torch.compile`` of the reference. An operator: its reference compiled (one compiled
    object per operator, reused across sizes). A family: its whole reference loss compiled as
    one function — except ``wgan-gp``, whose penalty needs a double backward that
    ``torch.compile`` does not support: there the reference operators are compiled one by one
    and composed in eager mode (what a user can do)."""
    configure_compile(device)
    if case.family:
        if case.op == "wgan-gp":
            return family_fn(_CompiledOps, case)
        key = (case.op, case.shape)
        if key not in _COMPILED:
            _COMPILED[key] = torch.compile(family_fn(_Ref, case), dynamic=False)
        return _COMPILED[key]
    return _op_fn(_CompiledOps, case)


def fastgan_fn(case: Case, device: str = "cpu") -> Callable[..., torch.Tensor]:
    """The public API: ``fastgan.ops.<op>`` or the family's loss object."""
    if case.family:
        return fastgan_family_fn(case, device)
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
    """A named way of computing a case: ``make(case, device) -> fn(*tensors)``, and a context
    held around every call (a backend selection)."""

    name: str
    make: Callable[..., Callable[..., torch.Tensor]]
    context: Callable[[], Any] = field(default=nullcontext)
    kind: str = "baseline"  # "baseline" or "fastgan"


#: device types each backend runs on (``None``: every device)
BACKEND_DEVICES: dict[str, tuple[str, ...] | None] = {"reference": None, "cpu": ("cpu",), "triton": ("cuda",), "cuda": ("cuda",)}

BASELINES = ("eager_idiom", "best_eager", "compiled")

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
    make = {"eager_idiom": eager_idiom, "best_eager": best_eager, "compiled": compiled}
    out = {name: Provider(name, make[name]) for name in baselines}
    for b in backends_for(device, backends):
        out[f"fastgan_{b}"] = Provider(f"fastgan_{b}", fastgan_fn, context=lambda b=b: fastgan.use_backend(b), kind="fastgan")
    out.update(EXTRA_PROVIDERS)
    return out


# --------------------------------------------------------------------------------------------
# checks and steps


def _grads(fn: Callable[..., torch.Tensor], inputs: Inputs, seed: int) -> tuple[torch.Tensor, tuple]:
    torch.manual_seed(seed)  # WGAN-GP's alpha: the same draws for every provider
    out = fn(*inputs.tensors)
    grads = torch.autograd.grad(out, inputs.tensors, inputs.grad_out)
    return out.detach(), grads


@dataclass
class CheckResult:
    """Outcome of :func:`check`: ``ok``, the largest error (relative to each tensor's largest
    reference magnitude) and on which tensor it was, or the exception raised."""

    ok: bool
    max_error: float | None = None
    where: str = ""
    error: str | None = None

    @property
    def status(self) -> str:
        if self.error is not None:
            return "error"
        return "ok" if self.ok else "wrong"

    def mark(self) -> str:
        if self.error is not None:
            return "✗ error"
        return ("✓" if self.ok else "✗") + (f" {self.max_error:.0e}" if self.max_error is not None else "")


def check(case: Case, provider: Provider, fn: Callable[..., torch.Tensor] | None = None, device: str = "cpu") -> CheckResult:
    """Value and every gradient of ``provider`` on ``case`` against the reference (on fresh
    inputs): the largest ``|a − e| / max|e|`` over the tensors must stay within
    :data:`TOL_OP` (operators) or :data:`TOL_FAMILY` (full losses; NaN fails)."""
    try:
        fn = fn or provider.make(case, device)
        inputs = make_inputs(case, seed=12345, device=device)
        exp_out, exp_grads = _grads(reference(case, device), inputs, seed=777)
        with provider.context():
            out, grads = _grads(fn, inputs, seed=777)
    except Exception as exc:  # a broken provider is reported, never timed
        msg = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return CheckResult(False, error=f"{type(exc).__name__}: {msg}")
    tol = TOL_FAMILY if case.family else TOL_OP
    worst, where = 0.0, ""
    names = ["output"] + [f"grad[{i}]" for i in range(len(grads))]
    for name, a, e in zip(names, (out, *grads), (exp_out, *exp_grads)):
        if a is None or e is None or a.shape != e.shape:
            return CheckResult(False, float("inf"), f"{name} shape")
        a64, e64 = a.detach().double(), e.detach().double()
        scale = max(float(e64.abs().max()) if e64.numel() else 0.0, 1e-30)
        diff = (a64 - e64).abs()
        nan_mismatch = bool((a64.isnan() != e64.isnan()).any())
        err = float("inf") if nan_mismatch else float(diff.nan_to_num(0.0).max() if diff.numel() else 0.0) / scale
        if err > worst or err != err:
            worst, where = err, name
    return CheckResult(worst <= tol, worst, where)


def make_step(fn: Callable[..., torch.Tensor], sets: list[Inputs]) -> Callable[[], None]:
    """One forward + backward per call, on the next input set of ``sets``."""
    next_set = timing.rotating(sets)
    grad = torch.autograd.grad

    def step() -> None:
        inputs = next_set()
        out = fn(*inputs.tensors)
        grad(out, inputs.tensors, inputs.grad_out)

    return step
