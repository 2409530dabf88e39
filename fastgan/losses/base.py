"""The interface of every loss object, :class:`GANLossBase`: the two losses, the step hook,
and the configuration kept in the ``state_dict`` (all-or-nothing loads). See
:mod:`fastgan.losses`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

__all__ = ["GANLossBase", "Logs"]

Logs = dict[str, torch.Tensor]


class GANLossBase(nn.Module):
    """The interface shared by every family (see the module docstring)."""

    #: registry name of the family
    name: str = ""
    #: discriminator/critic steps per generator step (the family's published default)
    n_critic: int = 1

    def hparams(self) -> dict[str, Any]:
        """The hyper-parameters this loss was built with (what :func:`create` takes)."""
        return {}

    def discriminator_loss(
        self, D: Callable[..., Any], real: torch.Tensor, fake: torch.Tensor, labels: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, Logs]:
        raise NotImplementedError

    def generator_loss(
        self, D: Callable[..., Any], fake: torch.Tensor, labels: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, Logs]:
        raise NotImplementedError

    def after_discriminator_step(self, D: nn.Module) -> None:
        """Called by the loop after each discriminator optimiser step (WGAN clips weights, BEGAN
        applies its update of k)."""

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError(
            f"call {type(self).__name__}.discriminator_loss(D, real, fake, labels=None) or "
            ".generator_loss(D, fake, labels=None)"
        )

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={val!r}" for k, val in self.hparams().items())

    # --- configuration in the state_dict ---------------------------------------------------
    def get_extra_state(self) -> dict[str, Any]:
        return {"loss": self.name, "hparams": self.hparams()}

    def set_extra_state(self, state: Any) -> None:
        self._check_config(state)

    def _upgrade_config(self, state: Any) -> Any:
        """A configuration saved by an earlier fastgan, as this version writes it."""
        return state

    def _check_config(self, state: Any) -> None:
        mine = self.get_extra_state()
        state = self._upgrade_config(state)
        try:
            same = bool(state == mine)
        except Exception:  # e.g. a tensor where a number belongs: not this configuration
            same = False
        if not same:
            raise ValueError(
                f"this state_dict was saved from a different loss configuration: it holds {state!r}, "
                f"this loss is {mine!r}; build the loss with fastgan.losses.create("
                "state['loss'], **state['hparams']) before loading"
            )

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):  # type: ignore[override]
        # Check the configuration first, so that a mismatch leaves the loss untouched. A state
        # that holds this loss's tensors (BEGAN's k) must hold its configuration too: without
        # it, nothing says the tensors belong to this configuration.
        key = prefix + "_extra_state"
        if key in state_dict:
            self._check_config(state_dict[key])
        else:
            own = [prefix + n for n in self._parameters] + [
                prefix + n for n in self._buffers if n not in self._non_persistent_buffers_set
            ]
            present = [k for k in own if k in state_dict]
            if present:
                raise ValueError(
                    f"this state_dict holds {', '.join(present)} but not the loss configuration "
                    f"({key!r}) they were saved with; load a state_dict saved by "
                    f"{type(self).__name__}.state_dict() (it holds both)"
                )
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):  # type: ignore[override]
        """``nn.Module.load_state_dict``, all or nothing: a load that raises (another
        configuration, a state without its configuration, a wrong shape, missing or unexpected
        keys with ``strict=True``) leaves every tensor of the loss as it was."""
        saved = [
            (m, dict(m._parameters), dict(m._buffers),
             {n: t.detach().clone() for n, t in [*m._parameters.items(), *m._buffers.items()] if t is not None})
            for m in self.modules()
        ]
        try:
            return super().load_state_dict(state_dict, strict=strict, assign=assign)
        except BaseException:
            with torch.no_grad():
                for m, params, buffers, values in saved:
                    m._parameters.clear()
                    m._parameters.update(params)
                    m._buffers.clear()
                    m._buffers.update(buffers)
                    for n, t in [*params.items(), *buffers.items()]:
                        if t is not None:
                            t.copy_(values[n])
            raise
