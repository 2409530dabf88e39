"""The four operators of docs/design.md §2 on every available backend, against the reference.

Parametrised over ``fastgan.available_backends()`` (``reference`` everywhere, ``cpu`` when the
extension is built, ...): forward and the gradient w.r.t. every tensor input against the
operator's ``reference`` evaluated in float64 on the same (rounded) values, for every kind, p and
one-sidedness, over batch 1, odd sizes, rows longer than one parallel chunk, non-contiguous,
channels-last and mixed layouts, in fp32, fp64, bf16 and fp16 (tolerances: ``kernel_cases.TOL``);
gradcheck in fp64; ``torch.library.opcheck`` of every ``torch.ops.fastgan`` operator; no aliasing
or mutation of inputs; NaN propagation; the zero-norm gradient; bitwise run-to-run determinism;
second and third derivatives equal to the reference's; the fallback without the extension.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_map

import fastgan
from fastgan import backends

import kernel_cases as kc

dtype_params = [pytest.param(d, id=kc.DTYPE_IDS[d]) for d in kc.DTYPES]
backend_params = [pytest.param(b, id=b) for b in kc.BACKENDS]
# Every backend but the reference, against which they are held.
backend_params_compiled_and_triton = pytest.mark.parametrize(
    "backend", [pytest.param(b, id=b) for b in kc.BACKENDS if b != "reference"]
    or [pytest.param("-", marks=pytest.mark.skip(reason="only the reference backend is available here"))]
)
needs_custom_ops = pytest.mark.skipif(
    not kc.HAS_CUSTOM_OPS,
    reason="torch.ops.fastgan is not registered: the compiled extension fastgan._C is not built here",
)


def dev(backend: str) -> str:
    return kc.DEVICE[backend]


def _skip_unusable(backend: str) -> None:
    if dev(backend) == "cuda" and not torch.cuda.is_available():  # pragma: no cover
        pytest.skip("no CUDA device")


# ----------------------------------------------------------------------- the backends under test
def test_reference_is_under_test():
    assert "reference" in kc.BACKENDS
    assert kc.HAS_CUSTOM_OPS == (backends.extension() is not None), (
        "torch.ops.fastgan.interpolate must be registered exactly when fastgan._C is loaded"
    )


@pytest.mark.parametrize("backend", kc.COMPILED or [pytest.param("-", marks=pytest.mark.skip(reason="no compiled backend is available here"))])
def test_compiled_backend_implements_every_operator(backend):
    """A fixed backend silently hands operators it lacks to the reference: make sure the tests
    below exercise the backend's own kernels for all four operators."""
    device = torch.device(dev(backend))
    with fastgan.use_backend(backend):
        for op in kc.OP_NAMES:
            assert backends.resolve(op, device)[0] == backend, f"{backend} does not implement {op}"
    with fastgan.use_backend("auto"):
        for op in kc.OP_NAMES:
            assert backends.resolve(op, device)[0] != "reference", f"auto picks the reference for {op}"


# ------------------------------------------------------------------ forward and every gradient
@pytest.mark.parametrize("dtype", dtype_params)
@pytest.mark.parametrize("spec", kc.ROW_SPECS, ids=kc.spec_id)
@pytest.mark.parametrize("backend", backend_params)
def test_interpolate(backend, spec, dtype):
    _skip_unusable(backend)
    kc.check_against_reference(backend, kc.interpolate_case(spec, dtype, dev(backend)), spec.id)


@pytest.mark.parametrize("dtype", dtype_params)
@pytest.mark.parametrize("one_sided", [False, True], ids=["two_sided", "one_sided"])
@pytest.mark.parametrize("spec", kc.GNP_SPECS, ids=kc.spec_id)
@pytest.mark.parametrize("backend", backend_params)
def test_grad_norm_penalty(backend, spec, one_sided, dtype):
    _skip_unusable(backend)
    case = kc.grad_norm_penalty_case(spec, dtype, one_sided, dev(backend))
    kc.check_against_reference(backend, case, f"{spec.id} one_sided={one_sided}")


