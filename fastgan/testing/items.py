"""The items of ``fastgan check``: every operator over its shapes and layouts, and every loss
family, each as a call on tensors of the dtype and device under test.

Operators: each kind, ``p``, one-sidedness and center, over odd sizes, a batch of one, rows
longer than one parallel chunk (:data:`~fastgan.testing.CHUNK`), channels-last, batch-inner and
sliced layouts. Families: GAN, WGAN, WGAN-GP, R1, LSGAN, hinge, EBGAN with the pulling-away term,
BEGAN and its k update. Inputs are random (never all zero), drawn from a generator seeded from
the item's name; the penalty's rows have norms away from its centers.
"""

from __future__ import annotations

import dataclasses
import zlib
from collections.abc import Callable, Sequence

import torch

from fastgan.testing.layouts import lay, leaf_shape

F64 = torch.float64


@dataclasses.dataclass(frozen=True)
class Item:
    """One row of the matrix: a call of an operator or a family.

    ``make(g)`` returns the inputs as float64 CPU tensors (drawn from ``g``); ``fn(*tensors)``
    makes the call on tensors of the dtype and device under test (layout changes happen inside
    ``fn``, differentiably, so that the backend sees them); ``grad`` says which inputs are
    differentiated (all floating inputs by default; none for forward-only items).
    ``alpha_scale`` marks interpolate, whose gradient w.r.t. alpha sums terms of both signs."""

    name: str
    group: str  # "operator" or "family"
    make: Callable[[torch.Generator], list[torch.Tensor]]
    fn: Callable[..., torch.Tensor]
    grad: tuple[bool, ...] | None = None
    cancellation: bool = False  # the forward sums terms of both signs
    alpha_scale: bool = False


def _gen(*key: object) -> torch.Generator:
    return torch.Generator().manual_seed(zlib.crc32(repr(key).encode()))


def _randn(g: torch.Generator, *shape: int, std: float = 1.0) -> torch.Tensor:
    return torch.randn(shape, generator=g, dtype=F64) * std


def _rows_with_norms(g: torch.Generator, shape: tuple[int, ...]) -> torch.Tensor:
    """Random rows rescaled to per-sample norms away from the centers 0, 0.5 and 1."""
    norms = (1.7, 0.6, 2.5, 0.3, 3.4, 1.3, 0.8)
    x = torch.randn(shape, generator=g, dtype=F64)
    flat = x.reshape(shape[0], -1)
    target = torch.tensor([norms[i % len(norms)] for i in range(shape[0])], dtype=F64)
    return (flat * (target / torch.linalg.vector_norm(flat, dim=1))[:, None]).reshape(shape)


#: (id, shape, layout) of the operators over per-sample rows.
ROW_SHAPES = (
    ("odd", (5, 3, 7, 9), "contig"),
    ("B1", (1, 37), "contig"),
    ("long", (2, 3, 100, 70), "contig"),
    ("channels_last", (5, 3, 7, 9), "channels_last"),
    ("batch_inner", (4, 33), "batch_inner"),
    ("sliced", (3, 5, 11), "sliced"),
)
#: (id, shape of real, shape of fake, layout) of the discriminator outputs.
SCORE_SHAPES = (
    ("Bx1", (7, 1), (7, 1), "contig"),
    ("B", (6,), (6,), "contig"),
    ("patch", (4, 1, 6, 5), (4, 1, 6, 5), "contig"),
    ("batch_differs", (5, 1), (3, 1), "contig"),
    ("long", (2, 1, 150, 150), (2, 1, 150, 150), "contig"),
    ("channels_last", (4, 3, 6, 5), (4, 3, 6, 5), "channels_last"),
    ("sliced", (6, 3), (6, 3), "sliced"),
)
ADV_PARAMS = {"real_target": 0.75, "fake_target": -0.25, "margin": 1.5}


