"""The training loop of ``fastgan train``: one :class:`Trainer` for every family and dataset.

Programmatic use (also what ``fastgan bench --e2e`` times)::

    from fastgan.train import make_trainer

    t = make_trainer("wgan-gp", "grid25", backend="reference", seed=0)
    for _ in range(t.n_critic):
        d_logs = t.discriminator_step()      # one critic update (WGAN clipping, BEGAN k update)
    g_logs = t.generator_step()              # one generator update
    metrics = t.evaluate()                   # 2500 samples -> modes, high-quality share, ...

The quality curve: :meth:`Trainer.fit` evaluates every ``config.eval_every`` generator steps
(:data:`EVAL_EVERY` per dataset; 0: never) and at the run's last step, appending to
:attr:`Trainer.curve` a point with the step, the training seconds so far and the dataset's
quality measures. The evaluation is off the training clock (:attr:`Trainer.elapsed` counts
training only, summed over resumed runs) and draws from generators of its own, with the global
RNG states restored after it: a run with and without the curve ends with bit-identical weights.
The curve is saved in the checkpoint, so a resumed run continues it.

Every step goes through a :mod:`fastgan.losses` object; the operators run on the backend
``Trainer.backend`` selects through :func:`fastgan.use_backend` (``"auto"``: the fused kernels).
A step makes no host sync: data and noise come from the trainer's own
:class:`torch.Generator` objects on the device, and the logs are 0-dim tensors until the loop
decides to print them.

Distributed training (``torch.distributed`` initialised, ``distributed=True``): G is wrapped in
:class:`~torch.nn.parallel.DistributedDataParallel`; D is wrapped *together with the loss* in
one module whose forward is the whole discriminator objective (:class:`DiscriminatorObjective`),
so each DDP backward follows exactly one DDP forward. Inside that forward, WGAN-GP's
``autograd.grad`` w.r.t. the interpolates runs on the plain underlying D: it asks for input
gradients only, so no parameter's gradient-accumulation hook (where DDP all-reduces) fires
there; the penalty's graph (``create_graph=True``) then reaches D's parameters in the single
``backward()``, where each parameter's gradient is accumulated once and all-reduced once.
Averaging per-rank means over equal shards gives the full-batch mean, so one DDP step equals a
step on the whole batch (tested). BEGAN's ``k`` is updated from the all-reduced means of L(x)
and L(G(z)), so every rank keeps the same k. EBGAN's pulling-away term is computed over each
rank's shard, as any data-parallel EBGAN does.
"""

from __future__ import annotations

import dataclasses
import math
import os
import random
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

import fastgan
from fastgan import functional as FG
from fastgan import losses as fl
from fastgan.train import data as data_mod
from fastgan.train.models import build_models

__all__ = [
    "Config",
    "Trainer",
    "DiscriminatorObjective",
    "make_trainer",
    "default_config",
    "min_batch",
    "read_checkpoint",
    "check_checkpoint",
    "CheckpointError",
    "CHECKPOINT_FORMAT",
    "EVAL_EVERY",
]

CHECKPOINT_FORMAT = "fastgan.train/1"

#: what a checkpoint holds (:meth:`Trainer.state_dict`), with the type of each entry
CHECKPOINT_KEYS: dict[str, type | tuple[type, ...]] = {
    "format": str,
    "config": dict,
    "rank": int,
    "world_size": int,
    "step": int,
    "elapsed": (int, float),
    "G": dict,
    "D": dict,
    "loss": dict,
    "opt_g": dict,
    "opt_d": dict,
    "sched_g": dict,
    "sched_d": dict,
    "rng": dict,
    "history": dict,
}
#: entries a checkpoint may hold (checkpoints written before them lack them), with their type
OPTIONAL_CHECKPOINT_KEYS: dict[str, type | tuple[type, ...]] = {
    "curve": list,  # the quality curve (Trainer.curve); absent: the run had none yet
}
_RNG_KEYS = ("torch", "data", "noise", "numpy", "python")

#: The default schedule of the quality curve: evaluate every N generator steps (``--eval-every``;
#: 0 turns it off). 2-D data: every 100 steps (10–40 points per default run; an evaluation takes
#: milliseconds); digits: every 250 (a conv net's samples through the digit classifier, ~0.1 s).
EVAL_EVERY: dict[str, int] = {"ring8": 100, "grid25": 100, "swissroll": 100, "digits": 250}


class CheckpointError(ValueError):
    """A file that cannot be resumed from: unreadable, not a checkpoint of ``fastgan train``,
    incomplete, or of another configuration. Nothing was loaded, and the file is untouched."""

#: Each family's published optimiser settings (the issue's defaults). ``lr`` is for both nets.
FAMILY_DEFAULTS: dict[str, dict[str, Any]] = {
    "gan": {"optimizer": "adam", "lr": 2e-4, "betas": (0.5, 0.999)},  # DCGAN
    "cgan": {"optimizer": "adam", "lr": 2e-4, "betas": (0.5, 0.999)},
    "wgan": {"optimizer": "rmsprop", "lr": 5e-5, "betas": (0.5, 0.999)},  # clip 0.01, 5 critic steps
    "wgan-gp": {"optimizer": "adam", "lr": 1e-4, "betas": (0.5, 0.9)},  # λ = 10, 5 critic steps
    "ebgan": {"optimizer": "adam", "lr": 2e-4, "betas": (0.5, 0.999)},  # λ_PT = 0.1
    "began": {"optimizer": "adam", "lr": 1e-4, "betas": (0.5, 0.999)},  # γ = 0.5, λ_k = 0.001
    "lsgan": {"optimizer": "adam", "lr": 2e-4, "betas": (0.5, 0.999)},  # a = 0, b = c = 1
    "hinge": {"optimizer": "adam", "lr": 2e-4, "betas": (0.5, 0.999)},
}

