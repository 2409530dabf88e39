"""Running ``fastgan train`` (:func:`run`): every usage check before training, then the
training, the interrupt (Ctrl-C / SIGTERM) and the files the run writes."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from typing import Any

from fastgan.cli import TRAIN_EXTRA, UsageError
from fastgan.train.arguments import config_from_args
from fastgan.train.config import Config
from fastgan.train.data import DATASETS
from fastgan.train.loop import Trainer
from fastgan.train.report import format_summary, summary

__all__ = ["run"]


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
    from fastgan.train.config import min_batch

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


@dataclasses.dataclass
class _Plan:
    """What the checks before training settled: the configuration, this process, the output
    folder, the checkpoint to resume (``state``) and the progress bar and plots wanted."""

    cfg: Config
    rank: int
    world: int
    out: str
    ckpt: str
    state: dict[str, Any] | None
    progress: bool
    plots: bool


def _process(args: argparse.Namespace) -> tuple[int, int]:
    """(rank, world size) of this process: torchrun's under ``--distributed``; a UsageError for
    a process of a torchrun group without ``--distributed``."""
    if args.distributed:
        return _distributed_env()
    size = os.environ.get("WORLD_SIZE", "1").strip()
    if size not in ("", "0", "1"):
        raise UsageError(f"this process is one of WORLD_SIZE={size} (torchrun) but --distributed is not given: "
                         "every process would train alone into the same --out; add --distributed")
    return 0, 1


def _resume_state(args: argparse.Namespace, cfg: Config, out: str, ckpt: str, rank: int,
                  world: int) -> dict[str, Any] | None:
    """The checkpoint ``--resume`` continues (checked against ``cfg``), or ``None``; a UsageError
    for an ``--out`` holding a run without ``--resume`` or ``--overwrite``."""
    from fastgan.train.checkpoint import check_checkpoint, read_checkpoint

    if args.resume:
        try:
            state = read_checkpoint(ckpt)
            check_checkpoint(state, cfg, rank, world)
        except ValueError as e:
            raise UsageError(f"--resume: {' '.join(str(e).split())}") from None
        return state
    found = _existing_checkpoints(out) if os.path.isdir(out) else []
    if found and not args.overwrite:
        raise UsageError(f"--out {out} already holds a run ({', '.join(found)}): pass --resume to continue it "
                         "or --overwrite to replace it (or choose another --out)")
    return None


def _plan(args: argparse.Namespace) -> _Plan:
    """Everything a run needs, checked first: a usage error never costs a training run."""
    from fastgan.cli import backend_selection, check_backend, writable_dir
    from fastgan.train.checkpoint import checkpoint_path

    if args.resume and args.overwrite:
        raise UsageError("--resume continues the run in --out and --overwrite replaces it: give one of them")
    selection = backend_selection()  # a bad FASTGAN_BACKEND is an error even under --backend
    backend = check_backend(args.backend if args.backend is not None else selection,
                            "--backend" if args.backend is not None else "FASTGAN_BACKEND")
    cfg = config_from_args(args, backend=backend)
    rank, world = _process(args)
    _check_run(args, cfg, world)
    out = args.out or os.path.join("runs", f"{cfg.loss}-{cfg.data}")
    ckpt = checkpoint_path(out, rank, world)
    state = _resume_state(args, cfg, out, ckpt, rank, world)
    writable_dir(out)
    progress = not args.no_progress and rank == 0
    if progress and _optional("tqdm") is None:
        print(f"fastgan train: tqdm is not installed: no progress bar ({TRAIN_EXTRA})", file=sys.stderr)
        progress = False
    plots_wanted = not args.no_plots and rank == 0
    if plots_wanted and _optional("matplotlib") is None:
        print(f"fastgan train: matplotlib is not installed: no PNG plots ({TRAIN_EXTRA})", file=sys.stderr)
        plots_wanted = False
    return _Plan(cfg, rank, world, out, ckpt, state, progress, plots_wanted)


def _start_group(distributed: bool):
    """``torch.distributed`` with its gloo group started under ``--distributed``, else ``None``."""
    if not distributed:
        return None
    import torch.distributed as dist

    try:
        dist.init_process_group("gloo")
    except (RuntimeError, ValueError) as e:
        raise UsageError(f"--distributed: torch.distributed could not start ({' '.join(str(e).split())[:200]})") from None
    return dist


def _trainer(plan: _Plan, distributed: bool) -> Trainer:
    """The run's :class:`Trainer`, with the ``--resume`` checkpoint loaded."""
    trainer = Trainer(plan.cfg, distributed=distributed)
    if plan.state is not None:
        try:
            trainer.load_state_dict(plan.state)
        except (RuntimeError, KeyError, TypeError, ValueError, IndexError) as e:
            raise UsageError(f"--resume: {plan.ckpt} does not fit this run's networks or optimisers "
                             f"({type(e).__name__}: {' '.join(str(e).split())[:160]})") from None
    return trainer


