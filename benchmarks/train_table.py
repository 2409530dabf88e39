"""The README's training table: ``fastgan train`` with its defaults for each (family, dataset),
one run after another, each in its own process, timed from the command's start to its end.

    python benchmarks/train_table.py [--out DIR] [--runs "gan:ring8,gan:ring8 --lr 1e-3,..."] [--picture PNG]
    python benchmarks/train_table.py --only "cgan:*,*:swissroll" --steps 200 --out /tmp/smoke   # a subset, shorter

A run is ``LOSS:DATA`` (the defaults), optionally followed by ``fastgan train`` flags. ``--only``
keeps the runs whose ``LOSS:DATA`` matches one of its comma-separated patterns (``*`` is any
text); ``--steps N`` and ``--flags "..."`` are appended to every run's flags (they override the
run's own ``--steps``): for a quick check of the script, not for the README's numbers.

Time to quality: each run's ``metrics.json`` has the quality curve (``fastgan train`` evaluates
every ``--eval-every`` steps, off the training clock) and the training seconds and step at which
it first met its target (``fastgan.train.metrics.TARGETS``); the table shows them next to the
final metrics, the training seconds and the whole command's wall time.

Writes ``DIR/train-table.md`` (the table), ``DIR/train-table.json`` (every run's metrics.json
plus the wall time) and, when both grid25 runs of the picture are in the list, the picture of
samples over the data (``--picture``, default ``docs/train-grid25.png``). Each run's own outputs
(checkpoints included) go to ``RUNS_DIR/LOSS-DATA`` (``--runs-dir``, default ``runs/table``).
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import platform
import subprocess
import sys
import time

#: every family on ring8 and grid25 with its defaults, the Swiss roll, and the digits rows
FAMILIES = ("gan", "cgan", "wgan", "wgan-gp", "ebgan", "began", "lsgan", "hinge")
DEFAULT_RUNS = (
    *(f"{loss}:{data}" for data in ("ring8", "grid25") for loss in FAMILIES),
    "wgan-gp:swissroll", "gan:digits", "cgan:digits", "lsgan:digits", "wgan-gp:digits",
)
PICTURE = ("cgan:grid25", "wgan-gp:grid25")


def run_one(loss: str, data: str, flags: list[str], out: str) -> dict:
    # --overwrite: the table is measured afresh into the same folders each time
    cmd = [sys.executable, "-m", "fastgan", "train", "--loss", loss, "--data", data, "--out", out, "--no-progress",
           "--overwrite", *flags]
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stderr[-2000:]}")
    with open(os.path.join(out, "metrics.json"), encoding="utf-8") as f:
        report = json.load(f)
    report["wall_seconds"] = wall
    report["flags"] = " ".join(flags)
    print("\n  ".join(r.stdout.strip().splitlines()), f"({wall:.0f} s wall)", flush=True)
    return report


def _pct(x) -> str:
    return "–" if x is None else f"{100 * x:.1f} %"


def _secs(x) -> str:
    return f"{x:.1f}" if x < 10 else f"{x:.0f}"


def _target_cells(r: dict) -> tuple[str, str, str]:
    """(target, time to target (s), step) of a run's own target."""
    targets = r.get("targets") or []
    if not targets:
        return "–", "–", "–"
    t = targets[0]
    if t["reached"]:
        return t["name"], _secs(t["train_seconds"]), str(t["step"])
    if not t["measured"]:
        return t["name"], "not measured", "–"
    return t["name"], "not reached", "–"


def _further_targets(r: dict) -> str:
    cells = []
    for t in (r.get("targets") or [])[1:]:
        when = f"{_secs(t['train_seconds'])} s, step {t['step']}" if t["reached"] else "not reached"
        cells.append(f"{t['name']}: {when}")
    return "; ".join(cells) or "–"


def _threads(r: dict) -> str:
    """``1`` for a fixed count; ``auto: 1→2 (step 29)`` for --threads auto's switches."""
    choices = r.get("thread_choices")
    if not choices:
        return str(r.get("torch_threads", "–"))
    path = "→".join(str(t) for _, t in choices)
    return f"auto: {path}" + (f" (first switch at step {choices[1][0]})" if len(choices) > 1 else "")


