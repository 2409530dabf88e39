"""The known-wrong versions of docs/design.md §1, one test each.

Each test builds inputs where the wrong version measurably differs from the paper, then checks
that fastgan matches the paper (tests/paper.py) and that the wrong version does not, so the test
fails if fastgan implemented the wrong version.
"""

from __future__ import annotations

import pytest
import torch
from torch.testing import assert_close

import fastgan.functional as F

import paper

F64 = torch.float64
TOL = dict(rtol=1e-10, atol=1e-12)
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def _differs(wrong, right, min_gap=1e-3):
    wrong = torch.as_tensor(wrong, dtype=F64).detach()
    right = torch.as_tensor(right, dtype=F64).detach()
    return bool((wrong - right).abs() > min_gap * max(1.0, float(right.abs())))


# --------------------------------------------------------------------------- GP norm


def _spread_grads(shape, seed=0):
    """Per-sample gradients with very different norms (0.3 .. 2.5)."""
    g = torch.randn(shape, generator=_gen(seed), dtype=F64)
    norms = g.reshape(shape[0], -1).norm(dim=1)
    target = torch.linspace(0.3, 2.5, shape[0], dtype=F64)
    return g * (target / norms).reshape(shape[0], *([1] * (len(shape) - 1)))


def _wrong_whole_batch(g, center=1.0):
    return (g.norm() - center) ** 2


def _wrong_dim1(g, center=1.0):  # g.norm(2, dim=1) without flattening the sample first
    return ((g.norm(dim=1) - center) ** 2).mean()


def _wrong_last_dim(g, center=1.0):
    return ((g.norm(dim=-1) - center) ** 2).mean()


WRONG_NORMS = [
    pytest.param(_wrong_whole_batch, id="whole_batch"),
    pytest.param(_wrong_dim1, id="one_axis_dim1"),
    pytest.param(_wrong_last_dim, id="one_axis_last"),
]


@pytest.mark.parametrize("shape", [(4, 3, 5, 5), (5, 2, 7), (3, 6, 2)], ids=str)
@pytest.mark.parametrize("wrong", WRONG_NORMS)
def test_grad_norm_penalty_norm_per_sample(wrong, shape):
    grads = _spread_grads(shape)
    out = F.grad_norm_penalty(grads)
    right = paper.grad_norm_penalty(grads)
    assert_close(out, right, **TOL)
    assert _differs(wrong(grads), right)


@pytest.mark.parametrize("shape", [(4, 3, 5, 5), (5, 2, 7)], ids=str)
@pytest.mark.parametrize("wrong", WRONG_NORMS)
def test_gradient_penalty_norm_per_sample(wrong, shape):
    # critic D(x)_b = 0.5 * sum_i x_{b,i}^2, so grad_x_hat D = x_hat exactly
    def critic(x):
        return 0.5 * (x * x).flatten(1).sum(1)

    real = _spread_grads(shape, seed=1)
    fake = _spread_grads(shape, seed=2) * 0.2
    alpha = torch.linspace(0.1, 0.95, shape[0], dtype=F64)
    out = F.gradient_penalty(critic, real, fake, alpha=alpha)
    right = paper.gradient_penalty(critic, real, fake, alpha)
    x_hat = fake + alpha.reshape(-1, *([1] * (len(shape) - 1))) * (real - fake)
    assert_close(out, right, **TOL)
    assert _differs(10.0 * wrong(x_hat), right)


# --------------------------------------------------------------------------- per-sample epsilon


class _CapturingCritic:
    """D(x)_b = 0.5 * c * sum_i x_{b,i}^2 (grad = c * x); records every input it sees."""

    def __init__(self, c=1.3):
        self.c = c
        self.seen = []

    def __call__(self, x):
        self.seen.append(x.detach().clone())
        return 0.5 * self.c * (x * x).flatten(1).sum(1)


