"""BEGAN's k keeps its precision (issue "Every PyTorch transform, every backend", item 1).

k moves by ``lambda_k · balance`` per step — about 1e-4 with the paper's lambda_k = 0.001 — which
rounds away in a float16 k (spacing 2.4e-4 near 0.3) and even more so in a bfloat16 one (2e-3):
a k cast down with the module would freeze silently. The loss object keeps k in float32 (or
float64) through every float cast of the module, while device moves still apply to it.
"""

from __future__ import annotations

import io

import pytest
import torch
from torch import nn

import fastgan
import fastgan.functional as FG
from fastgan import losses

import kernel_cases as kc

B, DIM = 8, 6
K0 = 0.3  # not representable in fp16 / bf16: a cast that rounds k shows at once
LAMBDA_K = 1e-3

CASTS = {
    "half": lambda m: m.half(),
    "bfloat16": lambda m: m.bfloat16(),
    "to_fp16": lambda m: m.to(torch.float16),
    "to_bf16": lambda m: m.to(torch.bfloat16),
    "to_cpu_bf16": lambda m: m.to("cpu", torch.bfloat16),
    "to_kw_dtype": lambda m: m.to(dtype=torch.float16),
    "type_half": lambda m: m.type(torch.float16),
    "float8": lambda m: m.to(torch.float8_e4m3fn),
}


class _Model(nn.Module):
    """A model that holds the loss among its submodules, as a training wrapper would."""

    def __init__(self):
        super().__init__()
        self.D = nn.Linear(DIM, DIM)
        self.loss = losses.create("began", k0=K0, lambda_k=LAMBDA_K)


def _data(dtype):
    g = torch.Generator().manual_seed(0)
    real = torch.randn(B, DIM, generator=g)
    fake = torch.randn(B, DIM, generator=g) * 3  # fake errors > real: k moves down
    return real.to(dtype), fake.to(dtype)


def _expected_next_k(k: float, D, real, fake, gamma=0.5, backend="reference"):
    """k_{t+1} in float64 from the same per-sample errors (rounded to the inputs' dtype by the
    backend, as the loss computes them)."""
    with torch.no_grad(), fastgan.use_backend(backend):
        lr = FG.reconstruction_error(real, D(real), p=1).double().mean()
        lf = FG.reconstruction_error(fake, D(fake), p=1).double().mean()
    return min(max(k + LAMBDA_K * (gamma * lr - lf).item(), 0.0), 1.0)


@pytest.mark.parametrize("cast", list(CASTS))
@pytest.mark.parametrize("holder", ["loss", "model"])
def test_float_casts_leave_k_in_float32(cast, holder):
    if holder == "loss":
        loss = CASTS[cast](losses.create("began", k0=K0, lambda_k=LAMBDA_K))
    else:
        model = CASTS[cast](_Model())
        loss = model.loss
        assert model.D.weight.dtype != torch.float32  # the rest of the model was cast
    assert loss.k.dtype == torch.float32
    assert loss.k.item() == torch.tensor(K0, dtype=torch.float32).item()  # not rounded through 16 bits
    assert "k" in dict(loss.named_buffers())


@pytest.mark.parametrize("backend", [b for b in kc.BACKENDS if kc.DEVICE[b] == "cpu"])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("cast", ["none", "half", "bfloat16", "to_bf16"])
def test_k_moves_with_low_precision_inputs_and_modules(backend, dtype, cast):
    """Each training step moves k by ~1e-4, exactly as the float64 update of the same errors
    says (within fp32 rounding), whether the loss was cast or not and whatever the inputs'
    precision."""
    loss = losses.create("began", k0=K0, lambda_k=LAMBDA_K)
    if cast != "none":
        loss = CASTS[cast](loss)
    D = (lambda v: 0.5 * v)  # noqa: E731
    real, fake = _data(dtype)
    k = loss.k.item()
    for _ in range(5):
        expected = _expected_next_k(k, D, real, fake, backend=backend)
        with fastgan.use_backend(backend):
            d_loss, logs = loss.discriminator_loss(D, real, fake)
            loss.after_discriminator_step(D)
        assert d_loss.dtype == dtype
        assert loss.k.dtype == torch.float32 and logs["k"].dtype == torch.float32
        assert abs(loss.k.item() - expected) <= 1e-6, (loss.k.item(), expected)
        assert abs(loss.k.item() - k) > 5e-5  # it moved (a 16-bit k would not)
        k = loss.k.item()


