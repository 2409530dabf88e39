"""The command line of ``fastgan train``: its options (:func:`add_arguments`) and the
:class:`~fastgan.train.config.Config` they ask for (:func:`config_from_args`)."""

from __future__ import annotations

import argparse
from typing import Any

from fastgan.cli import (
    UsageError,
    finite_float,
    nonnegative_int,
    positive_float,
    positive_int,
)
from fastgan.train.config import Config, default_config
from fastgan.train.data import DATASETS

__all__ = ["add_arguments", "config_from_args"]

_LOSSES = ("gan", "cgan", "wgan", "wgan-gp", "ebgan", "began", "lsgan", "hinge")

#: flag -> (loss hyper-parameter, type)
_HPARAM_FLAGS = {
    "clip_value": float,
    "gp_weight": float,
    "gp_interval": int,
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
    parser.add_argument("--data", default="ring8", choices=DATASETS,
                        help="training data (default ring8; cgan needs labels: ring8, grid25 or digits)")
    parser.add_argument("--steps", type=positive_int, default=None, help="generator steps (default: per dataset)")
    parser.add_argument("--batch-size", type=positive_int, default=None,
                        help="global batch size (default: per dataset; ebgan: at least 2 per process)")
    parser.add_argument("--backend", default=None,
                        help="fastgan backend: auto (default, fused), reference, cpu (default: FASTGAN_BACKEND, "
                        "or auto)")
    parser.add_argument("--out", default=None, help="output folder (default runs/LOSS-DATA)")
    parser.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt (bit-identical)")
    parser.add_argument("--overwrite", action="store_true",
                        help="start afresh in an --out that holds another run's checkpoint, replacing it "
                        "(without --resume or --overwrite such an --out is refused)")
    parser.add_argument("--seed", type=_seed, default=0, help="random seed, 0 to 2**32 - 1 (default 0)")
    g = parser.add_argument_group("optimisation (defaults: the family's published values)")
    g.add_argument("--lr", type=positive_float, default=None, help="learning rate of both networks")
    g.add_argument("--lr-d", type=positive_float, default=None)
    g.add_argument("--lr-g", type=positive_float, default=None)
    g.add_argument("--betas", type=_beta, nargs=2, default=None, metavar=("B1", "B2"), help="Adam betas, in [0, 1)")
    g.add_argument("--optimizer", choices=("adam", "rmsprop"), default=None)
    g.add_argument("--n-critic", type=positive_int, default=None, help="discriminator steps per generator step")
    g.add_argument("--lr-decay", choices=("none", "linear"), default=None)
    g = parser.add_argument_group("networks")
    g.add_argument("--width", type=positive_int, default=None, help="MLP width (2-D data) or base channels (digits)")
    g.add_argument("--depth", type=nonnegative_int, default=None, help="hidden layers per MLP")
    g.add_argument("--spectral-norm", action="store_true", default=None,
                   help="spectral normalisation of D's linear and conv layers (SNGAN; off by default)")
    g.add_argument("--ae-code", type=positive_int, default=None,
                   help="code size of the autoencoder discriminator of ebgan/began on 2-D data (16)")
    g.add_argument("--z-dim", type=positive_int, default=None, help="latent dimension (2 on 2-D data, 32 on digits)")
    g = parser.add_argument_group("loss hyper-parameters (only those of the chosen family)")
    g.add_argument("--clip-value", type=finite_float, default=None, help="WGAN weight clipping (0.01)")
    g.add_argument("--gp-weight", type=finite_float, default=None, help="WGAN-GP λ (10; 0.1 on 2-D data)")
    g.add_argument("--gp-interval", type=positive_int, default=None,
                   help="WGAN-GP lazy regularisation: the penalty on every k-th critic step, weight × k (1)")
    g.add_argument("--margin", type=finite_float, default=None, help="EBGAN margin (per dataset)")
    g.add_argument("--pt-weight", type=finite_float, default=None, help="EBGAN λ_PT (0.1)")
    g.add_argument("--gamma", type=finite_float, default=None, help="BEGAN γ (0.5)")
    g.add_argument("--lambda-k", type=finite_float, default=None, help="BEGAN λ_k (0.001)")
    g.add_argument("--a", type=finite_float, default=None, help="LSGAN fake target (0)")
    g.add_argument("--b", type=finite_float, default=None, help="LSGAN real target (1)")
    g.add_argument("--c", type=finite_float, default=None, help="LSGAN generator target (1)")
    g = parser.add_argument_group("run")
    g.add_argument("--log-every", type=positive_int, default=None, help="record the losses every N steps (50)")
    g.add_argument("--ckpt-every", type=positive_int, default=None, help="checkpoint every N steps (1000)")
    g.add_argument("--eval-samples", type=positive_int, default=None, help="samples for the metrics (2500)")
    g.add_argument("--eval-every", type=nonnegative_int, default=None,
                   help="evaluate every N generator steps for the quality curve and the time to target, "
                   "off the training clock (default 100 on 2-D data, 250 on digits; 0: no curve)")
    g.add_argument("--threads", type=_threads, default=None,
                   help="torch threads: an integer >= 1, or auto (the default on 2-D data: the faster of 1, 2 "
                   "and 4 threads, timed while training; the results do not depend on it); 1 on digits "
                   "and under --distributed")
    g.add_argument("--no-progress", action="store_true", help="no progress bar (there is none without tqdm)")
    g.add_argument("--no-plots", action="store_true", help="skip the PNG plots (skipped without matplotlib)")
    g.add_argument("--distributed", action="store_true", help="DDP over gloo (run under torchrun)")


def _threads(text: str) -> int | str:
    if text.strip().lower() == "auto":
        return "auto"
    try:
        return positive_int(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1 or auto, got {text!r}") from None


def _seed(text: str) -> int:
    value = nonnegative_int(text)
    if value >= 2**32:
        raise argparse.ArgumentTypeError(f"expected an integer from 0 to 2**32 - 1, got {text!r}")
    return value


def _beta(text: str) -> float:
    value = finite_float(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text!r}")
    return value


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def config_from_args(args: argparse.Namespace, backend: str | None = None) -> Config:
    """The :class:`Config` an argument namespace asks for; a :class:`~fastgan.cli.UsageError`
    naming the flag for a value the configuration refuses. ``backend``: the selection to train
    under (default: ``--backend``, or the current selection)."""
    import fastgan
    from fastgan import losses

    overrides: dict[str, Any] = {}
    for name in ("steps", "batch_size", "lr", "lr_d", "lr_g", "optimizer", "n_critic", "lr_decay", "width", "depth",
                 "z_dim", "log_every", "ckpt_every", "eval_samples", "eval_every", "spectral_norm", "ae_code"):
        val = getattr(args, name, None)
        if val is not None:
            overrides[name] = val
    if getattr(args, "betas", None) is not None:
        overrides["betas"] = tuple(args.betas)
    accepted = set(losses.create(args.loss).hparams())
    for name in _HPARAM_FLAGS:
        val = getattr(args, name, None)
        if val is None:
            continue
        if name not in accepted:
            raise UsageError(f"{_flag(name)} is not a hyper-parameter of the {args.loss} loss "
                             f"(it takes: {', '.join(_flag(a) for a in sorted(accepted)) or 'none'})")
        overrides[name] = val
    if backend is None:
        backend = args.backend if args.backend is not None else fastgan.get_backend()
    try:
        return default_config(args.loss, args.data, seed=args.seed, backend=backend, **overrides)
    except (ValueError, TypeError) as e:
        msg = " ".join(str(e).split())
        # "lr_d must be ..." -> "--lr-d must be ...": name the flag the user typed
        head, _, rest = msg.partition(" ")
        if rest and (head in _HPARAM_FLAGS or head in overrides or head in ("lr_d", "lr_g")):
            msg = f"{_flag(head)} {rest}"
        raise UsageError(msg) from None
