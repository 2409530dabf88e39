"""Edge cases of issue "Reliability", on every available backend:

* no public function modifies its inputs (every function of ``fastgan.functional`` and
  ``fastgan.ops``, ``fastgan.amp.gradient_penalty`` and the loss objects' methods; forward and
  backward) — the in-place ones by design, ``clip_weights_`` and WGAN's
  ``after_discriminator_step``, touch only the parameters they clip;
* ±Inf (and NaN) inputs propagate exactly as in the reference, forward and gradients;
* discriminator outputs of shape (B,), (B, 1), (B, 1, H, W) and a batch of one, for every family;
* a sample whose gradient norm is 0 inside the gradient penalty and R1 gives finite gradients;
* every family on the ``cpu`` backend gives bitwise the same losses and gradients with 1 and 2
  threads (tolerance: none — the kernels' chunking and combining order do not depend on the
  thread count);
* 64-bit offsets: the compiled kernels read a tensor of more than 2**31 elements correctly;
* regular tests for what the property tests found: bf16 subnormal numbers, penalties on one value
  per sample (the penalty's norm range is in ``test_op_grad_norm_penalty.py``);
* for every operator variant (each kind, side, p, one-sidedness; small shapes, mixed layouts):
  gradcheck in fp64; outputs never alias or modify inputs (nor grad_output); NaN placed in an
  input (also past the first parallel chunk of a long row) propagates exactly where the
  reference has NaN; a zero-norm sample has gradient exactly 0 in the penalty; bitwise
  run-to-run determinism; second and third derivatives equal to the reference's; half-precision
  gradients within the ``half_gradient`` row of fp32's.
"""

from __future__ import annotations


import pytest
import torch
from torch import nn

import fastgan
import fastgan.functional as FG
from fastgan import amp, check, losses

import kernel_cases as kc
from fastgan.testing import TOLERANCES, assert_close

F64, F32, BF16, F16 = torch.float64, torch.float32, torch.bfloat16, torch.float16
BACKEND_PARAMS = kc.backend_params
B = 5


dev = kc.dev
_skip_unusable = kc.skip_unusable


# ------------------------------------------------------------------- inputs are never modified
def _critic(x, labels=None):
    return torch.tanh(x.reshape(x.shape[0], -1)).sum(1, keepdim=True) * 0.7


def _grads(out: torch.Tensor, leaves: list[torch.Tensor]) -> tuple:
    """Gradients of ``out.sum()`` w.r.t. the leaves that require grad (``()`` for an output
    outside autograd, such as ``began_update``'s)."""
    diff = [x for x in leaves if x.requires_grad]
    if not out.requires_grad or not diff:
        return ()
    return torch.autograd.grad(out.sum(), diff, allow_unused=True, materialize_grads=True)


def _public_calls(device: str) -> dict[str, tuple]:
    """``name -> (fn, inputs)``: every public function and loss method with tensor inputs
    (``fn(*inputs)``). Tensors are fresh, random, some of them non-contiguous."""
    g = torch.Generator().manual_seed(7)

    def t(*shape, positive=False):
        x = torch.randn(*shape, generator=g, dtype=F32)
        return (x.abs() + 0.1 if positive else x).to(device)

    s, s2 = t(B, 1), t(B, 1)
    img, img2 = t(B, 3, 4, 4).contiguous(memory_format=torch.channels_last), t(B, 3, 4, 4)
    e, e2 = t(B, positive=True), t(B, positive=True)
    emb, alpha = t(B, 6)[:, ::2], torch.rand(B, generator=g).to(device)
    k = torch.tensor(0.3, device=device)
    calls = {
        "functional.gan_discriminator_loss": (FG.gan_discriminator_loss, (s, s2)),
        "functional.gan_generator_loss": (lambda f: FG.gan_generator_loss(f, saturating=True), (s,)),
        "functional.wgan_critic_loss": (FG.wgan_critic_loss, (s, s2)),
        "functional.wgan_generator_loss": (FG.wgan_generator_loss, (s,)),
        "functional.interpolate": (FG.interpolate, (img, img2, alpha)),
        "functional.grad_norm_penalty": (lambda x: FG.grad_norm_penalty(x, one_sided=True), (img,)),
        "functional.gradient_penalty": (lambda r, f, a: FG.gradient_penalty(_critic, r, f, alpha=a), (img, img2, alpha)),
        "functional.r1_penalty": (lambda x: FG.r1_penalty(_critic, x), (img,)),
        "functional.lsgan_discriminator_loss": (FG.lsgan_discriminator_loss, (s, s2)),
        "functional.lsgan_generator_loss": (FG.lsgan_generator_loss, (s,)),
        "functional.hinge_discriminator_loss": (FG.hinge_discriminator_loss, (s, s2)),
        "functional.hinge_generator_loss": (FG.hinge_generator_loss, (s,)),
        "functional.reconstruction_error": (lambda x, r: FG.reconstruction_error(x, r, p=2), (img, img2)),
        "functional.ebgan_discriminator_loss": (lambda a, b: FG.ebgan_discriminator_loss(a, b, 1.0), (e, e2)),
        "functional.ebgan_generator_loss": (FG.ebgan_generator_loss, (e, emb)),
        "functional.pulling_away_term": (FG.pulling_away_term, (emb,)),
        "functional.began_discriminator_loss": (FG.began_discriminator_loss, (e, e2, k)),
        "functional.began_generator_loss": (FG.began_generator_loss, (e,)),
        "functional.began_update": (lambda kk, a, b: FG.began_update(kk, a, b)[0] + FG.began_update(kk, a, b)[1], (k, e, e2)),
        "functional.adversarial_loss": (lambda a, b: FG.adversarial_loss(a, b, "bce"), (s, s2)),
        "amp.gradient_penalty": (lambda r, f, a: amp.gradient_penalty(_critic, r, f, torch.amp.GradScaler(device, init_scale=8.0), alpha=a), (img, img2, alpha)),
    }
    return calls


