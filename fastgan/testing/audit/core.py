"""``audit``: run the user's loss code and fastgan's reference on the same probes, and name the
departures (docs/audit.md)."""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable

import torch

from fastgan.testing.audit import arguments, recipes
from fastgan.testing.audit.catalogue import FAMILY_PAPER, compatible, entries_for, entry
from fastgan.testing.audit.evidence import describe, summarise
from fastgan.testing.audit.measure import ATOL, RTOL, close, measure_loss, sandbox
from fastgan.testing.audit.nonfinite import blown_up, finite_part, nonfinite_findings
from fastgan.testing.audit.probes import Probe, make_probes
from fastgan.testing.audit.report import AuditReport, Finding

__all__ = ["audit"]

_FAKE = "grad wrt G's output"


def _numpy_eps(n: int) -> torch.Tensor:
    import numpy as np  # only reached when the user's code drew from NumPy

    return torch.from_numpy(np.random.random(n))


# where WGAN-GP's ε come from: torch.rand in the default dtype (float64 during the calls), in
# float32 (torch.FloatTensor(...).uniform_(), dtype=torch.float32: other numbers), or NumPy
_EPS = {"torch": lambda n: torch.rand(n), "torch-float32": lambda n: torch.rand(n, dtype=torch.float32).double(),
        "numpy": _numpy_eps}


class _Auditor:
    """The probes, the user's measured numbers and a cache of the recipes' numbers."""

    def __init__(self, family: str, hp: dict, probes: list[Probe], seed: int):
        self.family, self.hp, self.probes, self.seed = family, hp, probes, seed
        self.cache: dict = {}
        self.last_syncs: list[str] = []
        # where WGAN-GP's ε come from: set from the user's first call
        self.sources = ("torch", "torch-float32") if family == "wgan-gp" else ("torch",)
        self.source = self.sources[0]  # the one of the last match, for the evidence

    # ------------------------------------------------------------------ the recipes' numbers
    def recipe(self, part: str, flags: frozenset, source: str) -> list[dict]:
        """The numbers of the recipe with ``flags`` on every probe (ε from ``source``), cached."""
        key = (part, flags, source)
        if key not in self.cache:
            self.cache[key] = [self._recipe_on(part, flags, source, p) for p in self.probes]
        return self.cache[key]

    def _recipe_on(self, part, flags, source, probe):
        fam, hp, eps = self.family, self.hp, _EPS[source]
        if part == "g":
            return measure_loss("g", lambda D, f, *a: recipes.g_loss(fam, flags, hp, D, f, *a), probe, self.seed, with_real=False)
        if part == "k":
            k_next = self._run_k(lambda k, D, r, f, *lab: recipes.k_update(flags, hp, k, D, r, f, *lab), probe)
            return {"k_next": k_next}

        def d(detach):
            def fn(D, r, f, *rest):
                labels = rest[0] if probe.labels is not None else None
                k = rest[-1] if probe.k is not None else None
                return recipes.d_loss(fam, flags, hp, D, r, f.detach() if detach else f, f, labels, k, eps)
            return fn
        out = measure_loss("d", d(False), probe, self.seed, pass_k=probe.k is not None)
        out[_FAKE + " (fake detached)"] = measure_loss("d", d(True), probe, self.seed, pass_k=probe.k is not None)[_FAKE]
        return out

    def _run_k(self, fn, probe):
        D = copy.deepcopy(probe.D)
        args = [probe.k.clone(), D, probe.real.clone(), probe.fake.clone()]
        args += [probe.labels] if probe.labels is not None else []
        with sandbox(self.seed, count_syncs=True) as syncs:
            out = fn(*args)
        self.last_syncs = list(syncs.calls)
        if isinstance(out, torch.Tensor):
            if out.numel() != 1:
                raise TypeError(f"k_update must return k as a 0-dim tensor or a number, got shape {tuple(out.shape)}")
            return out.detach().to(torch.float64).reshape(1)
        if isinstance(out, (int, float)) and not isinstance(out, bool):
            self.last_syncs.append("returned a Python number")
            return torch.tensor([float(out)], dtype=torch.float64)
        raise TypeError(f"k_update must return k as a 0-dim tensor or a number, got {type(out).__name__}")

    # ------------------------------------------------------------------ the user's numbers
    def user(self, part: str, fn: Callable) -> list[dict]:
        """The numbers of the user's ``fn`` (part ``part``) on every probe."""
        if part == "k":
            out = []
            for p in self.probes:
                out.append({"k_next": self._run_k(fn, p), "syncs": self.last_syncs})
            return out
        name = {"d": "d_loss", "g": "g_loss"}[part]
        pass_k = part == "d" and self.family == "began"
        out = [measure_loss(name, fn, p, self.seed, pass_k=pass_k, with_real=part == "d") for p in self.probes]
        if part == "d" and out[0]["numpy rng"]:
            self.sources = ("numpy",)  # e.g. ε = Tensor(np.random.random((B, 1, 1, 1)))
            self.source = "numpy"
        return out