@pytest.mark.parametrize("shape", [(16, 6), (16, 2, 3), (12, 3, 2, 2)], ids=str)
@pytest.mark.parametrize("seed", [0, 1])
def test_gradient_penalty_one_epsilon_per_sample(shape, seed):
    critic = _CapturingCritic()
    real = torch.ones(shape, dtype=F64)
    fake = torch.zeros(shape, dtype=F64)
    torch.manual_seed(seed)
    out = F.gradient_penalty(critic, real, fake)  # alpha drawn inside

    assert len(critic.seen) == 1
    x_hat = critic.seen[0]
    assert x_hat.shape == shape and x_hat.dtype == F64 and x_hat.device == real.device
    flat = x_hat.reshape(shape[0], -1)
    eps = flat[:, 0]  # x_hat_b = 0 + eps_b * (1 - 0) = eps_b
    assert torch.equal(flat, eps[:, None].expand_as(flat))  # constant within a sample
    assert ((eps >= 0) & (eps <= 1)).all()
    assert eps.std() > 0.05  # varies across samples: not one scalar for the batch
    assert eps.unique().numel() == shape[0]

    d = flat.shape[1]
    formula = 10.0 * ((critic.c * eps * d**0.5 - 1.0) ** 2).mean()
    assert_close(out, formula, **TOL)
    assert_close(out, paper.gradient_penalty(critic, real, fake, eps), **TOL)
    scalar_eps = 10.0 * ((critic.c * eps[0] * d**0.5 - 1.0) ** 2)  # the wrong version
    assert _differs(scalar_eps, formula)


@pytest.mark.parametrize("device", DEVICES)
def test_gradient_penalty_epsilon_drawn_on_inputs_device(device):
    critic = _CapturingCritic()
    real = torch.ones(8, 3, dtype=torch.float32, device=device)
    fake = torch.zeros(8, 3, dtype=torch.float32, device=device)
    out = F.gradient_penalty(critic, real, fake)
    assert out.device == real.device and out.dtype == torch.float32
    assert critic.seen[0].device == real.device


# --------------------------------------------------------------------------- pulling-away term


def _embeddings(n=6, dim=5, seed=3):
    """Rows with very different norms and a shared direction (so cosines are not tiny)."""
    g = _gen(seed)
    s = torch.randn(n, dim, generator=g, dtype=F64) + 1.5
    scales = torch.logspace(-1, 1, n, dtype=F64)
    return s * scales[:, None]


def _cos_matrix_rows(s):
    s = s.flatten(1)
    s = s / s.norm(dim=1, keepdim=True)
    return s @ s.T


def _pt_wrong_columns(s):  # normalised over the batch axis
    s = s.flatten(1)
    s = s / s.norm(dim=0, keepdim=True)
    c = s @ s.T
    n = s.shape[0]
    off = ~torch.eye(n, dtype=torch.bool)
    return (c[off] ** 2).sum() / (n * (n - 1))


def _pt_wrong_with_diagonal(s):
    n = s.shape[0]
    return (_cos_matrix_rows(s) ** 2).sum() / (n * (n - 1))


def _pt_wrong_with_diagonal_n2(s):
    n = s.shape[0]
    return (_cos_matrix_rows(s) ** 2).sum() / (n * n)


def _pt_wrong_no_square(s):
    n = s.shape[0]
    c = _cos_matrix_rows(s)
    off = ~torch.eye(n, dtype=torch.bool)
    return c[off].sum() / (n * (n - 1))


WRONG_PT = [
    pytest.param(_pt_wrong_columns, id="normalised_over_batch"),
    pytest.param(_pt_wrong_with_diagonal, id="includes_i_eq_j"),
    pytest.param(_pt_wrong_with_diagonal_n2, id="includes_i_eq_j_over_n2"),
    pytest.param(_pt_wrong_no_square, id="missing_square"),
]


@pytest.mark.parametrize("shape", [(6, 5), (3, 4), (5, 2, 3)], ids=str)
@pytest.mark.parametrize("wrong", WRONG_PT)
def test_pulling_away_term(wrong, shape):
    features = 1
    for d in shape[1:]:
        features *= d
    s = _embeddings(shape[0], features, seed=4).reshape(shape)
    s.requires_grad_(True)
    out = F.pulling_away_term(s)
    right = paper.pulling_away_term(s)
    assert_close(out, right, **TOL)
    (g,) = torch.autograd.grad(out, s)
    (rg,) = torch.autograd.grad(right, s)
    assert_close(g, rg, **TOL)
    assert _differs(wrong(s.detach()), right.detach())


@pytest.mark.parametrize("wrong", WRONG_PT)
def test_ebgan_generator_loss_uses_paper_pt(wrong):
    s = _embeddings(5, 4, seed=5)
    energy = torch.rand(5, generator=_gen(6), dtype=F64)
    out = F.ebgan_generator_loss(energy, s, pt_weight=1.0)
    right = paper.ebgan_generator_loss(energy, s, pt_weight=1.0)
    assert_close(out, right, **TOL)
    assert _differs(energy.mean() + wrong(s), right)