#: functions that modify something by design (their documented purpose): checked separately
IN_PLACE = {"functional.clip_weights_"}


def test_every_public_function_is_checked_for_modifying_inputs():
    names = set(_public_calls("cpu")) | IN_PLACE
    expected = {f"functional.{n}" for n in FG.__all__} | {f"amp.{n}" for n in amp.__all__}
    assert names == expected, f"not checked: {sorted(expected - names)}; unknown: {sorted(names - expected)}"


@pytest.mark.parametrize("name", sorted(_public_calls("cpu")))
@pytest.mark.parametrize("backend", BACKEND_PARAMS)
def test_public_function_does_not_modify_its_inputs(backend, name):
    _skip_unusable(backend)
    fn, inputs = _public_calls(dev(backend))[name]
    leaves = [x.detach().requires_grad_(x.is_floating_point()) for x in inputs]
    before = [(x.detach().clone(), x.stride(), x.untyped_storage().data_ptr()) for x in leaves]
    with fastgan.use_backend(backend):
        out = fn(*leaves)
        _grads(out, leaves)
    for i, (x, (val, stride, ptr)) in enumerate(zip(leaves, before)):
        assert torch.equal(x.detach(), val), f"{name} modified input {i}"
        assert x.stride() == stride and x.untyped_storage().data_ptr() == ptr, f"{name} changed input {i} in place"
        assert x.grad is None, f"{name} accumulated into input {i}'s .grad (use autograd.grad internally)"


def test_clip_weights_touches_only_the_parameters():
    D = nn.Linear(4, 3)
    other = torch.randn(3, 4)
    before = other.clone()
    with torch.no_grad():
        D.weight.mul_(10)
    FG.clip_weights_(D, 0.05)
    assert D.weight.abs().max() <= 0.05 and torch.equal(other, before)


class _Critic(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 1))

    def forward(self, x, labels=None):
        return self.net(x if labels is None else x + labels[:, None].float())


class _AE(nn.Module):
    def __init__(self):
        super().__init__()
        self.enc, self.dec = nn.Linear(4, 3), nn.Linear(3, 4)

    def forward(self, x, labels=None):
        h = torch.tanh(self.enc(x))
        return self.dec(h), h


