"""``fastgan train``: train a GAN of any family on toy 2-D data or 8×8 digits.

Command line (also ``python -m fastgan.train``, and under ``torchrun`` with ``--distributed``)::

    fastgan train --loss wgan-gp --data grid25 --out runs/wgan-gp-grid25
    fastgan train --loss wgan-gp --data grid25 --out runs/wgan-gp-grid25 --steps 6000 --resume
    torchrun --nproc_per_node 2 -m fastgan.train --loss gan --data ring8 --distributed

Writes to ``--out``: ``samples.png`` (samples over the data), ``losses.png`` (and ``began.png``:
k_t and M_global), ``metrics.json``, ``samples.npy`` (2500 evaluation samples), ``labels.npy``
(CGAN's requested labels) and ``checkpoint.pt``.

Python API (stable; ``fastgan bench --e2e`` uses it):

* :func:`make_trainer(loss, data, *, backend=None, seed=0, batch_size=None, **overrides)
  <fastgan.train.loop.make_trainer>` → :class:`Trainer`
* :meth:`Trainer.discriminator_step` / :meth:`Trainer.generator_step` → dict of 0-dim tensors
* :meth:`Trainer.train_step`, :meth:`Trainer.fit`, :meth:`Trainer.evaluate`,
  :meth:`Trainer.save` / :meth:`Trainer.load`

The CLI hooks for :mod:`fastgan.cli` are :func:`add_arguments` and :func:`run`. matplotlib,
scikit-learn and tqdm are imported only when a run needs them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from fastgan.train.data import DATASETS
from fastgan.train.loop import Config, Trainer, default_config, make_trainer

__all__ = ["Config", "Trainer", "make_trainer", "default_config", "add_arguments", "run", "main"]

_LOSSES = ("gan", "cgan", "wgan", "wgan-gp", "ebgan", "began", "lsgan", "hinge")

#: flag -> (loss hyper-parameter, type)
_HPARAM_FLAGS = {
    "clip_value": float,
    "gp_weight": float,
    "margin": float,
    "pt_weight": float,
    "gamma": float,
    "lambda_k": float,
    "a": float,
    "b": float,
    "c": float,
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``fastgan train`` (the hook :mod:`fastgan.cli` calls)."""
    parser.add_argument("--loss", required=True, choices=_LOSSES, help="GAN family")
    parser.add_argument("--data", default="ring8", choices=DATASETS, help="training data (default ring8)")
    parser.add_argument("--steps", type=int, default=None, help="generator steps (default: per dataset)")
    parser.add_argument("--batch-size", type=int, default=None, help="global batch size (default: per dataset)")
    parser.add_argument("--backend", default=None, help="fastgan backend: auto (default, fused), reference, cpu, ...")
    parser.add_argument("--out", default=None, help="output folder (default runs/LOSS-DATA)")
    parser.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt (bit-identical)")
    parser.add_argument("--seed", type=int, default=0)
    g = parser.add_argument_group("optimisation (defaults: the family's published values)")
    g.add_argument("--lr", type=float, default=None, help="learning rate of both networks")
    g.add_argument("--lr-d", type=float, default=None)
    g.add_argument("--lr-g", type=float, default=None)
    g.add_argument("--betas", type=float, nargs=2, default=None, metavar=("B1", "B2"), help="Adam betas")
    g.add_argument("--optimizer", choices=("adam", "rmsprop"), default=None)
    g.add_argument("--n-critic", type=int, default=None, help="discriminator steps per generator step")
    g.add_argument("--lr-decay", choices=("none", "linear"), default=None)
    g = parser.add_argument_group("networks")
    g.add_argument("--width", type=int, default=None, help="MLP width (2-D data) or base channels (digits)")
    g.add_argument("--depth", type=int, default=None, help="hidden layers per MLP")
    g.add_argument("--z-dim", type=int, default=None, help="latent dimension (2 on 2-D data, 32 on digits)")
    g = parser.add_argument_group("loss hyper-parameters (only those of the chosen family)")
    g.add_argument("--clip-value", type=float, default=None, help="WGAN weight clipping (0.01)")
    g.add_argument("--gp-weight", type=float, default=None, help="WGAN-GP λ (10; 0.1 on 2-D data)")
    g.add_argument("--margin", type=float, default=None, help="EBGAN margin (per dataset)")
    g.add_argument("--pt-weight", type=float, default=None, help="EBGAN λ_PT (0.1)")
    g.add_argument("--gamma", type=float, default=None, help="BEGAN γ (0.5)")
    g.add_argument("--lambda-k", type=float, default=None, help="BEGAN λ_k (0.001)")
    g.add_argument("--a", type=float, default=None, help="LSGAN fake target (0)")
    g.add_argument("--b", type=float, default=None, help="LSGAN real target (1)")
    g.add_argument("--c", type=float, default=None, help="LSGAN generator target (1)")
    g = parser.add_argument_group("run")
    g.add_argument("--log-every", type=int, default=None, help="record the losses every N steps (50)")
    g.add_argument("--ckpt-every", type=int, default=None, help="checkpoint every N steps (1000)")
    g.add_argument("--eval-samples", type=int, default=None, help="samples for the metrics (2500)")
    g.add_argument("--threads", type=int, default=None, help="torch threads (default 1: the networks are small)")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")
    g.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    g.add_argument("--distributed", action="store_true", help="DDP over gloo (run under torchrun)")


