"""The families whose D is an autoencoder: EBGAN (energy, pulling-away term) and BEGAN (with
its k state, kept in float32 or float64). See :mod:`fastgan.losses`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from fastgan import _deprecation as deprecation
from fastgan import _validation as v
from fastgan import functional as FG
from fastgan.losses.base import GANLossBase

__all__ = ["EBGANLoss", "BEGANLoss"]


def _autoencode(D: Callable[..., Any], x: torch.Tensor, labels: torch.Tensor | None, *, extra_items: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(reconstruction, embedding or None)`` from an autoencoder discriminator, which returns
    the reconstruction, or ``(reconstruction, embedding)`` — or, when ``extra_items``, any tuple
    or list whose first item is the reconstruction (the embedding is then its second item when
    that is a tensor)."""
    out = D(x) if labels is None else D(x, labels)
    if isinstance(out, torch.Tensor):
        return out, None
    if isinstance(out, (tuple, list)) and out and isinstance(out[0], torch.Tensor):
        if len(out) == 2 and isinstance(out[1], torch.Tensor):
            return out[0], out[1]
        if extra_items:
            return out[0], out[1] if len(out) > 1 and isinstance(out[1], torch.Tensor) else None
    expected = (
        "the reconstruction, or a tuple/list whose first item is the reconstruction"
        if extra_items
        else "the reconstruction or a pair (reconstruction, embedding) of tensors"
    )
    got = type(out).__name__
    if isinstance(out, (tuple, list)):
        got = f"a {got} of {len(out)} item(s): ({', '.join(type(o).__name__ for o in out)})"
    raise TypeError(f"an autoencoder discriminator must return {expected}, got {got}")


def _save_legacy_update(module: "BEGANLoss", prefix: str, keep_vars: bool) -> None:
    """Before a ``state_dict`` is taken, the update fastgan 0.x would already have applied (a
    loss driven without :meth:`BEGANLoss.after_discriminator_step`): saved k is the same."""
    module._apply_legacy_update()


class EBGANLoss(GANLossBase):
    """EBGAN (eq. 7, 8) with an autoencoder D and the energy ``E(v)_b = mean_i (v − AE(v))²``.

    Discriminator: ``mean(E(x)) + mean(max(0, margin − E(G(z))))``. Generator:
    ``mean(E(G(z))) + pt_weight · PT(S)`` where S are the encoder embeddings of G(z), so D must
    return ``(reconstruction, embedding)`` while ``pt_weight > 0`` (set ``pt_weight=0`` for
    EBGAN without the pulling-away term). ``margin`` is on the scale of the energies: choose it
    for the data (the default 1.0 suits inputs in [−1, 1])."""

    name = "ebgan"

    def __init__(self, margin: float = 1.0, pt_weight: float = 0.1) -> None:
        super().__init__()
        self.margin = v.check_nonneg("margin", margin)
        self.pt_weight = v.check_nonneg("pt_weight", pt_weight)

    def hparams(self):
        return {"margin": self.margin, "pt_weight": self.pt_weight}

    @staticmethod
    def _energy(D, x, labels):
        recon, emb = _autoencode(D, x, labels, extra_items=False)
        return FG.reconstruction_error(x, recon, p=2), emb

    def discriminator_loss(self, D, real, fake, labels=None):
        real_energy, _ = self._energy(D, real, labels)
        fake_energy, _ = self._energy(D, fake.detach(), labels)
        loss = FG.ebgan_discriminator_loss(real_energy, fake_energy, self.margin)
        logs = {
            "d_loss": loss.detach(),
            "energy_real": real_energy.detach().mean(),
            "energy_fake": fake_energy.detach().mean(),
        }
        return loss, logs

    def generator_loss(self, D, fake, labels=None):
        fake_energy, emb = self._energy(D, fake, labels)
        if self.pt_weight > 0 and emb is None:
            raise ValueError(
                "the ebgan loss with pt_weight > 0 needs the encoder embedding: make D return "
                "(reconstruction, embedding), or build the loss with pt_weight=0"
            )
        loss = FG.ebgan_generator_loss(fake_energy, emb if self.pt_weight > 0 else None, self.pt_weight)
        logs = {"g_loss": loss.detach()}
        if self.pt_weight > 0:
            logs["pt"] = FG.pulling_away_term(emb.detach())  # type: ignore[union-attr]
        return loss, logs


