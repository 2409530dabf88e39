"""The nn.Module loss objects: one interface for every family, the registry, BEGAN's k buffer,
state_dict round trips."""

from __future__ import annotations

import io

import pytest
import torch
from torch import nn

import fastgan.functional as FG
from fastgan import losses

torch.set_default_dtype(torch.float32)
B, DIM = 6, 5
SCORE_FAMILIES = ["gan", "cgan", "wgan", "wgan-gp", "lsgan", "hinge"]
AE_FAMILIES = ["ebgan", "began"]


class Critic(nn.Module):
    def __init__(self, conditional=False):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(DIM, 16), nn.Tanh(), nn.Linear(16, 1))
        self.embed = nn.Embedding(3, DIM) if conditional else None
        self.seen_labels = []

    def forward(self, x, labels=None):
        if labels is not None:
            self.seen_labels.append(labels)
            x = x + self.embed(labels)
        return self.net(x)


class AutoEncoder(nn.Module):
    def __init__(self, with_embedding=True):
        super().__init__()
        self.enc = nn.Sequential(nn.Linear(DIM, 4), nn.Tanh())
        self.dec = nn.Linear(4, DIM)
        self.with_embedding = with_embedding

    def forward(self, x, labels=None):
        h = self.enc(x)
        return (self.dec(h), h) if self.with_embedding else self.dec(h)


def _setup(name, seed=0):
    torch.manual_seed(seed)
    G = nn.Linear(3, DIM)
    D = AutoEncoder() if name in AE_FAMILIES else Critic(conditional=name == "cgan")
    real, z = torch.randn(B, DIM), torch.randn(B, 3)
    labels = torch.randint(0, 3, (B,)) if name == "cgan" else None
    return G, D, real, z, labels


def test_registry_lists_every_family():
    assert losses.available() == sorted(["gan", "cgan", "wgan", "wgan-gp", "ebgan", "began", "lsgan", "hinge"])
    for name in losses.available():
        loss = losses.create(name)
        assert isinstance(loss, losses.GANLossBase) and loss.name == name
    assert losses.create("WGAN-GP").name == "wgan-gp"


@pytest.mark.parametrize("name", SCORE_FAMILIES + AE_FAMILIES)
def test_discriminator_step_does_not_train_generator_and_generator_step_does(name):
    G, D, real, z, labels = _setup(name)
    loss = losses.create(name)
    fake = G(z)
    d_loss, d_logs = loss.discriminator_loss(D, real, fake, labels)
    assert d_loss.dim() == 0 and torch.isfinite(d_loss)
    d_loss.backward()
    assert all(p.grad is None for p in G.parameters())
    assert all(p.grad is not None for p in D.parameters() if p.requires_grad and p is not getattr(D, "embed", None))
    D.zero_grad()
    g_loss, g_logs = loss.generator_loss(D, G(z), labels)
    g_loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in G.parameters())
    for logs in (d_logs, g_logs):
        assert logs and all(isinstance(t, torch.Tensor) and t.dim() == 0 and not t.requires_grad for t in logs.values())


def _scores_reference(name, D, real, fake, labels):
    """The paper's losses on the discriminator's outputs, from the float64 oracle
    (tests/paper.py), which shares no code with fastgan."""
    import paper

    call = (lambda x: D(x)) if labels is None else (lambda x: D(x, labels))
    r, f = call(real).detach(), call(fake).detach()
    d = {
        "gan": lambda: paper.gan_discriminator_loss(r, f),
        "cgan": lambda: paper.gan_discriminator_loss(r, f),
        "wgan": lambda: paper.wgan_critic_loss(r, f),
        "lsgan": lambda: paper.lsgan_discriminator_loss(r, f),
        "hinge": lambda: paper.hinge_discriminator_loss(r, f),
    }[name]()
    g = {
        "gan": lambda: paper.gan_generator_loss(f),
        "cgan": lambda: paper.gan_generator_loss(f),
        "wgan": lambda: paper.wgan_generator_loss(f),
        "lsgan": lambda: paper.lsgan_generator_loss(f),
        "hinge": lambda: paper.hinge_generator_loss(f),
    }[name]()
    return d, g


