"""PyTorch's transforms on every backend, as on the reference.

Every operator and every family under ``torch.func`` (grad, vjp, jacrev, hessian, vmap, jvp),
forward-mode AD (``torch.autograd.forward_ad``) and second / third order ``torch.autograd.grad``
gives the reference backend's values and derivatives; an unrolled-GAN step (a generator loss
after one differentiable discriminator update) gives the reference's generator gradient. Inputs
are random, fp64, and compared with the reference on the same values.
"""

from __future__ import annotations

import pytest
import torch
import torch.autograd.forward_ad as fwAD
from torch import nn

import fastgan
import fastgan.functional as FG

import kernel_cases as kc

F64 = torch.float64
B = 4
OTHERS = [b for b in kc.BACKENDS if b != "reference"]
backend_params = pytest.mark.parametrize(
    "backend",
    [pytest.param(b, id=b) for b in OTHERS]
    or [pytest.param("-", marks=pytest.mark.skip(reason="only the reference backend is available here"))],
)


def _dev(backend: str) -> str:
    return kc.DEVICE[backend]


def _inputs(name: str, device: str, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """Random fp64 inputs of ``FUNCTIONS[name]``, away from kinks (relu, abs) at 0."""
    g = torch.Generator().manual_seed(seed)

    def r(*shape, positive=False):
        x = torch.randn(*shape, generator=g, dtype=F64)
        x = x + 0.25 * x.sign()
        return (x.abs() if positive else x).to(device)

    shapes = SHAPES[name]
    return tuple(r(*s, positive=(name.startswith(("ebgan", "began")) and len(s) == 1)) for s in shapes)


# name -> (function of tensors only, input shapes)
FUNCTIONS = {
    "gan_d": lambda r, f: FG.gan_discriminator_loss(r, f),
    "gan_g": lambda f: FG.gan_generator_loss(f),
    "gan_g_saturating": lambda f: FG.gan_generator_loss(f, saturating=True),
    "wgan_c": lambda r, f: FG.wgan_critic_loss(r, f),
    "wgan_g": lambda f: FG.wgan_generator_loss(f),
    "lsgan_d": lambda r, f: FG.lsgan_discriminator_loss(r, f),
    "lsgan_g": lambda f: FG.lsgan_generator_loss(f),
    "hinge_d": lambda r, f: FG.hinge_discriminator_loss(r, f),
    "hinge_g": lambda f: FG.hinge_generator_loss(f),
    "ebgan_d": lambda r, f: FG.ebgan_discriminator_loss(r, f, margin=1.5),
    "ebgan_g": lambda f, s: FG.ebgan_generator_loss(f, s),
    "pulling_away": lambda s: FG.pulling_away_term(s),
    "began_d": lambda r, f: FG.began_discriminator_loss(r, f, 0.3),
    "began_g": lambda f: FG.began_generator_loss(f),
    "interpolate": lambda r, f, a: FG.interpolate(r, f, a).square().sum(),
    "grad_norm_penalty": lambda g: FG.grad_norm_penalty(g),
    "grad_norm_penalty_one_sided": lambda g: FG.grad_norm_penalty(g, center=2.0, one_sided=True),
    "reconstruction_error_p1": lambda x, y: FG.reconstruction_error(x, y, p=1).square().sum(),
    "reconstruction_error_p2": lambda x, y: FG.reconstruction_error(x, y, p=2).square().sum(),
    **{
        f"adversarial_{k}": (lambda k: lambda r, f: FG.adversarial_loss(
            r, f, k, real_target=0.75, fake_target=-0.25, margin=1.5).square())(k)
        for k in kc.KINDS
    },
}
SCORES = [(B, 2), (B, 2)]
SHAPES = {
    "gan_d": SCORES, "gan_g": SCORES[:1], "gan_g_saturating": SCORES[:1], "wgan_c": SCORES,
    "wgan_g": SCORES[:1], "lsgan_d": SCORES, "lsgan_g": SCORES[:1], "hinge_d": SCORES,
    "hinge_g": SCORES[:1], "ebgan_d": [(B,), (B,)], "ebgan_g": [(B,), (B, 5)],
    "pulling_away": [(B, 5)], "began_d": [(B,), (B,)], "began_g": [(B,)],
    "interpolate": [(B, 3), (B, 3), (B,)], "grad_norm_penalty": [(B, 3)],
    "grad_norm_penalty_one_sided": [(B, 3)], "reconstruction_error_p1": [(B, 3), (B, 3)],
    "reconstruction_error_p2": [(B, 3), (B, 3)],
    **{f"adversarial_{k}": SCORES for k in kc.KINDS},
}
NAMES = sorted(FUNCTIONS)


def _on(backend: str, transform):
    with fastgan.use_backend(backend):
        return transform()


def _assert_same(actual, expected, what: str) -> None:
    actual, expected = torch.utils._pytree.tree_leaves(actual), torch.utils._pytree.tree_leaves(expected)
    assert len(actual) == len(expected), what
    for a, e in zip(actual, expected):
        torch.testing.assert_close(a, e, rtol=1e-10, atol=1e-12, msg=lambda m: f"{what}: {m}")


TRANSFORMS = {
    "grad": lambda f, xs: torch.func.grad(f, argnums=tuple(range(len(xs))))(*xs),
    "vjp": lambda f, xs: torch.func.vjp(f, *xs)[1](torch.tensor(1.7, dtype=F64, device=xs[0].device)),
    "jacrev": lambda f, xs: torch.func.jacrev(f, argnums=tuple(range(len(xs))))(*xs),
    "hessian": lambda f, xs: torch.func.hessian(f, argnums=0)(*xs),
    "jvp": lambda f, xs: torch.func.jvp(f, xs, tuple(torch.ones_like(x) * 0.5 for x in xs)),
    # vmap over an extra leading dimension of every input: a batch of independent loss calls
    "vmap": lambda f, xs: torch.func.vmap(f)(*(torch.stack([x, 2 * x + 0.1, -x]) for x in xs)),
    "vmap_grad": lambda f, xs: torch.func.vmap(torch.func.grad(f))(*(torch.stack([x, x * 0.5]) for x in xs)),
}


@pytest.mark.parametrize("transform", sorted(TRANSFORMS))
@pytest.mark.parametrize("name", NAMES)
@backend_params
def test_torch_func_transforms_match_the_reference(backend, name, transform):
    xs = _inputs(name, _dev(backend))
    f, t = FUNCTIONS[name], TRANSFORMS[transform]
    expected = _on("reference", lambda: t(f, xs))
    actual = _on(backend, lambda: t(f, xs))
    _assert_same(actual, expected, f"{name} under {transform} on {backend}")


@pytest.mark.parametrize("name", NAMES)
@backend_params
def test_forward_mode_ad_matches_the_reference(backend, name):
    xs = _inputs(name, _dev(backend))
    tangents = _inputs(name, _dev(backend), seed=1)

    def run():
        with fwAD.dual_level():
            duals = [fwAD.make_dual(x, t) for x, t in zip(xs, tangents)]
            out = fwAD.unpack_dual(FUNCTIONS[name](*duals))
            return out.primal.clone(), out.tangent.clone()

    _assert_same(_on(backend, run), _on("reference", run), f"{name} under forward AD on {backend}")


@pytest.mark.parametrize("name", NAMES)
@backend_params
def test_second_and_third_order_autograd_match_the_reference(backend, name):
    def run():
        xs = [x.requires_grad_(True) for x in _inputs(name, _dev(backend))]
        out = FUNCTIONS[name](*xs)
        g1 = torch.autograd.grad(out, xs, create_graph=True)
        s1 = sum((g.square() * torch.linspace(1, 2, g.numel(), dtype=F64).reshape(g.shape)).sum() for g in g1)
        g2 = torch.autograd.grad(s1, xs, create_graph=True, allow_unused=True) if s1.requires_grad else [None] * len(xs)
        g2 = [torch.zeros_like(x) if g is None else g for x, g in zip(xs, g2)]
        s2 = sum(g.pow(3).sum() for g in g2)
        g3 = torch.autograd.grad(s2, xs, allow_unused=True) if s2.requires_grad else [None] * len(xs)
        g3 = [torch.zeros_like(x) if g is None else g for x, g in zip(xs, g3)]
        return [out, *g1, *g2, *g3]

    _assert_same(_on(backend, run), _on("reference", run), f"{name}: orders 1-3 on {backend}")


# ------------------------------------------------------------------------------- unrolled GAN
class _Critic(nn.Module):
    def __init__(self, seed: int) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.w1 = nn.Parameter(torch.randn(3, 8, generator=g, dtype=F64) * 0.5)
        self.w2 = nn.Parameter(torch.randn(8, 1, generator=g, dtype=F64) * 0.5)

    def forward(self, x, params=None):
        w1, w2 = params if params is not None else (self.w1, self.w2)
        return torch.tanh(x @ w1) @ w2


def _unrolled_generator_gradient(family: str, backend: str, device: str) -> list[torch.Tensor]:
    """One differentiable discriminator step (SGD, create_graph), then the generator loss
    through the updated discriminator; the gradient w.r.t. the generator's parameters."""
    g = torch.Generator().manual_seed(3)
    gen_w = torch.randn(2, 3, generator=g, dtype=F64, device=device).requires_grad_(True)
    z = torch.randn(6, 2, generator=g, dtype=F64, device=device)
    real = torch.randn(6, 3, generator=g, dtype=F64, device=device)
    critic = _Critic(4).to(device)
    d_loss_fn, g_loss_fn = {
        "gan": (FG.gan_discriminator_loss, FG.gan_generator_loss),
        "lsgan": (FG.lsgan_discriminator_loss, FG.lsgan_generator_loss),
        "wgan-gp": (FG.wgan_critic_loss, FG.wgan_generator_loss),
        "hinge": (FG.hinge_discriminator_loss, FG.hinge_generator_loss),
    }[family]
    with fastgan.use_backend(backend):
        fake = torch.tanh(z @ gen_w)
        params = [critic.w1, critic.w2]
        d_loss = d_loss_fn(critic(real, params), critic(fake, params))
        if family == "wgan-gp":
            d_loss = d_loss + FG.gradient_penalty(lambda x: critic(x, params), real, fake,
                                                  alpha=torch.full((6,), 0.3, dtype=F64, device=device))
        grads = torch.autograd.grad(d_loss, params, create_graph=True)
        unrolled = [p - 0.5 * gp for p, gp in zip(params, grads)]
        g_loss = g_loss_fn(critic(fake, unrolled))
        # the gradient penalty on the generator's loss (consensus-style): differentiates a gradient
        (g_of_fake,) = torch.autograd.grad(g_loss, fake, create_graph=True)
        total = g_loss + FG.grad_norm_penalty(g_of_fake, center=0.0)
        return list(torch.autograd.grad(total, gen_w))


@pytest.mark.parametrize("family", ["gan", "lsgan", "wgan-gp", "hinge"])
@backend_params
def test_unrolled_gan_generator_gradient_matches_the_reference(backend, family):
    expected = _unrolled_generator_gradient(family, "reference", _dev(backend))
    actual = _unrolled_generator_gradient(family, backend, _dev(backend))
    _assert_same(actual, expected, f"unrolled {family} on {backend}")
    assert expected[0].abs().sum() > 0  # the gradient exists: the comparison can fail


def test_fused_kernels_still_run_at_first_order():
    """Outside transforms, the compiled backend's first-order backward is its own kernel, not the
    composite math (which appears only under create_graph)."""
    if "cpu" not in kc.BACKENDS:
        pytest.skip("the compiled extension is not built here")
    from torch.profiler import ProfilerActivity, profile

    x = torch.randn(B, 3, dtype=F64, requires_grad=True)
    with fastgan.use_backend("cpu"), profile(activities=[ProfilerActivity.CPU]) as prof:
        FG.grad_norm_penalty(x).backward()
    names = {e.name for e in prof.events()}
    assert "fastgan::grad_norm_penalty_backward" in names
    assert "fastgan::_grad_norm_penalty_backward_composite" not in names
    with fastgan.use_backend("cpu"), profile(activities=[ProfilerActivity.CPU]) as prof:
        (g,) = torch.autograd.grad(FG.grad_norm_penalty(x), x, create_graph=True)
    names = {e.name for e in prof.events()}
    assert "fastgan::_grad_norm_penalty_backward_composite" in names
    with fastgan.use_backend("cpu"), profile(activities=[ProfilerActivity.CPU]) as prof:
        torch.func.grad(FG.grad_norm_penalty)(x)
    assert not any(n.startswith("fastgan::") for n in {e.name for e in prof.events()})


# ------------------------------------------------------------ what the forward saves (issue: save
# only what the backward reads): inference tensors and constants modified after the forward
SIDED = {  # name -> function of (constant, needs-grad) tensors
    "gan_d": lambda c, x: FG.gan_discriminator_loss(c, x),
    "gan_d_real_needs_grad": lambda c, x: FG.gan_discriminator_loss(x, c),
    "wgan_c": lambda c, x: FG.wgan_critic_loss(c, x),
    "lsgan_d": lambda c, x: FG.lsgan_discriminator_loss(c, x),
    "hinge_d": lambda c, x: FG.hinge_discriminator_loss(c, x),
    # fake is read only for alpha's gradient, which is not needed here
    "interpolate_fake_constant": lambda c, x: FG.interpolate(
        x, c, torch.linspace(0.1, 0.9, x.shape[0], dtype=x.dtype, device=x.device)).square().sum(),
}


@pytest.mark.parametrize("name", sorted(SIDED))
@pytest.mark.parametrize("backend", [pytest.param(b, id=b) for b in kc.BACKENDS])
def test_constant_inputs_may_be_inference_tensors_or_change_after_the_forward(backend, name):
    device, f = _dev(backend), SIDED[name]
    const, x = _inputs("gan_d", device)
    x.requires_grad_(True)
    with fastgan.use_backend("reference"):
        (expected,) = torch.autograd.grad(f(const, x), x)
    with fastgan.use_backend(backend):
        with torch.inference_mode():
            c_inf = const.clone()
        (got,) = torch.autograd.grad(f(c_inf, x), x)
        torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)
        c_mut = const.clone()
        loss = f(c_mut, x)
        c_mut.add_(1.0)  # modified in place between forward and backward
        (got,) = torch.autograd.grad(loss, x)
        torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("p", [1, 2])
