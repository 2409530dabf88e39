"""fastgan.testing.audit on GAN, CGAN, LSGAN, WGAN and WGAN-GP code (docs/audit.md).

Every implementation here is plain PyTorch written the way training scripts write it, not with the
audit's recipes: the wrong ones must be named by exactly their catalogue entries, the correct ones
must pass with no finding.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from fastgan.testing import audit

bce_logits, bce, mse = nn.BCEWithLogitsLoss(), nn.BCELoss(), nn.MSELoss()


# ------------------------------------------------------------------------------- GAN / CGAN
def gan_d_bce_logits(D, real, fake):
    r, f = D(real), D(fake.detach())
    return bce_logits(r, torch.ones_like(r)) + bce_logits(f, torch.zeros_like(f))


def gan_g_bce_logits(D, fake):
    f = D(fake)
    return bce_logits(f, torch.ones_like(f))


def gan_d_softplus(D, real, fake):
    return F.softplus(-D(real)).mean() + F.softplus(D(fake)).mean()


def gan_g_logsigmoid(D, fake):
    return -F.logsigmoid(D(fake)).mean()


def gan_d_concatenated(D, real, fake):
    logits = D(torch.cat([real, fake.detach()]))
    targets = torch.cat([torch.ones(real.shape[0], 1), torch.zeros(fake.shape[0], 1)])
    return 2 * F.binary_cross_entropy_with_logits(logits, targets)


def gan_d_averaged(D, real, fake):  # the DCGAN-example way
    r, f = D(real), D(fake.detach())
    return (bce_logits(r, torch.ones_like(r)) + bce_logits(f, torch.zeros_like(f))) / 2


def gan_d_sigmoid_bce(D, real, fake):
    valid, fake_t = torch.ones(real.size(0), 1), torch.zeros(real.size(0), 1)
    return bce(torch.sigmoid(D(real)), valid) + bce(torch.sigmoid(D(fake.detach())), fake_t)


def gan_g_sigmoid_bce(D, fake):
    return bce(torch.sigmoid(D(fake)), torch.ones(fake.size(0), 1))


def gan_g_saturating(D, fake):  # "minimise log(1 - D(G(z)))"
    f = D(fake)
    return -bce_logits(f, torch.zeros_like(f))


def gan_d_mse(D, real, fake):
    return mse(D(real), torch.ones(real.size(0), 1)) + mse(D(fake.detach()), torch.zeros(fake.size(0), 1))


def gan_g_mse(D, fake):
    return mse(D(fake), torch.ones(fake.size(0), 1))


def cgan_d_mse_averaged(D, real, fake, labels):  # the PyTorch-GAN cgan.py way
    valid, fake_t = torch.ones(real.size(0), 1), torch.zeros(real.size(0), 1)
    return (mse(D(real, labels), valid) + mse(D(fake.detach(), labels), fake_t)) / 2


def cgan_d_bce_logits(D, real, fake, labels):
    r, f = D(real, labels), D(fake.detach(), labels)
    return bce_logits(r, torch.ones_like(r)) + bce_logits(f, torch.zeros_like(f))


def cgan_g_bce_logits(D, fake, labels):
    f = D(fake, labels)
    return bce_logits(f, torch.ones_like(f))


def cgan_g_mse(D, fake, labels):
    return mse(D(fake, labels), torch.ones(fake.size(0), 1))


# ------------------------------------------------------------------------------------ LSGAN
def lsgan_d_mse(D, real, fake):
    return 0.5 * mse(D(real), torch.ones(real.size(0), 1)) + 0.5 * mse(D(fake.detach()), torch.zeros(real.size(0), 1))


def lsgan_d_manual(D, real, fake):
    return ((D(real) - 1) ** 2).mean() / 2 + (D(fake) ** 2).mean() / 2


def lsgan_g_mse(D, fake):
    return 0.5 * mse(D(fake), torch.ones(fake.size(0), 1))


def lsgan_d_no_half(D, real, fake):
    return mse(D(real), torch.ones(real.size(0), 1)) + mse(D(fake.detach()), torch.zeros(real.size(0), 1))


def lsgan_g_no_half(D, fake):  # the PyTorch-GAN lsgan.py way
    return mse(D(fake), torch.ones(fake.size(0), 1))


# ------------------------------------------------------------------------------------- WGAN
def wgan_d(D, real, fake):
    return -torch.mean(D(real)) + torch.mean(D(fake.detach()))


def wgan_g(D, fake):
    return -torch.mean(D(fake))


def wgan_clip(D):
    for p in D.parameters():
        p.data.clamp_(-0.01, 0.01)


def wgan_clip_rebinds(D):  # clamps a copy: the weights never change
    for p in D.parameters():
        p = p.clamp(-0.01, 0.01)


def wgan_clip_other_c(D):
    for p in D.parameters():
        p.data.clamp_(-0.05, 0.05)


# ---------------------------------------------------------------------------------- WGAN-GP
def _gp(D, real, fake, *, alpha=None, norm="flat", leak=False, create_graph=True, one_sided=False):
    """A compute_gradient_penalty as scripts write it, with switches for the usual slips."""
    b = real.size(0)
    if alpha is None:
        alpha = torch.Tensor(np.random.random((b, 1, 1, 1)))
    f = fake if leak else fake.data
    interpolates = (alpha * real.data + ((1 - alpha) * f)).requires_grad_(True)
    d_interpolates = D(interpolates)
    gradients = torch.autograd.grad(outputs=d_interpolates, inputs=interpolates,
                                    grad_outputs=torch.ones(b, 1), create_graph=create_graph,
                                    retain_graph=True, only_inputs=True)[0]
    if norm == "flat":
        n = gradients.view(b, -1).norm(2, dim=1)
    elif norm == "batch":
        n = gradients.norm(2)
    elif norm == "pixel":
        n = gradients.norm(2, dim=1)
    elif norm == "axis":
        n = gradients.norm(2, dim=-1)
    else:
        n = torch.sqrt(torch.sum(gradients.view(b, -1) ** 2, dim=1))
    return ((torch.clamp(n - 1, min=0) if one_sided else n - 1) ** 2).mean()


def gp_d(**kw):
    def d_loss(D, real, fake):
        return -torch.mean(D(real)) + torch.mean(D(fake.detach())) + 10 * _gp(D, real, fake, **kw)
    return d_loss


def gp_d_torch_rand(D, real, fake):
    eps = torch.rand(real.shape[0], 1, 1, 1)
    x_hat = (eps * real + (1 - eps) * fake.detach()).requires_grad_()
    (g,) = torch.autograd.grad(D(x_hat).sum(), x_hat, create_graph=True)
    gp = (torch.linalg.vector_norm(g, dim=(1, 2, 3)) - 1).pow(2).mean()
    return D(fake).mean() - D(real).mean() + 10.0 * gp


def gp_d_float32_eps(D, real, fake):
    b = real.size(0)
    eps = torch.FloatTensor(b, 1, 1, 1).uniform_(0, 1).to(real)
    x_hat = eps * real + (1 - eps) * fake.detach()
    x_hat.requires_grad = True
    grads = torch.autograd.grad(D(x_hat), x_hat, torch.ones(b, 1), create_graph=True)[0].view(b, -1)
    return D(fake.detach()).mean() - D(real).mean() + 10 * ((grads.norm(2, dim=1) - 1) ** 2).mean()


def gp_d_one_eps(D, real, fake):
    return -torch.mean(D(real)) + torch.mean(D(fake.detach())) + 10 * _gp(D, real, fake, alpha=torch.rand(1))


CORRECT = [
    pytest.param("gan", dict(d_loss=gan_d_bce_logits, g_loss=gan_g_bce_logits), id="gan-bce-with-logits"),
    pytest.param("gan", dict(d_loss=gan_d_softplus, g_loss=gan_g_logsigmoid), id="gan-softplus-logsigmoid"),
    pytest.param("gan", dict(d_loss=gan_d_concatenated), id="gan-one-concatenated-batch"),
    pytest.param("gan", dict(g_loss=gan_g_saturating, saturating=True), id="gan-saturating-meant"),
    pytest.param("cgan", dict(d_loss=cgan_d_bce_logits, g_loss=cgan_g_bce_logits), id="cgan-bce-with-logits"),
    pytest.param("lsgan", dict(d_loss=lsgan_d_mse, g_loss=lsgan_g_mse), id="lsgan-mse-halves"),
    pytest.param("lsgan", dict(d_loss=lsgan_d_manual), id="lsgan-manual"),
    pytest.param("wgan", dict(d_loss=wgan_d, g_loss=wgan_g, clip=wgan_clip), id="wgan"),
    pytest.param("wgan-gp", dict(d_loss=gp_d(), g_loss=wgan_g), id="wgan-gp-numpy-eps"),
    pytest.param("wgan-gp", dict(d_loss=gp_d_torch_rand), id="wgan-gp-torch-rand-vector-norm"),
    pytest.param("wgan-gp", dict(d_loss=gp_d_float32_eps), id="wgan-gp-float32-eps"),
    pytest.param("wgan_gp", dict(d_loss=gp_d(one_sided=True), one_sided=True), id="wgan-gp-one-sided-meant"),
]

WRONG = {
    "d-averaged": ("gan", dict(d_loss=gan_d_averaged)),
    "lsgan-no-half": ("lsgan", dict(d_loss=lsgan_d_no_half, g_loss=lsgan_g_no_half)),
    "cgan-mse": ("cgan", dict(g_loss=cgan_g_mse)),
    "bce-on-sigmoid": ("gan", dict(d_loss=gan_d_sigmoid_bce, g_loss=gan_g_sigmoid_bce)),
    "saturating-g": ("gan", dict(g_loss=gan_g_saturating)),
    "wgan-no-clip": ("wgan", dict(d_loss=wgan_d, clip=wgan_clip_rebinds)),
    "wgan-other-c": ("wgan", dict(clip=wgan_clip_other_c)),
    "gp-missing": ("wgan-gp", dict(d_loss=wgan_d)),  # the WGAN critic loss, no penalty
    "gp-batch-norm": ("wgan-gp", dict(d_loss=gp_d(norm="batch"))),
    "gp-pixel-norm": ("wgan-gp", dict(d_loss=gp_d(norm="pixel"))),
    "gp-axis-norm": ("wgan-gp", dict(d_loss=gp_d(norm="axis"))),
    "gp-one-eps": ("wgan-gp", dict(d_loss=gp_d_one_eps)),
    "gp-sidedness": ("wgan-gp", dict(d_loss=gp_d(one_sided=True))),
    "gp-leak": ("wgan-gp", dict(d_loss=gp_d(leak=True))),
    "gp-no-create-graph": ("wgan-gp", dict(d_loss=gp_d(create_graph=False))),
    "gp-sqrt-nan": ("wgan-gp", dict(d_loss=gp_d(norm="sqrt"))),
}


@pytest.mark.parametrize("family, kwargs", CORRECT)
def test_correct_implementations_pass(family, kwargs):
    report = audit(family, **kwargs)
    assert report.ok, str(report)
    report.raise_if_failed()


@pytest.mark.parametrize("entry_id", list(WRONG))
def test_wrong_implementation_is_named(entry_id):
    family, kwargs = WRONG[entry_id]
    report = audit(family, **kwargs)
    assert report.ids == [entry_id], str(report)
    assert not report.ok and report.findings[0].evidence and report.findings[0].fix


def test_pairs_are_named_together():
    """The PyTorch-GAN cgan.py discriminator: MSE and the average of the two terms."""
    report = audit("cgan", d_loss=cgan_d_mse_averaged)
    assert sorted(report.ids) == ["cgan-mse", "d-averaged"], str(report)
    assert report.findings[0].together_with == [report.findings[1].id]
