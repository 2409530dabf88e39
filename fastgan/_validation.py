"""Argument checks shared by every public function.

Every check reads metadata only (shape, dtype, device, Python numbers); none reads a tensor's
values, so validation never forces a host sync. Errors name the argument and what was expected.
"""

from __future__ import annotations

import math
import numbers
import sys
from collections.abc import Sequence

import torch

__all__ = [
    "check_float_tensor",
    "check_batched",
    "check_per_sample",
    "check_same_device",
    "check_same_dtype",
    "promote",
    "check_nonneg",
    "check_real",
    "check_bool",
    "check_unit_interval",
]


#: The dtypes fastgan computes in. Other floating dtypes (the float8 family, …) are refused:
#: the kernels do not implement them, and the reference's results in them would be meaningless.
FLOAT_DTYPES: tuple[torch.dtype, ...] = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def check_float_tensor(name: str, t: object) -> torch.Tensor:
    """``t`` must be a dense (strided, not nested) tensor of dtype float16, bfloat16, float32 or
    float64. Meta tensors and tensor subclasses with the strided layout (FakeTensor, functorch's
    wrappers under ``torch.func``) pass: only metadata is read."""
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if t.is_nested:
        raise TypeError(
            f"{name} must be a dense (strided) tensor, got a nested tensor; "
            "pad it to a regular batch-first tensor first"
        )
    if t.layout != torch.strided:
        raise TypeError(
            f"{name} must be a dense (strided) tensor, got layout {t.layout}; "
            f"convert it first (e.g. {name}.to_dense())"
        )
    if not t.is_floating_point():
        raise TypeError(
            f"{name} must be a floating-point tensor (float16, bfloat16, float32 or float64), "
            f"got dtype {t.dtype}"
        )
    if t.dtype not in FLOAT_DTYPES:
        raise TypeError(
            f"{name} has dtype {t.dtype}, which fastgan does not compute in: "
            f"expected float16, bfloat16, float32 or float64 (convert it first, e.g. {name}.float())"
        )
    return t


def check_batched(name: str, t: object, min_batch: int = 1) -> torch.Tensor:
    """A floating tensor with the batch first: at least one dimension, batch >= ``min_batch``,
    and no empty non-batch dimension."""
    check_float_tensor(name, t)
    assert isinstance(t, torch.Tensor)
    if t.dim() == 0:
        raise ValueError(f"{name} must have the batch as its first dimension, got a 0-dim tensor")
    if t.shape[0] < min_batch:
        if t.shape[0] == 0:
            raise ValueError(f"{name} has an empty batch (shape {tuple(t.shape)})")
        raise ValueError(
            f"{name} needs a batch of at least {min_batch} samples, got shape {tuple(t.shape)}"
        )
    if t.numel() == 0:
        raise ValueError(f"{name} has an empty non-batch dimension (shape {tuple(t.shape)})")
    return t


def check_per_sample(name: str, t: object) -> torch.Tensor:
    """Per-sample values (energies, reconstruction errors): shape (B,) with B >= 1."""
    check_batched(name, t)
    assert isinstance(t, torch.Tensor)
    if t.dim() != 1:
        raise ValueError(
            f"{name} must hold one value per sample, shape (B,), got shape {tuple(t.shape)}"
        )
    return t


def check_same_device(names: Sequence[str], tensors: Sequence[torch.Tensor]) -> None:
    first = tensors[0].device
    for n, t in zip(names[1:], tensors[1:]):
        if t.device != first:
            raise ValueError(
                f"{n} is on {t.device} but {names[0]} is on {first}; expected the same device"
            )


def check_same_dtype(names: Sequence[str], tensors: Sequence[torch.Tensor]) -> None:
    """The tensors must share one dtype -- except under ``torch.autocast`` for their device,
    where floating tensors of different precisions meet by design (a generator's bf16 output and
    fp32 data); the operators then compute in the widest of them (:func:`promote`)."""
    first = tensors[0].dtype
    for n, t in zip(names[1:], tensors[1:]):
        if t.dtype != first:
            if autocast_mixes(tensors):
                return
            raise TypeError(
                f"{n} has dtype {t.dtype} but {names[0]} has dtype {first}; expected the same dtype"
            )


def autocast_mixes(tensors: Sequence[torch.Tensor]) -> bool:
    """Whether autocast is on for the tensors' device and they are all floating."""
    if not all(t.is_floating_point() for t in tensors):
        return False
    try:
        return torch.is_autocast_enabled(tensors[0].device.type)
    except (RuntimeError, ValueError):  # a device type autocast does not know (e.g. meta)
        return False


def promote(*tensors: torch.Tensor | None) -> tuple[torch.Tensor | None, ...]:
    """The tensors in one dtype, the widest of theirs (``None`` entries kept). A no-op when
    they already agree, which is always the case outside autocast (validation refuses mixed
    dtypes there)."""
    present = [t for t in tensors if t is not None]
    first = present[0].dtype
    if all(t.dtype == first for t in present[1:]):
        return tensors
    target = first
    for t in present[1:]:
        target = torch.promote_types(target, t.dtype)
    return tuple(None if t is None else t.to(target) for t in tensors)