@pytest.mark.parametrize("dtype", dtype_params)
@pytest.mark.parametrize("p", [1, 2], ids=["p1", "p2"])
@pytest.mark.parametrize("spec", kc.ROW_SPECS, ids=kc.spec_id)
@pytest.mark.parametrize("backend", backend_params)
def test_reconstruction_error(backend, spec, p, dtype):
    _skip_unusable(backend)
    case = kc.reconstruction_error_case(spec, dtype, p, dev(backend))
    kc.check_against_reference(backend, case, f"{spec.id} p={p}")


@pytest.mark.parametrize("dtype", dtype_params)
@pytest.mark.parametrize("kind", kc.KINDS)
@pytest.mark.parametrize("spec,side", [pytest.param(sp, side, id=f"{sp.id}-{side}") for sp, side in kc.ADV_CASES])
@pytest.mark.parametrize("backend", backend_params)
def test_adversarial_loss(backend, spec, kind, side, dtype):
    _skip_unusable(backend)
    case = kc.adversarial_loss_case(spec, dtype, kind, side, dev(backend))
    kc.check_against_reference(backend, case, f"{spec.id} kind={kind} {side}")


@pytest.mark.parametrize("kind", kc.KINDS)
@pytest.mark.parametrize("backend", backend_params)
def test_adversarial_loss_default_parameters(backend, kind):
    _skip_unusable(backend)
    g = kc.generator("defaults", kind)
    real = kc.away_from(torch.randn(9, 1, generator=g, dtype=kc.F64) * 2, (1.0, -1.0))
    fake = kc.away_from(torch.randn(9, 1, generator=g, dtype=kc.F64) * 2, (1.0, -1.0))
    with fastgan.use_backend(backend):
        out = fastgan.ops.adversarial_loss(real.float().to(dev(backend)), fake.float().to(dev(backend)), kind)
    expected = kc.REFERENCE["adversarial_loss"](real.float().double(), fake.float().double(), kind, 1.0, 0.0, 1.0)
    kc.assert_matches(out, expected, kc.F32, f"{backend} adversarial_loss kind={kind} default parameters")


@pytest.mark.parametrize("dtype", dtype_params)
@pytest.mark.parametrize("backend", backend_params)
def test_bce_is_stable_for_large_logits(backend, dtype):
    """softplus(+-1e4) must not overflow; its derivative (a sigmoid) must stay finite."""
    _skip_unusable(backend)
    values = torch.tensor([[-1e4], [1e4], [-50.0], [50.0], [0.5], [-3.0]], dtype=kc.F64).to(dtype)
    case = kc.Case(
        "adversarial_loss",
        [values.to(dev(backend)), values.flip(0).to(dev(backend)), "bce", 1.0, 0.0, 1.0],
        [values.double(), values.flip(0).double(), "bce", 1.0, 0.0, 1.0],
        torch.tensor(1.25, dtype=dtype, device=dev(backend)),
        torch.tensor(1.25, dtype=kc.F64),
        dtype,
    )
    args, leaves, _, _ = kc.with_grad(case)
    out, grads = kc.run_backend(backend, case, args, leaves)
    assert torch.isfinite(out) and all(torch.isfinite(g).all() for g in grads)
    kc.check_against_reference(backend, case, "large logits")


# ------------------------------------------------------------------------- small fp64 cases
SMALL_ROWS = kc.Spec("small", (3, 2, 3, 4))
SMALL_ROWS_MIXED = kc.Spec("small_mixed", (3, 2, 3, 4), ("strided", "channels_last", "strided"))
SMALL_SCORES = kc.Spec("small", (4, 1, 2, 3))
SMALL_SCORES_DIFF = kc.Spec("small_batch_differs", (5, 1), shape2=(3, 1))