@pytest.mark.parametrize("backend", [pytest.param(b, id=b) for b in kc.BACKENDS])
def test_reconstruction_error_constant_modified_after_the_forward(backend, p):
    """The backward reads both inputs (x − recon): the compiled backends save a constant input
    copy-on-write, so modifying it in place afterwards changes nothing, as on the reference."""
    device = _dev(backend)
    x, recon = _inputs("reconstruction_error_p1", device)
    for const_first in (True, False):
        const, var = (x, recon) if const_first else (recon, x)
        var = var.clone().requires_grad_(True)
        f = (lambda c, v: FG.reconstruction_error(c, v, p=p)) if const_first else (
            lambda c, v: FG.reconstruction_error(v, c, p=p))
        with fastgan.use_backend("reference"):
            (expected,) = torch.autograd.grad(f(const, var).square().sum(), var)
        with fastgan.use_backend(backend):
            mutable = const.clone()
            loss = f(mutable, var).square().sum()
            mutable.mul_(-3.0).add_(1.0)
            (got,) = torch.autograd.grad(loss, var)
            torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)
            assert not torch.equal(mutable, const)  # the caller's tensor did change


@pytest.mark.parametrize("backend", [pytest.param(b, id=b) for b in kc.BACKENDS])
def test_reconstruction_error_of_inference_data(backend):
    """An autoencoder's input often comes from inference-mode data loading: it is a constant the
    backward reads (x − recon), copied where autograd cannot save it."""
    device = _dev(backend)
    x, recon = _inputs("reconstruction_error_p1", device)
    recon.requires_grad_(True)
    with torch.inference_mode():
        x_inf = x.clone()
    for p in (1, 2):
        with fastgan.use_backend("reference"):
            (expected,) = torch.autograd.grad(FG.reconstruction_error(x, recon, p=p).sum(), recon)
        with fastgan.use_backend(backend):
            (got,) = torch.autograd.grad(FG.reconstruction_error(x_inf, recon, p=p).sum(), recon)
        torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)


