"""Loss objects: one ``nn.Module`` per GAN family behind one interface.

A training loop drives every family the same way::

    loss = fastgan.losses.create("wgan-gp")          # or "gan", "cgan", "wgan", "ebgan", ...
    for step in range(steps):
        for _ in range(loss.n_critic):
            fake = G(z)
            d_loss, d_logs = loss.discriminator_loss(D, real, fake, labels)
            d_opt.zero_grad(); d_loss.backward(); d_opt.step()
            loss.after_discriminator_step(D)           # WGAN clips, BEGAN updates k; no-op elsewhere
        g_loss, g_logs = loss.generator_loss(D, G(z), labels)
        g_opt.zero_grad(); g_loss.backward(); g_opt.step()

* ``discriminator_loss(D, real, fake, labels=None)`` detaches ``fake`` (the discriminator step
  never trains G) and returns ``(loss, logs)``. The score families take ``fake_labels=`` (the
  labels the fakes were generated with; default ``labels``); WGAN-GP takes ``alpha=`` and
  ``generator=`` (the penalty's ε, to replay a run exactly).
* ``after_discriminator_step(D)`` must follow each discriminator optimiser step: WGAN clips D's
  weights there and BEGAN applies its once-per-step update of k.
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
  registered float32 buffer updated on the device once per discriminator step, by
  ``after_discriminator_step`` (it stays float32 when the loss is cast to a 16-bit dtype).

Each loss keeps its hyper-parameters in its ``state_dict`` (``_extra_state``). ``load_state_dict``
is all or nothing: a state from another configuration, or one that holds the loss's tensors
without its configuration, raises a ``ValueError`` before anything is changed, and a load that
PyTorch refuses (a wrong shape; missing or unexpected keys with ``strict=True``) leaves the loss
as it was.

:func:`create` takes the family names case-insensitively and with any separator
(``"wgan_gp"`` is ``"wgan-gp"``). Hyper-parameters are checked when the loss is built (finite real numbers in their range, bools
for flags); they are stored as Python floats.
"""

from __future__ import annotations

from fastgan.losses.autoencoders import BEGANLoss, EBGANLoss
from fastgan.losses.base import GANLossBase, Logs  # noqa: F401  (Logs: the logs dict type, as before)
from fastgan.losses.registry import available, create
from fastgan.losses.schedule import alternate
from fastgan.losses.scores import CGANLoss, GANLoss, HingeLoss, LSGANLoss, WGANGPLoss, WGANLoss

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