def _small_builders() -> dict:
    """``id -> (dtype, device) -> Case``: one small case of every operator variant (each kind,
    side, p, one_sided)."""
    b = {
        "interpolate": lambda d, dev: kc.interpolate_case(SMALL_ROWS, d, dev),
        "interpolate-mixed_layouts": lambda d, dev: kc.interpolate_case(SMALL_ROWS_MIXED, d, dev),
        "grad_norm_penalty-two_sided": lambda d, dev: kc.grad_norm_penalty_case(SMALL_ROWS, d, False, dev),
        "grad_norm_penalty-one_sided": lambda d, dev: kc.grad_norm_penalty_case(SMALL_ROWS, d, True, dev),
        "grad_norm_penalty-center0": lambda d, dev: kc.grad_norm_penalty_case(kc.Spec("c0", (3, 2, 3, 4), params=(("center", 0.0),)), d, False, dev),
        "grad_norm_penalty-strided": lambda d, dev: kc.grad_norm_penalty_case(SMALL_ROWS_MIXED, d, True, dev),
        "reconstruction_error-p1": lambda d, dev: kc.reconstruction_error_case(SMALL_ROWS, d, 1, dev),
        "reconstruction_error-p2": lambda d, dev: kc.reconstruction_error_case(SMALL_ROWS, d, 2, dev),
        "reconstruction_error-p2-mixed_layouts": lambda d, dev: kc.reconstruction_error_case(SMALL_ROWS_MIXED, d, 2, dev),
    }
    for kind in kc.KINDS:
        for side in kc.SIDES:
            b[f"adversarial_loss-{kind}-{side}"] = lambda d, dev, kind=kind, side=side: kc.adversarial_loss_case(SMALL_SCORES, d, kind, side, dev)
        b[f"adversarial_loss-{kind}-batch_differs"] = lambda d, dev, kind=kind: kc.adversarial_loss_case(SMALL_SCORES_DIFF, d, kind, "both", dev)
    return b


SMALL = _small_builders()
SMALL_IDS = list(SMALL)


def small_case(name: str, dtype: torch.dtype, device: str) -> kc.Case:
    return SMALL[name](dtype, device)


@pytest.mark.parametrize("name", SMALL_IDS)
@pytest.mark.parametrize("backend", backend_params)
def test_gradcheck(backend, name):
    _skip_unusable(backend)
    case = small_case(name, kc.F64, dev(backend))
    args, leaves, _, _ = kc.with_grad(case)
    positions = case.tensor_positions

    def fn(*tensors):
        call = list(args)
        for i, t in zip(positions, tensors):
            call[i] = t
        with fastgan.use_backend(backend):
            return kc.PUBLIC[case.op](*call)

    assert torch.autograd.gradcheck(fn, tuple(leaves), eps=1e-6, atol=1e-6, rtol=1e-4)


@pytest.mark.parametrize("dtype", [pytest.param(kc.F32, id="f32"), pytest.param(kc.BF16, id="bf16")])
@pytest.mark.parametrize("name", SMALL_IDS)
@pytest.mark.parametrize("backend", backend_params)
def test_outputs_never_alias_or_modify_inputs(backend, name, dtype):
    _skip_unusable(backend)
    case = small_case(name, dtype, dev(backend))
    args, leaves, _, _ = kc.with_grad(case)
    before = [t.detach().clone() for t in leaves]
    cot_before = case.cot.clone()
    out, grads = kc.run_backend(backend, case, args, leaves)

    def storage(t):
        return t.untyped_storage().data_ptr()

    inputs = {storage(t) for t in leaves} | {storage(case.cot)}
    assert storage(out) not in inputs, "the output shares memory with an input"
    for name_, g in zip(case.tensor_names(), grads):
        assert storage(g) not in {storage(t) for t in leaves}, f"d/d{name_} shares memory with an input"
    for name_, t, b in zip(case.tensor_names(), leaves, before):
        assert torch.equal(t.detach(), b), f"{name_} was modified"
    assert torch.equal(case.cot, cot_before), "the backward modified grad_output"
    # writing into the output leaves the inputs alone
    with torch.no_grad():
        out.add_(1.0)
    for name_, t, b in zip(case.tensor_names(), leaves, before):
        assert torch.equal(t.detach(), b), f"{name_} changed when the output was modified"


# --------------------------------------------------------------------------------------- NaN
def _poison(case: kc.Case, position: int, sample: int, flat_index: int) -> kc.Case:
    """NaN at element ``flat_index`` of sample ``sample`` of tensor argument ``position``."""
    for args in (case.args, case.ref_args):
        t = args[position].clone()
        if t.dim() == 1:
            t[sample] = float("nan")
        else:
            idx = torch.unravel_index(torch.tensor(flat_index), t.shape[1:])
            t[(sample, *(int(i) for i in idx))] = float("nan")
        args[position] = t
    return case


