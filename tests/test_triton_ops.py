"""``torch.library.opcheck`` of every Triton custom op (the ``fastgan_triton`` namespace, declared
by the compiled extension with the ``fastgan`` schemas): schema, fake implementation, autograd
registration and AOT dispatch, on calls recorded while each public operator runs forward and
backward on the ``triton`` backend, and once more under ``torch.inference_mode`` (below autograd:
the public ops' own kernels), on the GPU or in Triton's interpreter on CPU tensors."""

from __future__ import annotations

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_map

import fastgan

import kernel_cases as kc

pytestmark = pytest.mark.skipif("triton" not in fastgan.available_backends(), reason="the triton backend is not available here")

DEV = kc.DEVICE["triton"]


class _Recorder(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.calls: dict[str, list] = {}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func.namespace == "fastgan_triton":
            with torch.inference_mode(False):  # normal tensors, also of a call in inference mode
                copy = tree_map(lambda a: a.detach().clone() if isinstance(a, torch.Tensor) else a, (args, kwargs))
            self.calls.setdefault(func.__name__.split(".")[0], []).append((func, *copy))
        return func(*args, **kwargs)


def _t(*shape, seed, dtype=torch.float32, layout=None):
    t = torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=dtype).to(DEV)
    return t.contiguous(memory_format=torch.channels_last) if layout == "cl" else t


def _calls():
    """One forward + backward of every public operator on the triton backend, recorded."""
    rec = _Recorder()
    real, fake = _t(3, 2, 4, 5, seed=1, layout="cl"), _t(3, 2, 4, 5, seed=2, layout="cl")
    runs = [
        lambda r, f, a: fastgan.functional.interpolate(r, f, a),
        lambda g: fastgan.functional.grad_norm_penalty(g, 1.0, True),
        lambda x, y: fastgan.functional.reconstruction_error(x, y, 1).sum(),
        lambda s, t: fastgan.functional.adversarial_loss(s, t, "bce"),
    ]
    inputs = [
        (real, fake, torch.rand(3, generator=torch.Generator().manual_seed(3)).to(DEV)),
        (_t(3, 7, seed=4, dtype=torch.float64),),
        (_t(2, 9, seed=5), _t(2, 9, seed=6)),
        (_t(4, 1, seed=7, dtype=torch.bfloat16), _t(6, 1, seed=8, dtype=torch.bfloat16)),
    ]
    with fastgan.use_backend("triton"):
        for fn, args in zip(runs, inputs):
            leaves = [a.detach().clone(memory_format=torch.preserve_format).requires_grad_(True) for a in args]
            with rec:
                out = fn(*leaves)
                torch.autograd.grad(out, leaves, torch.ones_like(out))
                with torch.inference_mode():
                    fn(*args)
    return rec.calls


CALLS = _calls() if "triton" in fastgan.available_backends() else {}
EXPECTED = {
    "interpolate", "interpolate_backward", "grad_norm_penalty", "grad_norm_penalty_forward", "grad_norm_penalty_backward",
    "reconstruction_error", "reconstruction_error_backward", "adversarial_loss", "adversarial_loss_backward",
}


def test_every_triton_op_is_exercised():
    assert set(CALLS) == EXPECTED


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_opcheck(name):
    with fastgan.use_backend("triton"):
        for func, args, kwargs in CALLS[name][:2]:
            torch.library.opcheck(func, args, kwargs)
