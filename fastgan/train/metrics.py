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

**Quality targets** (:data:`TARGETS`, the one table of them): what a run of ``fastgan train``
must reach on its dataset. ``fastgan train`` evaluates on a schedule while it trains (the
*curve*, see :mod:`fastgan.train.loop`); :func:`first_reached` finds the first point of the curve
that meets a target — the run's *time to quality* in training seconds and generator steps.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

__all__ = [
    "mode_metrics",
    "conditional_metrics",
    "curve_metrics",
    "digit_metrics",
    "digit_classifier",
    "Target",
    "TARGETS",
    "targets_for",
    "first_reached",
    "target_report",
    "curve_measures",
]


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
    samples within ``3σ`` of it, and the mean distance to it (exact nearest-point distances; a
    k-d tree where SciPy is installed, else a chunked brute force). A sample with a NaN or
    infinite coordinate is at distance ``inf`` (never high quality)."""
    s = _np(samples, "samples", 2).astype(np.float64)
    c = _np(curve_points, "curve_points", 2).astype(np.float64)
    dmin = np.full(len(s), np.inf)
    ok = np.isfinite(s).all(axis=1)
    if ok.any() and len(c):
        dmin[ok] = _nearest_distance(s[ok], c)
    return {
        "n_samples": len(s),
        "high_quality": float(np.mean(dmin <= 3.0 * sigma)) if len(s) else 0.0,
        "mean_distance": float(np.mean(dmin)) if len(s) else 0.0,
    }


def _nearest_distance(s: np.ndarray, c: np.ndarray) -> np.ndarray:
    """The distance from each finite row of ``s`` to its nearest row of ``c``."""
    try:
        from scipy.spatial import cKDTree
    except ImportError:
        cKDTree = None
    if cKDTree is not None:
        return cKDTree(c).query(s)[0]
    dmin = np.full(len(s), np.inf)
    for i in range(0, len(c), 2048):
        d = np.linalg.norm(s[:, None, :] - c[None, i : i + 2048, :], axis=-1).min(axis=1)
        dmin = np.minimum(dmin, d)
    return dmin


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


# --------------------------------------------------------------------------- quality targets
@dataclasses.dataclass(frozen=True)
class Target:
    """A quality target: every threshold given must be met (``None``: not part of it).

    ``modes``: at least this many modes (classes, on digits) covered; ``high_quality``: at least
    this share of high-quality samples; ``in_requested_mode``: at least this share of
    conditional samples in the requested mode (class)."""

    name: str
    modes: int | None = None
    high_quality: float | None = None
    in_requested_mode: float | None = None

    def requires(self) -> dict[str, float]:
        """The thresholds, by metric name."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if f.name != "name" and getattr(self, f.name) is not None}

    def met(self, metrics: Mapping[str, Any]) -> bool:
        """Whether ``metrics`` (a :func:`mode_metrics`-style dict, or a point of the curve) meets
        every threshold; a metric that is missing or ``None`` does not."""
        for key, need in self.requires().items():
            val = metrics.get(key)
            if val is None or isinstance(val, bool) or not val >= need:
                return False
        return True

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "requires": self.requires()}


#: The quality targets of ``fastgan train``, by (family, dataset); ``"*"`` is every family
#: without an entry of its own. The first target of a run is *its* target (the one
#: ``time_to_target`` reports, comparable across the families on a dataset); further entries
#: are reported alongside. docs/train.md has this table.
#:
#: * ring8: all 8 modes and >= 80 % high quality; grid25: >= 24/25 and >= 80 % (WGAN-GP on
#:   grid25 also: 25/25 and >= 90 %, the issue's stricter bar for it).
#: * cgan on ring8 / grid25: >= 95 % of the samples within 3σ of the requested mode.
#: * swissroll: >= 80 % of the samples within 3σ of the curve (as the 2-D mixtures).
#: * digits: all 10 classes and >= 80 % high quality (the classifier >= 90 % sure); cgan >= 80 %
#:   in the requested class. 2500 real digits score 88.6 % on both measures (the classifier is
#:   unsure of 11 % of them), so 95 % is out of reach there; 80 % is about 90 % of the real score.
TARGETS: dict[tuple[str, str], tuple[Target, ...]] = {
    ("*", "ring8"): (Target("8/8 modes, >= 80% high quality", modes=8, high_quality=0.80),),
    ("*", "grid25"): (Target(">= 24/25 modes, >= 80% high quality", modes=24, high_quality=0.80),),
    ("wgan-gp", "grid25"): (
        Target(">= 24/25 modes, >= 80% high quality", modes=24, high_quality=0.80),
        Target("25/25 modes, >= 90% high quality", modes=25, high_quality=0.90),
    ),
    ("*", "swissroll"): (Target(">= 80% within 3 sigma of the curve", high_quality=0.80),),
    ("*", "digits"): (Target("10/10 classes, >= 80% high quality", modes=10, high_quality=0.80),),
    ("cgan", "ring8"): (Target(">= 95% in the requested mode", in_requested_mode=0.95),),
    ("cgan", "grid25"): (Target(">= 95% in the requested mode", in_requested_mode=0.95),),
    ("cgan", "digits"): (Target(">= 80% in the requested class", in_requested_mode=0.80),),
}


def targets_for(loss: str, data: str) -> tuple[Target, ...]:
    """The targets of ``loss`` on ``data`` (:data:`TARGETS`; the first is the run's target);
    ``()`` for a dataset without targets."""
    return TARGETS.get((loss, data), TARGETS.get(("*", data), ()))


def first_reached(curve: Iterable[Mapping[str, Any]], target: Target) -> Mapping[str, Any] | None:
    """The first point of ``curve`` (points in step order, each with ``step``,
    ``train_seconds`` and the metrics) that meets ``target``; ``None`` if none does."""
    for point in curve:
        if target.met(point):
            return point
    return None


def target_report(curve: Sequence[Mapping[str, Any]], targets: Iterable[Target],
                  final: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """For each target: its name and thresholds, ``step`` and ``train_seconds`` of the first
    point of ``curve`` that meets it (``None``: not reached, or no curve — ``measured`` says
    which), and ``met_at_end`` (whether the ``final`` metrics meet it; ``None`` without them)."""
    rows = []
    for t in targets:
        hit = first_reached(curve, t)
        rows.append({
            **t.to_dict(),
            "measured": bool(curve),
            "reached": hit is not None,
            "step": None if hit is None else int(hit["step"]),
            "train_seconds": None if hit is None else float(hit["train_seconds"]),
            "met_at_end": None if final is None else t.met(final),
        })
    return rows


def curve_measures(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """The scalar quality measures of ``metrics`` that a point of the curve keeps (modes,
    n_modes, high_quality, mode_kl, in_requested_mode, nearest_is_requested, mean_distance,
    finite): everything but the sample count and the per-mode counts."""
    return {k: v for k, v in metrics.items() if k not in ("n_samples", "mode_counts")
            and (v is None or isinstance(v, (bool, int, float)))}