#: EBGAN's margin, on the scale of each dataset's energies (per-sample MSE of the autoencoder)
EBGAN_MARGIN = {"ring8": 1.0, "grid25": 2.0, "swissroll": 1.0, "digits": 0.3}

#: Per-dataset network and run defaults
DATA_DEFAULTS: dict[str, dict[str, Any]] = {
    "ring8": {"z_dim": 2, "width": 128, "depth": 3, "batch_size": 256, "steps": 1000},
    "grid25": {"z_dim": 2, "width": 128, "depth": 3, "batch_size": 256, "steps": 2000},
    "swissroll": {"z_dim": 2, "width": 128, "depth": 3, "batch_size": 256, "steps": 1000},
    "digits": {"z_dim": 32, "width": 32, "depth": 0, "batch_size": 64, "steps": 1000},
}


#: WGAN-GP on 2-D data: λ = 0.1, the WGAN-GP authors' own value for their toy data (λ = 10 is their
#: image value), and Adam 2e-3 (decayed linearly to 0, as every learning rate on 2-D data); the
#: ring8 and grid25 run the penalty on every 4th critic step with weight × 4 (lazy regularisation,
#: StyleGAN2 §3.1, :data:`_WGAN_GP_TOY_LAZY`): the same or better quality per generator step at
#: a lower cost per step (the Swiss roll, not re-measured, keeps the penalty on every step).
_WGAN_GP_TOY: dict[str, Any] = {"gp_weight": 0.1, "lr_d": 2e-3, "lr_g": 2e-3}
_WGAN_GP_TOY_LAZY: dict[str, Any] = {**_WGAN_GP_TOY, "gp_interval": 4}

#: GAN, hinge and EBGAN on ring8: Adam 2e-3 with β₂ = 0.9 (the published β₂ = 0.999 adapts too
#: slowly to the fast-moving toy gradients) and 2000 steps (docs/train-recipes.md).
_RING8_ADAM: dict[str, Any] = {"lr_d": 2e-3, "lr_g": 2e-3, "betas": (0.5, 0.9), "steps": 2000}

#: GAN, hinge and LSGAN on grid25: Adam 1e-3, β = (0, 0.9), 6000 steps (docs/train-recipes.md).
_GRID25_ADAM: dict[str, Any] = {"lr_d": 1e-3, "lr_g": 1e-3, "betas": (0.0, 0.9), "steps": 6000}

#: Deviations from the published values, for the quality targets on a 2-core CPU (the README's
#: table, docs/train.md and docs/train-recipes.md say so; every number below is seed 0, 2500
#: samples, "before → after"). Entries are Config fields or loss hyper-parameters.
#:
#: * GAN ring8 (1000 → 2000 steps, :data:`_RING8_ADAM`): 2/8 modes, 0.8 % high quality → 8/8,
#:   85.4 % (seeds 1, 2: 92.5, 92.7 %).
#: * hinge ring8 (:data:`_RING8_ADAM`): 3/8, 0.7 % → 8/8, 88.6 % (seeds 1, 2: 89.6, 88.3 %).
#: * EBGAN ring8 (:data:`_RING8_ADAM`): 7/8, 4.7 % → 8/8, 84.5 % (seeds 1, 2: 5/8 86.7 %, 7/8
#:   74.3 %: not robust).
#: * LSGAN ring8 (Adam 1e-3, β = (0, 0.9), 3000 steps): 7/8, 3.0 % → 8/8, 93.2 % (seeds 1, 2:
#:   8/8 93.1, 91.8 %); Adam 2e-3 with the published β and 2000 steps gave 87.7 % but 77.8 % on
#:   seed 2.
#: * GAN / hinge / LSGAN grid25 (2000 → 6000 steps, :data:`_GRID25_ADAM`): GAN 6/25, 1.4 % →
#:   25/25, 82.8 % (seeds 1, 2: 25/25 93.0, 90.7 %); hinge 25/25, 90.2 % (93.2, 86.6 %); LSGAN
#:   21/25, 3.6 % → 25/25, 91.6 % (25/25 89.5 %, 24/25 84.1 %). At Adam 2e-3 and 4000 steps GAN
#:   reached 82.6 % but hinge 72.6 % and LSGAN 22/25.
#: * WGAN with clipping keeps the published values (RMSprop 5e-5, clip 0.01; ring8 5/8, 0.4 %): the
#:   best tried, ``clip_value=0.05, lr=1e-3, steps=2000``, gave 8/8 but 41.9 % (RMSprop 5e-4,
#:   2000 steps: 7/8, 10 %): the WGAN-GP paper's §3, a clipped critic is too simple for the
#:   modes' detail.
#: * CGAN at Adam 2e-4 puts 60 % of its samples within 3σ of the requested ring8 mode after 2000
#:   steps; at 1e-3, 99 %.
#: * WGAN-GP with the published λ = 10 and Adam 1e-4 was still a diffuse cloud after 2000 grid25
#:   steps (11/25 modes, 1 % of the samples high quality); with λ = 0.1, Adam 2e-3 and 4000
#:   steps, 25/25 and ~90 % (seeds 0–3); with the penalty every 4th step (× 4) as well and 6000
#:   steps, 25/25 and 95.8 % (88.8 % at step 3500, 93.5 % at 4500; 4000 steps: 91.3 % in 53 s
#:   idle, 74–98 s before). On ring8 (1000 steps) 2/8 modes and 0.1 % became
#:   8/8 and 80 % (83.1 % with the lazy penalty); on the Swiss roll 15 % became 84 % of the
#:   samples within 3σ of the curve.
#: * GAN, CGAN and LSGAN on digits: Adam 1e-3 and 2000 steps. At 2e-4, GAN collapsed to one digit
#:   and CGAN to one pattern that ignored its label (0 % in the requested class after 1000 steps);
#:   at 1e-3 all 10 classes, and CGAN put 91 % of its samples in the requested class.
#: * BEGAN keeps its published values: no setting tried covers more than 1 mode of ring8
#:   (docs/train-recipes.md, "BEGAN").
TUNED: dict[tuple[str, str], dict[str, Any]] = {
    ("gan", "ring8"): _RING8_ADAM,
    ("hinge", "ring8"): _RING8_ADAM,
    ("ebgan", "ring8"): _RING8_ADAM,
    ("lsgan", "ring8"): {"lr_d": 1e-3, "lr_g": 1e-3, "betas": (0.0, 0.9), "steps": 3000},
    **{(loss, "grid25"): _GRID25_ADAM for loss in ("gan", "hinge", "lsgan")},
    ("cgan", "ring8"): {"lr_d": 1e-3, "lr_g": 1e-3, "steps": 2000},
    ("cgan", "grid25"): {"lr_d": 1e-3, "lr_g": 1e-3},
    ("wgan-gp", "ring8"): _WGAN_GP_TOY_LAZY,
    ("wgan-gp", "grid25"): {**_WGAN_GP_TOY_LAZY, "steps": 6000},
    ("wgan-gp", "swissroll"): _WGAN_GP_TOY,
    **{(loss, "digits"): {"lr_d": 1e-3, "lr_g": 1e-3, "steps": 2000} for loss in ("gan", "cgan", "lsgan")},
}


