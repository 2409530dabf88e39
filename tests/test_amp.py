"""Mixed precision: every family under ``torch.autocast`` against fp32, and the gradient penalty
with a ``GradScaler`` through :func:`fastgan.amp.gradient_penalty`.

Each family's discriminator and generator steps run twice from the same weights and data: in
fp32, and as a mixed-precision training loop writes them — the models (D, and G producing the
fake batch) inside ``torch.autocast`` — on every backend that runs on the device. The losses
and the gradients of every parameter of D and G must agree with fp32:

    |amp − fp32| <= TOL · scale

with scale = max(|loss|, 1) for a loss and, for a parameter's gradient, the largest gradient entry
over all parameters of that model (a bias gradient that sums terms of both signs to nearly 0 is
judged on the scale of the gradient step the optimizer takes).

* CPU, bfloat16: TOL = 4e-2. bf16 keeps 8 significant bits (unit roundoff u = 2**-9 ≈ 2e-3);
  autocast rounds the inputs and weights of each Linear layer to bf16 and returns bf16
  activations, so a value is rounded about 4–6 times on its way through D (and G), and gradients
  (for WGAN-GP through a double backward) roughly twice that: up to ~20 u ≈ 4e-2 of the tensor's
  scale. fastgan's own operators accumulate in fp32 and add one rounding of their output. A
  wrong formula, a missing unscale or a loss computed in the wrong precision is off by far more
  (see ``test_tolerance_catches_a_wrong_loss``).
* CUDA, float16: TOL = 1e-2 (u = 2**-11, the same count of roundings); CUDA bfloat16: 4e-2.
  These run only where CUDA is present.

The gradient penalty with loss scaling follows PyTorch's AMP recipe (scaled ``autograd.grad``,
unscale, penalty under autocast): its result must not depend on the scale — scaling by a power of
two is exact, so it must be bitwise the same for scales 1, 2**16 and 2**40 — and must be finite
wherever the fp32 penalty is.
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

import fastgan
import fastgan.functional as FG
from fastgan import amp, losses

import kernel_cases as kc
from fastgan.testing import TOLERANCES, Tolerance, compare

B, DIM, Z = 6, 5, 3
SCORE_FAMILIES = ["gan", "cgan", "wgan", "wgan-gp", "lsgan", "hinge"]
AE_FAMILIES = ["ebgan", "began"]
FAMILIES = SCORE_FAMILIES + AE_FAMILIES

#: (device, autocast dtype, TOL) — the CUDA rows run only with CUDA (module docstring); TOL is the
#: ``autocast`` row of fastgan.testing's one tolerance table.
AMP_CONFIGS = [
    pytest.param("cpu", torch.bfloat16, TOLERANCES["autocast"][torch.bfloat16], id="cpu-bf16"),
    pytest.param("cuda", torch.float16, TOLERANCES["autocast"][torch.float16], id="cuda-fp16", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")),
    pytest.param("cuda", torch.bfloat16, TOLERANCES["autocast"][torch.bfloat16], id="cuda-bf16", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")),
]


BACKEND_PARAMS = [pytest.param(b, id=b) for b in kc.BACKENDS]


class Critic(nn.Module):
    def __init__(self, conditional: bool = False):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(DIM, 16), nn.Tanh(), nn.Linear(16, 1))
        self.embed = nn.Embedding(3, DIM) if conditional else None

    def forward(self, x, labels=None):
        if labels is not None:
            x = x + self.embed(labels)
        return self.net(x)


class AutoEncoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.enc = nn.Sequential(nn.Linear(DIM, 4), nn.Tanh())
        self.dec = nn.Linear(4, DIM)

    def forward(self, x, labels=None):
        h = self.enc(x)
        return self.dec(h), h


def _setup(name: str, device: str):
    torch.manual_seed(0)
    G = nn.Sequential(nn.Linear(Z, 16), nn.Tanh(), nn.Linear(16, DIM)).to(device)
    D = (AutoEncoder() if name in AE_FAMILIES else Critic(conditional=name == "cgan")).to(device)
    g = torch.Generator().manual_seed(1)
    real = torch.randn(B, DIM, generator=g).to(device)
    z = torch.randn(B, Z, generator=g).to(device)
    labels = torch.randint(0, 3, (B,), generator=g).to(device) if name == "cgan" else None
    return G, D, real, z, labels


def _step(name: str, G, D, real, z, labels, autocast_dtype, device):
    """The discriminator and generator losses and the gradients of D's and G's parameters, as a
    mixed-precision loop computes them (models and losses under autocast when ``autocast_dtype``
    is given; backward outside, as PyTorch recommends)."""
    loss = losses.create(name).to(device)
    torch.manual_seed(2)  # WGAN-GP's alpha: the same draw in both runs
    enabled = autocast_dtype is not None
    with torch.autocast(device, dtype=autocast_dtype or torch.bfloat16, enabled=enabled):
        with torch.no_grad():
            fake = G(z)
        d_loss, _ = loss.discriminator_loss(D, real, fake, labels)
    d_grads = torch.autograd.grad(d_loss, [p for p in D.parameters()], allow_unused=True)
    with torch.autocast(device, dtype=autocast_dtype or torch.bfloat16, enabled=enabled):
        g_loss, _ = loss.generator_loss(D, G(z), labels)
    g_grads = torch.autograd.grad(g_loss, list(G.parameters()), allow_unused=True)
    return d_loss.detach(), g_loss.detach(), d_grads, g_grads


def _assert_close_scaled(got: torch.Tensor, ref: torch.Tensor, tol, what: str, floor: float = 0.0) -> None:
    """``|got − ref| <= tol · max(max|ref|, floor)`` (``tol``: a row of the ``autocast``
    tolerances, or its number), NaN and infinities where fp32 has them:
    :func:`fastgan.testing.compare`."""
    tol = tol if isinstance(tol, Tolerance) else Tolerance(0.0, float(tol))
    got, ref = got.detach().double().cpu(), ref.detach().double().cpu()
    assert torch.isfinite(got).all() or not torch.isfinite(ref).all(), f"{what}: non-finite where fp32 is finite"
    verdict = compare(got, ref, torch.float64, tolerance=tol, scale=floor)
    assert verdict.ok, f"{what}: |amp - fp32| beyond {tol.atol_scaled:g} x scale: {verdict.message}"


@pytest.mark.parametrize("device,dtype,tol", AMP_CONFIGS)
@pytest.mark.parametrize("name", FAMILIES)
@pytest.mark.parametrize("backend", BACKEND_PARAMS)
def test_family_under_autocast_matches_fp32(backend, name, device, dtype, tol):
    if kc.DEVICE[backend] != device and backend != "reference":
        pytest.skip(f"the {backend} backend does not run on {device} tensors")
    G, D, real, z, labels = _setup(name, device)
    with fastgan.use_backend(backend):
        ref = _step(name, copy.deepcopy(G), copy.deepcopy(D), real, z, labels, None, device)
        got = _step(name, copy.deepcopy(G), copy.deepcopy(D), real, z, labels, dtype, device)
    _assert_close_scaled(got[0], ref[0], tol, f"{name} discriminator loss", floor=1.0)
    _assert_close_scaled(got[1], ref[1], tol, f"{name} generator loss", floor=1.0)
    for which, grads, grads_ref, model in (("D", got[2], ref[2], D), ("G", got[3], ref[3], G)):
        # the scale of a model's gradients: its largest entry (a bias gradient that sums terms
        # of both signs to nearly 0 is judged against the gradient the optimizer sees)
        scale = max(r.abs().max().item() for r in grads_ref if r is not None)
        for (pname, _), g, r in zip(model.named_parameters(), grads, grads_ref):
            assert (g is None) == (r is None), f"{name} d/d{which}.{pname}: used in one run only"
            if r is not None:
                assert g.dtype == r.dtype  # parameter gradients stay in the parameters' dtype
                _assert_close_scaled(g, r, tol, f"{name} d/d{which}.{pname}", floor=scale)


def test_tolerance_catches_a_wrong_loss():
    """The AMP tolerance is tight enough to see a real defect: the LSGAN loss with its target
    off by 5 % (a small formula error) fails it."""
    G, D, real, z, _ = _setup("lsgan", "cpu")
    ref = _step("lsgan", copy.deepcopy(G), copy.deepcopy(D), real, z, None, None, "cpu")
    loss = losses.create("lsgan", b=1.05)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        d_loss, _ = loss.discriminator_loss(copy.deepcopy(D), real, G(z).detach())
    with pytest.raises(AssertionError):
        _assert_close_scaled(d_loss, ref[0], TOLERANCES["autocast"][torch.bfloat16], "wrong lsgan loss", floor=1.0)


@pytest.mark.parametrize("backend", BACKEND_PARAMS)
def test_functional_losses_under_autocast_take_low_precision_scores(backend):
    """Scores produced under autocast are bf16: every score loss accepts them and accumulates in
    fp32 (the result equals the loss of the same bf16 values upcast to fp32, rounded once)."""
    device = kc.DEVICE[backend]
    g = torch.Generator().manual_seed(3)
    real = (torch.randn(9, 1, generator=g) * 3).to(device)
    fake = (torch.randn(9, 1, generator=g) * 3).to(device)
    lin = nn.Linear(1, 1).to(device)
    with fastgan.use_backend(backend), torch.autocast(device, dtype=torch.bfloat16):
        r, f = lin(real), lin(fake)
        assert r.dtype == torch.bfloat16
        outs = {
            "gan_d": FG.gan_discriminator_loss(r, f), "gan_g": FG.gan_generator_loss(f),
            "wgan_c": FG.wgan_critic_loss(r, f), "lsgan_d": FG.lsgan_discriminator_loss(r, f),
            "hinge_d": FG.hinge_discriminator_loss(r, f),
        }
    with fastgan.use_backend("reference"):
        r32, f32 = r.detach().float(), f.detach().float()
        exp = {
            "gan_d": FG.gan_discriminator_loss(r32, f32), "gan_g": FG.gan_generator_loss(f32),
            "wgan_c": FG.wgan_critic_loss(r32, f32), "lsgan_d": FG.lsgan_discriminator_loss(r32, f32),
            "hinge_d": FG.hinge_discriminator_loss(r32, f32),
        }
    for k, out in outs.items():
        assert out.dtype == torch.bfloat16, k
        # one rounding to bf16 of the fp32 result (plus fp32 accumulation): within one bf16 ulp
        assert abs(out.float().item() - exp[k].item()) <= torch.finfo(torch.bfloat16).eps * max(abs(exp[k].item()), 1e-3), k


# ------------------------------------------------------------------- the GradScaler helper
FEAT = 3 * 4 * 4


def _critic_model(device="cpu"):
    torch.manual_seed(4)
    return nn.Sequential(nn.Flatten(), nn.Linear(FEAT, 16), nn.Tanh(), nn.Linear(16, 1)).to(device)


def _images(device="cpu"):
    g = torch.Generator().manual_seed(5)
    real = torch.randn(5, 3, 4, 4, generator=g).to(device)
    fake = torch.randn(5, 3, 4, 4, generator=g).to(device)
    alpha = torch.rand(5, generator=g).to(device)
    return real, fake, alpha


def _penalty_and_grads(D, fn):
    params = [p for p in D.parameters()]
    p = fn()
    grads = torch.autograd.grad(p, params, allow_unused=True)
    return p.detach(), [torch.zeros_like(q) if g is None else g for q, g in zip(params, grads)]


@pytest.mark.parametrize("backend", BACKEND_PARAMS)
def test_amp_penalty_without_scaler_is_the_functional_penalty(backend):
    device = kc.DEVICE[backend]
    D = _critic_model(device)
    real, fake, alpha = _images(device)
    with fastgan.use_backend(backend):
        p0, g0 = _penalty_and_grads(D, lambda: FG.gradient_penalty(D, real, fake, alpha=alpha, gp_weight=3.0, center=0.5))
        for scaler in (None, torch.amp.GradScaler(device, enabled=False)):
            p1, g1 = _penalty_and_grads(D, lambda: amp.gradient_penalty(D, real, fake, scaler, alpha=alpha, gp_weight=3.0, center=0.5))
            assert torch.equal(p0, p1)
            assert all(torch.equal(a, b) for a, b in zip(g0, g1))


@pytest.mark.parametrize("one_sided", [False, True], ids=["two_sided", "one_sided"])
@pytest.mark.parametrize("backend", BACKEND_PARAMS)
def test_amp_penalty_is_unscaled_fp32(backend, one_sided):
    """In fp32, the penalty from scaled gradients equals the unscaled one bitwise: scaling by a
    power of two is exact, so any difference means the scale leaked into the penalty."""
    device = kc.DEVICE[backend]
    D = _critic_model(device)
    real, fake, alpha = _images(device)
    with fastgan.use_backend(backend):
        p0, g0 = _penalty_and_grads(D, lambda: FG.gradient_penalty(D, real, fake, alpha=alpha, one_sided=one_sided, center=0.2))
        for scale in (2.0**16, 2.0**40):
            scaler = torch.amp.GradScaler(device, init_scale=scale)
            p1, g1 = _penalty_and_grads(D, lambda: amp.gradient_penalty(D, real, fake, scaler, alpha=alpha, one_sided=one_sided, center=0.2))
            assert torch.equal(p0, p1), (scale, p0, p1)
            assert all(torch.equal(a, b) for a, b in zip(g0, g1))


@pytest.mark.parametrize("device,dtype,tol", AMP_CONFIGS)
@pytest.mark.parametrize("backend", BACKEND_PARAMS)
def test_amp_penalty_under_autocast(backend, device, dtype, tol):
    """Under autocast with a GradScaler: within TOL of fp32, finite, independent of the scale
    (bitwise), and the fake batch may come from a generator run under autocast (low precision)."""
    if kc.DEVICE[backend] != device and backend != "reference":
        pytest.skip(f"the {backend} backend does not run on {device} tensors")
    D = _critic_model(device)
    real, fake, alpha = _images(device)
    with fastgan.use_backend(backend):
        p32, g32 = _penalty_and_grads(D, lambda: FG.gradient_penalty(D, real, fake, alpha=alpha))
        results = []
        for scale in (1.0, 2.0**16, 2.0**40):
            scaler = torch.amp.GradScaler(device, init_scale=scale)

            def penalty():
                with torch.autocast(device, dtype=dtype):
                    return amp.gradient_penalty(D, real, fake.to(dtype), scaler, alpha=alpha)

            results.append(_penalty_and_grads(D, penalty))
    for p, g in results:
        assert torch.isfinite(p) and all(torch.isfinite(x).all() for x in g)
        _assert_close_scaled(p, p32, tol, "penalty")
        for x, r in zip(g, g32):
            _assert_close_scaled(x, r, tol, "d penalty / d critic parameter")
    p0, g0 = results[0]
    for p, g in results[1:]:
        assert torch.equal(p, p0) and all(torch.equal(a, b) for a, b in zip(g, g0)), "the penalty depends on the scale"


def test_amp_training_step_follows_the_recipe():
    """A whole WGAN-GP critic step with ``GradScaler`` under bf16 autocast: the step is taken,
    the parameters move like in fp32 (within TOL of the fp32 update), and no host sync happens
    while the loss is built."""
    from paper import no_host_sync

    D32, Damp = _critic_model(), _critic_model()
    real, fake, alpha = _images()
    opt32 = torch.optim.SGD(D32.parameters(), lr=0.1)
    opt = torch.optim.SGD(Damp.parameters(), lr=0.1)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**12)

    loss32 = FG.wgan_critic_loss(D32(real), D32(fake)) + FG.gradient_penalty(D32, real, fake, alpha=alpha)
    loss32.backward()
    opt32.step()
    with no_host_sync():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = FG.wgan_critic_loss(Damp(real), Damp(fake)) + amp.gradient_penalty(Damp, real, fake, scaler, alpha=alpha)
        scaler.scale(loss).backward()
    scaler.step(opt)
    scaler.update()
    assert scaler.get_scale() == 2.0**12  # no inf/NaN was found: the step was taken
    before = _critic_model()
    for (n, p32), pamp, p0 in zip(D32.named_parameters(), Damp.parameters(), before.parameters()):
        assert torch.isfinite(pamp).all()
        _assert_close_scaled(pamp - p0, p32 - p0, TOLERANCES["autocast"][torch.bfloat16], f"update of {n}")


def test_amp_overflow_skips_the_step():
    """A scale so large that the scaled gradient overflows: the penalty is inf/NaN, GradScaler
    finds it, skips the step and lowers the scale — the parameters are untouched."""
    D = _critic_model()
    real, fake, alpha = _images()
    opt = torch.optim.SGD(D.parameters(), lr=0.1)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**127)
    before = [p.detach().clone() for p in D.parameters()]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = amp.gradient_penalty(lambda x: 1e4 * D(x), real, fake, scaler, alpha=alpha)
    assert not torch.isfinite(loss)
    scaler.scale(loss).backward()
    scaler.step(opt)
    scaler.update()
    assert scaler.get_scale() < 2.0**127
    assert all(torch.equal(p, b) for p, b in zip(D.parameters(), before))


def test_amp_penalty_checks_its_arguments():
    D = _critic_model()
    real, fake, alpha = _images()
    scaler = torch.amp.GradScaler("cpu")
    with pytest.raises(TypeError, match="scaler"):
        amp.gradient_penalty(D, real, fake, scaler="yes")
    with pytest.raises(ValueError, match="alpha"):
        amp.gradient_penalty(D, real, fake, scaler, alpha=alpha[:2])
    with pytest.raises(ValueError, match="fake"):
        amp.gradient_penalty(D, real, fake[:, :2], scaler)
    with pytest.raises(TypeError, match="critic"):
        amp.gradient_penalty("D", real, fake, scaler)
    with pytest.raises(ValueError, match="weight"):
        amp.gradient_penalty(D, real, fake, scaler, gp_weight=-1.0)
