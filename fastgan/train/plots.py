"""PNG plots of ``fastgan train`` (matplotlib is imported when a plot is drawn)."""

from __future__ import annotations

import os
from typing import Any

import numpy as np


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_samples(path: str, samples: np.ndarray, data_points: np.ndarray | None, title: str, labels: np.ndarray | None = None) -> None:
    """Generated samples over the data: a scatter plot (2-D) or a grid of images (digits)."""
    plt = _plt()
    if samples.ndim == 4:  # images (N, 1, H, W)
        n = min(100, len(samples))
        rows = int(np.ceil(n / 10))
        fig, axes = plt.subplots(rows, 10, figsize=(6, 0.6 * rows + 0.4))
        for i, ax in enumerate(np.atleast_1d(axes).ravel()):
            ax.axis("off")
            if i < n:
                ax.imshow(samples[i, 0], cmap="gray_r", vmin=-1, vmax=1)
                if labels is not None:
                    ax.set_title(str(int(labels[i])), fontsize=6, pad=1)
        fig.suptitle(title, fontsize=9)
    else:
        fig, ax = plt.subplots(figsize=(4.2, 4.2))
        if data_points is not None:
            ax.scatter(data_points[:, 0], data_points[:, 1], s=2, c="tab:blue", alpha=0.3, label="data", linewidths=0)
        ax.scatter(samples[:, 0], samples[:, 1], s=2, c="tab:red", alpha=0.5, label="G(z)", linewidths=0)
        ax.set_aspect("equal")
        ax.legend(loc="upper right", fontsize=7, markerscale=4)
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def plot_losses(path: str, history: dict[str, list[float]], title: str) -> None:
    """Every logged quantity against the generator step (BEGAN's k and M_global on their own
    axes)."""
    plt = _plt()
    steps = history.get("step", [])
    keys = [k for k in history if k not in ("step", "k", "convergence")]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for k in keys:
        ax.plot(steps, history[k], label=k, lw=1)
    ax.set_xlabel("generator step")
    ax.legend(fontsize=7)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def plot_began(path: str, history: dict[str, list[float]], title: str) -> None:
    """BEGAN's k_t and convergence measure M_global."""
    plt = _plt()
    steps = history.get("step", [])
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(7, 3))
    a1.plot(steps, history.get("k", []), lw=1)
    a1.set_title("k_t", fontsize=9)
    a2.plot(steps, history.get("convergence", []), lw=1, c="tab:green")
    a2.set_title("M_global", fontsize=9)
    for a in (a1, a2):
        a.set_xlabel("generator step")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def plot_quality(path: str, curve: list[dict[str, Any]], targets: list[dict[str, Any]], title: str) -> None:
    """The quality curve against the training seconds: the high-quality share (and CGAN's share
    in the requested mode) in %, the modes covered on a second axis, and a dashed line where
    each target was first reached (``targets``: :func:`fastgan.train.metrics.target_report`)."""
    plt = _plt()
    secs = [p["train_seconds"] for p in curve]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(secs, [100 * p["high_quality"] for p in curve], marker=".", lw=1, c="tab:red", label="high quality %")
    if curve and "in_requested_mode" in curve[0]:
        ax.plot(secs, [100 * p["in_requested_mode"] for p in curve], marker=".", lw=1, c="tab:purple",
                label="in requested mode %")
    ax.set_ylim(-2, 102)
    ax.set_xlabel("training seconds (evaluation excluded)")
    ax.set_ylabel("%")
    handles, names = ax.get_legend_handles_labels()
    if curve and "modes" in curve[0]:
        ax2 = ax.twinx()
        ax2.plot(secs, [p["modes"] for p in curve], marker=".", lw=1, c="tab:blue", label="modes covered")
        ax2.set_ylim(-0.5, curve[0]["n_modes"] + 0.5)
        ax2.set_ylabel("modes covered")
        h2, n2 = ax2.get_legend_handles_labels()
        handles, names = handles + h2, names + n2
    for t, style in zip(targets, ("--", ":", "-.")):
        if t.get("reached"):
            line = ax.axvline(t["train_seconds"], ls=style, c="k", lw=1,
                              label=f"{t['name']}: {t['train_seconds']:.1f} s (step {t['step']})")
            handles, names = handles + [line], names + [line.get_label()]
    ax.legend(handles, names, fontsize=7, loc="lower right")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def write_all(out_dir: str, trainer: Any, result: dict[str, Any]) -> list[str]:
    """Samples, losses (and BEGAN's k / M_global), and the quality curve where the run has one,
    as PNG files in ``out_dir``; their paths."""
    import torch

    cfg = trainer.config
    title = f"{cfg.loss} on {cfg.data}, step {trainer.step}"
    m = result["metrics"]
    if "modes" in m:
        title += f": {m['modes']}/{m['n_modes']} modes, {100 * m['high_quality']:.0f}% HQ"
    written = []
    data_points = None
    if not trainer.data.image:
        data_points = trainer.data.sample(2500, torch.Generator().manual_seed(1))[0].numpy()
    p = os.path.join(out_dir, "samples.png")
    plot_samples(p, result["samples"], data_points, title, result["labels"])
    written.append(p)
    p = os.path.join(out_dir, "losses.png")
    plot_losses(p, trainer.history, f"{cfg.loss} on {cfg.data}")
    written.append(p)
    if cfg.loss == "began":
        p = os.path.join(out_dir, "began.png")
        plot_began(p, trainer.history, f"began on {cfg.data}")
        written.append(p)
    curve = getattr(trainer, "curve", [])
    if curve:
        from fastgan.train import metrics as M

        targets = M.target_report(curve, M.targets_for(cfg.loss, cfg.data))
        p = os.path.join(out_dir, "quality.png")
        plot_quality(p, curve, targets, f"{cfg.loss} on {cfg.data}: quality while training")
        written.append(p)
    return written