# --------------------------------------------------------------- penalties under torch.func
@pytest.mark.parametrize("backend", [pytest.param(b, id=b) for b in kc.BACKENDS])
def test_penalties_under_torch_func_match_autograd(backend):
    """gradient_penalty and r1_penalty differentiate the critic themselves; under a torch.func
    transform they do it with torch.func.grad, so grad / vmap over them give what eager autograd
    gives."""
    device = _dev(backend)
    g = torch.Generator().manual_seed(11)
    critic = _Critic(5).to(device)
    real, fake = (torch.randn(6, 3, generator=g, dtype=F64).to(device) for _ in range(2))
    alpha = torch.rand(6, generator=g, dtype=F64).to(device)
    params = {"w1": critic.w1.detach(), "w2": critic.w2.detach()}
    penalties = {
        "gradient_penalty": lambda p: FG.gradient_penalty(lambda x: critic(x, (p["w1"], p["w2"])), real, fake, alpha=alpha),
        "r1_penalty": lambda p: FG.r1_penalty(lambda x: critic(x, (p["w1"], p["w2"])), real),
    }
    with fastgan.use_backend(backend):
        for name, f in penalties.items():
            got = torch.func.grad(f)(params)
            leaves = {k: v.clone().requires_grad_(True) for k, v in params.items()}
            expected = dict(zip(leaves, torch.autograd.grad(f(leaves), list(leaves.values()))))
            _assert_same(got, expected, f"{name}: torch.func.grad w.r.t. the critic's parameters on {backend}")
            assert sum(t.abs().sum() for t in got.values()) > 0
        batched = torch.func.vmap(lambda r: FG.gradient_penalty(critic, r, fake, alpha=alpha))(torch.stack([real, 2 * real]))
        for i, r in enumerate((real, 2 * real)):
            torch.testing.assert_close(batched[i], FG.gradient_penalty(critic, r, fake, alpha=alpha), rtol=1e-12, atol=1e-12)