def _nan_builders() -> dict:
    """``id -> (dtype, device) -> Case`` with NaN placed in inputs (also past the first chunk
    of a long row)."""
    odd, long, long3 = kc.Spec("odd", kc.ODD), kc.Spec("long", kc.LONG), kc.Spec("long3", kc.LONG3)
    patch = kc.Spec("patch64", (64, 1, 30, 30))
    b = {
        # real[0, 5] and alpha[2]
        "interpolate-real_and_alpha": lambda d, dev: _poison(_poison(kc.interpolate_case(odd, d, dev), 0, 0, 5), 2, 2, 0),
        "interpolate-fake_long": lambda d, dev: _poison(kc.interpolate_case(long3, d, dev), 1, 0, 3 * kc.CHUNK + 7),
    }
    for one_sided in (False, True):
        b[f"grad_norm_penalty-one_sided={one_sided}"] = lambda d, dev, o=one_sided: _poison(kc.grad_norm_penalty_case(odd, d, o, dev), 0, 1, 11)
        b[f"grad_norm_penalty-long-one_sided={one_sided}"] = lambda d, dev, o=one_sided: _poison(kc.grad_norm_penalty_case(long3, d, o, dev), 0, 0, 2 * kc.CHUNK + 3)
    for p in (1, 2):
        b[f"reconstruction_error-p{p}"] = lambda d, dev, p=p: _poison(_poison(kc.reconstruction_error_case(odd, d, p, dev), 0, 0, 0), 1, 2, 300)
        b[f"reconstruction_error-long-p{p}"] = lambda d, dev, p=p: _poison(kc.reconstruction_error_case(long, d, p, dev), 1, 1, kc.CHUNK + 100)
    for kind in kc.KINDS:
        for position, side in ((0, "real"), (1, "fake")):
            b[f"adversarial_loss-{kind}-nan_in_{side}"] = lambda d, dev, k=kind, pos=position: _poison(kc.adversarial_loss_case(patch, d, k, "both", dev), pos, 40, 17)
    return b


NAN = _nan_builders()
NAN_IDS = list(NAN)


@pytest.mark.parametrize("dtype", dtype_params)
@pytest.mark.parametrize("name", NAN_IDS)
@pytest.mark.parametrize("backend", backend_params)
def test_nan_propagates(backend, name, dtype):
    _skip_unusable(backend)
    case = NAN[name](dtype, dev(backend))
    with fastgan.use_backend(backend):
        out = kc.PUBLIC[case.op](*case.args)
    expected = kc.REFERENCE[case.op](*case.ref_args)
    assert torch.isnan(expected).any()  # the reference propagates NaN (the premise of this test)
    # NaN exactly where the reference has NaN; finite values agree
    kc.assert_matches(out, expected, dtype, f"{backend} {name}")


# ---------------------------------------------------------------------------- zero-norm rows
@pytest.mark.parametrize("dtype", dtype_params)
@pytest.mark.parametrize("center", [1.0, 0.0])
@pytest.mark.parametrize("one_sided", [False, True], ids=["two_sided", "one_sided"])
@pytest.mark.parametrize("spec", [kc.Spec("odd", kc.ODD), kc.Spec("long", kc.LONG), kc.Spec("B1", (1, 3, 4, 5)), kc.Spec("long_cl", kc.LONG, kc.L3)], ids=kc.spec_id)
@pytest.mark.parametrize("backend", backend_params)
def test_grad_norm_penalty_zero_norm_sample_has_zero_gradient(backend, spec, one_sided, center, dtype):
    _skip_unusable(backend)
    spec = kc.Spec(spec.id, spec.shape, spec.layouts, params=(("center", center),))
    case = kc.grad_norm_penalty_case(spec, dtype, one_sided, dev(backend))
    zero = 1 if spec.shape[0] > 1 else 0
    case.args[0] = case.args[0].clone()
    case.args[0][zero] = 0
    case.ref_args[0] = case.ref_args[0].clone()
    case.ref_args[0][zero] = 0
    args, leaves, ref_args, ref_leaves = kc.with_grad(case)
    out, (grad,) = kc.run_backend(backend, case, args, leaves)
    expected, (expected_grad,) = kc.run_reference64(case, ref_args, ref_leaves)
    assert torch.isfinite(out) and torch.isfinite(grad).all(), "non-finite result for a zero-norm sample"
    assert torch.equal(grad[zero], torch.zeros_like(grad[zero])), "the zero-norm sample's gradient is not exactly 0"
    kc.assert_matches(out, expected, dtype, f"{backend} grad_norm_penalty forward with a zero-norm sample")
    kc.assert_matches(grad, expected_grad, dtype, f"{backend} grad_norm_penalty d/dgrads with a zero-norm sample")


