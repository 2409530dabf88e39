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

try:  # tests/ as a package or as a plain directory on sys.path
    from tests import kernel_cases as kc
except ImportError:  # pragma: no cover
    import kernel_cases as kc

pytestmark = pytest.mark.skipif(
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
    "gradient_norm_penalty": (lambda g: FG.gradient_norm_penalty(g), lambda: (kc.rows_with_norms((B, 3, 4, 4), kc.generator("gnp")).float(),), True),
    "gradient_norm_penalty_one_sided": (lambda g: FG.gradient_norm_penalty(g, 1.0, True), lambda: (kc.rows_with_norms((B, 3, 4, 4), kc.generator("gnp1")).float(),), True),
    "interpolate": (FG.interpolate, lambda: (_scores((B, 3, 4, 4), 23), _scores((B, 3, 4, 4), 24), torch.rand(B, generator=kc.generator("alpha"))), True),
}


@pytest.mark.parametrize("name", list(LOSSES))
def test_loss_compiles_to_one_graph_with_eager_values_and_gradients(name):
    fn, make, uses_op = LOSSES[name]
    _compile_and_compare(fn, make(), uses_fastgan_op=uses_op)


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
        lambda dr, df, grads: FG.wgan_critic_loss(dr, df) + 10.0 * FG.gradient_norm_penalty(grads),
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
        eager_value, eager_grads = step(FG.interpolate, lambda dr, df, gr: FG.wgan_critic_loss(dr, df) + 10.0 * FG.gradient_norm_penalty(gr))
        comp_value, comp_grads = step(interp, loss_fn)
    assert counter_i.frame_count == 1 and counter_l.frame_count == 1
    assert _fastgan_targets(counter_l.graphs[0]), "the compiled loss does not call torch.ops.fastgan"
    torch.testing.assert_close(comp_value, eager_value)
    for e, c in zip(eager_grads, comp_grads):
        torch.testing.assert_close(c, e)
    # the reference gives the same step
    with fastgan.use_backend("reference"):
        ref_value, ref_grads = step(FG.interpolate, lambda dr, df, gr: FG.wgan_critic_loss(dr, df) + 10.0 * FG.gradient_norm_penalty(gr))
    torch.testing.assert_close(comp_value, ref_value, rtol=1e-5, atol=1e-6)
    for e, c in zip(ref_grads, comp_grads):
        torch.testing.assert_close(c, e, rtol=1e-5, atol=1e-6)


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
            + 10.0 * FG.gradient_norm_penalty(grads)
            + FG.gradient_norm_penalty(grads, 0.5, True)
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
