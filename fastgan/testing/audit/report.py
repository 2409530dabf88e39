"""The audit's verdict: :class:`Finding` and :class:`AuditReport` (docs/audit.md)."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Finding", "AuditReport", "AuditFailure"]

PART_NAMES = {"d": "d_loss", "g": "g_loss", "k": "k_update", "clip": "clip"}


class AuditFailure(AssertionError):
    """Raised by :meth:`AuditReport.raise_if_failed`; its message is the printed report."""


@dataclass
class Finding:
    """One departure from the paper.

    ``id`` is the catalogue entry it matches (``"unmatched"`` if none); ``parts`` the user code it
    was found in (``"d"``, ``"g"``, ``"k"``, ``"clip"``); ``evidence`` the measured numbers;
    ``paper`` what the paper says (docs/design.md §1); ``fix`` a one-line fix; ``kind`` is
    ``"numeric"``, ``"performance"``, ``"unmatched"`` or ``"non-finite"`` (NaN/inf where the
    paper's numbers are finite, on a probe whose cause no catalogue entry names; id
    ``"non-finite"``); ``together_with`` names the entries it was matched with when only a pair
    (or three entries) together explain the numbers; ``also_matches`` other entries that explain
    the same numbers on these probes.
    """

    id: str
    title: str
    kind: str
    parts: list[str]
    evidence: list[str]
    paper: str
    fix: str
    together_with: list[str] = field(default_factory=list)
    also_matches: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        where = ", ".join(PART_NAMES[p] for p in self.parts)
        lines = [f"{self.id} [{where}]: {self.title}" + (" (performance)" if self.kind == "performance" else "")]
        if self.together_with:
            only = "only the pair explains" if len(self.together_with) == 1 else "only together they explain"
            lines.append(f"    together with: {', '.join(self.together_with)} ({only} the numbers)")
        if self.also_matches:
            lines.append(f"    the numbers also match: {', '.join(self.also_matches)}")
        lines += [f"    evidence: {e}" for e in self.evidence]
        lines += [f"    paper: {self.paper}", f"    fix: {self.fix}"]
        return "\n".join(lines)


@dataclass
class AuditReport:
    """The result of :func:`fastgan.testing.audit`: ``ok`` is True when every audited part agrees
    with the paper to the stated tolerance and no host sync was found where the paper has none;
    ``findings`` lists the departures; ``notes`` what was not audited; ``probes`` the probe names;
    ``parts`` the audited parts."""

    family: str
    findings: list[Finding]
    probes: list[str]
    parts: list[str]
    tolerance: str
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when there is no finding."""
        return not self.findings

    @property
    def ids(self) -> list[str]:
        """The ids of the findings, in order (``"unmatched"`` for a departure with no entry)."""
        return [f.id for f in self.findings]

    def __str__(self) -> str:
        verdict = "agrees with the paper" if self.ok else f"{len(self.findings)} departure(s) from the paper"
        audited = ", ".join(PART_NAMES[p] for p in self.parts)
        lines = [f"fastgan audit ({self.family}): {verdict}",
                 f"  audited: {audited}; probes: {', '.join(self.probes)}; {self.tolerance}"]
        for i, f in enumerate(self.findings, 1):
            lines.append(f"  [{i}] " + str(f).replace("\n", "\n  "))
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)

    def raise_if_failed(self) -> None:
        """Raise :class:`AuditFailure` (an ``AssertionError``) with the report if not ``ok``."""
        if not self.ok:
            raise AuditFailure(str(self))