# ------------------------------------------------------------------------------- determinism
def _determinism_builders() -> dict:
    long3, many = kc.Spec("long3", kc.LONG3), kc.Spec("manyB", (33, 3, 4, 5))
    patch = kc.Spec("patch64", (64, 1, 30, 30))
    b = {
        "interpolate-long3": lambda d, dev: kc.interpolate_case(long3, d, dev),
        "interpolate-long-cl": lambda d, dev: kc.interpolate_case(kc.Spec("l", kc.LONG, kc.L3), d, dev),
        "grad_norm_penalty-long3": lambda d, dev: kc.grad_norm_penalty_case(long3, d, False, dev),
        "grad_norm_penalty-long-cl-one_sided": lambda d, dev: kc.grad_norm_penalty_case(kc.Spec("l", kc.LONG, kc.L3), d, True, dev),
        "grad_norm_penalty-manyB": lambda d, dev: kc.grad_norm_penalty_case(many, d, False, dev),
        "reconstruction_error-long3-p1": lambda d, dev: kc.reconstruction_error_case(long3, d, 1, dev),
        "reconstruction_error-long-p2": lambda d, dev: kc.reconstruction_error_case(kc.Spec("l", kc.LONG), d, 2, dev),
        "reconstruction_error-manyB-p2": lambda d, dev: kc.reconstruction_error_case(many, d, 2, dev),
    }
    for kind in kc.KINDS:
        b[f"adversarial_loss-{kind}-patch64"] = lambda d, dev, k=kind: kc.adversarial_loss_case(patch, d, k, "both", dev)
    return b


DETERMINISM = _determinism_builders()
DET_IDS = list(DETERMINISM)


@pytest.mark.parametrize("dtype", [pytest.param(d, id=kc.DTYPE_IDS[d]) for d in (kc.F32, kc.F64, kc.BF16, kc.F16)])
@pytest.mark.parametrize("name", DET_IDS)
@pytest.mark.parametrize("backend", backend_params)
def test_run_to_run_bitwise_identical(backend, name, dtype):
    _skip_unusable(backend)
    case = DETERMINISM[name](dtype, dev(backend))
    results = []
    for _ in range(3):
        args, leaves, _, _ = kc.with_grad(case)
        results.append(kc.run_backend(backend, case, args, leaves))
    (out0, grads0), rest = results[0], results[1:]
    for out, grads in rest:
        assert torch.equal(out, out0), f"{name}: forward differs between runs"
        for n, g, g0 in zip(case.tensor_names(), grads, grads0):
            assert torch.equal(g, g0), f"{name}: d/d{n} differs between runs"


# ------------------------------------------------------------------------ double backward
DOUBLE_IDS = [n for n in SMALL_IDS if "mixed" not in n and "strided" not in n and "batch_differs" not in n]


@pytest.mark.parametrize("name", DOUBLE_IDS)
@backend_params_compiled_and_triton
def test_higher_order_gradients_match_the_reference(backend, name):
    """The backward of every backend is itself differentiable: second and third derivatives (with
    respect to the inputs and to the incoming gradient) equal the reference's, in fp64."""
    _skip_unusable(backend)
    case = small_case(name, kc.F64, dev(backend))

    def orders(b):
        args, leaves, _, _ = kc.with_grad(case)
        cot = case.cot.detach().clone().requires_grad_(True)
        with fastgan.use_backend(b):
            out = kc.PUBLIC[case.op](*args)
            grads = torch.autograd.grad(out, leaves, cot, create_graph=True)
            # a non-linear function of the gradients, so that every second derivative shows
            second_in = sum((g.square() * (1.5 + torch.arange(g.numel(), dtype=g.dtype).reshape(g.shape))).sum()
                            for g in grads)
            second = torch.autograd.grad(second_in, [*leaves, cot], create_graph=True, allow_unused=True)
            third_in = sum(g.pow(3).sum() for g in second if g is not None and g.requires_grad)
            third = (
                torch.autograd.grad(third_in, [*leaves, cot], allow_unused=True)
                if torch.is_tensor(third_in) else [None] * (len(leaves) + 1)
            )
        return grads, second, third

    expected, got = orders("reference"), orders(backend)
    names = [*case.tensor_names(), "grad_output"]
    for order, (exp, act) in enumerate(zip(expected, got), start=1):
        for n, e, a in zip(names, exp, act):
            if e is None or a is None:  # d/dn does not exist: both must agree it does not
                assert (e is None or not e.abs().sum()) and (a is None or not a.abs().sum()), (
                    f"{name}: order {order} d/d{n}: reference {e}, {backend} {a}")
                continue
            torch.testing.assert_close(a, e, rtol=1e-9, atol=1e-10, msg=lambda m: f"{name}: order {order} d/d{n}: {m}")