@dataclasses.dataclass
class Config:
    """Everything that defines a run. ``lr_d``/``lr_g`` and ``betas`` default to the family's
    published values (:data:`FAMILY_DEFAULTS`); ``loss_hparams`` go to
    :func:`fastgan.losses.create`. ``width`` is the MLP width (2-D data) or the base channel
    count (digits); ``depth`` the number of hidden layers of each MLP. ``lr_decay="linear"``
    decays both learning rates linearly to 0 over ``steps`` generator steps. ``eval_every``:
    the quality curve's schedule in generator steps (0: no curve; :data:`EVAL_EVERY`).
    ``spectral_norm``: spectral normalisation of every layer of D (SNGAN). ``ae_code``: the
    embedding size of the 2-D autoencoder D of ebgan/began (docs/train-recipes.md)."""

    loss: str
    data: str
    steps: int = 2000
    batch_size: int = 256
    z_dim: int = 8
    width: int = 128
    depth: int = 3
    optimizer: str = "adam"
    lr_d: float = 1e-4
    lr_g: float = 1e-4
    betas: tuple[float, float] = (0.5, 0.9)
    n_critic: int = 1
    loss_hparams: dict[str, Any] = dataclasses.field(default_factory=dict)
    lr_decay: str = "none"
    seed: int = 0
    backend: str = "auto"
    device: str = "cpu"
    log_every: int = 50
    ckpt_every: int = 1000
    eval_samples: int = 2500
    eval_every: int = 100
    spectral_norm: bool = False
    ae_code: int = 16

    #: fields that may differ between a checkpoint and the run that resumes it
    RESUMABLE_CHANGES = ("steps", "backend", "log_every", "ckpt_every", "eval_samples", "eval_every", "device")

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["betas"] = list(self.betas)
        return d

    @property
    def conditional(self) -> bool:
        return self.loss == "cgan"


def default_config(loss: str, data: str, **overrides: Any) -> Config:
    """The defaults of ``fastgan train --loss LOSS --data DATA`` with ``overrides`` applied:
    the family's published optimiser (:data:`FAMILY_DEFAULTS`), the dataset's networks and
    steps (:data:`DATA_DEFAULTS`), learning rates decayed linearly to 0 on the 2-D data, and the
    deviations of :data:`TUNED`.

    An override is a :class:`Config` field (``lr`` sets both ``lr_d`` and ``lr_g``) or a
    hyper-parameter of the loss (e.g. ``gp_weight=5.0``, ``clip_value=0.02``)."""
    if loss not in fl.available():
        raise ValueError(f"unknown loss {loss!r}; expected one of {', '.join(fl.available())}")
    if data not in data_mod.DATASETS:
        raise ValueError(f"unknown data {data!r}; expected one of {', '.join(data_mod.DATASETS)}")
    fam = FAMILY_DEFAULTS[loss]
    kw: dict[str, Any] = dict(DATA_DEFAULTS[data])
    kw["eval_every"] = EVAL_EVERY[data]
    kw.update(optimizer=fam["optimizer"], lr_d=fam["lr"], lr_g=fam["lr"], betas=tuple(fam["betas"]))
    kw["n_critic"] = fl.create(loss).n_critic
    if data != "digits":
        kw["lr_decay"] = "linear"
    hp: dict[str, Any] = {}
    if loss == "ebgan":
        hp["margin"] = EBGAN_MARGIN[data]
    loss_params = set(fl.create(loss).hparams())
    for key, val in TUNED.get((loss, data), {}).items():
        (hp if key in loss_params else kw)[key] = val
    fields = {f.name for f in dataclasses.fields(Config)}
    for key, val in overrides.items():
        if val is None:
            continue
        if key == "lr":
            kw["lr_d"] = kw["lr_g"] = float(val)
        elif key == "loss_hparams":
            hp.update(val)
        elif key in loss_params:
            hp[key] = val
        elif key in fields and key not in ("loss", "data"):
            kw[key] = tuple(val) if key == "betas" else val
        else:
            raise TypeError(
                f"unknown training option {key!r}; expected a Config field ({', '.join(sorted(fields - {'loss', 'data'}))}), "
                f"'lr', or a hyper-parameter of the {loss} loss ({', '.join(sorted(loss_params)) or 'none'})"
            )
    cfg = Config(loss=loss, data=data, loss_hparams=hp, **kw)
    _check_config(cfg)
    return cfg