def operator_items() -> list[Item]:
    import fastgan.functional as F

    items: list[Item] = []
    for sid, shape, layout in ROW_SHAPES:
        leaf = leaf_shape(shape, layout)
        b = shape[0]
        items.append(Item(
            f"interpolate[{sid}]", "operator",
            lambda g, leaf=leaf, b=b, layout=layout: [
                _randn(g, *leaf), _randn(g, *leaf),
                torch.rand(leaf[0], generator=g, dtype=F64)[::2] if layout == "sliced" else torch.rand(b, generator=g, dtype=F64),
            ],
            lambda r, f, a, layout=layout: F.interpolate(lay(r, layout), lay(f, layout), a),
            alpha_scale=True,
        ))
        for one_sided in (False, True):
            for center in ((1.0, 0.0) if not one_sided else (1.0,)):
                items.append(Item(
                    f"grad_norm_penalty[{sid}, center={center:g}{', one_sided' if one_sided else ''}]", "operator",
                    lambda g, leaf=leaf: [_rows_with_norms(g, leaf)],
                    lambda x, layout=layout, c=center, o=one_sided: F.grad_norm_penalty(lay(x, layout), c, o),
                ))
        for p in (1, 2):
            items.append(Item(
                f"reconstruction_error[{sid}, p={p}]", "operator",
                lambda g, leaf=leaf: [_randn(g, *leaf), _randn(g, *leaf)],
                lambda x, r, layout=layout, p=p: F.reconstruction_error(lay(x, layout), lay(r, layout), p),
            ))
    for sid, s1, s2, layout in SCORE_SHAPES:
        l1, l2 = leaf_shape(s1, layout), leaf_shape(s2, layout)
        for kind in ("bce", "wgan", "lsgan", "hinge", "margin"):
            items.append(Item(
                f"adversarial_loss[{sid}, {kind}]", "operator",
                lambda g, l1=l1, l2=l2: [_randn(g, *l1, std=2.0), _randn(g, *l2, std=2.0)],
                lambda r, f, layout=layout, kind=kind: F.adversarial_loss(lay(r, layout), lay(f, layout), kind, **ADV_PARAMS),
                cancellation=kind in ("wgan", "margin"),
            ))
    for side in ("real_only", "fake_only"):
        items.append(Item(
            f"adversarial_loss[Bx1, bce, {side}]", "operator",
            lambda g: [_randn(g, 7, 1, std=2.0)],
            lambda x, side=side: F.adversarial_loss(x if side == "real_only" else None, x if side == "fake_only" else None, "bce"),
        ))
    return items


