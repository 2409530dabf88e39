"""fastgan.testing.audit on whole training-script loss code (docs/audit.md, "Several departures
at once" and "Non-finite results").

Each script below is the loss code of one training script, written in plain PyTorch the way the
published GAN scripts write it (nn.MSELoss / nn.BCELoss objects, ``.item()``, ``.data``,
``torch.mean(torch.abs(...))``), independently of the audit's recipes, and each carries two or
three departures at once. The audit must name every one of them, and no other.
"""

from __future__ import annotations

import contextlib
import io
import pathlib
import re

import pytest
import torch
from torch import autograd, nn

from fastgan.testing import audit

# ------------------------------------------------------------------------------------ EBGAN
# the well-known public EBGAN script: energies with nn.MSELoss, the margin applied to the batch
# mean behind a host-side test, the generator's target detached, and its pullaway_loss
margin, lambda_pt = 1.0, 0.1
pixelwise_loss = nn.MSELoss()


def pullaway_loss(embeddings):
    norm = torch.sqrt(torch.sum(embeddings ** 2, -1, keepdim=True))
    normalized_emb = embeddings / norm
    similarity = torch.matmul(normalized_emb, normalized_emb.transpose(1, 0))
    batch_size = embeddings.size(0)
    return (torch.sum(similarity) - batch_size) / (batch_size * (batch_size - 1))


def ebgan_d_loss(discriminator, real_imgs, gen_imgs):
    real_recon, _ = discriminator(real_imgs)
    fake_recon, _ = discriminator(gen_imgs.detach())
    d_loss_real = pixelwise_loss(real_recon, real_imgs)
    d_loss_fake = pixelwise_loss(fake_recon, gen_imgs.detach())
    d_loss = d_loss_real
    if (margin - d_loss_fake.data).item() > 0:
        d_loss += margin - d_loss_fake
    return d_loss


def ebgan_g_loss(discriminator, gen_imgs):
    recon_imgs, img_embeddings = discriminator(gen_imgs)
    return pixelwise_loss(recon_imgs, gen_imgs.detach()) + lambda_pt * pullaway_loss(img_embeddings.flatten(1))


def test_ebgan_script_names_all_four_departures():
    report = audit("ebgan", ebgan_d_loss, ebgan_g_loss)
    assert report.ids == ["ebgan-batch-margin", "pt-cosines", "pt-zero-row-nan", "ebgan-target-detached"], str(report)
    by_id = {f.id: f for f in report.findings}
    assert by_id["ebgan-batch-margin"].parts == ["d"] and by_id["pt-cosines"].parts == ["g"]
    assert sorted(by_id["pt-cosines"].together_with) == ["ebgan-target-detached", "pt-zero-row-nan"], str(report)
    assert "only together they explain the numbers" in str(report)
    assert any("'zero embedding'" in e and "NaN" in e for e in by_id["pt-zero-row-nan"].evidence), str(report)


# ------------------------------------------------------------------------------------ BEGAN
# a BEGAN script: L1 errors as torch.mean(torch.abs(...)), k kept a Python number through .item()
# and never clamped back into [0, 1]
gamma, lambda_k = 0.5, 0.001


def began_d_loss(discriminator, real_imgs, gen_imgs, k):
    d_real = discriminator(real_imgs)
    d_fake = discriminator(gen_imgs.detach())
    d_loss_real = torch.mean(torch.abs(d_real - real_imgs))
    d_loss_fake = torch.mean(torch.abs(d_fake - gen_imgs.detach()))
    return d_loss_real - k * d_loss_fake


def began_g_loss(discriminator, gen_imgs):
    return torch.mean(torch.abs(discriminator(gen_imgs) - gen_imgs))