@pytest.mark.parametrize("name", losses.available())
@pytest.mark.parametrize("backend", BACKEND_PARAMS)
def test_loss_methods_do_not_modify_inputs(backend, name):
    """``discriminator_loss`` and ``generator_loss`` leave real, fake, labels and D's parameters
    untouched (forward and backward); BEGAN updates only its own k buffer."""
    _skip_unusable(backend)
    device = dev(backend)
    torch.manual_seed(3)
    D = (_AE() if name in ("ebgan", "began") else _Critic()).to(device)
    real, fake = torch.randn(B, 4, device=device), torch.randn(B, 4, device=device)[:, :].t().contiguous().t()
    labels = torch.randint(0, 3, (B,), device=device)
    loss = losses.create(name).to(device)
    params = {n: p.detach().clone() for n, p in D.named_parameters()}
    inputs = [real, fake, labels]
    copies = [x.clone() for x in inputs]
    fake_leaf = fake.detach().requires_grad_(True)
    with fastgan.use_backend(backend):
        d_loss, _ = loss.discriminator_loss(D, real, fake_leaf, labels)
        d_loss.backward()
        g_loss, _ = loss.generator_loss(D, fake_leaf, labels)
        g_loss.backward()
    for x, c in zip(inputs, copies):
        assert torch.equal(x, c), f"{name} modified an input"
    for n, p in D.named_parameters():
        assert torch.equal(p.detach(), params[n]), f"{name} modified D.{n}"


# ------------------------------------------------------------------------ ±Inf and NaN inputs
SPECIALS = (float("inf"), float("-inf"), float("nan"))


def _special_cases(dtype: torch.dtype, device: str) -> dict[str, kc.Case]:
    """Cases of every operator variant with +inf, -inf and NaN in different samples."""
    odd = kc.Spec("odd", (6, 3, 5))
    cases = {
        "interpolate": kc.interpolate_case(odd, dtype, device),
        "reconstruction_error-p1": kc.reconstruction_error_case(odd, dtype, 1, device),
        "reconstruction_error-p2": kc.reconstruction_error_case(odd, dtype, 2, device),
    }
    for one_sided in (False, True):
        cases[f"grad_norm_penalty-one_sided={one_sided}"] = kc.grad_norm_penalty_case(odd, dtype, one_sided, device)
    for kind in kc.KINDS:
        cases[f"adversarial_loss-{kind}"] = kc.adversarial_loss_case(kc.Spec("s", (6, 1, 2, 2)), dtype, kind, "both", device)
    for case in cases.values():
        for pos in case.tensor_positions:
            for args in (case.args, case.ref_args):
                t = args[pos].clone()
                if t.dim() > 1:
                    t[1].view(-1)[0] = SPECIALS[0]
                    t[3].view(-1)[-1] = SPECIALS[1]
                    if pos == 0:
                        t[4].view(-1)[1] = SPECIALS[2]
                args[pos] = t
    return cases


SPECIAL_IDS = list(_special_cases(F32, "cpu"))


@pytest.mark.parametrize("dtype", [pytest.param(d, id=kc.DTYPE_IDS[d]) for d in kc.DTYPES])
@pytest.mark.parametrize("name", SPECIAL_IDS)
@pytest.mark.parametrize("backend", BACKEND_PARAMS)
def test_inf_and_nan_propagate_like_the_reference(backend, name, dtype):
    """±Inf and NaN in the inputs: outputs and gradients hold NaN and ±Inf exactly where the
    reference (float64, same values) does, and agree elsewhere."""
    _skip_unusable(backend)
    case = _special_cases(dtype, dev(backend))[name]
    args, leaves, ref_args, ref_leaves = kc.with_grad(case)
    out, grads = kc.run_backend(backend, case, args, leaves)
    expected, expected_grads = kc.run_reference64(case, ref_args, ref_leaves)
    assert not torch.isfinite(expected).all() or any(not torch.isfinite(e).all() for e in expected_grads)
    kc.assert_matches(out, expected, dtype, f"{backend} {name} forward")
    for n, got, exp in zip(case.tensor_names(), grads, expected_grads):
        kc.assert_matches(got, exp, dtype, f"{backend} {name} d/d{n}")


# ------------------------------------------------------------------- shapes and a batch of one
SCORE_LOSSES = {
    "gan_d": lambda r, f: FG.gan_discriminator_loss(r, f),
    "gan_g": lambda r, f: FG.gan_generator_loss(f),
    "gan_g_sat": lambda r, f: FG.gan_generator_loss(f, saturating=True),
    "wgan_c": lambda r, f: FG.wgan_critic_loss(r, f),
    "wgan_g": lambda r, f: FG.wgan_generator_loss(f),
    "lsgan_d": lambda r, f: FG.lsgan_discriminator_loss(r, f),
    "lsgan_g": lambda r, f: FG.lsgan_generator_loss(f),
    "hinge_d": lambda r, f: FG.hinge_discriminator_loss(r, f),
    "hinge_g": lambda r, f: FG.hinge_generator_loss(f),
}


