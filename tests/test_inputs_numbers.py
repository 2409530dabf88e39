"""Numeric hyper-parameters (issue "Every PyTorch transform, every backend", item 5).

Every numeric hyper-parameter of every public function and loss object takes a real number — a
Python int or float, a NumPy integer or floating scalar, a Fraction — and computes exactly as with
the float it converts to. It refuses, with an error naming the argument:

* bools (Python and NumPy), strings, None, tensors, complex numbers: ``TypeError``;
* NaN, and ±inf where the math needs a finite value (every hyper-parameter here): ``ValueError``;
* an integer (or longdouble, Fraction) too large for a float — ``10**400`` — ``ValueError``, not
  ``OverflowError``;
* a value out of the parameter's range (negative weights, k outside [0, 1], clip_value 0):
  ``ValueError``.
"""

from __future__ import annotations

import fractions
import math
import re
from decimal import Decimal

import numpy as np
import pytest
import torch

import fastgan
import fastgan.functional as FG
from fastgan import amp, losses

import kernel_cases as kc

B = 4
_g = torch.Generator().manual_seed(0)
S = torch.randn(B, 1, generator=_g)
S2 = torch.randn(B, 1, generator=_g)
E = torch.rand(B, generator=_g) + 0.1
E2 = torch.rand(B, generator=_g) + 0.1
X = torch.randn(B, 3, 4, generator=_g)
X2 = torch.randn(B, 3, 4, generator=_g)
EMB = torch.randn(B, 8, generator=_g)
ALPHA = torch.rand(B, generator=_g)


def _critic(x, **kwargs):
    return x.flatten(1).square().sum(1) * 0.3


def _param():
    return torch.nn.Parameter(torch.linspace(-1, 1, 7))


# (function, argument, range, call(value) -> a tensor to compare)
# range: "real" (any finite), "nonneg" (finite >= 0), "positive" (finite > 0), "unit" ([0, 1])
PARAMS = [
    ("grad_norm_penalty", "center", "nonneg", lambda v: FG.grad_norm_penalty(X, center=v)),
    ("gradient_penalty", "gp_weight", "nonneg", lambda v: FG.gradient_penalty(_critic, X, X2, gp_weight=v, alpha=ALPHA)),
    ("gradient_penalty", "center", "nonneg", lambda v: FG.gradient_penalty(_critic, X, X2, center=v, alpha=ALPHA)),
    ("r1_penalty", "gamma", "nonneg", lambda v: FG.r1_penalty(_critic, X, gamma=v)),
    ("lsgan_discriminator_loss", "a", "real", lambda v: FG.lsgan_discriminator_loss(S, S2, a=v)),
    ("lsgan_discriminator_loss", "b", "real", lambda v: FG.lsgan_discriminator_loss(S, S2, b=v)),
    ("lsgan_generator_loss", "c", "real", lambda v: FG.lsgan_generator_loss(S, c=v)),
    ("ebgan_discriminator_loss", "margin", "nonneg", lambda v: FG.ebgan_discriminator_loss(E, E2, v)),
    ("ebgan_generator_loss", "pt_weight", "nonneg", lambda v: FG.ebgan_generator_loss(E, EMB, pt_weight=v)),
    ("began_discriminator_loss", "k", "unit", lambda v: FG.began_discriminator_loss(E, E2, v)),
    ("began_update", "k", "unit", lambda v: torch.stack(FG.began_update(v, E, E2))),
    ("began_update", "gamma", "nonneg", lambda v: torch.stack(FG.began_update(0.5, E, E2, gamma=v))),
    ("began_update", "lambda_k", "nonneg", lambda v: torch.stack(FG.began_update(0.5, E, E2, lambda_k=v))),
    ("clip_weights_", "clip_value", "positive", lambda v: (lambda p: (FG.clip_weights_(p, v), p.detach())[1])(_param())),
    ("functional.adversarial_loss", "real_target", "real", lambda v: fastgan.functional.adversarial_loss(S, S2, "lsgan", real_target=v)),
    ("functional.adversarial_loss", "fake_target", "real", lambda v: fastgan.functional.adversarial_loss(S, S2, "lsgan", fake_target=v)),
    ("functional.adversarial_loss", "margin", "nonneg", lambda v: fastgan.functional.adversarial_loss(S, S2, "hinge", margin=v)),
    ("functional.grad_norm_penalty", "center", "nonneg", lambda v: fastgan.functional.grad_norm_penalty(X, v)),
    ("amp.gradient_penalty", "gp_weight", "nonneg", lambda v: amp.gradient_penalty(_critic, X, X2, torch.amp.GradScaler("cpu"), gp_weight=v, alpha=ALPHA)),
    ("amp.gradient_penalty", "center", "nonneg", lambda v: amp.gradient_penalty(_critic, X, X2, None, center=v, alpha=ALPHA)),
    # loss objects: the value is what the built object keeps
    ("losses.WGANLoss", "clip_value", "positive", lambda v: torch.tensor(losses.create("wgan", clip_value=v).clip_value)),
    ("losses.WGANGPLoss", "gp_weight", "nonneg", lambda v: torch.tensor(losses.create("wgan-gp", gp_weight=v).gp_weight)),
    ("losses.WGANGPLoss", "center", "nonneg", lambda v: torch.tensor(losses.create("wgan-gp", center=v).center)),
    ("losses.LSGANLoss", "a", "real", lambda v: torch.tensor(losses.create("lsgan", a=v).a)),
    ("losses.LSGANLoss", "b", "real", lambda v: torch.tensor(losses.create("lsgan", b=v).b)),
    ("losses.LSGANLoss", "c", "real", lambda v: torch.tensor(losses.create("lsgan", c=v).c)),
    ("losses.EBGANLoss", "margin", "nonneg", lambda v: torch.tensor(losses.create("ebgan", margin=v).margin)),
    ("losses.EBGANLoss", "pt_weight", "nonneg", lambda v: torch.tensor(losses.create("ebgan", pt_weight=v).pt_weight)),
    ("losses.BEGANLoss", "gamma", "nonneg", lambda v: torch.tensor(losses.create("began", gamma=v).gamma)),
    ("losses.BEGANLoss", "lambda_k", "nonneg", lambda v: torch.tensor(losses.create("began", lambda_k=v).lambda_k)),
    ("losses.BEGANLoss", "k0", "unit", lambda v: losses.create("began", k0=v).k),
]
IDS = [f"{fn}-{arg}" for fn, arg, _, _ in PARAMS]

