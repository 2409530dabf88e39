"""Property tests (hypothesis): every operator and every family on every available backend
against the reference, over random shapes, strides, dtypes and values.

* shapes: batch 1 to 300, up to 4 non-batch dimensions of sizes 1 to 13 (odd sizes likely),
  at most ``max_numel(backend)`` elements per tensor;
* strides: contiguous, transposed (any two dimensions swapped in memory, the batch included),
  sliced (every second element of the batch and the last dimension, the gaps filled with NaN),
  channels-last (4-D), expanded (stride 0 along one dimension);
* dtypes: fp32, fp64, bf16, fp16;
* values: normal, logits up to ±1e4, per-sample norms from 1e-15 to 1e18, rows of exact zeros,
  subnormal numbers mixed into rows, and magnitudes up to the dtype's range (a result beyond it
  must be the infinity it rounds to).

Operators are compared with the float64 reference on the same rounded values within
``kernel_cases.TOL`` (forward and the gradient of every tensor input); the families within the
family tolerance of ``fastgan check`` (``fastgan.check.FAMILY_TOL``).

Ranges and their reasons: per-sample gradient norms stay within [1e-15, 1e18] for fp32/bf16
inputs so that the penalty (n − center)² stays within fp32's range (the sums of squares are fp64
for every dtype: docs/design.md §6); the extremes beyond that range are regular tests,
``test_edge_cases.py::test_grad_norm_penalty_huge_norm_has_finite_gradient`` and
``test_grad_norm_penalty_tiny_norm_fp32``. Examples are
derandomised (the same ones every run), and every failure hypothesis found while writing these
tests is a regular test in ``test_edge_cases.py``.

A backend running in Triton's interpreter (~1000x slower than torch) gets fewer examples of at
most 4096 elements.
"""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import HealthCheck, Phase, assume, given, settings
from hypothesis import strategies as st

import fastgan
import fastgan.functional as FG
from fastgan import check as fcheck

import kernel_cases as kc

F64 = torch.float64
BACKEND_PARAMS = [pytest.param(b, id=b) for b in kc.BACKENDS]


def interpreted(backend: str) -> bool:
    return fcheck.interpreted(backend)


def max_numel(backend: str) -> int:
    return 4096 if interpreted(backend) else 20000


def max_examples(backend: str) -> int:
    return 10 if interpreted(backend) else 60


def _settings(backend: str):
    # no shrinking in the interpreter: a shrink there takes minutes (the failing example is
    # printed as found)
    phases = (Phase.explicit, Phase.reuse, Phase.generate) if interpreted(backend) else tuple(Phase)
    return settings(
        max_examples=max_examples(backend),
        deadline=None,
        derandomize=True,
        database=None,
        phases=phases,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    )


def _assume_representable(backend: str, dtype: torch.dtype, regime: str) -> None:
    """Triton's interpreter emulates bfloat16 in numpy: it flushes bf16 subnormals to 0 on load
    and truncates on store (a one-line Triton kernel shows it; see
    ``test_edge_cases.py::test_bf16_subnormals``). On a GPU, Triton converts bf16 exactly."""
    assume(not (interpreted(backend) and dtype == torch.bfloat16 and regime == "denormal"))


def _skip_unusable(backend: str) -> None:
    if kc.DEVICE[backend] == "cuda" and not torch.cuda.is_available():  # pragma: no cover
        pytest.skip("no CUDA device")


# --------------------------------------------------------------------------------- strategies
LAYOUTS = ("contig", "transposed", "sliced", "channels_last", "expanded")
REGIMES = ("normal", "large", "tiny_norm", "huge_norm", "zero_rows", "denormal", "range_edge")