def min_batch(cfg: Config) -> int:
    """The smallest batch each process may draw for ``cfg``'s loss: 2 for EBGAN with its
    pulling-away term (cosines between the samples of a batch), 1 for every other family."""
    if cfg.loss == "ebgan" and float(cfg.loss_hparams.get("pt_weight", fl.create("ebgan").pt_weight)) > 0:
        return 2
    return 1


def _check_config(cfg: Config) -> None:
    for name in ("steps", "batch_size", "z_dim", "width", "n_critic", "log_every", "ckpt_every", "eval_samples", "ae_code"):
        val = getattr(cfg, name)
        if not isinstance(val, int) or isinstance(val, bool) or val < 1:
            raise ValueError(f"{name} must be a positive int, got {val!r}")
    for name in ("depth", "eval_every"):
        val = getattr(cfg, name)
        if not isinstance(val, int) or isinstance(val, bool) or val < 0:
            raise ValueError(f"{name} must be an int >= 0, got {val!r}")
    for name in ("lr_d", "lr_g"):
        val = getattr(cfg, name)
        if not (isinstance(val, (int, float)) and val > 0 and math.isfinite(val)):
            raise ValueError(f"{name} must be a positive number, got {val!r}")
    if not isinstance(cfg.spectral_norm, bool):
        raise ValueError(f"spectral_norm must be True or False, got {cfg.spectral_norm!r}")
    if cfg.optimizer not in ("adam", "rmsprop"):
        raise ValueError(f"optimizer must be 'adam' or 'rmsprop', got {cfg.optimizer!r}")
    if cfg.lr_decay not in ("none", "linear"):
        raise ValueError(f"lr_decay must be 'none' or 'linear', got {cfg.lr_decay!r}")
    if len(cfg.betas) != 2 or not all(0 <= b < 1 for b in cfg.betas):
        raise ValueError(f"betas must be two numbers in [0, 1), got {cfg.betas!r}")
    fl.create(cfg.loss, **cfg.loss_hparams)  # validates the hyper-parameters


class DiscriminatorObjective(nn.Module):
    """``forward(real, fake, labels) -> (loss, logs)``: the whole discriminator objective of
    ``loss_fn`` for the network ``D`` in one module, so that under DDP every discriminator
    backward follows exactly one DDP forward (see the module docstring). ``loss_fn`` is held
    outside the module's children: DDP neither broadcasts its buffers (BEGAN's k) nor treats
    them as its state."""

    def __init__(self, D: nn.Module, loss_fn: fl.GANLossBase) -> None:
        super().__init__()
        self.D = D
        object.__setattr__(self, "loss_fn", loss_fn)

    def forward(self, real, fake, labels=None):
        return self.loss_fn.discriminator_loss(self.D, real, fake, labels)


