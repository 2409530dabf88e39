"""Non-finite results (docs/audit.md, "Non-finite results"): where the user's loss or gradients
are NaN/inf on a probe and the paper's are finite, that is a finding of its own — named by the
probe's catalogue entry when it has one (e.g. ``pt-zero-row-nan`` on the zero-embedding probe),
else ``non-finite`` with the probe's likely cause — and the catalogue is matched on the numbers
that remain. NaN where the paper also gives NaN is agreement (``measure.close``)."""

from __future__ import annotations

import torch

from fastgan.testing.audit.catalogue import FAMILY_PAPER, entry
from fastgan.testing.audit.report import Finding

__all__ = ["NON_FINITE", "blown_up", "finite_part", "nonfinite_findings"]

NON_FINITE = "non-finite"  # the id (and kind) of a non-finite finding that no catalogue entry names
_TITLE = "NaN or inf where the paper's numbers are finite"
_CAUSE = "your code is NaN/inf on this probe ({purpose})"
_FIX = ("find the division by zero, the log of 0 or the overflow (torch.autograd.set_detect_anomaly(True) "
        "names the operation), or use fastgan.functional")


def _new_nonfinite(u: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    """The entries of ``u`` that are NaN/inf where ``r``'s are finite (a bool mask, flat)."""
    u, r = u.reshape(-1), r.reshape(-1)
    if u.numel() != r.numel():
        return torch.zeros(0, dtype=torch.bool)
    return ~torch.isfinite(u) & torch.isfinite(r)


def blown_up(users: list[dict], refs: list[dict]) -> dict[int, list[str]]:
    """Probe index -> the quantities in which the user's numbers (``users``) are NaN/inf where the
    paper's (``refs``) are finite; probes without any are left out."""
    out: dict[int, list[str]] = {}
    for i, (u, r) in enumerate(zip(users, refs)):
        names = [n for n, v in u.items()
                 if isinstance(v, torch.Tensor) and isinstance(r.get(n), torch.Tensor) and _new_nonfinite(v, r[n]).any()]
        if names:
            out[i] = names
    return out


def finite_part(users: list[dict], blown: dict[int, list[str]]) -> list[dict]:
    """The user's numbers without the quantities that blew up (new dicts; the inputs are kept)."""
    return [{n: v for n, v in u.items() if n not in blown.get(i, ())} for i, u in enumerate(users)]


def _describe(name: str, probe: str, u: torch.Tensor, r: torch.Tensor) -> str:
    if name in ("loss", "k_next"):
        return f"{name} on '{probe}': yours {u.item():.4g}, the paper's {r.item():.4g}"
    mask = _new_nonfinite(u, r)
    flat = u.reshape(-1)[mask]
    nan, inf = int(torch.isnan(flat).sum()), int(torch.isinf(flat).sum())
    what = " and ".join(t for t in (f"{nan} NaN" if nan else "", f"{inf} inf" if inf else "") if t)
    return f"{name} on '{probe}': {what} of {u.numel()} entries (the paper's finite there)"


def nonfinite_findings(family: str, part: str, probes: list, users: list[dict], refs: list[dict],
                       blown: dict[int, list[str]], matched_rest: bool) -> list[Finding]:
    """The findings for the non-finite numbers of ``part``: one per catalogue entry the probes name
    (``Probe.extra["nonfinite"]``, if it is one of ``family``'s for ``part``), one ``non-finite``
    finding for the probes that name none; ``matched_rest`` says whether other numbers remain to
    be matched to the catalogue."""
    groups: dict[str, list[str]] = {}
    fixes: dict[str, str] = {}
    for i, names in sorted(blown.items()):
        probe = probes[i]
        info = probe.extra.get("nonfinite") or {}
        entry_id = info.get("entry")
        if entry_id and not (family in entry(entry_id).families and part in entry(entry_id).parts):
            entry_id = None
        key = entry_id or NON_FINITE
        lines = groups.setdefault(key, [])
        lines += [_describe(n, probe.name, users[i][n], refs[i][n]) for n in names]
        lines.append(f"likely cause on '{probe.name}': {info.get('cause') or _CAUSE.format(purpose=probe.purpose)}")
        fixes.setdefault(key, info.get("fix") or _FIX)
    out = []
    for key, lines in groups.items():
        if matched_rest:
            lines.append("the other numbers are compared with the catalogue without these")
        if key == NON_FINITE:
            out.append(Finding(NON_FINITE, _TITLE, NON_FINITE, [part], lines, FAMILY_PAPER[family], fixes[key]))
        else:
            e = entry(key)
            out.append(Finding(e.id, e.title, e.kind, [part], lines, e.paper, e.fix))
    return out
