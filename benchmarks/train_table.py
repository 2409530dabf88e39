"""The README's training table: ``fastgan train`` with its defaults for each (family, dataset),
one run after another, each in its own process, timed from the command's start to its end.

    python benchmarks/train_table.py [--out DIR] [--runs "gan:ring8,gan:ring8 --lr 1e-3,..."] [--picture PNG]

A run is ``LOSS:DATA`` (the defaults), optionally followed by ``fastgan train`` flags.

Writes ``DIR/train-table.md`` (the table), ``DIR/train-table.json`` (every run's metrics.json
plus the wall time) and, when both grid25 runs of the picture are in the list, the picture of
samples over the data (``--picture``, default ``docs/train-grid25.png``). Each run's own outputs
(checkpoints included) go to ``RUNS_DIR/LOSS-DATA`` (``--runs-dir``, default ``runs/table``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time

DEFAULT_RUNS = (
    "wgan-gp:grid25", "cgan:grid25", "cgan:ring8", "wgan-gp:ring8", "wgan-gp:swissroll",
    "gan:ring8", "wgan:ring8", "ebgan:ring8", "began:ring8", "lsgan:ring8", "hinge:ring8",
    "gan:grid25", "gan:digits", "cgan:digits", "lsgan:digits", "wgan-gp:digits",
    # beyond the defaults: the published learning rate is what holds these back on 2-D data
    "gan:ring8 --lr 1e-3 --steps 4000", "lsgan:ring8 --lr 1e-3 --steps 4000",
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
    print(r.stdout.strip().splitlines()[-1], f"({wall:.0f} s wall)", flush=True)
    return report


def _pct(x) -> str:
    return "–" if x is None else f"{100 * x:.1f} %"


def table(reports: list[dict]) -> str:
    rows = [
        "| family | data | flags | steps | modes | high quality | in requested mode | training | whole command | generator steps/s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in reports:
        m = r["metrics"]
        n_modes = m.get("n_modes", m.get("n_classes"))
        modes = f"{m['modes']}/{n_modes}" if "modes" in m else "–"
        rows.append(
            f"| {r['loss']} | {r['data']} | {r['flags'] or 'defaults'} | {r['steps']} | {modes} | {_pct(m['high_quality'])} | "
            f"{_pct(m.get('in_requested_mode'))} | {r['train_seconds']:.0f} s | {r['wall_seconds']:.0f} s | "
            f"{r['generator_steps_per_s']:.0f} |"
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
    p.add_argument("--runs-dir", default=os.path.join("runs", "table"), help="where each run writes its outputs")
    p.add_argument("--picture", default="docs/train-grid25.png")
    p.add_argument("--machine", default=platform.processor() or platform.machine(), help="machine name for the picture")
    args = p.parse_args(argv)
    runs_dir = args.runs_dir
    reports: dict[str, dict] = {}
    for spec in args.runs.split(","):
        key, *flags = spec.split()
        loss, data = key.split(":")
        name = "-".join([loss, data, *(f.lstrip("-") for f in flags)])
        reports[spec.strip()] = run_one(loss, data, flags, os.path.join(runs_dir, name))
    os.makedirs(args.out, exist_ok=True)
    md = table(list(reports.values()))
    with open(os.path.join(args.out, "train-table.md"), "w", encoding="utf-8") as f:
        f.write(md)
    with open(os.path.join(args.out, "train-table.json"), "w", encoding="utf-8") as f:
        json.dump(list(reports.values()), f, indent=2)
    print(md)
    if all(k in reports for k in PICTURE) and args.picture:
        picture(runs_dir, reports, args.picture, args.machine)
    return 0


if __name__ == "__main__":
    sys.exit(main())