def began_k_update(k, discriminator, real_imgs, gen_imgs):
    d_loss_real = torch.mean(torch.abs(discriminator(real_imgs) - real_imgs))
    d_loss_fake = torch.mean(torch.abs(discriminator(gen_imgs) - gen_imgs))
    diff = torch.mean(gamma * d_loss_real - d_loss_fake)
    k = k + lambda_k * diff.item()
    return k


def test_began_script_names_the_unclamped_k_and_the_host_sync():
    report = audit("began", began_d_loss, began_g_loss, k_update=began_k_update)
    assert report.ids == ["began-k-unclamped", "began-k-host-sync"], str(report)
    assert [f.parts for f in report.findings] == [["k"], ["k"]]


# ------------------------------------------------------------------------------------ WGAN-GP
# WGAN-GP scripts: the penalty interpolating the generated images as they are (not detached) and
# the norm over the channel axis of an NCHW gradient (dim=1 without flattening)
LAMBDA = 10


def calc_gradient_penalty(netD, real_data, fake_data, alpha):
    # the generated images are passed as they are (no .data / .detach()): the penalty reaches G
    interpolates = (alpha * real_data + ((1 - alpha) * fake_data)).requires_grad_(True)
    disc_interpolates = netD(interpolates)
    gradients = autograd.grad(outputs=disc_interpolates, inputs=interpolates,
                              grad_outputs=torch.ones(disc_interpolates.size()),
                              create_graph=True, retain_graph=True, only_inputs=True)[0]
    return gradients


def wgan_gp_d_one_alpha(netD, real_data, fake_data):
    """One α for the whole batch as well: three departures."""
    alpha = torch.rand(1)
    gradients = calc_gradient_penalty(netD, real_data, fake_data, alpha)
    gradient_penalty = ((gradients.norm(2, dim=1) - 1) ** 2).mean() * LAMBDA
    return netD(fake_data.detach()).mean() - netD(real_data).mean() + gradient_penalty


def wgan_gp_d_sqrt(netD, real_data, fake_data):
    """The norm as sqrt(sum of squares) over the channel axis: NaN where a gradient is 0."""
    alpha = torch.rand(real_data.size(0), 1, 1, 1)
    gradients = calc_gradient_penalty(netD, real_data, fake_data, alpha)
    slopes = torch.sqrt(torch.sum(gradients ** 2, dim=1))
    gradient_penalty = torch.mean((slopes - 1.0) ** 2)
    return torch.mean(netD(fake_data)) - torch.mean(netD(real_data)) + LAMBDA * gradient_penalty


def wgan_g_loss(netD, fake):
    return -netD(fake).mean()


def test_wgan_gp_script_with_three_departures():
    report = audit("wgan-gp", wgan_gp_d_one_alpha, wgan_g_loss)
    assert report.ids == ["gp-pixel-norm", "gp-one-eps", "gp-leak"], str(report)
    assert all(len(f.together_with) == 2 for f in report.findings), str(report)


def test_wgan_gp_script_with_a_nan_norm():
    """The NaN of sqrt at a zero gradient is its own finding (the zero-norm probe's entry), and the
    other numbers are matched to the catalogue: the per-pixel norm and the leak."""
    report = audit("wgan-gp", wgan_gp_d_sqrt, wgan_g_loss)
    assert report.ids == ["gp-sqrt-nan", "gp-pixel-norm", "gp-leak"], str(report)
    nan = report.findings[0]
    assert any("'zero norm'" in e and "NaN" in e for e in nan.evidence), str(report)
    assert any(e.startswith("likely cause on 'zero norm'") for e in nan.evidence), str(report)


# ------------------------------------------------------------------------------------ GAN
# a DCGAN-style script: a sigmoid at D's output with nn.BCELoss, and the two D terms averaged
adversarial_loss = nn.BCELoss()


def gan_d_loss(discriminator, real_imgs, gen_imgs):
    valid = torch.ones(real_imgs.size(0), 1)
    fake = torch.zeros(real_imgs.size(0), 1)
    real_loss = adversarial_loss(torch.sigmoid(discriminator(real_imgs)), valid)
    fake_loss = adversarial_loss(torch.sigmoid(discriminator(gen_imgs.detach())), fake)
    return (real_loss + fake_loss) / 2