_HUGE_LONGDOUBLE = np.longdouble("1e400") if np.finfo(np.longdouble).max > 1e400 else None

#: (id, value, exception, message part) refused by every parameter whatever its range
BAD_FOR_ALL = [
    ("int-overflow", 10**400, ValueError, "too large for a float"),
    ("neg-int-overflow", -(10**400), ValueError, "too large for a float"),
    ("fraction-overflow", fractions.Fraction(10**400, 3), ValueError, "too large for a float"),
    ("nan", math.nan, ValueError, "NaN"),
    ("np-nan", np.float32("nan"), ValueError, "NaN"),
    ("inf", math.inf, ValueError, None),
    ("neg-inf", -math.inf, ValueError, None),
    ("np-inf", np.float64("inf"), ValueError, None),
    ("bool", True, TypeError, "real number"),
    ("np-bool", np.bool_(False), TypeError, "real number"),
    ("str", "0.5", TypeError, "real number"),
    ("none", None, TypeError, "real number"),
    ("tensor", torch.tensor(0.5), TypeError, "real number"),
    ("complex", 0.5 + 0j, TypeError, "real number"),
    ("decimal", Decimal("0.5"), TypeError, "real number"),
]
if _HUGE_LONGDOUBLE is not None:
    BAD_FOR_ALL.append(("longdouble-overflow", _HUGE_LONGDOUBLE, ValueError, "too large for a float"))

#: values refused by range
BAD_FOR_RANGE = {
    "real": [],
    "nonneg": [-1, -1e-300, np.float32(-0.5)],
    "positive": [0, 0.0, -1, np.int64(0)],
    "unit": [-0.01, 1.01, 2, np.float64(-1e-9)],
}


def _names_argument(message: str, arg: str) -> bool:
    return re.search(rf"\b{re.escape(arg)}\b", message) is not None


