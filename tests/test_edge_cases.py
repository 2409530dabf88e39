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
* regular tests for what the property tests (``test_properties.py``) found: per-sample norms
  beyond fp32's accumulation range, and bf16 subnormal numbers.
"""

from __future__ import annotations


import pytest
import torch
from torch import nn

import fastgan
import fastgan.functional as FG
from fastgan import amp, check, losses

import kernel_cases as kc

F64, F32, BF16, F16 = torch.float64, torch.float32, torch.bfloat16, torch.float16
BACKEND_PARAMS = [pytest.param(b, id=b) for b in kc.BACKENDS]
B = 5


def dev(backend: str) -> str:
    return kc.DEVICE[backend]


def _skip_unusable(backend: str) -> None:
    if dev(backend) == "cuda" and not torch.cuda.is_available():  # pragma: no cover
        pytest.skip("no CUDA device")


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
        "functional.gradient_norm_penalty": (lambda x: FG.gradient_norm_penalty(x, one_sided=True), (img,)),
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
        "ops.interpolate": (fastgan.ops.interpolate, (img, img2, alpha)),
        "ops.grad_norm_penalty": (fastgan.ops.grad_norm_penalty, (img,)),
        "ops.reconstruction_error": (lambda x, r: fastgan.ops.reconstruction_error(x, r, 1), (img, img2)),
        "ops.adversarial_loss": (lambda a, b: fastgan.ops.adversarial_loss(a, b, "bce"), (s, s2)),
        "amp.gradient_penalty": (lambda r, f, a: amp.gradient_penalty(_critic, r, f, torch.amp.GradScaler(device, init_scale=8.0), alpha=a), (img, img2, alpha)),
    }
    return calls


#: functions that modify something by design (their documented purpose): checked separately
IN_PLACE = {"functional.clip_weights_"}


def test_every_public_function_is_checked_for_modifying_inputs():
    names = set(_public_calls("cpu")) | IN_PLACE
    expected = {f"functional.{n}" for n in FG.__all__} | {f"ops.{n}" for n in fastgan.ops.__all__} | {f"amp.{n}" for n in amp.__all__}
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
    _, _, why = check.compare(out, exp, F32, check.FAMILY_TOL[F32])
    assert why is None, f"{name} forward: {why}"
    for i, (a, e) in enumerate(zip(grads, exp_grads)):
        _, _, why = check.compare(a, e, F32, check.FAMILY_TOL[F32])
        assert why is None, f"{name} gradient {i}: {why}"


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
        one_row = fastgan.ops.grad_norm_penalty(buf.view(1, n), 0.0, False)
        many_rows = fastgan.ops.grad_norm_penalty(rows, 0.0, False)
        rec = fastgan.ops.reconstruction_error(rows[1:], rows[:-1], 1)
        adv = fastgan.ops.adversarial_loss(buf.view(n, 1), None, "wgan")
    assert one_row.item() == 26.0  # 1 + 9 + 16
    assert many_rows.item() == pytest.approx(26.0 / rows.shape[0], rel=2**-8)
    nonzero = rec.nonzero().flatten().tolist()
    assert nonzero == [0, rows.shape[0] - 2], nonzero
    assert rec[0].item() == 1.0 / 1024 and rec[-1].item() == 7.0 / 1024
    assert adv.item() == pytest.approx(-8.0 / n, rel=2**-8)
    del buf, rows


# ---------------------------------------------- found by the property tests: regular tests now
@pytest.mark.parametrize("dtype", [pytest.param(F32, id="f32"), pytest.param(BF16, id="bf16")])
@pytest.mark.parametrize("scale", [1e20, 1e30], ids=["norm1e20", "norm1e30"])
@pytest.mark.parametrize("backend", BACKEND_PARAMS)
def test_grad_norm_penalty_huge_norm_has_finite_gradient(backend, scale, dtype):
    """Per-sample norms above ~1.8e19 (fp32/bf16 inputs): an fp32 sum of squares would overflow,
    the norm would be inf and the gradient ``φ'(n − c) g / (B n)`` inf/inf = NaN — but the exact
    gradient, ``2 (1 − c/n) g / B``, is finite and representable (fastgan's sums are fp64:
    docs/design.md §6). The forward may be inf (the
    exact penalty exceeds the dtype's range); the gradient must match the float64 reference."""
    _skip_unusable(backend)
    g = torch.Generator().manual_seed(13)
    x = torch.randn(3, 40, generator=g, dtype=F64)
    x = x / torch.linalg.vector_norm(x, dim=1, keepdim=True) * scale
    grads = x.to(dtype).to(dev(backend)).requires_grad_(True)
    with fastgan.use_backend(backend):
        out = fastgan.ops.grad_norm_penalty(grads, 1.0, False)
        (d,) = torch.autograd.grad(out, grads)
    x64 = grads.detach().to("cpu", F64).requires_grad_(True)
    exp = fastgan.backends._IMPLS["reference"]["grad_norm_penalty"](x64, 1.0, False)
    (d64,) = torch.autograd.grad(exp, x64)
    assert torch.isfinite(d64).all()
    assert torch.isfinite(d).all(), f"{backend}: NaN/inf gradient for per-sample norms ~{scale:g} (exact: finite, max {d64.abs().max().item():.3g})"
    kc.assert_matches(d, d64, dtype, f"{backend} grad_norm_penalty d/dgrads, norms ~{scale:g}")


@pytest.mark.parametrize("center", [1.0, 0.0])
@pytest.mark.parametrize("backend", BACKEND_PARAMS)
def test_grad_norm_penalty_tiny_norm_fp32(backend, center):
    """fp32 rows whose squares fall below fp32's normal range (norm ~1e-30, and a row of
    subnormal numbers): with center 1 the exact gradient is ``−2 g / (B n)``, of size ~1/B —
    not 0, which is what an fp32 sum of squares that underflows to 0 gives. (With center 0 the
    exact gradient is ~1e-30: any value within fp32's subnormal band passes.)"""
    _skip_unusable(backend)
    g = torch.Generator().manual_seed(17)
    x = torch.randn(3, 20, generator=g, dtype=F64)
    x = x / torch.linalg.vector_norm(x, dim=1, keepdim=True)
    x[0] *= 1e-30
    x[1] *= 1e-41  # subnormal fp32 numbers only
    grads = x.float().to(dev(backend)).requires_grad_(True)
    with fastgan.use_backend(backend):
        out = fastgan.ops.grad_norm_penalty(grads, center, False)
        (d,) = torch.autograd.grad(out, grads)
    x64 = grads.detach().to("cpu", F64).requires_grad_(True)
    exp = fastgan.backends._IMPLS["reference"]["grad_norm_penalty"](x64, center, False)
    (d64,) = torch.autograd.grad(exp, x64)
    tiny = torch.finfo(F32).tiny
    d_cpu = d.detach().to("cpu", F64)
    ok = ((d_cpu - d64).abs() <= 2e-5 * d64.abs().max() + 1e-6 * d64.abs()) | ((d64.abs() < tiny) & (d_cpu.abs() <= tiny))
    assert ok.all(), f"{backend}: gradient of tiny-norm rows {d_cpu[:2, :3].tolist()}, exact {d64[:2, :3].tolist()}"
    kc.assert_matches(out, exp, F32, f"{backend} grad_norm_penalty forward, tiny norms")


@pytest.mark.parametrize("backend", BACKEND_PARAMS)
def test_grad_norm_penalty_fp64_norm_limit(backend):
    """The documented limit (docs/errors.md, Numerical range): fp64 rows keep fp64 squares, so a
    norm of 1e-150 is exact, one of 1e-160 (a subnormal sum of squares) is inexact, and one of
    1e-170 (every square 0) has the zero-norm gradient 0 — while the loss stays right."""
    _skip_unusable(backend)
    g = torch.Generator().manual_seed(5)
    x = torch.randn(3, 20, generator=g, dtype=F64)
    unit = x / torch.linalg.vector_norm(x, dim=1, keepdim=True)
    scales = torch.tensor([1e-150, 1e-160, 1e-170], dtype=F64)
    grads = (unit * scales[:, None]).to(dev(backend)).requires_grad_(True)
    with fastgan.use_backend(backend):
        out = fastgan.ops.grad_norm_penalty(grads, 1.0, False)
        (d,) = torch.autograd.grad(out, grads)
    d = d.cpu()
    torch.testing.assert_close(out.cpu(), torch.tensor(1.0, dtype=F64))  # mean of (0 - 1)^2
    exact = -2.0 * unit / 3  # d/dg of (n - 1)^2 / B at n -> 0: 2 (n - 1) g / (B n)
    torch.testing.assert_close(d[0], exact[0], rtol=1e-12, atol=0)
    assert not torch.allclose(d[1], exact[1], rtol=1e-6, atol=0)  # inexact: the stated limit
    assert torch.equal(d[2], torch.zeros_like(d[2]))


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
        err = fastgan.ops.reconstruction_error(x, r, 1)
        (d,) = torch.autograd.grad(err.sum(), x)
        same = fastgan.ops.interpolate(x.detach(), r, torch.ones(1, dtype=BF16, device=dev(backend)))
    assert d.tolist() == [[1 / 3, -1 / 3, 1 / 3]] or torch.equal(d, torch.tensor([[1, -1, 1]], dtype=BF16, device=d.device) * d[0, 2])
    assert d[0, 0] > 0 and d[0, 1] < 0
    assert torch.equal(same, x.detach())


@pytest.mark.parametrize("backend", BACKEND_PARAMS)
def test_penalty_of_a_value_below_fp32_range_rounds_to_zero(backend):
    """Found by the property tests: center 0, one subnormal fp32 gradient: the exact penalty
    (~1e-79) is below fp32's range; 0 is its correctly rounded value, gradient within fp32's
    subnormal band of the exact one."""
    _skip_unusable(backend)
    g = torch.tensor([3e-40], dtype=F32, device=dev(backend)).requires_grad_(True)
    with fastgan.use_backend(backend):
        out = fastgan.ops.grad_norm_penalty(g, 0.0, False)
        (d,) = torch.autograd.grad(out, g)
    assert out.item() == 0.0 and abs(d.item() - 2 * 3e-40) <= torch.finfo(F32).tiny


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
