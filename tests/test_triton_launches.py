"""One kernel launch per direction per operator on the ``triton`` backend (issue: GPU goals).

Counts the Triton launches and every aten operation that computes (anything but allocations,
views and metadata) while the forward and the backward of each operator run on inputs the
kernels read in place (contiguous or channels-last). Runs on the GPU when there is one, else in
Triton's interpreter; the counting is the same.
"""

from __future__ import annotations

import pytest
import torch

import fastgan

import kernel_cases as kc

pytestmark = pytest.mark.skipif("triton" not in fastgan.available_backends(), reason="the triton backend is not available here")

#: aten ops that do not touch tensor data (allocation, views, metadata)
NON_COMPUTE = {
    "empty", "empty_strided", "empty_like", "new_empty", "new_empty_strided", "view", "_unsafe_view", "reshape",
    "alias", "detach", "as_strided", "expand", "t", "permute", "squeeze", "unsqueeze", "select", "slice", "lift_fresh",
}


LAUNCH_RANGE = "fastgan_test::triton_launch"


class ComputeOps:
    """The aten operations that compute (at any depth, inside the custom ops too), from the
    profiler's CPU events."""

    def __enter__(self):
        self._prof = torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU])
        self._prof.__enter__()
        return self

    def __exit__(self, *exc):
        self._prof.__exit__(*exc)
        events = list(self._prof.events())
        # the launches themselves (in the interpreter they copy data to and from numpy)
        inside = [(e.time_range.start, e.time_range.end) for e in events if e.name == LAUNCH_RANGE]
        self.ops = [
            e.name for e in events
            if e.name.startswith("aten::") and e.name.split("::", 1)[1] not in NON_COMPUTE
            and not any(a <= e.time_range.start and e.time_range.end <= b for a, b in inside)
        ]


@pytest.fixture
def launches(monkeypatch):
    from fastgan.triton import adversarial_loss, grad_norm_penalty, interpolate, reconstruction_error

    counted: list[str] = []
    for module in (adversarial_loss, grad_norm_penalty, interpolate, reconstruction_error):
        for attr in dir(module):
            kernel = getattr(module, attr)
            if attr.startswith("_") and hasattr(kernel, "run") and hasattr(kernel, "fn"):
                def run(*args, _orig=kernel.run, _name=attr, **kwargs):
                    counted.append(_name)
                    with torch.profiler.record_function(LAUNCH_RANGE):
                        return _orig(*args, **kwargs)

                monkeypatch.setattr(kernel, "run", run)
    return counted


DEV = kc.DEVICE["triton"]


def _inputs(shape, channels_last=False):
    g = torch.Generator().manual_seed(7)
    def make(s=shape):
        t = torch.randn(s, generator=g).to(DEV)
        return t.contiguous(memory_format=torch.channels_last) if channels_last else t
    return make


CASES = {
    "interpolate": lambda mk: ((mk(), mk(), torch.rand(mk().shape[0], generator=torch.Generator().manual_seed(1)).to(DEV)),
                               lambda a, b, al: fastgan.functional.interpolate(a, b, al)),
    "grad_norm_penalty": lambda mk: ((mk(),), lambda g: fastgan.functional.grad_norm_penalty(g, 1.0, False)),
    "reconstruction_error": lambda mk: ((mk(), mk()), lambda x, r: fastgan.functional.reconstruction_error(x, r, 2)),
    "adversarial_loss": lambda mk: ((mk((5, 1, 3, 3)), mk((7, 1, 3, 3))),
                                    lambda r, f: fastgan.functional.adversarial_loss(r, f, "bce")),
}


