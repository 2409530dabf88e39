"""Evaluating a :class:`Trainer <fastgan.train.loop.Trainer>`: samples, the dataset's metrics and
the quality curve (:class:`EvaluationMixin`), off the training clock and the training RNG streams."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch

import fastgan
from fastgan.train import data as data_mod

__all__ = ["EvaluationMixin"]


class EvaluationMixin:
    """:class:`~fastgan.train.loop.Trainer`'s evaluation methods."""

    def quality_due(self) -> bool:
        """Whether the quality curve takes a point at this step: every ``eval_every`` steps and
        at ``config.steps`` (never with ``eval_every=0``, nor off rank 0, nor twice a step)."""
        every = self.config.eval_every
        if every <= 0 or self.rank != 0 or self.step == 0:
            return False
        if self.curve and self.curve[-1]["step"] >= self.step:
            return False
        return self.step % every == 0 or self.step == self.config.steps

    def final_evaluation(self) -> dict[str, Any]:
        """:meth:`evaluate` at the current step: the curve's evaluation of this step where
        :meth:`record_quality` just made one (the same samples: :meth:`generate` is seeded),
        else a new one."""
        if self._last_eval is not None and self._last_eval[0] == self.step:
            return self._last_eval[1]
        return self.evaluate()

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


class global_rng_kept:
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


def short_quality(point: dict[str, Any]) -> str:
    """A point of the curve in a few characters, for the progress bar."""
    parts = []
    if "modes" in point:
        parts.append(f"{point['modes']}/{point['n_modes']} modes")
    if "in_requested_mode" in point:
        parts.append(f"{100 * point['in_requested_mode']:.0f}% requested")
    else:
        parts.append(f"{100 * point['high_quality']:.0f}% HQ")
    return " ".join(parts)
