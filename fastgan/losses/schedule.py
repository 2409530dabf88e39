"""The order of the networks' steps: :func:`alternate`. See :mod:`fastgan.losses`."""

from __future__ import annotations

from collections.abc import Callable

import torch

__all__ = ["alternate"]


def alternate(
    n_critic: int,
    discriminator_step: Callable[[], dict[str, torch.Tensor]],
    generator_step: Callable[[], dict[str, torch.Tensor]],
) -> dict[str, torch.Tensor]:
    """One training step in the order the papers alternate the networks: ``n_critic``
    discriminator (critic) steps — a loss object's ``n_critic``: 5 for WGAN and WGAN-GP, 1
    otherwise — then one generator step. Returns the last discriminator step's logs merged with
    the generator step's (a name in both: the generator's).

    Each ``discriminator_step`` ends with the loss object's ``after_discriminator_step(D)``,
    after the optimiser step: WGAN clips D's weights there and BEGAN applies its update of k,
    once per step."""
    d_logs: dict[str, torch.Tensor] = {}
    for _ in range(n_critic):
        d_logs = discriminator_step()
    return {**d_logs, **generator_step()}