@pytest.mark.parametrize("name", ["gan", "cgan", "wgan", "lsgan", "hinge"])
def test_score_families_match_the_paper_oracle(name):
    G, D, real, z, labels = _setup(name)
    fake = G(z)
    loss = losses.create(name)
    d_loss, logs = loss.discriminator_loss(D, real, fake, labels)
    g_loss, _ = loss.generator_loss(D, fake, labels)
    d_ref, g_ref = _scores_reference(name, D, real, fake, labels)
    torch.testing.assert_close(d_loss.double(), d_ref, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(g_loss.double(), g_ref, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(logs["d_real"], D(real, labels).mean() if labels is not None else D(real).mean())


def test_cgan_hands_labels_to_every_discriminator_call():
    G, D, real, z, labels = _setup("cgan")
    loss = losses.create("cgan")
    loss.discriminator_loss(D, real, G(z), labels)
    loss.generator_loss(D, G(z), labels)
    assert len(D.seen_labels) == 3 and all(l is labels for l in D.seen_labels)
    with pytest.raises(ValueError, match="labels"):
        loss.generator_loss(D, G(z))


def test_conditional_wgan_gp_passes_labels_to_the_penalty():
    G, D, real, z, labels = _setup("cgan")
    loss = losses.create("wgan-gp")
    loss.discriminator_loss(D, real, G(z), labels)
    assert len(D.seen_labels) == 3  # real, fake, interpolates


def test_gan_saturating_flag():
    G, D, real, z, _ = _setup("gan")
    fake = G(z)
    g_ns, _ = losses.create("gan").generator_loss(D, fake)
    g_s, _ = losses.create("gan", saturating=True).generator_loss(D, fake)
    torch.testing.assert_close(g_ns, FG.gan_generator_loss(D(fake)))
    torch.testing.assert_close(g_s, FG.gan_generator_loss(D(fake), saturating=True))
    assert not torch.allclose(g_ns, g_s)


def test_wgan_clips_after_critic_step_and_uses_five_critic_steps():
    G, D, real, z, _ = _setup("wgan")
    loss = losses.create("wgan", clip_value=0.05)
    assert loss.n_critic == 5 and losses.create("wgan-gp").n_critic == 5 and losses.create("gan").n_critic == 1
    before = [p.detach().clone() for p in D.parameters()]
    loss.after_discriminator_step(D)
    for p, b in zip(D.parameters(), before):
        torch.testing.assert_close(p.detach(), b.clamp(-0.05, 0.05))
    assert any((b.abs() > 0.05).any() for b in before)
    # the other families leave D alone
    before = [p.detach().clone() for p in D.parameters()]
    losses.create("wgan-gp").after_discriminator_step(nn.Linear(2, 2))
    losses.create("gan").after_discriminator_step(D)
    assert all(torch.equal(p, b) for p, b in zip(D.parameters(), before))


def test_wgan_gp_is_critic_loss_plus_penalty():
    G, D, real, z, _ = _setup("wgan-gp")
    fake = G(z).detach()
    loss = losses.create("wgan-gp", gp_weight=7.0)
    torch.manual_seed(123)
    d_loss, logs = loss.discriminator_loss(D, real, fake)
    torch.manual_seed(123)
    gp = FG.gradient_penalty(D, real, fake, gp_weight=7.0)
    expected = FG.wgan_critic_loss(D(real), D(fake)) + gp
    torch.testing.assert_close(d_loss, expected)
    torch.testing.assert_close(logs["gp"], gp.detach())
    torch.testing.assert_close(logs["wasserstein"], (D(real).mean() - D(fake).mean()).detach())


def test_ebgan_energies_margin_and_pulling_away_term():
    G, D, real, z, _ = _setup("ebgan")
    fake = G(z)
    loss = losses.create("ebgan", margin=2.0, pt_weight=0.3)
    d_loss, _ = loss.discriminator_loss(D, real, fake)
    rec_r, _ = D(real)
    rec_f, emb_f = D(fake)
    e_r = ((real - rec_r) ** 2).mean(1)
    e_f = ((fake - rec_f) ** 2).mean(1)
    torch.testing.assert_close(d_loss, e_r.mean() + (2.0 - e_f).clamp_min(0).mean())
    g_loss, logs = loss.generator_loss(D, fake)
    torch.testing.assert_close(g_loss, e_f.mean() + 0.3 * FG.pulling_away_term(emb_f))
    assert "pt" in logs
    # without an embedding the PT term cannot be computed: a clear error, unless pt_weight = 0
    plain = AutoEncoder(with_embedding=False)
    with pytest.raises(ValueError, match="embedding"):
        loss.generator_loss(plain, fake)
    g0, _ = losses.create("ebgan", pt_weight=0.0).generator_loss(plain, fake)
    torch.testing.assert_close(g0, ((fake - plain(fake)) ** 2).mean(1).mean())


def test_autoencoder_output_type_checked():
    x = torch.randn(2, 3)
    for bad in ([], (), [1.0], (None, x), "x", 1.0):
        with pytest.raises(TypeError, match="reconstruction"):
            losses.create("began").generator_loss(lambda v, bad=bad: bad, x)
        with pytest.raises(TypeError, match="reconstruction"):
            losses.create("ebgan", pt_weight=0.0).generator_loss(lambda v, bad=bad: bad, x)
    # EBGAN takes the reconstruction or (reconstruction, embedding), nothing longer
    with pytest.raises(TypeError, match="reconstruction"):
        losses.create("ebgan").generator_loss(lambda v: (2 * v, v, v), x)


@pytest.mark.parametrize("kind", [tuple, list])
@pytest.mark.parametrize("extra", [0, 1, 2], ids=["bare", "pair", "triple"])
def test_began_takes_the_reconstruction_or_any_sequence_starting_with_it(kind, extra):
    """The BEGAN loss object's D returns the reconstruction, or a tuple or list whose first item
    is the reconstruction (as its docstring says); the value is the same in every form."""
    torch.manual_seed(0)
    real, fake = torch.randn(B, DIM), torch.randn(B, DIM)
    recon = lambda v: 0.5 * v + 0.1  # noqa: E731
    plain = losses.create("began")
    d_ref, _ = plain.discriminator_loss(recon, real, fake)
    g_ref, _ = plain.generator_loss(recon, fake)
    D = recon if extra == 0 else (lambda v: kind([recon(v)] + ["anything"] * (extra - 1) + [v[:, :2]] * (extra > 1)))
    loss = losses.create("began")
    d, _ = loss.discriminator_loss(D, real, fake)
    g, _ = loss.generator_loss(D, fake)
    torch.testing.assert_close(d, d_ref)
    torch.testing.assert_close(g, g_ref)


def test_began_k_buffer_updates_on_device_in_training_only():
    G, D, real, z, _ = _setup("began")
    loss = losses.create("began", gamma=0.7, lambda_k=0.01)
    assert "k" in dict(loss.named_buffers()) and loss.k.item() == 0.0
    k_values = [0.0]
    for _ in range(4):
        fake = G(z)
        d_loss, logs = loss.discriminator_loss(D, real, fake)
        l_real = (real - D(real)[0]).abs().mean(1).mean()
        l_fake = (fake - D(fake)[0]).abs().mean(1).mean()
        torch.testing.assert_close(d_loss, l_real - k_values[-1] * l_fake)
        torch.testing.assert_close(logs["k"], torch.tensor(k_values[-1]))
        balance = 0.7 * l_real - l_fake
        k_values.append(min(max(k_values[-1] + 0.01 * balance.item(), 0.0), 1.0))
        torch.testing.assert_close(loss.pending_k, torch.tensor(k_values[-1]))
        torch.testing.assert_close(loss.k, torch.tensor(k_values[-2]))  # applied once per step, below
        torch.testing.assert_close(logs["convergence"], (l_real + balance.abs()).detach())
        loss.after_discriminator_step(D)  # the in-place update of k does not break this step's backward
        torch.testing.assert_close(loss.k, torch.tensor(k_values[-1]))
        assert loss.pending_k is None
        d_loss.backward()
        with torch.no_grad():  # change D a little so the errors move
            for p in D.parameters():
                p.add_(0.05 * torch.randn_like(p))
    assert len(set(k_values)) > 2
    loss.eval()
    k = loss.k.clone()
    loss.discriminator_loss(D, real, G(z))
    assert loss.pending_k is None
    loss.after_discriminator_step(D)
    assert torch.equal(loss.k, k)


@pytest.mark.parametrize("target", [0.0, 1.0])
def test_began_k_clamps(target):
    # real error >> fake error pushes k up (to 1); fake >> real pushes it down (to 0)
    loss = losses.create("began", lambda_k=0.5, k0=0.5)
    x = torch.randn(B, DIM)
    big, small = (lambda v: v * 0 + 3.0), (lambda v: v)
    D_real_bad = lambda v: big(v) if v is x else small(v)  # noqa: E731
    D_fake_bad = lambda v: small(v) if v is x else big(v)  # noqa: E731
    D = D_real_bad if target == 1.0 else D_fake_bad
    for _ in range(6):
        loss.discriminator_loss(D, x, torch.randn(B, DIM))
        loss.after_discriminator_step(D)
    assert loss.k.item() == target


#: hyper-parameters away from every family's defaults (also used by test_inputs_state_dict)
NON_DEFAULT_HPARAMS = {
    "gan": {"saturating": True},
    "cgan": {},
    "wgan": {"clip_value": 0.02},
    "wgan-gp": {"gp_weight": 5.0, "one_sided": True},
    "ebgan": {"margin": 3.0, "pt_weight": 0.2},
    "began": {"gamma": 0.4, "k0": 0.25},
    "lsgan": {"a": -1.0, "b": 1.0, "c": 0.0},
    "hinge": {},
}


@pytest.mark.parametrize("name", losses.available())
def test_state_dict_round_trip(name):
    hp = NON_DEFAULT_HPARAMS[name]
    loss = losses.create(name, **hp)
    if name == "began":
        loss.k.fill_(0.625)
    buf = io.BytesIO()
    torch.save(loss.state_dict(), buf)
    buf.seek(0)
    state = torch.load(buf, weights_only=True)
    restored = losses.create(name, **hp)
    restored.load_state_dict(state)
    assert restored.hparams() == loss.hparams()
    for (n1, b1), (n2, b2) in zip(loss.named_buffers(), restored.named_buffers()):
        assert n1 == n2 and torch.equal(b1, b2)
    if name == "began":
        assert restored.k.item() == 0.625


def test_state_dict_from_other_configuration_is_rejected_untouched():
    saved = losses.create("began", gamma=0.3)
    saved.k.fill_(0.9)
    other = losses.create("began", gamma=0.5)
    with pytest.raises(ValueError, match="different loss configuration"):
        other.load_state_dict(saved.state_dict())
    assert other.k.item() == 0.0  # not half-loaded
    with pytest.raises(ValueError, match="different loss configuration"):
        losses.create("wgan").load_state_dict(losses.create("wgan-gp").state_dict())


def test_loss_moves_with_to_and_checks_device():
    loss = losses.create("began").to(torch.float64)
    assert loss.k.dtype == torch.float64
    x = torch.randn(B, DIM, device="meta")
    with pytest.raises(ValueError, match=r"loss.to\(device\)"):
        loss.discriminator_loss(lambda v: v * 2, x, x)


@pytest.mark.parametrize("name", SCORE_FAMILIES + AE_FAMILIES)
def test_training_step_has_no_host_sync(name):
    from paper import no_host_sync

    G, D, real, z, labels = _setup(name)
    loss = losses.create(name)
    with no_host_sync():
        d_loss, d_logs = loss.discriminator_loss(D, real, G(z), labels)
        d_loss.backward()
        loss.after_discriminator_step(D)
        g_loss, g_logs = loss.generator_loss(D, G(z), labels)
        g_loss.backward()


@pytest.mark.parametrize("center, one_sided", [(2.0, False), (None, True)])
def test_wgan_gp_loss_object_uses_its_center_and_one_sided_penalty(center, one_sided):
    """``losses.create("wgan-gp", center=…, one_sided=…)`` is the penalty the paper oracle
    computes with those values, not the default two-sided penalty around 1."""
    import copy

    import paper

    G, D, real, z, _ = _setup("wgan-gp")
    fake = G(z).detach()
    D64 = copy.deepcopy(D).double()  # the oracle's float64 copy of the critic
    torch.manual_seed(123)
    alpha = torch.rand(B)
    norms = torch.stack([g.detach().norm() for g in paper.input_gradients(D64, paper.interpolate(real, fake, alpha))])
    if center is None:  # a center among the norms: the one-sided penalty drops the smaller ones
        center = float(norms.median())
    assert (norms < center).any() and (norms > center).any() or not one_sided
    loss = losses.create("wgan-gp", gp_weight=7.0, center=center, one_sided=one_sided)
    torch.manual_seed(123)
    d_loss, logs = loss.discriminator_loss(D, real, fake)
    critic = paper.wgan_critic_loss(D64(real.double()), D64(fake.double()))
    gp = paper.gradient_penalty(D64, real, fake, alpha, gp_weight=7.0, center=center, one_sided=one_sided)
    default_gp = paper.gradient_penalty(D64, real, fake, alpha, gp_weight=7.0)
    torch.testing.assert_close(logs["gp"].double(), gp, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(d_loss.double(), critic + gp, rtol=1e-5, atol=1e-7)
    assert not torch.isclose(gp, default_gp, rtol=1e-3)  # the test can tell them apart


def test_alternate_runs_n_critic_discriminator_steps_then_one_generator_step():
    calls = []

    def d_step():
        calls.append("d")
        return {"d_loss": torch.tensor(float(len(calls))), "shared": torch.tensor(0.0)}

    def g_step():
        calls.append("g")
        return {"g_loss": torch.tensor(9.0), "shared": torch.tensor(1.0)}

    logs = losses.alternate(3, d_step, g_step)
    assert calls == ["d", "d", "d", "g"]
    assert logs["d_loss"].item() == 3.0 and logs["g_loss"].item() == 9.0 and logs["shared"].item() == 1.0
    assert losses.alternate(losses.create("wgan-gp").n_critic, d_step, g_step) and calls.count("d") == 8