# --------------------------------------- every transform of every operator: random shapes (hypothesis)
from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from properties import BACKEND_PARAMS, LAYOUTS, arrange, max_numel, shapes, values  # noqa: E402
from properties import _settings, _skip_unusable  # noqa: E402

def _op_call(op: str, p: dict):
    """A scalar function of the operator's tensor inputs, and how many inputs it takes."""
    if op == "interpolate":
        return (lambda r, f, a: fastgan.functional.interpolate(r, f, a).square().sum()), 3
    if op == "grad_norm_penalty":
        return (lambda g: fastgan.functional.grad_norm_penalty(g, p["center"], p["one_sided"])), 1
    if op == "reconstruction_error":
        return (lambda x, y: fastgan.functional.reconstruction_error(x, y, p["p"]).square().sum()), 2
    return (lambda r, f: fastgan.functional.adversarial_loss(r, f, p["kind"], margin=1.5).square()), 2


def _transform(name: str, f, xs):
    if name == "grad":
        return torch.func.grad(f, argnums=tuple(range(len(xs))))(*xs)
    if name == "jvp":
        return torch.func.jvp(f, tuple(xs), tuple(torch.full_like(x, 0.5) for x in xs))
    if name == "vmap":
        return torch.func.vmap(f)(*(torch.stack([x, -x]) for x in xs))
    # second order through autograd: the composite backward of the fused backends
    leaves = [x.detach().clone().requires_grad_(True) for x in xs]
    g1 = torch.autograd.grad(f(*leaves), leaves, create_graph=True)
    s = sum((g * g).sum() for g in g1)
    if not s.requires_grad:
        return g1
    return g1, torch.autograd.grad(s, leaves, allow_unused=True)


