"""Loss objects: one ``nn.Module`` per GAN family behind one interface.

A training loop drives every family the same way::

    loss = fastgan.losses.create("wgan-gp")          # or "gan", "cgan", "wgan", "ebgan", ...
    for step in range(steps):
        for _ in range(loss.n_critic):
            fake = G(z)
            d_loss, d_logs = loss.discriminator_loss(D, real, fake, labels)
            d_opt.zero_grad(); d_loss.backward(); d_opt.step()
            loss.after_discriminator_step(D)           # WGAN clips here; no-op elsewhere
        g_loss, g_logs = loss.generator_loss(D, G(z), labels)
        g_opt.zero_grad(); g_loss.backward(); g_opt.step()

* ``discriminator_loss(D, real, fake, labels=None)`` detaches ``fake`` (the discriminator step
  never trains G) and returns ``(loss, logs)``.
* ``generator_loss(D, fake, labels=None)`` returns ``(loss, logs)``; gradients reach G through
  ``fake``.
* ``logs`` is a dict of detached 0-dim tensors — nothing is copied to the host.
* When ``labels`` is given, every call of D is ``D(x, labels)`` (conditional GANs; the loop
  calls ``G(z, labels)`` itself). :class:`CGANLoss` requires labels.

What each family expects of D:

* ``gan``, ``cgan``, ``hinge``: raw logits/scores of any batch-first shape (no sigmoid).
* ``wgan``, ``wgan-gp``: unbounded critic scores. WGAN-GP needs a critic that is differentiable
  w.r.t. its input and has no batch-coupling layers (no BatchNorm), as in the paper.
* ``lsgan``: raw outputs compared with the targets a, b, c.
* ``ebgan``: an autoencoder. ``D(x)`` returns the reconstruction, or ``(reconstruction,
  embedding)``; the embedding (the encoder output) is needed for the pulling-away term
  (``pt_weight > 0``). The energy is the per-sample MSE.
* ``began``: an autoencoder; ``D(x)`` returns the reconstruction, or a tuple or list whose first
  item is the reconstruction (the rest is ignored). L is the per-sample L1 error; ``k_t`` is a
  registered float32 buffer updated on the device (it stays float32 when the loss is cast to a
  16-bit dtype).

Each loss keeps its hyper-parameters in its ``state_dict`` (``_extra_state``). ``load_state_dict``
is all or nothing: a state from another configuration, or one that holds the loss's tensors
without its configuration, raises a ``ValueError`` before anything is changed, and a load that
PyTorch refuses (a wrong shape; missing or unexpected keys with ``strict=True``) leaves the loss
as it was.

Hyper-parameters are checked when the loss is built (finite real numbers in their range, bools
for flags); they are stored as Python floats.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from fastgan import _validation as v
from fastgan import functional as FG

__all__ = [
    "GANLossBase",
    "GANLoss",
    "CGANLoss",
    "WGANLoss",
    "WGANGPLoss",
    "EBGANLoss",
    "BEGANLoss",
    "LSGANLoss",
    "HingeLoss",
    "create",
    "available",
    "alternate",
]

Logs = dict[str, torch.Tensor]


def _call(D: Callable[..., Any], x: torch.Tensor, labels: torch.Tensor | None) -> Any:
    return D(x) if labels is None else D(x, labels)


def _scores(D: Callable[..., Any], x: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
    out = _call(D, x, labels)
    if not isinstance(out, torch.Tensor):
        raise TypeError(f"D must return a tensor of scores, got {type(out).__name__}")
    return out


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
        """Called by the loop after each discriminator optimiser step (WGAN clips weights)."""

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


class _ScoreLoss(GANLossBase):
    """Families whose D returns scores: the losses are functions of D(real) and D(fake)."""

    def _d(self, real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _g(self, fake_scores: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _check_labels(self, labels: torch.Tensor | None) -> None:
        pass

    def discriminator_loss(self, D, real, fake, labels=None):
        self._check_labels(labels)
        real_scores = _scores(D, real, labels)
        fake_scores = _scores(D, fake.detach(), labels)
        loss = self._d(real_scores, fake_scores)
        logs = {
            "d_loss": loss.detach(),
            "d_real": real_scores.detach().mean(),
            "d_fake": fake_scores.detach().mean(),
        }
        return loss, logs

    def generator_loss(self, D, fake, labels=None):
        self._check_labels(labels)
        loss = self._g(_scores(D, fake, labels))
        return loss, {"g_loss": loss.detach()}


class GANLoss(_ScoreLoss):
    """GAN (eq. 3): binary cross-entropy on logits; non-saturating generator by default,
    ``saturating=True`` for the minimax form."""

    name = "gan"

    def __init__(self, saturating: bool = False) -> None:
        super().__init__()
        self.saturating = v.check_bool("saturating", saturating)

    def hparams(self):
        return {"saturating": self.saturating}

    def _d(self, real_scores, fake_scores):
        return FG.gan_discriminator_loss(real_scores, fake_scores)

    def _g(self, fake_scores):
        return FG.gan_generator_loss(fake_scores, saturating=self.saturating)


class CGANLoss(GANLoss):
    """CGAN (eq. 4): the GAN loss with D and G both given the condition ``labels``; every call
    of D is ``D(x, labels)``. ``labels`` is required."""

    name = "cgan"

    def _check_labels(self, labels):
        if labels is None:
            raise ValueError("labels is required for the cgan loss: D is called as D(x, labels)")
        if not isinstance(labels, torch.Tensor):
            raise TypeError(f"labels must be a tensor, got {type(labels).__name__}")


class WGANLoss(_ScoreLoss):
    """WGAN (eq. 5): critic ``mean(D(G(z))) − mean(D(x))``, generator ``−mean(D(G(z)))``; every
    critic weight is clipped to ``[−clip_value, clip_value]`` in :meth:`after_discriminator_step`.
    5 critic steps per generator step."""

    name = "wgan"
    n_critic = 5

    def __init__(self, clip_value: float = 0.01) -> None:
        super().__init__()
        self.clip_value = v.check_nonneg("clip_value", clip_value)
        if self.clip_value == 0:
            raise ValueError("clip_value must be > 0, got 0")

    def hparams(self):
        return {"clip_value": self.clip_value}

    def _d(self, real_scores, fake_scores):
        return FG.wgan_critic_loss(real_scores, fake_scores)

    def _g(self, fake_scores):
        return FG.wgan_generator_loss(fake_scores)

    def after_discriminator_step(self, D):
        FG.clip_weights_(D, self.clip_value)


class WGANGPLoss(_ScoreLoss):
    """WGAN-GP (eq. 6): the WGAN critic loss plus ``gp_weight · mean_b((‖∇x̂ D(x̂)_b‖₂ − center)²)``
    at per-sample interpolates (``one_sided=True``: ``max(0, ‖g‖ − center)²``). No clipping.
    5 critic steps per generator step.

    Lazy regularisation (Karras et al. 2020, "Analyzing and Improving the Image Quality of
    StyleGAN", §3.1): with ``gp_interval = k > 1`` the penalty runs on every k-th discriminator
    step only (the 1st, the (k+1)-th, …), with its weight multiplied by k, so that its average
    contribution is unchanged while k − 1 of every k critic steps skip the double backward.
    ``gp_interval = 1`` (the default) is the paper's loss. Only training-mode calls count as
    steps; in eval mode the penalty runs on every call with weight ``gp_weight``. The step
    counter is the buffer ``gp_step`` (saved in the ``state_dict``, so a resumed run continues
    the schedule exactly); the decision reads a host-side copy of it, so no step syncs with the
    device.

    With the functional API the same pattern is
    ``if step % k == 0: loss = loss + gradient_penalty(D, real, fake, weight=k * gp_weight)``."""

    name = "wgan-gp"
    n_critic = 5
    gp_step: torch.Tensor

    def __init__(self, gp_weight: float = 10.0, center: float = 1.0, one_sided: bool = False,
                 gp_interval: int = 1) -> None:
        super().__init__()
        self.gp_weight = v.check_nonneg("gp_weight", gp_weight)
        self.center = v.check_nonneg("center", center)
        self.one_sided = v.check_bool("one_sided", one_sided)
        self.gp_interval = v.check_positive_int("gp_interval", gp_interval)
        self.register_buffer("gp_step", torch.zeros((), dtype=torch.int64))
        self._gp_step: int | None = 0  # host copy of gp_step; None: read it again (after a load)

    def hparams(self):
        return {"gp_weight": self.gp_weight, "center": self.center, "one_sided": self.one_sided,
                "gp_interval": self.gp_interval}

    def _penalty_weight(self) -> float | None:
        """The weight of this call's penalty (``None``: skipped), advancing the step counter."""
        if not self.training or self.gp_interval == 1:
            if self.training:
                self._advance()
            return self.gp_weight
        step = self._advance()
        return self.gp_weight * self.gp_interval if step % self.gp_interval == 0 else None

    def _advance(self) -> int:
        if self._gp_step is None:
            self._gp_step = int(self.gp_step)  # once after a load
        step = self._gp_step
        self._gp_step = step + 1
        self.gp_step.fill_(step + 1)
        return step

    def _upgrade_config(self, state):
        # saved before lazy regularisation: the penalty ran on every step
        if isinstance(state, dict) and isinstance(state.get("hparams"), dict) and "gp_interval" not in state["hparams"]:
            state = {**state, "hparams": {**state["hparams"], "gp_interval": 1}}
        return state

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs):  # type: ignore[override]
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)
        if prefix + "gp_step" in missing_keys:  # a state saved before lazy regularisation: step 0
            missing_keys.remove(prefix + "gp_step")
            self.gp_step.zero_()
        self._gp_step = None

    def discriminator_loss(self, D, real, fake, labels=None):
        real_scores = _scores(D, real, labels)
        fake_scores = _scores(D, fake.detach(), labels)
        critic = D if labels is None else (lambda x: D(x, labels))
        wgan = FG.wgan_critic_loss(real_scores, fake_scores)
        weight = self._penalty_weight()
        if weight is not None:
            gp = FG.gradient_penalty(
                critic, real, fake.detach(), weight=weight, center=self.center, one_sided=self.one_sided
            )
        else:
            gp = torch.zeros((), dtype=wgan.dtype, device=wgan.device)
        loss = wgan + gp
        logs = {
            "d_loss": loss.detach(),
            "wasserstein": -wgan.detach(),
            "gp": gp.detach(),
        }
        return loss, logs

    def _g(self, fake_scores):
        return FG.wgan_generator_loss(fake_scores)