def table(reports: list[dict]) -> str:
    rows = [
        "| family | data | flags | steps | modes | high quality | in requested mode | target | time to target (s) | "
        "step | other targets | training | whole command | generator steps/s | threads |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in reports:
        m = r["metrics"]
        n_modes = m.get("n_modes", m.get("n_classes"))
        modes = f"{m['modes']}/{n_modes}" if "modes" in m else "–"
        target, secs, step = _target_cells(r)
        rows.append(
            f"| {r['loss']} | {r['data']} | {r['flags'] or 'defaults'} | {r['steps']} | {modes} | {_pct(m['high_quality'])} | "
            f"{_pct(m.get('in_requested_mode'))} | {target} | {secs} | {step} | {_further_targets(r)} | "
            f"{_secs(r['train_seconds'])} s | {r['wall_seconds']:.0f} s | {r['generator_steps_per_s']:.0f} | "
            f"{_threads(r)} |"
        )
    return "\n".join(rows) + "\n"


def picture(runs_dir: str, reports: dict[str, dict], path: str, machine: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    import torch

    from fastgan.train import data as data_mod

    real = data_mod.create("grid25").sample(2500, torch.Generator().manual_seed(0))[0].numpy()
    fig, axes = plt.subplots(1, len(PICTURE), figsize=(4.2 * len(PICTURE), 4.2))
    for ax, key in zip(axes, PICTURE):
        r = reports[key]
        m = r["metrics"]
        x = np.load(os.path.join(runs_dir, key.replace(":", "-"), "samples.npy"))  # runs with no flags
        ax.scatter(real[:, 0], real[:, 1], s=4, alpha=0.4, label="data")
        ax.scatter(x[:, 0], x[:, 1], s=1, alpha=0.5, color="red", label="G(z)")
        ax.set_title(
            f"{r['loss']}, {r['steps']} steps, {r['wall_seconds']:.0f} s: "
            f"{m['modes']}/{m['n_modes']} modes, {100 * m['high_quality']:.1f}% HQ",
            fontsize=9,
        )
        ax.set_xlim(-6, 6)
        ax.set_ylim(-6, 6)
        ax.set_aspect("equal")
    axes[0].legend(loc="upper right", fontsize=8)
    fig.suptitle(f"fastgan train on grid25, defaults ({machine})", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="benchmarks/results/train")
    p.add_argument("--runs", default=",".join(DEFAULT_RUNS), help="comma-separated LOSS:DATA pairs")
    p.add_argument("--only", default=None,
                   help="comma-separated LOSS:DATA patterns (* for any text): only the runs that match one")
    p.add_argument("--steps", type=int, default=None, help="append --steps N to every run (a quick check)")
    p.add_argument("--flags", default="", help="fastgan train flags appended to every run")
    p.add_argument("--runs-dir", default=os.path.join("runs", "table"), help="where each run writes its outputs")
    p.add_argument("--picture", default="docs/train-grid25.png")
    p.add_argument("--machine", default=platform.processor() or platform.machine(), help="machine name for the picture")
    args = p.parse_args(argv)
    if args.steps is not None and args.steps < 1:
        p.error(f"--steps must be >= 1, got {args.steps}")
    runs_dir = args.runs_dir
    specs = [spec.strip() for spec in args.runs.split(",") if spec.strip()]
    if args.only is not None:
        patterns = [pat.strip() for pat in args.only.split(",") if pat.strip()]
        specs = [spec for spec in specs if any(fnmatch.fnmatchcase(spec.split()[0], pat) for pat in patterns)]
        if not specs:
            p.error(f"--only {args.only!r} matches none of the runs ({args.runs})")
    extra = args.flags.split() + ([] if args.steps is None else ["--steps", str(args.steps)])
    reports: dict[str, dict] = {}
    for spec in specs:  # one process per run, one at a time
        key, *flags = spec.split()
        loss, data = key.split(":")
        name = "-".join([loss, data, *(f.lstrip("-") for f in flags)])
        reports[spec] = run_one(loss, data, flags + extra, os.path.join(runs_dir, name))
    os.makedirs(args.out, exist_ok=True)
    md = table(list(reports.values()))
    with open(os.path.join(args.out, "train-table.md"), "w", encoding="utf-8") as f:
        f.write(md)
    with open(os.path.join(args.out, "train-table.json"), "w", encoding="utf-8") as f:
        json.dump(list(reports.values()), f, indent=2)
    print(md)
    if all(k in reports for k in PICTURE) and args.picture and not extra:  # never from a shortened run
        picture(runs_dir, reports, args.picture, args.machine)
    return 0


if __name__ == "__main__":
    sys.exit(main())