@st.composite
def shapes(draw, cap: int, min_batch: int = 1, max_dims: int = 4) -> tuple[int, ...]:
    ndim = draw(st.integers(0, max_dims))
    dims = [draw(st.one_of(st.sampled_from([1, 3, 5, 7, 9, 11, 13]), st.integers(1, 13))) for _ in range(ndim)]
    while math.prod(dims) * min_batch > cap and dims:
        dims[dims.index(max(dims))] = max(1, max(dims) // 2)
    per = max(1, math.prod(dims))
    batch = draw(st.integers(min_batch, max(min_batch, min(300, cap // per))))
    return (batch, *dims)


def _subnormal(dtype: torch.dtype) -> float:
    return torch.finfo(dtype).tiny / 8  # a subnormal number of the dtype


def _max_magnitude(dtype: torch.dtype, norms: bool) -> float:
    """The largest magnitude drawn: near the dtype's range, or for per-sample norms (whose squares
    fastgan sums in fp32 for fp16/bf16/fp32) such that the norm stays below 1e18."""
    if norms and dtype in (torch.bfloat16, torch.float32):
        return 1e15
    return {torch.float16: 3.0e4, torch.bfloat16: 1e30, torch.float32: 1e30, F64: 1e100}[dtype]


def values(shape, dtype, regime, g, *, norms=False) -> torch.Tensor:
    """float64 values of ``shape`` in ``regime`` (see the module docstring); ``norms``: the
    values are gradients whose per-sample norms are taken."""
    x = torch.randn(shape, generator=g, dtype=F64)
    b = shape[0]
    if regime == "large":
        x = (torch.rand(shape, generator=g, dtype=F64) * 2 - 1) * 1e4
    elif regime in ("tiny_norm", "huge_norm"):
        lo, hi = (-15, -3) if regime == "tiny_norm" else (3, 18)
        if dtype == torch.float16:  # per element within fp16's range
            lo, hi = (-4, -1) if regime == "tiny_norm" else (2, 4)
        exps = lo + (hi - lo) * torch.rand(b, generator=g, dtype=F64)
        flat = x.reshape(b, -1)
        flat = flat / torch.linalg.vector_norm(flat, dim=1, keepdim=True).clamp_min(1e-300)
        if dtype == torch.float16 and regime == "huge_norm":
            flat = flat / flat.abs().amax(dim=1, keepdim=True).clamp_min(1e-300)  # max |x| = 10^e
        x = (flat * (10.0 ** exps)[:, None]).reshape(shape)
    elif regime == "zero_rows":
        keep = torch.rand(b, generator=g, dtype=F64) < 0.5
        if b > 1:
            keep[0] = True
        x = x * keep.to(F64).reshape((b,) + (1,) * (len(shape) - 1))
    elif regime == "denormal":
        mask = torch.rand(shape, generator=g, dtype=F64) < 0.3
        mask.reshape(b, -1)[:, 0] = False  # every row keeps a normal number (reshape: a view)
        x = torch.where(mask, torch.sign(x) * _subnormal(dtype) * torch.rand(shape, generator=g, dtype=F64).add(0.1), x)
    elif regime == "range_edge":
        x = x / x.abs().max().clamp_min(1e-300) * _max_magnitude(dtype, norms)
    return x


def arrange(t: torch.Tensor, layout: str, g: torch.Generator) -> torch.Tensor:
    """``t`` (already in the dtype under test) in memory layout ``layout``; for ``expanded`` the
    values are first made constant along one dimension (the caller reads the values back)."""
    if layout == "sliced":
        return kc.arrange(t, "strided")
    if layout == "channels_last" and t.dim() == 4:
        return kc.arrange(t, "channels_last")
    if layout == "transposed" and t.dim() >= 2:
        i, j = sorted(torch.randperm(t.dim(), generator=g)[:2].tolist())
        return t.transpose(i, j).contiguous().transpose(i, j)
    if layout == "expanded":
        dims = [d for d in range(t.dim()) if t.shape[d] > 1]
        if dims:
            d = dims[int(torch.randint(len(dims), (1,), generator=g))]
            return t.narrow(d, 0, 1).clone().expand(t.shape)
    return t.clone()


def _place(values64: torch.Tensor, dtype: torch.dtype, layout: str, device: str, g: torch.Generator):
    """(tensor in dtype / layout / device, float64 CPU copy of exactly its values)."""
    t = arrange(values64.to(dtype), layout, g).to(device) if device == "cpu" else arrange(values64.to(dtype).to(device), layout, g)
    return t, t.detach().to("cpu", F64).contiguous().clone()


common = st.fixed_dictionaries({
    "dtype": st.sampled_from(kc.DTYPES),
    "layout": st.sampled_from(LAYOUTS),
    "layout2": st.sampled_from(LAYOUTS),
    "regime": st.sampled_from(REGIMES),
    "seed": st.integers(0, 2**31 - 1),
})


# ------------------------------------------------------------------------------- comparison
def _range_adjusted(expected: torch.Tensor, actual: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """The expected values as the dtype can hold them: an exact value beyond the dtype's range is
    the infinity it rounds to; one below its smallest normal number (``tiny``) is met by any
    result within ``tiny`` of it (the dtype's subnormal band: fp32 accumulation cannot resolve
    it, and the output has few or no significant bits there)."""
    rounded = expected.to(dtype).to(F64)
    out = torch.where(torch.isinf(rounded) & torch.isfinite(expected), rounded, expected)
    a = actual.detach().to("cpu", F64)
    tiny = torch.finfo(dtype).tiny
    in_band = (expected.abs() < tiny) & ((a - expected).abs() <= tiny)
    return torch.where(in_band, a, out)


def check_case(backend: str, case: kc.Case, label: str) -> None:
    """``kernel_cases.check_against_reference``, with results beyond the dtype's range expected
    as infinities."""
    args, leaves, ref_args, ref_leaves = kc.with_grad(case)
    out, grads = kc.run_backend(backend, case, args, leaves)
    expected, expected_grads = kc.run_reference64(case, ref_args, ref_leaves)
    scales = kc.cancellation_scales(case)
    where = f"{backend} {case.op} {label}"
    kc.assert_matches(out, _range_adjusted(expected, out, case.dtype), case.dtype, f"{where} forward", scales.get("forward", 0.0))
    for name, got, exp in zip(case.tensor_names(), grads, expected_grads):
        kc.assert_matches(got, _range_adjusted(exp, got, case.dtype), case.dtype, f"{where} d/d{name}", scales.get(name, 0.0))


def _case(op, tensors, params, out_shape, dtype, device, g) -> kc.Case:
    args, ref_args = [], []
    for t in tensors:
        if t is None:
            args.append(None)
            ref_args.append(None)
        else:
            args.append(t[0])
            ref_args.append(t[1])
    cot64 = kc.cotangent(out_shape, g).to(dtype)
    return kc.Case(op, args + list(params), ref_args + list(params), cot64.to(device), cot64.to(F64), dtype)


# ------------------------------------------------------------------------------ operators
@pytest.mark.parametrize("backend", BACKEND_PARAMS)
def test_interpolate_property(backend):
    _skip_unusable(backend)
    device = kc.DEVICE[backend]

    @_settings(backend)
    @given(shape=shapes(max_numel(backend)), c=common)
    def run(shape, c):
        _assume_representable(backend, c["dtype"], c["regime"])
        g = kc.generator("interpolate", shape, c["seed"])
        dtype = c["dtype"]
        real = _place(values(shape, dtype, c["regime"], g), dtype, c["layout"], device, g)
        fake = _place(values(shape, dtype, c["regime"], g), dtype, c["layout2"], device, g)
        alpha = _place(torch.rand(shape[0], generator=g, dtype=F64), dtype, "contig", device, g)
        case = _case("interpolate", [real, fake, alpha], (), shape, dtype, device, g)
        check_case(backend, case, f"shape={shape} {c}")

    run()


@pytest.mark.parametrize("backend", BACKEND_PARAMS)
def test_grad_norm_penalty_property(backend):
    _skip_unusable(backend)
    device = kc.DEVICE[backend]

    @_settings(backend)
    @given(shape=shapes(max_numel(backend)), c=common, center=st.sampled_from([0.0, 0.5, 1.0, 2.5]), one_sided=st.booleans())
    def run(shape, c, center, one_sided):
        _assume_representable(backend, c["dtype"], c["regime"])
        g = kc.generator("grad_norm_penalty", shape, c["seed"])
        dtype = c["dtype"]
        grads = _place(values(shape, dtype, c["regime"], g, norms=True), dtype, c["layout"], device, g)
        case = _case("grad_norm_penalty", [grads], (center, one_sided), (), dtype, device, g)
        check_case(backend, case, f"shape={shape} center={center} one_sided={one_sided} {c}")

    run()


@pytest.mark.parametrize("backend", BACKEND_PARAMS)
def test_reconstruction_error_property(backend):
    _skip_unusable(backend)
    device = kc.DEVICE[backend]

    @_settings(backend)
    @given(shape=shapes(max_numel(backend)), c=common, p=st.sampled_from([1, 2]))
    def run(shape, c, p):
        _assume_representable(backend, c["dtype"], c["regime"])
        g = kc.generator("reconstruction_error", shape, c["seed"])
        dtype = c["dtype"]
        x = _place(values(shape, dtype, c["regime"], g), dtype, c["layout"], device, g)
        r = _place(values(shape, dtype, c["regime"], g), dtype, c["layout2"], device, g)
        case = _case("reconstruction_error", [x, r], (p,), (shape[0],), dtype, device, g)
        check_case(backend, case, f"shape={shape} p={p} {c}")

    run()


@pytest.mark.parametrize("backend", BACKEND_PARAMS)
def test_adversarial_loss_property(backend):
    _skip_unusable(backend)
    device = kc.DEVICE[backend]
    params = st.floats(-3, 3, allow_nan=False).map(lambda v: round(v, 3))

    @_settings(backend)
    @given(
        shape=shapes(max_numel(backend) // 2), c=common, kind=st.sampled_from(kc.KINDS),
        side=st.sampled_from(kc.SIDES), other_batch=st.integers(1, 300),
        real_target=params, fake_target=params, margin=params.map(abs),
    )
    def run(shape, c, kind, side, other_batch, real_target, fake_target, margin):
        _assume_representable(backend, c["dtype"], c["regime"])
        g = kc.generator("adversarial_loss", shape, c["seed"])
        dtype = c["dtype"]
        per = math.prod(shape[1:])
        shape2 = (max(1, min(other_batch, (max_numel(backend) // 2) // per)),) + shape[1:]
        real = _place(values(shape, dtype, c["regime"], g), dtype, c["layout"], device, g) if side != "fake_only" else None
        fake = _place(values(shape2, dtype, c["regime"], g), dtype, c["layout2"], device, g) if side != "real_only" else None
        case = _case("adversarial_loss", [real, fake], (kind, real_target, fake_target, margin), (), dtype, device, g)
        check_case(backend, case, f"shape={shape}/{shape2} kind={kind} {side} targets={real_target},{fake_target} margin={margin} {c}")

    run()


# -------------------------------------------------------------------------------- families
def _critic(w: torch.Tensor):
    def critic(x):
        return torch.tanh(x.reshape(x.shape[0], -1) @ w).sum(1)
    return critic


#: name -> (input kinds, call). Input kinds: "s" scores, "s2" scores of the same non-batch
#: shape (any batch), "img" a per-sample tensor, "w" critic weights, "emb" embeddings.
FAMILIES = {
    "gan_discriminator": (("s", "s2"), lambda r, f, h: FG.gan_discriminator_loss(r, f)),
    "gan_generator": (("s",), lambda f, h: FG.gan_generator_loss(f)),
    "gan_generator_saturating": (("s",), lambda f, h: FG.gan_generator_loss(f, saturating=True)),
    "wgan_critic": (("s", "s2"), lambda r, f, h: FG.wgan_critic_loss(r, f)),
    "wgan_generator": (("s",), lambda f, h: FG.wgan_generator_loss(f)),
    "lsgan_discriminator": (("s", "s2"), lambda r, f, h: FG.lsgan_discriminator_loss(r, f, a=h[0], b=h[1])),
    "lsgan_generator": (("s",), lambda f, h: FG.lsgan_generator_loss(f, c=h[0])),
    "hinge_discriminator": (("s", "s2"), lambda r, f, h: FG.hinge_discriminator_loss(r, f)),
    "hinge_generator": (("s",), lambda f, h: FG.hinge_generator_loss(f)),
    "ebgan_discriminator": (("img", "img", "img", "img"), lambda x, rx, y, ry, h: FG.ebgan_discriminator_loss(
        FG.reconstruction_error(x, rx, p=2), FG.reconstruction_error(y, ry, p=2), margin=abs(h[0]))),
    "ebgan_generator_pt": (("img", "img", "emb"), lambda y, ry, e, h: FG.ebgan_generator_loss(
        FG.reconstruction_error(y, ry, p=2), e, pt_weight=abs(h[1]))),
    "began_discriminator": (("img", "img", "img", "img"), lambda x, rx, y, ry, h: FG.began_discriminator_loss(
        FG.reconstruction_error(x, rx, p=1), FG.reconstruction_error(y, ry, p=1), k=min(abs(h[0]), 1.0))),
    "began_generator": (("img", "img"), lambda y, ry, h: FG.began_generator_loss(FG.reconstruction_error(y, ry, p=1))),
    "wgan_gp": (("img", "img", "w"), lambda r, f, w, h: FG.gradient_penalty(
        _critic(w), r, f, alpha=torch.linspace(0, 1, r.shape[0], dtype=r.dtype, device=r.device), center=abs(h[0]))),
    "r1": (("img", "w"), lambda x, w, h: FG.r1_penalty(_critic(w), x, gamma=abs(h[1]))),
}


@pytest.mark.parametrize("backend", BACKEND_PARAMS)
def test_families_property(backend):
    """Every family of ``fastgan.functional`` on ``backend`` in the dtype under test against the
    reference backend in float64 on the same rounded values (``fastgan.check.FAMILY_TOL``)."""
    _skip_unusable(backend)
    device = kc.DEVICE[backend]
    cap = max_numel(backend) // 4

    @_settings(backend)
    @given(
        name=st.sampled_from(sorted(FAMILIES)), shape=shapes(cap, min_batch=2, max_dims=3), batch2=st.integers(1, 300),
        dtype=st.sampled_from(kc.DTYPES), layout=st.sampled_from(LAYOUTS), seed=st.integers(0, 2**31 - 1),
        hp=st.tuples(st.floats(-2, 2, allow_nan=False), st.floats(-2, 2, allow_nan=False)).map(lambda t: (round(t[0], 3), round(t[1], 3))),
        regime=st.sampled_from(("normal", "large", "zero_rows", "denormal")),
    )
    def run(name, shape, batch2, dtype, layout, seed, hp, regime):
        _assume_representable(backend, dtype, regime)
        kinds, fn = FAMILIES[name]
        g = kc.generator("family", name, shape, seed)
        per = math.prod(shape[1:])
        inputs64, inputs = [], []
        for k in kinds:
            if k == "s2":
                s = (max(1, min(batch2, cap // per)),) + shape[1:]
            elif k == "w":
                s = (per, 4)
            elif k == "emb":
                s = (shape[0], 3)
            else:
                s = shape
            reg = regime if k in ("s", "s2", "img") else "normal"
            v64 = values(s, dtype, reg, g) * (0.3 if k == "w" else 1.0)
            t, r64 = _place(v64, dtype, layout if k in ("s", "s2", "img") else "contig", device, g)
            inputs.append(t)
            inputs64.append(r64)
        wants = [k != "img" or not name.startswith(("wgan_gp", "r1")) for k in kinds]
        leaves = [t.detach().requires_grad_(w) for t, w in zip(inputs, wants)]
        leaves64 = [t.detach().requires_grad_(w) for t, w in zip(inputs64, wants)]
        with fastgan.use_backend(backend):
            out = fn(*leaves, hp)
            diff = [t for t, w in zip(leaves, wants) if w]
            grads = torch.autograd.grad(out, diff, allow_unused=True, materialize_grads=True)
        with fastgan.use_backend("reference"):
            out64 = fn(*leaves64, hp)
            diff64 = [t for t, w in zip(leaves64, wants) if w]
            grads64 = torch.autograd.grad(out64, diff64, allow_unused=True, materialize_grads=True)
        tol = fcheck.FAMILY_TOL[dtype]
        scale = max(t.detach().abs().mean().item() for t in inputs64) if name.startswith(("wgan", "hinge_generator", "ebgan_disc", "began_disc")) else 0.0
        label = f"{backend} {name} shape={shape} {kc.DTYPE_IDS[dtype]} {layout} {regime} hp={hp}"
        _, _, why = fcheck.compare(out, out64, dtype, tol, scale)
        assert why is None, f"{label} forward: {why}"
        for i, (a, e) in enumerate(zip(grads, grads64)):
            _, _, why = fcheck.compare(a, e, dtype, tol)
            assert why is None, f"{label} gradient {i}: {why}"

    run()


# ------------------------------------------------------------------------------ transforms
def _op_call(op: str, p: dict):
    """A scalar function of the operator's tensor inputs, and how many inputs it takes."""
    if op == "interpolate":
        return (lambda r, f, a: fastgan.ops.interpolate(r, f, a).square().sum()), 3
    if op == "grad_norm_penalty":
        return (lambda g: fastgan.ops.grad_norm_penalty(g, p["center"], p["one_sided"])), 1
    if op == "reconstruction_error":
        return (lambda x, y: fastgan.ops.reconstruction_error(x, y, p["p"]).square().sum()), 2
    return (lambda r, f: fastgan.ops.adversarial_loss(r, f, p["kind"], margin=1.5).square()), 2


def _transform(name: str, f, xs):
    if name == "grad":
        return torch.func.grad(f, argnums=tuple(range(len(xs))))(*xs)
    if name == "jvp":
        return torch.func.jvp(f, tuple(xs), tuple(torch.full_like(x, 0.5) for x in xs))
    if name == "vmap":
        return torch.func.vmap(f)(*(torch.stack([x, -x]) for x in xs))
    # second order through autograd: the composite backward of the fused backends
    leaves = [x.detach().clone().requires_grad_(True) for x in xs]
    g1 = torch.autograd.grad(f(*leaves), leaves, create_graph=True)
    s = sum((g * g).sum() for g in g1)
    if not s.requires_grad:
        return g1
    return g1, torch.autograd.grad(s, leaves, allow_unused=True)


@pytest.mark.parametrize("backend", BACKEND_PARAMS)
def test_transforms_property(backend):
    """Every operator under torch.func grad / jvp / vmap and a second-order autograd.grad, on
    random shapes, layouts and values, gives the reference backend's results (fp64)."""
    _skip_unusable(backend)
    device = kc.DEVICE[backend]

    @_settings(backend)
    @given(
        op=st.sampled_from(kc.OP_NAMES),
        transform=st.sampled_from(["grad", "jvp", "vmap", "second_order"]),
        shape=shapes(min(max_numel(backend), 512)),
        layout=st.sampled_from(LAYOUTS),
        regime=st.sampled_from(("normal", "large", "tiny_norm", "zero_rows")),
        params=st.fixed_dictionaries({
            "center": st.sampled_from([0.0, 1.0, 2.5]), "one_sided": st.booleans(),
            "p": st.sampled_from([1, 2]), "kind": st.sampled_from(list(kc.KINDS)),
        }),
        seed=st.integers(0, 2**31 - 1),
    )
    def run(op, transform, shape, layout, regime, params, seed):
        g = torch.Generator().manual_seed(seed)
        f, n = _op_call(op, params)
        xs = [arrange(values(shape, F64, regime, g, norms=op == "grad_norm_penalty"), layout, g).to(device)
              for _ in range(n)]
        if op == "interpolate":
            xs[2] = torch.rand(shape[0], generator=g, dtype=F64).to(device)
        results = {}
        for b in ("reference", backend):
            with fastgan.use_backend(b):
                results[b] = torch.utils._pytree.tree_leaves(_transform(transform, f, xs))
        assert len(results["reference"]) == len(results[backend])
        for e, a in zip(results["reference"], results[backend]):
            if e is None or a is None:
                assert e is None and a is None
                continue
            torch.testing.assert_close(a, e, rtol=1e-9, atol=1e-12 * (1 + e.abs().max().item()), equal_nan=True,
                                       msg=lambda m: f"{backend} {op} under {transform}: {m}")

    run()
