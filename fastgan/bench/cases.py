"""What ``fastgan bench`` measures, in one namespace: the cases (operator or family × size ×
parameters), their inputs, the providers compared on each case, and the check of every provider
against the reference before it is timed. Each concern is a module of its own, and every name
stays importable from here:

* :mod:`~fastgan.bench.catalogue`: the cases and their parameters, :func:`select`;
* :mod:`~fastgan.bench.inputs`: the inputs of a case, rotated input sets;
* :mod:`~fastgan.bench.families`: a family's full loss through fastgan's loss object, on a
  minimal discriminator (what the ``fastgan_<backend>`` providers time, and the reference of
  the check);
* :mod:`~fastgan.bench.idioms`: the baselines' operators as plain tables of functions, and the
  full losses a user writes with them;
* :mod:`~fastgan.bench.providers`: the providers (``eager_idiom``, ``best_eager``,
  ``compiled``, ``fastgan_<backend>``);
* :mod:`~fastgan.bench.checks`: :func:`check` (value and every gradient against the reference;
  a provider that fails it is never timed) and the timed step.

Operator cases time ``fastgan.ops.<op>`` (forward + backward w.r.t. every input); family cases
time a family's full loss (discriminator + generator loss, forward + backward w.r.t. the real
and fake inputs and D's parameters).
"""

from __future__ import annotations

from fastgan.bench.catalogue import (  # noqa: F401
    BEGAN_GAMMA,
    BEGAN_K0,
    BEGAN_LAMBDA_K,
    CASES,
    CENTER,
    EBGAN_MARGIN,
    FAKE_TARGET,
    FAMILIES,
    GP_WEIGHT,
    IMAGES,
    KINDS,
    LOGITS,
    MARGIN,
    N_CLASSES,
    NAMES,
    ONE_SIDED,
    OPS,
    PATCHGAN,
    PT_WEIGHT,
    REAL_TARGET,
    SCORE_FAMILIES,
    SCORE_MAPS,
    SIZES,
    TINY_SCORES,
    TOL_FAMILY,
    TOL_OP,
    Case,
    all_cases,
    select,
)
from fastgan.bench.checks import CheckResult, check, make_step  # noqa: F401
from fastgan.bench.families import loss_fn as fastgan_family_fn  # noqa: F401
from fastgan.bench.idioms import family_fn, reference_fn  # noqa: F401
from fastgan.bench.inputs import Inputs, input_sets, make_inputs  # noqa: F401
from fastgan.bench.providers import (  # noqa: F401
    BACKEND_DEVICES,
    BASELINES,
    EXTRA_PROVIDERS,
    Provider,
    backends_for,
    best_eager,
    compiled,
    configure_compile,
    eager_idiom,
    fastgan_fn,
    providers,
    reference,
)
