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

Modules: :mod:`~fastgan.train.config` (Config, defaults, recipes), :mod:`~fastgan.train.loop`
(Trainer), :mod:`~fastgan.train.evaluation`, :mod:`~fastgan.train.checkpoint`,
:mod:`~fastgan.train.arguments` (the options), :mod:`~fastgan.train.runner` (:func:`run`),
:mod:`~fastgan.train.report` (metrics.json, the summary lines).
"""

from __future__ import annotations

from fastgan.train.arguments import add_arguments, config_from_args  # noqa: F401
from fastgan.train.loop import Config, Trainer, default_config, make_trainer
from fastgan.train.report import format_summary, format_target, summary  # noqa: F401
from fastgan.train.runner import run

__all__ = ["Config", "Trainer", "make_trainer", "default_config", "add_arguments", "run", "main"]
# also here, as before the split: config_from_args, summary, format_summary, format_target


def main(argv: list[str] | None = None) -> int:
    """``python -m fastgan.train`` (usage errors: status 2 and one line, as ``fastgan train``)."""
    from fastgan.cli import ArgumentParser, run_subcommand

    parser = ArgumentParser(prog="python -m fastgan.train", description="train a GAN of any family")
    add_arguments(parser)
    return run_subcommand("fastgan train", run, parser.parse_args(argv))
