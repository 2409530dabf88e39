"""The machinery of the gradient penalties, written once: the critic's input gradients (eagerly,
under ``torch.compile`` and under ``torch.func``), their checks, the interpolates, and the penalty
with or without AMP loss scaling. Internal: the public functions are
:func:`fastgan.functional.gradient_penalty`, :func:`fastgan.functional.r1_penalty` and
:func:`fastgan.amp.gradient_penalty`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from fastgan import _deprecation as deprecation
from fastgan import _validation as v
from fastgan import backends
from fastgan.ops.grad_norm_penalty import call as norm_penalty
from fastgan.ops.interpolate import call as interpolate


def input_gradients(critic: Callable[..., torch.Tensor], x: torch.Tensor, critic_kwargs: dict) -> torch.Tensor:
    """∇x Σ critic(x), differentiable w.r.t. the critic's parameters (so the penalty
    back-propagates into them); ``x`` is a tensor without autograd history (the caller detached
    it), which is not modified.

    Eagerly this is ``torch.autograd.grad(..., create_graph=True)``. While ``torch.compile`` or
    ``torch.export`` traces, it is ``torch.func.grad`` instead: an autograd.grad with
    ``create_graph`` cannot be traced into a graph (AOTAutograd would need the backward of a
    backward), ``torch.func.grad`` is traced into plain operations that AOTAutograd
    differentiates once — so the penalty compiles into one graph with the eager values. Under a
    ``torch.func`` transform it is ``torch.func.grad`` too (``autograd.grad`` does not compose
    with them), so the penalties work under ``torch.func.grad`` / ``vmap`` / … as well."""
    check_critic(critic)
    if torch.compiler.is_compiling() or backends.functorch_active():
        return torch.func.grad(lambda v: _critic_total(critic, v, critic_kwargs))(x)
    with torch.enable_grad():
        x = grad_leaf(x)
        return grad_of_input(_critic_total(critic, x, critic_kwargs), x)


def grad_leaf(x: torch.Tensor) -> torch.Tensor:
    """``x`` as a new leaf that requires grad (``x`` itself is not modified). Autograd does not
    run under ``torch.inference_mode()``: a clear error there; an inference tensor made earlier
    is copied into a normal one."""
    if torch.is_inference_mode_enabled():
        raise RuntimeError(
            "the gradient penalties differentiate the critic w.r.t. its input, which autograd "
            "cannot do under torch.inference_mode(); call them outside it (torch.no_grad() is fine)"
        )
    if x.is_inference():
        x = x.clone()
    return x.detach().requires_grad_(True)


def _critic_total(critic: Callable[..., torch.Tensor], x: torch.Tensor, critic_kwargs: dict) -> torch.Tensor:
    """Σ critic(x), the critic's output checked."""
    out = critic(x, **critic_kwargs)
    check_critic_output(out)
    if not out.requires_grad:
        raise ValueError(_CRITIC_INDEPENDENT)
    return out.sum()


