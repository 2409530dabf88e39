"""PNG plots of ``fastgan bench`` results (matplotlib with the non-interactive Agg backend, so
they work on headless machines).

* :func:`speedup_plot`: per operator (and one panel for the families' full losses), bars of the
  speed-up over the eager idiom of every provider on every case (log scale); a line at 1×.
* :func:`bandwidth_plot`: GB/s of ideal bytes of every provider on every operator case, against
  the measured copy bandwidth (dashed line).
"""

from __future__ import annotations

import math

from fastgan.bench.report import display


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


SHORT = {"interpolate": "interp", "grad_norm_penalty": "gnp", "reconstruction_error": "rec", "adversarial_loss": "adv"}


def _case_label(r: dict) -> str:
    return "\n".join(filter(None, (r["shape"], r["params"].replace("kind=", ""))))


def _grouped_bars(ax, groups: list[str], providers: list[str], value, labels: bool = False) -> None:
    width = 0.8 / max(1, len(providers))
    for j, p in enumerate(providers):
        xs, ys = [], []
        for i, g in enumerate(groups):
            v = value(g, p)
            if v is not None:
                xs.append(i - 0.4 + width * (j + 0.5))
                ys.append(v)
        bars = ax.bar(xs, ys, width=width, label=display(p))
        if labels:
            ax.bar_label(bars, labels=[f"{y:.2g}×" for y in ys], fontsize=6, padding=1)
    ax.set_xticks(range(len(groups)))


def speedup_plot(rows: list[dict], path: str, title: str) -> None:
    """Speed-up over the eager idiom, one panel per operator (+ one for the full losses)."""
    timed = [r for r in rows if r.get("speedup_vs_eager_idiom")]
    panels = list(dict.fromkeys("full losses" if r.get("family") else r["op"] for r in timed))
    plt = _pyplot()
    from matplotlib.ticker import FuncFormatter

    if not panels:
        fig, ax = plt.subplots(figsize=(6, 2))
        ax.text(0.5, 0.5, "nothing was timed", ha="center", va="center")
        ax.axis("off")
        fig.savefig(path, dpi=110)
        plt.close(fig)
        return
    providers = [p for p in dict.fromkeys(r["provider"] for r in timed) if p != "eager_idiom"]
    widest = max(len({(r["op"], r["shape"], r["params"]) for r in timed if ("full losses" if r.get("family") else r["op"]) == p})
                 for p in panels)
    fig, axes = plt.subplots(len(panels), 1, figsize=(max(11.0, 1.1 * widest), 3.2 * len(panels)), squeeze=False)
    for ax, panel in zip(axes[:, 0], panels):
        mine = [r for r in timed if ("full losses" if r.get("family") else r["op"]) == panel]
        groups = list(dict.fromkeys((r["op"] + "\n" if r.get("family") else "") + _case_label(r) for r in mine))
        val = {((r["op"] + "\n" if r.get("family") else "") + _case_label(r), r["provider"]): r["speedup_vs_eager_idiom"] for r in mine}
        _grouped_bars(ax, groups, providers, lambda g, p: val.get((g, p)), labels=True)
        ax.set_xticklabels(groups, fontsize=7)
        ax.axhline(1.0, color="black", linewidth=0.8)
        ax.set_yscale("log", base=2)  # 0.5× and 2× equally far from 1×
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.3g}×"))
        ax.margins(y=0.15)
        ax.set_ylabel("speed-up over the eager idiom")
        ax.set_title(panel, fontsize=10)
        ax.legend(fontsize=7, ncol=min(5, len(providers)), loc="upper left")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.98))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def bandwidth_plot(rows: list[dict], copy_gbps: float, path: str, title: str) -> None:
    """Achieved GB/s (ideal bytes / median time) against the copy bandwidth."""
    timed = [r for r in rows if r.get("GBps") is not None and not r.get("family")]
    plt = _pyplot()
    n_groups = len({(r["op"], r["shape"], r["params"]) for r in timed})
    fig, ax = plt.subplots(figsize=(max(12.0, 0.85 * n_groups), 5))
    if timed:
        providers = list(dict.fromkeys(r["provider"] for r in timed))
        label = lambda r: SHORT.get(r["op"], r["op"]) + "\n" + _case_label(r)  # noqa: E731
        groups = list(dict.fromkeys(label(r) for r in timed))
        val = {(label(r), r["provider"]): r["GBps"] for r in timed}
        _grouped_bars(ax, groups, providers, lambda g, p: val.get((g, p)))
        ax.set_xticklabels(groups, fontsize=6)
        ax.set_xlabel("interp: interpolate, gnp: grad_norm_penalty, rec: reconstruction_error, adv: adversarial_loss",
                      fontsize=7)
        ax.legend(fontsize=7, ncol=min(6, len(providers) + 1), loc="upper right")
    else:
        ax.text(0.5, 0.5, "no operator was timed", ha="center", va="center", transform=ax.transAxes)
    if copy_gbps and math.isfinite(copy_gbps):
        ax.axhline(copy_gbps, color="black", linestyle="--", linewidth=1)
        ax.annotate(f"copy bandwidth {copy_gbps:.1f} GB/s", (0.01, copy_gbps), xycoords=("axes fraction", "data"),
                    textcoords="offset points", xytext=(0, 3), fontsize=8)
    ax.set_ylabel("GB/s of ideal bytes")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