def _same(part: str, user: dict, cand: dict) -> bool:
    for name, u in user.items():
        if name in ("syncs", "numpy rng") or name not in cand:
            continue
        if part == "d" and name == _FAKE:  # the adversarial term may see a detached fake batch
            if not (close(u, cand[name]) or close(u, cand[_FAKE + " (fake detached)"])):
                return False
        elif not close(u, cand[name]):
            return False
    return True


def _matches(aud: _Auditor, part: str, users: list[dict], flags: frozenset) -> bool:
    for s in aud.sources:
        if all(_same(part, u, c) for u, c in zip(users, aud.recipe(part, flags, s))):
            aud.source = s
            return True
    return False


def _evidence(aud: _Auditor, part: str, users: list[dict], flags: frozenset = frozenset()) -> list[str]:
    """How the user's numbers differ from the recipe with ``flags`` (the paper's with none)."""
    refs = aud.recipe(part, flags, aud.source)
    rows = []
    for p, u, r in zip(aud.probes, users, refs):
        r = dict(r)
        if part == "d" and _FAKE in u:  # the alternative (fake detached or not) nearer the user's
            alt = r[_FAKE + " (fake detached)"]
            if (u[_FAKE] - alt).abs().nan_to_num(0).max() < (u[_FAKE] - r[_FAKE]).abs().nan_to_num(0).max():
                r[_FAKE] = alt
        rows += describe(p.name, u, r)
    lines = summarise(rows, len(aud.probes))
    if flags:
        lines = [f"against the paper's numbers with {', '.join(sorted(flags))} applied:"] + lines
    return lines


def _finding(entry_id: str, part: str, evidence: list[str], **extra) -> Finding:
    e = entry(entry_id)
    return Finding(e.id, e.title, e.kind, [part], list(evidence), e.paper, e.fix, **extra)


MAX_COMBINED = 3  # the most catalogue entries combined to explain one part's numbers


def _combinations(ids: list[str]):
    """The combinations of 2 … MAX_COMBINED entries tried, smallest first, in catalogue order."""
    for size in range(2, MAX_COMBINED + 1):
        for combo in itertools.combinations(ids, size):
            if compatible(combo):
                yield combo


def _search(aud: _Auditor, part: str, users: list[dict], ids: list[str]) -> list[Finding] | None:
    """One entry, else the smallest combination of entries (up to MAX_COMBINED) of ``ids`` that
    matches ``users`` on every probe, as findings; None if none does."""
    singles = [i for i in ids if _matches(aud, part, users, frozenset({i}))]
    if singles:
        return [_finding(singles[0], part, _evidence(aud, part, users), also_matches=singles[1:])]
    for combo in _combinations(ids):
        if _matches(aud, part, users, frozenset(combo)):
            return [_finding(a, part, _evidence(aud, part, users, frozenset(combo) - {a}),
                             together_with=[b for b in combo if b != a]) for a in combo]
    return None


