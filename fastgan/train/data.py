"""Training data of ``fastgan train``, generated in code (no download).

* ``ring8``: 8 Gaussians (σ = 0.02) on a circle of radius 2.
* ``grid25``: 25 Gaussians (σ = 0.05) at {−4, −2, 0, 2, 4}².
* ``swissroll``: a 2-D Swiss roll, ``t·(cos t, sin t)/5`` with t ~ U[1.5π, 4.5π] and
  Gaussian noise σ = 0.05 (a continuous manifold: no modes).
* ``digits``: scikit-learn's bundled 8×8 handwritten digits (1797 images, 10 classes),
  scaled to [−1, 1], shape (1, 8, 8).

Every dataset samples batches with an explicit :class:`torch.Generator` (on the generator's
device), so the training loop
owns (and checkpoints) the data stream; sampling never synchronises with the device. The
label of a sample is its mode (ring8, grid25) or digit class (digits): CGAN conditions on it.
"""

from __future__ import annotations

import math

import torch

__all__ = ["Dataset", "DATASETS", "N_CLASSES", "NEEDS", "create"]

DATASETS = ("ring8", "grid25", "swissroll", "digits")
#: the labels of each dataset (what CGAN conditions on; 0: unlabelled), known without building it
N_CLASSES = {"ring8": 8, "grid25": 25, "swissroll": 0, "digits": 10}
#: the optional package a dataset needs (its images and its metric's classifier)
NEEDS = {"digits": "sklearn"}


class Dataset:
    """A data source: ``sample(n, generator) -> (x, labels)``.

    Attributes: ``name``; ``shape`` (of one sample); ``n_classes`` (labels for CGAN; 0 when the
    data has none); ``centers`` (K, 2) and ``sigma`` for mixtures of Gaussians (``None``
    otherwise); ``image`` (True for digits).
    """

    name: str = ""
    shape: tuple[int, ...] = (2,)
    n_classes: int = 0
    centers: torch.Tensor | None = None
    sigma: float = 0.0
    image: bool = False
    #: the data's standard deviation per coordinate (rounded), for the networks' fixed scaling
    scale: float = 1.0

    def sample(self, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor | None]:
        raise NotImplementedError

    def sample_labels(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """Labels drawn as the data draws them (uniform over the classes)."""
        if self.n_classes == 0:
            raise ValueError(f"the {self.name} data has no labels to condition on")
        return torch.randint(0, self.n_classes, (n,), generator=generator, device=generator.device)


class GaussianMixture(Dataset):
    """Equal-weight isotropic Gaussians at ``centers`` with standard deviation ``sigma``."""

    def __init__(self, name: str, centers: torch.Tensor, sigma: float) -> None:
        self.name, self.centers, self.sigma = name, centers.to(torch.float32), float(sigma)
        self.n_classes = int(centers.shape[0])

    def sample(self, n, generator):
        labels = torch.randint(0, self.n_classes, (n,), generator=generator, device=generator.device)
        return self.sample_given(labels, generator), labels

    def sample_given(self, labels: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Points of the requested modes."""
        noise = torch.randn(labels.shape[0], 2, generator=generator, device=generator.device)
        return self.centers.to(generator.device)[labels] + self.sigma * noise


def ring8() -> GaussianMixture:
    angle = torch.arange(8, dtype=torch.float64) * (2 * math.pi / 8)
    centers = 2.0 * torch.stack([angle.cos(), angle.sin()], dim=1)
    d = GaussianMixture("ring8", centers, 0.02)
    d.scale = math.sqrt(2.0)
    return d


def grid25() -> GaussianMixture:
    axis = torch.tensor([-4.0, -2.0, 0.0, 2.0, 4.0])
    centers = torch.cartesian_prod(axis, axis)
    d = GaussianMixture("grid25", centers, 0.05)
    d.scale = math.sqrt(8.0)
    return d


class SwissRoll(Dataset):
    """``t·(cos t, sin t)/5 + σ·noise``, t ~ U[1.5π, 4.5π], σ = 0.05."""

    name = "swissroll"
    sigma = 0.05
    scale = 1.4
    t_range = (1.5 * math.pi, 4.5 * math.pi)

    @classmethod
    def curve(cls, t: torch.Tensor) -> torch.Tensor:
        return torch.stack([t * t.cos(), t * t.sin()], dim=-1) / 5.0

    def sample(self, n, generator):
        lo, hi = self.t_range
        dev = generator.device
        t = lo + (hi - lo) * torch.rand(n, generator=generator, device=dev)
        return self.curve(t) + self.sigma * torch.randn(n, 2, generator=generator, device=dev), None


class Digits(Dataset):
    """scikit-learn's bundled 8×8 digits in [−1, 1], shape (1, 8, 8), labels 0–9."""

    name = "digits"
    shape = (1, 8, 8)
    n_classes = 10
    image = True

    def __init__(self) -> None:
        from sklearn.datasets import load_digits

        bunch = load_digits()
        self.images = torch.as_tensor(bunch.images, dtype=torch.float32).div(8.0).sub(1.0).unsqueeze(1)
        self.labels = torch.as_tensor(bunch.target, dtype=torch.int64)

    def sample(self, n, generator):
        dev = generator.device
        if self.images.device != dev:
            self.images, self.labels = self.images.to(dev), self.labels.to(dev)
        idx = torch.randint(0, self.images.shape[0], (n,), generator=generator, device=dev)
        return self.images[idx], self.labels[idx]


def create(name: str) -> Dataset:
    """The dataset called ``name`` (one of :data:`DATASETS`)."""
    if name == "ring8":
        return ring8()
    if name == "grid25":
        return grid25()
    if name == "swissroll":
        return SwissRoll()
    if name == "digits":
        return Digits()
    raise ValueError(f"unknown data {name!r}; expected one of {', '.join(DATASETS)}")
