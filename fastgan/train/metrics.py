"""Sample-quality metrics of ``fastgan train`` (as in VEEGAN and PacGAN).

For a mixture of Gaussians with centers ``c_k`` and standard deviation σ, on generated samples:

* a sample is **high quality** when it lies within ``3σ`` of its nearest mode;
* a mode is **covered** when it is the nearest mode of at least one high-quality sample;
* ``mode_kl``: KL divergence of the high-quality samples' mode histogram from the uniform one
  (``None`` when there is no high-quality sample).

For conditional samples, the share that lands in the requested mode (within ``3σ`` of that
mode's center). For the Swiss roll, high quality is within ``3σ`` of the noiseless curve. For
digits, a logistic-regression classifier fitted on the 8×8 digits stands in for the modes:
a sample is high quality when the classifier's top probability is ≥ 0.9, a class is covered
when it is the prediction of at least one high-quality sample, and a conditional sample lands
in its requested class when that is the classifier's (high-quality) prediction.

All functions take numpy arrays or tensors and return plain Python numbers (JSON-ready).
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["mode_metrics", "conditional_metrics", "curve_metrics", "digit_metrics", "digit_classifier"]


def _np(x: Any, name: str, ndim: int | None = None) -> np.ndarray:
    try:
        import torch

        if isinstance(x, torch.Tensor):
            x = x.detach().cpu().numpy()
    except ImportError:  # pragma: no cover
        pass
    a = np.asarray(x)
    if ndim is not None and a.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, got shape {a.shape}")
    return a


def _nearest(samples: np.ndarray, centers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    d = np.linalg.norm(samples[:, None, :].astype(np.float64) - centers[None, :, :].astype(np.float64), axis=-1)
    idx = d.argmin(axis=1)
    return idx, d[np.arange(len(samples)), idx]


def _summary(idx: np.ndarray, good: np.ndarray, n_modes: int) -> dict[str, Any]:
    n = len(idx)
    counts = np.bincount(idx[good], minlength=n_modes)
    n_good = int(good.sum())
    if n_good:
        p = counts / n_good
        nz = p > 0
        kl = float(np.sum(p[nz] * np.log(p[nz] * n_modes)))
    else:
        kl = None  # no high-quality sample: no histogram (None keeps metrics.json strict JSON)
    return {
        "n_samples": n,
        "high_quality": n_good / n if n else 0.0,
        "modes": int((counts > 0).sum()),
        "n_modes": n_modes,
        "mode_counts": counts.tolist(),
        "mode_kl": kl,
    }


def mode_metrics(samples: Any, centers: Any, sigma: float) -> dict[str, Any]:
    """High-quality share, modes covered (of ``len(centers)``) and mode KL of ``samples`` (N, 2)
    against the mixture ``centers`` (K, 2) with standard deviation ``sigma``. NaN samples are
    never high quality."""
    s = _np(samples, "samples", 2)
    c = _np(centers, "centers", 2)
    if s.shape[1] != c.shape[1]:
        raise ValueError(f"samples have {s.shape[1]} coordinates but centers have {c.shape[1]}")
    if not sigma > 0:
        raise ValueError(f"sigma must be > 0, got {sigma}")
    idx, dist = _nearest(np.nan_to_num(s, nan=np.inf), c)
    good = np.isfinite(dist) & (dist <= 3.0 * sigma)
    return _summary(idx, good, len(c))


def conditional_metrics(samples: Any, labels: Any, centers: Any, sigma: float) -> dict[str, Any]:
    """:func:`mode_metrics` plus ``in_requested_mode``: the share of samples within ``3σ`` of the
    center of their requested mode ``labels`` (N,) (a high-quality sample of that mode), and
    ``nearest_is_requested``: the share whose nearest mode is the requested one."""
    s = _np(samples, "samples", 2)
    y = _np(labels, "labels", 1).astype(np.int64)
    c = _np(centers, "centers", 2)
    if len(y) != len(s):
        raise ValueError(f"labels has {len(y)} entries for {len(s)} samples")
    out = mode_metrics(s, c, sigma)
    dist = np.linalg.norm(s.astype(np.float64) - c[y].astype(np.float64), axis=1)
    out["in_requested_mode"] = float(np.mean(np.nan_to_num(dist, nan=np.inf) <= 3.0 * sigma)) if len(s) else 0.0
    idx, _ = _nearest(np.nan_to_num(s, nan=np.inf), c)
    out["nearest_is_requested"] = float(np.mean((idx == y) & np.isfinite(s).all(axis=1))) if len(s) else 0.0
    return out


def curve_metrics(samples: Any, curve_points: Any, sigma: float) -> dict[str, Any]:
    """For a continuous data manifold sampled densely as ``curve_points`` (M, 2): the share of
    samples within ``3σ`` of it, and the mean distance to it."""
    s = np.nan_to_num(_np(samples, "samples", 2), nan=np.inf)
    c = _np(curve_points, "curve_points", 2)
    dmin = np.full(len(s), np.inf)
    for i in range(0, len(c), 2048):
        d = np.linalg.norm(s[:, None, :] - c[None, i : i + 2048, :], axis=-1).min(axis=1)
        dmin = np.minimum(dmin, d)
    return {
        "n_samples": len(s),
        "high_quality": float(np.mean(dmin <= 3.0 * sigma)) if len(s) else 0.0,
        "mean_distance": float(np.mean(dmin)) if len(s) else 0.0,
    }


_CLASSIFIER: list[Any] = []


def digit_classifier():
    """A logistic-regression classifier of the 8×8 digits scaled to [−1, 1] (fitted once)."""
    if not _CLASSIFIER:
        from sklearn.datasets import load_digits
        from sklearn.linear_model import LogisticRegression

        bunch = load_digits()
        x = bunch.data / 8.0 - 1.0
        clf = LogisticRegression(max_iter=2000, C=1.0)
        clf.fit(x, bunch.target)
        _CLASSIFIER.append(clf)
    return _CLASSIFIER[0]


def digit_metrics(samples: Any, labels: Any = None, threshold: float = 0.9) -> dict[str, Any]:
    """Digit samples (N, 1, 8, 8) in [−1, 1]: high quality when the classifier's top probability
    is ≥ ``threshold``; classes covered; with ``labels``, ``in_requested_mode`` is the share
    whose high-quality prediction is the requested class, ``nearest_is_requested`` the share
    predicted as the requested class at any confidence."""
    s = _np(samples, "samples").reshape(len(samples), -1).astype(np.float64)
    prob = digit_classifier().predict_proba(np.nan_to_num(s, nan=0.0))
    pred, top = prob.argmax(axis=1), prob.max(axis=1)
    good = (top >= threshold) & np.isfinite(s).all(axis=1)
    out = _summary(pred, good, 10)
    if labels is not None:
        y = _np(labels, "labels", 1).astype(np.int64)
        out["in_requested_mode"] = float(np.mean(good & (pred == y))) if len(y) else 0.0
        out["nearest_is_requested"] = float(np.mean(pred == y)) if len(y) else 0.0
    return out