class LSGANLoss(_ScoreLoss):
    """LSGAN (eq. 10): ``½·mean((D(x) − b)²) + ½·mean((D(G(z)) − a)²)`` and
    ``½·mean((D(G(z)) − c)²)``; defaults a = 0, b = c = 1."""

    name = "lsgan"

    def __init__(self, a: float = 0.0, b: float = 1.0, c: float = 1.0) -> None:
        super().__init__()
        self.a, self.b, self.c = v.check_real("a", a), v.check_real("b", b), v.check_real("c", c)

    def hparams(self):
        return {"a": self.a, "b": self.b, "c": self.c}

    def _d(self, real_scores, fake_scores):
        return FG.lsgan_discriminator_loss(real_scores, fake_scores, a=self.a, b=self.b)

    def _g(self, fake_scores):
        return FG.lsgan_generator_loss(fake_scores, c=self.c)


class HingeLoss(_ScoreLoss):
    """Hinge loss: ``mean(relu(1 − D(x))) + mean(relu(1 + D(G(z))))`` and ``−mean(D(G(z)))``."""

    name = "hinge"

    def _d(self, real_scores, fake_scores):
        return FG.hinge_discriminator_loss(real_scores, fake_scores)

    def _g(self, fake_scores):
        return FG.hinge_generator_loss(fake_scores)