def _unmatched(aud: _Auditor, part: str, users: list[dict]) -> Finding:
    aud.source = aud.sources[0]
    return Finding("unmatched", "a departure from the paper that matches no catalogue entry", "unmatched",
                   [part], _evidence(aud, part, users), FAMILY_PAPER[aud.family],
                   "compare your code with the paper's equation, or use fastgan.functional / fastgan.losses")


def _no_op(aud: _Auditor, part: str, users: list[dict], entry_id: str) -> bool:
    """True when ``entry_id`` changes none of the numbers in ``users`` (e.g. a NaN entry once the
    non-finite numbers are set aside)."""
    paper = aud.recipe(part, frozenset(), aud.sources[0])
    kept = [{n: r[n] for n in u if n in r} for u, r in zip(users, paper)]
    return all(_same(part, k, c) for k, c in zip(kept, aud.recipe(part, frozenset({entry_id}), aud.sources[0])))


def _diagnose(aud: _Auditor, part: str, users: list[dict]) -> list[Finding]:
    """The findings of one part: none; the entries (one, or up to MAX_COMBINED together) that
    explain every number; else the non-finite numbers as findings of their own, with the entries
    that explain the rest; else one unmatched departure."""
    if _matches(aud, part, users, frozenset()):
        return []
    ids = [e.id for e in entries_for(aud.family, part)]
    found = _search(aud, part, users, ids)
    if found is not None:
        return found
    paper = aud.recipe(part, frozenset(), aud.sources[0])
    blown = blown_up(users, paper)
    if not blown:
        return [_unmatched(aud, part, users)]
    rest = finite_part(users, blown)
    has_rest = any(isinstance(v, torch.Tensor) for u in rest for v in u.values())
    nonfinite = nonfinite_findings(aud.family, part, aud.probes, users, paper, blown, has_rest)
    if not has_rest or _matches(aud, part, rest, frozenset()):
        return nonfinite
    named = {f.id for f in nonfinite}
    found = _search(aud, part, rest, [i for i in ids if i not in named and not _no_op(aud, part, rest, i)])
    return nonfinite + (found if found is not None else [_unmatched(aud, part, rest)])


def _host_sync(users: list[dict]) -> list[Finding]:
    calls = sorted({c for u in users for c in u["syncs"]})
    if not calls:
        return []
    ev = [f"k_update read k or the errors back to the host: {', '.join(calls)}"]
    return [_finding("began-k-host-sync", "k", ev)]


def _audit_clip(aud: _Auditor, clip: Callable) -> list[Finding]:
    """WGAN's clip step: the user's ``clip(D)`` on a critic with weights beyond ±c."""
    D0 = next(p.extra["clip_D"] for p in aud.probes if "clip_D" in p.extra)
    D = copy.deepcopy(D0)
    with sandbox(aud.seed):
        clip(D)
    u = torch.cat([p.detach().reshape(-1) for p in D.parameters()])
    orig = torch.cat([p.detach().reshape(-1) for p in D0.parameters()])
    c = aud.hp["clip_value"]
    if close(u, orig.clamp(-c, c)):
        return []
    beyond = int((orig.abs() > c).sum())
    if close(u, orig):
        ev = [f"weights after clip: unchanged ({beyond} of {orig.numel()} weights beyond ±{c:g} stay there, up to {orig.abs().max().item():.4g})"]
        return [_finding("wgan-no-clip", "clip", ev)]
    c_user = u.abs().max().item()
    if close(u, orig.clamp(-c_user, c_user)):
        return [_finding("wgan-other-c", "clip", [f"weights after clip: clipped to ±{c_user:.4g} instead of ±{c:g}"])]
    ref = orig.clamp(-c, c)
    ev = [f"weights after clip: max |Δ| = {(u - ref).abs().max().item():.4g} from the paper's clip to ±{c:g}"]
    return [Finding("unmatched", "a departure from the paper that matches no catalogue entry", "unmatched",
                    ["clip"], ev, FAMILY_PAPER["wgan"], "call fastgan.functional.clip_weights_(D, c) after every critic step")]