_FLOAT_MAX = sys.float_info.max


def _is_numpy_bool(value: object) -> bool:
    t = type(value)
    return t.__module__ == "numpy" and t.__name__ in ("bool_", "bool")


def check_real(name: str, value: object, *, finite: bool = True) -> float:
    """A real number: a Python int or float, a NumPy integer or floating scalar (anything
    registered as :class:`numbers.Real`), or a symbolic number of ``torch.compile`` / export —
    not a bool, not a tensor. Returns it as a float (rounded to the nearest float). NaN is
    refused, and so are infinities unless ``finite=False``; an integer too large for a float
    is a ``ValueError``, not an ``OverflowError``.

    The checks are comparisons, not ``math.isnan``: on a symbolic float (``torch.compile(...,
    dynamic=True)``) they become guards, so a later call with a value that fails them recompiles
    and is refused then, while a value that passes runs the same graph.
    """
    if isinstance(value, bool) or _is_numpy_bool(value) or not isinstance(
        value, (numbers.Real, torch.SymInt, torch.SymFloat)
    ):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    if isinstance(value, torch.SymFloat):
        v = value  # float() would specialise it to a constant
    elif isinstance(value, torch.SymInt):
        v = torch.sym_float(value)
    else:
        try:
            v = float(value)  # type: ignore[arg-type]
        except OverflowError:
            raise ValueError(
                f"{name} is too large for a float (its magnitude exceeds {_FLOAT_MAX:.4g}); "
                "expected a finite number"
            ) from None
    if v != v:  # NaN (a comparison: see the docstring)
        raise ValueError(f"{name} must not be NaN")
    if v == math.inf or v == -math.inf:
        if value != v:  # a finite number (a NumPy longdouble, a Fraction) beyond float's range
            raise ValueError(
                f"{name} is too large for a float (its magnitude exceeds {_FLOAT_MAX:.4g}); "
                "expected a finite number"
            )
        if finite:
            raise ValueError(f"{name} must be finite, got {v}")
    return v  # type: ignore[return-value]


def check_nonneg(name: str, value: object, *, finite: bool = True) -> float:
    """A real number >= 0 (and finite unless ``finite=False``); see :func:`check_real`."""
    v = check_real(name, value, finite=False)
    if v < 0:
        raise ValueError(f"{name} must be >= 0, got {v}")
    if finite and v == math.inf:
        raise ValueError(f"{name} must be finite, got {v}")
    return v


def check_unit_interval(name: str, value: object) -> float:
    """A real number in [0, 1]; see :func:`check_real`."""
    v = check_real(name, value, finite=False)
    if not 0.0 <= v <= 1.0:
        raise ValueError(f"{name} must lie in [0, 1], got {v}")
    return v


def check_positive_int(name: str, value: object) -> int:
    """An integer >= 1 (a Python or NumPy integer, not a bool); returns it as int."""
    if isinstance(value, bool) or _is_numpy_bool(value) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return int(value)


def check_bool(name: str, value: object) -> bool:
    """A bool (a NumPy bool is accepted and returned as a Python bool); not an int."""
    if _is_numpy_bool(value):
        return bool(value)
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__}")
    return value


def check_scores(names: Sequence[str], *tensors: torch.Tensor | None) -> list[torch.Tensor]:
    """Discriminator outputs: batch-first floating tensors of any shape, (B,), (B,1),
    (B,1,H,W)…; several of them must agree in device, dtype and non-batch shape (their batch
    sizes may differ, each mean runs over its own elements). ``None`` entries are skipped."""
    given = [(n, t) for n, t in zip(names, tensors) if t is not None]
    for n, t in given:
        check_batched(n, t)
    if len(given) > 1:
        ns = [n for n, _ in given]
        ts = [t for _, t in given]
        check_same_device(ns, ts)
        check_same_dtype(ns, ts)
        for n, t in given[1:]:
            if t.shape[1:] != ts[0].shape[1:]:
                raise ValueError(
                    f"{n} has shape {tuple(t.shape)} but {ns[0]} has shape {tuple(ts[0].shape)}; "
                    "expected the same shape after the batch dimension"
                )
    return [t for _, t in given]


def check_like(names: Sequence[str], first: torch.Tensor, *others: torch.Tensor) -> None:
    """``others`` must match ``first`` exactly in shape, dtype and device (``first`` already
    checked as batched)."""
    for n, t in zip(names[1:], others):
        check_float_tensor(n, t)
        if t.shape != first.shape:
            raise ValueError(
                f"{n} has shape {tuple(t.shape)} but {names[0]} has shape {tuple(first.shape)}; "
                "expected the same shape"
            )
    check_same_device(names, [first, *others])
    check_same_dtype(names, [first, *others])


def accumulation_dtype(dtype: torch.dtype) -> torch.dtype:
    """Reductions accumulate in float64 for float64 inputs and in float32 otherwise."""
    return torch.float64 if dtype == torch.float64 else torch.float32
