"""Loud porting mistakes: the two ways PyTorch GAN code passes the wrong thing to fastgan's
score losses without any shape or dtype error (docs/porting.md, docs/errors.md).

* **(input, target) order.** PyTorch's losses take ``(input, target)``; fastgan's discriminator
  losses take ``(real_logits, fake_logits)``. ``gan_discriminator_loss(D(x), valid)`` passes a
  target tensor of ones as the fake logits. :func:`check_not_targets` raises when the second
  argument does not require grad while the first does (grad mode on, eager, no ``torch.func``
  transform) and every one of its elements is exactly 0 or 1. Only in that case are its values
  read (one small reduction and a host sync); the normal path — both arguments require grad
  (training), neither does (``no_grad``, evaluation), or the real ones are detached — reads
  metadata only.
* **Probabilities for logits.** A ``sigmoid`` applied by the caller before a loss that applies
  the log-sigmoid itself (``bce``): :func:`check_not_sigmoid` looks at the scores' autograd
  node — ``SigmoidBackward0``, possibly behind shape-only steps such as ``.view(-1)`` — which
  is metadata, so it costs no sync. Scores without autograd history (``no_grad``) are not
  checked: nothing can be told from their values alone (a logit may lie in [0, 1]).

Neither check runs while ``torch.compile`` traces or under a ``torch.func`` transform.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from fastgan import backends

__all__ = ["check_not_targets", "check_not_sigmoid", "refuse_target_argument"]

#: autograd nodes that only move or re-view values: a sigmoid behind them is still the output
_PASS_THROUGH = frozenset({
    "ViewBackward0", "UnsafeViewBackward0", "ReshapeAliasBackward0", "SqueezeBackward0",
    "SqueezeBackward1", "SqueezeBackward2", "UnsqueezeBackward0", "TBackward0",
    "TransposeBackward0", "PermuteBackward0", "CloneBackward0", "ToCopyBackward0",
    "ExpandBackward0", "SelectBackward0", "SliceBackward0", "AliasBackward0", "FlattenBackward0",
    "CatBackward0",
})
_MAX_HOPS = 8


def _eager_autograd() -> bool:
    """Whether autograd metadata means what it says: grad mode on, not tracing, no transform."""
    return torch.is_grad_enabled() and not torch.compiler.is_compiling() and not backends.functorch_active()


def check_not_targets(names: Sequence[str], real: torch.Tensor, fake: torch.Tensor) -> None:
    """Raise a ``ValueError`` when ``fake`` looks like a PyTorch target passed in fastgan's
    ``(real, fake)`` order: ``real`` requires grad, ``fake`` does not, and every element of
    ``fake`` is exactly 0 or 1 (``torch.ones``/``torch.zeros`` targets, 0/1 label tensors)."""
    if not real.requires_grad or fake.requires_grad or not _eager_autograd():
        return
    if fake.is_meta or fake.numel() == 0:
        return
    if not bool(((fake == 0) | (fake == 1)).all()):  # the one value read, in this rare case only
        return
    raise ValueError(
        f"{names[1]} holds only 0s and 1s and needs no gradient while {names[0]} does: it looks "
        "like a target tensor. fastgan's discriminator losses take (real_logits, fake_logits), "
        "not PyTorch's (input, target): replace `loss(D(x), valid) + loss(D(G(z)), fake)` by "
        f"`loss(D(x), D(G(z)))` (docs/porting.md). If {names[1]} really are scores, "
        "fastgan.functional.adversarial_loss takes them unchecked"
    )


def _sigmoid_behind(t: torch.Tensor) -> bool:
    node = t.grad_fn
    for _ in range(_MAX_HOPS):
        if node is None:
            return False
        name = type(node).__name__
        if name == "SigmoidBackward0":
            return True
        if name not in _PASS_THROUGH or not node.next_functions:
            return False
        node = node.next_functions[0][0]
    return False


def check_not_sigmoid(names: Sequence[str], *tensors: torch.Tensor | None) -> None:
    """Raise a ``ValueError`` when a tensor of logits is the output of a ``sigmoid`` (seen from
    its autograd node: no value is read)."""
    if not _eager_autograd():
        return
    for name, t in zip(names, tensors):
        if t is not None and t.grad_fn is not None and _sigmoid_behind(t):
            raise ValueError(
                f"{name} is the output of a sigmoid: fastgan expects raw logits and applies the "
                "log-sigmoid itself, in a numerically stable form (a sigmoid followed by BCELoss "
                "loses the gradient once D is confident). Drop the final sigmoid (nn.Sigmoid) of "
                "D, or pass the logits before it (docs/porting.md)"
            )


def refuse_target_argument(function: str, name: str, value: object) -> None:
    """A ``TypeError`` for a tensor passed where a one-argument loss takes a hyper-parameter —
    PyTorch's ``loss(D(G(z)), valid)`` ported as ``function(D(G(z)), valid)``."""
    if isinstance(value, torch.Tensor):
        raise TypeError(
            f"{name} must be a {'bool' if name == 'saturating' else 'real number'}, got a Tensor: "
            f"{function} takes the fake scores only, not PyTorch's (input, target); write "
            f"{function}(D(G(z))) (docs/porting.md)"
        )
