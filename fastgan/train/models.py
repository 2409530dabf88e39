"""Networks of ``fastgan train``.

Toy 2-D data: MLPs (ReLU generator, LeakyReLU discriminator; no batch-coupling layers, so
WGAN-GP's per-sample gradient penalty and DDP are exact), working at unit scale inside: D
divides its input by the dataset's fixed ``scale`` (its standard deviation per coordinate), G
multiplies its output by it. 8×8 digits: a small conv net.
EBGAN/BEGAN use autoencoder discriminators that return ``(reconstruction, embedding)``.

Conditional models (CGAN) take ``(x, labels)``: the one-hot label is concatenated to the input
of every network (to z for G; as extra input features, or constant image channels, for D).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["build_models", "spectral_normalize", "MLP", "MLPAutoEncoder", "ConvGenerator", "ConvDiscriminator", "ConvAutoEncoder"]


def _mlp(n_in: int, n_out: int, width: int, depth: int, act: type[nn.Module]) -> nn.Sequential:
    layers: list[nn.Module] = []
    d = n_in
    for _ in range(depth):
        layers += [nn.Linear(d, width), act()]
        d = width
    layers.append(nn.Linear(d, n_out))
    return nn.Sequential(*layers)


class _LeakyReLU(nn.LeakyReLU):
    def __init__(self) -> None:
        super().__init__(0.2)


def _with_labels(x: torch.Tensor, labels: torch.Tensor | None, n_classes: int) -> torch.Tensor:
    if n_classes == 0:
        return x
    if labels is None:
        raise ValueError("this network is conditional: call it with (x, labels)")
    onehot = F.one_hot(labels, n_classes).to(x.dtype)
    if x.dim() == 4:  # images: constant label channels
        onehot = onehot[:, :, None, None].expand(-1, -1, x.shape[2], x.shape[3])
    return torch.cat([x, onehot], dim=1)


class MLP(nn.Module):
    """``x (+ one-hot label) → [Linear, act] × depth → Linear``, with fixed scalings:
    ``in_scale`` divides the input (a discriminator sees data of unit scale), ``out_scale``
    multiplies the output (a generator's unit-scale output is mapped to the data's scale).
    Both are constants of the architecture, not trained: the losses and penalties see the
    data in its own units."""

    def __init__(self, n_in: int, n_out: int, width: int, depth: int, n_classes: int = 0, leaky: bool = False,
                 in_scale: float = 1.0, out_scale: float = 1.0) -> None:
        super().__init__()
        self.n_classes = n_classes
        self.in_scale, self.out_scale = float(in_scale), float(out_scale)
        self.net = _mlp(n_in + n_classes, n_out, width, depth, _LeakyReLU if leaky else nn.ReLU)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.in_scale != 1.0:
            x = x / self.in_scale
        y = self.net(_with_labels(x, labels, self.n_classes))
        return y * self.out_scale if self.out_scale != 1.0 else y


class MLPAutoEncoder(nn.Module):
    """Autoencoder discriminator for 2-D data: returns ``(reconstruction, embedding)``.

    ``code`` is the embedding's dimension. With ``code >= 2`` (more than the data's own
    dimension) the autoencoder can learn the identity and reconstruct any point of the plane,
    real or generated, equally well (see docs/train-recipes.md); a bottleneck (``code = 1``)
    makes it reconstruct well only along a curve it fits to the data."""

    def __init__(self, width: int, depth: int, code: int = 16, n_classes: int = 0, scale: float = 1.0) -> None:
        super().__init__()
        self.n_classes, self.scale = n_classes, float(scale)
        self.encoder = _mlp(2 + n_classes, code, width, depth, _LeakyReLU)
        self.decoder = _mlp(code + n_classes, 2, width, depth, _LeakyReLU)

    def forward(self, x, labels=None):
        code = self.encoder(_with_labels(x / self.scale, labels, self.n_classes))
        return self.decoder(_with_labels(code, labels, self.n_classes)) * self.scale, code


class ConvGenerator(nn.Module):
    """z (+ one-hot) → 4c×2×2 → 2c×4×4 → c×8×8 → 1×8×8 (tanh)."""

    def __init__(self, z_dim: int, channels: int, n_classes: int = 0) -> None:
        super().__init__()
        c = channels
        self.n_classes, self.c = n_classes, c
        self.fc = nn.Linear(z_dim + n_classes, 4 * c * 2 * 2)
        self.up1 = nn.ConvTranspose2d(4 * c, 2 * c, 4, 2, 1)
        self.up2 = nn.ConvTranspose2d(2 * c, c, 4, 2, 1)
        self.out = nn.Conv2d(c, 1, 3, 1, 1)

    def forward(self, z, labels=None):
        h = F.relu(self.fc(_with_labels(z, labels, self.n_classes))).view(-1, 4 * self.c, 2, 2)
        h = F.relu(self.up2(F.relu(self.up1(h))))
        return torch.tanh(self.out(h))


class _ConvEncoder(nn.Module):
    def __init__(self, n_in: int, channels: int, n_out: int) -> None:
        super().__init__()
        c = channels
        self.conv1 = nn.Conv2d(n_in, c, 3, 1, 1)
        self.conv2 = nn.Conv2d(c, 2 * c, 4, 2, 1)  # 4x4
        self.conv3 = nn.Conv2d(2 * c, 4 * c, 4, 2, 1)  # 2x2
        self.fc = nn.Linear(4 * c * 2 * 2, n_out)

    def forward(self, x):
        h = F.leaky_relu(self.conv1(x), 0.2)
        h = F.leaky_relu(self.conv2(h), 0.2)
        h = F.leaky_relu(self.conv3(h), 0.2)
        return self.fc(h.flatten(1))


class ConvDiscriminator(nn.Module):
    """1×8×8 (+ label channels) → c×8×8 → 2c×4×4 → 4c×2×2 → score (B, 1)."""

    def __init__(self, channels: int, n_classes: int = 0) -> None:
        super().__init__()
        self.n_classes = n_classes
        self.body = _ConvEncoder(1 + n_classes, channels, 1)

    def forward(self, x, labels=None):
        return self.body(_with_labels(x, labels, self.n_classes))


class ConvAutoEncoder(nn.Module):
    """Autoencoder discriminator for digits: returns ``(reconstruction, embedding)``."""

    def __init__(self, channels: int, code: int = 32, n_classes: int = 0) -> None:
        super().__init__()
        self.n_classes = n_classes
        self.encoder = _ConvEncoder(1 + n_classes, channels, code)
        self.decoder = ConvGenerator(code, channels, n_classes)

    def forward(self, x, labels=None):
        code = self.encoder(_with_labels(x, labels, self.n_classes))
        d = self.decoder
        h = F.relu(d.fc(_with_labels(code, labels, self.n_classes))).view(-1, 4 * d.c, 2, 2)
        h = F.relu(d.up2(F.relu(d.up1(h))))
        return d.out(h), code


def spectral_normalize(net: nn.Module) -> nn.Module:
    """Put every ``nn.Linear`` and ``nn.Conv2d`` of ``net`` under spectral normalisation
    (:func:`torch.nn.utils.parametrizations.spectral_norm`, one power iteration per forward in
    training mode), in place; returns ``net``. SNGAN (Miyato et al. 2018) and SAGAN normalise
    every layer of D this way."""
    from torch.nn.utils.parametrizations import spectral_norm

    for module in list(net.modules()):
        if isinstance(module, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
            spectral_norm(module)
    return net


def build_models(data, loss_name: str, *, z_dim: int, width: int, depth: int, conditional: bool,
                 spectral_norm: bool = False, ae_code: int = 16) -> tuple[nn.Module, nn.Module]:
    """``(G, D)`` for dataset ``data`` (a :class:`fastgan.train.data.Dataset`) and family
    ``loss_name``: autoencoder D for ebgan/began; conditional networks when ``conditional``.
    ``width`` is the MLP width (2-D data) or the base channel count (digits).
    ``spectral_norm``: every linear/conv layer of D spectrally normalised
    (:func:`spectral_normalize`). ``ae_code``: the embedding size of the 2-D autoencoder D
    (ebgan/began; the digits' conv autoencoder keeps its own)."""
    k = data.n_classes if conditional else 0
    autoencoder = loss_name in ("ebgan", "began")
    if data.image:
        G: nn.Module = ConvGenerator(z_dim, width, k)
        D: nn.Module = ConvAutoEncoder(width, n_classes=k) if autoencoder else ConvDiscriminator(width, k)
    else:
        scale = data.scale
        G = MLP(z_dim, 2, width, depth, k, out_scale=scale)
        D = (
            MLPAutoEncoder(width, depth, code=ae_code, n_classes=k, scale=scale)
            if autoencoder
            else MLP(2, 1, width, depth, k, leaky=True, in_scale=scale)
        )
    if spectral_norm:
        spectral_normalize(D)
    return G, D