def test_device_moves_still_apply_to_k():
    loss = losses.create("began", k0=K0).to("meta")
    assert loss.k.device.type == "meta" and loss.k.dtype == torch.float32
    loss = losses.create("began", k0=K0).to("meta", torch.float16)
    assert loss.k.device.type == "meta" and loss.k.dtype == torch.float32
    model = _Model().to(device="meta", dtype=torch.bfloat16)
    assert model.loss.k.device.type == "meta" and model.loss.k.dtype == torch.float32
    assert model.D.weight.device.type == "meta" and model.D.weight.dtype == torch.bfloat16
    loss = losses.create("began").to_empty(device="meta")
    assert loss.k.device.type == "meta" and loss.k.dtype == torch.float32


def test_wider_casts_still_apply():
    """``.double()`` is not a loss of precision: k follows it, and a later half cast keeps the
    float64 value."""
    loss = losses.create("began", k0=K0).double()
    assert loss.k.dtype == torch.float64
    loss.k.fill_(0.1234567890123)
    loss.half()
    assert loss.k.dtype == torch.float64 and loss.k.item() == 0.1234567890123
    loss.float()
    assert loss.k.dtype == torch.float32


def test_state_dict_of_a_cast_loss_round_trips():
    loss = losses.create("began", k0=K0, lambda_k=LAMBDA_K).bfloat16()
    loss.discriminator_loss(lambda v: 0.5 * v, *_data(torch.bfloat16))
    loss.after_discriminator_step(None)  # the step's k update (a no-op hook argument for BEGAN)
    buf = io.BytesIO()
    torch.save(loss.state_dict(), buf)
    buf.seek(0)
    state = torch.load(buf, weights_only=True)
    assert state["k"].dtype == torch.float32
    for target in (losses.create("began", k0=K0, lambda_k=LAMBDA_K), losses.create("began", k0=K0, lambda_k=LAMBDA_K).half()):
        target.load_state_dict(state)
        assert target.k.dtype == torch.float32 and torch.equal(target.k, loss.k)


def test_a_16_bit_k_in_a_state_dict_is_loaded_into_float32():
    """A checkpoint whose k was saved in 16 bits (e.g. by an older version) loads into a
    float32 k, with ``assign=True`` as well."""
    loss = losses.create("began", k0=K0)
    state = loss.state_dict()
    state["k"] = torch.tensor(0.5, dtype=torch.bfloat16)
    for assign in (False, True):
        target = losses.create("began", k0=K0)
        target.load_state_dict(state, assign=assign)
        assert target.k.dtype == torch.float32 and target.k.item() == 0.5


@pytest.mark.parametrize("k_dtype", [torch.bfloat16, torch.float16])
def test_functional_update_of_a_16_bit_k_returns_float32(k_dtype):
    """``began_update`` with a 16-bit k returns k_next in float32, so a loop that feeds k_next
    back moves k."""
    real, fake = _data(torch.bfloat16)
    k = torch.tensor(K0, dtype=k_dtype)
    k_next, _ = FG.began_update(k, real.abs().mean(1), fake.abs().mean(1), lambda_k=LAMBDA_K)
    assert k_next.dtype == torch.float32
    assert k_next.item() != k.float().item()
    k64 = torch.tensor(K0, dtype=torch.float64)
    assert FG.began_update(k64, real.abs().mean(1), fake.abs().mean(1))[0].dtype == torch.float64