# ----------------------------------------------------------------------------------- opcheck
def main_op_samples(name: str) -> list[tuple]:
    """Sample positional arguments of the public custom op ``torch.ops.fastgan.<name>``."""
    g = kc.generator("opcheck", name)

    def t(shape, dtype=kc.F32, rg=True, layout="contig", norm=False, positive=False):
        x = kc.rows_with_norms(shape, g) if norm else kc.away_from(torch.randn(shape, generator=g, dtype=kc.F64) * 2, (1.0, -1.0))
        x = x.abs() if positive else x
        return kc.arrange(x.to(dtype), layout).requires_grad_(rg and dtype.is_floating_point)

    if name == "interpolate":
        return [
            (t((3, 4, 5)), t((3, 4, 5)), t((3,))),
            (t((2, 3, 4, 5), kc.F64), t((2, 3, 4, 5), kc.F64, layout="channels_last"), t((2,), kc.F64)),
            (t((1, 7), kc.BF16), t((1, 7), kc.BF16), t((1,), kc.BF16)),
            (t((4, 3)), t((4, 3), rg=False), t((4,), rg=False)),
            (t((2, 3), kc.F16, rg=False, layout="strided"), t((2, 3), kc.F16, rg=False), t((2,), kc.F16, rg=False)),
        ]
    if name == "grad_norm_penalty":
        zero_row = kc.rows_with_norms((3, 6), g)
        zero_row[1] = 0
        return [
            (t((3, 4, 5), norm=True), 1.0, False),
            (t((2, 3, 4, 5), kc.F64, layout="channels_last", norm=True), 0.5, True),
            (zero_row.float().requires_grad_(True), 1.0, False),
            (t((4, 6), kc.F16, norm=True), 0.0, False),
            (t((2, 5), kc.BF16, rg=False, layout="permuted", norm=True), 1.0, True),
        ]
    if name == "reconstruction_error":
        return [
            (t((3, 4, 5)), t((3, 4, 5)), 1),
            (t((2, 3, 4, 5), kc.F64, layout="strided"), t((2, 3, 4, 5), kc.F64, layout="channels_last"), 2),
            (t((2, 9), kc.BF16), t((2, 9), kc.BF16), 2),
            (t((4, 3)), t((4, 3), rg=False), 1),
            (t((3, 2), kc.F16, rg=False), t((3, 2), kc.F16, rg=False), 1),
        ]
    if name == "adversarial_loss":
        samples = [(t((4, 1)), t((4, 1)), kind, 0.75, -0.25, 1.5) for kind in kc.KINDS]
        samples += [
            (None, t((3, 1, 2, 2), kc.F64), "lsgan", 1.0, 0.0, 1.0),
            (t((5,), kc.BF16), None, "bce", 1.0, 0.0, 1.0),
            (t((5, 1)), t((3, 1)), "hinge", 1.0, 0.0, 1.0),
            (t((6,), kc.F16, positive=True), t((6,), kc.F16, rg=False, positive=True), "margin", 1.0, 0.0, 2.0),
            (t((2, 3, 2, 2), layout="channels_last", rg=False), t((2, 3, 2, 2), rg=False), "wgan", 1.0, 0.0, 1.0),
        ]
        return samples
    return []


class _Recorder(TorchDispatchMode):
    """Records every ``fastgan::*`` operator call that reaches the dispatcher below autograd,
    with copies of its arguments (sample inputs for the internal helper operators)."""

    def __init__(self):
        super().__init__()
        self.calls: dict[str, list[tuple]] = {}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func.namespace == "fastgan":
            copy = tree_map(lambda a: a.detach().clone() if isinstance(a, torch.Tensor) else a, (args, kwargs))
            self.calls.setdefault(func.__name__.split(".")[0], []).append((func, *copy))
        return func(*args, **kwargs)


