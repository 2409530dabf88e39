"""An independent float64 implementation of docs/design.md §1, written for the tests.

It never imports fastgan and deliberately computes things a different way from a
vectorised library: explicit Python loops over the batch, per-sample autograd calls for
the penalties, a double loop for the pulling-away term.  Everything is plain torch so
autograd gives its gradients (including the double backward of the penalties).

Also holds ``no_host_sync()``, a context manager that raises on any device -> host
synchronisation (``aten._local_scalar_dense``, i.e. ``.item()``, ``bool(t)``, ``float(t)``,
and device -> CPU copies).
"""

from __future__ import annotations

import contextlib

import torch
from torch.utils._python_dispatch import TorchDispatchMode

F64 = torch.float64


# --------------------------------------------------------------------------- helpers


def _as64(t: torch.Tensor) -> torch.Tensor:
    return t if t.dtype == F64 else t.to(F64)


def _mean_all(t: torch.Tensor) -> torch.Tensor:
    """Mean over every element, accumulated one sample at a time."""
    t = _as64(t)
    total = t.new_zeros(())
    for b in range(t.shape[0]):
        total = total + t[b].sum()
    return total / t.numel()


def _mean_batch(values: list[torch.Tensor]) -> torch.Tensor:
    total = values[0] * 0
    for v in values:
        total = total + v
    return total / len(values)


def softplus(x: torch.Tensor) -> torch.Tensor:
    """log(1 + exp(x)) = logaddexp(0, x), stable for both signs."""
    return torch.logaddexp(torch.zeros_like(x), x)


def _relu(x: torch.Tensor) -> torch.Tensor:
    return torch.maximum(x, torch.zeros_like(x))


# --------------------------------------------------------------------------- GAN / CGAN (eq.3, 4)


def gan_discriminator_loss(real_logits, fake_logits):
    return _mean_all(softplus(-_as64(real_logits))) + _mean_all(softplus(_as64(fake_logits)))


def gan_generator_loss(fake_logits, saturating=False):
    fake = _as64(fake_logits)
    if saturating:
        return -_mean_all(softplus(fake))
    return _mean_all(softplus(-fake))


# --------------------------------------------------------------------------- WGAN (eq.5)


def wgan_critic_loss(real_scores, fake_scores):
    return _mean_all(fake_scores) - _mean_all(real_scores)


def wgan_generator_loss(fake_scores):
    return -_mean_all(fake_scores)


# --------------------------------------------------------------------------- WGAN-GP (eq.6) and R1


def interpolate(real, fake, alpha):
    """x_hat_b = alpha_b * x_b + (1 - alpha_b) * x~_b, one sample at a time."""
    real, fake, alpha = _as64(real), _as64(fake), _as64(alpha)
    rows = [alpha[b] * real[b] + (1.0 - alpha[b]) * fake[b] for b in range(real.shape[0])]
    return torch.stack(rows)


def sample_norms(grads) -> list[torch.Tensor]:
    grads = _as64(grads)
    return [torch.sqrt((grads[b] * grads[b]).sum()) for b in range(grads.shape[0])]


def grad_norm_penalty(grads, center=1.0, one_sided=False):
    terms = []
    for n in sample_norms(grads):
        t = n - center
        if one_sided:
            t = _relu(t)
        terms.append(t * t)
    return _mean_batch(terms)


def _slice_kwargs(kwargs: dict, b: int, batch: int) -> dict:
    out = {}
    for key, value in kwargs.items():
        if isinstance(value, torch.Tensor) and value.dim() > 0 and value.shape[0] == batch:
            out[key] = value[b : b + 1]
        else:
            out[key] = value
    return out


def input_gradients(critic, inputs, **critic_kwargs) -> list[torch.Tensor]:
    """grad of critic(x)_b w.r.t. x_b, computed by calling the critic on each sample alone.

    Valid for critics that treat samples independently (no batch norm), which is what the
    tests use.  create_graph=True so the result is differentiable w.r.t. the critic's
    parameters and, through ``inputs``, w.r.t. whatever produced them.
    """
    batch = inputs.shape[0]
    grads = []
    for b in range(batch):
        xb = inputs[b : b + 1]
        if not xb.requires_grad:
            xb = xb.detach().requires_grad_(True)
        out = critic(xb, **_slice_kwargs(critic_kwargs, b, batch))
        (g,) = torch.autograd.grad(out.sum(), xb, create_graph=True)
        grads.append(g[0])
    return grads


def gradient_penalty(critic, real, fake, alpha, gp_weight=10.0, center=1.0, one_sided=False,
                     **critic_kwargs):
    x_hat = interpolate(real, fake, alpha)
    grads = torch.stack(input_gradients(critic, x_hat, **critic_kwargs))
    return gp_weight * grad_norm_penalty(grads, center, one_sided)


def r1_penalty(critic, inputs, gamma=10.0, **critic_kwargs):
    grads = input_gradients(critic, _as64(inputs), **critic_kwargs)
    return gamma / 2.0 * _mean_batch([(g * g).sum() for g in grads])


