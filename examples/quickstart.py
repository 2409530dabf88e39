"""A short GAN training loop through fastgan's loss objects, on 8 Gaussians on a ring.

    python examples/quickstart.py --loss wgan-gp --steps 300

Every family runs through the same loop: ``fastgan.losses.create(name)`` gives the loss object,
``discriminator_loss`` / ``generator_loss`` give the losses and a dict of tensors to log, and
``after_discriminator_step`` applies WGAN's weight clipping. Losses stay on the device until the
loop decides to print them.
"""

from __future__ import annotations

import argparse
import math
import time

import torch
from torch import nn

import fastgan


def ring8(n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """n points from 8 Gaussians (σ = 0.02) on a circle of radius 2, with their mode index."""
    modes = torch.randint(0, 8, (n,), generator=generator)
    angle = modes.float() * (2 * math.pi / 8)
    centers = 2.0 * torch.stack([angle.cos(), angle.sin()], dim=1)
    return centers + 0.02 * torch.randn(n, 2, generator=generator), modes


def mlp(n_in: int, n_out: int, width: int = 128) -> nn.Sequential:
    return nn.Sequential(nn.Linear(n_in, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(), nn.Linear(width, n_out))


class AutoEncoder(nn.Module):
    """Discriminator of EBGAN/BEGAN: returns (reconstruction, embedding)."""

    def __init__(self, width: int = 128, code: int = 16):
        super().__init__()
        self.enc, self.dec = mlp(2, code, width), mlp(code, 2, width)

    def forward(self, x):
        h = self.enc(x)
        return self.dec(h), h


class Conditional(nn.Module):
    """Wraps a network so that it takes (x, labels): the one-hot label is concatenated to x."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x, labels):
        return self.net(torch.cat([x, nn.functional.one_hot(labels, 8).to(x.dtype)], dim=1))


def main(argv: list[str] | None = None) -> dict[str, float]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--loss", default="wgan-gp", choices=fastgan.losses.available())
    p.add_argument("--steps", type=int, default=300, help="generator steps")
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    torch.manual_seed(args.seed)
    data_rng = torch.Generator().manual_seed(args.seed)
    loss = fastgan.losses.create(args.loss)
    conditional = args.loss == "cgan"
    z_dim = 8
    G = mlp(z_dim + (8 if conditional else 0), 2)
    D: nn.Module = AutoEncoder() if args.loss in ("ebgan", "began") else mlp(2 + (8 if conditional else 0), 1)
    if conditional:
        G, D = Conditional(G), Conditional(D)
    if args.loss == "wgan":
        opt_d, opt_g = torch.optim.RMSprop(D.parameters(), lr=5e-5), torch.optim.RMSprop(G.parameters(), lr=5e-5)
    else:
        opt_d = torch.optim.Adam(D.parameters(), lr=1e-4, betas=(0.5, 0.9))
        opt_g = torch.optim.Adam(G.parameters(), lr=1e-4, betas=(0.5, 0.9))

    def generate(labels):
        z = torch.randn(args.batch, z_dim)
        return G(z, labels) if conditional else G(z)

    start = time.perf_counter()
    for step in range(1, args.steps + 1):
        for _ in range(loss.n_critic):
            real, modes = ring8(args.batch, data_rng)
            labels = modes if conditional else None
            with torch.no_grad():
                fake = generate(labels)
            d_loss, d_logs = loss.discriminator_loss(D, real, fake, labels)
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            opt_d.step()
            loss.after_discriminator_step(D)
        labels = modes if conditional else None
        g_loss, g_logs = loss.generator_loss(D, generate(labels), labels)
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
        if step % max(1, args.steps // 5) == 0 or step == args.steps:
            logs = {**d_logs, **g_logs}  # tensors until here: printing is the loop's choice
            print(f"step {step:5d}  " + "  ".join(f"{k} {v.item():+.4f}" for k, v in logs.items()))
    print(f"{args.loss}: {args.steps} generator steps in {time.perf_counter() - start:.1f} s")
    return {k: v.item() for k, v in {**d_logs, **g_logs}.items()}


if __name__ == "__main__":
    main()