_SAMPLES: dict[str, list] = {}


def opcheck_samples() -> dict[str, list]:
    """``name -> [(OpOverload, args, kwargs)]`` for every fastgan operator: the public ones from
    :func:`main_op_samples`, the helpers as recorded while the public ones run forward and
    backward (at most four per helper, of different dtypes first)."""
    if _SAMPLES:
        return _SAMPLES
    recorder = _Recorder()
    for name in kc.OP_NAMES:
        op = getattr(torch.ops.fastgan, name).default
        for args in main_op_samples(name):
            _SAMPLES.setdefault(name, []).append((op, args, {}))
            leaves = [a for a in args if isinstance(a, torch.Tensor) and a.requires_grad]
            with recorder:
                out = op(*args)
                if leaves:
                    torch.autograd.grad(out, leaves, torch.ones_like(out))
    for name, calls in recorder.calls.items():
        if name in kc.OP_NAMES:
            continue
        by_dtype: dict = {}
        for func, args, kwargs in calls:
            key = tuple(a.dtype for a in args if isinstance(a, torch.Tensor))
            by_dtype.setdefault(key, []).append((func, args, kwargs))
        chosen = [v[0] for v in by_dtype.values()] + [c for v in by_dtype.values() for c in v[1:]]
        _SAMPLES[name] = chosen[:4]
    return _SAMPLES


OPCHECK_NAMES = kc.fastgan_op_names() if kc.HAS_CUSTOM_OPS else ["<no fastgan ops>"]


@needs_custom_ops
@pytest.mark.parametrize("name", OPCHECK_NAMES)
def test_opcheck(name):
    samples = opcheck_samples().get(name)
    assert samples, (
        f"no sample inputs for torch.ops.fastgan.{name}: it is neither a public operator of "
        f"fastgan.ops nor called by one (schemas: {getattr(torch.ops.fastgan, name)._schemas if hasattr(getattr(torch.ops.fastgan, name), '_schemas') else '?'})"
    )
    for op, args, kwargs in samples:
        torch.library.opcheck(op, args, kwargs)


@needs_custom_ops
def test_every_public_operator_is_a_custom_op():
    names = kc.fastgan_op_names()
    for op in kc.OP_NAMES:
        assert op in names, f"torch.ops.fastgan.{op} is not registered (registered: {names})"


# ------------------------------------------------------------------- without the extension
_FALLBACK_SCRIPT = textwrap.dedent(
    """
    import sys, warnings
    sys.modules["fastgan._C"] = None  # the extension is missing
    inputs_path, results_path = sys.argv[1], sys.argv[2]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        import torch
        import fastgan
        import fastgan.functional as FG
        from fastgan import backends
        inputs = torch.load(inputs_path, weights_only=True)
        results = {"available": fastgan.available_backends(),
                   "cpu_status": backends.backend_status()["cpu"][1],
                   "has_ops": hasattr(torch.ops.fastgan, "interpolate")}
        try:
            fastgan.use_backend("cpu")
            results["use_cpu"] = "no error"
        except fastgan.BackendUnavailableError as exc:
            results["use_cpu"] = "BackendUnavailableError: " + str(exc)
        for rep in range(2):
            x = {k: v.clone().requires_grad_(True) for k, v in inputs.items()}
            outs = {
                "interpolate": fastgan.ops.interpolate(x["real"], x["fake"], x["alpha"]),
                "grad_norm_penalty": fastgan.ops.grad_norm_penalty(x["grads"], 1.0, True),
                "reconstruction_error": fastgan.ops.reconstruction_error(x["real"], x["fake"], 2),
                "adversarial_loss": fastgan.ops.adversarial_loss(x["scores"], x["scores2"], "hinge"),
                "wgan_gp": FG.wgan_critic_loss(x["scores"], x["scores2"]) + FG.gradient_norm_penalty(x["grads"]),
            }
            total = sum(o.sum() for o in outs.values())
            grads = torch.autograd.grad(total, list(x.values()))
            if rep == 0:
                results["outputs"] = {k: v.detach() for k, v in outs.items()}
                results["grads"] = dict(zip(x.keys(), grads))
    results["warnings"] = [(w.category.__name__, str(w.message)) for w in caught
                           if issubclass(w.category, fastgan.FastganWarning)]
    results["extension_imported"] = sys.modules.get("fastgan._C") is not None
    torch.save(results, results_path)
    """
)