def config_from_args(args: argparse.Namespace) -> Config:
    """The :class:`Config` an argument namespace asks for."""
    import fastgan

    overrides: dict[str, Any] = {}
    for name in ("steps", "batch_size", "lr", "lr_d", "lr_g", "optimizer", "n_critic", "lr_decay", "width", "depth",
                 "z_dim", "log_every", "ckpt_every", "eval_samples"):
        val = getattr(args, name, None)
        if val is not None:
            overrides[name] = val
    if getattr(args, "betas", None) is not None:
        overrides["betas"] = tuple(args.betas)
    from fastgan import losses

    accepted = set(losses.create(args.loss).hparams())
    for name in _HPARAM_FLAGS:
        val = getattr(args, name, None)
        if val is None:
            continue
        if name not in accepted:
            flag = "--" + name.replace("_", "-")
            raise ValueError(f"{flag} is not a hyper-parameter of the {args.loss} loss (it takes: {', '.join(sorted(accepted)) or 'none'})")
        overrides[name] = val
    backend = args.backend if args.backend is not None else fastgan.get_backend()
    return default_config(args.loss, args.data, seed=args.seed, backend=backend, **overrides)


def run(args: argparse.Namespace) -> int:
    """Run ``fastgan train`` (the hook :mod:`fastgan.cli` calls); the exit status."""
    import numpy as np
    import torch

    from fastgan.train.loop import checkpoint_path

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    else:
        # the networks are small: one thread beats several (splitting costs more than it saves,
        # and far more on a machine whose cores are shared)
        torch.set_num_threads(1)
    try:
        cfg = config_from_args(args)
    except (ValueError, TypeError) as e:
        print(f"fastgan train: {e}", file=sys.stderr)
        return 2
    out = args.out or os.path.join("runs", f"{cfg.loss}-{cfg.data}")
    dist = None
    if args.distributed:
        import torch.distributed as dist

        dist.init_process_group("gloo")
    try:
        trainer = Trainer(cfg, distributed=args.distributed)
        ckpt = checkpoint_path(out, trainer.rank, trainer.world_size)
        if args.resume:
            if not os.path.exists(ckpt):
                print(f"fastgan train: --resume: no checkpoint {ckpt}", file=sys.stderr)
                return 2
            try:
                trainer.load(ckpt)
            except ValueError as e:
                print(f"fastgan train: {e}", file=sys.stderr)
                return 2
        os.makedirs(out, exist_ok=True)
        trainer.fit(out, progress=not args.no_progress)
        if trainer.rank == 0:
            result = trainer.evaluate()
            report = summary(trainer, result)
            with open(os.path.join(out, "metrics.json"), "w", encoding="utf-8") as f:
                json.dump(report, f, indent=2)
            np.save(os.path.join(out, "samples.npy"), result["samples"])
            if result["labels"] is not None:
                np.save(os.path.join(out, "labels.npy"), result["labels"])
            if not args.no_plots:
                from fastgan.train import plots

                plots.write_all(out, trainer, result)
            print(format_summary(report))
            if not result["metrics"]["finite"]:
                print("fastgan train: the generator produced non-finite samples", file=sys.stderr)
                return 1
    finally:
        if dist is not None and dist.is_initialized():
            dist.destroy_process_group()
    return 0


def summary(trainer: Trainer, result: dict[str, Any]) -> dict[str, Any]:
    """What ``metrics.json`` holds."""
    import platform

    import torch

    from fastgan import backends

    used = trainer.backend
    if used == "auto":
        used = backends.resolve("interpolate", trainer.device)[0]
    history = trainer.history
    last = {k: history[k][-1] for k in history if k != "step" and history[k]}
    return {
        "loss": trainer.config.loss,
        "data": trainer.config.data,
        "steps": trainer.step,
        "train_seconds": trainer.elapsed,
        "generator_steps_per_s": trainer.step / trainer.elapsed if trainer.elapsed > 0 else None,
        "backend": trainer.backend,
        "backend_used": used,
        "world_size": trainer.world_size,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "machine": platform.machine(),
        "metrics": result["metrics"],
        "last_logs": last,
        "config": trainer.config.to_dict(),
    }


def format_summary(report: dict[str, Any]) -> str:
    m = report["metrics"]
    parts = [f"{report['loss']} on {report['data']}: {report['steps']} steps in {report['train_seconds']:.1f} s"]
    if report["generator_steps_per_s"]:
        parts.append(f"{report['generator_steps_per_s']:.1f} steps/s")
    if "modes" in m:
        parts.append(f"modes {m['modes']}/{m['n_modes']}")
    parts.append(f"high quality {100 * m['high_quality']:.1f}%")
    if "in_requested_mode" in m:
        parts.append(f"in requested mode {100 * m['in_requested_mode']:.1f}%")
    if "mean_distance" in m:
        parts.append(f"mean distance {m['mean_distance']:.3f}")
    return ", ".join(parts)


def main(argv: list[str] | None = None) -> int:
    """``python -m fastgan.train``."""
    parser = argparse.ArgumentParser(prog="python -m fastgan.train", description="train a GAN of any family")
    add_arguments(parser)
    return run(parser.parse_args(argv))