def gan_g_loss(discriminator, gen_imgs):
    valid = torch.ones(gen_imgs.size(0), 1)
    return adversarial_loss(torch.sigmoid(discriminator(gen_imgs)), valid)


def test_gan_script_names_sigmoid_bce_and_averaged_terms():
    report = audit("gan", gan_d_loss, gan_g_loss)
    assert sorted(report.ids) == ["bce-on-sigmoid", "d-averaged"], str(report)
    parts = {f.id: f.parts for f in report.findings}
    assert parts == {"bce-on-sigmoid": ["d", "g"], "d-averaged": ["d"]}, str(report)


def gan_g_log_sigmoid(discriminator, gen_imgs):
    """-log(sigmoid(x)) written out: inf once a logit is below ≈ −745."""
    return -torch.mean(torch.log(torch.sigmoid(discriminator(gen_imgs))))


def test_gan_log_of_sigmoid_is_a_non_finite_finding():
    report = audit("gan", gan_d_loss, gan_g_log_sigmoid)
    assert sorted(report.ids) == ["bce-on-sigmoid", "d-averaged", "non-finite"], str(report)
    (nonfinite,) = [f for f in report.findings if f.id == "non-finite"]
    assert nonfinite.kind == "non-finite" and nonfinite.parts == ["g"], str(report)
    assert any("'large logits'" in e and "inf" in e for e in nonfinite.evidence), str(report)
    assert "logsigmoid" in nonfinite.fix


# ------------------------------------------------------------------------------------ LSGAN
# an LSGAN script: nn.MSELoss for both nets, the D terms averaged. Averaging two plain MSEs is the
# paper's ½ + ½; a script that also halves each term halves twice; the generator lacks the ½
mse_loss = nn.MSELoss()


def lsgan_d_loss(discriminator, real_imgs, gen_imgs):
    valid = torch.ones(real_imgs.size(0), 1)
    fake = torch.zeros(real_imgs.size(0), 1)
    real_loss = 0.5 * mse_loss(discriminator(real_imgs), valid)
    fake_loss = 0.5 * mse_loss(discriminator(gen_imgs.detach()), fake)
    return (real_loss + fake_loss) / 2


def lsgan_d_loss_plain(discriminator, real_imgs, gen_imgs):
    valid = torch.ones(real_imgs.size(0), 1)
    fake = torch.zeros(real_imgs.size(0), 1)
    real_loss = mse_loss(discriminator(real_imgs), valid)
    fake_loss = mse_loss(discriminator(gen_imgs.detach()), fake)
    return 0.5 * (real_loss + fake_loss)


def lsgan_g_loss(discriminator, gen_imgs):
    return mse_loss(discriminator(gen_imgs), torch.ones(gen_imgs.size(0), 1))


def test_lsgan_script_names_averaged_terms_and_missing_half():
    report = audit("lsgan", lsgan_d_loss, lsgan_g_loss)
    assert report.ids == ["d-averaged", "lsgan-no-half"], str(report)
    assert [f.parts for f in report.findings] == [["d"], ["g"]], str(report)


def test_lsgan_average_of_plain_mses_is_the_paper():
    """0.5·(MSE_real + MSE_fake) is eq. 10's ½ + ½: only the generator's missing ½ is named."""
    report = audit("lsgan", lsgan_d_loss_plain, lsgan_g_loss)
    assert report.ids == ["lsgan-no-half"] and report.findings[0].parts == ["g"], str(report)


# ------------------------------------------------------------------------------------ the rules
def wgan_d_loss(netD, real, fake):
    return -torch.mean(netD(real)) + torch.mean(netD(fake.detach()))


