"""Tensors fastgan does not compute with (issue "Every PyTorch transform, every backend", item 4).

fastgan computes in float16, bfloat16, float32 and float64 on dense (strided) tensors. Every
other floating dtype (the float8 family) and every other layout (sparse COO/CSR/CSC/BSR, mkldnn,
nested tensors, strided or jagged) is a ``TypeError`` naming the argument — on every backend, for
every tensor argument of every public function, before anything is computed. Meta tensors and
the tensor subclasses PyTorch's own transforms pass (FakeTensor under torch.compile, functorch's
wrappers under torch.func) keep working.
"""

from __future__ import annotations

import re

import pytest
import torch
from torch import nn

import fastgan
import fastgan.functional as FG
from fastgan import amp, losses

import kernel_cases as kc

B = 4

FLOAT8 = [getattr(torch, n) for n in ("float8_e4m3fn", "float8_e5m2", "float8_e4m3fnuz", "float8_e5m2fnuz", "float8_e8m0fnu") if hasattr(torch, n)]


def _nested(t, layout):
    if t.dim() == 0:
        return None
    parts = [t[0], t[1]] if layout == torch.strided else [t[: 2], t[: 3]]
    if layout == torch.jagged and t.dim() < 1:
        return None
    return torch.nested.nested_tensor([p.detach().clone() for p in parts], layout=layout)


def _mkldnn(t):
    if t.dtype not in (torch.float32, torch.bfloat16) or t.dim() == 0:
        return None
    return t.to_mkldnn()


#: corruption name -> t -> the corrupted tensor (None where it does not apply to t)
BAD = {
    **{str(d).replace("torch.", ""): (lambda t, d=d: t.to(d)) for d in FLOAT8},
    "sparse_coo": lambda t: t.to_sparse(),
    "sparse_csr": lambda t: t.to_sparse_csr() if t.dim() == 2 else None,
    "sparse_csc": lambda t: t.to_sparse_csc() if t.dim() == 2 else None,
    "sparse_bsr": lambda t: t.to_sparse_bsr((1, 1)) if t.dim() == 2 else None,
    "mkldnn": _mkldnn,
    "nested_strided": lambda t: _nested(t, torch.strided),
    "nested_jagged": lambda t: _nested(t, torch.jagged) if t.dim() >= 2 else None,
}


def _critic(x, **kwargs):
    return x.flatten(1).square().sum(1)


def _inputs():
    g = torch.Generator().manual_seed(0)
    return {
        "s": torch.randn(B, 1, generator=g),
        "e": torch.rand(B, generator=g) + 0.1,
        "x": torch.randn(B, 3, 4, generator=g),
        "emb": torch.randn(B, 8, generator=g),
        "a": torch.rand(B, generator=g),
        "k": torch.tensor(0.5),
    }