# --------------------------------------------------------------------------- LSGAN (eq.10), hinge


def lsgan_discriminator_loss(real_out, fake_out, a=0.0, b=1.0):
    real, fake = _as64(real_out), _as64(fake_out)
    return 0.5 * _mean_all((real - b) ** 2) + 0.5 * _mean_all((fake - a) ** 2)


def lsgan_generator_loss(fake_out, c=1.0):
    fake = _as64(fake_out)
    return 0.5 * _mean_all((fake - c) ** 2)


def hinge_discriminator_loss(real, fake):
    return _mean_all(_relu(1.0 - _as64(real))) + _mean_all(_relu(1.0 + _as64(fake)))


def hinge_generator_loss(fake):
    return -_mean_all(fake)


# --------------------------------------------------------------------------- EBGAN (eq.7, 8)


def reconstruction_error(inputs, reconstructions, p=1):
    inputs, reconstructions = _as64(inputs), _as64(reconstructions)
    rows = []
    for b in range(inputs.shape[0]):
        d = (inputs[b] - reconstructions[b]).reshape(-1)
        e = d.abs() if p == 1 else d * d
        rows.append(e.sum() / d.numel())
    return torch.stack(rows)


def ebgan_discriminator_loss(real_energy, fake_energy, margin):
    real, fake = _as64(real_energy), _as64(fake_energy)
    real_terms = [real[b] for b in range(real.shape[0])]
    fake_terms = [_relu(margin - fake[b]) for b in range(fake.shape[0])]
    return _mean_batch(real_terms) + _mean_batch(fake_terms)


def pulling_away_term(embeddings):
    emb = _as64(embeddings)
    n = emb.shape[0]
    rows = [emb[i].reshape(-1) for i in range(n)]
    total = emb.new_zeros(())
    for i in range(n):
        for j in range(n):
            if i == j:
                continue
            dot = (rows[i] * rows[j]).sum()
            total = total + dot * dot / ((rows[i] * rows[i]).sum() * (rows[j] * rows[j]).sum())
    return total / (n * (n - 1))


def ebgan_generator_loss(fake_energy, embeddings=None, pt_weight=0.1):
    loss = _mean_all(fake_energy)
    if embeddings is not None:
        loss = loss + pt_weight * pulling_away_term(embeddings)
    return loss


# --------------------------------------------------------------------------- BEGAN (eq.9)


def began_discriminator_loss(real_error, fake_error, k):
    k = _as64(k) if isinstance(k, torch.Tensor) else float(k)
    return _mean_all(real_error) - k * _mean_all(fake_error)


def began_generator_loss(fake_error):
    return _mean_all(fake_error)


def began_update(k, real_error, fake_error, gamma=0.5, lambda_k=0.001):
    """Returns (k_next, convergence) as float64 tensors (no gradient)."""
    with torch.no_grad():
        k = _as64(k) if isinstance(k, torch.Tensor) else torch.tensor(float(k), dtype=F64)
        mean_real = _mean_all(real_error)
        mean_fake = _mean_all(fake_error)
        balance = gamma * mean_real - mean_fake
        k_next = torch.clamp(k + lambda_k * balance, 0.0, 1.0)
        convergence = mean_real + balance.abs()
    return k_next, convergence


def began_k_sequence(k0: float, errors, gamma=0.5, lambda_k=0.001):
    """BEGAN k_t over several steps in plain Python floats (the oracle, not the library)."""
    ks, ms = [], []
    k = float(k0)
    for real_error, fake_error in errors:
        mr = sum(float(v) for v in _as64(real_error).reshape(-1)) / real_error.numel()
        mf = sum(float(v) for v in _as64(fake_error).reshape(-1)) / fake_error.numel()
        bal = gamma * mr - mf
        k = min(max(k + lambda_k * bal, 0.0), 1.0)
        ks.append(k)
        ms.append(mr + abs(bal))
    return ks, ms


# --------------------------------------------------------------------------- host sync guard


class HostSyncError(RuntimeError):
    pass


class _NoHostSyncMode(TorchDispatchMode):
    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is torch.ops.aten._local_scalar_dense.default:
            raise HostSyncError(f"host sync: {func} (e.g. .item(), float(t), bool(t))")
        if func in (torch.ops.aten._to_copy.default, torch.ops.aten.copy_.default):
            src = args[1] if func is torch.ops.aten.copy_.default else args[0]
            dst_device = (
                args[0].device
                if func is torch.ops.aten.copy_.default
                else kwargs.get("device", None)
            )
            if (
                isinstance(src, torch.Tensor)
                and src.device.type != "cpu"
                and dst_device is not None
                and torch.device(dst_device).type == "cpu"
            ):
                raise HostSyncError(f"host sync: device -> CPU copy via {func}")
        return func(*args, **kwargs)


@contextlib.contextmanager
def no_host_sync():
    """Raise HostSyncError on any device -> host sync inside the block."""
    with _NoHostSyncMode():
        yield