@pytest.mark.parametrize("channels_last", [False, True], ids=["contig", "channels_last"])
@pytest.mark.parametrize("op", list(CASES))
def test_one_launch_per_direction(op, channels_last, launches):
    mk = _inputs((3, 2, 5, 7), channels_last)
    args, fn = CASES[op](mk)
    leaves = [a.detach().clone(memory_format=torch.preserve_format).requires_grad_(True) for a in args]
    with fastgan.use_backend("triton"):
        out = fn(*leaves)  # warm-up: the first call may allocate the reduction counter
        # the incoming gradient in the output's layout, as autograd hands it over in a network
        cot = torch.empty_like(out).copy_(torch.randn(out.shape, generator=torch.Generator().manual_seed(3)))
        torch.autograd.grad(out, leaves, cot)
        launches.clear()
        with ComputeOps() as fwd_mode:
            out = fn(*leaves)
        fwd = list(launches)
        launches.clear()
        with ComputeOps() as bwd_mode:
            torch.autograd.grad(out, leaves, cot)
        bwd = list(launches)
    assert len(fwd) == 1, f"{op} forward launched {fwd}"
    assert len(bwd) == 1, f"{op} backward launched {bwd}"
    # nothing else computes: no copies, conversions or fills around the kernels
    assert fwd_mode.ops == [], f"{op} forward also ran aten ops {fwd_mode.ops}"
    assert bwd_mode.ops == [], f"{op} backward also ran aten ops {bwd_mode.ops}"


# ------------------------------------------------------------ constants saved copy-on-write
def _gpu_launch_path(counted):
    """A stand-in for a launch on a GPU that does with the arguments what Triton does there and
    no more: it specialises the kernel on every argument (which takes each pointer's
    ``data_ptr()``: alignment) and passes the pointers to the launcher (``data_ptr()`` again).
    The kernel itself does not run (the interpreter would copy every argument anyway)."""
    from triton._C.libtriton import native_specialize_impl
    from triton.backends.compiler import BaseBackend

    def run(*args, _name, **kwargs):
        counted.append(_name)
        for a in args:
            if hasattr(a, "data_ptr"):
                native_specialize_impl(BaseBackend, a, False, True, True)
                a.data_ptr()

    return run


#: per operator whose backward reads a constant input (saved as a copy-on-write clone by
#: csrc/autograd.cpp before the forward runs): inputs, those that require grad, and the call. (The
#: penalty's backward reads its only input, which then requires grad and is saved as it is; the
#: adversarial loss saves no constant.)
COW_CASES = {
    "interpolate": lambda mk: ((mk(), mk(), torch.rand(3, generator=torch.Generator().manual_seed(1)).to(DEV)), (2,),
                               lambda a, b, al: fastgan.functional.interpolate(a, b, al).sum()),
    "reconstruction_error": lambda mk: ((mk(), mk()), (1,), lambda x, r: fastgan.functional.reconstruction_error(x, r, 2).sum()),
}


@pytest.mark.parametrize("op", list(COW_CASES))
def test_saved_constants_are_not_copied(op, monkeypatch):
    """The forward saves a constant input as a copy-on-write clone (which makes the input
    copy-on-write too); taking its address with ``data_ptr()`` would copy it. Neither launch
    materialises it: the kernels read it through ``fastgan.triton._common.read_only``."""
    from fastgan.triton import adversarial_loss, grad_norm_penalty, interpolate, reconstruction_error

    counted: list[str] = []
    run = _gpu_launch_path(counted)
    for module in (adversarial_loss, grad_norm_penalty, interpolate, reconstruction_error):
        for attr in dir(module):
            kernel = getattr(module, attr)
            if attr.startswith("_") and hasattr(kernel, "run") and hasattr(kernel, "fn"):
                monkeypatch.setattr(kernel, "run", lambda *a, _name=attr, **k: run(*a, _name=_name, **k))
    args, grad_of, fn = COW_CASES[op](_inputs((3, 2, 5, 7)))
    leaves = [a.requires_grad_(True) if i in grad_of else a for i, a in enumerate(args)]
    constants = [a for i, a in enumerate(leaves) if i not in grad_of]
    with fastgan.use_backend("triton"):
        out = fn(*leaves)
        assert all(torch._C._is_cow_tensor(c) for c in constants), "the forward saved no copy-on-write clone"
        torch.autograd.grad(out, [leaves[i] for i in grad_of])
    assert len(counted) == 2, counted
    assert all(torch._C._is_cow_tensor(c) for c in constants), f"{op}: a launch copied a saved constant"
