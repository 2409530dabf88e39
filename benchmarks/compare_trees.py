"""Before/after timing of two fastgan checkouts, in one run.

    python benchmarks/compare_trees.py BEFORE_DIR AFTER_DIR [--rounds 5] [--no-mmap]

Each directory is a fastgan checkout with its extension built in place. The rounds alternate
between the two (a fresh interpreter per round and tree, one torch thread), each timing forward +
backward of ``gan_discriminator_loss`` on 64 logits and of each operator at 64×3×64×64 fp32 on the
``cpu`` backend (medians of many repetitions); the table gives each tree's median over the rounds
and the after / before ratio. Run it on an idle machine. ``--no-mmap`` runs the children with
``fastgan bench --no-mmap``'s allocator settings: without them glibc may serve the 3 MB tensors
with fresh pages in some processes and not in others, which swings a memory-bound operator's time
by several times between runs of the same code.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

_CHILD = r"""
import json, sys, time
import torch
torch.set_num_threads(1)
import fastgan, fastgan.functional as FG
# the operators' public functions: fastgan.functional (>= 0.2) or fastgan.ops (0.1), so that
# either tree can be timed
ops = FG if hasattr(FG, "adversarial_loss") else fastgan.ops

def timed(fn, reps):
    for _ in range(max(3, reps // 10)):
        fn()
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter(); fn(); ts.append(time.perf_counter() - t0)
    ts.sort()
    return ts[len(ts) // 2]

g = torch.Generator().manual_seed(0)
def leaf(*shape):
    return torch.randn(*shape, generator=g).requires_grad_(True)

r64, f64 = leaf(64), leaf(64)
big = (64, 3, 64, 64)
a, b, alpha = leaf(*big), leaf(*big), torch.rand(64, generator=g).requires_grad_(True)
cases = {
    "gan_discriminator_loss, 64 logits": (lambda: FG.gan_discriminator_loss(r64, f64), [r64, f64], 2000),
    "interpolate 64x3x64x64": (lambda: ops.interpolate(a, b, alpha), [a, b, alpha], 40),
    "grad_norm_penalty 64x3x64x64": (lambda: ops.grad_norm_penalty(a), [a], 40),
    "reconstruction_error p=1 64x3x64x64": (lambda: ops.reconstruction_error(a, b, 1), [a, b], 40),
    "adversarial_loss bce 64x3x64x64": (lambda: ops.adversarial_loss(a, b, "bce"), [a, b], 40),
}
out = {}
with fastgan.use_backend("cpu"):
    for name, (fn, leaves, reps) in cases.items():
        def step():
            y = fn()
            torch.autograd.grad(y, leaves, torch.ones_like(y))
        out[name] = timed(step, reps)
print(json.dumps(out))
"""


def _run(tree: str, no_mmap: bool) -> dict[str, float]:
    env = {k: v for k, v in os.environ.items() if k not in ("TRITON_INTERPRET", "FASTGAN_BACKEND")}
    if no_mmap:
        from fastgan.bench.runner import NO_MMAP

        env["GLIBC_TUNABLES"] = NO_MMAP
    env["PYTHONPATH"] = os.path.abspath(tree)
    env["OMP_NUM_THREADS"] = "1"
    r = subprocess.run([sys.executable, "-c", _CHILD], env=env, capture_output=True, text=True, cwd=tree, check=True)
    return json.loads(r.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("before")
    p.add_argument("after")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--no-mmap", action="store_true", help="glibc's allocator without fresh pages per tensor")
    args = p.parse_args(argv)
    runs: dict[str, list[dict[str, float]]] = {"before": [], "after": []}
    for _ in range(args.rounds):
        runs["before"].append(_run(args.before, args.no_mmap))
        runs["after"].append(_run(args.after, args.no_mmap))
    print("| case | before (µs) [rounds' range] | after (µs) [rounds' range] | after / before |\n|---|---|---|---|")
    for name in runs["before"][0]:
        cells = []
        for side in ("before", "after"):
            ts = [r[name] * 1e6 for r in runs[side]]
            cells.append((statistics.median(ts), f"{statistics.median(ts):.1f} [{min(ts):.1f}–{max(ts):.1f}]"))
        print(f"| {name} | {cells[0][1]} | {cells[1][1]} | {cells[1][0] / cells[0][0]:.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