def test_fallback_without_the_extension(tmp_path):
    g = kc.generator("fallback")
    inputs = {
        "real": torch.randn(3, 2, 5, 4, generator=g),
        "fake": torch.randn(3, 2, 5, 4, generator=g),
        "alpha": torch.rand(3, generator=g),
        "grads": kc.rows_with_norms((3, 2, 5, 4), g).float(),
        "scores": kc.logits((6, 1), g).float(),
        "scores2": kc.logits((6, 1), g).float(),
    }
    torch.save(inputs, tmp_path / "inputs.pt")
    script = tmp_path / "fallback.py"
    script.write_text(_FALLBACK_SCRIPT)
    # a plain CPU environment: no FASTGAN_BACKEND, no Triton interpreter (tests/conftest.py)
    env = {k: v for k, v in os.environ.items() if k not in ("FASTGAN_BACKEND", "TRITON_INTERPRET")}
    r = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "inputs.pt"), str(tmp_path / "results.pt")],
        env=env, capture_output=True, text=True, timeout=180,
    )
    assert r.returncode == 0, r.stderr
    res = torch.load(tmp_path / "results.pt", weights_only=True)
    assert res["available"] == (["reference", "triton"] if kc.TRITON_ON_GPU else ["reference"])
    assert "not built" in res["cpu_status"]
    assert res["use_cpu"].startswith("BackendUnavailableError"), res["use_cpu"]
    assert not res["has_ops"] and not res["extension_imported"]
    assert len(res["warnings"]) == 1, f"expected exactly one FastganWarning, got {res['warnings']}"
    assert "reference" in res["warnings"][0][1]

    # the subprocess's results are the reference's, and every backend here agrees with them
    x = {k: v.clone().requires_grad_(True) for k, v in inputs.items()}
    ref = {
        "interpolate": kc.REFERENCE["interpolate"](x["real"], x["fake"], x["alpha"]),
        "grad_norm_penalty": kc.REFERENCE["grad_norm_penalty"](x["grads"], 1.0, True),
        "reconstruction_error": kc.REFERENCE["reconstruction_error"](x["real"], x["fake"], 2),
        "adversarial_loss": kc.REFERENCE["adversarial_loss"](x["scores"], x["scores2"], "hinge", 1.0, 0.0, 1.0),
    }
    for name, value in ref.items():
        torch.testing.assert_close(res["outputs"][name], value.detach(), rtol=0, atol=0, msg=lambda m: f"{name}: {m}")
    for backend in kc.BACKENDS:
        if dev(backend) != "cpu":
            continue
        with fastgan.use_backend(backend):
            for name in ref:
                args = {
                    "interpolate": (x["real"], x["fake"], x["alpha"]),
                    "grad_norm_penalty": (x["grads"], 1.0, True),
                    "reconstruction_error": (x["real"], x["fake"], 2),
                    "adversarial_loss": (x["scores"], x["scores2"], "hinge", 1.0, 0.0, 1.0),
                }[name]
                got = kc.PUBLIC[name](*[a.detach() if isinstance(a, torch.Tensor) else a for a in args])
                kc.assert_matches(got, res["outputs"][name].double(), kc.F32, f"{backend} {name} vs the fallback")
    # gradients of the subprocess (reference path) against the in-process reference, with the
    # functional WGAN-GP term included on both sides
    wgan_gp = kc.REFERENCE["adversarial_loss"](x["scores"], x["scores2"], "wgan", 1.0, 0.0, 1.0) + kc.REFERENCE["grad_norm_penalty"](x["grads"], 1.0, False)
    torch.testing.assert_close(res["outputs"]["wgan_gp"], wgan_gp.detach(), rtol=0, atol=0)
    ref_grads = dict(zip(x.keys(), torch.autograd.grad(sum(o.sum() for o in ref.values()) + wgan_gp, list(x.values()))))
    for k, v in ref_grads.items():
        torch.testing.assert_close(res["grads"][k], v, rtol=1e-6, atol=1e-7, msg=lambda m: f"d/d{k}: {m}")