class Trainer:
    """A GAN of one family on one dataset, trained through a :mod:`fastgan.losses` object.

    Attributes: ``config``, ``G``, ``D`` (the plain modules), ``loss`` (the loss object),
    ``opt_g``, ``opt_d``, ``data`` (the dataset), ``step`` (generator steps done), ``history``
    (logged losses), ``curve`` (the quality curve: :meth:`record_quality`), ``elapsed``
    (training seconds, evaluation excluded, summed over resumed runs), ``backend`` (the
    selection every step runs under), ``n_critic``.

    Building a trainer seeds torch's global RNG (used by WGAN-GP's interpolation coefficients),
    numpy's and Python's; all of them are saved in checkpoints.
    """

    def __init__(self, config: Config, *, distributed: bool = False) -> None:
        _check_config(config)
        self.config = config
        with fastgan.use_backend(config.backend):  # validates the name; restores the selection
            pass
        self.backend = config.backend
        self.device = torch.device(config.device)
        self.distributed = bool(distributed)
        if self.distributed:
            import torch.distributed as dist

            if not dist.is_initialized():
                raise RuntimeError("distributed=True needs torch.distributed initialised (run under torchrun)")
            self.rank, self.world_size = dist.get_rank(), dist.get_world_size()
        else:
            self.rank, self.world_size = 0, 1
        if config.batch_size % self.world_size:
            raise ValueError(
                f"batch_size {config.batch_size} is not divisible by the {self.world_size} processes"
            )
        self.local_batch = config.batch_size // self.world_size
        self.data = data_mod.create(config.data)
        if config.conditional and self.data.n_classes == 0:
            raise ValueError(f"the cgan loss needs labelled data; {config.data} has none")
        self.conditional = config.conditional
        self.n_critic = config.n_critic

        seed = config.seed
        torch.manual_seed(seed)  # the same initial weights on every rank
        self.G, self.D = build_models(
            self.data, config.loss, z_dim=config.z_dim, width=config.width, depth=config.depth, conditional=self.conditional,
            spectral_norm=config.spectral_norm, ae_code=config.ae_code,
        )
        self.G.to(self.device)
        self.D.to(self.device)
        self.loss = fl.create(config.loss, **config.loss_hparams).to(self.device)
        self.opt_g = self._optimizer(self.G, config.lr_g)
        self.opt_d = self._optimizer(self.D, config.lr_d)
        if config.lr_decay == "linear":
            total = config.steps
            lam = lambda s: max(0.0, 1.0 - s / total)  # noqa: E731
        else:
            lam = lambda s: 1.0  # noqa: E731
        self.sched_g = torch.optim.lr_scheduler.LambdaLR(self.opt_g, lam)
        self.sched_d = torch.optim.lr_scheduler.LambdaLR(self.opt_d, lam)

        stream = (seed * 1000 + self.rank) * 4
        self.data_gen = torch.Generator(self.device).manual_seed(stream)
        self.noise_gen = torch.Generator(self.device).manual_seed(stream + 1)
        torch.manual_seed(stream + 2)
        np.random.seed((stream + 2) % 2**32)
        random.seed(stream + 2)

        self._d_objective: nn.Module = DiscriminatorObjective(self.D, self.loss)
        self._g_forward: nn.Module = self.G
        if self.distributed:
            from torch.nn.parallel import DistributedDataParallel as DDP

            self._d_objective = DDP(self._d_objective)
            self._g_forward = DDP(self.G)

        self.step = 0
        self.history: dict[str, list[float]] = {"step": []}
        self.elapsed = 0.0  # training seconds, summed over resumed runs
        self.curve: list[dict[str, Any]] = []  # the quality curve (record_quality)
        self._last_eval: tuple[int, dict[str, Any]] | None = None  # (step, evaluate()) of the last point

    # ------------------------------------------------------------------------------ building
    def _optimizer(self, net: nn.Module, lr: float) -> torch.optim.Optimizer:
        if self.config.optimizer == "rmsprop":
            return torch.optim.RMSprop(net.parameters(), lr=lr)
        return torch.optim.Adam(net.parameters(), lr=lr, betas=tuple(self.config.betas))

    def _noise(self, n: int) -> torch.Tensor:
        return torch.randn(n, self.config.z_dim, generator=self.noise_gen, device=self.device)

    # --------------------------------------------------------------------------------- steps
    def discriminator_backward(
        self, real: torch.Tensor, fake: torch.Tensor, labels: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """Zero D's gradients, compute the discriminator objective on this rank's ``real`` and
        ``fake`` batch and back-propagate it (all-reduced under DDP); no optimiser step.
        Returns the loss object's logs (0-dim tensors)."""
        with fastgan.use_backend(self.backend):
            self.opt_d.zero_grad(set_to_none=True)
            loss, logs = self._d_objective(real, fake, labels)
            loss.backward()
            if self.distributed and isinstance(self.loss, fl.BEGANLoss) and self.loss.training:
                self._sync_began_k(logs)
        return logs

    def _sync_began_k(self, logs: dict[str, torch.Tensor]) -> None:
        """k from the means of L over every rank's batch (the full batch), not this shard's."""
        import torch.distributed as dist

        means = torch.stack([logs["loss_real"], logs["loss_fake"]]).to(torch.float32)
        dist.all_reduce(means)
        means = means / self.world_size
        k_next, convergence = FG.began_update(logs["k"], means[:1], means[1:], self.loss.gamma, self.loss.lambda_k)
        self.loss.k.copy_(k_next)
        logs["convergence"] = convergence

    def discriminator_step(self) -> dict[str, torch.Tensor]:
        """One discriminator/critic update: a real batch, a fake batch from G (no gradient to
        G), the loss, backward, the optimiser step, then ``loss.after_discriminator_step`` (WGAN
        clipping). BEGAN's k is updated inside the loss. Returns 0-dim tensor logs; no host
        sync."""
        with fastgan.use_backend(self.backend):
            real, labels = self.data.sample(self.local_batch, self.data_gen)
            if not self.conditional:
                labels = None
            z = self._noise(self.local_batch)
            with torch.no_grad():
                fake = self.G(z) if labels is None else self.G(z, labels)
            logs = self.discriminator_backward(real, fake, labels)
            self.opt_d.step()
            self.loss.after_discriminator_step(self.D)
        return logs

    def generator_step(self) -> dict[str, torch.Tensor]:
        """One generator update (D's parameters frozen meanwhile), then one step of both
        learning-rate schedules. Returns 0-dim tensor logs; no host sync."""
        with fastgan.use_backend(self.backend):
            z = self._noise(self.local_batch)
            labels = self.data.sample_labels(self.local_batch, self.noise_gen) if self.conditional else None
            self.D.requires_grad_(False)
            try:
                fake = self._g_forward(z) if labels is None else self._g_forward(z, labels)
                g_loss, logs = self.loss.generator_loss(self.D, fake, labels)
                self.opt_g.zero_grad(set_to_none=True)
                g_loss.backward()
                self.opt_g.step()
            finally:
                self.D.requires_grad_(True)
            self.sched_g.step()
            self.sched_d.step()
        self.step += 1
        return logs

    def train_step(self) -> dict[str, torch.Tensor]:
        """``n_critic`` discriminator steps, then one generator step; the merged logs."""
        return fl.alternate(self.n_critic, self.discriminator_step, self.generator_step)

    # ----------------------------------------------------------------------------------- fit
    def record(self, logs: dict[str, torch.Tensor]) -> dict[str, float]:
        """Copy ``logs`` to the host (one sync) and append them to :attr:`history`."""
        keys = list(logs)
        values = torch.stack([logs[k].detach().to(torch.float32).reshape(()) for k in keys]).tolist() if keys else []
        row = dict(zip(keys, values))
        self.history["step"].append(self.step)
        for k, val in row.items():
            self.history.setdefault(k, [math.nan] * (len(self.history["step"]) - 1)).append(val)
        return row

    def fit(self, out_dir: str | None = None, progress: bool = True, stop_at: int | None = None,
            stop: Callable[[], bool] | None = None, on_step: Callable[[float], None] | None = None) -> None:
        """Train until :attr:`step` reaches ``config.steps`` (or ``stop_at``, to interrupt a run
        on purpose, or until ``stop()`` — asked after every whole step — is true): a progress bar
        with the live losses (where tqdm is installed), the logs recorded every ``log_every``
        steps, a point of the quality curve every ``eval_every`` steps and at ``config.steps``
        (:meth:`record_quality`, on rank 0; off the clock), a checkpoint every ``ckpt_every``
        steps and where training stops (into ``out_dir``; each rank writes its own file under
        DDP). :attr:`elapsed` grows by the training time only. ``on_step`` is called after every
        step with its duration in seconds (``fastgan train --threads auto`` chooses the thread
        count with it: :class:`fastgan.train.threads.ThreadChooser`)."""
        cfg = self.config
        end = cfg.steps if stop_at is None else min(cfg.steps, stop_at)
        bar = None
        if progress and self.rank == 0:
            try:
                from tqdm import tqdm
            except ImportError:
                import warnings

                warnings.warn("tqdm is not installed: training without a progress bar "
                              '(pip install "fastgan[train]")', fastgan.FastganWarning, stacklevel=2)
            else:
                bar = tqdm(total=cfg.steps, initial=self.step, desc=f"{cfg.loss} {cfg.data}", unit="step",
                           dynamic_ncols=True)
        start: float | None = time.perf_counter()
        try:
            while self.step < end:
                t_step = time.perf_counter()
                logs = self.train_step()
                if on_step is not None:
                    on_step(time.perf_counter() - t_step)
                if bar is not None:
                    bar.update(1)
                if self.step % cfg.log_every == 0 or self.step == cfg.steps:
                    row = self.record(logs)
                    if bar is not None:
                        bar.set_postfix({k: f"{val:.3g}" for k, val in row.items()}, refresh=False)
                if self.quality_due():
                    self.elapsed += time.perf_counter() - start
                    start = None  # the evaluation is off the clock
                    point = self.record_quality()
                    start = time.perf_counter()
                    if bar is not None:
                        bar.set_description(f"{cfg.loss} {cfg.data} [{_short_quality(point)}]", refresh=False)
                stopping = stop is not None and self.step < end and stop()
                if stopping:
                    end = self.step
                if out_dir is not None and (self.step % cfg.ckpt_every == 0 or self.step == end):
                    self.elapsed += time.perf_counter() - start
                    start = time.perf_counter()
                    self.save(checkpoint_path(out_dir, self.rank, self.world_size))
        finally:
            if start is not None:
                self.elapsed += time.perf_counter() - start
            if bar is not None:
                bar.close()

    def quality_due(self) -> bool:
        """Whether the quality curve takes a point at this step: every ``eval_every`` steps and
        at ``config.steps`` (never with ``eval_every=0``, nor off rank 0, nor twice a step)."""
        every = self.config.eval_every
        if every <= 0 or self.rank != 0 or self.step == 0:
            return False
        if self.curve and self.curve[-1]["step"] >= self.step:
            return False
        return self.step % every == 0 or self.step == self.config.steps

    def record_quality(self) -> dict[str, Any]:
        """Evaluate now (:meth:`evaluate`) and append a point to :attr:`curve`: ``step``,
        ``train_seconds`` (:attr:`elapsed`, the training clock so far), ``eval_seconds`` (what
        this evaluation took, not on the clock) and the dataset's quality measures
        (:func:`fastgan.train.metrics.curve_measures`). The global RNG states (torch, numpy,
        Python) are restored afterwards, so the training streams never see the evaluation.
        Returns the point."""
        from fastgan.train import metrics as M

        t0 = time.perf_counter()
        with _global_rng_kept(self.device):
            result = self.evaluate()
        point = {
            "step": self.step,
            "train_seconds": float(self.elapsed),
            "eval_seconds": time.perf_counter() - t0,
            **M.curve_measures(result["metrics"]),
        }
        self.curve.append(point)
        self._last_eval = (self.step, result)
        return point

    def final_evaluation(self) -> dict[str, Any]:
        """:meth:`evaluate` at the current step: the curve's evaluation of this step where
        :meth:`record_quality` just made one (the same samples: :meth:`generate` is seeded),
        else a new one."""
        if self._last_eval is not None and self._last_eval[0] == self.step:
            return self._last_eval[1]
        return self.evaluate()

    # ------------------------------------------------------------------------------ evaluate
    @torch.no_grad()
    def generate(self, n: int, seed: int | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``n`` samples of G (and the requested labels for CGAN) from a generator of their
        own, so evaluating never changes the training streams."""
        g = torch.Generator(self.device).manual_seed(self.config.seed * 1000 + 999 if seed is None else seed)
        z = torch.randn(n, self.config.z_dim, generator=g, device=self.device)
        labels = self.data.sample_labels(n, g) if self.conditional else None
        with fastgan.use_backend(self.backend):
            x = self.G(z) if labels is None else self.G(z, labels)
        return x, labels

    def evaluate(self, n: int | None = None) -> dict[str, Any]:
        """The metrics of :mod:`fastgan.train.metrics` on ``n`` (default ``eval_samples``)
        generated samples, plus ``samples`` / ``labels`` as numpy arrays."""
        from fastgan.train import metrics as M

        n = self.config.eval_samples if n is None else n
        x, labels = self.generate(n)
        xs = x.cpu().numpy()
        ys = None if labels is None else labels.cpu().numpy()
        d = self.data
        if d.image:
            m = M.digit_metrics(xs, ys)
        elif d.centers is not None:
            m = M.conditional_metrics(xs, ys, d.centers.numpy(), d.sigma) if ys is not None else M.mode_metrics(xs, d.centers.numpy(), d.sigma)
        else:
            lo, hi = data_mod.SwissRoll.t_range
            curve = data_mod.SwissRoll.curve(torch.linspace(lo, hi, 20000)).numpy()
            m = M.curve_metrics(xs, curve, d.sigma)
        m["finite"] = bool(np.isfinite(xs).all())
        return {"metrics": m, "samples": xs, "labels": ys}

    # --------------------------------------------------------------------------- checkpoints
    def state_dict(self) -> dict[str, Any]:
        """Everything a bit-identical resume needs (loadable with ``weights_only=True``)."""
        np_state = np.random.get_state()
        rng = {
            "torch": torch.get_rng_state(),
            "data": self.data_gen.get_state(),
            "noise": self.noise_gen.get_state(),
            "numpy": {
                "keys": torch.from_numpy(np_state[1].astype(np.int64)),
                "pos": int(np_state[2]),
                "has_gauss": int(np_state[3]),
                "cached_gaussian": float(np_state[4]),
            },
            "python": [random.getstate()[0], list(random.getstate()[1])],
        }
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        return {
            "format": CHECKPOINT_FORMAT,
            "config": self.config.to_dict(),
            "rank": self.rank,
            "world_size": self.world_size,
            "step": self.step,
            "elapsed": self.elapsed,
            "G": self.G.state_dict(),
            "D": self.D.state_dict(),
            "loss": self.loss.state_dict(),
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "sched_g": self.sched_g.state_dict(),
            "sched_d": self.sched_d.state_dict(),
            "rng": rng,
            "history": self.history,
            "curve": [dict(p) for p in self.curve],
        }

    def check_compatible(self, state: dict[str, Any]) -> None:
        """Raise :class:`CheckpointError` (a ``ValueError``) unless ``state`` is a complete
        checkpoint of this configuration (fields in ``Config.RESUMABLE_CHANGES`` may differ,
        except ``steps`` under ``lr_decay``): :func:`check_checkpoint`."""
        check_checkpoint(state, self.config, self.rank, self.world_size)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict` after :meth:`check_compatible` (nothing changes when
        that check fails)."""
        self.check_compatible(state)
        self.G.load_state_dict(state["G"])
        self.D.load_state_dict(state["D"])
        self.loss.load_state_dict(state["loss"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        self.sched_g.load_state_dict(state["sched_g"])
        self.sched_d.load_state_dict(state["sched_d"])
        rng = state["rng"]
        torch.set_rng_state(rng["torch"])
        self.data_gen.set_state(rng["data"])
        self.noise_gen.set_state(rng["noise"])
        npr = rng["numpy"]
        np.random.set_state(
            ("MT19937", npr["keys"].numpy().astype(np.uint32), npr["pos"], npr["has_gauss"], npr["cached_gaussian"])
        )
        random.setstate((rng["python"][0], tuple(rng["python"][1]), None))
        if "cuda" in rng and self.device.type == "cuda":
            torch.cuda.set_rng_state(rng["cuda"], self.device)
        self.step = int(state["step"])
        self.elapsed = float(state["elapsed"])
        self.history = {k: list(val) for k, val in state["history"].items()}
        self.curve = [dict(p) for p in state.get("curve", [])]
        self._last_eval = None

    def save(self, path: str) -> None:
        """Write :meth:`state_dict` to ``path`` atomically."""
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        tmp = path + ".tmp"
        torch.save(self.state_dict(), tmp)
        os.replace(tmp, path)

    def load(self, path: str) -> None:
        """Resume from the checkpoint at ``path`` (:func:`read_checkpoint`:
        ``torch.load(weights_only=True)``; :class:`CheckpointError` for a file that is not one)."""
        self.load_state_dict(read_checkpoint(path, map_location=self.device))


def read_checkpoint(path: str, map_location: Any = "cpu") -> dict[str, Any]:
    """The checkpoint at ``path``, loaded with ``torch.load(weights_only=True)`` (never a
    pickle of arbitrary objects) and checked to hold every entry of :data:`CHECKPOINT_KEYS`.

    :class:`CheckpointError` with one line saying why, for: a missing file or a folder, an empty,
    truncated or garbage file, one that holds Python objects ``weights_only=True`` refuses (the
    class it names), a torch file of something else (e.g. a model's ``state_dict``) and a
    checkpoint with entries missing. The file is only read."""
    import pickle
    import re
    import warnings

    if not os.path.exists(path):
        raise CheckpointError(f"no checkpoint {path}")
    if os.path.isdir(path):
        raise CheckpointError(f"{path} is a folder, not a checkpoint file")
    if os.path.getsize(path) == 0:
        raise CheckpointError(f"{path} is empty (0 bytes): not a checkpoint")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's warnings about the pickle protocol
            state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        unsafe = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(exc))
        if unsafe:
            raise CheckpointError(
                f"{path} holds a Python object ({unsafe.group(1)}) that torch.load(weights_only=True) refuses "
                "to load: not a fastgan train checkpoint (fastgan never loads such a file)"
            ) from None
        raise CheckpointError(f"{path} is not a checkpoint: torch.load(weights_only=True) cannot read it "
                              "(a file of another kind, or corrupted)") from None
    except Exception as exc:  # truncated zip, garbage bytes, I/O errors
        why = " ".join(str(exc).split()).split(". ")[0] or type(exc).__name__
        raise CheckpointError(f"{path} cannot be read as a torch file, it is truncated or corrupted "
                              f"({type(exc).__name__}: {why[:120]})") from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        what = f"a {type(state).__name__}" if not isinstance(state, dict) else (
            f"a dict of {', '.join(map(repr, list(state)[:4]))}{', ...' if len(state) > 4 else ''}"
            if "format" not in state else f"format {state.get('format')!r}")
        raise CheckpointError(f"{path} is not a fastgan train checkpoint ({what}; expected format "
                              f"{CHECKPOINT_FORMAT!r})")
    missing = [k for k in CHECKPOINT_KEYS if k not in state]
    if missing:
        raise CheckpointError(f"{path} is an incomplete fastgan train checkpoint: {', '.join(missing)} missing")
    wrong = [k for k, kind in CHECKPOINT_KEYS.items() if not isinstance(state[k], kind) or isinstance(state[k], bool)]
    wrong += [k for k, kind in OPTIONAL_CHECKPOINT_KEYS.items() if k in state and not isinstance(state[k], kind)]
    bad_points = "curve" in state and "curve" not in wrong and not all(
        isinstance(p, dict) and isinstance(p.get("step"), int) and not isinstance(p.get("step"), bool)
        and isinstance(p.get("train_seconds"), (int, float)) for p in state["curve"]
    )
    missing_rng = [k for k in _RNG_KEYS if k not in state["rng"]] if "rng" not in wrong else []
    if wrong or missing_rng or bad_points:
        detail = ", ".join([f"{k} is a {type(state[k]).__name__}" for k in wrong] + [f"rng.{k} missing" for k in missing_rng]
                           + (["curve holds points without a step and training seconds"] if bad_points else []))
        raise CheckpointError(f"{path} is a damaged fastgan train checkpoint ({detail})")
    return state


def check_checkpoint(state: dict[str, Any], config: Config, rank: int = 0, world_size: int = 1) -> None:
    """Raise :class:`CheckpointError` unless ``state`` is a complete checkpoint (see
    :func:`read_checkpoint`) of ``config`` for process ``rank`` of ``world_size`` (fields in
    ``Config.RESUMABLE_CHANGES`` may differ, except ``steps`` under ``lr_decay``)."""
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"not a fastgan train checkpoint (expected format {CHECKPOINT_FORMAT!r})")
    missing = [k for k in CHECKPOINT_KEYS if k not in state]
    if missing:
        raise CheckpointError(f"an incomplete fastgan train checkpoint: {', '.join(missing)} missing")
    mine = config.to_dict()
    # a field the checkpoint lacks was added after it was saved: that run had the field's default
    theirs = {**Config(loss=config.loss, data=config.data).to_dict(), **dict(state["config"])}
    free = set(Config.RESUMABLE_CHANGES)
    if config.lr_decay != "none":
        free.discard("steps")
    diff = sorted(k for k in set(mine) | set(theirs) if k not in free and mine.get(k) != theirs.get(k))
    if diff:
        detail = ", ".join(f"{k}: checkpoint {theirs.get(k)!r}, this run {mine.get(k)!r}" for k in diff)
        raise CheckpointError(f"the checkpoint is from another configuration ({detail}); refusing to resume")
    if (state["rank"], state["world_size"]) != (rank, world_size):
        raise CheckpointError(
            f"the checkpoint is of rank {state['rank']} of {state['world_size']} processes; "
            f"this is rank {rank} of {world_size}"
        )
    if state["step"] > config.steps:
        raise CheckpointError(f"the checkpoint is at step {state['step']}, beyond --steps {config.steps}")


class _global_rng_kept:
    """Restore torch's (and the device's), numpy's and Python's global RNG states on exit."""

    def __init__(self, device: torch.device) -> None:
        self.device = device

    def __enter__(self) -> None:
        self.torch = torch.get_rng_state()
        self.cuda = torch.cuda.get_rng_state(self.device) if self.device.type == "cuda" else None
        self.numpy = np.random.get_state()
        self.python = random.getstate()

    def __exit__(self, *exc: object) -> None:
        torch.set_rng_state(self.torch)
        if self.cuda is not None:
            torch.cuda.set_rng_state(self.cuda, self.device)
        np.random.set_state(self.numpy)
        random.setstate(self.python)


def _short_quality(point: dict[str, Any]) -> str:
    """A point of the curve in a few characters, for the progress bar."""
    parts = []
    if "modes" in point:
        parts.append(f"{point['modes']}/{point['n_modes']} modes")
    if "in_requested_mode" in point:
        parts.append(f"{100 * point['in_requested_mode']:.0f}% requested")
    else:
        parts.append(f"{100 * point['high_quality']:.0f}% HQ")
    return " ".join(parts)


def checkpoint_path(out_dir: str, rank: int = 0, world_size: int = 1) -> str:
    """``OUT/checkpoint.pt``, or ``OUT/checkpoint.rank{r}.pt`` for each rank under DDP."""
    name = "checkpoint.pt" if world_size == 1 else f"checkpoint.rank{rank}.pt"
    return os.path.join(out_dir, name)


def make_trainer(
    loss: str,
    data: str,
    *,
    backend: str | None = None,
    seed: int = 0,
    batch_size: int | None = None,
    distributed: bool = False,
    **overrides: Any,
) -> Trainer:
    """A :class:`Trainer` with ``fastgan train``'s defaults for ``loss`` (a
    :func:`fastgan.losses.available` name) on ``data`` (``"ring8"``, ``"grid25"``,
    ``"swissroll"`` or ``"digits"`` — the small conv net, with conv autoencoder
    discriminators for ebgan/began).

    ``backend``: the :func:`fastgan.use_backend` selection every step runs under (``None``: the
    current selection, normally ``"auto"``, i.e. the fused kernels; ``"reference"``: plain
    PyTorch). ``batch_size``: the global batch (``None``: the dataset's default).
    ``overrides``: :class:`Config` fields (``steps``, ``width``, ``lr``, ``lr_d``, ``n_critic``,
    ``device``, …) or the loss's hyper-parameters (``gp_weight``, ``clip_value``, ``margin``, …).
    The stable entry point of ``fastgan bench --e2e``: it calls
    :meth:`Trainer.discriminator_step` and :meth:`Trainer.generator_step`.
    """
    cfg = default_config(
        loss,
        data,
        backend=backend if backend is not None else fastgan.get_backend(),
        seed=seed,
        batch_size=batch_size,
        **overrides,
    )
    return Trainer(cfg, distributed=distributed)
