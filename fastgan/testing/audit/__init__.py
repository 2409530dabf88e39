"""``fastgan.testing.audit``: audit your own GAN loss code against the papers (docs/audit.md).

The module is callable: ``fastgan.testing.audit("wgan-gp", d_loss, g_loss)`` is
:func:`fastgan.testing.audit.audit`. It runs your code and fastgan's reference on the same small
float64 probe networks and batches, compares the losses and the gradients, and names each
departure from the paper by its entry in :data:`CATALOGUE`.

    >>> from fastgan.testing import audit
    >>> report = audit("lsgan", g_loss=lambda D, fake: ((D(fake) - 1) ** 2).mean())
    >>> report.ids
    ['lsgan-no-half']
"""

from __future__ import annotations

import sys
import types

from fastgan.testing.audit.arguments import HPARAMS
from fastgan.testing.audit.catalogue import CATALOGUE, FAMILIES, FAMILY_PAPER, PARTS, Entry, entries_for, entry
from fastgan.testing.audit.core import audit
from fastgan.testing.audit.probes import Probe, ProbeAutoencoder, ProbeCritic, make_probes
from fastgan.testing.audit.report import AuditFailure, AuditReport, Finding

__all__ = [
    "AuditFailure", "AuditReport", "CATALOGUE", "Entry", "FAMILIES", "FAMILY_PAPER", "Finding", "HPARAMS",
    "PARTS", "Probe", "ProbeAutoencoder", "ProbeCritic", "audit", "entries_for", "entry", "make_probes",
]


class _CallableModule(types.ModuleType):
    """Lets ``fastgan.testing.audit(...)`` call :func:`audit` while the module keeps its names."""

    def __call__(self, *args, **kwargs) -> AuditReport:
        return audit(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
