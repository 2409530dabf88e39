"""Tables and files of ``fastgan bench``: the printed table, JSON, CSV and markdown.

A *row* is one provider on one case (a dict): ``op``, ``shape``, ``params``, ``size``, ``family``
(bool), ``provider``, ``status`` (``ok``, ``wrong``: failed the check, ``error``: raised),
``check`` (the ✓/✗ mark with the largest error), ``max_error``, and for a timed provider
``median_s``, ``iqr_rel``, ``GBps`` (operators), ``share_of_copy_bw``, ``speedup_vs_eager_idiom``,
``speedup_vs_compiled``.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from typing import Any

from fastgan.bench.timing import fmt_time, markdown_table

BUSY = 0.1  # foreign load above which a case is marked as measured on a busy machine

DISPLAY = {"eager_idiom": "eager idiom", "best_eager": "best eager", "compiled": "torch.compile"}

CSV_FIELDS = [
    "op", "shape", "params", "size", "family", "provider", "status", "check", "max_error", "error",
    "median_s", "min_s", "iqr_rel", "samples", "calls_per_sample", "input_sets", "ideal_bytes", "GBps",
    "share_of_copy_bw", "speedup_vs_eager_idiom", "speedup_vs_compiled", "foreign_load", "attempts",
    "copy_GBps_before_case", "setup_s",
]

E2E_FIELDS = ["family", "data", "model", "backend", "config", "gp_interval", "step", "d_steps", "status", "error",
              "median_s", "iqr_rel", "samples", "steps_per_sample", "ratio_vs_reference", "ratio_vs_fused",
              "first_d_loss", "expected_first_d_loss"]


def display(provider: str) -> str:
    return DISPLAY.get(provider, provider.replace("fastgan_", "fastgan "))


def case_key(row: dict) -> tuple[str, str, str]:
    return row["op"], row["shape"], row["params"]


def cases_of(rows: Iterable[dict]) -> list[tuple[str, str, str]]:
    return list(dict.fromkeys(case_key(r) for r in rows))


def add_speedups(rows: list[dict]) -> None:
    """Speed-ups over the eager idiom and over torch.compile of the same case (same rounds)."""
    by_case: dict[tuple, dict[str, dict]] = {}
    for r in rows:
        by_case.setdefault(case_key(r), {})[r["provider"]] = r
    for r in rows:
        if r.get("median_s") is None:
            continue
        by = by_case[case_key(r)]
        for base, key in (("eager_idiom", "speedup_vs_eager_idiom"), ("compiled", "speedup_vs_compiled")):
            b = by.get(base, {}).get("median_s")
            r[key] = b / r["median_s"] if b else None


def headline_provider(names: Iterable[str]) -> str | None:
    """The fastgan provider the summary columns speak of: a compiled backend if there is one."""
    fg = [n for n in names if n.startswith("fastgan_")]
    compiled_backends = [n for n in fg if n != "fastgan_reference"]
    return (compiled_backends or fg or [None])[0]


def _x(v: float | None) -> str:
    return f"{v:.2f}×" if v else "–"


def _time(r: dict) -> str:
    if r.get("median_s") is None:
        return {"ok": "–", "skipped": "skipped"}.get(r.get("status"), "not timed")
    iqr = r.get("iqr_rel")
    noise = f" ±{iqr * 50:.0f}%" if iqr is not None and iqr == iqr else ""
    return fmt_time(r["median_s"]) + noise


def _busy(by: Iterable[dict]) -> bool:
    return any((r.get("foreign_load") or 0) > BUSY for r in by)


def main_table(rows: list[dict]) -> str:
    """The one printed table: a line per case × provider — check (✓/✗ and the largest error
    relative to the reference's scale), median time (± half the inter-quartile range),
    speed-ups over the eager idiom and over torch.compile, GB/s of ideal bytes and share of the
    copy bandwidth (operators). ⚠ marks a case measured while other processes used more than
    10 % of the CPUs."""
    header = ["case", "provider", "check", "time", "vs idiom", "vs compile", "GB/s", "% copy BW"]
    out = []
    for case in cases_of(rows):
        by = [r for r in rows if case_key(r) == case]
        label = " ".join(filter(None, case)) + (" ⚠" if _busy(by) else "")
        for i, r in enumerate(by):
            gb = r.get("GBps")
            share = r.get("share_of_copy_bw")
            out.append([
                label if i == 0 else "",
                display(r["provider"]),
                r.get("check", ""),
                _time(r),
                _x(r.get("speedup_vs_eager_idiom")),
                _x(r.get("speedup_vs_compiled")),
                f"{gb:.1f}" if gb is not None else "–",
                f"{100 * share:.0f}%" if share is not None else "–",
            ])
    return markdown_table(header, out)


def summary_table(rows: list[dict]) -> str:
    """One line per case: the median time of each provider, then the speed-ups, GB/s and share
    of the copy bandwidth of the headline fastgan provider (the README's form)."""
    provs = list(dict.fromkeys(r["provider"] for r in rows))
    head = headline_provider(provs)
    header = ["operator / loss", "shape", "params"] + [display(p) for p in provs]
    if head:
        h = display(head).replace("fastgan ", "")
        header += [f"{h} vs idiom", f"{h} vs compile", f"{h} GB/s", f"{h} % copy BW"]
    out = []
    for case in cases_of(rows):
        by = {r["provider"]: r for r in rows if case_key(r) == case}
        line = list(case)
        if _busy(by.values()):
            line[1] += " ⚠"
        for p in provs:
            r = by.get(p, {})
            status = r.get("status")
            line.append(_time(r) if status in ("ok", "skipped") else ("✗ " + status if r else "–"))
        if head:
            r = by.get(head, {})
            gb, share = r.get("GBps"), r.get("share_of_copy_bw")
            line += [
                _x(r.get("speedup_vs_eager_idiom")), _x(r.get("speedup_vs_compiled")),
                f"{gb:.1f}" if gb is not None else "–", f"{100 * share:.0f}%" if share is not None else "–",
            ]
        out.append(line)
    return markdown_table(header, out)


def _e2e_time(r: dict | None) -> str:
    if r is None:
        return "–"
    return fmt_time(r.get("median_s")) if r.get("median_s") is not None else f"✗ {r.get('error') or r.get('status')}"


def e2e_table(rows: list[dict]) -> str:
    """Whole training steps: median time per step of each backend and the ratio
    reference / backend (above 1: the fused backend is faster). The DCGAN case's rows (those
    with a ``step`` other than ``D+G step``) follow in a table of their own: one line per
    backend × configuration with the D step and the full step (5 D + 1 G), the ratios against
    the reference and, for fused+lazy, against fused."""
    dcgan = [r for r in rows if r.get("step", "D+G step") != "D+G step"]
    header = ["family", "data (model)", "backend", "time per step", "reference / backend"]
    out = []
    for r in rows:
        if r.get("step", "D+G step") != "D+G step":
            continue
        ratio = r.get("ratio_vs_reference")
        out.append([r["family"], f"{r['data']} ({r['model']})", r["backend"], _e2e_time(r),
                    f"{ratio:.2f}×" if ratio else "–"])
    parts = [markdown_table(header, out)] if out else []
    if dcgan:
        parts.append(dcgan_table(dcgan))
    return "\n\n".join(parts)


def dcgan_table(rows: list[dict]) -> str:
    """The DCGAN WGAN-GP case of ``--e2e``, headed by a line that says what it is."""
    configs = list(dict.fromkeys((r["backend"], r["config"], r.get("gp_interval", 1)) for r in rows))
    by = {(r["backend"], r["config"], r.get("gp_interval", 1), r["step"]): r for r in rows}
    header = ["backend", "configuration", "D step", "full step (5 D + 1 G)", "reference / this (D, full)",
              "fused / this (D, full)"]
    out = []
    for b, conf, k in configs:
        d, full = by.get((b, conf, k, "D step")), by.get((b, conf, k, "full step"))

        def ratios(key: str) -> str:
            vals = [x.get(key) if x else None for x in (d, full)]
            return "–" if not any(vals) else ", ".join(f"{v:.2f}×" if v else "–" for v in vals)

        label = conf if conf != "fused+lazy" else f"fused + lazy reg. k={k}"
        out.append([b, label, _e2e_time(d), _e2e_time(full), ratios("ratio_vs_reference"), ratios("ratio_vs_fused")])
    model = rows[0].get("model", "")
    head = (f"DCGAN WGAN-GP ({model}; λ = 10, Adam(1e-4, (0.5, 0.9)), 5 critic steps per generator step; "
            "lazy regularisation: the penalty on every k-th critic step, weight × k, time amortised over its period):")
    return head + "\n\n" + markdown_table(header, out)


def write_json(path: str, report: dict[str, Any]) -> None:
    with open(path, "w") as f:
        json.dump(report, f, indent=1, default=str)


def write_csv(path: str, rows: list[dict], fields: list[str]) -> None:
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