def _fit(trainer: Trainer, plan: _Plan, distributed: bool, chooser: Any) -> str | None:
    """Train to the end; the signal that stopped the run early (single process only), or ``None``."""
    if distributed:
        trainer.fit(plan.out, progress=plan.progress, on_step=chooser)
        return None
    with _StopFlag() as stop:
        trainer.fit(plan.out, progress=plan.progress, stop=stop, on_step=chooser)
    return stop.signal


def _write_results(trainer: Trainer, plan: _Plan, chooser: Any) -> int:
    """Rank 0's final evaluation: ``metrics.json``, ``samples.npy``, ``labels.npy``, the plots
    and the summary lines; the exit status (1: the generator produced non-finite samples)."""
    import numpy as np

    out = plan.out
    result = trainer.final_evaluation()
    report = summary(trainer, result, chooser)
    with open(os.path.join(out, "metrics.json"), "w", encoding="utf-8") as f:
        json.dump(report, f, indent=2)
    np.save(os.path.join(out, "samples.npy"), result["samples"])
    if result["labels"] is not None:
        np.save(os.path.join(out, "labels.npy"), result["labels"])
    if plan.plots:
        from fastgan.train import plots

        try:
            plots.write_all(out, trainer, result)
        except Exception as e:  # a plot never costs the run: everything else is written
            print(f"fastgan train: the plots failed ({type(e).__name__}: {' '.join(str(e).split())[:160]}); "
                  "the metrics, samples and checkpoint are written", file=sys.stderr)
    print(format_summary(report))
    if not result["metrics"]["finite"]:
        print("fastgan train: the generator produced non-finite samples", file=sys.stderr)
        return 1
    return 0


def run(args: argparse.Namespace) -> int:
    """Run ``fastgan train`` (the hook :mod:`fastgan.cli` calls); the exit status. Every usage
    error is a :class:`~fastgan.cli.UsageError`, raised before training starts."""
    import torch

    plan = _plan(args)
    caller_threads = torch.get_num_threads()  # given back at the end (main() may be a library call)
    dist = _start_group(args.distributed)
    finished = False  # every rank reached the end: they can meet before the group is torn down
    try:
        trainer = _trainer(plan, args.distributed)
        chooser = _thread_policy(args.threads, trainer.data.image, args.distributed, trainer.step)
        stopped = _fit(trainer, plan, args.distributed, chooser)
        if stopped is not None:
            print(f"fastgan train: stopped ({stopped}) at step {trainer.step} of {plan.cfg.steps}; the checkpoint is "
                  f"saved in {plan.out}: the same command with --resume continues", file=sys.stderr)
            return 130
        status = _write_results(trainer, plan, chooser) if trainer.rank == 0 else 0
        finished = True
        return status
    finally:
        torch.set_num_threads(caller_threads)
        if dist is not None and dist.is_initialized():
            if finished:  # no rank tears gloo down while another still talks to it
                dist.barrier()
            dist.destroy_process_group()