@pytest.mark.parametrize("backend", BACKEND_PARAMS)
def test_transforms_property(backend):
    """Every operator under torch.func grad / jvp / vmap and a second-order autograd.grad, on
    random shapes, layouts and values, gives the reference backend's results (fp64)."""
    _skip_unusable(backend)
    device = kc.DEVICE[backend]

    @_settings(backend)
    @given(
        op=st.sampled_from(kc.OP_NAMES),
        transform=st.sampled_from(["grad", "jvp", "vmap", "second_order"]),
        shape=shapes(min(max_numel(backend), 512)),
        layout=st.sampled_from(LAYOUTS),
        regime=st.sampled_from(("normal", "large", "tiny_norm", "zero_rows")),
        params=st.fixed_dictionaries({
            "center": st.sampled_from([0.0, 1.0, 2.5]), "one_sided": st.booleans(),
            "p": st.sampled_from([1, 2]), "kind": st.sampled_from(list(kc.KINDS)),
        }),
        seed=st.integers(0, 2**31 - 1),
    )
    def run(op, transform, shape, layout, regime, params, seed):
        g = torch.Generator().manual_seed(seed)
        f, n = _op_call(op, params)
        xs = [arrange(values(shape, F64, regime, g, norms=op == "grad_norm_penalty"), layout, g).to(device)
              for _ in range(n)]
        if op == "interpolate":
            xs[2] = torch.rand(shape[0], generator=g, dtype=F64).to(device)
        results = {}
        for b in ("reference", backend):
            with fastgan.use_backend(b):
                results[b] = torch.utils._pytree.tree_leaves(_transform(transform, f, xs))
        assert len(results["reference"]) == len(results[backend])
        for e, a in zip(results["reference"], results[backend]):
            if e is None or a is None:
                assert e is None and a is None
                continue
            torch.testing.assert_close(a, e, rtol=1e-9, atol=1e-12 * (1 + e.abs().max().item()), equal_nan=True,
                                       msg=lambda m: f"{backend} {op} under {transform}: {m}")

    run()
