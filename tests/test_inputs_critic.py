"""Critics and the penalties' other inputs (issue "Every PyTorch transform, every backend",
items 6 and 7).

* A critic whose output does not depend on its input through autograd — it ignores its input,
  returns a constant or a value of its parameters only, detaches its input, or runs under
  ``no_grad`` — is the documented ``ValueError`` ("does not depend on its input") for
  ``functional.gradient_penalty``, ``functional.r1_penalty``, ``amp.gradient_penalty`` (with and
  without a GradScaler) and the WGAN-GP loss object, eagerly and under ``torch.compile``.
* ``amp.gradient_penalty`` checks ``alpha`` exactly as ``functional.gradient_penalty`` does,
  whether a GradScaler is given, disabled, or not given.
* ``ebgan_generator_loss`` checks the embeddings' dtype and device like any other input.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import fastgan
import fastgan.functional as FG
from fastgan import amp, losses

import kernel_cases as kc

B, C = 3, 4
BACKENDS = [b for b in kc.BACKENDS if kc.DEVICE[b] == "cpu"]
INDEPENDENT = "does not depend on its input"


class _Lin(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.lin = nn.Linear(C, 1)
        self.w = nn.Parameter(torch.tensor(1.5))


_M = _Lin()


class _IgnoresInput(nn.Module):
    """A module critic that returns a value of its parameters only."""

    def __init__(self):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(1))

    def forward(self, x, **kwargs):
        return self.bias.expand(x.shape[0], 1) * 2.0


def _under_no_grad(x, **kwargs):
    with torch.no_grad():
        return _M.lin(x)


CRITICS = {
    "constant": lambda x, **k: torch.ones(x.shape[0]),
    "constant_leaf_requiring_grad": lambda x, **k: torch.zeros(x.shape[0], requires_grad=True),
    "parameter_only": lambda x, **k: _M.w.expand(x.shape[0]) * 1.0,
    "module_ignoring_input": _IgnoresInput(),
    "detached_input_times_parameter": lambda x, **k: _M.lin(x.detach()),
    "detached_input": lambda x, **k: x.detach().sum(1),
    "under_no_grad": _under_no_grad,
}


def _penalties():
    real = torch.randn(B, C, generator=torch.Generator().manual_seed(1))
    fake = torch.randn(B, C, generator=torch.Generator().manual_seed(2))
    return {
        "gradient_penalty": lambda c: FG.gradient_penalty(c, real, fake),
        "r1_penalty": lambda c: FG.r1_penalty(c, real),
        "amp.gradient_penalty(scaler)": lambda c: amp.gradient_penalty(c, real, fake, torch.amp.GradScaler("cpu", init_scale=2.0**8)),
        "amp.gradient_penalty(None)": lambda c: amp.gradient_penalty(c, real, fake, None),
        "amp.gradient_penalty(disabled)": lambda c: amp.gradient_penalty(c, real, fake, torch.amp.GradScaler("cpu", enabled=False)),
        "amp.gradient_penalty(scaler, autocast)": lambda c: _autocast(lambda: amp.gradient_penalty(c, real, fake.bfloat16(), torch.amp.GradScaler("cpu"))),
        "losses.WGANGPLoss": lambda c: losses.create("wgan-gp").discriminator_loss(c, real, fake),
    }


def _autocast(fn):
    with torch.autocast("cpu", dtype=torch.bfloat16):
        return fn()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("penalty", list(_penalties()))
@pytest.mark.parametrize("critic", list(CRITICS))
def test_critic_independent_of_its_input_is_a_value_error(backend, penalty, critic):
    with fastgan.use_backend(backend):
        with pytest.raises(ValueError, match=INDEPENDENT) as info:
            _penalties()[penalty](CRITICS[critic])
    assert type(info.value) is ValueError and "critic" in str(info.value)


@pytest.mark.parametrize("backend", BACKENDS)
def test_critic_with_zero_but_defined_input_gradient_is_accepted(backend):
    """Depending on the input with a zero derivative is not independence: the penalty is
    ``weight · center²`` (here 10 · 1)."""
    real = torch.randn(B, C)
    zero_grad = lambda x, **k: (x * 0).sum(1)  # noqa: E731
    sign = lambda x, **k: x.sign().sum(1) + _M.w  # noqa: E731  (derivative 0 almost everywhere)
    with fastgan.use_backend(backend):
        for critic in (zero_grad, sign):
            assert FG.gradient_penalty(critic, real, real).item() == 10.0
            assert FG.r1_penalty(critic, real).item() == 0.0
            assert amp.gradient_penalty(critic, real, real, torch.amp.GradScaler("cpu")).item() == 10.0


@pytest.mark.parametrize("critic", ["constant", "parameter_only", "detached_input_times_parameter"])
def test_critic_independent_of_its_input_is_refused_under_compile(critic):
    """Compiled, the input gradient is taken with torch.func.grad; the critic is refused there
    too (dynamo reports the ValueError as the reason it stops)."""
    real = torch.randn(B, C)
    torch._dynamo.reset()
    try:
        compiled = torch.compile(lambda r, f: FG.gradient_penalty(CRITICS[critic], r, f), fullgraph=True, backend="aot_eager")
        with pytest.raises(Exception) as info:
            compiled(real, real)
        assert INDEPENDENT in str(info.value), info.value
    finally:
        torch._dynamo.reset()


def test_penalties_do_not_modify_their_inputs():
    real, fake = torch.randn(B, C), torch.randn(B, C)
    real_c, fake_c = real.clone(), fake.clone()
    FG.gradient_penalty(_M.lin, real, fake)
    FG.r1_penalty(_M.lin, real)
    amp.gradient_penalty(_M.lin, real, fake, torch.amp.GradScaler("cpu"))
    assert torch.equal(real, real_c) and torch.equal(fake, fake_c)
    assert not real.requires_grad and not fake.requires_grad and real.grad is None


# ----------------------------------------------------------------- alpha: the same checks
def _gp_variants():
    return {
        "functional": lambda r, f, a: FG.gradient_penalty(_M.lin, r, f, alpha=a),
        "amp(None)": lambda r, f, a: amp.gradient_penalty(_M.lin, r, f, None, alpha=a),
        "amp(disabled)": lambda r, f, a: amp.gradient_penalty(_M.lin, r, f, torch.amp.GradScaler("cpu", enabled=False), alpha=a),
        "amp(scaler)": lambda r, f, a: amp.gradient_penalty(_M.lin, r, f, torch.amp.GradScaler("cpu"), alpha=a),
    }


BAD_ALPHAS = {
    # float64, bfloat16 and (B, 1) alphas are accepted since issue 14 (converted; below)
    "shape_bc": lambda: torch.rand(B, C),
    "shape_too_long": lambda: torch.rand(B, 1, 1),
    "numpy_int": lambda: np.ones(B, dtype=np.int64),
    "shape_short": lambda: torch.rand(B - 1),
    "0dim": lambda: torch.tensor(0.5),
    "int": lambda: torch.ones(B, dtype=torch.int64),
    "meta": lambda: torch.empty(B, device="meta"),
    "list": lambda: [0.5] * B,
    "float8": lambda: torch.rand(B).to(torch.float8_e5m2),
    "sparse": lambda: torch.rand(B).to_sparse(),
}


@pytest.mark.parametrize("bad", list(BAD_ALPHAS))
def test_amp_penalty_checks_alpha_like_the_functional_one(bad):
    """The same exception and message, with a GradScaler, a disabled one, or none."""
    real, fake = torch.randn(B, C), torch.randn(B, C)
    raised = {}
    for name, call in _gp_variants().items():
        with pytest.raises((TypeError, ValueError)) as info:
            call(real, fake, BAD_ALPHAS[bad]())
        raised[name] = (type(info.value), str(info.value))
        assert "alpha" in str(info.value)
    assert len(set(raised.values())) == 1, raised


#: alphas that the penalties convert to real's dtype and to shape (B,)
CONVERTED_ALPHAS = {
    "float64": lambda a: a.double(),
    "bfloat16_exact": lambda a: a.bfloat16(),  # alpha is rounded to bf16 first: exact in fp32
    "shape_b1": lambda a: a[:, None],
    "numpy_f64": lambda a: a.double().numpy(),
}


@pytest.mark.parametrize("form", list(CONVERTED_ALPHAS))
def test_every_penalty_converts_alpha_alike(form):
    real, fake = torch.randn(B, C), torch.randn(B, C)
    alpha = torch.rand(B).bfloat16().float()
    for name, call in _gp_variants().items():
        got, ref = call(real, fake, CONVERTED_ALPHAS[form](alpha)), call(real, fake, alpha)
        torch.testing.assert_close(got, ref, rtol=0, atol=0, msg=lambda m: f"{name}: {m}")


def test_amp_penalty_accepts_what_the_functional_one_accepts():
    real, fake = torch.randn(B, C), torch.randn(B, C)
    alpha = torch.rand(B)
    values = {name: call(real, fake, alpha) for name, call in _gp_variants().items()}
    ref = values.pop("functional")
    assert torch.equal(values.pop("amp(None)"), ref) and torch.equal(values.pop("amp(disabled)"), ref)
    torch.testing.assert_close(values.pop("amp(scaler)"), ref)
    # under autocast real and fake may differ in precision; alpha in real's (fp32) dtype is fine
    with torch.autocast("cpu", dtype=torch.bfloat16):
        outs = [call(real, fake.bfloat16(), alpha) for call in _gp_variants().values()]
    assert all(torch.isfinite(o) for o in outs)


def test_amp_mixed_precision_outside_autocast_checks_alpha_against_the_common_dtype():
    """amp.gradient_penalty also takes an fp32 real with a bf16 fake outside autocast (both are
    interpolated in fp32): alpha is converted to fp32, with or without a scaler."""
    real, fake = torch.randn(B, C), torch.randn(B, C).bfloat16()
    alpha = torch.rand(B).bfloat16()
    for scaler in (None, torch.amp.GradScaler("cpu", enabled=False), torch.amp.GradScaler("cpu")):
        ref = amp.gradient_penalty(_M.lin, real, fake, scaler, alpha=alpha.float())
        assert torch.isfinite(ref)
        assert torch.equal(amp.gradient_penalty(_M.lin, real, fake, scaler, alpha=alpha), ref)


# ------------------------------------------------------------------ EBGAN's embeddings
def test_ebgan_generator_loss_checks_embeddings_dtype_and_device():
    e = torch.rand(B) + 0.1
    with pytest.raises(TypeError, match=r"embeddings has dtype torch.float64 .* expected the same dtype"):
        FG.ebgan_generator_loss(e, torch.randn(B, 8, dtype=torch.float64))
    with pytest.raises(TypeError, match="embeddings"):
        FG.ebgan_generator_loss(e, torch.randn(B, 8).bfloat16())
    with pytest.raises(ValueError, match=r"embeddings is on meta .* expected the same device"):
        FG.ebgan_generator_loss(e, torch.empty(B, 8, device="meta"))
    # under autocast the precisions may differ (an encoder's bf16 output, fp32 energies)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = FG.ebgan_generator_loss(e, torch.randn(B, 8).bfloat16())
    assert torch.isfinite(out)


@pytest.mark.parametrize("penalty", list(_penalties()))
def test_penalties_under_inference_mode_say_so(penalty):
    """Autograd does not run under torch.inference_mode(): a clear RuntimeError, not the
    'critic does not depend on its input' error."""
    with torch.inference_mode():
        with pytest.raises(RuntimeError, match=r"torch\.inference_mode\(\)"):
            _penalties()[penalty](_M.lin)


def test_penalties_take_inference_tensors_made_earlier():
    """Inputs created under inference_mode (a frozen data pipeline) work outside it, as any
    tensor does, and give the same penalty."""
    real, fake, alpha = torch.randn(B, C), torch.randn(B, C), torch.rand(B)
    with torch.inference_mode():
        real_i, fake_i, alpha_i = real.clone(), fake.clone(), alpha.clone()
    assert real_i.is_inference()
    pairs = [
        (lambda r, f, a: FG.gradient_penalty(_M.lin, r, f, alpha=a)),
        (lambda r, f, a: FG.r1_penalty(_M.lin, r)),
        (lambda r, f, a: amp.gradient_penalty(_M.lin, r, f, torch.amp.GradScaler("cpu"), alpha=a)),
        (lambda r, f, a: amp.gradient_penalty(_M.lin, r, f, None, alpha=a)),
    ]
    for fn in pairs:
        got = fn(real_i, fake_i, alpha_i)
        torch.testing.assert_close(got, fn(real, fake, alpha))
        got.backward()  # back-propagates into the critic's parameters