def grad_of_input(total: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``∂ total / ∂ x`` with ``create_graph=True``; a ``ValueError`` when ``total`` does not
    depend on ``x`` through autograd (a critic that ignores or detaches its input, or returns a
    constant or a value of its parameters only)."""
    if not total.requires_grad:
        raise ValueError(_CRITIC_INDEPENDENT)
    (grads,) = torch.autograd.grad(total, x, create_graph=True, allow_unused=True)
    if grads is None:
        raise ValueError(_CRITIC_INDEPENDENT)
    return grads


_CRITIC_INDEPENDENT = (
    "critic's output does not depend on its input through autograd (it ignores or detaches its "
    "input, or returns a constant or a function of its parameters only); the gradient penalty "
    "needs a critic that is differentiable w.r.t. its input"
)


def check_critic(critic: object) -> None:
    if not callable(critic):
        raise TypeError(f"critic must be callable (a module or function), got {type(critic).__name__}")


def check_critic_output(out: object) -> None:
    """A critic's output: floating scores (its dependence on the input is checked when its
    gradient is taken, :func:`grad_of_input`)."""
    if not isinstance(out, torch.Tensor) or out.dtype not in v.FLOAT_DTYPES or out.layout != torch.strided or out.is_nested:
        got = type(out).__name__
        if isinstance(out, torch.Tensor):
            got = "a nested tensor" if out.is_nested else f"dtype {out.dtype}, layout {out.layout}"
        raise TypeError(
            "critic must return a floating-point tensor of scores (dense, float16, bfloat16, "
            f"float32 or float64), got {got}"
        )


def renamed_weight(gp_weight: object, critic_kwargs: dict, function: str) -> tuple[object, str]:
    """``gp_weight``, or the deprecated ``weight=`` (popped from ``critic_kwargs``, with a
    ``DeprecationWarning`` outside ``torch.compile``), and the name the caller used."""
    if "weight" not in critic_kwargs:
        return gp_weight, "gp_weight"
    weight = critic_kwargs.pop("weight")
    if gp_weight != 10.0:
        raise TypeError(f"{function} got gp_weight and its deprecated name weight; pass gp_weight only")
    deprecation.warn(f"{function}(weight=...) is deprecated; pass gp_weight=... (the loss objects' name)", 3)
    return weight, "weight"


def per_sample_alpha(alpha: object, real: torch.Tensor) -> torch.Tensor:
    """The interpolation coefficients as a (B,) tensor in ``real``'s dtype and on its device.

    Accepted: a float16/bfloat16/float32/float64 tensor on ``real``'s device or a NumPy floating
    array (moved to that device), of shape (B,),
    (B, 1), (B, 1, 1, 1) or any (B, 1, …, 1) with at most ``real.dim()`` dimensions — one value
    per sample. Refused: other types and dtypes, other layouts (``TypeError``),
    another batch size or a shape that is not per sample (``ValueError``), another device
    (``ValueError``; no hidden transfer)."""
    if type(alpha).__module__ == "numpy" and type(alpha).__name__ == "ndarray":
        if alpha.dtype.kind != "f":  # type: ignore[attr-defined]
            raise TypeError(
                "alpha must be a floating-point tensor or NumPy array (one coefficient per sample), "
                f"got a NumPy array of dtype {alpha.dtype}"  # type: ignore[attr-defined]
            )
        alpha = torch.as_tensor(alpha, device=real.device)
    if not isinstance(alpha, torch.Tensor):
        raise TypeError(f"alpha must be a torch.Tensor or a NumPy array, got {type(alpha).__name__}")
    v.check_float_tensor("alpha", alpha)  # float16/bfloat16/float32/float64, dense
    b = real.shape[0]
    shape = tuple(alpha.shape)
    if not shape or shape[0] != b or any(s != 1 for s in shape[1:]) or len(shape) > real.dim():
        raise ValueError(
            f"alpha must hold one coefficient per sample: shape (B,), (B, 1), …, (B, 1, …, 1) with "
            f"B = {b} and at most {real.dim()} dimensions (real's), got shape {shape}"
        )
    v.check_same_device(("real", "alpha"), [real, alpha])
    return alpha.reshape(b).to(real.dtype)


def penalty_inputs(
    real: torch.Tensor,
    fake: torch.Tensor,
    alpha: object,
    weight: float,
    center: float,
    one_sided: bool,
    *,
    mixed_precision: bool = False,
    generator: torch.Generator | None = None,
    weight_name: str = "gp_weight",
) -> tuple[torch.Tensor, float, float, bool]:
    """The checked arguments of the gradient penalty: the per-sample interpolates ``x̂`` (of
    ``real`` and ``fake`` detached: no autograd history) and the validated hyper-parameters.

    ``real`` and ``fake`` must agree in shape, device and dtype — except under autocast, or
    with ``mixed_precision`` (:func:`fastgan.amp.gradient_penalty`), where their floating dtypes
    may differ and both are interpolated in the wider one. ``alpha`` is converted to that common
    dtype (:func:`per_sample_alpha`); without it α is drawn from ``generator``."""
    v.check_batched("real", real)
    if mixed_precision:
        v.check_float_tensor("fake", fake)
        if fake.shape != real.shape:
            raise ValueError(
                f"fake has shape {tuple(fake.shape)} but real has shape {tuple(real.shape)}; "
                "expected the same shape"
            )
        v.check_same_device(("real", "fake"), [real, fake])
        common = torch.promote_types(real.dtype, fake.dtype)
        real, fake = real.to(common), fake.to(common)
    else:
        v.check_like(("real", "fake"), real, fake)
        real, fake = v.promote(real, fake)  # mixed only under autocast
    weight = v.check_nonneg(weight_name, weight)
    center, one_sided = v.check_nonneg("center", center), v.check_bool("one_sided", one_sided)
    if alpha is None:
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
        # generator=None is left out: torch.compile cannot trace it
        draw = {} if generator is None else {"generator": generator}
        alpha = torch.rand(real.shape[0], device=real.device, dtype=real.dtype, **draw)
    else:
        alpha = per_sample_alpha(alpha, real)
    x_hat = interpolate(real.detach(), fake.detach(), alpha.detach())
    return x_hat, weight, center, one_sided


def gradient_penalty(
    critic: Callable[..., torch.Tensor],
    real: torch.Tensor,
    fake: torch.Tensor,
    weight: float,
    center: float,
    one_sided: bool,
    alpha: object,
    critic_kwargs: dict,
    *,
    scaler: torch.amp.GradScaler | None = None,
    mixed_precision: bool = False,
    generator: torch.Generator | None = None,
    weight_name: str = "gp_weight",
) -> torch.Tensor:
    """``weight · mean_b φ(‖∇x̂ D(x̂)_b‖₂ − center)`` (the arguments as
    :func:`fastgan.functional.gradient_penalty`'s); with an enabled ``scaler``, the input gradient
    is taken of the scaled output and unscaled (:func:`scaled_input_gradients`)."""
    check_critic(critic)
    x_hat, weight, center, one_sided = penalty_inputs(
        real, fake, alpha, weight, center, one_sided, mixed_precision=mixed_precision, generator=generator,
        weight_name=weight_name,
    )
    if scaler is None or not scaler.is_enabled():
        grads = input_gradients(critic, x_hat, critic_kwargs)
        return weight * norm_penalty(grads, center, one_sided)
    device_type = real.device.type
    enabled, amp_dtype = torch.is_autocast_enabled(device_type), torch.get_autocast_dtype(device_type)
    with torch.enable_grad():
        grads = scaled_input_gradients(critic, x_hat, critic_kwargs, scaler, enabled, amp_dtype)
        # the penalty under autocast as in PyTorch's AMP recipe (fastgan accumulates in fp32)
        with torch.autocast(device_type, dtype=amp_dtype, enabled=enabled):
            return weight * norm_penalty(grads, center, one_sided)


def scaled_input_gradients(
    critic: Callable[..., torch.Tensor],
    x_hat: torch.Tensor,
    critic_kwargs: dict,
    scaler: torch.amp.GradScaler,
    enabled: bool,
    amp_dtype: torch.dtype,
) -> torch.Tensor:
    """∇x̂ Σ critic(x̂) as PyTorch's AMP recipe takes it: the critic under the caller's autocast
    state, the gradient of the scaled output outside autocast, unscaled with ordinary arithmetic
    (the scale as a tensor: no host sync)."""
    device_type = x_hat.device.type
    x_hat = grad_leaf(x_hat)
    with torch.autocast(device_type, dtype=amp_dtype, enabled=enabled):
        out = critic(x_hat, **critic_kwargs)
    check_critic_output(out)
    with torch.autocast(device_type, enabled=False):
        scaled_grads = grad_of_input(scaler.scale(out.float().sum()), x_hat)
        scale = scaler.scale(torch.ones((), dtype=torch.float32, device=x_hat.device))
        return scaled_grads * (1.0 / scale).to(scaled_grads.dtype)


def r1_penalty(critic: Callable[..., torch.Tensor], inputs: torch.Tensor, gamma: float, critic_kwargs: dict) -> torch.Tensor:
    """``gamma/2 · mean_b ‖∇x D(x)_b‖²`` (arguments as :func:`fastgan.functional.r1_penalty`'s)."""
    check_critic(critic)
    v.check_batched("inputs", inputs)
    gamma = v.check_nonneg("gamma", gamma)
    grads = input_gradients(critic, inputs.detach(), critic_kwargs)
    # mean_b ‖g_b‖² is the norm penalty with center 0
    return (0.5 * gamma) * norm_penalty(grads, 0.0, False)
