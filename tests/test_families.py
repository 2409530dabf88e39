"""fastgan.functional against the independent implementation of docs/design.md §1 (tests/paper.py).

Every function: forward value and the gradient w.r.t. every tensor input, in float64 (tight)
and float32 (loose, against the float64 paper value), over batch sizes 1 and odd sizes and
discriminator outputs shaped (B,), (B, 1), (B, 1, H, W); gradcheck in float64; inputs left
untouched; no host sync.
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from torch.testing import assert_close

import fastgan.functional as F

import paper
from fastgan.testing import TOLERANCES
from fastgan.testing import assert_close as assert_family_close

F64, F32 = torch.float64, torch.float32
DTYPES = [pytest.param(F64, id="f64"), pytest.param(F32, id="f32")]
#: torch.testing.assert_close's rtol / atol from the ``paper`` row of fastgan.testing's one table.
TOL = {dt: dict(rtol=t.rtol, atol=t.floor) for dt, t in TOLERANCES["paper"].items()}


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _away(x: torch.Tensor, points, gap=1e-2) -> torch.Tensor:
    """Push values away from the kinks of relu/abs so finite differences are valid."""
    for p in points:
        near = (x - p).abs() < gap
        x = torch.where(near, x + torch.where(x >= p, 2 * gap, -2 * gap), x)
    return x


# --------------------------------------------------------------------------- input makers
# Every maker takes a torch.Generator and returns a tuple of float64 tensors (the positional
# tensor inputs of the function, in order).


def _logits(shape):
    def make(g):
        return tuple(
            _away(torch.randn(shape, generator=g, dtype=F64) * 2.0, (-1.0, 1.0)) for _ in range(2)
        )

    return make


def _logits1(shape):
    def make(g):
        return (_away(torch.randn(shape, generator=g, dtype=F64) * 2.0, (-1.0, 1.0)),)

    return make


def _energies(batch, count):
    def make(g):
        return tuple(
            _away(torch.rand(batch, generator=g, dtype=F64) * 2.0 + 0.05, (0.5, 1.0))
            for _ in range(count)
        )

    return make


def _energy_and_embeddings(batch, emb_shape):
    def make(g):
        energy = torch.rand(batch, generator=g, dtype=F64) * 2.0 + 0.05
        emb = torch.randn((batch, *emb_shape), generator=g, dtype=F64)
        return energy, emb

    return make


def _embeddings(batch, emb_shape):
    def make(g):
        return (torch.randn((batch, *emb_shape), generator=g, dtype=F64),)

    return make


def _recon(shape):
    def make(g):
        x = torch.randn(shape, generator=g, dtype=F64)
        r = x + _away(torch.randn(shape, generator=g, dtype=F64), (0.0,))
        return x, r

    return make


def _interp(shape):
    def make(g):
        real = torch.randn(shape, generator=g, dtype=F64)
        fake = torch.randn(shape, generator=g, dtype=F64)
        alpha = torch.rand(shape[0], generator=g, dtype=F64)
        return real, fake, alpha

    return make


def _grads(shape):
    """Per-sample gradients whose norms spread over [0.2, 2.4] (both sides of center 1 and 0.5)."""

    def make(g):
        batch = shape[0]
        x = torch.randn(shape, generator=g, dtype=F64)
        norms = x.reshape(batch, -1).norm(dim=1)
        target = torch.linspace(0.2, 2.4, batch, dtype=F64)[torch.randperm(batch, generator=g)]
        if batch == 1:
            target = torch.tensor([1.7], dtype=F64)
        target = _away(target, (0.5, 1.0), gap=0.05)
        scale = (target / norms).reshape(batch, *([1] * (len(shape) - 1)))
        return (x * scale,)

    return make


OUT_SHAPES = [(1,), (7,), (1, 1), (5, 1), (3, 1, 4, 5), (2, 1, 3, 3)]


def _shape_id(shape):
    return "x".join(map(str, shape))


def _cases():
    cases = []

    def add(name, kwargs, make, sid, kid=None):
        kid = kid if kid is not None else ",".join(f"{k}={v}" for k, v in kwargs.items())
        cases.append(pytest.param(name, kwargs, make, id=f"{name}[{kid}]-{sid}"))

    for shape in OUT_SHAPES:
        sid = _shape_id(shape)
        add("gan_discriminator_loss", {}, _logits(shape), sid)
        add("gan_generator_loss", {}, _logits1(shape), sid)
        add("gan_generator_loss", {"saturating": False}, _logits1(shape), sid)
        add("gan_generator_loss", {"saturating": True}, _logits1(shape), sid)
        add("wgan_critic_loss", {}, _logits(shape), sid)
        add("wgan_generator_loss", {}, _logits1(shape), sid)
        add("lsgan_discriminator_loss", {}, _logits(shape), sid)
        add("lsgan_discriminator_loss", {"a": -1.0, "b": 1.0}, _logits(shape), sid)
        add("lsgan_discriminator_loss", {"a": 0.3, "b": 0.7}, _logits(shape), sid)
        add("lsgan_generator_loss", {}, _logits1(shape), sid)
        add("lsgan_generator_loss", {"c": 0.0}, _logits1(shape), sid)
        add("lsgan_generator_loss", {"c": 0.5}, _logits1(shape), sid)
        add("hinge_discriminator_loss", {}, _logits(shape), sid)
        add("hinge_generator_loss", {}, _logits1(shape), sid)

    for shape in [(1, 3), (5, 1), (3, 7), (2, 3, 4, 5), (1, 1, 2, 3)]:
        sid = _shape_id(shape)
        add("interpolate", {}, _interp(shape), sid)
        add("reconstruction_error", {"p": 1}, _recon(shape), sid)
        add("reconstruction_error", {"p": 2}, _recon(shape), sid)
    add("interpolate", {}, _interp((4,)), "4")

    for shape in [(1, 4), (3, 1), (5, 7), (3, 2, 3, 5), (1, 1, 4, 4), (6, 3, 2)]:
        sid = _shape_id(shape)
        add("grad_norm_penalty", {}, _grads(shape), sid)
        add("grad_norm_penalty", {"center": 0.5}, _grads(shape), sid)
        add("grad_norm_penalty", {"center": 0.0}, _grads(shape), sid)
        add("grad_norm_penalty", {"one_sided": True}, _grads(shape), sid)
        add("grad_norm_penalty", {"center": 0.5, "one_sided": True}, _grads(shape), sid)

    for batch in [1, 2, 7]:
        sid = str(batch)
        add("ebgan_discriminator_loss", {"margin": 1.0}, _energies(batch, 2), sid)
        add("ebgan_discriminator_loss", {"margin": 0.5}, _energies(batch, 2), sid)
        add("ebgan_generator_loss", {}, _energies(batch, 1), sid)
        add("ebgan_generator_loss", {"pt_weight": 0.7}, _energies(batch, 1), sid)
        add("began_discriminator_loss", {"k": 0.0}, _energies(batch, 2), sid)
        add("began_discriminator_loss", {"k": 0.37}, _energies(batch, 2), sid)
        add("began_discriminator_loss", {"k": 1.0}, _energies(batch, 2), sid)
        add("began_discriminator_loss", {"k": torch.tensor(0.37)}, _energies(batch, 2), sid,
            kid="k=tensor")
        add("began_generator_loss", {}, _energies(batch, 1), sid)

    for batch, emb in [(2, (5,)), (3, (4,)), (7, (6,)), (4, (2, 3, 3)), (5, (1,))]:
        sid = f"{batch}x{_shape_id(emb)}"
        add("pulling_away_term", {}, _embeddings(batch, emb), sid)
        add("ebgan_generator_loss", {}, _energy_and_embeddings(batch, emb), sid, kid="emb")
        add("ebgan_generator_loss", {"pt_weight": 0.7}, _energy_and_embeddings(batch, emb), sid,
            kid="emb,pt_weight=0.7")
    return cases


CASES = _cases()


def _kwargs_to(kwargs, dtype):
    return {k: (v.to(dtype) if isinstance(v, torch.Tensor) else v) for k, v in kwargs.items()}


def _lib_and_ref_inputs(make, dtype, seed=0):
    base = make(_gen(seed))
    lib_in = [t.detach().to(dtype).requires_grad_(True) for t in base]
    ref_in = [t.detach().to(F64).requires_grad_(True) for t in lib_in]  # same values as lib
    return lib_in, ref_in


def _weights_like(ref: torch.Tensor, seed=123):
    return torch.randn(ref.shape, generator=_gen(seed), dtype=F64)


# --------------------------------------------------------------------------- generic cases


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name, kwargs, make", CASES)
def test_forward_and_grad_match_paper(name, kwargs, make, dtype):
    lib_in, ref_in = _lib_and_ref_inputs(make, dtype)
    out = getattr(F, name)(*lib_in, **_kwargs_to(kwargs, dtype))
    ref = getattr(paper, name)(*ref_in, **kwargs)

    assert isinstance(out, torch.Tensor)
    assert out.dtype == dtype
    assert out.shape == ref.shape
    if name not in ("interpolate", "reconstruction_error"):
        assert out.dim() == 0
    assert_close(out, ref.to(dtype), **TOL[dtype])

    w = _weights_like(ref)
    lib_g = torch.autograd.grad((out * w.to(dtype)).sum(), lib_in)
    ref_g = torch.autograd.grad((ref * w).sum(), ref_in)
    for lg, rg in zip(lib_g, ref_g):
        assert lg.dtype == dtype and lg.shape == rg.shape
        assert_close(lg, rg.to(dtype), **TOL[dtype])


@pytest.mark.parametrize("name, kwargs, make", CASES)
def test_gradcheck(name, kwargs, make):
    inputs = tuple(t.detach().requires_grad_(True) for t in make(_gen(1)))
    assert torch.autograd.gradcheck(
        lambda *xs: getattr(F, name)(*xs, **kwargs), inputs, eps=1e-6, atol=1e-7, rtol=1e-5
    )


@pytest.mark.parametrize("name, kwargs, make", CASES)
def test_inputs_unmodified(name, kwargs, make):
    inputs = [t.detach().requires_grad_(True) for t in make(_gen(2))]
    before = [t.detach().clone() for t in inputs]
    kw_before = {k: v.clone() for k, v in kwargs.items() if isinstance(v, torch.Tensor)}
    out = getattr(F, name)(*inputs, **kwargs)
    out.sum().backward()
    for t, b in zip(inputs, before):
        assert torch.equal(t.detach(), b)
    for k, v in kw_before.items():
        assert torch.equal(kwargs[k], v)


@pytest.mark.parametrize("name, kwargs, make", CASES)
def test_no_host_sync(name, kwargs, make):
    inputs = [t.detach().requires_grad_(True) for t in make(_gen(3))]
    with paper.no_host_sync():
        out = getattr(F, name)(*inputs, **kwargs)
        grads = torch.autograd.grad(out.sum(), inputs)
    assert all(g is not None and g.shape == t.shape for g, t in zip(grads, inputs))


# --------------------------------------------------------------------------- specific checks


@pytest.mark.parametrize("dtype, scale", [(F64, 1000.0), (F32, 100.0)], ids=["f64", "f32"])
def test_gan_losses_stable_for_large_logits(dtype, scale):
    """Logits whose exp overflows in their own dtype (exp(1000) in fp64, exp(100) in fp32): the
    losses and their gradients stay finite and equal the oracle's (which works in fp64 with a
    stable softplus)."""
    real = torch.tensor([scale, -scale, 0.0], dtype=dtype, requires_grad=True)
    fake = torch.tensor([-scale, scale, 1.0], dtype=dtype, requires_grad=True)
    naive = torch.log1p(torch.exp(fake.detach()))
    assert not torch.isfinite(naive).all()  # the inputs do saturate: a naive softplus gives inf
    out = F.gan_discriminator_loss(real, fake)
    assert torch.isfinite(out)
    assert_close(out.double(), paper.gan_discriminator_loss(real, fake), **TOL[dtype])
    for g_out in torch.autograd.grad(out, [real, fake]):
        assert torch.isfinite(g_out).all()
    for sat in (False, True):
        out = F.gan_generator_loss(fake, saturating=sat)
        assert torch.isfinite(out)
        assert_close(out.double(), paper.gan_generator_loss(fake, saturating=sat), **TOL[dtype])
        (g,) = torch.autograd.grad(out, fake)
        assert torch.isfinite(g).all()


@pytest.mark.parametrize(
    "shape, zero_rows, center, one_sided",
    [
        ((3, 4), [0], 1.0, False),
        ((4, 2, 3), [1, 3], 1.0, False),
        ((3, 5), [2], 0.5, True),
        ((2, 3), [0, 1], 1.0, False),
        ((1, 1, 2, 2), [0], 1.0, True),
    ],
)
def test_grad_norm_penalty_zero_norm_sample_has_finite_zero_grad(
    shape, zero_rows, center, one_sided
):
    grads = _grads(shape)(_gen(4))[0].clone()
    grads[zero_rows] = 0.0
    grads.requires_grad_(True)
    out = F.grad_norm_penalty(grads, center=center, one_sided=one_sided)
    ref = paper.grad_norm_penalty(grads, center=center, one_sided=one_sided)
    assert_close(out, ref, **TOL[F64])
    (g,) = torch.autograd.grad(out, grads)
    assert torch.isfinite(g).all()
    assert torch.equal(g[zero_rows], torch.zeros_like(g[zero_rows]))
    keep = [b for b in range(shape[0]) if b not in zero_rows]
    if keep:
        (rg,) = torch.autograd.grad(ref, grads)
        assert_close(g[keep], rg[keep], **TOL[F64])


# --------------------------------------------------------------------------- critics


class MLPCritic(nn.Module):
    def __init__(self, in_features, hidden=6, squeeze=False):
        super().__init__()
        self.l1 = nn.Linear(in_features, hidden)
        self.l2 = nn.Linear(hidden, 1)
        self.squeeze = squeeze

    def forward(self, x):
        out = self.l2(torch.tanh(self.l1(x.flatten(1))))
        return out.squeeze(1) if self.squeeze else out


class ConvCritic(nn.Module):
    def __init__(self, channels, height, width):
        super().__init__()
        self.conv = nn.Conv2d(channels, 3, 3, padding=1)
        self.lin = nn.Linear(3 * height * width, 1)

    def forward(self, x):
        return self.lin(torch.nn.functional.softplus(self.conv(x)).flatten(1))


class TanhCritic(nn.Module):
    """x -> (w * tanh(x)).sum over each sample, output (B,)."""

    def __init__(self, sample_shape):
        super().__init__()
        self.w = nn.Parameter(torch.randn(sample_shape) * 0.8)

    def forward(self, x):
        return (self.w * torch.tanh(x)).flatten(1).sum(1)


class CondCritic(nn.Module):
    """Conditional critic: labels (required) and a float scale (optional) as keyword inputs."""

    def __init__(self, in_features, classes=3, hidden=5):
        super().__init__()
        self.l1 = nn.Linear(in_features, hidden)
        self.emb = nn.Embedding(classes, hidden)
        self.l2 = nn.Linear(hidden, 1)

    def forward(self, x, labels, scale=1.0):
        return scale * self.l2(torch.tanh(self.l1(x.flatten(1)) + self.emb(labels)))


def _make_critic(kind, shape, seed=0):
    torch.manual_seed(seed)
    features = 1
    for s in shape[1:]:
        features *= s
    if kind == "mlp":
        critic = MLPCritic(features)
    elif kind == "mlp_squeeze":
        critic = MLPCritic(features, squeeze=True)
    elif kind == "conv":
        critic = ConvCritic(*shape[1:])
    elif kind == "tanh":
        critic = TanhCritic(shape[1:])
    elif kind == "cond":
        critic = CondCritic(features)
    else:  # pragma: no cover
        raise ValueError(kind)
    return critic.to(F64)


CRITICS = [
    ("mlp", (1, 5)),
    ("mlp", (4, 3)),
    ("mlp_squeeze", (3, 2, 3, 3)),
    ("conv", (3, 2, 4, 5)),
    ("conv", (1, 1, 3, 3)),
    ("tanh", (5, 2, 3)),
]
CRITIC_IDS = [f"{k}-{_shape_id(s)}" for k, s in CRITICS]


def _critic_pair(kind, shape, dtype):
    """The same critic twice: one in ``dtype`` for fastgan, one in float64 for the paper."""
    ref_critic = _make_critic(kind, shape)
    lib_critic = copy.deepcopy(ref_critic).to(dtype)
    return lib_critic, ref_critic


def _gp_data(shape, seed=5):
    g = _gen(seed)
    real = torch.randn(shape, generator=g, dtype=F64)
    fake = torch.randn(shape, generator=g, dtype=F64) * 0.7 + 0.3
    alpha = torch.rand(shape[0], generator=g, dtype=F64)
    return real, fake, alpha


def _assert_param_grads_close(lib_out, ref_out, lib_critic, ref_critic, dtype):
    lib_params = list(lib_critic.parameters())
    ref_params = list(ref_critic.parameters())
    # a last-layer bias does not reach the input gradient: unused, its gradient is 0
    lib_g = torch.autograd.grad(lib_out, lib_params, allow_unused=True, materialize_grads=True)
    ref_g = torch.autograd.grad(ref_out, ref_params, allow_unused=True, materialize_grads=True)
    assert any(rg.abs().max() > 1e-6 for rg in ref_g)  # the check is not vacuous
    for lg, rg in zip(lib_g, ref_g):
        assert_close(lg, rg.to(dtype), **TOL[dtype])


GP_OPTS = [
    pytest.param({}, id="default"),
    pytest.param({"gp_weight": 3.0}, id="weight3"),
    pytest.param({"center": 0.5}, id="center0.5"),
    pytest.param({"gp_weight": 1.0, "center": 0.0}, id="center0"),
    pytest.param({"one_sided": True, "center": "mid"}, id="one_sided"),
]


def _resolve_center(opts, ref_critic, real, fake, alpha):
    """'mid': a center between the smallest and largest per-sample gradient norm."""
    opts = dict(opts)
    if opts.get("center") == "mid":
        x_hat = paper.interpolate(real, fake, alpha)
        norms = torch.stack(
            [n.detach() for n in paper.sample_norms(torch.stack(paper.input_gradients(ref_critic, x_hat)))]
        )
        if norms.numel() == 1:
            opts["center"] = float(norms[0]) * 0.6
        else:
            opts["center"] = float(norms.min() + norms.max()) / 2
    return opts


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("opts", GP_OPTS)
@pytest.mark.parametrize("kind, shape", CRITICS, ids=CRITIC_IDS)
def test_gradient_penalty_matches_paper(kind, shape, opts, dtype):
    lib_critic, ref_critic = _critic_pair(kind, shape, dtype)
    real, fake, alpha = _gp_data(shape)
    opts = _resolve_center(opts, ref_critic, real, fake, alpha)

    out = F.gradient_penalty(
        lib_critic, real.to(dtype), fake.to(dtype), alpha=alpha.to(dtype), **opts
    )
    ref = paper.gradient_penalty(ref_critic, real, fake, alpha, **opts)
    assert out.dim() == 0 and out.dtype == dtype
    assert ref.abs() > 1e-6
    assert_close(out, ref.to(dtype), **TOL[dtype])
    _assert_param_grads_close(out, ref, lib_critic, ref_critic, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("gamma", [None, 1.0, 0.1])
@pytest.mark.parametrize("kind, shape", CRITICS, ids=CRITIC_IDS)
def test_r1_penalty_matches_paper(kind, shape, gamma, dtype):
    lib_critic, ref_critic = _critic_pair(kind, shape, dtype)
    inputs = _gp_data(shape, seed=6)[0]
    opts = {} if gamma is None else {"gamma": gamma}
    out = F.r1_penalty(lib_critic, inputs.to(dtype), **opts)
    ref = paper.r1_penalty(ref_critic, inputs, **opts)
    assert out.dim() == 0 and out.dtype == dtype
    assert ref.abs() > 1e-8
    assert_close(out, ref.to(dtype), **TOL[dtype])
    _assert_param_grads_close(out, ref, lib_critic, ref_critic, dtype)


@pytest.mark.parametrize("penalty", ["gp", "r1"])
@pytest.mark.parametrize("batch", [1, 4])
def test_penalty_forwards_critic_kwargs(penalty, batch):
    shape = (batch, 2, 3)
    lib_critic, ref_critic = _critic_pair("cond", shape, F64)
    real, fake, alpha = _gp_data(shape, seed=7)
    labels = torch.arange(batch) % 3
    if penalty == "gp":
        out = F.gradient_penalty(lib_critic, real, fake, alpha=alpha, labels=labels, scale=2.5)
        ref = paper.gradient_penalty(ref_critic, real, fake, alpha, labels=labels, scale=2.5)
        unscaled = paper.gradient_penalty(ref_critic, real, fake, alpha, labels=labels)
    else:
        out = F.r1_penalty(lib_critic, real, gamma=3.0, labels=labels, scale=2.5)
        ref = paper.r1_penalty(ref_critic, real, gamma=3.0, labels=labels, scale=2.5)
        unscaled = paper.r1_penalty(ref_critic, real, gamma=3.0, labels=labels)
    assert (ref - unscaled).abs() > 1e-3  # forwarding `scale` matters for the value
    assert_close(out, ref, **TOL[F64])
    _assert_param_grads_close(out, ref, lib_critic, ref_critic, F64)


@pytest.mark.parametrize("penalty", ["gp", "r1"])
def test_penalty_treats_data_inputs_as_constants(penalty):
    """Documented contract: real/fake (or inputs) are detached; only the critic gets gradients.

    The value and the critic gradients are still the paper's when the data require grad.
    """
    shape = (3, 2, 3)
    lib_critic, ref_critic = _critic_pair("tanh", shape, F64)
    real, fake, alpha = _gp_data(shape, seed=8)
    lib_in = [real.clone().requires_grad_(True), fake.clone().requires_grad_(True)]
    if penalty == "gp":
        out = F.gradient_penalty(lib_critic, *lib_in, alpha=alpha)
        ref = paper.gradient_penalty(ref_critic, real, fake, alpha)
    else:
        lib_in = lib_in[:1]
        out = F.r1_penalty(lib_critic, *lib_in)
        ref = paper.r1_penalty(ref_critic, real)
    assert_close(out, ref, **TOL[F64])
    out.backward()
    for t in lib_in:
        assert t.grad is None
    for lp, rg in zip(lib_critic.parameters(), torch.autograd.grad(ref, list(ref_critic.parameters()))):
        assert_close(lp.grad, rg, **TOL[F64])


@pytest.mark.parametrize("penalty", ["gp", "r1"])
def test_penalty_gradcheck_wrt_critic_weights(penalty):
    shape = (3, 2, 2)
    real, fake, alpha = _gp_data(shape, seed=9)
    w = (torch.randn(shape[1:], generator=_gen(10), dtype=F64) * 0.8).requires_grad_(True)

    def fn(w):
        def critic(x):
            return (w * torch.tanh(x)).flatten(1).sum(1)

        if penalty == "gp":
            return F.gradient_penalty(critic, real, fake, alpha=alpha)
        return F.r1_penalty(critic, real)

    assert torch.autograd.gradcheck(fn, (w,), eps=1e-6, atol=1e-7, rtol=1e-5)


def test_gradient_penalty_zero_gradient_sample_gives_finite_param_grads():
    # critic x -> sum(w * x^2): its input gradient at x_hat = 0 is 0 for every w.
    shape = (3, 4)
    w = torch.tensor([0.5, 1.0, 1.5, 2.0], dtype=F64, requires_grad=True)

    def critic(x):
        return (w * x * x).sum(1)

    real = torch.randn(shape, generator=_gen(11), dtype=F64)
    fake = torch.randn(shape, generator=_gen(12), dtype=F64)
    real[0] = 0.0
    fake[0] = 0.0
    alpha = torch.tensor([0.3, 0.6, 0.9], dtype=F64)
    out = F.gradient_penalty(critic, real, fake, alpha=alpha)
    ref = paper.gradient_penalty(critic, real, fake, alpha)
    assert_close(out, ref, **TOL[F64])
    (g,) = torch.autograd.grad(out, w)
    assert torch.isfinite(g).all()
    # paper gradient without sample 0 (whose contribution is constant (0 - 1)^2 in w)
    ref_rest = paper.gradient_penalty(critic, real[1:], fake[1:], alpha[1:]) * (2.0 / 3.0)
    (rg,) = torch.autograd.grad(ref_rest, w)
    assert_close(g, rg, **TOL[F64])


@pytest.mark.parametrize("penalty", ["gp", "r1"])
def test_penalty_leaves_inputs_and_critic_unmodified(penalty):
    shape = (4, 2, 3, 3)
    critic = _make_critic("conv", shape)
    params_before = [p.detach().clone() for p in critic.parameters()]
    real, fake, alpha = _gp_data(shape, seed=13)
    real.requires_grad_(True)
    fake.requires_grad_(True)
    tensors = [real, fake, alpha]
    before = [t.detach().clone() for t in tensors]
    if penalty == "gp":
        out = F.gradient_penalty(critic, real, fake, alpha=alpha)
    else:
        out = F.r1_penalty(critic, real)
    out.backward()
    for t, b in zip(tensors, before):
        assert torch.equal(t.detach(), b)
    for p, b in zip(critic.parameters(), params_before):
        assert torch.equal(p.detach(), b)
        assert p.grad is None or torch.isfinite(p.grad).all()


def test_penalties_no_host_sync():
    shape = (3, 2, 3, 3)
    critic = _make_critic("conv", shape)
    real, fake, alpha = _gp_data(shape, seed=14)
    labels = torch.tensor([0, 2, 1])
    cond = _make_critic("cond", shape)
    with paper.no_host_sync():
        gp = F.gradient_penalty(critic, real, fake)  # alpha drawn inside
        gp_a = F.gradient_penalty(critic, real, fake, alpha=alpha, one_sided=True)
        r1 = F.r1_penalty(critic, real)
        gp_c = F.gradient_penalty(cond, real, fake, labels=labels)
        total = gp + gp_a + r1 + gp_c
        grads = torch.autograd.grad(
            total, list(critic.parameters()), allow_unused=True, materialize_grads=True
        )
    assert all(torch.isfinite(g).all() for g in grads)


def test_gradient_penalty_random_alpha_is_seeded_and_in_range():
    shape = (6, 3)
    critic = _make_critic("mlp", shape)
    real, fake, _ = _gp_data(shape, seed=15)
    torch.manual_seed(1234)
    first = F.gradient_penalty(critic, real, fake)
    torch.manual_seed(1234)
    second = F.gradient_penalty(critic, real, fake)
    assert_close(first, second, rtol=0, atol=0)
    assert torch.isfinite(first) and first >= 0
    third = F.gradient_penalty(critic, real, fake)  # a fresh draw gives another value
    assert (third - first).abs() > 1e-9
    # in range: every interpolate the critic sees is real_b·ε_b + fake_b·(1 − ε_b) with one
    # ε_b per sample, in [0, 1]
    seen = []

    def recording(x):
        seen.append(x.detach().clone())
        return critic(x)

    for seed in range(20):
        torch.manual_seed(seed)
        F.gradient_penalty(recording, real, fake)
    eps = torch.stack([((x - fake) / (real - fake)) for x in seen])  # (draws, B, features)
    assert_close(eps, eps[..., :1].expand_as(eps), rtol=1e-9, atol=1e-9)  # one ε per sample
    eps = eps[..., 0]
    assert (eps >= 0).all() and (eps <= 1).all()
    assert eps.min() < 0.1 and eps.max() > 0.9  # and they cover the range


# --------------------------------------------------------------------------- clip_weights_


def _clip_module():
    torch.manual_seed(16)
    module = nn.Sequential(nn.Linear(5, 7), nn.Tanh(), nn.Conv1d(1, 2, 3))
    with torch.no_grad():
        for p in module.parameters():
            p.mul_(0.0).add_(torch.randn(p.shape) * 0.03)
    return module


@pytest.mark.parametrize("clip_value", [None, 0.01, 0.025])
@pytest.mark.parametrize("target", ["module", "list", "generator"])
def test_clip_weights_in_place(target, clip_value):
    module = _clip_module()
    params = list(module.parameters())
    c = 0.01 if clip_value is None else clip_value
    before = [p.detach().clone() for p in params]
    ptrs = [p.data_ptr() for p in params]
    inside = [(b.abs() <= c) for b in before]
    assert any(m.any() for m in inside) and any((~m).any() for m in inside)

    arg = {"module": module, "list": params, "generator": module.parameters()}[target]
    kwargs = {} if clip_value is None else {"clip_value": clip_value}
    with paper.no_host_sync():
        F.clip_weights_(arg, **kwargs)

    for p, b, ptr, m in zip(module.parameters(), before, ptrs, inside):
        assert p.data_ptr() == ptr  # the same storage: clamped in place
        assert p.requires_grad and p.grad_fn is None
        assert p.abs().max() <= c
        assert torch.equal(p.detach()[m], b[m])  # unclamped values are untouched
        assert torch.equal(p.detach(), b.clamp(-c, c))


# --------------------------------------------------------------------------- BEGAN update


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "k, gamma, lambda_k",
    [(0.0, None, None), (0.4, None, None), (0.4, 0.7, 0.05), (0.999, 0.9, 0.5), (0.001, 0.1, 0.5)],
)
@pytest.mark.parametrize("batch", [1, 5])
def test_began_update_matches_paper(batch, k, gamma, lambda_k, dtype):
    real_err, fake_err = _energies(batch, 2)(_gen(17))
    kwargs = {}
    if gamma is not None:
        kwargs.update(gamma=gamma, lambda_k=lambda_k)
    k_t = torch.tensor(k, dtype=dtype)
    k_before = k_t.clone()
    k_next, conv = F.began_update(k_t, real_err.to(dtype), fake_err.to(dtype), **kwargs)
    ref_k, ref_m = paper.began_update(k, real_err, fake_err, **kwargs)
    assert torch.equal(k_t, k_before)
    for got, want in ((k_next, ref_k), (conv, ref_m)):
        assert isinstance(got, torch.Tensor) and got.dim() == 0 and got.dtype == dtype
        assert_close(got, want.to(dtype), **TOL[dtype])
    assert 0.0 <= float(k_next) <= 1.0


def test_began_update_k_next_carries_no_graph():
    real_err, fake_err = (t.requires_grad_(True) for t in _energies(4, 2)(_gen(18)))
    k_next, _ = F.began_update(torch.tensor(0.5, dtype=F64), real_err, fake_err)
    # k is training state, not a function to differentiate: it must not chain graphs across steps
    assert not k_next.requires_grad


# ------------------------------------- every family on every backend: random shapes, layouts, values
import math  # noqa: E402

import fastgan  # noqa: E402
import fastgan.functional as FG  # noqa: E402
from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import kernel_cases as kc  # noqa: E402
from properties import BACKEND_PARAMS, LAYOUTS, _assume_representable, _place, _settings, _skip_unusable, max_numel, shapes, values  # noqa: E402


def _critic(w: torch.Tensor):
    def critic(x):
        return torch.tanh(x.reshape(x.shape[0], -1) @ w).sum(1)
    return critic


#: name -> (input kinds, call). Input kinds: "s" scores, "s2" scores of the same non-batch
#: shape (any batch), "img" a per-sample tensor, "w" critic weights, "emb" embeddings.
FAMILIES = {
    "gan_discriminator": (("s", "s2"), lambda r, f, h: FG.gan_discriminator_loss(r, f)),
    "gan_generator": (("s",), lambda f, h: FG.gan_generator_loss(f)),
    "gan_generator_saturating": (("s",), lambda f, h: FG.gan_generator_loss(f, saturating=True)),
    "wgan_critic": (("s", "s2"), lambda r, f, h: FG.wgan_critic_loss(r, f)),
    "wgan_generator": (("s",), lambda f, h: FG.wgan_generator_loss(f)),
    "lsgan_discriminator": (("s", "s2"), lambda r, f, h: FG.lsgan_discriminator_loss(r, f, a=h[0], b=h[1])),
    "lsgan_generator": (("s",), lambda f, h: FG.lsgan_generator_loss(f, c=h[0])),
    "hinge_discriminator": (("s", "s2"), lambda r, f, h: FG.hinge_discriminator_loss(r, f)),
    "hinge_generator": (("s",), lambda f, h: FG.hinge_generator_loss(f)),
    "ebgan_discriminator": (("img", "img", "img", "img"), lambda x, rx, y, ry, h: FG.ebgan_discriminator_loss(
        FG.reconstruction_error(x, rx, p=2), FG.reconstruction_error(y, ry, p=2), margin=abs(h[0]))),
    "ebgan_generator_pt": (("img", "img", "emb"), lambda y, ry, e, h: FG.ebgan_generator_loss(
        FG.reconstruction_error(y, ry, p=2), e, pt_weight=abs(h[1]))),
    "began_discriminator": (("img", "img", "img", "img"), lambda x, rx, y, ry, h: FG.began_discriminator_loss(
        FG.reconstruction_error(x, rx, p=1), FG.reconstruction_error(y, ry, p=1), k=min(abs(h[0]), 1.0))),
    "began_generator": (("img", "img"), lambda y, ry, h: FG.began_generator_loss(FG.reconstruction_error(y, ry, p=1))),
    "wgan_gp": (("img", "img", "w"), lambda r, f, w, h: FG.gradient_penalty(
        _critic(w), r, f, alpha=torch.linspace(0, 1, r.shape[0], dtype=r.dtype, device=r.device), center=abs(h[0]))),
    "r1": (("img", "w"), lambda x, w, h: FG.r1_penalty(_critic(w), x, gamma=abs(h[1]))),
}


@pytest.mark.parametrize("backend", BACKEND_PARAMS)
def test_families_property(backend):
    """Every family of ``fastgan.functional`` on ``backend`` in the dtype under test against the
    reference backend in float64 on the same rounded values (the ``family`` row of ``fastgan.testing.TOLERANCES``)."""
    _skip_unusable(backend)
    device = kc.DEVICE[backend]
    cap = max_numel(backend) // 4

    @_settings(backend)
    @given(
        name=st.sampled_from(sorted(FAMILIES)), shape=shapes(cap, min_batch=2, max_dims=3), batch2=st.integers(1, 300),
        dtype=st.sampled_from(kc.DTYPES), layout=st.sampled_from(LAYOUTS), seed=st.integers(0, 2**31 - 1),
        hp=st.tuples(st.floats(-2, 2, allow_nan=False), st.floats(-2, 2, allow_nan=False)).map(lambda t: (round(t[0], 3), round(t[1], 3))),
        regime=st.sampled_from(("normal", "large", "zero_rows", "denormal")),
    )
    def run(name, shape, batch2, dtype, layout, seed, hp, regime):
        _assume_representable(backend, dtype, regime)
        kinds, fn = FAMILIES[name]
        g = kc.generator("family", name, shape, seed)
        per = math.prod(shape[1:])
        inputs64, inputs = [], []
        for k in kinds:
            if k == "s2":
                s = (max(1, min(batch2, cap // per)),) + shape[1:]
            elif k == "w":
                s = (per, 4)
            elif k == "emb":
                s = (shape[0], 3)
            else:
                s = shape
            reg = regime if k in ("s", "s2", "img") else "normal"
            v64 = values(s, dtype, reg, g) * (0.3 if k == "w" else 1.0)
            t, r64 = _place(v64, dtype, layout if k in ("s", "s2", "img") else "contig", device, g)
            inputs.append(t)
            inputs64.append(r64)
        wants = [k != "img" or not name.startswith(("wgan_gp", "r1")) for k in kinds]
        leaves = [t.detach().requires_grad_(w) for t, w in zip(inputs, wants)]
        leaves64 = [t.detach().requires_grad_(w) for t, w in zip(inputs64, wants)]
        with fastgan.use_backend(backend):
            out = fn(*leaves, hp)
            diff = [t for t, w in zip(leaves, wants) if w]
            grads = torch.autograd.grad(out, diff, allow_unused=True, materialize_grads=True)
        with fastgan.use_backend("reference"):
            out64 = fn(*leaves64, hp)
            diff64 = [t for t, w in zip(leaves64, wants) if w]
            grads64 = torch.autograd.grad(out64, diff64, allow_unused=True, materialize_grads=True)
        scale = max(t.detach().abs().mean().item() for t in inputs64) if name.startswith(("wgan", "hinge_generator", "ebgan_disc", "began_disc")) else 0.0
        label = f"{backend} {name} shape={shape} {kc.DTYPE_IDS[dtype]} {layout} {regime} hp={hp}"
        assert_family_close(out, out64, dtype, f"{label} forward", tolerance="family", scale=scale)
        for i, (a, e) in enumerate(zip(grads, grads64)):
            assert_family_close(a, e, dtype, f"{label} gradient {i}", tolerance="family")

    run()
