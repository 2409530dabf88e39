"""Evidence computed from the numbers: how the user's quantities differ from the paper's
(value ratios, gradients that vanish, a gradient path that is missing or leaks, NaN)."""

from __future__ import annotations

import torch

from fastgan.testing.audit.measure import close

__all__ = ["describe", "summarise"]

_QUANTITIES = ("loss", "grad wrt D's parameters", "grad wrt G's output", "k_next", "weights after clip")


def _fmt(x: float) -> str:
    return f"{x:.4g}"


def _grad_line(u: torch.Tensor, r: torch.Tensor) -> str:
    nan_u, nan_r = int(torch.isnan(u).sum()), int(torch.isnan(r).sum())
    if nan_u != nan_r:
        return f"{nan_u} NaN entries (the paper's: {nan_r})"
    fin = torch.isfinite(u) & torch.isfinite(r)
    u, r = u[fin], r[fin]
    ru, rr = (u.abs().max().item() if u.numel() else 0.0), (r.abs().max().item() if r.numel() else 0.0)
    if rr == 0 and ru > 0:
        return f"non-zero (up to {_fmt(ru)}) where the paper's is 0 — a gradient path that leaks"
    if ru == 0 and rr > 0:
        return f"0 everywhere (the paper's up to {_fmt(rr)}) — a gradient path is missing"
    big = r.abs() > 1e-3 * rr
    vanish = big & (u.abs() <= 1e-9 * rr)
    if vanish.any():
        return (f"{int(vanish.sum())} of {int(big.sum())} entries vanish "
                f"(the paper's there up to {_fmt(r[vanish].abs().max().item())})")
    ratio = (u.dot(r) / r.dot(r)).item() if rr > 0 else float("nan")
    if rr > 0 and close(u, ratio * r):
        return f"= the paper's × {_fmt(ratio)}"
    return f"max |Δ| = {_fmt((u - r).abs().max().item())} (the paper's largest entry {_fmt(rr)})"


def describe(probe: str, user: dict, ref: dict) -> list[tuple[str, str, str, str]]:
    """``(quantity, probe, statement, fold key)`` for each quantity that differs on ``probe``; the
    fold key is equal on two probes when one statement can cover both."""
    lines = []
    for name in _QUANTITIES:
        if name not in user or name not in ref or close(user[name], ref[name]):
            continue
        u, r = user[name].to(torch.float64), ref[name].to(torch.float64)
        if name in ("loss", "k_next"):
            uv, rv = u.item(), r.item()
            digits = next((d for d in range(4, 17) if f"{uv:.{d}g}" != f"{rv:.{d}g}"), 17)
            ratio = _fmt(uv / rv) if rv != 0 and torch.isfinite(u).all() else ""
            ratio = "" if ratio == "1" else ratio  # a ratio that rounds to 1 says nothing
            text = f"yours {uv:.{digits}g}, the paper's {rv:.{digits}g}" + (f", ratio {ratio}" if ratio else "")
            lines.append((name, probe, text, f"= the paper's × {ratio}" if ratio else text + probe))
        else:
            text = _grad_line(u.reshape(-1), r.reshape(-1))
            lines.append((name, probe, text, text if text.startswith("=") else text + probe))
    return lines


def summarise(rows: list[tuple[str, str, str, str]], n_probes: int, limit: int = 5) -> list[str]:
    """Readable lines: a statement true on every probe is written once; at most ``limit`` lines."""
    lines, done = [], set()
    for name, probe, text, key in rows:
        if name in done:
            continue
        same = [r for r in rows if r[0] == name]
        if n_probes > 1 and len(same) == n_probes and len({r[3] for r in same}) == 1:
            lines.append(f"{name} {key} on every probe" if key.startswith("=") else f"{name}: {text} on every probe")
            done.add(name)
        else:
            lines.append(f"{name} on '{probe}'" + (f" {text}" if text.startswith("=") else f": {text}"))
    if len(lines) > limit:
        lines = lines[:limit] + [f"(and {len(lines) - limit} more differences)"]
    return lines
