"""The catalogue of known departures from the papers (docs/audit.md, docs/design.md §1).

Each :class:`Entry` is executable: its ``id`` is a flag that the family recipes of
:mod:`fastgan.testing.audit.recipes` understand, so "the reference with this one departure" can be
run on the probes and compared with the user's numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Entry", "CATALOGUE", "EXCLUSIVE", "FAMILIES", "PARTS", "entry", "entries_for", "compatible"]

FAMILIES = ("gan", "cgan", "wgan", "wgan-gp", "ebgan", "began", "lsgan")
PARTS = ("d", "g", "k", "clip")  # the discriminator loss, the generator loss, BEGAN's k, WGAN's clip

_GP_PAPER = "docs/design.md §1, eq. 6: λ·mean_b((‖∇x̂ D(x̂)_b‖₂ − 1)²), x̂_b = x̃_b + ε_b(x_b − x̃_b), one ε_b per sample, the norm per sample"
_PT_PAPER = "docs/design.md §1, eq. 8: PT(S) = 1/(N(N−1)) Σ_{i≠j} cos²(S_i, S_j), cosines between samples"


@dataclass(frozen=True)
class Entry:
    """One known departure: ``id`` (also the recipes' flag), the ``families`` and ``parts`` it
    changes, a one-line ``title``, what the paper says (``paper``, an equation of
    docs/design.md §1), the one-line ``fix``, and its ``kind``: ``"numeric"`` (it changes the
    numbers) or ``"performance"`` (same numbers, a host sync)."""

    id: str
    families: tuple[str, ...]
    parts: tuple[str, ...]
    title: str
    paper: str
    fix: str
    kind: str = "numeric"


CATALOGUE: tuple[Entry, ...] = (
    Entry("d-averaged", ("gan", "cgan", "lsgan"), ("d",),
          "discriminator loss averages its two terms instead of summing them",
          "docs/design.md §1, eq. 3 / eq. 10: the real and the fake terms are added (LSGAN's ½ is inside each term)",
          "drop the final `/ 2` (use fastgan.functional.gan_discriminator_loss / lsgan_discriminator_loss)"),
    Entry("lsgan-no-half", ("lsgan",), ("d", "g"),
          "LSGAN loss without the ½",
          "docs/design.md §1, eq. 10: ½·mean((D(x) − b)²) + ½·mean((D(G(z)) − a)²); generator ½·mean((D(G(z)) − c)²)",
          "multiply each mean squared error by 0.5 (fastgan.functional.lsgan_*_loss)"),
    Entry("cgan-mse", ("gan", "cgan"), ("d", "g"),
          "GAN/CGAN trained with mean-squared error instead of the cross-entropy",
          "docs/design.md §1, eq. 3 / eq. 4: mean(softplus(−D(x))) + mean(softplus(D(G(z)))) on logits",
          "use nn.BCEWithLogitsLoss (or fastgan.functional.gan_*_loss) instead of nn.MSELoss"),
    Entry("bce-on-sigmoid", ("gan", "cgan"), ("d", "g"),
          "sigmoid outputs with nn.BCELoss: the gradient vanishes once D is confident",
          "docs/design.md §1, eq. 3: softplus of the logits, whose gradient never vanishes (→ 1 at large logits)",
          "drop the sigmoid and use nn.BCEWithLogitsLoss on the logits (fastgan.functional.gan_*_loss)"),
    Entry("saturating-g", ("gan", "cgan"), ("g",),
          "saturating generator loss where the non-saturating one was meant (or the reverse)",
          "docs/design.md §1, eq. 3: non-saturating mean(softplus(−D(G(z)))); saturating −mean(softplus(D(G(z))))",
          "train G against the 'real' label: BCEWithLogits(D(G(z)), ones) (fastgan.functional.gan_generator_loss)"),
    Entry("wgan-no-clip", ("wgan",), ("clip",),
          "WGAN critic weights not clipped",
          "docs/design.md §1, eq. 5: clip every critic weight to [−c, c], c = 0.01, after each critic step",
          "call fastgan.functional.clip_weights_(D, 0.01) after every critic step"),
    Entry("wgan-other-c", ("wgan",), ("clip",),
          "WGAN critic weights clipped to another c",
          "docs/design.md §1, eq. 5: clip every critic weight to [−c, c] with the c you meant (0.01 in the paper)",
          "clamp every parameter to [−c, c] with the intended c (fastgan.functional.clip_weights_(D, c))"),
    Entry("gp-missing", ("wgan-gp",), ("d",),
          "WGAN-GP critic loss without its gradient penalty", _GP_PAPER,
          "add the penalty: + fastgan.functional.gradient_penalty(D, real, fake) (λ = 10)"),
    Entry("gp-batch-norm", ("wgan-gp",), ("d",),
          "gradient-penalty norm over the whole batch instead of per sample", _GP_PAPER,
          "take the norm per sample: grad.flatten(1).norm(2, dim=1)"),
    Entry("gp-pixel-norm", ("wgan-gp",), ("d",),
          "gradient-penalty norm per pixel (over the channel axis) instead of per sample", _GP_PAPER,
          "flatten before the norm: grad.flatten(1).norm(2, dim=1), not grad.norm(2, dim=1)"),
    Entry("gp-axis-norm", ("wgan-gp",), ("d",),
          "gradient-penalty norm over one (the last) axis only", _GP_PAPER,
          "flatten before the norm: grad.flatten(1).norm(2, dim=1), not grad.norm(2, dim=-1)"),
    Entry("gp-one-eps", ("wgan-gp",), ("d",),
          "one ε for the whole batch instead of one per sample", _GP_PAPER,
          "draw ε per sample: torch.rand(B, 1, 1, 1)"),
    Entry("gp-sidedness", ("wgan-gp",), ("d",),
          "one-sided penalty where the two-sided one was meant (or the reverse)",
          _GP_PAPER + "; one-sided: max(0, ‖g‖ − 1)²",
          "use (norm − 1)² (two-sided) or relu(norm − 1)² (one-sided) as meant (gradient_penalty(one_sided=...))"),
    Entry("gp-leak", ("wgan-gp",), ("d",),
          "penalty inputs not detached: the critic's penalty leaks gradient into G", _GP_PAPER + "; x and x̃ are constants",
          "interpolate real.detach() and fake.detach()"),
    Entry("gp-no-create-graph", ("wgan-gp",), ("d",),
          "penalty gradient taken without create_graph=True: the penalty does not train the critic", _GP_PAPER,
          "torch.autograd.grad(..., create_graph=True)"),
    Entry("gp-sqrt-nan", ("wgan-gp",), ("d",),
          "norm written as sqrt(sum of squares): NaN gradient where a sample's gradient is 0", _GP_PAPER,
          "use torch.linalg.vector_norm / .norm(2, dim=1) (gradient 0 at 0)"),
    Entry("pt-cosines", ("ebgan",), ("g",),
          "pulling-away term sums cosines instead of their squares", _PT_PAPER, "square the cosine matrix before the sum"),
    Entry("pt-batch-axis", ("ebgan",), ("g",),
          "pulling-away term normalised over the batch axis (transposed)", _PT_PAPER,
          "normalise each sample's embedding: F.normalize(s, dim=1), not dim=0"),
    Entry("pt-diagonal", ("ebgan",), ("g",),
          "pulling-away term includes the diagonal i = j", _PT_PAPER,
          "leave the diagonal out: cos2.masked_fill(torch.eye(N, dtype=torch.bool), 0).sum()"),
    Entry("pt-no-normaliser", ("ebgan",), ("g",),
          "pulling-away term without 1/(N(N−1))", _PT_PAPER, "divide the sum by N·(N − 1)"),
    Entry("pt-zero-row-nan", ("ebgan",), ("g",),
          "pulling-away term NaN for an all-zero embedding (division by its zero norm)",
          _PT_PAPER + "; a zero embedding is orthogonal to every other (cos = 0)",
          "divide by torch.where(norm > 0, norm, 1) (or use fastgan.functional.pulling_away_term)"),
    Entry("ebgan-target-detached", ("ebgan",), ("g",),
          "EBGAN generator energy with the reconstruction target detached",
          "docs/design.md §1, eq. 8: mean(E(G(z))), E(v) = mean_i (v − AE(v))², differentiated through both v and AE(v)",
          "mse(recon, fake) without .detach() on fake (fastgan.functional.reconstruction_error(fake, recon, p=2))"),
    Entry("ebgan-batch-margin", ("ebgan",), ("d",),
          "EBGAN margin applied to the batch mean instead of each sample",
          "docs/design.md §1, eq. 7: mean(E(x)) + mean(max(0, m − E(G(z)))), the hinge per sample",
          "relu(margin − per-sample energies).mean() (fastgan.functional.ebgan_discriminator_loss)"),
    Entry("began-squared", ("began",), ("d", "g", "k"),
          "BEGAN with squared instead of absolute reconstruction errors",
          "docs/design.md §1, eq. 9: L(v) = mean_i |v − AE(v)| (η = 1)",
          "use the L1 error: (recon − x).abs() (fastgan.functional.reconstruction_error(x, recon, p=1))"),
    Entry("began-k-unclamped", ("began",), ("k",),
          "BEGAN k not clamped to [0, 1]",
          "docs/design.md §1: k_{t+1} = clamp(k_t + λ_k(γ·mean L(x) − mean L(G(z))), 0, 1)",
          "clamp the update: (k + lambda_k * balance).clamp(0, 1) (fastgan.functional.began_update)"),
    Entry("began-k-host-sync", ("began",), ("k",),
          "BEGAN k read back to the host every step (a device sync per step)",
          "docs/design.md §1: k_t is a tensor on the device, updated without a host sync",
          "keep k a 0-dim tensor: k = fastgan.functional.began_update(k, real_err, fake_err)[0] (no .item())",
          kind="performance"),
)

_BY_ID = {e.id: e for e in CATALOGUE}

EXCLUSIVE: tuple[frozenset[str], ...] = (
    frozenset({"gp-batch-norm", "gp-pixel-norm", "gp-axis-norm", "gp-sqrt-nan"}),  # the penalty's norm
    frozenset({"cgan-mse", "bce-on-sigmoid"}),  # the adversarial criterion
    frozenset({"wgan-no-clip", "wgan-other-c"}),  # the clip
    # no penalty: nothing of the penalty's can depart as well
    *(frozenset({"gp-missing", other}) for other in ("gp-batch-norm", "gp-pixel-norm", "gp-axis-norm", "gp-one-eps",
                                                    "gp-sidedness", "gp-leak", "gp-no-create-graph", "gp-sqrt-nan")),
)
"""Entries that replace the same piece of a loss: a combination the audit tries holds at most one
of each group (two of them would be one of them: the recipes apply only one)."""


def compatible(ids) -> bool:
    """True when the entries ``ids`` can be switched on together (at most one of each
    :data:`EXCLUSIVE` group)."""
    chosen = set(ids)
    return all(len(chosen & group) <= 1 for group in EXCLUSIVE)


def entry(entry_id: str) -> Entry:
    """The catalogue entry ``entry_id`` (a ``KeyError`` naming it if there is none)."""
    try:
        return _BY_ID[entry_id]
    except KeyError:
        raise KeyError(f"no catalogue entry {entry_id!r}") from None


def entries_for(family: str, part: str) -> list[Entry]:
    """The numeric entries that change ``part`` of ``family``, in catalogue order."""
    return [e for e in CATALOGUE if family in e.families and part in e.parts and e.kind == "numeric"]

# What each family's paper says (docs/design.md §1), for departures that match no entry.
FAMILY_PAPER = {
    "gan": "docs/design.md §1, eq. 3: D: mean(softplus(−D(x))) + mean(softplus(D(G(z)))); G: mean(softplus(−D(G(z))))",
    "cgan": "docs/design.md §1, eq. 4: the GAN loss (eq. 3) with D and G both given the condition y",
    "wgan": "docs/design.md §1, eq. 5: D: mean(D(G(z))) − mean(D(x)), then clip weights to [−c, c]; G: −mean(D(G(z)))",
    "wgan-gp": "docs/design.md §1, eq. 6: the WGAN critic loss + λ·mean_b((‖∇x̂ D(x̂)_b‖₂ − 1)²); G: −mean(D(G(z)))",
    "ebgan": "docs/design.md §1, eq. 7-8: D: mean(E(x)) + mean(max(0, m − E(G(z)))); G: mean(E(G(z))) + λ_PT·PT(S)",
    "began": "docs/design.md §1, eq. 9: D: mean(L(x)) − k_t·mean(L(G(z))); G: mean(L(G(z))); k_{t+1} = clamp(k_t + λ_k(γ·mean L(x) − mean L(G(z))), 0, 1)",
    "lsgan": "docs/design.md §1, eq. 10: D: ½·mean((D(x) − b)²) + ½·mean((D(G(z)) − a)²); G: ½·mean((D(G(z)) − c)²)",
}