def _calls():
    """(function, argument name, kind of tensor, call(bad)) for every tensor argument."""
    T = _inputs()
    s, e, x, emb, a, k = T["s"], T["e"], T["x"], T["emb"], T["a"], T["k"]
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**4)
    rows = [
        ("gan_discriminator_loss", "real_logits", "s", lambda b: FG.gan_discriminator_loss(b, s)),
        ("gan_discriminator_loss", "fake_logits", "s", lambda b: FG.gan_discriminator_loss(s, b)),
        ("gan_generator_loss", "fake_logits", "s", lambda b: FG.gan_generator_loss(b)),
        ("wgan_critic_loss", "real_scores", "s", lambda b: FG.wgan_critic_loss(b, s)),
        ("wgan_critic_loss", "fake_scores", "s", lambda b: FG.wgan_critic_loss(s, b)),
        ("wgan_generator_loss", "fake_scores", "s", lambda b: FG.wgan_generator_loss(b)),
        ("lsgan_discriminator_loss", "real_out", "s", lambda b: FG.lsgan_discriminator_loss(b, s)),
        ("lsgan_discriminator_loss", "fake_out", "s", lambda b: FG.lsgan_discriminator_loss(s, b)),
        ("lsgan_generator_loss", "fake_out", "s", lambda b: FG.lsgan_generator_loss(b)),
        ("hinge_discriminator_loss", "real_scores", "s", lambda b: FG.hinge_discriminator_loss(b, s)),
        ("hinge_discriminator_loss", "fake_scores", "s", lambda b: FG.hinge_discriminator_loss(s, b)),
        ("hinge_generator_loss", "fake_scores", "s", lambda b: FG.hinge_generator_loss(b)),
        ("interpolate", "real", "x", lambda b: FG.interpolate(b, x, a)),
        ("interpolate", "fake", "x", lambda b: FG.interpolate(x, b, a)),
        ("interpolate", "alpha", "a", lambda b: FG.interpolate(x, x, b)),
        ("grad_norm_penalty", "grads", "x", lambda b: FG.grad_norm_penalty(b)),
        ("gradient_penalty", "real", "x", lambda b: FG.gradient_penalty(_critic, b, x)),
        ("gradient_penalty", "fake", "x", lambda b: FG.gradient_penalty(_critic, x, b)),
        ("gradient_penalty", "alpha", "a", lambda b: FG.gradient_penalty(_critic, x, x, alpha=b)),
        ("r1_penalty", "inputs", "x", lambda b: FG.r1_penalty(_critic, b)),
        ("reconstruction_error", "inputs", "x", lambda b: FG.reconstruction_error(b, x, p=1)),
        ("reconstruction_error", "reconstructions", "x", lambda b: FG.reconstruction_error(x, b, p=1)),
        ("ebgan_discriminator_loss", "real_energy", "e", lambda b: FG.ebgan_discriminator_loss(b, e, 1.0)),
        ("ebgan_discriminator_loss", "fake_energy", "e", lambda b: FG.ebgan_discriminator_loss(e, b, 1.0)),
        ("ebgan_generator_loss", "fake_energy", "e", lambda b: FG.ebgan_generator_loss(b, emb)),
        ("ebgan_generator_loss", "embeddings", "emb", lambda b: FG.ebgan_generator_loss(e, b)),
        ("pulling_away_term", "embeddings", "emb", lambda b: FG.pulling_away_term(b)),
        ("began_discriminator_loss", "real_error", "e", lambda b: FG.began_discriminator_loss(b, e, 0.5)),
        ("began_discriminator_loss", "fake_error", "e", lambda b: FG.began_discriminator_loss(e, b, 0.5)),
        ("began_discriminator_loss", "k", "k", lambda b: FG.began_discriminator_loss(e, e, b)),
        ("began_generator_loss", "fake_error", "e", lambda b: FG.began_generator_loss(b)),
        ("began_update", "real_error", "e", lambda b: FG.began_update(0.5, b, e)),
        ("began_update", "fake_error", "e", lambda b: FG.began_update(0.5, e, b)),
        ("began_update", "k", "k", lambda b: FG.began_update(b, e, e)),
        ("clip_weights_", "parameters[0]", "emb", lambda b: FG.clip_weights_([b])),
        ("functional.adversarial_loss", "real", "s", lambda b: fastgan.functional.adversarial_loss(b, s, "bce")),
        ("functional.adversarial_loss", "fake", "s", lambda b: fastgan.functional.adversarial_loss(s, b, "bce")),
        ("functional.grad_norm_penalty", "grads", "x", lambda b: fastgan.functional.grad_norm_penalty(b)),
        ("functional.interpolate", "real", "x", lambda b: fastgan.functional.interpolate(b, x, a)),
        ("functional.interpolate", "fake", "x", lambda b: fastgan.functional.interpolate(x, b, a)),
        ("functional.interpolate", "alpha", "a", lambda b: fastgan.functional.interpolate(x, x, b)),
        ("amp.gradient_penalty", "real", "x", lambda b: amp.gradient_penalty(_critic, b, x, scaler)),
        ("amp.gradient_penalty", "fake", "x", lambda b: amp.gradient_penalty(_critic, x, b, scaler)),
        ("amp.gradient_penalty", "alpha", "a", lambda b: amp.gradient_penalty(_critic, x, x, scaler, alpha=b)),
        ("amp.gradient_penalty(no scaler)", "alpha", "a", lambda b: amp.gradient_penalty(_critic, x, x, None, alpha=b)),
    ]
    return rows, T


CALLS, TENSORS = _calls()


def _cases():
    """Every (call, corruption) where the corruption applies to that argument's tensor."""
    out = []
    for fn, arg, kind, call in CALLS:
        for bad_name, corrupt in BAD.items():
            try:
                bad = corrupt(TENSORS[kind])
            except (RuntimeError, NotImplementedError, TypeError):  # this build cannot make it
                bad = None
            if bad is not None:
                out.append(pytest.param(fn, arg, call, bad_name, bad, id=f"{fn}-{arg}-{bad_name}"))
    return out


CASES = _cases()


def test_every_corruption_is_tried_on_every_argument():
    """The case list is not empty by accident: each argument meets float8 and sparse COO, and
    the 2-D ones the compressed sparse layouts, mkldnn and both nested layouts."""
    tried = {(c.values[0], c.values[1], c.values[3]) for c in CASES}
    for fn, arg, kind, _ in CALLS:
        expected = [n for n in BAD if n.startswith("float8") or n == "sparse_coo"]
        if TENSORS[kind].dim() == 2:
            expected += ["sparse_csr", "mkldnn", "nested_strided", "nested_jagged"]
        for n in expected:
            assert (fn, arg, n) in tried, (fn, arg, n)


