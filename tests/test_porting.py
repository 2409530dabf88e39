"""A port with no traps (issue 14, part 2; docs/porting.md).

* The idioms of the porting guide: each plain-PyTorch script idiom and its fastgan line agree
  to float rounding with the factor the guide states (½ for averaged BCE terms, ½ for LSGAN's
  generator, 1 elsewhere), losses and gradients.
* The loud mistakes fire — a target tensor passed as fake scores, a tensor passed as a
  hyper-parameter, sigmoid outputs passed as logits — and legitimate uses do not: detached fake
  logits, ``no_grad``, scores that lie in [0, 1], torch.compile, torch.func. The normal path
  reads no tensor value (no host sync).
* The port fixes: per-sample α of any shape and NumPy/float64 α, ``generator=``, ``gp_weight``
  (``weight=`` deprecated), ``fake_labels=``, ``create`` spellings, ``reconstruction_error``'s
  p (no default), BEGAN's k applied once per step (the per-call update deprecated).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from torch import nn

import fastgan.functional as FG
from fastgan import amp, losses

import paper

B, DIM = 6, 5
F64 = torch.float64


def _data(seed=0, dtype=F64):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(B, DIM, generator=g, dtype=dtype), torch.randn(B, DIM, generator=g, dtype=dtype)


def _critic(seed=1, sigmoid=False, dtype=F64):
    torch.manual_seed(seed)
    layers = [nn.Linear(DIM, 8), nn.Tanh(), nn.Linear(8, 1)] + ([nn.Sigmoid()] if sigmoid else [])
    return nn.Sequential(*layers).to(dtype)


def _grads(loss, params):
    """d loss / d params (zeros for a parameter it does not use: the critic's last bias in a
    penalty)."""
    grads = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
    return [torch.zeros_like(p) if g is None else g for g, p in zip(grads, params)]


def _assert_same(script, ours, params, factor):
    """``ours == factor · script``, values and gradients w.r.t. ``params``."""
    torch.testing.assert_close(ours, factor * script)
    for a, b in zip(_grads(script, params), _grads(ours, params)):
        torch.testing.assert_close(b, factor * a)


# --------------------------------------------------------------------------- the guide's idioms
def _logits_idiom(name):
    """(script d_loss, script g_loss, fastgan d factor, fastgan g factor) for a D of logits."""
    bce_logits, mse = nn.BCEWithLogitsLoss(), nn.MSELoss()
    ones, zeros = torch.ones(B, 1, dtype=F64), torch.zeros(B, 1, dtype=F64)
    if name == "bce_on_sigmoid_averaged":
        bce = nn.BCELoss()
        return (lambda r, f: (bce(torch.sigmoid(r), ones) + bce(torch.sigmoid(f), zeros)) / 2,
                lambda f: bce(torch.sigmoid(f), ones), FG.gan_discriminator_loss, FG.gan_generator_loss, 2.0, 1.0)
    if name == "bce_with_logits_summed":
        return (lambda r, f: bce_logits(r, ones) + bce_logits(f, zeros), lambda f: bce_logits(f, ones),
                FG.gan_discriminator_loss, FG.gan_generator_loss, 1.0, 1.0)
    if name == "bce_with_logits_averaged":
        return (lambda r, f: (bce_logits(r, ones) + bce_logits(f, zeros)) / 2, lambda f: bce_logits(f, ones),
                FG.gan_discriminator_loss, FG.gan_generator_loss, 2.0, 1.0)
    if name == "mse_lsgan":
        return (lambda r, f: 0.5 * (mse(r, ones) + mse(f, zeros)), lambda f: mse(f, ones),
                FG.lsgan_discriminator_loss, FG.lsgan_generator_loss, 1.0, 0.5)
    if name == "wgan_means":
        return (lambda r, f: -r.mean() + f.mean(), lambda f: -f.mean(),
                FG.wgan_critic_loss, FG.wgan_generator_loss, 1.0, 1.0)
    raise KeyError(name)


@pytest.mark.parametrize("idiom", ["bce_on_sigmoid_averaged", "bce_with_logits_summed", "bce_with_logits_averaged",
                                   "mse_lsgan", "wgan_means"])
def test_score_idioms_agree_with_the_stated_factor(idiom):
    script_d, script_g, ours_d, ours_g, fd, fg = _logits_idiom(idiom)
    real, fake = _data()
    D = _critic()
    params = list(D.parameters())
    fake = fake.requires_grad_()
    _assert_same(script_d(D(real), D(fake.detach())), ours_d(D(real), D(fake.detach())), params, fd)
    script, ours = script_g(D(fake)), ours_g(D(fake))
    _assert_same(script, ours, params + [fake], fg)


def test_cgan_with_its_own_fake_labels():
    real, fake = _data()
    labels, gen_labels = torch.tensor([0, 1, 2, 0, 1, 2]), torch.tensor([2, 2, 1, 0, 0, 1])
    emb = nn.Embedding(3, DIM).double()
    D = _critic()
    cond = lambda x, y: D(x + emb(y))  # noqa: E731
    bce = nn.BCEWithLogitsLoss()
    ones, zeros = torch.ones(B, 1, dtype=F64), torch.zeros(B, 1, dtype=F64)
    script = bce(cond(real, labels), ones) + bce(cond(fake, gen_labels), zeros)
    ours, logs = losses.create("cgan").discriminator_loss(cond, real, fake, labels, fake_labels=gen_labels)
    _assert_same(script, ours, list(D.parameters()) + list(emb.parameters()), 1.0)
    same_labels, _ = losses.create("cgan").discriminator_loss(cond, real, fake, labels)
    torch.testing.assert_close(same_labels, bce(cond(real, labels), ones) + bce(cond(fake, labels), zeros))
    assert not torch.allclose(same_labels, ours)  # the fake labels are used: the test can fail


def _script_penalty(D, real, fake, alpha, weight):
    """The usual WGAN-GP script: ε of shape (B, 1), autograd.grad, norm per sample."""
    x_hat = (alpha * real + (1 - alpha) * fake.detach()).requires_grad_(True)
    out = D(x_hat)
    grads = torch.autograd.grad(out, x_hat, torch.ones_like(out), create_graph=True)[0]
    return weight * ((grads.view(B, -1).norm(2, dim=1) - 1) ** 2).mean()


@pytest.mark.parametrize("form", ["functional", "loss_object", "amp"])
@pytest.mark.parametrize("alpha_form", ["(B,)", "(B,1)", "(B,1,1,1)", "numpy_f64", "tensor_f32"])
def test_wgan_gp_script_with_its_own_alpha(form, alpha_form):
    real = torch.randn(B, 1, 2, 3, dtype=F64)
    fake = torch.randn(B, 1, 2, 3, dtype=F64)
    torch.manual_seed(3)
    D = nn.Sequential(nn.Flatten(), nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 1)).double()
    eps = torch.rand(B, dtype=torch.float32).double()  # exactly representable in float32 too
    alpha = {"(B,)": eps, "(B,1)": eps[:, None], "(B,1,1,1)": eps.view(B, 1, 1, 1),
             "numpy_f64": eps.view(B, 1, 1, 1).numpy(), "tensor_f32": eps.float().view(B, 1, 1, 1)}[alpha_form]
    script_gp = _script_penalty(D, real, fake, eps.view(B, 1, 1, 1), 7.0)
    if form == "functional":
        ours = FG.gradient_penalty(D, real, fake, gp_weight=7.0, alpha=alpha)
        script = script_gp
    elif form == "amp":
        ours = amp.gradient_penalty(D, real, fake, None, gp_weight=7.0, alpha=alpha)
        script = script_gp
    else:
        ours, logs = losses.create("wgan-gp", gp_weight=7.0).discriminator_loss(D, real, fake, alpha=alpha)
        script = -D(real).mean() + D(fake).mean() + script_gp
    _assert_same(script, ours, list(D.parameters()), 1.0)


def test_penalty_alpha_is_used():
    real, fake = _data()
    D = _critic()
    a = FG.gradient_penalty(D, real, fake, alpha=np.full((B, 1), 0.25))
    b = FG.gradient_penalty(D, real, fake, alpha=np.full((B, 1), 0.75))
    assert not torch.allclose(a, b)


@pytest.mark.parametrize("form", ["functional", "loss_object"])
def test_a_generator_replays_the_scripts_epsilon(form):
    real, fake = _data(dtype=torch.float32)
    D = _critic(dtype=torch.float32)
    g = torch.Generator().manual_seed(11)
    script_eps = torch.rand(B, 1, 1, 1, generator=g).view(B, 1)  # the script's draw
    script = _script_penalty(D, real, fake, script_eps, 10.0)
    g.manual_seed(11)
    if form == "functional":
        ours = FG.gradient_penalty(D, real, fake, generator=g)
    else:
        wgan = FG.wgan_critic_loss(D(real), D(fake))
        ours = losses.create("wgan-gp").discriminator_loss(D, real, fake, generator=g)[0] - wgan
    torch.testing.assert_close(ours, script)
    g.manual_seed(12)
    assert not torch.allclose(FG.gradient_penalty(D, real, fake, generator=g), script)


def test_wgan_clipping_loop():
    D1, D2 = _critic(), _critic()
    with torch.no_grad():
        for p in D1.parameters():
            p.mul_(10)
        for p in D2.parameters():
            p.mul_(10)
    for p in D1.parameters():
        p.data.clamp_(-0.05, 0.05)  # the script
    losses.create("wgan", clip_value=0.05).after_discriminator_step(D2)
    for a, b in zip(D1.parameters(), D2.parameters()):
        assert torch.equal(a, b)
    assert max(p.abs().max().item() for p in D2.parameters()) == 0.05


class _AE(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(5)
        self.enc, self.dec = nn.Linear(DIM, 3).double(), nn.Linear(3, DIM).double()

    def forward(self, x):
        h = torch.tanh(self.enc(x))
        return self.dec(h), h


def test_ebgan_energy_margin_and_pulling_away_term():
    real, fake = _data()
    fake = fake.requires_grad_()
    D = _AE()
    mse = nn.MSELoss()
    params = list(D.parameters())
    e_real = FG.reconstruction_error(real, D(real)[0], p=2)
    e_fake = FG.reconstruction_error(fake.detach(), D(fake.detach())[0], p=2)
    _assert_same(mse(D(real)[0], real), e_real.mean(), params, 1.0)  # the batch MSE is the mean energy
    margin = float(e_fake.detach().median())  # some fakes on each side of the margin
    per_sample = e_real.mean() + torch.relu(margin - e_fake).mean()
    _assert_same(per_sample, FG.ebgan_discriminator_loss(e_real, e_fake, margin), params, 1.0)
    batch_mean = mse(D(real)[0], real) + torch.relu(margin - mse(D(fake.detach())[0], fake.detach()))
    assert not torch.allclose(batch_mean, FG.ebgan_discriminator_loss(e_real, e_fake, margin))
    recon, emb = D(fake)
    s = emb / emb.norm(dim=1, keepdim=True)
    pt = ((s @ s.T) ** 2).sum() - B  # squared cosines, i ≠ j
    script_g = mse(recon, fake) + 0.1 * pt / (B * (B - 1))
    ours_g = FG.ebgan_generator_loss(FG.reconstruction_error(fake, recon, p=2), emb, pt_weight=0.1)
    _assert_same(script_g, ours_g, params + [fake], 1.0)


def _began_script(D, batches, gamma=0.5, lambda_k=0.05):
    """The script: k a Python float, updated with .item() after each step."""
    k, ks = 0.0, []
    for real, fake in batches:
        l_real = (D(real) - real).abs().mean()
        l_fake = (D(fake) - fake).abs().mean()
        ks.append(k)
        k = min(max(k + lambda_k * (gamma * l_real - l_fake).item(), 0.0), 1.0)
    return ks + [k]


def _began_batches(n=6):
    g = torch.Generator().manual_seed(2)
    return [(torch.randn(B, DIM, generator=g, dtype=F64), 0.3 * torch.randn(B, DIM, generator=g, dtype=F64))
            for _ in range(n)]


@pytest.mark.parametrize("protocol", ["after_discriminator_step", "update_k", "twice_per_step", "functional"])
def test_began_k_follows_the_scripts_item_updates(protocol):
    D = lambda v: 0.5 * v  # noqa: E731
    batches = _began_batches()
    expected = _began_script(D, batches)
    assert len(set(expected)) > 3
    loss = losses.create("began", lambda_k=0.05).double()
    if protocol == "twice_per_step":
        # before its first update the loss cannot tell a repeated call from the next step's
        # (fastgan 0.x's protocol, which it keeps then): an update_k() with nothing pending opts in
        loss.update_k()
        assert loss.k.item() == 0.0
    k, got = 0.0, []
    for real, fake in batches:
        if protocol == "functional":
            l_real, l_fake = FG.reconstruction_error(real, D(real), p=1), FG.reconstruction_error(fake, D(fake), p=1)
            got.append(float(k))
            k, _ = FG.began_update(k, l_real, l_fake, 0.5, 0.05)
            continue
        _, logs = loss.discriminator_loss(D, real, fake)
        if protocol == "twice_per_step":  # a second call in the same step (logging, say): no second update
            _, logs2 = loss.discriminator_loss(D, real, fake)
            assert torch.equal(logs2["k"], logs["k"])
        got.append(logs["k"].item())
        loss.update_k() if protocol == "update_k" else loss.after_discriminator_step(D)
        assert loss.pending_k is None
    got.append(float(k) if protocol == "functional" else loss.k.item())
    torch.testing.assert_close(torch.tensor(got, dtype=F64), torch.tensor(expected, dtype=F64))


def test_began_per_call_updates_still_work_with_a_deprecation_warning():
    """fastgan 0.x's protocol — no after_discriminator_step — gives the same k for every call
    and the same saved k, and warns."""
    D = lambda v: 0.5 * v  # noqa: E731
    batches = _began_batches()
    expected = _began_script(D, batches)
    loss = losses.create("began", lambda_k=0.05).double()
    got = []
    for i, (real, fake) in enumerate(batches):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            _, logs = loss.discriminator_loss(D, real, fake)
        deprecations = [w for w in caught if issubclass(w.category, DeprecationWarning)]
        assert len(deprecations) == (i > 0), [str(w.message) for w in caught]
        if i > 0:
            assert "after_discriminator_step" in str(deprecations[0].message)
        got.append(logs["k"].item())
    with pytest.warns(DeprecationWarning, match="pending"):
        saved = loss.state_dict()["k"].item()  # the last update is in the saved k, as before
    torch.testing.assert_close(torch.tensor(got + [saved], dtype=F64), torch.tensor(expected, dtype=F64))


def test_began_eval_mode_and_loads_leave_nothing_pending():
    loss = losses.create("began")
    real, fake = _data(dtype=torch.float32)
    loss.discriminator_loss(lambda v: 0.5 * v, real, fake)
    assert loss.pending_k is not None
    loss.load_state_dict(losses.create("began").state_dict())
    assert loss.pending_k is None
    loss.eval()
    loss.discriminator_loss(lambda v: 0.5 * v, real, fake)
    assert loss.pending_k is None


def test_update_k_takes_an_explicit_value():
    loss = losses.create("began")
    loss.update_k(torch.tensor(0.25))
    assert loss.k.item() == 0.25 and loss.pending_k is None


# --------------------------------------------------------------------------- loud mistakes
TWO_ARG = {
    "gan_discriminator_loss": FG.gan_discriminator_loss,
    "wgan_critic_loss": FG.wgan_critic_loss,
    "lsgan_discriminator_loss": FG.lsgan_discriminator_loss,
    "hinge_discriminator_loss": FG.hinge_discriminator_loss,
}


@pytest.mark.parametrize("target", ["ones", "zeros", "labels01"])
@pytest.mark.parametrize("fn", list(TWO_ARG))
def test_a_target_passed_as_fake_scores_raises(fn, target):
    D = _critic()
    real, _ = _data()
    t = {"ones": torch.ones(B, 1, dtype=F64), "zeros": torch.zeros(B, 1, dtype=F64),
         "labels01": torch.tensor([[1.0], [0.0], [1.0], [1.0], [0.0], [0.0]], dtype=F64)}[target]
    with pytest.raises(ValueError, match="looks like a target tensor") as info:
        TWO_ARG[fn](D(real), t)
    assert "(real_logits, fake_logits)" in str(info.value)


@pytest.mark.parametrize("fn", list(TWO_ARG))
def test_no_false_alarm_for_legitimate_scores(fn):
    D = _critic()
    real, fake = _data()
    f = TWO_ARG[fn]
    f(D(real), D(fake).detach())  # detached fake logits (evaluation)
    f(D(real), torch.rand(B, 1, dtype=F64))  # values in [0, 1], not all 0/1
    f(D(real), torch.ones(B, 1, dtype=F64).requires_grad_())  # exactly 1 but a score that needs its gradient
    f(D(real).detach(), torch.ones(B, 1, dtype=F64))  # nothing needs a gradient
    with torch.no_grad():
        f(D(real), torch.ones(B, 1, dtype=F64))
    g = torch.func.grad(lambda r: f(r, torch.ones(B, 1, dtype=F64)))
    g(torch.randn(B, 1, dtype=F64))  # torch.func: the values are the transform's business


def test_no_false_alarm_under_torch_compile():
    torch._dynamo.reset()
    step = torch.compile(lambda r, f: FG.gan_discriminator_loss(r, f), fullgraph=True, backend="eager")
    r = torch.randn(B, 1, requires_grad=True)
    torch.testing.assert_close(step(r, torch.ones(B, 1)), FG.adversarial_loss(r, torch.ones(B, 1), "bce"))


def test_the_normal_path_reads_no_value():
    D = _critic()
    real, fake = _data()
    r, f = D(real), D(fake)
    with paper.no_host_sync():
        for fn in TWO_ARG.values():
            fn(r, f)  # training: both need their gradients
            fn(r.detach(), f.detach())  # evaluation: neither does
    with pytest.raises(Exception):  # the rare case reads the values: the guard above can fail
        with paper.no_host_sync():
            try:
                FG.gan_discriminator_loss(r, torch.ones(B, 1, dtype=F64))
            except ValueError:
                pass


def test_a_target_passed_as_a_hyper_parameter_raises():
    s = torch.randn(B, 1, requires_grad=True)
    with pytest.raises(TypeError, match="takes the fake scores only"):
        FG.gan_generator_loss(s, torch.ones(B, 1))
    with pytest.raises(TypeError, match="takes the fake scores only"):
        FG.lsgan_generator_loss(s, torch.ones(B, 1))


#: (the logits as a script hands them over after its sigmoid, the same steps without it)
SIGMOID_FORMS = {
    "sigmoid": (torch.sigmoid, lambda t: t),
    "module": (nn.Sigmoid(), lambda t: t),
    "view": (lambda t: torch.sigmoid(t).view(-1), lambda t: t.view(-1)),
    "squeeze": (lambda t: torch.sigmoid(t).squeeze(1), lambda t: t.squeeze(1)),
    "float": (lambda t: torch.sigmoid(t).float(), lambda t: t.float()),
}


@pytest.mark.parametrize("form", list(SIGMOID_FORMS))
@pytest.mark.parametrize("where", ["d_real", "d_fake", "g", "loss_object"])
def test_sigmoid_outputs_as_logits_raise(form, where):
    D = _critic()
    real, fake = _data()
    sig, plain = SIGMOID_FORMS[form]
    with pytest.raises(ValueError, match="is the output of a sigmoid"):
        if where == "d_real":
            FG.gan_discriminator_loss(sig(D(real)), plain(D(fake)))
        elif where == "d_fake":
            FG.gan_discriminator_loss(plain(D(real)), sig(D(fake)))
        elif where == "g":
            FG.gan_generator_loss(sig(D(fake)))
        else:
            losses.create("gan").discriminator_loss(lambda x: sig(D(x)), real, fake)
    FG.gan_discriminator_loss(plain(D(real)), plain(D(fake)))  # the same steps without the sigmoid pass


def test_no_false_alarm_for_scores_in_the_unit_interval():
    D = _critic()
    real, fake = _data()
    squashed = lambda t: torch.tanh(t) * 0.5 + 0.5  # noqa: E731  (in [0, 1], not a sigmoid node)
    FG.gan_discriminator_loss(squashed(D(real)), squashed(D(fake)))
    FG.gan_generator_loss(torch.sigmoid(D(fake)) * D(fake))  # a gate, not the output
    with torch.no_grad():
        FG.gan_generator_loss(torch.sigmoid(D(fake)))  # no history: nothing to tell
    for fn in (FG.wgan_critic_loss, FG.hinge_discriminator_loss, FG.lsgan_discriminator_loss):
        fn(torch.sigmoid(D(real)), torch.sigmoid(D(fake)))  # bounded scores: a modelling choice there
    torch.func.grad(lambda t: FG.gan_generator_loss(torch.sigmoid(t)))(torch.randn(B, 1))


# --------------------------------------------------------------------------- deprecations, names
def test_reconstruction_error_without_p_warns_and_is_p1():
    x, r = _data()
    with pytest.warns(DeprecationWarning, match=r"p=1 .*p=2"):
        got = FG.reconstruction_error(x, r)
    assert torch.equal(got, FG.reconstruction_error(x, r, p=1))
    assert not torch.equal(got, FG.reconstruction_error(x, r, p=2))


def test_deprecated_forms_do_not_warn_under_torch_compile():
    torch._dynamo.reset()
    x, r = _data(dtype=torch.float32)
    fn = torch.compile(lambda a, b: FG.reconstruction_error(a, b), fullgraph=True, backend="eager")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = fn(x, r)
    torch.testing.assert_close(got, FG.reconstruction_error(x, r, 1))


@pytest.mark.parametrize("fn", ["functional", "amp"])
def test_weight_is_the_deprecated_name_of_gp_weight(fn):
    real, fake = _data()
    D = _critic()
    alpha = torch.rand(B, dtype=F64)
    call = (lambda **kw: FG.gradient_penalty(D, real, fake, alpha=alpha, **kw)) if fn == "functional" else (
        lambda **kw: amp.gradient_penalty(D, real, fake, None, alpha=alpha, **kw))
    with pytest.warns(DeprecationWarning, match="gp_weight"):
        old = call(weight=3.0)
    torch.testing.assert_close(old, call(gp_weight=3.0), rtol=0, atol=0)
    torch.testing.assert_close(call(gp_weight=3.0), 0.3 * call(gp_weight=10.0))
    with pytest.raises(TypeError, match="deprecated name weight"):
        call(gp_weight=1.0, weight=3.0)


def test_the_new_forms_do_not_warn():
    real, fake = _data()
    D = _critic()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        FG.gradient_penalty(D, real, fake, gp_weight=3.0, alpha=np.full(B, 0.5))
        FG.reconstruction_error(real, fake, p=2)
        loss = losses.create("began")
        for _ in range(3):
            loss.discriminator_loss(lambda v: 0.5 * v, real.float(), fake.float())
            loss.after_discriminator_step(None)


@pytest.mark.parametrize("name,family", [("wgan_gp", "wgan-gp"), ("WGAN-GP", "wgan-gp"), ("wgan gp", "wgan-gp"),
                                         ("wgangp", "wgan-gp"), ("LSGAN", "lsgan"), ("c_gan", "cgan")])
def test_create_accepts_separator_spellings(name, family):
    assert losses.create(name).name == family


def test_create_still_refuses_unknown_names():
    with pytest.raises(ValueError, match="available: began, cgan"):
        losses.create("wgan_div")