def _critic(w: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    """A small differentiable critic with weights ``w`` of shape (features, 8): its input
    gradient depends on the input (tanh), so the penalty's double backward is exercised."""
    def critic(x: torch.Tensor) -> torch.Tensor:
        h = torch.tanh(x.flatten(1) @ w)
        return h.sum(1, keepdim=True) - 0.5 * h[:, :1]
    return critic


def _began_update(x, rx, y, ry):
    import fastgan.functional as FG

    k = torch.tensor(0.3, dtype=x.dtype, device=x.device)
    k_next, convergence = FG.began_update(
        k, FG.reconstruction_error(x, rx, p=1), FG.reconstruction_error(y, ry, p=1), gamma=0.5, lambda_k=0.01
    )
    return torch.stack([k_next.to(x.dtype), convergence.to(x.dtype)])  # k_next is >= fp32


#: the families' shapes: the batch, the scores, the images (and their features per sample)
_B, _S, _X = 6, (6, 1), (6, 3, 4, 5)
_FEAT = 3 * 4 * 5


def _score_family_items() -> list[Item]:
    """GAN, WGAN, LSGAN and hinge: the losses on D's scores."""
    import fastgan.functional as FG

    scores2 = lambda g: [_randn(g, *_S, std=2.0), _randn(g, *_S, std=2.0)]  # noqa: E731
    scores1 = lambda g: [_randn(g, *_S, std=2.0)]  # noqa: E731
    patch2 = lambda g: [_randn(g, 5, 1, 4, 3, std=2.0), _randn(g, 5, 1, 4, 3, std=2.0)]  # noqa: E731
    return [
        Item("gan discriminator", "family", scores2, FG.gan_discriminator_loss),
        Item("gan discriminator (B,1,H,W)", "family", patch2, FG.gan_discriminator_loss),
        Item("gan generator", "family", scores1, FG.gan_generator_loss),
        Item("gan generator saturating", "family", scores1, lambda f: FG.gan_generator_loss(f, saturating=True)),
        Item("wgan critic", "family", scores2, FG.wgan_critic_loss, cancellation=True),
        Item("wgan generator", "family", scores1, FG.wgan_generator_loss, cancellation=True),
        Item("lsgan discriminator", "family", scores2, lambda r, f: FG.lsgan_discriminator_loss(r, f, a=-0.5, b=0.75)),
        Item("lsgan generator", "family", scores1, lambda f: FG.lsgan_generator_loss(f, c=0.75)),
        Item("hinge discriminator", "family", scores2, FG.hinge_discriminator_loss),
        Item("hinge generator", "family", scores1, FG.hinge_generator_loss, cancellation=True),
    ]


def _penalty_family_items() -> list[Item]:
    """WGAN-GP's gradient penalty (two-sided and one-sided) and R1, through a small critic."""
    import fastgan.functional as FG

    return [
        Item(
            "wgan-gp gradient_penalty", "family",
            lambda g: [_randn(g, *_X), _randn(g, *_X), torch.rand(_B, generator=g, dtype=F64), _randn(g, _FEAT, 8, std=0.3)],
            lambda r, f, a, w: FG.gradient_penalty(_critic(w), r, f, alpha=a),
            grad=(False, False, False, True),
        ),
        Item(
            "wgan-gp gradient_penalty one_sided", "family",
            lambda g: [_randn(g, *_X), _randn(g, *_X), torch.rand(_B, generator=g, dtype=F64), _randn(g, _FEAT, 8, std=0.3)],
            lambda r, f, a, w: FG.gradient_penalty(_critic(w), r, f, alpha=a, center=0.5, one_sided=True),
            grad=(False, False, False, True),
        ),
        Item(
            "r1_penalty", "family",
            lambda g: [_randn(g, *_X), _randn(g, _FEAT, 8, std=0.3)],
            lambda x, w: FG.r1_penalty(_critic(w), x, gamma=5.0),
            grad=(False, True),
        ),
    ]


def _autoencoder_family_items() -> list[Item]:
    """EBGAN (with the pulling-away term) and BEGAN (with its k update): the losses on
    reconstruction errors."""
    import fastgan.functional as FG

    images4 = lambda g: [_randn(g, *_X), _randn(g, *_X), _randn(g, *_X), _randn(g, *_X)]  # noqa: E731
    return [
        Item(
            "ebgan discriminator", "family", images4,
            lambda x, rx, y, ry: FG.ebgan_discriminator_loss(FG.reconstruction_error(x, rx, p=2), FG.reconstruction_error(y, ry, p=2), margin=0.6),
        ),
        Item(
            "ebgan generator + pulling-away term", "family",
            lambda g: [_randn(g, *_X), _randn(g, *_X), _randn(g, _B, 2, 5)],
            lambda y, ry, emb: FG.ebgan_generator_loss(FG.reconstruction_error(y, ry, p=2), emb, pt_weight=0.1),
        ),
        Item(
            "began discriminator", "family", images4,
            lambda x, rx, y, ry: FG.began_discriminator_loss(FG.reconstruction_error(x, rx, p=1), FG.reconstruction_error(y, ry, p=1), k=0.3),
        ),
        Item(
            "began generator", "family",
            lambda g: [_randn(g, *_X), _randn(g, *_X)],
            lambda y, ry: FG.began_generator_loss(FG.reconstruction_error(y, ry, p=1)),
        ),
        Item(
            "began update (k, M_global)", "family", images4,
            lambda x, rx, y, ry: _began_update(x, rx, y, ry),
            grad=(False, False, False, False),
        ),
    ]


def family_items() -> list[Item]:
    """Every loss family's items: scores, penalties, autoencoders."""
    return _score_family_items() + _penalty_family_items() + _autoencoder_family_items()


def all_items() -> list[Item]:
    return operator_items() + family_items()


def cotangent(shape: torch.Size, g: torch.Generator) -> torch.Tensor:
    """A random upstream gradient of magnitude in [0.5, 2], either sign."""
    mag = 0.5 + 1.5 * torch.rand(shape, generator=g, dtype=F64)
    return torch.where(torch.rand(shape, generator=g, dtype=F64) < 0.5, -mag, mag)


def scales(item: Item, values64: Sequence[torch.Tensor], cot64: torch.Tensor, out64: torch.Tensor) -> dict[str, float]:
    """The scales of the absolute tolerance of the results that sum terms of both signs:
    ``{"forward" or "grad<i>": the magnitude of the summed terms}``."""
    scales: dict[str, float] = {}
    if item.alpha_scale:  # d/dalpha_b = sum_i cot_bi (real_bi - fake_bi), terms of both signs
        real, fake = values64[0], values64[1]
        if real.shape[0] != cot64.shape[0]:  # sliced: the leaf holds twice the batch
            real, fake = lay(real, "sliced"), lay(fake, "sliced")
        scales["grad2"] = (cot64 * (real - fake)).abs().reshape(real.shape[0], -1).sum(1).max().item()
    if item.cancellation:  # sums of terms of both signs: the scale is the terms' magnitude
        scales["forward"] = max(v.abs().mean().item() for v in values64) + abs(ADV_PARAMS["margin"])
    return scales