@pytest.mark.parametrize("backend", kc.BACKENDS)
@pytest.mark.parametrize("fn,arg,call,bad_name,bad", CASES)
def test_unsupported_tensor_is_a_type_error_naming_the_argument(backend, fn, arg, call, bad_name, bad):
    if kc.DEVICE[backend] != "cpu":
        pytest.skip("the inputs here are CPU tensors")
    with fastgan.use_backend(backend):
        with pytest.raises(TypeError) as info:
            call(bad)
    message = str(info.value)
    assert type(info.value) is TypeError
    name = arg.split("[")[0]
    assert re.search(rf"\b{re.escape(name)}\b", message), f"the message does not name {arg}: {message!r}"
    if bad_name.startswith("float8"):
        assert "float16, bfloat16, float32 or float64" in message, message
    else:
        assert "dense (strided)" in message, message


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64], ids=str)
def test_the_four_supported_dtypes_still_compute(dtype):
    T = {k: t.to(dtype) for k, t in _inputs().items()}
    assert FG.gan_discriminator_loss(T["s"], T["s"]).dtype == dtype
    assert FG.pulling_away_term(T["emb"]).dtype == dtype
    assert FG.grad_norm_penalty(T["x"]).dtype == dtype
    assert FG.began_update(T["k"], T["e"], T["e"])[0].dtype == torch.promote_types(dtype, torch.float32)


def test_meta_and_fake_tensors_pass_the_checks():
    """FakeTensor (what torch.compile traces with) and meta tensors are strided tensors of a
    supported dtype: every function runs on them."""
    from torch._subclasses.fake_tensor import FakeTensorMode

    with FakeTensorMode():
        s, e, x, emb = torch.empty(B, 1), torch.empty(B), torch.empty(B, 3, 4), torch.empty(B, 8)
        outs = [
            FG.gan_discriminator_loss(s, s), FG.lsgan_generator_loss(s), FG.grad_norm_penalty(x),
            FG.pulling_away_term(emb), FG.ebgan_generator_loss(e, emb), FG.reconstruction_error(x, x, p=1),
            FG.interpolate(x, x, e), FG.began_update(0.5, e, e)[0],
        ]
    assert all(type(o).__name__ == "FakeTensor" for o in outs)
    m = torch.empty(B, 8, device="meta")
    assert FG.pulling_away_term(m).device.type == "meta"


def test_functorch_wrapped_tensors_pass_the_checks():
    """torch.func hands the functions its wrapped tensors (GradTrackingTensor, BatchedTensor):
    they are strided tensors of a supported dtype, and the transforms give the reference's
    derivatives."""
    T = _inputs()
    s, x, emb = T["s"], T["x"], T["emb"]
    g = torch.func.grad(FG.gan_discriminator_loss)(s, s * 2)
    s_ = s.clone().requires_grad_(True)
    (expected,) = torch.autograd.grad(FG.gan_discriminator_loss(s_, s * 2), s_)
    torch.testing.assert_close(g, expected)
    g = torch.func.grad(FG.pulling_away_term)(emb)
    e_ = emb.clone().requires_grad_(True)
    (expected,) = torch.autograd.grad(FG.pulling_away_term(e_), e_)
    torch.testing.assert_close(g, expected)
    # vmap over an outer batch of batches
    batches = torch.stack([x, 2 * x, x + 1])
    out = torch.func.vmap(FG.grad_norm_penalty)(batches)
    torch.testing.assert_close(out, torch.stack([FG.grad_norm_penalty(b) for b in batches]))


def test_critic_returning_unsupported_scores_is_a_type_error():
    x = _inputs()["x"]
    for bad in (lambda v: _critic(v).to(torch.float8_e4m3fn), lambda v: _critic(v).to_sparse(), lambda v: _critic(v).long()):
        for call in (lambda: FG.gradient_penalty(bad, x, x), lambda: FG.r1_penalty(bad, x),
                     lambda: amp.gradient_penalty(bad, x, x, torch.amp.GradScaler("cpu"))):
            with pytest.raises(TypeError, match="critic must return a floating-point tensor"):
                call()


class _LinearD(nn.Module):
    def __init__(self, dtype):
        super().__init__()
        self.dtype = dtype
        self.lin = nn.Linear(3 * 4, 1)

    def forward(self, x, labels=None):
        return self.lin(x.flatten(1)).to(self.dtype)


@pytest.mark.parametrize("name", ["gan", "wgan", "lsgan", "hinge"])
def test_loss_objects_refuse_float8_scores(name):
    x = _inputs()["x"]
    with pytest.raises(TypeError, match="float16, bfloat16, float32 or float64"):
        losses.create(name).discriminator_loss(_LinearD(torch.float8_e4m3fn), x, x)
