"""fastgan.testing.audit on EBGAN and BEGAN code (docs/audit.md).

The implementations are plain PyTorch written the way training scripts write them (the PyTorch-GAN
ebgan.py / began.py idioms among them): the wrong ones must be named by exactly their catalogue
entries, the correct ones must pass with no finding.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from fastgan.testing import audit

MARGIN, LAMBDA_PT, GAMMA, LAMBDA_K = 1.0, 0.1, 0.5, 0.001
pixelwise = nn.MSELoss()


# ------------------------------------------------------------------------------------ EBGAN
def energies(D, x):
    recon, _ = D(x)
    return F.mse_loss(recon, x, reduction="none").flatten(1).mean(1)


def ebgan_d(D, real, fake):
    return energies(D, real).mean() + torch.clamp(MARGIN - energies(D, fake.detach()), min=0).mean()


def ebgan_d_relu(D, real, fake):
    real_recon, _ = D(real)
    fake_recon, _ = D(fake)
    e_real = ((real_recon - real) ** 2).mean(dim=(1, 2, 3))
    e_fake = ((fake_recon - fake) ** 2).mean(dim=(1, 2, 3))
    return e_real.mean() + F.relu(MARGIN - e_fake).mean()


def ebgan_d_batch_margin(D, real, fake):  # the PyTorch-GAN ebgan.py way
    real_recon, _ = D(real)
    fake_recon, _ = D(fake.detach())
    d_loss_real = pixelwise(real_recon, real)
    d_loss_fake = pixelwise(fake_recon, fake.detach())
    d_loss = d_loss_real
    if (MARGIN - d_loss_fake).item() > 0:
        d_loss = d_loss + MARGIN - d_loss_fake
    return d_loss


def pt_normalize(emb):
    s = F.normalize(emb.flatten(1), dim=1)
    c = (s @ s.t()) ** 2
    n = s.size(0)
    return (c.sum() - c.diagonal().sum()) / (n * (n - 1))


def pt_cosine_similarity(emb):
    s = emb.flatten(1)
    c = F.cosine_similarity(s[:, None, :], s[None, :, :], dim=-1) ** 2
    off = ~torch.eye(s.size(0), dtype=torch.bool)
    return c[off].mean()


def pt_pytorch_gan(embeddings):  # PyTorch-GAN ebgan.py's pullaway_loss
    norm = torch.sqrt(torch.sum(embeddings ** 2, -1, keepdim=True))
    normalized_emb = embeddings / norm
    similarity = torch.matmul(normalized_emb, normalized_emb.transpose(1, 0))
    batch_size = embeddings.size(0)
    return (torch.sum(similarity) - batch_size) / (batch_size * (batch_size - 1))


def pt_unsquared(emb):
    s = F.normalize(emb, dim=1)
    c = s @ s.t()
    n = s.size(0)
    return (c.sum() - c.diagonal().sum()) / (n * (n - 1))


def pt_over_batch(emb):
    s = F.normalize(emb, dim=0)
    c = (s @ s.t()) ** 2
    n = s.size(0)
    return (c.sum() - c.diagonal().sum()) / (n * (n - 1))


def pt_with_diagonal(emb):
    s = F.normalize(emb, dim=1)
    n = s.size(0)
    return ((s @ s.t()) ** 2).sum() / (n * (n - 1))


def pt_unnormalised(emb):
    s = F.normalize(emb, dim=1)
    c = (s @ s.t()) ** 2
    return c.sum() - c.diagonal().sum()


def pt_divide_by_norm(emb):
    s = emb / emb.norm(dim=1, keepdim=True)
    c = (s @ s.t()) ** 2
    n = s.size(0)
    return (c.sum() - c.trace()) / (n * (n - 1))


def ebgan_g(pt=pt_normalize, detach=False):
    def g_loss(D, fake):
        recon, emb = D(fake)
        return pixelwise(recon, fake.detach() if detach else fake) + LAMBDA_PT * pt(emb)
    return g_loss


# ------------------------------------------------------------------------------------ BEGAN
def l1(D, x):
    return torch.mean(torch.abs(D(x) - x))


def l2(D, x):
    return torch.mean((D(x) - x) ** 2)


def began_d(err=l1):
    def d_loss(D, real, fake, k):
        return err(D, real) - k * err(D, fake.detach())
    return d_loss


def began_g(err=l1):
    def g_loss(D, fake):
        return err(D, fake)
    return g_loss


def began_k(err=l1, clamp=True):
    def k_update(k, D, real, fake):
        with torch.no_grad():
            k_next = k + LAMBDA_K * (GAMMA * err(D, real) - err(D, fake))
        return k_next.clamp(0, 1) if clamp else k_next
    return k_update


def began_k_item(k, D, real, fake):  # the PyTorch-GAN began.py way
    d_loss_real, d_loss_fake = l1(D, real), l1(D, fake)
    diff = torch.mean(GAMMA * d_loss_real - d_loss_fake)
    k = k + LAMBDA_K * diff.item()
    return min(max(k, 0), 1)


CORRECT = [
    pytest.param("ebgan", dict(d_loss=ebgan_d, g_loss=ebgan_g()), id="ebgan-mse-normalize"),
    pytest.param("ebgan", dict(d_loss=ebgan_d_relu, g_loss=ebgan_g(pt_cosine_similarity)), id="ebgan-relu-cosine-similarity"),
    pytest.param("ebgan", dict(g_loss=lambda D, fake: pixelwise(D(fake)[0], fake), pt_weight=0), id="ebgan-without-pt"),
    pytest.param("began", dict(d_loss=began_d(), g_loss=began_g(), k_update=began_k()), id="began-l1"),
    pytest.param("began", dict(d_loss=lambda D, r, f, k: F.l1_loss(D(r), r) - k * F.l1_loss(D(f), f)), id="began-l1-loss"),
]

WRONG = {
    "pt-cosines": ("ebgan", dict(g_loss=ebgan_g(pt_unsquared))),
    "pt-batch-axis": ("ebgan", dict(g_loss=ebgan_g(pt_over_batch))),
    "pt-diagonal": ("ebgan", dict(g_loss=ebgan_g(pt_with_diagonal))),
    "pt-no-normaliser": ("ebgan", dict(g_loss=ebgan_g(pt_unnormalised))),
    "pt-zero-row-nan": ("ebgan", dict(g_loss=ebgan_g(pt_divide_by_norm))),
    "ebgan-target-detached": ("ebgan", dict(d_loss=ebgan_d, g_loss=ebgan_g(detach=True))),
    "ebgan-batch-margin": ("ebgan", dict(d_loss=ebgan_d_batch_margin, g_loss=ebgan_g())),
    "began-squared": ("began", dict(d_loss=began_d(l2), g_loss=began_g(l2), k_update=began_k(l2))),
    "began-k-unclamped": ("began", dict(k_update=began_k(clamp=False))),
    "began-k-host-sync": ("began", dict(d_loss=began_d(), k_update=began_k_item)),
}


@pytest.mark.parametrize("family, kwargs", CORRECT)
def test_correct_implementations_pass(family, kwargs):
    report = audit(family, **kwargs)
    assert report.ok, str(report)


@pytest.mark.parametrize("entry_id", list(WRONG))
def test_wrong_implementation_is_named(entry_id):
    family, kwargs = WRONG[entry_id]
    report = audit(family, **kwargs)
    assert report.ids == [entry_id], str(report)
    assert report.findings[0].evidence and report.findings[0].fix


def test_began_squared_is_found_in_every_part():
    report = audit("began", **WRONG["began-squared"][1])
    assert report.findings[0].parts == ["d", "g", "k"], str(report)


def test_host_sync_is_a_performance_finding():
    report = audit("began", k_update=began_k_item)
    (finding,) = report.findings
    assert finding.kind == "performance" and "item" in finding.evidence[0], str(report)


def test_pytorch_gan_pulling_away_is_a_pair():
    """PyTorch-GAN's pullaway_loss: unsquared cosines, and NaN for an all-zero embedding."""
    report = audit("ebgan", g_loss=ebgan_g(pt_pytorch_gan))
    assert sorted(report.ids) == ["pt-cosines", "pt-zero-row-nan"], str(report)


def test_margin_departure_is_shown_on_the_margin_probe():
    report = audit("ebgan", d_loss=ebgan_d_batch_margin)
    assert any("'margin'" in e for e in report.findings[0].evidence), str(report)