# --------------------------------------------------------------------------- BEGAN with L1, not MSE


def _autoencoder_pair(shape, seed):
    """Inputs and reconstructions with errors both below and above 1 (L1 != MSE)."""
    g = _gen(seed)
    x = torch.randn(shape, generator=g, dtype=F64)
    noise = torch.randn(shape, generator=g, dtype=F64) * 1.5
    return x, x + noise


@pytest.mark.parametrize("shape", [(4, 3, 5, 5), (1, 7), (5, 2, 3)], ids=str)
def test_reconstruction_error_default_is_l1(shape):
    x, r = _autoencoder_pair(shape, 7)
    with pytest.warns(DeprecationWarning, match="pass p=1"):  # the deprecated default: p = 1
        out = F.reconstruction_error(x, r)
    assert out.shape == (shape[0],)
    assert_close(out, paper.reconstruction_error(x, r, p=1), **TOL)
    assert _differs(paper.reconstruction_error(x, r, p=2).sum(), out.sum())


@pytest.mark.parametrize("k", [0.0, 0.4, 1.0])
def test_began_losses_use_l1_not_mse(k):
    shape = (4, 3, 4, 4)
    x_real, r_real = _autoencoder_pair(shape, 8)
    x_fake, r_fake = _autoencoder_pair(shape, 9)
    r_real.requires_grad_(True)
    r_fake.requires_grad_(True)
    k_t = torch.tensor(k, dtype=F64)

    real_err = F.reconstruction_error(x_real, r_real, p=1)
    fake_err = F.reconstruction_error(x_fake, r_fake, p=1)
    d_loss = F.began_discriminator_loss(real_err, fake_err, k_t)
    g_loss = F.began_generator_loss(fake_err)
    k_next, conv = F.began_update(k_t, real_err, fake_err, lambda_k=0.1)

    p_real = paper.reconstruction_error(x_real, r_real, p=1)
    p_fake = paper.reconstruction_error(x_fake, r_fake, p=1)
    right_d = paper.began_discriminator_loss(p_real, p_fake, k)
    right_g = paper.began_generator_loss(p_fake)
    right_k, right_conv = paper.began_update(k, p_real, p_fake, lambda_k=0.1)
    assert_close(d_loss, right_d, **TOL)
    assert_close(g_loss, right_g, **TOL)
    assert_close(k_next, right_k, **TOL)
    assert_close(conv, right_conv, **TOL)
    lib_g = torch.autograd.grad(d_loss + g_loss, [r_real, r_fake])
    ref_g = torch.autograd.grad(right_d + right_g, [r_real, r_fake])
    for a, b in zip(lib_g, ref_g):
        assert_close(a, b, **TOL)

    m_real = paper.reconstruction_error(x_real, r_real, p=2)
    m_fake = paper.reconstruction_error(x_fake, r_fake, p=2)
    assert _differs(paper.began_discriminator_loss(m_real, m_fake, k), right_d)
    assert _differs(paper.began_generator_loss(m_fake), right_g)
    assert _differs(paper.began_update(k, m_real, m_fake, lambda_k=0.1)[1], right_conv)


# --------------------------------------------------------------------------- k_t on device, no sync


@pytest.mark.parametrize("device", DEVICES)
def test_no_host_sync_guard_catches_syncs(device):
    t = torch.tensor([0.5, 2.0], device=device)
    syncs = [lambda: t[0].item(), lambda: float(t[0]), lambda: bool(t[0] > 0)]
    if device != "cpu":
        syncs += [lambda: t.cpu(), lambda: t.tolist()]
    for sync in syncs:
        with pytest.raises(paper.HostSyncError):
            with paper.no_host_sync():
                sync()
    with paper.no_host_sync():  # ordinary tensor math passes
        assert (torch.clamp(t * 2.0 + 1.0, 0.0, 1.0)).shape == (2,)


def _began_update_from_python_floats(k, real_error, fake_error, gamma=0.5, lambda_k=0.001):
    """The wrong version: k_t as a Python float, read back with .item()."""
    balance = (gamma * real_error.mean() - fake_error.mean()).item()
    return min(max(float(k) + lambda_k * balance, 0.0), 1.0), real_error.mean().item() + abs(balance)


