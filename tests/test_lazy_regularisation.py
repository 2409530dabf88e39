"""Lazy regularisation of the WGAN-GP loss object (StyleGAN2 §3.1): with ``gp_interval = k`` the
penalty runs on every k-th training-mode discriminator step with weight × k; ``k = 1`` is the
paper's loss; the step counter is in the ``state_dict`` and a resumed run continues the schedule
exactly; ``fastgan train --gp-interval``."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

import fastgan.functional as FG
from fastgan import losses
from fastgan.train import make_trainer

F64 = torch.float64


def _critic() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 1)).double()


def _batches(n: int):
    g = torch.Generator().manual_seed(1)
    return [(torch.randn(6, 3, generator=g, dtype=F64), torch.randn(6, 3, generator=g, dtype=F64)) for _ in range(n)]


def _expected(D, real, fake, weight):
    """The loss written out: WGAN critic loss, plus the penalty at the same interpolates (the
    loss object draws alpha from torch's global generator: the same seed gives the same alpha)."""
    torch.manual_seed(123)
    wgan = FG.wgan_critic_loss(D(real), D(fake))
    return wgan if weight is None else wgan + FG.gradient_penalty(D, real, fake, gp_weight=weight)


@pytest.mark.parametrize("k", [1, 2, 4])
def test_penalty_runs_every_kth_step_with_weight_times_k(k):
    D, loss = _critic(), losses.create("wgan-gp", gp_weight=3.0, gp_interval=k)
    for step, (real, fake) in enumerate(_batches(2 * k + 1)):
        torch.manual_seed(123)
        got, logs = loss.discriminator_loss(D, real, fake)
        weight = 3.0 * k if step % k == 0 else None
        exp = _expected(D, real, fake, weight)
        torch.testing.assert_close(got, exp, rtol=1e-12, atol=1e-12)
        assert (float(logs["gp"]) != 0.0) == (weight is not None)
    assert int(loss.gp_step) == 2 * k + 1


def test_interval_one_is_the_paper_loss_and_the_average_is_unchanged():
    D, real, fake = _critic(), *_batches(1)[0]
    plain, lazy = losses.create("wgan-gp"), losses.create("wgan-gp", gp_interval=4)
    total_plain = total_lazy = 0.0
    for _ in range(4):  # the same D and batch: over k steps the lazy penalties sum to the plain ones
        torch.manual_seed(5)
        total_plain = total_plain + plain.discriminator_loss(D, real, fake)[0]
        torch.manual_seed(5)
        total_lazy = total_lazy + lazy.discriminator_loss(D, real, fake)[0]
    torch.testing.assert_close(total_lazy, total_plain, rtol=1e-12, atol=1e-12)
    exp = _expected(D, real, fake, 10.0)
    torch.manual_seed(123)
    torch.testing.assert_close(losses.create("wgan-gp").discriminator_loss(D, real, fake)[0], exp)


def test_eval_mode_always_penalises_and_does_not_count():
    D, (real, fake) = _critic(), _batches(1)[0]
    loss = losses.create("wgan-gp", gp_weight=2.0, gp_interval=3).eval()
    for _ in range(3):
        torch.manual_seed(123)
        got, _ = loss.discriminator_loss(D, real, fake)
        torch.testing.assert_close(got, _expected(D, real, fake, 2.0), rtol=1e-12, atol=1e-12)
    assert int(loss.gp_step) == 0


def test_the_counter_is_saved_and_resumes_the_schedule():
    D, batches = _critic(), _batches(9)
    straight = losses.create("wgan-gp", gp_interval=3)
    first = losses.create("wgan-gp", gp_interval=3)
    gp_straight, gp_resumed = [], []
    for i, (r, f) in enumerate(batches):
        gp_straight.append(float(straight.discriminator_loss(D, r, f)[1]["gp"]) != 0)
    for r, f in batches[:4]:
        gp_resumed.append(float(first.discriminator_loss(D, r, f)[1]["gp"]) != 0)
    state = copy.deepcopy(first.state_dict())
    assert int(state["gp_step"]) == 4
    second = losses.create("wgan-gp", gp_interval=3)
    second.load_state_dict(state)
    for r, f in batches[4:]:
        gp_resumed.append(float(second.discriminator_loss(D, r, f)[1]["gp"]) != 0)
    assert gp_resumed == gp_straight == [i % 3 == 0 for i in range(9)]
    # another interval is another configuration: refused, nothing changed
    other = losses.create("wgan-gp", gp_interval=2)
    with pytest.raises(ValueError, match="different loss configuration"):
        other.load_state_dict(state)
    assert int(other.gp_step) == 0


def test_a_state_saved_before_lazy_regularisation_loads_as_interval_one():
    old = {"_extra_state": {"loss": "wgan-gp", "hparams": {"gp_weight": 10.0, "center": 1.0, "one_sided": False}}}
    loss = losses.create("wgan-gp")
    loss.load_state_dict(old)
    assert int(loss.gp_step) == 0
    with pytest.raises(ValueError, match="different loss configuration"):
        losses.create("wgan-gp", gp_interval=4).load_state_dict(old)


@pytest.mark.parametrize("bad, exc", [(0, ValueError), (-2, ValueError), (1.5, TypeError), (True, TypeError),
                                      ("4", TypeError), (None, TypeError)])
def test_bad_interval_is_refused(bad, exc):
    with pytest.raises(exc, match="gp_interval"):
        losses.create("wgan-gp", gp_interval=bad)


def test_trainer_resume_with_lazy_regularisation_is_bit_exact(tmp_path):
    kw = dict(steps=6, gp_interval=3, batch_size=32, width=16, eval_every=0)
    straight = make_trainer("wgan-gp", "ring8", **kw)
    straight.fit(progress=False)
    first = make_trainer("wgan-gp", "ring8", **kw)
    first.fit(out_dir=str(tmp_path), progress=False, stop_at=2)
    resumed = make_trainer("wgan-gp", "ring8", **kw)
    resumed.load(str(tmp_path / "checkpoint.pt"))
    assert int(resumed.loss.gp_step) == 2 * resumed.n_critic
    resumed.fit(progress=False)
    for a, b in zip(straight.D.state_dict().values(), resumed.D.state_dict().values()):
        assert torch.equal(a, b)
    assert int(resumed.loss.gp_step) == int(straight.loss.gp_step) == 6 * straight.n_critic
