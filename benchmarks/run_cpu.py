"""Every operator × size × provider of fastgan's CPU benchmarks in ONE process, so that the
ratios between providers are comparable (same machine state, same inputs, interleaved rounds).

    python benchmarks/run_cpu.py                 # full run (~5-10 min on 2 cores)
    python benchmarks/run_cpu.py --quick         # small sizes, fewer samples (~1-2 min)
    python benchmarks/run_cpu.py --ops interpolate,grad_norm_penalty --out /tmp/bench

Writes ``<out>/cpu-<machine>.json`` and ``.csv`` (``cpu-<machine>-quick.*`` with ``--quick``)
and prints a markdown table for the README. What is measured and how: benchmarks/README.md and
the docstring of benchmarks/common.py. No time is asserted anywhere.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import signal
import statistics
import sys
import time
import traceback
import warnings
from datetime import datetime, timezone

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402

import common  # noqa: E402
import fastgan  # noqa: E402
import suite  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
BASELINES = ("eager_idiom", "best_eager", "compiled")
BUSY = 0.1  # foreign load above which a case is marked as measured on a busy machine


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="small sizes only, fewer samples")
    p.add_argument(
        "--ops", default=",".join(suite.OPS),
        help=f"comma-separated operators (default: all of {', '.join(suite.OPS)})",
    )
    p.add_argument(
        "--sizes", default=None,
        help="comma-separated size classes among small (64x3x64x64 and all logits), large "
        "(256x3x64x64), target (256x3x128x128); default all, --quick small",
    )
    p.add_argument("--out", default=os.path.join(HERE, "results"), help="output folder")
    p.add_argument("--name", default=None, help="machine name in the file names (default: from the CPU model)")
    p.add_argument(
        "--backends", default=None,
        help="comma-separated fastgan backends to time (default: fastgan.available_backends())",
    )
    p.add_argument(
        "--no-mmap", action="store_true",
        help="rerun under GLIBC_TUNABLES=glibc.malloc.mmap_max=0 (glibc only): freed tensors are "
        "reused instead of being returned to the kernel, so outputs are not fresh pages faulted "
        "in on every call (see README, 'Allocation'); results get a '-nommap' suffix",
    )
    p.add_argument("--budget", type=float, default=None, help="seconds of timed calls per provider and case")
    p.add_argument(
        "--max-wait", type=float, default=None,
        help="before each case, wait (up to 60 s, at most this many seconds in all; default 300, "
        "--quick 30, 0: never) for other processes to leave the CPUs idle",
    )
    p.add_argument(
        "--retries", type=int, default=None,
        help="measure a case again (default up to 2 times, --quick 1) when other processes used "
        "more than 10%% of the CPUs meanwhile, while --max-wait lasts; the quietest attempt is kept",
    )
    args = p.parse_args(argv)
    args.ops = [o.strip() for o in args.ops.split(",") if o.strip()]
    unknown = set(args.ops) - set(suite.OPS)
    if unknown:
        p.error(f"unknown operator(s) {', '.join(sorted(unknown))}; choose from {', '.join(suite.OPS)}")
    if args.sizes is not None:
        args.sizes = [z.strip() for z in args.sizes.split(",") if z.strip()]
        if set(args.sizes) - {"small", "large", "target"}:
            p.error("--sizes takes small, large and/or target")
    if args.backends is not None:
        args.backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    return args


def headline_provider(names: list[str]) -> str | None:
    """The fastgan provider the summary columns speak of: a compiled backend if there is one."""
    fg = [n for n in names if n.startswith("fastgan_")]
    compiled_backends = [n for n in fg if n != "fastgan_reference"]
    return (compiled_backends or fg or [None])[0]


class Quiet:
    """Waits for other processes to leave the CPUs, within a total budget of seconds."""

    def __init__(self, budget_s: float) -> None:
        self.left, self.waited = budget_s, 0.0

    def wait(self) -> None:
        if self.left <= 0:
            return
        waited, load = common.wait_until_quiet(threshold=BUSY, max_wait_s=min(60.0, self.left))
        self.left -= waited
        self.waited += waited
        if waited > 1:
            print(f"  waited {waited:.0f}s for other processes to leave the CPUs "
                  f"(their load now {load:.0%})", file=sys.stderr)


def run_case(case: suite.Case, provs: dict[str, suite.Provider], settings: dict,
             quiet: Quiet, retries: int = 0) -> list[dict]:
    sets = suite.input_sets(case)
    rows, steps, contexts = [], {}, {}
    for name, prov in provs.items():
        row = {
            "op": case.op, "shape": case.shape_str, "params": case.params_str, "size": case.size,
            "provider": name, "ideal_bytes": case.ideal_bytes, "input_sets": len(sets),
        }
        t0 = time.perf_counter()
        try:
            fn = prov.make(case)
            suite.check(case, prov, fn)  # compiles `compiled` on first use: not timed
            with prov.context():
                fn(*sets[0].tensors)  # a second warm call (compiled: the backward graph is warm)
        except Exception as exc:  # a wrong or broken provider is reported, never timed
            row["status"] = "FAILED: " + (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            print(f"  {name}: {row['status']}", file=sys.stderr)
            if not isinstance(exc, AssertionError):
                traceback.print_exc()
        else:
            row["status"] = "ok"
            steps[name], contexts[name] = suite.make_step(fn, sets), prov.context
        row["setup_s"] = round(time.perf_counter() - t0, 3)
        rows.append(row)
    attempts = []  # (foreign load, timings): a case measured on a busy machine is measured again
    for attempt in range(retries + 1):
        quiet.wait()
        load = common.ForeignLoad().start()
        timings = common.measure(steps, contexts=contexts, **settings) if steps else {}
        foreign = load.stop()
        attempts.append((foreign if foreign is not None else 0.0, attempt, timings))
        if foreign is None or foreign <= BUSY or quiet.left <= 0:
            break
        print(f"  other processes used {foreign:.0%} of the CPUs: measuring again", file=sys.stderr)
    foreign, _, timings = min(attempts, key=lambda a: a[:2])
    for row in rows:
        row["foreign_load"] = foreign
        row["attempts"] = len(attempts)
        t = timings.get(row["provider"])
        if t is None:
            continue
        row.update(
            median_s=t.median, min_s=t.minimum, iqr_rel=t.iqr_rel, samples=len(t.samples),
            calls_per_sample=t.calls, GBps=case.ideal_bytes / t.median / 1e9,
        )
    by = {r["provider"]: r for r in rows}
    for row in rows:
        if "median_s" not in row:
            continue
        for base, key in (("eager_idiom", "speedup_vs_eager_idiom"), ("compiled", "speedup_vs_compiled")):
            b = by.get(base, {})
            row[key] = b["median_s"] / row["median_s"] if "median_s" in b else None
    return rows


DISPLAY = {"eager_idiom": "eager idiom", "best_eager": "best eager", "compiled": "torch.compile"}


def display(provider: str) -> str:
    return DISPLAY.get(provider, provider.replace("fastgan_", "fastgan "))


def _cases(rows: list[dict]) -> list[tuple[str, str, str]]:
    return list(dict.fromkeys((r["op"], r["shape"], r["params"]) for r in rows))


def _case_label(case: tuple[str, str, str], by: dict[str, dict]) -> list[str]:
    line = list(case)
    if any((r.get("foreign_load") or 0) > BUSY for r in by.values()):
        line[1] += " ⚠"
    return line


def summary_table(rows: list[dict], copy_gbps: float) -> str:
    """One line per case: median time per call of each provider (± half the inter-quartile
    range), then speed-ups, GB/s and share of the copy bandwidth of the headline fastgan
    provider. ⚠ marks a case measured while other processes used more than 10 % of the CPUs."""
    provs = list(dict.fromkeys(r["provider"] for r in rows))
    head = headline_provider(provs)
    header = ["operator", "shape", "params"] + [display(p) for p in provs]
    if head:
        h = display(head).replace("fastgan ", "")
        header += [f"{h} vs idiom", f"{h} vs compile", f"{h} GB/s", f"{h} % copy BW"]
    out = []
    for case in _cases(rows):
        by = {r["provider"]: r for r in rows if (r["op"], r["shape"], r["params"]) == case}
        line = _case_label(case, by)
        for p in provs:
            r = by.get(p, {})
            if "median_s" in r:
                noise = f" ±{r['iqr_rel'] * 50:.0f}%" if r["iqr_rel"] == r["iqr_rel"] else ""
                line.append(common.fmt_time(r["median_s"]) + noise)
            else:
                line.append("FAILED" if r.get("status", "").startswith("FAILED") else "–")
        if head:
            r = by.get(head, {})
            if "median_s" in r:
                fx = lambda v: f"{v:.2f}×" if v else "–"  # noqa: E731
                line += [
                    fx(r.get("speedup_vs_eager_idiom")), fx(r.get("speedup_vs_compiled")),
                    f"{r['GBps']:.1f}", f"{100 * r['GBps'] / copy_gbps:.0f}%",
                ]
            else:
                line += ["–"] * 4
        out.append(line)
    return common.markdown_table(header, out)


def bandwidth_table(rows: list[dict], copy_gbps: float) -> str:
    """GB/s of ideal bytes (and % of the copy bandwidth) of every provider, for the
    memory-bound operators on image-sized inputs."""
    rows = [r for r in rows if r["op"] != "adversarial_loss"]
    if not rows:
        return ""
    provs = list(dict.fromkeys(r["provider"] for r in rows))
    header = ["operator", "shape", "params", "ideal MB"] + [display(p) for p in provs]
    out = []
    for case in _cases(rows):
        by = {r["provider"]: r for r in rows if (r["op"], r["shape"], r["params"]) == case}
        line = _case_label(case, by) + [f"{next(iter(by.values()))['ideal_bytes'] / 1e6:.0f}"]
        for p in provs:
            r = by.get(p, {})
            line.append(f"{r['GBps']:.1f} ({100 * r['GBps'] / copy_gbps:.0f}%)" if "GBps" in r else "–")
        out.append(line)
    return common.markdown_table(header, out)


NO_MMAP = "glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=68719476736"


def no_mmap_active() -> bool:
    return "glibc.malloc.mmap_max=0" in os.environ.get("GLIBC_TUNABLES", "")


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.no_mmap and not no_mmap_active():
        # glibc reads its tunables at start-up only: run this script again with them set
        if platform.libc_ver()[0] != "glibc":
            sys.exit("--no-mmap needs glibc (GLIBC_TUNABLES); with another C library set its allocator yourself")
        env = dict(os.environ)
        env["GLIBC_TUNABLES"] = ":".join(filter(None, [env.get("GLIBC_TUNABLES"), NO_MMAP]))
        args_list = list(argv) if argv is not None else sys.argv[1:]
        os.execve(sys.executable, [sys.executable, os.path.abspath(__file__), *args_list], env)
    warnings.simplefilter("ignore", fastgan.FastganWarning)
    settings = dict(
        budget_s=args.budget if args.budget is not None else (0.25 if args.quick else 1.0),
        min_samples=5 if args.quick else 10,
        rounds=3 if args.quick else 5,
        warmup_s=0.05 if args.quick else 0.1,
    )
    provs = suite.providers(args.backends)
    sizes = args.sizes or (["small"] if args.quick else ["small", "large", "target"])
    cases = [c for op in args.ops for c in suite.CASES[op] if c.size in sizes]
    name = args.name or common.short_machine_name()
    suffix = ("-quick" if args.quick else "") + ("-nommap" if no_mmap_active() else "")
    stem = os.path.join(args.out, f"cpu-{name}{suffix}")
    os.makedirs(args.out, exist_ok=True)

    machine = common.machine_info()
    print(f"# {machine['cpu_model']}, {machine['logical_cpus']} logical CPUs, {machine['torch_threads']} torch threads, "
          f"torch {machine['torch']}, fastgan {machine.get('fastgan')} backends {machine.get('fastgan_backends')}",
          file=sys.stderr)
    t_start = time.perf_counter()
    quiet = Quiet(args.max_wait if args.max_wait is not None else (30.0 if args.quick else 300.0))

    copier = common.CopyBandwidth()
    copies: list[dict] = []

    def copy_bw(repeats: int) -> dict:
        quiet.wait()
        load = common.ForeignLoad().start()
        bw = copier.measure(repeats=repeats)
        bw["foreign_load"] = load.stop()
        copies.append(bw)
        return bw

    print(f"# copy bandwidth {copy_bw(7 if args.quick else 15)['GBps']:.1f} GB/s", file=sys.stderr)
    retries = args.retries if args.retries is not None else (1 if args.quick else 2)
    rows: list[dict] = []
    interrupted = None

    def on_signal(signum, frame):
        raise KeyboardInterrupt(signal.Signals(signum).name)

    previous = signal.signal(signal.SIGTERM, on_signal)
    try:
        for i, case in enumerate(cases):
            t0 = time.perf_counter()
            case_copy = copy_bw(5)["GBps"]  # the bandwidth drifts: sampled before every case
            case_rows = run_case(case, provs, settings, quiet, retries)
            for r in case_rows:
                r["copy_GBps_before_case"] = case_copy
            rows += case_rows
            best = {r["provider"]: common.fmt_time(r["median_s"]) for r in case_rows if "median_s" in r}
            fl = case_rows[0].get("foreign_load")
            busy = f", other processes {fl:.0%} of the CPUs" if fl is not None else ""
            print(f"[{i + 1}/{len(cases)}] {case.op} {case.id} ({time.perf_counter() - t0:.0f}s{busy}, "
                  f"copy {case_copy:.1f} GB/s): {best}", file=sys.stderr)
        copy_bw(7 if args.quick else 15)
    except KeyboardInterrupt as exc:  # Ctrl-C or SIGTERM: keep what was measured
        interrupted = str(exc) or "SIGINT"
        print(f"\ninterrupted ({interrupted}) after {len(_cases(rows))} of {len(cases)} cases: "
              "writing the partial results", file=sys.stderr)
        if not rows:
            return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
    del copier
    # the reference of "% copy BW": the median of every copy measurement of the run (quiet ones)
    quiet_copies = [c["GBps"] for c in copies if (c["foreign_load"] or 0) <= BUSY] or [c["GBps"] for c in copies]
    copy_gbps = statistics.median(quiet_copies)
    copy_lo, copy_hi = min(quiet_copies), max(quiet_copies)
    for r in rows:
        if "GBps" in r:
            r["share_of_copy_bw"] = r["GBps"] / copy_gbps
    elapsed = time.perf_counter() - t_start

    report = {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join([os.path.basename(sys.argv[0])] + (argv if argv is not None else sys.argv[1:])),
        "machine": machine,
        "copy_bandwidth": {"GBps_used": copy_gbps, "measurements": copies},
        "settings": {**settings, "quick": args.quick, "rotate_bytes": common.ROTATE_BYTES,
                     "providers": list(provs), "dtype": "float32"},
        "elapsed_s": round(elapsed, 1),
        "waited_for_quiet_s": round(quiet.waited, 1),
        "interrupted": interrupted,
        "results": rows,
    }
    with open(stem + ".json", "w") as f:
        json.dump(report, f, indent=1)
    fields = ["op", "shape", "params", "size", "provider", "status", "median_s", "min_s", "iqr_rel",
              "samples", "calls_per_sample", "input_sets", "ideal_bytes", "GBps", "share_of_copy_bw",
              "speedup_vs_eager_idiom", "speedup_vs_compiled", "foreign_load", "attempts", "copy_GBps_before_case",
              "setup_s"]
    with open(stem + ".csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)

    table = summary_table(rows, copy_gbps)
    bw = bandwidth_table(rows, copy_gbps)
    if bw:
        table += f"\n\nGB/s of ideal bytes (share of the {copy_gbps:.1f} GB/s copy bandwidth):\n\n" + bw
    notes = (
        f"{machine['cpu_model']} ({machine['logical_cpus']} logical CPUs, {machine['torch_threads']} torch threads, "
        f"{machine['cpu_capability']}), torch {machine['torch']}, fp32, forward + backward w.r.t. every input. "
        f"Median per call (±half the inter-quartile range). Copy bandwidth {copy_gbps:.1f} GB/s: median of "
        f"{len(quiet_copies)} measurements during the run (they ranged {copy_lo:.1f}–{copy_hi:.1f}). "
        f"Allocator: {machine['allocator']}. "
        f"Run took {elapsed / 60:.1f} min."
    )
    if interrupted:
        notes += f" ⚠ PARTIAL: interrupted ({interrupted}) after {len(_cases(rows))} of {len(cases)} cases."
    busy = sorted({(r["op"], r["shape"], r["params"]) for r in rows if (r.get("foreign_load") or 0) > BUSY})
    if busy:
        notes += (f" ⚠ {len(busy)} case(s) ran while other processes used more than {BUSY:.0%} of the CPUs: "
                  "their times are not trustworthy.")
    with open(stem + ".md", "w") as f:
        f.write(notes + "\n\n" + table + "\n")
    print(notes + "\n")
    print(table)
    print(f"\nwrote {stem}.json, .csv, .md", file=sys.stderr)
    failed = [r for r in rows if r["status"] != "ok"]
    return 130 if interrupted else 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