@pytest.mark.parametrize("batch", [1, 7])
@pytest.mark.parametrize("loss", list(SCORE_LOSSES))
@pytest.mark.parametrize("backend", BACKEND_PARAMS)
def test_score_shapes_B_B1_B1HW(backend, loss, batch):
    """The same B·H·W scores as (B·H·W,), (B·H·W, 1) and (B, 1, H, W) give the same loss (every
    mean runs over all elements), equal to the reference; gradients have the input's shape."""
    _skip_unusable(backend)
    device = dev(backend)
    g = torch.Generator().manual_seed(batch)
    r64 = kc.away_from(torch.randn(batch, 1, 3, 5, generator=g, dtype=F64) * 2, (1.0, -1.0))
    f64 = kc.away_from(torch.randn(batch, 1, 3, 5, generator=g, dtype=F64) * 2, (1.0, -1.0))
    fn = SCORE_LOSSES[loss]
    results = []
    for shape in ((-1,), (-1, 1), (batch, 1, 3, 5)):
        r = r64.float().reshape(shape).to(device).requires_grad_(True)
        f = f64.float().reshape(shape).to(device).requires_grad_(True)
        with fastgan.use_backend(backend):
            out = fn(r, f)
            gr, gf = torch.autograd.grad(out, [r, f], allow_unused=True, materialize_grads=True)
        assert out.shape == () and gr.shape == r.shape and gf.shape == f.shape
        results.append((out, gr.reshape(-1), gf.reshape(-1)))
    with fastgan.use_backend("reference"):
        r, f = r64.float().double().requires_grad_(True), f64.float().double().requires_grad_(True)
        exp = fn(r, f)
        er, ef = torch.autograd.grad(exp, [r, f], allow_unused=True, materialize_grads=True)
    for out, gr, gf in results:
        kc.assert_matches(out, exp, F32, f"{backend} {loss} B={batch}", exp.abs().item() + r64.abs().mean().item())
        kc.assert_matches(gr, er.reshape(-1), F32, f"{backend} {loss} d/dreal B={batch}")
        kc.assert_matches(gf, ef.reshape(-1), F32, f"{backend} {loss} d/dfake B={batch}")
    for out, gr, gf in results[1:]:
        assert torch.equal(gr, results[0][1]) and torch.equal(gf, results[0][2])


@pytest.mark.parametrize("name", sorted(set(_public_calls("cpu")) - {"functional.ebgan_generator_loss", "functional.pulling_away_term"}))
@pytest.mark.parametrize("backend", BACKEND_PARAMS)
def test_batch_of_one(backend, name):
    """Every public function with a batch of one sample, against the reference in float64
    (the pulling-away term needs two samples: a batch of one is a clear ValueError instead)."""
    _skip_unusable(backend)
    fn, inputs = _public_calls(dev(backend))[name]
    one = [x[:1] if x.dim() > 0 else x for x in inputs]
    leaves = [x.detach().requires_grad_(x.is_floating_point()) for x in one]
    with fastgan.use_backend(backend):
        out = fn(*leaves)
        grads = _grads(out, leaves)
    leaves64 = [x.detach().to("cpu", F64).requires_grad_(x.is_floating_point()) for x in one]
    with fastgan.use_backend("reference"):
        exp = fn(*leaves64)
        exp_grads = _grads(exp, leaves64)
    assert torch.isfinite(out).all()
    assert_close(out, exp, F32, f"{name} forward", tolerance="family")
    for i, (a, e) in enumerate(zip(grads, exp_grads)):
        assert_close(a, e, F32, f"{name} gradient {i}", tolerance="family")


def test_pulling_away_term_needs_two_samples():
    with pytest.raises(ValueError, match="embeddings"):
        FG.pulling_away_term(torch.randn(1, 4))


