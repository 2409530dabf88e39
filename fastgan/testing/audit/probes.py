"""The audit's probe networks and batches: small, seeded, float64 (docs/audit.md, "Probes").

Every probe is built to separate departures of the catalogue: large logits (|x| ≥ 40, where
a sigmoid rounds to 0 or 1 even in float64), gradient norms far below, around and far above 1, a sample whose
gradient is exactly 0, fake energies on both sides of EBGAN's margin, an all-zero embedding, and
BEGAN's k at 0 and 1 with a balance pushing it out of [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

__all__ = ["Probe", "ProbeCritic", "ProbeAutoencoder", "make_probes", "hazard", "SHAPE", "N_CLASSES"]

SHAPE = (5, 2, 3, 3)  # (B, C, H, W): C, H, W differ so that per-axis norms differ
N_CLASSES = 3
DTYPE = torch.float64


@dataclass
class Probe:
    """One probe: a name, what it separates, the discriminator ``D``, the batches and (BEGAN) k."""

    name: str
    purpose: str
    D: nn.Module
    real: torch.Tensor
    fake: torch.Tensor
    labels: torch.Tensor | None = None
    k: torch.Tensor | None = None
    extra: dict = field(default_factory=dict)


class ProbeCritic(nn.Module):
    """``scale · l2(act(l1(x [+ embed(labels)]))) + skip(x)``: a critic / discriminator whose
    logits a probe can place exactly (through the linear ``skip`` path)."""

    def __init__(self, features: int, n_classes: int = 0, scale: float = 1.0, relu: bool = False, hidden: int = 8):
        super().__init__()
        self.l1, self.l2 = nn.Linear(features, hidden), nn.Linear(hidden, 1)
        self.skip = nn.Linear(features, 1, bias=False)
        self.embed = nn.Embedding(n_classes, features) if n_classes else None
        self.scale, self.relu = scale, relu

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        h = x.flatten(1)
        if self.embed is not None:
            if labels is None:
                raise TypeError("this conditional probe critic is called as D(x, labels)")
            h = h + self.embed(labels)
        act = torch.relu if self.relu else torch.tanh
        return self.scale * self.l2(act(self.l1(h))) + self.skip(h)


class ProbeAutoencoder(nn.Module):
    """A linear autoencoder (no biases, so energies scale exactly with the input): returns
    ``(reconstruction, embedding)``, or the reconstruction only with ``embedding=False``."""

    def __init__(self, features: int, hidden: int = 4, embedding: bool = True):
        super().__init__()
        self.enc, self.dec = nn.Linear(features, hidden, bias=False), nn.Linear(hidden, features, bias=False)
        self.embedding = embedding

    def forward(self, x: torch.Tensor):
        emb = self.enc(x.flatten(1))
        recon = self.dec(emb).reshape(x.shape)
        return (recon, emb) if self.embedding else recon


def hazard(cause: str, fix: str = "", entry: str | None = None) -> dict:
    """What makes a probe a hazard for non-finite numbers: the likely ``cause`` when a user's code
    is NaN/inf there (the paper's is finite), its one-line ``fix``, and the catalogue ``entry``
    that names it (or None); kept in ``Probe.extra["nonfinite"]``."""
    return {"cause": cause, "fix": fix, "entry": entry}


_LARGE_LOGITS = hazard(
    "logits up to ±1000: sigmoid(x) rounds to exactly 0 or 1 and exp(x) overflows, so log(sigmoid(x)), "
    "log(1 − sigmoid(x)) or an exp of a logit is ±inf",
    "compute on the logits: F.logsigmoid / F.softplus / nn.BCEWithLogitsLoss (fastgan.functional.gan_*_loss)")
_TINY_NORMS = hazard("every per-sample gradient norm ≈ 1e-3: a division by the norm, or a log of it, blows up",
                     "penalise the norm itself, (norm − 1)² (fastgan.functional.gradient_penalty)")
_ZERO_NORM = hazard("sample 0's input gradient is exactly 0: a norm written as sqrt(sum of squares) has the "
                    "gradient 0/0 = NaN there", entry="gp-sqrt-nan")
_ZERO_EMBEDDING = hazard("fake sample 1 is 0, so its embedding row is 0: a cosine that divides by the row's norm "
                         "divides 0 by 0", entry="pt-zero-row-nan")


def _batch(gen, shape=SHAPE):
    return torch.randn(shape, generator=gen, dtype=DTYPE)


def _aim(D: ProbeCritic, x: torch.Tensor, targets) -> torch.Tensor:
    """Shift each sample along the skip weight so that the skip path outputs ``targets``."""
    w = D.skip.weight.detach().reshape(-1)
    t = torch.as_tensor(targets, dtype=DTYPE)
    cur = x.flatten(1) @ w
    return (x.flatten(1) + ((t - cur)[:, None] * w[None, :] / w.dot(w))).reshape(x.shape)


def _critics(gen, family, features):
    n_classes = N_CLASSES if family == "cgan" else 0
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(torch.randint(0, 2**31 - 1, (), generator=gen)))
        return ProbeCritic(features, n_classes).to(DTYPE), ProbeCritic(features, n_classes, relu=True).to(DTYPE)


def _adversarial_probes(gen, family):
    b, feats = SHAPE[0], SHAPE[1] * SHAPE[2] * SHAPE[3]
    D, D_relu = _critics(gen, family, feats)
    labels = torch.randint(0, N_CLASSES, (b,), generator=gen) if family == "cgan" else None
    real, fake = _batch(gen), _batch(gen)
    probes = [Probe("ordinary", "logits and norms of order 1", D, real, fake, labels)]
    if family in ("gan", "cgan", "lsgan", "wgan"):
        big = _batch(gen)
        probes.append(Probe("large logits", "|logits| from 40 to 1000: a sigmoid rounds to 0 or 1", D,
                            _aim(D, big * 0.1, [900.0, -900.0, 45.0, -50.0, 2.0]),
                            _aim(D, fake * 0.1, [45.0, -800.0, 60.0, -2.0, 1000.0]), labels,
                            extra={"nonfinite": _LARGE_LOGITS}))
        if family == "wgan":
            clipped = ProbeCritic(feats).to(DTYPE)
            with torch.no_grad():
                for p in clipped.parameters():
                    p.copy_(0.05 * torch.randn(p.shape, generator=gen, dtype=DTYPE))
            probes[0].extra["clip_D"] = clipped
    if family == "wgan-gp":
        tiny = ProbeCritic(feats, scale=1e-3).to(DTYPE)
        tiny.load_state_dict(D.state_dict())
        with torch.no_grad():
            tiny.skip.weight.mul_(1e-3)
        probes.append(Probe("tiny norms", "every per-sample gradient norm ≈ 1e-3 (one- vs two-sided)", tiny, real, fake,
                            extra={"nonfinite": _TINY_NORMS}))
        large = ProbeCritic(feats, scale=30.0).to(DTYPE)
        large.load_state_dict(D.state_dict())
        with torch.no_grad():
            large.skip.weight.mul_(30.0)
        probes.append(Probe("large norms", "every per-sample gradient norm well above 1 (a one-sided penalty is active)",
                            large, real, fake))
        with torch.no_grad():  # every first-layer weight positive: a negative sample has all units dead
            D_relu.l1.weight.abs_()
            D_relu.l1.bias.zero_()
            D_relu.skip.weight.zero_()
        r0, f0 = real.clone(), fake.clone()
        r0[0], f0[0] = -1.0 - real[0].abs(), -2.0 - fake[0].abs()
        probes.append(Probe("zero norm", "sample 0's gradient is exactly 0 (ReLU critic, dead units)", D_relu, r0, f0,
                            extra={"nonfinite": _ZERO_NORM}))
    return probes


def _autoencoder_probes(gen, family, hp):
    feats = SHAPE[1] * SHAPE[2] * SHAPE[3]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(torch.randint(0, 2**31 - 1, (), generator=gen)))
        D = ProbeAutoencoder(feats, embedding=family == "ebgan").to(DTYPE)
    real, fake = _batch(gen), _batch(gen)
    if family == "ebgan":
        with torch.no_grad():
            e = ((fake - D(fake)[0]) ** 2).flatten(1).mean(1)
        m = hp["margin"] if hp["margin"] > 0 else 1.0
        target = m * torch.tensor([0.3, 0.5, 0.7, 0.9, 1.6], dtype=DTYPE)
        straddle = fake * (target / e).sqrt().reshape(-1, 1, 1, 1)
        zero_row = fake.clone()
        zero_row[1] = 0.0
        return [Probe("ordinary", "random batches", D, real, fake),
                Probe("margin", "fake energies 0.3m … 1.6m: one sample off the margin", D, real, straddle),
                # a cosine is not differentiable at a zero vector: every epsilon gives another
                # gradient for that sample, so only its being finite is compared
                Probe("zero embedding", "fake sample 1 is 0: an all-zero embedding", D, real, zero_row,
                      extra={"finite_only_rows": (1,), "nonfinite": _ZERO_EMBEDDING})]
    k = lambda v: torch.tensor(v, dtype=DTYPE)  # noqa: E731
    return [Probe("ordinary", "k = 0.3, random batches", D, real, fake, k=k(0.3)),
            Probe("k at 0", "k = 0 and fakes 3x larger: the balance pushes k below 0", D, real, fake * 3, k=k(0.0)),
            Probe("k at 1", "k = 1 and reals 3x larger: the balance pushes k above 1", D, real * 3, fake, k=k(1.0))]


def make_probes(family: str, hp: dict, seed: int) -> list[Probe]:
    """The probes of ``family`` (docs/audit.md), deterministic for a given ``seed``."""
    gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):  # the modules' initialisation draws from it
        torch.manual_seed(seed)
        if family in ("ebgan", "began"):
            return _autoencoder_probes(gen, family, hp)
        return _adversarial_probes(gen, family)