class BEGANLoss(GANLossBase):
    """BEGAN (eq. 9) with an autoencoder D and ``L(v)_b = mean_i |v − AE(v)|`` (η = 1).

    ``D(x)`` returns the reconstruction, or a tuple or list whose first item is the
    reconstruction (the other items, e.g. an embedding, are ignored).

    Discriminator: ``mean(L(x)) − k_t · mean(L(G(z)))``; generator: ``mean(L(G(z)))``. ``k_t`` is
    a registered buffer (saved in the ``state_dict``, moved with ``.to(device)``), updated once
    per discriminator step, on the device:
    ``k_{t+1} = clamp(k_t + lambda_k (γ·mean L(x) − mean L(G(z))), 0, 1)``.

    In training mode :meth:`discriminator_loss` uses ``k_t``, computes ``k_{t+1}`` (the
    :attr:`pending_k`) and logs ``M_global`` as ``convergence``; :meth:`after_discriminator_step`
    — which the training loop calls after each discriminator optimiser step — applies it
    (:meth:`update_k` does the same for a loop of one's own). Until then k stays ``k_t``, so a
    second ``discriminator_loss`` call in the same step (for logging, say) uses the same k and
    replaces the pending update instead of adding a second one. In eval mode nothing is pending.

    Deprecated: fastgan 0.x updated k inside every training-mode ``discriminator_loss`` call. A
    loss whose ``after_discriminator_step``/``update_k`` has never been called keeps that
    behaviour: a ``discriminator_loss`` call (or a ``state_dict``) that finds an update pending
    applies it first, with a ``DeprecationWarning`` (outside ``torch.compile``), so k follows the
    same sequence. Until its first ``after_discriminator_step`` the loss therefore cannot tell a
    repeated call in the first step from the next step's call; ``update_k()`` with nothing
    pending (a no-op on k) declares the once-per-step protocol from the start.

    k stays in float32 (or float64) whatever the module's dtype: ``.half()``, ``.bfloat16()``,
    ``.to(torch.float16)`` or casting a model that holds the loss moves k to the new device but
    leaves its precision alone — its updates (``lambda_k`` × a balance, ~1e-4) would round away
    in a 16-bit k and freeze it."""

    name = "began"

    k: torch.Tensor
    # class-level defaults too: a BEGANLoss pickled whole by an earlier fastgan lacks them
    _pending_k: torch.Tensor | None = None
    _explicit_updates: bool = False

    def __init__(self, gamma: float = 0.5, lambda_k: float = 0.001, k0: float = 0.0) -> None:
        super().__init__()
        self.gamma = v.check_nonneg("gamma", gamma)
        self.lambda_k = v.check_nonneg("lambda_k", lambda_k)
        self.k0 = v.check_unit_interval("k0", k0)
        self.register_buffer("k", torch.tensor(self.k0, dtype=torch.float32))
        self._pending_k = None  # k_{t+1} of the last training-mode call
        self._explicit_updates = False  # after_discriminator_step / update_k has been called
        self.register_state_dict_pre_hook(_save_legacy_update)

    def hparams(self):
        return {"gamma": self.gamma, "lambda_k": self.lambda_k, "k0": self.k0}

    @staticmethod
    def _precise(t: torch.Tensor) -> torch.Tensor:
        """``t`` in float32 or float64 (its own dtype when it is one of them)."""
        if t.dtype in (torch.float32, torch.float64):
            return t
        return t.to(torch.float32)

    def _apply(self, fn, recurse=True):  # type: ignore[override]
        # Float casts of the module (.half(), .to(dtype), .type(...)) do not lower k's precision;
        # device moves (and every other conversion) apply to it as to any buffer.
        k = self._buffers.get("k")

        def keep_k_precise(t):
            out = fn(t)
            if t is k and isinstance(out, torch.Tensor) and out.dtype not in (torch.float32, torch.float64):
                keep = torch.promote_types(t.dtype, torch.float32) if t.is_floating_point() else torch.float32
                out = t.to(device=out.device, dtype=keep)
            return out

        return super()._apply(keep_k_precise, recurse)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):  # type: ignore[override]
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        self._pending_k = None  # the loaded k is the state: no update of the old one applies
        k = self._buffers.get("k")
        if k is not None and k.dtype not in (torch.float32, torch.float64):  # assign=True of a 16-bit k
            self._buffers["k"] = self._precise(k)

    @staticmethod
    def _error(D, x, labels):
        recon, _ = _autoencode(D, x, labels, extra_items=True)
        return FG.reconstruction_error(x, recon, p=1)

    @property
    def pending_k(self) -> torch.Tensor | None:
        """``k_{t+1}`` computed by the last training-mode :meth:`discriminator_loss` and not
        applied yet (``None``: nothing pending)."""
        return self._pending_k

    def update_k(self, k_next: torch.Tensor | None = None) -> None:
        """Apply the pending update of k (:attr:`pending_k`), or set k to ``k_next`` (a 0-dim
        tensor, e.g. an update from the means of every rank's errors), on the device; either way
        nothing stays pending. Call it once per discriminator step (after the optimiser step);
        :meth:`after_discriminator_step` calls it."""
        self._explicit_updates = True
        value = self._pending_k if k_next is None else k_next
        self._pending_k = None
        if value is not None:
            with torch.no_grad():
                self.k.copy_(value)

    def after_discriminator_step(self, D) -> None:
        """Apply this step's update of k (:meth:`update_k`)."""
        self.update_k()

    def _apply_legacy_update(self) -> None:
        """fastgan 0.x's protocol (k updated by every training-mode discriminator_loss call):
        the update still pending from the previous call, applied now."""
        if self._pending_k is None or self._explicit_updates:
            return
        deprecation.warn(
            "BEGANLoss: the update of k computed by the previous discriminator_loss call was still "
            "pending and is applied now, as fastgan 0.x did inside every discriminator_loss call "
            "(deprecated): call loss.after_discriminator_step(D) (or loss.update_k()) once after "
            "each discriminator step",
            3,
        )
        with torch.no_grad():
            self.k.copy_(self._pending_k)
        self._pending_k = None

    def discriminator_loss(self, D, real, fake, labels=None):
        """``(loss, logs)`` with this step's ``k_t``; in training mode ``k_{t+1}`` becomes
        :attr:`pending_k`, applied by :meth:`after_discriminator_step` (see the class)."""
        real_error = self._error(D, real, labels)
        fake_error = self._error(D, fake.detach(), labels)
        if self.k.device != real_error.device:
            raise ValueError(
                f"the began loss keeps k on {self.k.device} but the inputs are on "
                f"{real_error.device}; move the loss with loss.to(device)"
            )
        if self.training:
            self._apply_legacy_update()
        k = self.k.clone()  # the k this step uses (the buffer changes in place later)
        loss = FG.began_discriminator_loss(real_error, fake_error, k)
        k_next, convergence = FG.began_update(k, real_error, fake_error, self.gamma, self.lambda_k)
        if self.training:
            self._pending_k = k_next
        logs = {
            "d_loss": loss.detach(),
            "loss_real": real_error.detach().mean(),
            "loss_fake": fake_error.detach().mean(),
            "k": k,
            "convergence": convergence,
        }
        return loss, logs

    def generator_loss(self, D, fake, labels=None):
        loss = FG.began_generator_loss(self._error(D, fake, labels))
        return loss, {"g_loss": loss.detach()}