# ------------------------------------------------------------------ zero-norm sample gradients
@pytest.mark.parametrize("one_sided", [False, True], ids=["two_sided", "one_sided"])
@pytest.mark.parametrize("backend", BACKEND_PARAMS)
def test_penalties_with_a_zero_gradient_sample_have_finite_gradients(backend, one_sided):
    """A critic whose input gradient is exactly 0 for one sample: the gradient penalty and R1
    back-propagate finite gradients into the critic's weights, equal to the reference's."""
    _skip_unusable(backend)
    device = dev(backend)
    g = torch.Generator().manual_seed(11)
    real, fake = torch.randn(4, 6, generator=g).to(device), torch.randn(4, 6, generator=g).to(device)
    w = torch.randn(6, generator=g).to(device).requires_grad_(True)
    live = torch.tensor([1.0, 0.0, 1.0, 1.0], device=device)  # sample 1 does not depend on its input

    def critic(x):
        return (x @ w) * live

    results = {}
    for be in (backend, "reference"):
        with fastgan.use_backend(be):
            gp = FG.gradient_penalty(critic, real, fake, alpha=torch.full((4,), 0.3, device=device), one_sided=one_sided)
            r1 = FG.r1_penalty(critic, real)
            results[be] = [gp, r1, *torch.autograd.grad(gp + r1, [w])]
    for got, exp in zip(results[backend], results["reference"]):
        assert torch.isfinite(got).all()
        torch.testing.assert_close(got, exp, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------- thread counts
@pytest.mark.skipif("cpu" not in kc.BACKENDS, reason="the compiled cpu backend is not built here")
@pytest.mark.parametrize("name", sorted(set(_public_calls("cpu")) - {"amp.gradient_penalty"}))
def test_families_bitwise_identical_with_1_and_2_threads(name):
    fn, inputs = _public_calls("cpu")[name]
    before = torch.get_num_threads()
    results = []
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            leaves = [x.detach().clone().requires_grad_(x.is_floating_point()) for x in inputs]
            with fastgan.use_backend("cpu"):
                out = fn(*leaves)
                grads = _grads(out, leaves)
            results.append((out, grads))
    finally:
        torch.set_num_threads(before)
    (o1, g1), (o2, g2) = results
    assert torch.equal(o1, o2), f"{name}: forward differs between 1 and 2 threads"
    assert all(torch.equal(a, b) for a, b in zip(g1, g2)), f"{name}: gradients differ between 1 and 2 threads"


# ------------------------------------------------------------------------------ 64-bit offsets
def _mem_available_gib() -> float:
    try:
        with open("/proc/meminfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) / 2**20
    except OSError:  # pragma: no cover
        pass
    return 0.0


BIG_BACKENDS = [b for b in kc.COMPILED if not check.interpreted(b)]


@pytest.mark.parametrize("backend", BIG_BACKENDS or [pytest.param("-", marks=pytest.mark.skip(reason="no compiled backend here"))])
def test_offsets_past_2_pow_31_elements(backend):
    """One bf16 buffer of 2**31 + 1024 elements (4 GiB), zero except three values, one of them
    before and two past element 2**31. Read as one sample of 2**31 + 1024 elements (offsets
    within a row past 2**31) and as 2**21 + 1 samples of 1024 (row offsets past 2**31), the
    forward of grad_norm_penalty, reconstruction_error (two shifted views of the buffer) and
    adversarial_loss must see exactly those values. A 32-bit offset would wrap to a negative
    index (a crash) or read the wrong elements. The backward passes and interpolate write a
    second 4 GiB tensor; they use the same int64 offset arithmetic (``docs/errors.md``, "64-bit
    indexing")."""
    _skip_unusable(backend)
    device = dev(backend)
    if device == "cpu" and _mem_available_gib() < 7:
        pytest.skip(f"needs ~5 GiB of free memory, {_mem_available_gib():.1f} GiB available")
    if device == "cuda" and torch.cuda.mem_get_info()[0] < 6 * 2**30:  # pragma: no cover
        pytest.skip("needs ~5 GiB of free GPU memory")
    n = 2**31 + 1024
    buf = torch.zeros(n, dtype=BF16, device=device)
    buf[5], buf[2**31 + 7], buf[n - 1] = 1.0, 3.0, 4.0
    rows = buf.view(-1, 1024)
    with fastgan.use_backend(backend):
        one_row = fastgan.functional.grad_norm_penalty(buf.view(1, n), 0.0, False)
        many_rows = fastgan.functional.grad_norm_penalty(rows, 0.0, False)
        rec = fastgan.functional.reconstruction_error(rows[1:], rows[:-1], 1)
        adv = fastgan.functional.adversarial_loss(buf.view(n, 1), None, "wgan")
    assert one_row.item() == 26.0  # 1 + 9 + 16
    assert many_rows.item() == pytest.approx(26.0 / rows.shape[0], rel=2**-8)
    nonzero = rec.nonzero().flatten().tolist()
    assert nonzero == [0, rows.shape[0] - 2], nonzero
    assert rec[0].item() == 1.0 / 1024 and rec[-1].item() == 7.0 / 1024
    assert adv.item() == pytest.approx(-8.0 / n, rel=2**-8)
    del buf, rows


# ---------------------------------------------- found by the property tests: regular tests now
@pytest.mark.parametrize("backend", BACKEND_PARAMS)
def test_bf16_subnormals(backend):
    """bf16 subnormal inputs (below 1.2e-38) are numbers like any other: |x − recon| > 0, so the
    L1 gradient is ±1/M, and interpolate reproduces them. Found by the property tests with the
    triton backend in Triton's interpreter, which emulates bf16 by flushing subnormals to 0 on
    load and truncating on store (a one-line Triton kernel shows the same): there it is an
    expected failure of the interpreter, not of fastgan's kernels; on a GPU it must pass."""
    _skip_unusable(backend)
    if check.interpreted(backend):
        pytest.xfail("Triton's interpreter flushes bf16 subnormals to 0 (not fastgan's kernels)")
    tiny = torch.finfo(BF16).tiny
    x = torch.tensor([[tiny / 4, -tiny / 2, 1.0]], dtype=BF16, device=dev(backend)).requires_grad_(True)
    r = torch.zeros(1, 3, dtype=BF16, device=dev(backend))
    with fastgan.use_backend(backend):
        err = fastgan.functional.reconstruction_error(x, r, 1)
        (d,) = torch.autograd.grad(err.sum(), x)
        same = fastgan.functional.interpolate(x.detach(), r, torch.ones(1, dtype=BF16, device=dev(backend)))
    assert d.tolist() == [[1 / 3, -1 / 3, 1 / 3]] or torch.equal(d, torch.tensor([[1, -1, 1]], dtype=BF16, device=d.device) * d[0, 2])
    assert d[0, 0] > 0 and d[0, 1] < 0
    assert torch.equal(same, x.detach())


@pytest.mark.parametrize("backend", BACKEND_PARAMS)
def test_penalties_on_one_value_per_sample(backend):
    """Found while writing the property tests: inputs of shape (B,) (one value per sample, no
    non-batch dimension) through the gradient penalty and R1, against the reference."""
    _skip_unusable(backend)
    device = dev(backend)
    g = torch.Generator().manual_seed(19)
    real, fake = torch.randn(6, generator=g).to(device), torch.randn(6, generator=g).to(device)
    w = torch.tensor(0.7, device=device, requires_grad=True)

    def critic(x):
        return torch.tanh(w * x) * 2.0

    results = {}
    for be in (backend, "reference"):
        with fastgan.use_backend(be):
            gp = FG.gradient_penalty(critic, real, fake, alpha=torch.linspace(0, 1, 6, device=device))
            r1 = FG.r1_penalty(critic, real)
            results[be] = [gp, r1, *torch.autograd.grad(gp + r1, [w])]
    for got, exp in zip(results[backend], results["reference"]):
        assert torch.isfinite(got).all()
        torch.testing.assert_close(got, exp, rtol=1e-5, atol=1e-6)

# ------------------------------------------------------------ every operator variant, small cases
backend_params = kc.backend_params
backend_params_compiled_and_triton = kc.compiled_params
dtype_params = kc.dtype_params


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


# ------------------------------------------------------------------ on the default backend
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_half_gradients_close_to_fp32(dtype):
    """Gradients of the operators in half precision stay within the dtype's tolerance of fp32."""
    torch.manual_seed(4)
    base = torch.randn(4, 3, 5, 5)
    for fn in (
        lambda t: fastgan.functional.grad_norm_penalty(t, 1.0, False),
        lambda t: fastgan.functional.reconstruction_error(t, torch.zeros_like(t), 2).sum(),
        lambda t: fastgan.functional.adversarial_loss(t, t * 0.5, "bce"),
    ):
        x32 = base.clone().requires_grad_(True)
        (g32,) = torch.autograd.grad(fn(x32), x32)
        xh = base.to(dtype).requires_grad_(True)
        (gh,) = torch.autograd.grad(fn(xh), xh)
        assert gh.dtype == dtype
        assert_close(gh.float(), g32.double(), F32, f"{dtype} gradient", tolerance=TOLERANCES["half_gradient"][dtype])
