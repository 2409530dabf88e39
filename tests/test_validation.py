"""Every bad input gets a clear ValueError/TypeError that names the argument (docs/design.md §2; issue
"Foundation", point 4). Validation reads metadata only: the whole API also runs on the ``meta``
device, where no tensor has values to read."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import fastgan
import fastgan.functional as FG
from fastgan import losses

B = 4


def _x(*shape, dtype=torch.float32, device="cpu"):
    return torch.randn(*shape, dtype=dtype, device=device)


def _critic(x, **kwargs):
    return (x.flatten(1) ** 2).sum(1)


S = _x(B, 1)  # discriminator scores
E = torch.rand(B) + 0.1  # per-sample energies / errors
X = _x(B, 3, 5, 5)  # images
INT = torch.ones(B, 1, dtype=torch.int64)
META = torch.empty(B, 1, device="meta")

# (id, call, exception, words that must appear in the message)
CASES = [
    # ---- tensors: type, dtype, shape, device, empty batch
    ("gan_d_not_tensor", lambda: FG.gan_discriminator_loss([1.0] * B, S), TypeError, ["real_logits", "torch.Tensor"]),
    ("gan_d_int", lambda: FG.gan_discriminator_loss(INT, S), TypeError, ["real_logits", "floating"]),
    ("gan_d_bool", lambda: FG.gan_discriminator_loss(S, INT.bool()), TypeError, ["fake_logits", "floating"]),
    ("gan_d_0dim", lambda: FG.gan_discriminator_loss(torch.tensor(1.0), S), ValueError, ["real_logits", "batch"]),
    ("gan_d_empty", lambda: FG.gan_discriminator_loss(torch.empty(0, 1), S), ValueError, ["real_logits", "empty batch"]),
    ("gan_d_empty_dim", lambda: FG.gan_discriminator_loss(torch.empty(B, 0), torch.empty(B, 0)), ValueError, ["real_logits", "empty"]),
    ("gan_d_shape", lambda: FG.gan_discriminator_loss(S, _x(B, 2)), ValueError, ["fake_logits", "shape"]),
    ("gan_d_dtype", lambda: FG.gan_discriminator_loss(S, S.double()), TypeError, ["fake_logits", "dtype"]),
    ("gan_d_device", lambda: FG.gan_discriminator_loss(S, META), ValueError, ["fake_logits", "device"]),
    ("gan_g_int", lambda: FG.gan_generator_loss(INT), TypeError, ["fake_logits"]),
    ("gan_g_saturating", lambda: FG.gan_generator_loss(S, saturating="yes"), TypeError, ["saturating", "bool"]),
    ("wgan_c_shape", lambda: FG.wgan_critic_loss(_x(B, 1, 3, 3), _x(B, 1, 3, 4)), ValueError, ["fake_scores", "shape"]),
    ("wgan_g_empty", lambda: FG.wgan_generator_loss(torch.empty(0)), ValueError, ["fake_scores", "empty"]),
    ("lsgan_d_int", lambda: FG.lsgan_discriminator_loss(S, INT), TypeError, ["fake_out"]),
    ("lsgan_g_empty", lambda: FG.lsgan_generator_loss(torch.empty(0, 1)), ValueError, ["fake_out"]),
    ("hinge_d_device", lambda: FG.hinge_discriminator_loss(META, S), ValueError, ["real_scores", "device"]),
    ("hinge_g_int", lambda: FG.hinge_generator_loss(INT), TypeError, ["fake_scores"]),
    # ---- interpolate / alpha
    ("interp_alpha_2d", lambda: FG.interpolate(X, X, torch.rand(B, 1)), ValueError, ["alpha", "(B,)"]),
    ("interp_alpha_len", lambda: FG.interpolate(X, X, torch.rand(B - 1)), ValueError, ["alpha", "(B,)"]),
    ("interp_alpha_scalar", lambda: FG.interpolate(X, X, torch.tensor(0.5)), ValueError, ["alpha", "(B,)"]),
    ("interp_alpha_int", lambda: FG.interpolate(X, X, torch.ones(B, dtype=torch.int32)), TypeError, ["alpha"]),
    ("interp_alpha_dtype", lambda: FG.interpolate(X, X, torch.rand(B, dtype=torch.float64)), TypeError, ["alpha", "dtype"]),
    ("interp_alpha_device", lambda: FG.interpolate(X, X, torch.empty(B, device="meta")), ValueError, ["alpha", "device"]),
    ("interp_shape", lambda: FG.interpolate(X, _x(B, 3, 5, 4), torch.rand(B)), ValueError, ["fake", "shape"]),
    ("interp_int", lambda: FG.interpolate(X.long(), X.long(), torch.rand(B)), TypeError, ["real"]),
    ("interp_empty", lambda: FG.interpolate(torch.empty(0, 3), torch.empty(0, 3), torch.empty(0)), ValueError, ["real", "empty"]),
    # ---- gradient norm penalty and the penalties built on it
    ("gnp_int", lambda: FG.grad_norm_penalty(X.long()), TypeError, ["grads"]),
    ("gnp_empty", lambda: FG.grad_norm_penalty(torch.empty(0, 3)), ValueError, ["grads", "empty"]),
    ("gnp_center_neg", lambda: FG.grad_norm_penalty(X, center=-1.0), ValueError, ["center", ">= 0"]),
    ("gnp_center_nan", lambda: FG.grad_norm_penalty(X, center=math.nan), ValueError, ["center", "NaN"]),
    ("gnp_center_str", lambda: FG.grad_norm_penalty(X, center="1"), TypeError, ["center", "number"]),
    ("gnp_one_sided", lambda: FG.grad_norm_penalty(X, one_sided=1), TypeError, ["one_sided", "bool"]),
    ("gp_weight_neg", lambda: FG.gradient_penalty(_critic, X, X, gp_weight=-10.0), ValueError, ["gp_weight", ">= 0"]),
    ("gp_weight_inf", lambda: FG.gradient_penalty(_critic, X, X, gp_weight=math.inf), ValueError, ["gp_weight", "finite"]),
    ("gp_fake_shape", lambda: FG.gradient_penalty(_critic, X, _x(B, 3, 5)), ValueError, ["fake", "shape"]),
    ("gp_alpha_shape", lambda: FG.gradient_penalty(_critic, X, X, alpha=torch.rand(B, 3, 1, 1)), ValueError, ["alpha", "(B,)"]),
    ("gp_alpha_batch", lambda: FG.gradient_penalty(_critic, X, X, alpha=torch.rand(B + 1, 1, 1, 1)), ValueError, ["alpha", "(B,)"]),
    ("gp_alpha_int", lambda: FG.gradient_penalty(_critic, X, X, alpha=torch.ones(B, dtype=torch.int32)), TypeError, ["alpha", "floating-point"]),
    ("gp_center", lambda: FG.gradient_penalty(_critic, X, X, center=-0.5), ValueError, ["center"]),
    ("gp_critic", lambda: FG.gradient_penalty("critic", X, X), TypeError, ["critic", "callable"]),
    ("gp_critic_output", lambda: FG.gradient_penalty(lambda x: (x, x), X, X), TypeError, ["critic", "tensor"]),
    ("r1_gamma_neg", lambda: FG.r1_penalty(_critic, X, gamma=-1.0), ValueError, ["gamma", ">= 0"]),
    ("r1_inputs_int", lambda: FG.r1_penalty(_critic, X.long()), TypeError, ["inputs"]),
    ("r1_empty", lambda: FG.r1_penalty(_critic, torch.empty(0, 3)), ValueError, ["inputs", "empty"]),
    # ---- LSGAN targets
    ("lsgan_a_str", lambda: FG.lsgan_discriminator_loss(S, S, a="0"), TypeError, ["a", "number"]),
    ("lsgan_b_nan", lambda: FG.lsgan_discriminator_loss(S, S, b=math.nan), ValueError, ["b", "NaN"]),
    ("lsgan_c_tensor", lambda: FG.lsgan_generator_loss(S, c=torch.tensor(1.0)), TypeError, ["c", "number"]),
    # ---- reconstruction error
    ("rec_p3", lambda: FG.reconstruction_error(X, X, p=3), ValueError, ["p", "1 or 2"]),
    ("rec_p_bool", lambda: FG.reconstruction_error(X, X, p=True), ValueError, ["p", "1 or 2"]),
    ("rec_p_half", lambda: FG.reconstruction_error(X, X, p=1.5), ValueError, ["p"]),
    ("rec_shape", lambda: FG.reconstruction_error(X, _x(B, 3, 5, 6), 1), ValueError, ["reconstructions", "shape"]),
    ("rec_dtype", lambda: FG.reconstruction_error(X, X.double(), 1), TypeError, ["reconstructions", "dtype"]),
    ("rec_int", lambda: FG.reconstruction_error(X.int(), X.int(), 1), TypeError, ["inputs"]),
    ("rec_empty", lambda: FG.reconstruction_error(torch.empty(0, 2), torch.empty(0, 2), 1), ValueError, ["inputs", "empty"]),
    # ---- EBGAN
    ("ebgan_margin_neg", lambda: FG.ebgan_discriminator_loss(E, E, margin=-1.0), ValueError, ["margin", ">= 0"]),
    ("ebgan_margin_none", lambda: FG.ebgan_discriminator_loss(E, E, margin=None), TypeError, ["margin"]),
    ("ebgan_energy_2d", lambda: FG.ebgan_discriminator_loss(E[:, None], E, 1.0), ValueError, ["real_energy", "(B,)"]),
    ("ebgan_energy_int", lambda: FG.ebgan_discriminator_loss(E, E.long(), 1.0), TypeError, ["fake_energy"]),
    ("ebgan_energy_empty", lambda: FG.ebgan_discriminator_loss(torch.empty(0), E, 1.0), ValueError, ["real_energy", "empty"]),
    ("ebgan_energy_device", lambda: FG.ebgan_discriminator_loss(E, torch.empty(B, device="meta"), 1.0), ValueError, ["fake_energy", "device"]),
    ("ebgan_g_pt_neg", lambda: FG.ebgan_generator_loss(E, _x(B, 8), pt_weight=-0.1), ValueError, ["pt_weight", ">= 0"]),
    ("ebgan_g_emb_batch", lambda: FG.ebgan_generator_loss(E, _x(B + 1, 8)), ValueError, ["embeddings", "batch"]),
    ("ebgan_g_emb_one", lambda: FG.ebgan_generator_loss(E[:1], _x(1, 8)), ValueError, ["embeddings", "at least 2"]),
    ("ebgan_g_emb_int", lambda: FG.ebgan_generator_loss(E, torch.ones(B, 8, dtype=torch.long)), TypeError, ["embeddings"]),
    ("pt_one", lambda: FG.pulling_away_term(_x(1, 8)), ValueError, ["embeddings", "at least 2"]),
    ("pt_empty", lambda: FG.pulling_away_term(torch.empty(0, 8)), ValueError, ["embeddings", "empty"]),
    ("pt_int", lambda: FG.pulling_away_term(torch.ones(B, 8, dtype=torch.long)), TypeError, ["embeddings"]),
    # ---- BEGAN
    ("began_k_big", lambda: FG.began_discriminator_loss(E, E, k=1.5), ValueError, ["k", "[0, 1]"]),
    ("began_k_neg", lambda: FG.began_discriminator_loss(E, E, k=-0.1), ValueError, ["k", "[0, 1]"]),
    ("began_k_shape", lambda: FG.began_discriminator_loss(E, E, k=torch.zeros(1)), ValueError, ["k", "0-dim"]),
    ("began_k_int", lambda: FG.began_discriminator_loss(E, E, k=torch.tensor(0)), TypeError, ["k"]),
    ("began_k_device", lambda: FG.began_discriminator_loss(E, E, k=torch.empty((), device="meta")), ValueError, ["k", "device"]),
    ("began_err_2d", lambda: FG.began_discriminator_loss(E, E[:, None], k=0.0), ValueError, ["fake_error", "(B,)"]),
    ("began_g_int", lambda: FG.began_generator_loss(E.long()), TypeError, ["fake_error"]),
    ("began_upd_gamma", lambda: FG.began_update(0.0, E, E, gamma=-0.5), ValueError, ["gamma", ">= 0"]),
    ("began_upd_lambda", lambda: FG.began_update(0.0, E, E, lambda_k=-1e-3), ValueError, ["lambda_k", ">= 0"]),
    ("began_upd_k", lambda: FG.began_update(2.0, E, E), ValueError, ["k", "[0, 1]"]),
    ("began_upd_err_dtype", lambda: FG.began_update(0.0, E, E.double()), TypeError, ["fake_error", "dtype"]),
    # ---- WGAN clipping
    ("clip_neg", lambda: FG.clip_weights_(nn.Linear(2, 2), clip_value=-0.01), ValueError, ["clip_value", ">= 0"]),
    ("clip_zero", lambda: FG.clip_weights_(nn.Linear(2, 2), clip_value=0), ValueError, ["clip_value", "> 0"]),
    ("clip_not_params", lambda: FG.clip_weights_(42), TypeError, ["parameters"]),
    ("clip_int_param", lambda: FG.clip_weights_([torch.ones(2, dtype=torch.long)]), TypeError, ["parameters[0]"]),
    # ---- operators called directly
    ("op_kind", lambda: fastgan.functional.adversarial_loss(S, S, "bogus"), ValueError, ["kind", "bce"]),
    ("op_both_none", lambda: fastgan.functional.adversarial_loss(None, None, "bce"), ValueError, ["real", "fake"]),
    ("op_margin_neg", lambda: fastgan.functional.adversarial_loss(S, S, "hinge", margin=-1.0), ValueError, ["margin"]),
    ("op_gnp_int", lambda: fastgan.functional.grad_norm_penalty(X.long()), TypeError, ["grads"]),
    ("op_rec_p", lambda: fastgan.functional.reconstruction_error(X, X, 0), ValueError, ["p"]),
    ("op_interp_alpha", lambda: fastgan.functional.interpolate(X, X, torch.rand(2 * B)), ValueError, ["alpha"]),
    # ---- loss objects and the registry
    ("create_unknown", lambda: losses.create("vanilla"), ValueError, ["vanilla", "wgan-gp"]),
    ("create_name_type", lambda: losses.create(3), TypeError, ["name"]),
    ("create_hparam", lambda: losses.create("wgan", lr=1e-4), TypeError, ["lr", "clip_value"]),
    ("create_clip", lambda: losses.create("wgan", clip_value=-1), ValueError, ["clip_value"]),
    ("create_gp_weight", lambda: losses.create("wgan-gp", gp_weight=-10), ValueError, ["gp_weight"]),
    ("create_margin", lambda: losses.create("ebgan", margin=-1.0), ValueError, ["margin"]),
    ("create_pt", lambda: losses.create("ebgan", pt_weight=-1.0), ValueError, ["pt_weight"]),
    ("create_gamma", lambda: losses.create("began", gamma=-0.5), ValueError, ["gamma"]),
    ("create_k0", lambda: losses.create("began", k0=2.0), ValueError, ["k0", "[0, 1]"]),
    ("create_saturating", lambda: losses.create("gan", saturating="no"), TypeError, ["saturating"]),
    ("cgan_no_labels", lambda: losses.create("cgan").discriminator_loss(nn.Linear(3, 1), _x(B, 3), _x(B, 3)), ValueError, ["labels"]),
    ("loss_forward", lambda: losses.create("gan")(S), TypeError, ["discriminator_loss"]),
    # ---- backends
    ("backend_unknown", lambda: fastgan.use_backend("fast"), ValueError, ["fast", "reference"]),
    ("backend_type", lambda: fastgan.use_backend(None), TypeError, ["backend"]),
]


@pytest.mark.parametrize("call,exc,words", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_raises_clear_error(call, exc, words):
    with pytest.raises(exc) as info:
        call()
    message = str(info.value)
    for word in words:
        assert word in message, f"{word!r} not in {message!r}"
    # the exact type asked for, not a subclass from deep inside torch
    assert type(info.value) is exc


def test_unavailable_backend_is_a_clear_error():
    unavailable = [n for n, (ok, _) in fastgan.backends.backend_status().items() if not ok]
    for name in unavailable:
        with pytest.raises(fastgan.BackendUnavailableError, match=f"'{name}' is not available"):
            fastgan.use_backend(name)
    assert fastgan.get_backend() == "auto"


def _meta_calls():
    """Every public function on meta tensors: there are no values to read, so any host sync or
    value-dependent branch fails."""
    m = dict(device="meta")
    s, e, x = torch.empty(B, 1, **m), torch.empty(B, **m), torch.empty(B, 3, 4, 4, **m)
    emb, a = torch.empty(B, 8, **m), torch.empty(B, **m)
    k = torch.empty((), **m)
    return [
        lambda: FG.gan_discriminator_loss(s, s),
        lambda: FG.gan_generator_loss(s, saturating=True),
        lambda: FG.wgan_critic_loss(s, s),
        lambda: FG.wgan_generator_loss(s),
        lambda: FG.lsgan_discriminator_loss(s, s),
        lambda: FG.lsgan_generator_loss(s),
        lambda: FG.hinge_discriminator_loss(s, s),
        lambda: FG.hinge_generator_loss(s),
        lambda: FG.interpolate(x, x, a),
        lambda: FG.grad_norm_penalty(x, one_sided=True),
        lambda: FG.reconstruction_error(x, x, p=2),
        lambda: FG.ebgan_discriminator_loss(e, e, 1.0),
        lambda: FG.ebgan_generator_loss(e, emb),
        lambda: FG.pulling_away_term(emb),
        lambda: FG.began_discriminator_loss(e, e, k),
        lambda: FG.began_generator_loss(e),
        lambda: FG.began_update(k, e, e)[0],
        lambda: FG.began_update(0.3, e, e)[1],
    ]


@pytest.mark.parametrize("i", range(len(_meta_calls())))
def test_runs_on_meta_tensors(i):
    out = _meta_calls()[i]()
    assert out.device.type == "meta"