@pytest.mark.parametrize("backend", kc.BACKENDS)
@pytest.mark.parametrize("fn,arg,kind,call", PARAMS, ids=IDS)
def test_bad_numbers_are_refused_naming_the_argument(backend, fn, arg, kind, call):
    if kc.DEVICE[backend] != "cpu":
        pytest.skip("the inputs here are CPU tensors")
    # BEGAN's k may also be a 0-dim tensor (its value stays on the device)
    bad = [(i, val, exc, part) for i, val, exc, part in BAD_FOR_ALL if not (arg == "k" and i == "tensor")]
    bad += [(f"range-{val!r}", val, ValueError, None) for val in BAD_FOR_RANGE[kind]]
    with fastgan.use_backend(backend):
        for case, value, exc, part in bad:
            with pytest.raises(Exception) as info:
                call(value)
            err = info.value
            assert type(err) is exc, f"{case}: {type(err).__name__}: {err}"
            assert _names_argument(str(err), arg), f"{case}: the message does not name {arg}: {err}"
            if part is not None:
                assert part in str(err), f"{case}: {part!r} not in {err}"


def _good_values(kind):
    """Equal values in every accepted type; for [0, 1] and the other ranges alike."""
    return [
        (0.5, [np.float32(0.5), np.float64(0.5), np.float16(0.5), fractions.Fraction(1, 2), np.longdouble(0.5)]),
        (1.0, [1, np.int64(1), np.int32(1), np.uint8(1)]),
    ] + ([(-2.0, [-2, np.int16(-2), np.float32(-2.0)])] if kind == "real" else [])


@pytest.mark.parametrize("backend", kc.BACKENDS)
@pytest.mark.parametrize("fn,arg,kind,call", PARAMS, ids=IDS)
def test_numpy_and_other_real_numbers_give_the_float_result(backend, fn, arg, kind, call):
    if kc.DEVICE[backend] != "cpu":
        pytest.skip("the inputs here are CPU tensors")
    if backend == "triton" and fn in ("gradient_penalty", "amp.gradient_penalty", "r1_penalty"):
        pytest.skip("slow in Triton's interpreter; the value checks do not depend on the backend")
    with fastgan.use_backend(backend):
        for reference, others in _good_values(kind):
            torch.manual_seed(0)
            expected = call(reference)
            for value in others:
                torch.manual_seed(0)
                got = call(value)
                assert torch.equal(got, expected), f"{type(value).__name__}({value}): {got} != {expected}"


def test_large_but_finite_integers_are_accepted():
    """An integer that fits a float is fine (rounded to the nearest float), however large."""
    assert losses.create("ebgan", margin=10**300).margin == float(10**300)
    assert math.isfinite(FG.grad_norm_penalty(X, center=2**60).item())


def test_reconstruction_error_p_takes_numpy_integers():
    expected = FG.reconstruction_error(X, X2, 2)
    for p in (np.int64(2), np.int8(2), 2.0, np.float64(2.0), np.float32(2.0)):
        assert torch.equal(FG.reconstruction_error(X, X2, p), expected), p
    for p in (10**400, np.int64(3), True, np.bool_(True), "2", 2.5, np.float32(1.5), np.float32("nan")):
        with pytest.raises(ValueError, match=r"\bp\b"):
            FG.reconstruction_error(X, X2, p)


def test_flags_take_numpy_bools_but_not_ints():
    assert FG.gan_generator_loss(S, saturating=np.bool_(True)).item() == FG.gan_generator_loss(S, saturating=True).item()
    assert losses.create("gan", saturating=np.bool_(True)).saturating is True
    for bad in (1, 0, "yes", None):
        with pytest.raises(TypeError, match="saturating"):
            FG.gan_generator_loss(S, saturating=bad)
        with pytest.raises(TypeError, match="one_sided"):
            FG.grad_norm_penalty(X, one_sided=bad)


def test_stored_hyper_parameters_are_plain_floats():
    """NumPy scalars are stored as Python floats: the configuration in the state_dict loads
    with ``weights_only=True`` and compares equal to one built from floats."""
    loss = losses.create("lsgan", a=np.float32(-1.0), b=np.int64(1), c=fractions.Fraction(1, 2))
    assert all(type(x) is float for x in loss.hparams().values())
    losses.create("lsgan", a=-1.0, b=1.0, c=0.5).load_state_dict(loss.state_dict())