def test_nan_where_the_paper_is_nan_agrees():
    """Your own batch with a NaN pixel: your loss and the paper's are both NaN, and agree."""
    torch.manual_seed(0)
    D = nn.Sequential(nn.Flatten(), nn.Linear(12, 4), nn.Tanh(), nn.Linear(4, 1))
    real, fake = torch.randn(4, 3, 2, 2), torch.randn(4, 3, 2, 2)
    real[2, 1, 0, 1] = float("nan")
    assert audit("wgan", wgan_d_loss, wgan_g_loss, D=D, real=real, fake=fake).ok
    report = audit("wgan", lambda D, r, f: 2 * wgan_d_loss(D, r, f), D=D, real=real, fake=fake)
    assert report.ids == ["unmatched"] and "non-finite" not in str(report), str(report)


def test_nan_on_every_probe_and_a_departure_in_the_finite_numbers():
    """A log of the critic's raw output: the loss is NaN on every probe (a negative output), its
    gradient 1/D(x) is finite and not the paper's: a non-finite finding and an unmatched one."""
    def d_loss(D, real, fake):
        return -torch.mean(torch.log(D(real))) + torch.mean(D(fake.detach()))

    report = audit("wgan", d_loss)
    assert report.ids == ["non-finite", "unmatched"], str(report)
    lines = report.findings[0].evidence
    assert any("loss on 'ordinary': yours nan" in e for e in lines) and any("'large logits'" in e for e in lines), str(report)
    assert all("grad wrt D's parameters" in e for e in report.findings[1].evidence), str(report)


def test_nan_everywhere_is_one_non_finite_finding():
    def g_loss(D, fake):
        return -torch.mean(D(fake)) * torch.tensor(float("nan"))

    report = audit("wgan-gp", g_loss=g_loss)
    assert report.ids == ["non-finite"] and report.findings[0].kind == "non-finite", str(report)
    assert not any("other numbers" in e for e in report.findings[0].evidence), str(report)


def test_docs_script_example_prints_the_documented_ids():
    text = (pathlib.Path(__file__).resolve().parent.parent / "docs" / "audit.md").read_text()
    code = re.search(r"<!-- script example -->\s*```python\n(.*?)```", text, re.S).group(1)
    printed = re.search(r"<!-- script example output -->\s*```text\n(.*?)```", text, re.S).group(1)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "docs/audit.md", "exec"), {"__name__": "docs_audit_script_example"})
    assert out.getvalue() == printed


SCRIPTS = {
    "ebgan": ("ebgan", dict(d_loss=ebgan_d_loss, g_loss=ebgan_g_loss),
              ["ebgan-batch-margin", "ebgan-target-detached", "pt-cosines", "pt-zero-row-nan"]),
    "began": ("began", dict(d_loss=began_d_loss, g_loss=began_g_loss, k_update=began_k_update),
              ["began-k-host-sync", "began-k-unclamped"]),
    "wgan-gp-one-alpha": ("wgan-gp", dict(d_loss=wgan_gp_d_one_alpha), ["gp-leak", "gp-one-eps", "gp-pixel-norm"]),
    "wgan-gp-sqrt": ("wgan-gp", dict(d_loss=wgan_gp_d_sqrt), ["gp-leak", "gp-pixel-norm", "gp-sqrt-nan"]),
    "gan": ("gan", dict(d_loss=gan_d_loss, g_loss=gan_g_loss), ["bce-on-sigmoid", "d-averaged"]),
    "lsgan": ("lsgan", dict(d_loss=lsgan_d_loss, g_loss=lsgan_g_loss), ["d-averaged", "lsgan-no-half"]),
}


@pytest.mark.parametrize("script", list(SCRIPTS))
def test_scripts_are_named_with_other_probes(script):
    """The same verdicts on the probes of another seed."""
    family, kwargs, ids = SCRIPTS[script]
    report = audit(family, seed=7, **kwargs)
    assert sorted(report.ids) == ids, str(report)