def test_python_float_k_update_is_caught():
    real_err, fake_err = torch.rand(4, dtype=F64), torch.rand(4, dtype=F64)
    with pytest.raises(paper.HostSyncError):
        with paper.no_host_sync():
            _began_update_from_python_floats(torch.tensor(0.1, dtype=F64), real_err, fake_err)


def _error_sequence(kind, steps=12, batch=5, seed=10):
    g = _gen(seed)
    seq = []
    for t in range(steps):
        real = torch.rand(batch, generator=g, dtype=F64) + 0.5
        fake = torch.rand(batch, generator=g, dtype=F64) + 0.5
        if kind == "to_zero":
            fake = fake * 4.0  # gamma * mean real - mean fake < 0
        elif kind == "to_one_and_back":
            if t < steps // 2:
                real = real * 6.0  # pushes k to 1 ...
            else:
                fake = fake * 10.0  # ... then back down
        seq.append((real, fake))
    return seq


@pytest.mark.parametrize("dtype", [F64, torch.float32])
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize(
    "kind, k0, gamma, lambda_k",
    [
        ("plain", 0.0, 0.5, 0.001),
        ("plain", 0.3, 0.7, 0.05),
        ("to_zero", 0.05, 0.5, 0.01),
        ("to_one_and_back", 0.6, 0.5, 0.3),
    ],
)
def test_began_k_over_steps_on_device_without_sync(kind, k0, gamma, lambda_k, device, dtype):
    errors = _error_sequence(kind)
    want_k, want_m = paper.began_k_sequence(k0, errors, gamma=gamma, lambda_k=lambda_k)
    if kind == "to_zero":
        assert want_k[-1] == 0.0 and want_k[0] > 0.0
    if kind == "to_one_and_back":
        assert 1.0 in want_k and want_k[-1] < 1.0

    k = torch.tensor(k0, dtype=dtype, device=device)
    got_k, got_m = [], []
    with paper.no_host_sync():
        for real, fake in errors:
            k, conv = F.began_update(
                k, real.to(device, dtype), fake.to(device, dtype), gamma=gamma, lambda_k=lambda_k
            )
            got_k.append(k)
            got_m.append(conv)
    for k_t, m_t in zip(got_k, got_m):
        for v in (k_t, m_t):
            assert isinstance(v, torch.Tensor)
            assert v.device == torch.device(device) and v.dim() == 0 and v.dtype == dtype
    tol = TOL if dtype == F64 else dict(rtol=1e-5, atol=1e-6)
    assert_close(torch.stack(got_k).cpu(), torch.tensor(want_k, dtype=dtype), **tol)
    assert_close(torch.stack(got_m).cpu(), torch.tensor(want_m, dtype=dtype), **tol)
    # clamping is exact, not approximately 0 / 1
    for got, want in zip(got_k, want_k):
        if want in (0.0, 1.0):
            assert float(got) == want


# --------------------------------------------------------------------------- saturating vs not


@pytest.mark.parametrize("shape", [(6,), (4, 1), (2, 1, 3, 3)], ids=str)
def test_gan_generator_loss_non_saturating_by_default(shape):
    # D confidently rejects the fakes: logits well below 0 (where eq.3 as written saturates)
    fake = (-4.0 - 3.0 * torch.rand(shape, generator=_gen(11), dtype=F64)).requires_grad_(True)
    out = F.gan_generator_loss(fake)
    ns = paper.gan_generator_loss(fake, saturating=False)
    sat = paper.gan_generator_loss(fake, saturating=True)
    assert_close(out, ns, **TOL)
    assert _differs(sat, ns)
    (g,) = torch.autograd.grad(out, fake)
    (g_ns,) = torch.autograd.grad(ns, fake)
    (g_sat,) = torch.autograd.grad(sat, fake)
    assert_close(g, g_ns, **TOL)
    assert (g.abs() > 10 * g_sat.abs()).all()  # the non-saturating gradient does not vanish

    out_sat = F.gan_generator_loss(fake, saturating=True)
    assert_close(out_sat, sat, **TOL)
    assert_close(torch.autograd.grad(out_sat, fake)[0], g_sat, **TOL)
    assert_close(F.gan_generator_loss(fake, saturating=False), ns, **TOL)
