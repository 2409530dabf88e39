"""The CPU kernels' hot loops, hand-written (``csrc/cpu/loops.h``) against ``at::vec::Vectorized``.

Builds ``benchmarks/vec_vs_handwritten.cpp`` (both versions of every hot loop, AVX2) with torch's
``cpp_extension.load``, then, in this one process, times each loop of every operator — and every
kind of ``adversarial_loss``, both sides — in fp32 and fp64 at about 1e5 and 4e6 elements, single
threaded. The two versions of a case are timed back to back in a random order, rounds of all cases
in a shuffled order; each measurement repeats the call for about ``--ms`` milliseconds. Reported per
case: the median time per element of each version over the rounds, and the ratio Vectorized /
hand-written (median of the per-round ratios, with their 10th-90th percentile range). The whole
comparison runs ``--sessions`` times, so the table also shows how much a median moves between
sessions on a shared machine. Each case's results are checked first: the two versions against each
other and, for fp32 (bf16, fp16), both against the fp64 loop (the largest relative error is printed).

``--variant lowp`` times bf16 and fp16 inputs on AVX2 instead (the shipped Vectorized loops of
loops_vec.cpp's namespace lowp against loops.h's AVX2 variants); ``--variant base`` compiles the
benchmark a second time without -mavx2 and times fp32 and fp64 at the baseline ISA (loops.h's
baseline variants against the same loops on Vectorized's DEFAULT capability, the .cpp's gv).

    python benchmarks/vec_vs_handwritten.py [--rounds 15] [--ms 8] [--sessions 2] [--out FILE.md] [--only LOOP]
                                            [--variant avx2|lowp|base]

Not part of the test suite; nothing here asserts on a time.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import sys
from pathlib import Path

import torch
from torch.utils import cpp_extension

ROOT = Path(__file__).resolve().parent.parent
KINDS = ("bce", "wgan", "lsgan", "hinge", "margin")  # the order of csrc/common/terms.h
SIZES = (100_000, 4_000_000)
DTYPES = (torch.float32, torch.float64)
# --variant: which comparison. avx2: the shipped loops_vec.cpp against loops.h's AVX2 variants, fp32
# and fp64; lowp: bf16 / fp16 inputs on AVX2 (Vectorized loading through load_to_float, in the .cpp's
# gv namespace) against loops.h's AVX2 variants; base: fp32 / fp64 at the baseline ISA (no -mavx2),
# loops.h's baseline variants against gv on Vectorized's DEFAULT capability.
VARIANTS = {"avx2": DTYPES, "lowp": (torch.bfloat16, torch.float16), "base": DTYPES}
# (operator, loop): the forward and backward loops of each operator
LOOPS = [
    ("grad_norm_penalty", "sum_squares"),
    ("grad_norm_penalty", "scale"),
    ("reconstruction_error", "rec_p1"),
    ("reconstruction_error", "rec_p2"),
    ("reconstruction_error", "rec_grad_p1"),
    ("reconstruction_error", "rec_grad_p2"),
    ("interpolate", "lerp"),
    ("interpolate", "lerp_grad"),
    ("interpolate", "lerp_backward"),
] + [("adversarial_loss", f"{loop}:{kind}:{side}") for kind in KINDS for side in ("fake", "real")
     for loop in ("adv_sum", "adv_grad")]


def build(base: bool = False):
    """The benchmark extension: both versions of every loop, compiled for AVX2 (the Vectorized side
    is mostly fastgan's own csrc/cpu/loops_vec.cpp); with ``base``, compiled for the baseline ISA
    (no -mavx2: loops.h's baseline variants against Vectorized's DEFAULT capability)."""
    if base:
        flags = ["-O3", "-ffp-contract=off", "-DCPU_CAPABILITY=DEFAULT", "-DCPU_CAPABILITY_DEFAULT",
                 "-DFASTGAN_BENCH_BASE"]
        sources = [str(ROOT / "benchmarks" / "vec_vs_handwritten.cpp")]
    else:
        flags = ["-O3", "-mavx2", "-mfma", "-mf16c", "-ffp-contract=off", "-DCPU_CAPABILITY=AVX2", "-DCPU_CAPABILITY_AVX2"]
        sources = [str(ROOT / "benchmarks" / "vec_vs_handwritten.cpp"), str(ROOT / "csrc" / "cpu" / "loops_vec.cpp")]
    return cpp_extension.load(
        name="fastgan_vec_bench_base" if base else "fastgan_vec_bench",
        sources=sources,
        extra_include_paths=[str(ROOT / "csrc" / "cpu")],
        extra_cflags=flags,
        verbose=False,
    )


class Case:
    """One loop at one dtype and size, with its inputs and outputs."""

    def __init__(self, op: str, loop: str, dtype: torch.dtype, n: int, seed: int = 0, generic: bool = False):
        self.op, self.dtype, self.n = op, dtype, n
        self.fn = "run_generic" if generic else "run"
        parts = loop.split(":")
        self.loop = parts[0]
        self.kind = KINDS.index(parts[1]) if len(parts) > 1 else 0
        self.real = len(parts) > 2 and parts[2] == "real"
        self.name = loop
        g = torch.Generator().manual_seed(seed)
        scale = 4.0 if self.loop.startswith("adv") else 1.0  # logits over the range softplus bends in
        self.inputs = [(torch.randn(n, generator=g, dtype=torch.float64) * scale).to(dtype) for _ in range(3)]
        self.outputs = [torch.empty(n, dtype=dtype) for _ in range(2)]

    def call(self, ext, vec: bool, reps: int = 1, inputs=None, outputs=None):
        ins, outs = inputs or self.inputs, outputs or self.outputs
        return getattr(ext, self.fn)(self.loop, vec, self.kind, self.real, *ins, *outs, reps)


def _rel_err(a: torch.Tensor, ref: torch.Tensor) -> float:
    a, ref = a.double(), ref.double()
    scale = ref.abs().clamp_min(torch.finfo(torch.float32).tiny)
    return float(((a - ref).abs() / scale).nan_to_num(0.0).max())


def check(ext, case: Case) -> str:
    """The largest relative difference of each version from the fp64 loop (fp32, bf16, fp16) or from
    the other version (fp64), over the returned value and the written outputs."""
    results = {}
    for vec in (False, True):
        outs = [torch.zeros_like(o) for o in case.outputs]
        _, value = case.call(ext, vec, outputs=outs)
        results[vec] = (value, outs)
    if case.dtype == torch.float64:
        (v0, o0), (v1, o1) = results[False], results[True]
        err = max([abs(v1 - v0) / max(abs(v0), 1e-300)] + [_rel_err(b, a) for a, b in zip(o0, o1)])
        return f"vec vs hand {err:.1e}"
    ins64 = [t.double() for t in case.inputs]
    outs64 = [torch.zeros(case.n, dtype=torch.float64) for _ in range(2)]
    _, v64 = case.call(ext, False, inputs=ins64, outputs=outs64)
    errs = []
    for vec in (False, True):
        value, outs = results[vec]
        errs.append(max([abs(value - v64) / max(abs(v64), 1e-300)] + [_rel_err(o, r) for o, r in zip(outs, outs64)]))
    return f"hand {errs[0]:.1e}, vec {errs[1]:.1e}"


def calibrate(ext, case: Case, ms: float) -> int:
    t, _ = case.call(ext, False, reps=3)
    return max(1, int(ms / 1e3 / max(t, 1e-9)))


def session(ext, cases: list[Case], reps: dict, rounds: int, rng: random.Random) -> dict:
    """Interleaved rounds: {case key: (hand times, vec times, per-round ratios)}."""
    out = {id(c): ([], [], []) for c in cases}
    for _ in range(rounds):
        order = list(cases)
        rng.shuffle(order)
        for c in order:
            t = {}
            for vec in rng.sample([False, True], 2):
                t[vec], _ = c.call(ext, vec, reps=reps[id(c)])
            hand, vect, ratios = out[id(c)]
            hand.append(t[False])
            vect.append(t[True])
            ratios.append(t[True] / t[False])
    return out


def _pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, round(q * (len(xs) - 1))))]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--ms", type=float, default=8.0, help="milliseconds per measurement")
    ap.add_argument("--sessions", type=int, default=2)
    ap.add_argument("--out", type=Path, default=None, help="write the markdown table here")
    ap.add_argument("--machine", default="2-core AMD EPYC VM, shared")
    ap.add_argument("--only", default=None, help="only the loops whose name contains this (e.g. lerp)")
    ap.add_argument("--variant", choices=sorted(VARIANTS), default="avx2",
                    help="avx2: fp32/fp64 on AVX2 (shipped loops_vec.cpp); lowp: bf16/fp16 on AVX2; "
                    "base: fp32/fp64 at the baseline ISA against Vectorized's DEFAULT capability")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    ext = build(base=args.variant == "base")
    generic = args.variant != "avx2"
    cases = [Case(op, loop, dt, n, generic=generic) for dt in VARIANTS[args.variant] for n in SIZES
             for op, loop in LOOPS if args.only is None or args.only in loop]
    checks = {id(c): check(ext, c) for c in cases}
    reps = {id(c): calibrate(ext, c, args.ms) for c in cases}
    rng = random.Random(0)
    sessions = [session(ext, cases, reps, args.rounds, rng) for _ in range(args.sessions)]

    lines = [
        "# CPU hot loops: hand-written vector code against at::vec::Vectorized",
        "",
        f"Machine: {args.machine} ({platform.processor() or platform.machine()}, {os.cpu_count()} cores), "
        f"torch {torch.__version__}, one thread. Made by `python benchmarks/vec_vs_handwritten.py "
        f"--rounds {args.rounds} --ms {args.ms:g} --sessions {args.sessions}"
        + (f" --only {args.only}" if args.only else "")
        + (f" --variant {args.variant}" if args.variant != "avx2" else "") + f"`: {args.rounds} interleaved rounds "
        f"per session, {args.sessions} sessions; ns/elem = median time per element; vec/hand = median of "
        "the per-round ratios (below 1: Vectorized is faster), [p10, p90] of those ratios in brackets, one "
        "column per session. Errors: largest relative difference from the fp64 loop (fp32, bf16, fp16 rows) or "
        "between the two versions (fp64 rows).",
        "",
        "| operator | loop | dtype | n | hand ns/elem | vec ns/elem | "
        + " | ".join(f"vec/hand s{i + 1}" for i in range(args.sessions)) + " | errors |",
        "|---|---|---|---|---|---|" + "---|" * args.sessions + "---|",
    ]
    for c in cases:
        hand = statistics.median(sessions[0][id(c)][0]) / c.n * 1e9
        vect = statistics.median(sessions[0][id(c)][1]) / c.n * 1e9
        cols = []
        for s in sessions:
            ratios = s[id(c)][2]
            cols.append(f"{statistics.median(ratios):.2f} [{_pct(ratios, 0.1):.2f}, {_pct(ratios, 0.9):.2f}]")
        dt = str(c.dtype).replace("torch.", "")
        lines.append(f"| {c.op} | {c.name} | {dt} | {c.n:.0e} | {hand:.3f} | {vect:.3f} | " + " | ".join(cols)
                     + f" | {checks[id(c)]} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
