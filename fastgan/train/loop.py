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

import math
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
from fastgan.train.checkpoint import (  # noqa: F401  (re-exported: fastgan.train.loop's names)
    CHECKPOINT_FORMAT, CHECKPOINT_KEYS, OPTIONAL_CHECKPOINT_KEYS, CheckpointError, CheckpointMixin, check_checkpoint,
    checkpoint_path, read_checkpoint,
)
from fastgan.train.config import (  # noqa: F401  (re-exported: fastgan.train.loop's names)
    DATA_DEFAULTS, EBGAN_MARGIN, EVAL_EVERY, FAMILY_DEFAULTS, TUNED, Config, check_config, default_config, min_batch,
)
# loop's own name for global_rng_kept: tests patch fastgan.train.loop._global_rng_kept
from fastgan.train.evaluation import EvaluationMixin, short_quality
from fastgan.train.evaluation import global_rng_kept as _global_rng_kept
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

class Trainer(EvaluationMixin, CheckpointMixin):
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
        check_config(config)
        self.config = config
        with fastgan.use_backend(config.backend):  # validates the name; restores the selection
            pass
        self.backend = config.backend
        self.device = torch.device(config.device)
        self.distributed = bool(distributed)
        self.rank, self.world_size = self._process_group()
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
        self._build()
        self._seed_streams()
        self._wrap()
        self.step = 0
        self.history: dict[str, list[float]] = {"step": []}
        self.elapsed = 0.0  # training seconds, summed over resumed runs
        self.curve: list[dict[str, Any]] = []  # the quality curve (record_quality)
        self._last_eval: tuple[int, dict[str, Any]] | None = None  # (step, evaluate()) of the last point

    # ------------------------------------------------------------------------------ building
    def _process_group(self) -> tuple[int, int]:
        """(rank, world size): torch.distributed's under ``distributed=True``, else (0, 1)."""
        if not self.distributed:
            return 0, 1
        import torch.distributed as dist

        if not dist.is_initialized():
            raise RuntimeError("distributed=True needs torch.distributed initialised (run under torchrun)")
        return dist.get_rank(), dist.get_world_size()

    def _build(self) -> None:
        """The networks (the same initial weights on every rank), the loss, the optimisers and
        the learning-rate schedules."""
        config = self.config
        torch.manual_seed(config.seed)  # the same initial weights on every rank
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

    def _seed_streams(self) -> None:
        """This rank's data and noise generators, and the global RNGs (torch, numpy, Python)."""
        stream = (self.config.seed * 1000 + self.rank) * 4
        self.data_gen = torch.Generator(self.device).manual_seed(stream)
        self.noise_gen = torch.Generator(self.device).manual_seed(stream + 1)
        torch.manual_seed(stream + 2)
        np.random.seed((stream + 2) % 2**32)
        random.seed(stream + 2)

    def _wrap(self) -> None:
        """The modules a step calls: D with the loss as one objective, and G (both under DDP
        when distributed)."""
        self._d_objective: nn.Module = DiscriminatorObjective(self.D, self.loss)
        self._g_forward: nn.Module = self.G
        if self.distributed:
            from torch.nn.parallel import DistributedDataParallel as DDP

            self._d_objective = DDP(self._d_objective)
            self._g_forward = DDP(self.G)

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
        self.loss.update_k(k_next)  # this step's update: after_discriminator_step has none left
        logs["convergence"] = convergence

    def discriminator_step(self) -> dict[str, torch.Tensor]:
        """One discriminator/critic update: a real batch, a fake batch from G (no gradient to
        G), the loss, backward, the optimiser step, then ``loss.after_discriminator_step`` (WGAN
        clipping; BEGAN's k update). Returns 0-dim tensor logs; no host
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
                        bar.set_description(f"{cfg.loss} {cfg.data} [{short_quality(point)}]", refresh=False)
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
