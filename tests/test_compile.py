"""``torch.compile(fullgraph=True)`` of the families' losses on the compiled ``cpu`` backend.

Each loss of ``fastgan.functional`` is given discriminator outputs (or gradients, or samples)
and compiled whole: no graph break (``fullgraph=True`` raises on one, and a counting backend
checks there is exactly one graph, holding the ``torch.ops.fastgan`` operator rather than the
reference's decomposition), the same value and the same gradients as eager. ``aot_eager``
keeps compile times short; one test compiles a combined function with inductor.

torch.compile cannot trace a double backward, so a critic's ``autograd.grad(...,
create_graph=True)`` runs eagerly, outside the compiled region; the compiled penalty is then
differentiated (once) back into the critic's parameters.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch._dynamo.testing import CompileCounterWithBackend

import fastgan
import fastgan.functional as FG
from fastgan import amp

import kernel_cases as kc

#: the tests of the compiled cpu kernels in a graph (the dynamic-shape tests below run on the
#: reference backend everywhere)
requires_cpu = pytest.mark.skipif(
    "cpu" not in kc.BACKENDS,
    reason="the compiled cpu backend is not available here (fastgan._C is not built): nothing to compile",
)


@pytest.fixture(autouse=True)
def fresh_dynamo():
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def _scores(shape, seed, positive=False):
    x = kc.logits(shape, kc.generator("compile", shape, seed)).float()
    return x.abs() if positive else x


def _fastgan_targets(gm: torch.fx.GraphModule) -> list[str]:
    return [str(n.target) for n in gm.graph.nodes if n.op == "call_function" and str(n.target).startswith("fastgan.")]


def _compile_and_compare(fn, inputs, *, uses_fastgan_op=True, backend="aot_eager", rtol=None, atol=None):
    """Compile ``fn`` with fullgraph=True, check one graph (holding a fastgan op when expected),
    and the same outputs and gradients (w.r.t. every floating input) as eager on the cpu
    backend."""
    counter = CompileCounterWithBackend(backend)
    compiled = torch.compile(fn, fullgraph=True, backend=counter, dynamic=False)

    def run(f):
        leaves = [t.detach().clone().requires_grad_(True) for t in inputs]
        out = f(*leaves)
        outs = out if isinstance(out, tuple) else (out,)
        total = sum((o.float() * (i + 1.5)).sum() for i, o in enumerate(outs))  # weight each output differently
        grads = torch.autograd.grad(total, leaves, allow_unused=True)
        return [o.detach() for o in outs], grads

    with fastgan.use_backend("cpu"):
        eager_out, eager_grads = run(fn)
        comp_out, comp_grads = run(compiled)
    assert counter.frame_count == 1, f"expected one compiled graph, got {counter.frame_count}"
    if uses_fastgan_op:
        targets = [t for gm in counter.graphs for t in _fastgan_targets(gm)]
        assert targets, "the compiled graph does not call a torch.ops.fastgan operator (the cpu kernels)"
    tol = {} if rtol is None else dict(rtol=rtol, atol=atol)
    for i, (e, c) in enumerate(zip(eager_out, comp_out)):
        torch.testing.assert_close(c, e, **tol, msg=lambda m: f"output {i}: {m}")
    for i, (e, c) in enumerate(zip(eager_grads, comp_grads)):
        if e is None:
            assert c is None, f"input {i}: compiled gives a gradient, eager does not"
            continue
        torch.testing.assert_close(c, e, **tol, msg=lambda m: f"d/dinput{i}: {m}")
    return counter


B = 6
LOSSES = {
    # name: (fn, input makers, uses a fastgan op)
    "gan_discriminator_loss": (FG.gan_discriminator_loss, lambda: (_scores((B, 1), 0), _scores((B, 1), 1)), True),
    "gan_generator_loss": (FG.gan_generator_loss, lambda: (_scores((B, 1), 2),), True),
    "gan_generator_loss_saturating": (lambda f: FG.gan_generator_loss(f, saturating=True), lambda: (_scores((B,), 3),), True),
    "wgan_critic_loss": (FG.wgan_critic_loss, lambda: (_scores((B,), 4), _scores((B,), 5)), True),
    "wgan_generator_loss": (FG.wgan_generator_loss, lambda: (_scores((B, 1), 6),), True),
    "lsgan_discriminator_loss": (lambda r, f: FG.lsgan_discriminator_loss(r, f, a=-0.5, b=0.75), lambda: (_scores((4, 1, 5, 5), 7), _scores((4, 1, 5, 5), 8)), True),
    "lsgan_generator_loss": (lambda f: FG.lsgan_generator_loss(f, c=0.5), lambda: (_scores((4, 1, 5, 5), 9),), True),
    "hinge_discriminator_loss": (FG.hinge_discriminator_loss, lambda: (_scores((B, 1), 10), _scores((B, 1), 11)), True),
    "hinge_generator_loss": (FG.hinge_generator_loss, lambda: (_scores((B, 1), 12),), True),
    "ebgan_discriminator_loss": (lambda r, f: FG.ebgan_discriminator_loss(r, f, 1.5), lambda: (_scores((B,), 13, True), _scores((B,), 14, True)), True),
    "ebgan_generator_loss": (FG.ebgan_generator_loss, lambda: (_scores((B,), 15, True),), True),
    "began_discriminator_loss": (lambda r, f: FG.began_discriminator_loss(r, f, 0.3), lambda: (_scores((B,), 16, True), _scores((B,), 17, True)), False),
    "began_generator_loss": (FG.began_generator_loss, lambda: (_scores((B,), 18, True),), True),
    "reconstruction_error_p1": (lambda x, r: FG.reconstruction_error(x, r, 1), lambda: (_scores((B, 3, 4, 4), 19), _scores((B, 3, 4, 4), 20)), True),
    "reconstruction_error_p2": (lambda x, r: FG.reconstruction_error(x, r, 2), lambda: (_scores((B, 3, 4, 4), 21), _scores((B, 3, 4, 4), 22)), True),
    "grad_norm_penalty": (lambda g: FG.grad_norm_penalty(g), lambda: (kc.rows_with_norms((B, 3, 4, 4), kc.generator("gnp")).float(),), True),
    "grad_norm_penalty_one_sided": (lambda g: FG.grad_norm_penalty(g, 1.0, True), lambda: (kc.rows_with_norms((B, 3, 4, 4), kc.generator("gnp1")).float(),), True),
    "interpolate": (FG.interpolate, lambda: (_scores((B, 3, 4, 4), 23), _scores((B, 3, 4, 4), 24), torch.rand(B, generator=kc.generator("alpha"))), True),
}


@requires_cpu
@pytest.mark.parametrize("name", list(LOSSES))
def test_loss_compiles_to_one_graph_with_eager_values_and_gradients(name):
    fn, make, uses_op = LOSSES[name]
    _compile_and_compare(fn, make(), uses_fastgan_op=uses_op)


@requires_cpu
def test_ebgan_generator_loss_with_pulling_away_term():
    energies = _scores((B,), 30, True)
    emb = _scores((B, 8), 31)
    _compile_and_compare(lambda e, s: FG.ebgan_generator_loss(e, s, pt_weight=0.1), (energies, emb))


class _Critic(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(2 * 4 * 4, 16), nn.Tanh(), nn.Linear(16, 1))

    def forward(self, x):
        return self.net(x)


@requires_cpu
def test_wgan_gp_step_compiled_penalty_with_eager_double_backward():
    """The critic's input gradients are taken eagerly with create_graph=True; the compiled WGAN-GP
    loss (interpolation, critic loss and norm penalty) then back-propagates into the critic's
    parameters exactly like the eager one."""
    torch.manual_seed(0)
    critic = _Critic()
    g = kc.generator("wgan-gp")
    real, fake = torch.randn(B, 2, 4, 4, generator=g), torch.randn(B, 2, 4, 4, generator=g)
    alpha = torch.rand(B, generator=g)
    counter_i = CompileCounterWithBackend("aot_eager")
    counter_l = CompileCounterWithBackend("aot_eager")
    interp = torch.compile(FG.interpolate, fullgraph=True, backend=counter_i, dynamic=False)
    loss_fn = torch.compile(
        lambda dr, df, grads: FG.wgan_critic_loss(dr, df) + 10.0 * FG.grad_norm_penalty(grads),
        fullgraph=True, backend=counter_l, dynamic=False,
    )

    def step(interp_fn, loss):
        critic.zero_grad()
        x_hat = interp_fn(real, fake, alpha).requires_grad_(True)
        (grads,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)  # eager
        value = loss(critic(real), critic(fake), grads)
        value.backward()
        return value.detach(), [p.grad.clone() for p in critic.parameters()]

    with fastgan.use_backend("cpu"):
        eager_value, eager_grads = step(FG.interpolate, lambda dr, df, gr: FG.wgan_critic_loss(dr, df) + 10.0 * FG.grad_norm_penalty(gr))
        comp_value, comp_grads = step(interp, loss_fn)
    assert counter_i.frame_count == 1 and counter_l.frame_count == 1
    assert _fastgan_targets(counter_l.graphs[0]), "the compiled loss does not call torch.ops.fastgan"
    torch.testing.assert_close(comp_value, eager_value)
    for e, c in zip(eager_grads, comp_grads):
        torch.testing.assert_close(c, e)
    # the reference gives the same step
    with fastgan.use_backend("reference"):
        ref_value, ref_grads = step(FG.interpolate, lambda dr, df, gr: FG.wgan_critic_loss(dr, df) + 10.0 * FG.grad_norm_penalty(gr))
    torch.testing.assert_close(comp_value, ref_value, rtol=1e-5, atol=1e-6)
    for e, c in zip(ref_grads, comp_grads):
        torch.testing.assert_close(c, e, rtol=1e-5, atol=1e-6)


@requires_cpu
def test_inductor_combined_losses():
    """One inductor compile of every operator together (under the default ``auto`` selection,
    which picks the cpu kernels for CPU tensors), against eager."""

    def combined(real, fake, alpha, d_real, d_fake, grads, x, recon):
        x_hat = FG.interpolate(real, fake, alpha)
        energy_real = FG.reconstruction_error(x, recon, 2)
        err_fake = FG.reconstruction_error(recon, x, 1)
        loss = (
            FG.gan_discriminator_loss(d_real, d_fake)
            + FG.gan_generator_loss(d_fake)
            + FG.wgan_critic_loss(d_real, d_fake)
            + 10.0 * FG.grad_norm_penalty(grads)
            + FG.grad_norm_penalty(grads, 0.5, True)
            + FG.lsgan_discriminator_loss(d_real, d_fake)
            + FG.lsgan_generator_loss(d_fake)
            + FG.hinge_discriminator_loss(d_real, d_fake)
            + FG.hinge_generator_loss(d_fake)
            + FG.ebgan_discriminator_loss(energy_real, err_fake, 1.5)
            + FG.began_discriminator_loss(err_fake, energy_real, 0.3)
            + FG.began_generator_loss(err_fake)
        )
        return x_hat, loss

    g = kc.generator("inductor")
    inputs = (
        torch.randn(B, 3, 8, 8, generator=g),
        torch.randn(B, 3, 8, 8, generator=g),
        torch.rand(B, generator=g),
        _scores((B, 1, 4, 4), 40),
        _scores((B, 1, 4, 4), 41),
        kc.rows_with_norms((B, 3, 8, 8), g).float(),
        torch.randn(B, 3, 8, 8, generator=g),
        torch.randn(B, 3, 8, 8, generator=g),
    )
    counter = CompileCounterWithBackend("inductor")
    compiled = torch.compile(combined, fullgraph=True, backend=counter, dynamic=False)

    def run(f):
        leaves = [t.detach().clone().requires_grad_(True) for t in inputs]
        x_hat, loss = f(*leaves)
        grads = torch.autograd.grad((x_hat * 0.5).sum() + loss, leaves)
        return (x_hat.detach(), loss.detach()), grads

    with fastgan.use_backend("auto"):
        eager_out, eager_grads = run(combined)
        comp_out, comp_grads = run(compiled)
    assert counter.frame_count == 1, f"expected one compiled graph, got {counter.frame_count}"
    targets = set(_fastgan_targets(counter.graphs[0]))
    for op in kc.OP_NAMES:
        assert any(t.startswith(f"fastgan.{op}") for t in targets), f"fastgan.{op} is not in the compiled graph: {targets}"
    for e, c in zip(eager_out, comp_out):
        torch.testing.assert_close(c, e, rtol=1e-5, atol=1e-6)
    for e, c in zip(eager_grads, comp_grads):
        torch.testing.assert_close(c, e, rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------ dynamic shapes and floats
#: The backends whose operators torch.compile must trace (the issue: reference and cpu).
DYN_BACKENDS = [b for b in ("reference", "cpu") if b in kc.BACKENDS]


class _SmallCritic(nn.Module):
    def __init__(self, features):
        super().__init__()
        torch.manual_seed(7)
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(features, 8), nn.Tanh(), nn.Linear(8, 1))

    def forward(self, x, scale=None):
        out = self.net(x)
        return out if scale is None else out * scale


_CRITIC = _SmallCritic(3 * 2 * 2)


def _rows(b, seed, shape=(3, 2, 2), positive=False):
    return _scores((b, *shape), seed, positive)


def _dyn_cases():
    """name -> (function, inputs for a batch b, parameters whose gradients are compared).

    The function is compiled *itself* where it can be, so that its own default float
    hyper-parameters (centre 1.0, weight 10.0, a = 0, b = 1, …) are what dynamo sees — as
    symbolic floats under dynamic=True. Float hyper-parameters passed explicitly are inputs of
    the compiled function (symbolic too)."""
    p = list(_CRITIC.parameters())
    return {
        "gan_discriminator_loss": (FG.gan_discriminator_loss, lambda b: (_scores((b, 1), 0), _scores((b, 1), 1)), []),
        "gan_generator_loss": (FG.gan_generator_loss, lambda b: (_scores((b, 1), 2),), []),
        "wgan_critic_loss": (FG.wgan_critic_loss, lambda b: (_scores((b,), 4), _scores((b,), 5)), []),
        "wgan_generator_loss": (FG.wgan_generator_loss, lambda b: (_scores((b, 1), 6),), []),
        "lsgan_discriminator_loss": (FG.lsgan_discriminator_loss, lambda b: (_scores((b, 1, 3, 3), 7), _scores((b, 1, 3, 3), 8)), []),
        "lsgan_discriminator_loss_floats": (FG.lsgan_discriminator_loss, lambda b: (_scores((b, 1), 7), _scores((b, 1), 8), -0.5 + 0.01 * b, 0.75), []),
        "lsgan_generator_loss": (FG.lsgan_generator_loss, lambda b: (_scores((b, 1), 9),), []),
        "lsgan_generator_loss_c": (FG.lsgan_generator_loss, lambda b: (_scores((b, 1), 9), 0.5 + 0.01 * b), []),
        "hinge_discriminator_loss": (FG.hinge_discriminator_loss, lambda b: (_scores((b, 1), 10), _scores((b, 1), 11)), []),
        "hinge_generator_loss": (FG.hinge_generator_loss, lambda b: (_scores((b, 1), 12),), []),
        "ebgan_discriminator_loss": (FG.ebgan_discriminator_loss, lambda b: (_scores((b,), 13, True), _scores((b,), 14, True), 1.5 + 0.01 * b), []),
        "ebgan_generator_loss": (FG.ebgan_generator_loss, lambda b: (_scores((b,), 15, True), _scores((b, 8), 31)), []),
        "pulling_away_term": (FG.pulling_away_term, lambda b: (_scores((b, 8), 32),), []),
        "began_discriminator_loss": (FG.began_discriminator_loss, lambda b: (_scores((b,), 16, True), _scores((b,), 17, True), 0.3), []),
        "began_discriminator_loss_k_tensor": (FG.began_discriminator_loss, lambda b: (_scores((b,), 16, True), _scores((b,), 17, True), torch.tensor(0.3)), []),
        "began_generator_loss": (FG.began_generator_loss, lambda b: (_scores((b,), 18, True),), []),
        "began_update": (FG.began_update, lambda b: (0.3, _scores((b,), 16, True), _scores((b,), 17, True)), []),
        "reconstruction_error": (lambda x, r: FG.reconstruction_error(x, r, 1), lambda b: (_rows(b, 19), _rows(b, 20)), []),
        "reconstruction_error_p2": (lambda x, r: FG.reconstruction_error(x, r, 2), lambda b: (_rows(b, 21), _rows(b, 22)), []),
        "grad_norm_penalty": (FG.grad_norm_penalty, lambda b: (kc.rows_with_norms((b, 3, 4), kc.generator("gnp", b)).float(),), []),
        "grad_norm_penalty_floats": (FG.grad_norm_penalty, lambda b: (kc.rows_with_norms((b, 3, 4), kc.generator("gnp", b)).float(), 0.5 + 0.01 * b, True), []),
        "interpolate": (FG.interpolate, lambda b: (_rows(b, 23), _rows(b, 24), torch.rand(b, generator=kc.generator("alpha", b))), []),
        "gradient_penalty": (
            lambda real, fake, alpha: FG.gradient_penalty(_CRITIC, real, fake, alpha=alpha),
            lambda b: (_rows(b, 25), _rows(b, 26), torch.rand(b, generator=kc.generator("alpha", b))), p),
        "gradient_penalty_floats": (
            lambda real, fake, alpha, w, c: FG.gradient_penalty(_CRITIC, real, fake, w, c, True, alpha, scale=2.0),
            lambda b: (_rows(b, 25), _rows(b, 26), torch.rand(b, generator=kc.generator("alpha", b)), 3.0 + b, 0.5), p),
        "amp.gradient_penalty": (
            lambda real, fake, alpha: amp.gradient_penalty(_CRITIC, real, fake, None, alpha=alpha),
            lambda b: (_rows(b, 25), _rows(b, 26), torch.rand(b, generator=kc.generator("alpha", b))), p),
        "r1_penalty": (lambda x: FG.r1_penalty(_CRITIC, x), lambda b: (_rows(b, 27),), p),
        "r1_penalty_gamma": (lambda x, g: FG.r1_penalty(_CRITIC, x, g), lambda b: (_rows(b, 27), 1.0 + b), p),
        "adversarial_loss": (FG.adversarial_loss, lambda b: (_scores((b, 1), 28), _scores((b, 1), 29), "lsgan"), []),
        "adversarial_loss_floats": (
            lambda r, f, t, m: FG.adversarial_loss(r, f, "lsgan", real_target=t, margin=m),
            lambda b: (_scores((b, 1), 28), _scores((b, 1), 29), 0.9, 2.0 + b), []),
    }


def _run_with_grads(f, inputs, params):
    """Outputs (detached) and the gradients of a weighted sum of them w.r.t. every floating
    tensor input and ``params``."""
    leaves = [t.detach().clone().requires_grad_(True) if isinstance(t, torch.Tensor) and t.dim() > 0 else t for t in inputs]
    out = f(*leaves)
    outs = out if isinstance(out, tuple) else (out,)
    wrt = [t for t in leaves if isinstance(t, torch.Tensor) and t.requires_grad] + list(params)
    total = sum((o.float() * (i + 1.5)).sum() for i, o in enumerate(outs) if o.requires_grad)
    grads = torch.autograd.grad(total, wrt, allow_unused=True) if isinstance(total, torch.Tensor) else ()
    return [o.detach() for o in outs], grads


def _assert_same(name, eager, compiled):
    (eo, eg), (co, cg) = eager, compiled
    assert len(eo) == len(co) and len(eg) == len(cg), name
    for i, (e, c) in enumerate(zip(eo, co)):
        torch.testing.assert_close(c, e, rtol=1e-5, atol=1e-6, msg=lambda m: f"{name} output {i}: {m}")
    for i, (e, c) in enumerate(zip(eg, cg)):
        if e is None or c is None:
            assert e is None and c is None or (e if c is None else c).abs().max() == 0, f"{name} gradient {i}"
            continue
        torch.testing.assert_close(c, e, rtol=1e-5, atol=1e-6, msg=lambda m: f"{name} d/d{i}: {m}")


@pytest.mark.parametrize("backend", DYN_BACKENDS)
def test_every_function_compiles_with_dynamic_shapes(backend):
    """dynamic=True makes every shape and every float argument (the defaults included)
    symbolic: each function compiles into one graph (fullgraph=True) and gives the eager values
    and gradients — for two batch sizes and, where floats are passed, two values of them."""
    failures = []
    for name, (fn, make, params) in _dyn_cases().items():
        torch._dynamo.reset()
        compiled = torch.compile(fn, fullgraph=True, dynamic=True, backend="aot_eager")
        try:
            with fastgan.use_backend(backend):
                for b in (6, 5):
                    inputs = make(b)
                    _assert_same(f"{name} (batch {b})", _run_with_grads(fn, inputs, params), _run_with_grads(compiled, inputs, params))
        except Exception as exc:  # collect them all: one compile failure must not hide others
            failures.append(f"{name}: {type(exc).__name__}: {str(exc).splitlines()[0][:300]}")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("backend", DYN_BACKENDS)
def test_automatic_dynamic_after_a_recompile(backend):
    """The default dynamic=None: the first call is static, a second batch size recompiles with
    symbolic shapes (and symbolic floats where they changed); a third call runs that graph."""
    failures = []
    cases = _dyn_cases()
    for name in ("grad_norm_penalty_floats", "lsgan_discriminator_loss_floats", "lsgan_generator_loss", "ebgan_discriminator_loss",
                 "ebgan_generator_loss", "began_update", "gradient_penalty_floats", "r1_penalty_gamma", "adversarial_loss_floats"):
        fn, make, params = cases[name]
        torch._dynamo.reset()
        compiled = torch.compile(fn, fullgraph=True, backend="aot_eager")
        try:
            with fastgan.use_backend(backend):
                for b in (6, 5, 4):
                    inputs = make(b)
                    _assert_same(f"{name} (batch {b})", _run_with_grads(fn, inputs, params), _run_with_grads(compiled, inputs, params))
        except Exception as exc:
            failures.append(f"{name}: {type(exc).__name__}: {str(exc).splitlines()[0][:300]}")
    assert not failures, "\n".join(failures)


def test_non_finite_constant_is_still_refused_under_compile():
    """A NaN or infinite hyper-parameter is refused under torch.compile too (dynamo does not make
    a non-finite float symbolic: the check sees the constant), and so is a negative one after a
    graph was compiled for a valid one (the check became a guard)."""
    torch._dynamo.reset()
    compiled = torch.compile(FG.grad_norm_penalty, fullgraph=True, dynamic=True, backend="aot_eager")
    grads = kc.rows_with_norms((4, 5), kc.generator("refuse")).float()
    compiled(grads, 0.5)
    for bad in (float("nan"), float("inf"), -1.0):
        with pytest.raises(Exception) as info:
            compiled(grads, bad)
        assert isinstance(info.value, (ValueError, torch._dynamo.exc.Unsupported)), info.value
        assert "center" in str(info.value) or "Observed exception" in str(info.value)
    torch.testing.assert_close(compiled(grads, 0.25), FG.grad_norm_penalty(grads, 0.25))


class _Autoencoder(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(8)
        self.enc, self.dec = nn.Linear(5, 3), nn.Linear(3, 5)

    def forward(self, x, labels=None):
        h = torch.tanh(self.enc(x))
        return self.dec(h), h


class _ScoreD(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(9)
        self.net = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 1))
        self.embed = nn.Embedding(3, 5)

    def forward(self, x, labels=None):
        return self.net(x if labels is None else x + self.embed(labels))


@pytest.mark.parametrize("backend", DYN_BACKENDS)
def test_every_loss_object_compiles_with_dynamic_shapes(backend):
    """A discriminator and a generator step of every loss object, compiled with dynamic=True
    and fullgraph=True: the eager losses, logs and parameter gradients (WGAN-GP's penalty
    included; BEGAN's k update too)."""
    from fastgan import losses

    failures = []
    for name in losses.available():
        D = _Autoencoder() if name in ("ebgan", "began") else _ScoreD()
        params = list(D.parameters())
        hp = {"began": {"k0": 0.5, "lambda_k": 0.1}}.get(name, {})

        def make(b):
            g = kc.generator("objects", b)
            labels = torch.randint(0, 3, (b,), generator=g) if name == "cgan" else None
            return torch.randn(b, 5, generator=g), torch.randn(b, 5, generator=g) * 2, labels

        def step(loss, real, fake, labels):
            d, d_logs = loss.discriminator_loss(D, real, fake, labels)
            if name == "began":  # its k update, once per step (WGAN's clip would change D mid-graph)
                loss.after_discriminator_step(D)
            g, _ = loss.generator_loss(D, fake, labels)
            return d, g, *d_logs.values()

        torch._dynamo.reset()
        eager_loss, comp_loss = losses.create(name, **hp), losses.create(name, **hp)
        compiled = torch.compile(step, fullgraph=True, dynamic=True, backend="aot_eager")
        try:
            with fastgan.use_backend(backend):
                for b in (6, 5):
                    real, fake, labels = make(b)
                    torch.manual_seed(b)  # WGAN-GP's alpha: the same draws in both runs
                    e = _run_with_grads(lambda r, f: step(eager_loss, r, f, labels), (real, fake), params)
                    torch.manual_seed(b)
                    c = _run_with_grads(lambda r, f: compiled(comp_loss, r, f, labels), (real, fake), params)
                    _assert_same(f"{name} (batch {b})", e, c)
                    for (n1, b1), (n2, b2) in zip(eager_loss.named_buffers(), comp_loss.named_buffers()):
                        torch.testing.assert_close(b2, b1, msg=lambda m: f"{name} buffer {n1}: {m}")
            if name == "began":
                assert comp_loss.k.item() != 0.5  # the compiled step updated k
        except Exception as exc:
            failures.append(f"{name}: {type(exc).__name__}: {str(exc).splitlines()[0][:300]}")
    assert not failures, "\n".join(failures)


class _ExportedLosses(nn.Module):
    """The functional losses in one module, for torch.export (their defaults included)."""

    def forward(self, d_real, d_fake, e_real, e_fake, emb, grads, x, recon):
        return (
            FG.gan_discriminator_loss(d_real, d_fake),
            FG.gan_generator_loss(d_fake),
            FG.gan_generator_loss(d_fake, saturating=True),
            FG.wgan_critic_loss(d_real, d_fake),
            FG.wgan_generator_loss(d_fake),
            FG.lsgan_discriminator_loss(d_real, d_fake),
            FG.lsgan_generator_loss(d_fake),
            FG.hinge_discriminator_loss(d_real, d_fake),
            FG.hinge_generator_loss(d_fake),
            FG.ebgan_discriminator_loss(e_real, e_fake, 1.0),
            FG.ebgan_generator_loss(e_fake, emb),
            FG.pulling_away_term(emb),
            FG.began_discriminator_loss(e_real, e_fake, 0.3),
            FG.began_generator_loss(e_fake),
            FG.reconstruction_error(x, recon, 1),  # p has no default (deprecated): pass it
            FG.reconstruction_error(x, recon, 2),
            FG.grad_norm_penalty(grads),
            FG.grad_norm_penalty(grads, 0.5, True),
            FG.interpolate(x, recon, e_real),
        )


@pytest.mark.parametrize("backend", DYN_BACKENDS)
def test_torch_export_of_the_functional_losses(backend):
    """torch.export.export with a dynamic batch: the exported program gives the eager values
    for the batch it was exported with and for another."""
    def make(b):
        g = kc.generator("export", b)
        return (
            torch.randn(b, 1, generator=g), torch.randn(b, 1, generator=g),
            torch.rand(b, generator=g) + 0.1, torch.rand(b, generator=g) + 0.1,
            torch.randn(b, 4, generator=g), torch.randn(b, 3, 2, generator=g),
            torch.randn(b, 3, 2, generator=g), torch.randn(b, 3, 2, generator=g),
        )

    args = make(6)
    batch = torch.export.Dim("batch", min=2)
    with fastgan.use_backend(backend):
        program = torch.export.export(_ExportedLosses(), args, dynamic_shapes=tuple({0: batch} for _ in args))
        for b in (6, 5):
            inputs = make(b)
            for i, (c, e) in enumerate(zip(program.module()(*inputs), _ExportedLosses()(*inputs))):
                torch.testing.assert_close(c, e, rtol=1e-5, atol=1e-6, msg=lambda m: f"output {i} (batch {b}): {m}")
    if backend == "cpu":
        targets = {str(n.target) for n in program.graph.nodes if str(n.target).startswith("fastgan.")}
        for op in kc.OP_NAMES:
            assert any(t.startswith(f"fastgan.{op}") for t in targets), f"fastgan.{op} is not in the exported graph: {targets}"