def _merge(findings: list[Finding]) -> list[Finding]:
    """One finding per catalogue entry, listing every part it was found in."""
    out: dict[str, Finding] = {}
    merged = []
    for f in findings:
        if f.id in out and f.id != "unmatched":
            kept = out[f.id]
            kept.parts += [p for p in f.parts if p not in kept.parts]
            kept.evidence += [f"[{'/'.join(f.parts)}] {e}" for e in f.evidence]
            kept.together_with += [t for t in f.together_with if t not in kept.together_with]
            continue
        out[f.id] = f
        merged.append(f)
    return merged


def _probe_from_user(data) -> Probe:
    D, real, fake, labels, k = data
    return Probe("yours", "your D and batches", D, real, fake, labels, k)


def audit(family: str, d_loss: Callable | None = None, g_loss: Callable | None = None, *,
          k_update: Callable | None = None, clip: Callable | None = None, D: torch.nn.Module | None = None,
          real: torch.Tensor | None = None, fake: torch.Tensor | None = None, labels: torch.Tensor | None = None,
          k: float | None = None, seed: int = 0, **hparams) -> AuditReport:
    """Audit your own GAN loss code against the paper's (docs/audit.md).

    ``family`` is one of gan, cgan, wgan, wgan-gp, ebgan, began, lsgan. Your callables (any may
    be left out, at least one is given):

    * ``d_loss(D, real, fake[, labels][, k]) -> loss`` (``labels`` for cgan, ``k`` for began: a
      0-dim float64 tensor); ``fake`` stands for G's output: it requires grad, detach it or not;
    * ``g_loss(D, fake[, labels]) -> loss``;
    * ``k_update(k, D, real, fake) -> k_next`` (began);
    * ``clip(D)`` (wgan): clip the critic's weights in place.

    ``D`` is called as ``D(x)`` (``D(x, labels)`` for cgan) and returns logits of shape (B, 1);
    for ebgan an autoencoder returning ``(reconstruction, embedding)``, for began the
    reconstruction. With ``D``, ``real`` and ``fake`` (and ``labels``, ``k``) given, your D and
    batches (copied to float64) are a probe too. ``hparams`` are the values you meant
    (docs/audit.md; e.g. ``margin=`` for ebgan, ``one_sided=`` for wgan-gp). ``seed`` seeds the
    probes and, identically, torch's, NumPy's and Python's RNGs before each call (so WGAN-GP's ε
    are the same); the global RNG states are restored.

    Returns an :class:`AuditReport`. Bad arguments are a ``TypeError`` / ``ValueError`` naming
    the argument; an exception in your code propagates.
    """
    family = arguments.check_family(family)
    parts = arguments.check_callables(family, d_loss=d_loss, g_loss=g_loss, k_update=k_update, clip=clip)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    hp = arguments.check_hparams(family, hparams)
    data = arguments.check_data(family, D, real, fake, labels, k)
    probes = make_probes(family, hp, seed) + ([_probe_from_user(data)] if data is not None else [])
    aud = _Auditor(family, hp, probes, seed)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: threads only add overhead
    try:
        findings = _run_parts(aud, d_loss, g_loss, k_update, clip)
    finally:
        torch.set_num_threads(threads)
    notes = []
    if family == "wgan" and clip is None and d_loss is not None:
        notes.append("the weight clip was not audited: WGAN (eq. 5) clips after every critic step; pass clip=")
    tol = f"float64, tolerance {RTOL:g} of each quantity's largest magnitude (+{ATOL:g})"
    return AuditReport(family, _merge(findings), [p.name for p in probes], parts, tol, notes)


def _run_parts(aud: _Auditor, d_loss, g_loss, k_update, clip) -> list[Finding]:
    findings: list[Finding] = []
    for part, fn in (("d", d_loss), ("g", g_loss), ("k", k_update)):
        if fn is not None:
            users = aud.user(part, fn)
            findings += _diagnose(aud, part, users)
            if part == "k":
                findings += _host_sync(users)
    if clip is not None:
        findings += _audit_clip(aud, clip)
    return findings
