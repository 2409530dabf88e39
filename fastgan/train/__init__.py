"""``fastgan train``: train a GAN of any family on toy 2-D data or 8×8 digits.

Command line (also ``python -m fastgan.train``, and under ``torchrun`` with ``--distributed``)::

    fastgan train --loss wgan-gp --data grid25 --out runs/wgan-gp-grid25
    fastgan train --loss wgan-gp --data grid25 --out runs/wgan-gp-grid25 --steps 6000 --resume
    torchrun --nproc_per_node 2 -m fastgan.train --loss gan --data ring8 --distributed

Writes to ``--out``: ``samples.png`` (samples over the data), ``losses.png`` (and ``began.png``:
k_t and M_global), ``quality.png`` (the quality curve against the training seconds),
``metrics.json``, ``samples.npy`` (2500 evaluation samples), ``labels.npy`` (CGAN's requested
labels) and ``checkpoint.pt``.

Time to quality: the run evaluates every ``--eval-every`` generator steps (default 100 on the
2-D data, 250 on digits; 0: never) and at its last step, off the training clock, and
``metrics.json`` holds that curve (``curve``: step, training seconds, the dataset's quality
measures) and, for each of the run's targets (:data:`fastgan.train.metrics.TARGETS`), the
training seconds and step at which the curve first met it (``time_to_target`` /
``step_to_target`` for the run's own target; ``null``: not reached). The summary line says it. An ``--out`` that already holds a run's
checkpoint is refused unless ``--resume`` (continue it) or ``--overwrite`` (replace it) is given.

Every usage error — a bad flag or combination, a bad ``FASTGAN_BACKEND``, an ``--out`` that
cannot be written, a checkpoint that cannot be resumed — is found before training starts and
ends the command with status 2 and one line (:class:`fastgan.cli.UsageError`). Without tqdm the
run has no progress bar, without matplotlib no plots (each said once); ``--data digits`` needs
scikit-learn. Ctrl-C (or SIGTERM) stops after the current step, saves the checkpoint and exits
with status 130: ``--resume`` continues from there.

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

from fastgan.cli import (
    TRAIN_EXTRA,
    UsageError,
    finite_float,
    nonnegative_int,
    positive_float,
    positive_int,
)
from fastgan.train.data import DATASETS
from fastgan.train.loop import Config, Trainer, default_config, make_trainer

__all__ = ["Config", "Trainer", "make_trainer", "default_config", "add_arguments", "run", "main"]

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


def _distributed_env() -> tuple[int, int]:
    """(rank, world size) torchrun gives this process; a UsageError outside torchrun."""
    need = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
    missing = [v for v in need if not os.environ.get(v)]
    if missing:
        raise UsageError(f"--distributed runs under torchrun ({', '.join(missing)} not set, as torchrun sets them): "
                         "torchrun --nproc_per_node N -m fastgan.train ... --distributed")
    try:
        rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    except ValueError:
        raise UsageError(f"--distributed: RANK={os.environ['RANK']!r} and WORLD_SIZE={os.environ['WORLD_SIZE']!r} "
                         "must be integers (as torchrun sets them)") from None
    if world < 1 or not 0 <= rank < world:
        raise UsageError(f"--distributed: RANK={rank} and WORLD_SIZE={world} are not a process of a group "
                         "(0 <= RANK < WORLD_SIZE)")
    return rank, world


def _check_run(args: argparse.Namespace, cfg: Config, world: int) -> None:
    """The combinations of flags no run can satisfy."""
    from fastgan.train import data as data_mod
    from fastgan.train.loop import min_batch

    if cfg.conditional and data_mod.N_CLASSES[cfg.data] == 0:
        labelled = [d for d in DATASETS if data_mod.N_CLASSES[d]]
        raise UsageError(f"--loss {cfg.loss} conditions on labels, and --data {cfg.data} has none; "
                         f"use --data {', '.join(labelled)} (or an unconditional --loss)")
    if cfg.batch_size % world:
        raise UsageError(f"--batch-size {cfg.batch_size} does not split evenly over the {world} processes "
                         f"(--batch-size is the global batch: a multiple of {world})")
    need = min_batch(cfg)
    if cfg.batch_size // world < need:
        per = f" per process ({world} processes: --batch-size {need * world} or more)" if world > 1 else ""
        raise UsageError(f"--batch-size {cfg.batch_size}: the {cfg.loss} loss needs at least {need} samples{per}"
                         + (" for its pulling-away term (or --pt-weight 0)" if cfg.loss == "ebgan" else ""))
    module = data_mod.NEEDS.get(cfg.data)
    if module is not None and _optional(module) is None:
        raise UsageError(f"--data {cfg.data} needs scikit-learn, which is not installed: {TRAIN_EXTRA} "
                         f"(or --data {', '.join(d for d in DATASETS if d not in data_mod.NEEDS)})")


def _optional(module: str):
    from fastgan.cli import optional

    return optional(module)


def _existing_checkpoints(out: str) -> list[str]:
    try:
        names = os.listdir(out)
    except OSError:
        return []
    return sorted(n for n in names if n.startswith("checkpoint") and n.endswith(".pt"))


class _StopFlag:
    """Ctrl-C or SIGTERM while training: stop after the current step (a second Ctrl-C stops at
    once). Installed only in the main thread of a single-process run, and never over a signal
    the process ignores (a shell starts background jobs with Ctrl-C ignored: it stays so)."""

    def __init__(self) -> None:
        self.signal: str | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> "_StopFlag":
        import signal
        import threading

        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                if signal.getsignal(sig) is not signal.SIG_IGN:
                    self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        import signal

        if self.signal is not None:  # asked twice: stop now
            raise KeyboardInterrupt
        self.signal = signal.Signals(signum).name
        print(f"\nfastgan train: {self.signal}: stopping after this step and saving the checkpoint "
              "(again to stop at once)", file=sys.stderr, flush=True)

    def __call__(self) -> bool:
        return self.signal is not None

    def __exit__(self, *exc: object) -> None:
        import signal

        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def _thread_policy(threads: int | str | None, image: bool, distributed: bool, step: int = 0):
    """Set torch's thread count for the run. ``None`` (no ``--threads``) is ``auto`` on the 2-D
    data and 1 on digits and under ``--distributed`` (each process is one of several there).
    ``auto`` returns the :class:`~fastgan.train.threads.ThreadChooser` that ``fit`` feeds with
    the step times; a number returns ``None``."""
    import torch

    from fastgan.train.threads import ThreadChooser, auto_counts

    if threads is None:
        threads = 1 if image or distributed else "auto"
    if threads == "auto":
        return ThreadChooser(auto_counts(), first_step=step)
    torch.set_num_threads(threads)
    return None


def run(args: argparse.Namespace) -> int:
    """Run ``fastgan train`` (the hook :mod:`fastgan.cli` calls); the exit status. Every usage
    error is a :class:`~fastgan.cli.UsageError`, raised before training starts."""
    import numpy as np
    import torch

    from fastgan.cli import backend_selection, check_backend, writable_dir
    from fastgan.train.loop import check_checkpoint, checkpoint_path, read_checkpoint

    # ---- everything a run needs is checked first: a usage error never costs a training run
    if args.resume and args.overwrite:
        raise UsageError("--resume continues the run in --out and --overwrite replaces it: give one of them")
    selection = backend_selection()  # a bad FASTGAN_BACKEND is an error even under --backend
    backend = check_backend(args.backend if args.backend is not None else selection,
                            "--backend" if args.backend is not None else "FASTGAN_BACKEND")
    cfg = config_from_args(args, backend=backend)
    if args.distributed:
        rank, world = _distributed_env()
    else:
        rank, world = 0, 1
        size = os.environ.get("WORLD_SIZE", "1").strip()
        if size not in ("", "0", "1"):
            raise UsageError(f"this process is one of WORLD_SIZE={size} (torchrun) but --distributed is not given: "
                             "every process would train alone into the same --out; add --distributed")
    _check_run(args, cfg, world)
    out = args.out or os.path.join("runs", f"{cfg.loss}-{cfg.data}")
    ckpt = checkpoint_path(out, rank, world)
    state = None
    if args.resume:
        try:
            state = read_checkpoint(ckpt)
            check_checkpoint(state, cfg, rank, world)
        except ValueError as e:
            raise UsageError(f"--resume: {' '.join(str(e).split())}") from None
    else:
        found = _existing_checkpoints(out) if os.path.isdir(out) else []
        if found and not args.overwrite:
            raise UsageError(f"--out {out} already holds a run ({', '.join(found)}): pass --resume to continue it "
                             "or --overwrite to replace it (or choose another --out)")
    writable_dir(out)
    progress = not args.no_progress and rank == 0
    if progress and _optional("tqdm") is None:
        print(f"fastgan train: tqdm is not installed: no progress bar ({TRAIN_EXTRA})", file=sys.stderr)
        progress = False
    plots_wanted = not args.no_plots and rank == 0
    if plots_wanted and _optional("matplotlib") is None:
        print(f"fastgan train: matplotlib is not installed: no PNG plots ({TRAIN_EXTRA})", file=sys.stderr)
        plots_wanted = False

    # ---- the run
    caller_threads = torch.get_num_threads()  # given back at the end (main() may be a library call)
    dist = None
    finished = False  # every rank reached the end: they can meet before the group is torn down
    if args.distributed:
        import torch.distributed as dist

        try:
            dist.init_process_group("gloo")
        except (RuntimeError, ValueError) as e:
            raise UsageError(f"--distributed: torch.distributed could not start ({' '.join(str(e).split())[:200]})") from None
    try:
        trainer = Trainer(cfg, distributed=args.distributed)
        if state is not None:
            try:
                trainer.load_state_dict(state)
            except (RuntimeError, KeyError, TypeError, ValueError, IndexError) as e:
                raise UsageError(f"--resume: {ckpt} does not fit this run's networks or optimisers "
                                 f"({type(e).__name__}: {' '.join(str(e).split())[:160]})") from None
        chooser = _thread_policy(args.threads, trainer.data.image, args.distributed, trainer.step)
        if args.distributed:
            trainer.fit(out, progress=progress, on_step=chooser)
            stopped = None
        else:
            with _StopFlag() as stop:
                trainer.fit(out, progress=progress, stop=stop, on_step=chooser)
            stopped = stop.signal
        if stopped is not None:
            print(f"fastgan train: stopped ({stopped}) at step {trainer.step} of {cfg.steps}; the checkpoint is "
                  f"saved in {out}: the same command with --resume continues", file=sys.stderr)
            return 130
        if trainer.rank == 0:
            result = trainer.final_evaluation()
            report = summary(trainer, result, chooser)
            with open(os.path.join(out, "metrics.json"), "w", encoding="utf-8") as f:
                json.dump(report, f, indent=2)
            np.save(os.path.join(out, "samples.npy"), result["samples"])
            if result["labels"] is not None:
                np.save(os.path.join(out, "labels.npy"), result["labels"])
            if plots_wanted:
                from fastgan.train import plots

                try:
                    plots.write_all(out, trainer, result)
                except Exception as e:  # a plot never costs the run: everything else is written
                    print(f"fastgan train: the plots failed ({type(e).__name__}: {' '.join(str(e).split())[:160]}); "
                          "the metrics, samples and checkpoint are written", file=sys.stderr)
            print(format_summary(report))
            if not result["metrics"]["finite"]:
                print("fastgan train: the generator produced non-finite samples", file=sys.stderr)
                finished = True
                return 1
        finished = True
    finally:
        torch.set_num_threads(caller_threads)
        if dist is not None and dist.is_initialized():
            if finished:  # no rank tears gloo down while another still talks to it
                dist.barrier()
            dist.destroy_process_group()
    return 0


def summary(trainer: Trainer, result: dict[str, Any], threads: Any = None) -> dict[str, Any]:
    """What ``metrics.json`` holds: the run, the final ``metrics``, the quality ``curve``, the
    ``targets`` (each with the first step / training seconds the curve met it) and, for the
    run's own target (the first), ``target``, ``time_to_target`` and ``step_to_target``."""
    import platform

    import torch

    from fastgan import backends
    from fastgan.train import metrics as M

    used = trainer.backend
    if used == "auto":
        used = backends.resolve("interpolate", trainer.device)[0]
    history = trainer.history
    last = {k: history[k][-1] for k in history if k != "step" and history[k]}
    cfg = trainer.config
    targets = M.target_report(trainer.curve, M.targets_for(cfg.loss, cfg.data), result["metrics"])
    own = targets[0] if targets else None
    return {
        "loss": cfg.loss,
        "data": cfg.data,
        "steps": trainer.step,
        "train_seconds": trainer.elapsed,
        "generator_steps_per_s": trainer.step / trainer.elapsed if trainer.elapsed > 0 else None,
        "backend": trainer.backend,
        "backend_used": used,
        "world_size": trainer.world_size,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        # --threads auto: every switch of the thread count as [step, threads]
        "thread_choices": None if threads is None else [list(c) for c in threads.choices],
        "machine": platform.machine(),
        "metrics": result["metrics"],
        "eval_every": cfg.eval_every,
        "target": None if own is None else own["name"],
        "time_to_target": None if own is None else own["train_seconds"],
        "step_to_target": None if own is None else own["step"],
        "targets": targets,
        "curve": [dict(p) for p in trainer.curve],
        "eval_seconds": sum(p.get("eval_seconds", 0.0) for p in trainer.curve),
        "last_logs": last,
        "config": cfg.to_dict(),
    }


def format_summary(report: dict[str, Any]) -> str:
    """What ``fastgan train`` prints at the end: a line of the final metrics, then a line per
    target with the time to it (or that it was not reached)."""
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
    lines = [", ".join(parts)]
    lines += [format_target(t, report["steps"]) for t in report.get("targets", [])]
    return "\n".join(lines)


def format_target(t: dict[str, Any], steps: int) -> str:
    """One entry of :func:`summary`'s ``targets`` in words."""
    if t["reached"]:
        return f"time to target ({t['name']}): {t['train_seconds']:.1f} s of training, step {t['step']}"
    if not t["measured"]:
        met = {True: "met", False: "not met", None: "not checked"}[t["met_at_end"]]
        return f"target ({t['name']}) {met} at the end; time to target not measured (--eval-every 0)"
    return f"target ({t['name']}) not reached in {steps} steps"


def main(argv: list[str] | None = None) -> int:
    """``python -m fastgan.train`` (usage errors: status 2 and one line, as ``fastgan train``)."""
    from fastgan.cli import ArgumentParser, run_subcommand

    parser = ArgumentParser(prog="python -m fastgan.train", description="train a GAN of any family")
    add_arguments(parser)
    return run_subcommand("fastgan train", run, parser.parse_args(argv))
