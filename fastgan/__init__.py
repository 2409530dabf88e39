"""fastgan: fused loss kernels for seven GAN families, each checked against a plain-PyTorch
reference.

Quick start::

    import fastgan.functional as FG
    d_loss = FG.wgan_critic_loss(D(real), D(fake)) + FG.gradient_penalty(D, real, fake)

    loss = fastgan.losses.create("wgan-gp")
    d_loss, logs = loss.discriminator_loss(D, real, fake)

Backends: ``fastgan.available_backends()``, ``fastgan.use_backend(name)`` (setter and context
manager), or the ``FASTGAN_BACKEND`` environment variable. ``fastgan info`` on the command line
shows what is built.
"""

from fastgan import amp, functional, losses, ops
from fastgan.backends import (
    BackendUnavailableError,
    FastganWarning,
    available_backends,
    get_backend,
    use_backend,
)

__version__ = "0.1.0"

# The compiled extension loads here, once the operators have registered their hooks: its fake
# implementations are then in place before anything is traced. Loading compiles nothing; a
# missing extension is not an error (the reference path runs, and says so once).
from fastgan import backends as _backends

_backends.extension()

# The Triton kernels register themselves on import; triton is imported only where they can run
# (the compiled extension, which declares their ops, and a GPU or Triton's interpreter), so that a
# CPU-only import stays fast.
if _backends.requirements("triton")[0]:
    import fastgan.triton  # noqa: F401  (registers the triton backend)

__all__ = [
    "BackendUnavailableError",
    "FastganWarning",
    "__version__",
    "amp",
    "available_backends",
    "functional",
    "get_backend",
    "losses",
    "ops",
    "use_backend",
]