def _autoencode(D: Callable[..., Any], x: torch.Tensor, labels: torch.Tensor | None, *, extra_items: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(reconstruction, embedding or None)`` from an autoencoder discriminator, which returns
    the reconstruction, or ``(reconstruction, embedding)`` — or, when ``extra_items``, any tuple
    or list whose first item is the reconstruction (the embedding is then its second item when
    that is a tensor)."""
    out = _call(D, x, labels)
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
    a registered buffer (saved in the ``state_dict``, moved with ``.to(device)``); in training
    mode each :meth:`discriminator_loss` call updates it on the device,
    ``k_{t+1} = clamp(k_t + lambda_k (γ·mean L(x) − mean L(G(z))), 0, 1)``, and logs
    ``M_global`` as ``convergence``. In eval mode k stays as it is.

    k stays in float32 (or float64) whatever the module's dtype: ``.half()``, ``.bfloat16()``,
    ``.to(torch.float16)`` or casting a model that holds the loss moves k to the new device but
    leaves its precision alone — its updates (``lambda_k`` × a balance, ~1e-4) would round away
    in a 16-bit k and freeze it."""

    name = "began"

    k: torch.Tensor

    def __init__(self, gamma: float = 0.5, lambda_k: float = 0.001, k0: float = 0.0) -> None:
        super().__init__()
        self.gamma = v.check_nonneg("gamma", gamma)
        self.lambda_k = v.check_nonneg("lambda_k", lambda_k)
        self.k0 = v.check_unit_interval("k0", k0)
        self.register_buffer("k", torch.tensor(self.k0, dtype=torch.float32))

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
        k = self._buffers.get("k")
        if k is not None and k.dtype not in (torch.float32, torch.float64):  # assign=True of a 16-bit k
            self._buffers["k"] = self._precise(k)

    @staticmethod
    def _error(D, x, labels):
        recon, _ = _autoencode(D, x, labels, extra_items=True)
        return FG.reconstruction_error(x, recon, p=1)

    def discriminator_loss(self, D, real, fake, labels=None):
        real_error = self._error(D, real, labels)
        fake_error = self._error(D, fake.detach(), labels)
        if self.k.device != real_error.device:
            raise ValueError(
                f"the began loss keeps k on {self.k.device} but the inputs are on "
                f"{real_error.device}; move the loss with loss.to(device)"
            )
        k = self.k.clone()  # the k this step uses; the buffer is then updated in place
        loss = FG.began_discriminator_loss(real_error, fake_error, k)
        k_next, convergence = FG.began_update(k, real_error, fake_error, self.gamma, self.lambda_k)
        if self.training:
            self.k.copy_(k_next)
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


_REGISTRY: dict[str, type[GANLossBase]] = {
    cls.name: cls
    for cls in (GANLoss, CGANLoss, WGANLoss, WGANGPLoss, EBGANLoss, BEGANLoss, LSGANLoss, HingeLoss)
}


def available() -> list[str]:
    """Names accepted by :func:`create`."""
    return sorted(_REGISTRY)


def create(name: str, **hparams: Any) -> GANLossBase:
    """Build the loss object of family ``name`` (see :func:`available`; case-insensitive) with
    its hyper-parameters, e.g. ``create("wgan-gp", gp_weight=10.0)``. An unknown name is a
    ``ValueError``, a hyper-parameter the family does not take a ``TypeError``."""
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, got {type(name).__name__}")
    key = name.lower()
    if key not in _REGISTRY:
        raise ValueError(f"unknown loss {name!r}; available: {', '.join(available())}")
    cls = _REGISTRY[key]
    accepted = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    unknown = sorted(set(hparams) - set(accepted))
    if unknown:
        raise TypeError(
            f"the {key} loss has no hyper-parameter {', '.join(map(repr, unknown))}; "
            f"it takes: {', '.join(accepted) or 'none'}"
        )
    return cls(**hparams)


def alternate(
    n_critic: int,
    discriminator_step: Callable[[], dict[str, torch.Tensor]],
    generator_step: Callable[[], dict[str, torch.Tensor]],
) -> dict[str, torch.Tensor]:
    """One training step in the order the papers alternate the networks: ``n_critic``
    discriminator (critic) steps — a loss object's ``n_critic``: 5 for WGAN and WGAN-GP, 1
    otherwise — then one generator step. Returns the last discriminator step's logs merged with
    the generator step's (a name in both: the generator's)."""
    d_logs: dict[str, torch.Tensor] = {}
    for _ in range(n_critic):
        d_logs = discriminator_step()
    return {**d_logs, **generator_step()}
