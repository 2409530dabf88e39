"""The DCGAN-style WGAN-GP case of ``fastgan bench --e2e``: the end-to-end benchmark a user would
run, at the size of the public WGAN-GP MNIST script (Gulrajani et al. 2017, ``gan_mnist.py``)
with DCGAN's generator (Radford et al. 2016).

* data: 1×28×28 images (MNIST-sized), values in [-1, 1]; no download is possible here, so a
  fixed-seed random tensor of :data:`POOL` images stands in for the dataset (the timing of a
  step does not depend on the pixel values);
* critic: three strided convolutions 1→64→128→256 (4×4, 4×4, 3×3; 28→14→7→4) with LeakyReLU
  0.2 and a linear read-out, **no batch norm** (WGAN-GP's penalty is per sample; LayerNorm over
  each sample's C×H×W after the 2nd and 3rd convolution instead);
* generator: DCGAN conv-transpose stack from a latent of 100: 100→128 (7×7) → 64 (14×14) →
  1 (28×28), batch norm + ReLU in between, tanh out;
* batch 64, Adam(lr 1e-4, betas (0.5, 0.9)) for both, λ = 10, 5 critic steps per generator step.

:class:`DCGANTrainer` runs the steps through the loss object
``fastgan.losses.create("wgan-gp", gp_weight=λ, gp_interval=k)`` under
``fastgan.use_backend(backend)``, as :class:`fastgan.train.Trainer` does.
"""

from __future__ import annotations

import torch
from torch import nn

import fastgan
from fastgan import losses

SHAPE = (1, 28, 28)  #: one image
Z_DIM = 100
BATCH = 64
LR = 1e-4
BETAS = (0.5, 0.9)
GP_WEIGHT = 10.0
N_CRITIC = 5
POOL = 1024  #: images in the fixed-seed stand-in dataset
DESCRIPTION = "DCGAN conv, 1×28×28, batch 64"


class Critic(nn.Module):
    """DCGAN-style conv critic without batch norm: (B, 1, 28, 28) → (B, 1)."""

    def __init__(self, dim: int = 64) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, dim, 4, 2, 1),  # 14×14
            nn.LeakyReLU(0.2),
            nn.Conv2d(dim, 2 * dim, 4, 2, 1),  # 7×7
            nn.LayerNorm([2 * dim, 7, 7]),
            nn.LeakyReLU(0.2),
            nn.Conv2d(2 * dim, 4 * dim, 3, 2, 1),  # 4×4
            nn.LayerNorm([4 * dim, 4, 4]),
            nn.LeakyReLU(0.2),
            nn.Flatten(),
            nn.Linear(4 * dim * 4 * 4, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class Generator(nn.Module):
    """DCGAN conv-transpose generator: (B, 100) → (B, 1, 28, 28) in [-1, 1]."""

    def __init__(self, z_dim: int = Z_DIM, dim: int = 64) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.ConvTranspose2d(z_dim, 2 * dim, 7, 1, 0, bias=False),  # 7×7
            nn.BatchNorm2d(2 * dim),
            nn.ReLU(True),
            nn.ConvTranspose2d(2 * dim, dim, 4, 2, 1, bias=False),  # 14×14
            nn.BatchNorm2d(dim),
            nn.ReLU(True),
            nn.ConvTranspose2d(dim, 1, 4, 2, 1),  # 28×28
            nn.Tanh(),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z.reshape(z.shape[0], -1, 1, 1))


class DCGANTrainer:
    """The DCGAN WGAN-GP case on one backend with penalty interval ``gp_interval``.

    The same ``seed`` gives the same weights, batches and noise whatever the backend; the
    penalty's interpolation coefficients come from torch's global generator, seeded here (so a
    discriminator step right after building draws the same ones on every backend)."""

    def __init__(self, backend: str = "reference", *, gp_interval: int = 1, seed: int = 0, device: str = "cpu",
                 batch_size: int | None = None, pool: int = POOL) -> None:
        with fastgan.use_backend(backend):  # validates the name
            pass
        self.backend, self.device = backend, torch.device(device)
        self.batch_size = batch_size if batch_size is not None else BATCH
        self.n_critic = N_CRITIC
        torch.manual_seed(seed)
        self.G = Generator().to(self.device)
        self.D = Critic().to(self.device)
        self.loss = losses.create("wgan-gp", gp_weight=GP_WEIGHT, gp_interval=gp_interval).to(self.device)
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=LR, betas=BETAS)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=LR, betas=BETAS)
        g = torch.Generator().manual_seed(seed + 1)
        self.data = (torch.rand((pool, *SHAPE), generator=g) * 2 - 1).to(self.device)
        self.data_gen = torch.Generator(self.device).manual_seed(seed + 2)
        self.noise_gen = torch.Generator(self.device).manual_seed(seed + 3)
        torch.manual_seed(seed + 4)

    def _noise(self) -> torch.Tensor:
        return torch.randn(self.batch_size, Z_DIM, generator=self.noise_gen, device=self.device)

    def _real(self) -> torch.Tensor:
        idx = torch.randint(self.data.shape[0], (self.batch_size,), generator=self.data_gen, device=self.device)
        return self.data.index_select(0, idx)

    def discriminator_step(self) -> dict[str, torch.Tensor]:
        """One critic update (real batch, fake batch from G without gradient, loss, backward,
        Adam step); 0-dim tensor logs, no host sync."""
        with fastgan.use_backend(self.backend):
            real = self._real()
            with torch.no_grad():
                fake = self.G(self._noise())
            self.opt_d.zero_grad(set_to_none=True)
            loss, logs = self.loss.discriminator_loss(self.D, real, fake)
            loss.backward()
            self.opt_d.step()
        return logs

    def generator_step(self) -> dict[str, torch.Tensor]:
        """One generator update (the critic's parameters frozen meanwhile)."""
        with fastgan.use_backend(self.backend):
            self.D.requires_grad_(False)
            try:
                g_loss, logs = self.loss.generator_loss(self.D, self.G(self._noise()))
                self.opt_g.zero_grad(set_to_none=True)
                g_loss.backward()
                self.opt_g.step()
            finally:
                self.D.requires_grad_(True)
        return logs

    def train_step(self) -> dict[str, torch.Tensor]:
        """``n_critic`` (5) critic steps, then one generator step: one full step."""
        return losses.alternate(self.n_critic, self.discriminator_step, self.generator_step)
