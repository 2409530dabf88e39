"""The run of ``fastgan bench``: every case × provider in ONE process, so that the ratios between
providers are comparable (same machine state, same inputs, interleaved rounds).

For each case: make every provider's function, check it against the reference (✓/✗ with the
largest error; compiling ``torch.compile`` happens here, untimed), warm the good ones, time them
in interleaved rounds, and derive speed-ups, GB/s and the share of the copy bandwidth. The copy
bandwidth is measured at the start, before every case (full runs) and at the end; the median of
the quiet measurements is the reference of "% copy BW".

On the CPU (a shared machine), the share of CPU time other processes used during each case is
recorded (``foreign_load``), a case is measured again when it was above 10 % (``--retries``),
and the run waits for quiet CPUs before each case within ``--max-wait`` seconds in all.
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import statistics
import sys
import time
import warnings
from datetime import datetime, timezone
from typing import Any

import fastgan
from fastgan.bench import cases as C
from fastgan.bench import report, timing
from fastgan.bench.load import Quiet
from fastgan.cli import TRAIN_EXTRA, UsageError, backend_selection, optional, writable_dir

#: --quick leaves torch.compile out of the families' full losses: compiling them costs more
#: than the whole quick run may take on a small machine
QUICK_SKIP = "torch.compile of the full losses runs without --quick only"

NO_MMAP = "glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=68719476736"


def no_mmap_active() -> bool:
    return "glibc.malloc.mmap_max=0" in os.environ.get("GLIBC_TUNABLES", "")


def _argv_from_args(args: argparse.Namespace) -> list[str]:
    """The ``fastgan bench`` command line that gives ``args`` (to run again under new
    allocator settings)."""
    argv = ["bench", "--device", args.device, "--ops", ",".join(args.ops), "--out", args.out]
    for flag in ("quick", "e2e", "no_mmap", "no_plots"):
        if getattr(args, flag):
            argv.append("--" + flag.replace("_", "-"))
    for opt in ("sizes", "backends", "baselines"):
        val = getattr(args, opt)
        if val is not None:
            argv += ["--" + opt, ",".join(val)]
    for opt in ("budget", "name", "max_wait", "retries"):
        val = getattr(args, opt)
        if val is not None:
            argv += ["--" + opt.replace("_", "-"), str(val)]
    return argv


def _monitor(device: timing.Device) -> timing.ForeignLoad | None:
    return timing.ForeignLoad().start() if device.type == "cpu" else None


def run_case(case: C.Case, provs: dict[str, C.Provider], device: timing.Device, settings: dict,
             quiet: Quiet, retries: int = 0, log=print, skip: dict[str, str] | None = None) -> list[dict]:
    """Check, then time, every provider on ``case``; one row per provider. ``skip``: providers
    left out of this case, with the reason (status ``skipped``)."""
    sets = C.input_sets(case, device)
    rows, steps, contexts = [], {}, {}
    ideal = case.ideal_bytes(4)
    skip = skip or {}
    for name, prov in provs.items():
        row: dict[str, Any] = {
            "op": case.op, "shape": case.shape_str, "params": case.params_str, "size": case.size,
            "family": case.family, "provider": name, "ideal_bytes": ideal, "input_sets": len(sets),
        }
        if name in skip:
            row.update(status="skipped", check="–", error=skip[name])
            rows.append(row)
            continue
        t0 = time.perf_counter()
        fn = None
        try:
            fn = prov.make(case, device.type)
        except Exception as exc:
            res = C.CheckResult(False, error=f"{type(exc).__name__}: {exc}")
        else:
            res = C.check(case, prov, fn, device.type)  # compiles `compiled`: never timed
        if res.ok:
            try:
                step = C.make_step(fn, sets)
                with prov.context():
                    step()  # a second warm call (compiled: the backward graph too)
                device.synchronize()
            except Exception as exc:
                res = C.CheckResult(False, res.max_error, error=f"{type(exc).__name__}: {exc}")
            else:
                steps[name], contexts[name] = step, prov.context
        row.update(status=res.status, check=res.mark(), max_error=res.max_error, error=res.error)
        if res.status != "ok":
            what = res.error or f"largest error {res.max_error:.3g} (in {res.where}) above the tolerance"
            log(f"  {case.label}: {report.display(name)} ✗ {what}: not timed")
        row["setup_s"] = round(time.perf_counter() - t0, 3)
        rows.append(row)
    attempts = []  # (foreign load, attempt, timings): a case measured on a busy machine is measured again
    for attempt in range(retries + 1):
        quiet.wait()
        mon = _monitor(device)
        timings = timing.measure(steps, timer=device.timer, contexts=contexts, **settings) if steps else {}
        foreign = mon.stop() if mon is not None else None
        attempts.append((foreign if foreign is not None else 0.0, attempt, timings, foreign))
        if foreign is None or foreign <= report.BUSY or quiet.left <= 0:
            break
        log(f"  other processes used {foreign:.0%} of the CPUs: measuring {case.label} again")
    _, _, timings, foreign = min(attempts, key=lambda a: a[:2])
    for row in rows:
        row["foreign_load"] = foreign
        row["attempts"] = len(attempts)
        t = timings.get(row["provider"])
        if t is None:
            continue
        row.update(median_s=t.median, min_s=t.minimum, iqr_rel=t.iqr_rel, samples=len(t.samples), calls_per_sample=t.calls)
        if ideal is not None:
            row["GBps"] = ideal / t.median / 1e9
    report.add_speedups(rows)
    return rows


def _settings(args: argparse.Namespace) -> dict:
    return dict(
        budget_s=args.budget if args.budget is not None else (0.25 if args.quick else 1.0),
        min_samples=5 if args.quick else 10,
        rounds=3 if args.quick else 5,
        warmup_s=0.05 if args.quick else 0.1,
    )


class _PlainProgress:
    """What is used of a tqdm bar, printing plain lines (where tqdm is not installed)."""

    def __init__(self, total: int) -> None:
        self.n, self.total = 0, total

    def set_postfix_str(self, text: str, refresh: bool = True) -> None:
        print(f"fastgan bench [{self.n + 1}/{self.total}] {text}", file=sys.stderr, flush=True)

    def update(self, n: int = 1) -> None:
        self.n += n

    def write(self, msg: str, file=None) -> None:
        print(msg, file=file or sys.stderr, flush=True)

    def close(self) -> None:
        pass


def _progress(total: int):
    """A tqdm progress bar on stderr (plain lines where tqdm is not installed, said once)."""
    try:
        from tqdm import tqdm
    except ImportError:
        print(f"fastgan bench: tqdm is not installed: plain progress lines ({TRAIN_EXTRA})", file=sys.stderr)
        return _PlainProgress(total)
    return tqdm(total=total, file=sys.stderr, desc="fastgan bench", unit="case", dynamic_ncols=True, mininterval=0.5)


def main(args: argparse.Namespace) -> int:
    """``fastgan bench`` (see :mod:`fastgan.bench`); returns the exit status. Usage errors are
    :class:`~fastgan.cli.UsageError`, raised before anything is measured or written."""
    backend_selection()  # a bad FASTGAN_BACKEND: every provider would fail
    if args.no_mmap and not no_mmap_active():
        if args.device != "cpu":
            raise UsageError("--no-mmap is for --device cpu (it sets the C library's allocator)")
        if platform.libc_ver()[0] != "glibc":
            raise UsageError("--no-mmap needs glibc (GLIBC_TUNABLES); set your allocator yourself")
        # glibc reads its tunables at start-up only: run again with them set
        env = dict(os.environ)
        env["GLIBC_TUNABLES"] = ":".join(filter(None, [env.get("GLIBC_TUNABLES"), NO_MMAP]))
        sys.stdout.flush()
        sys.stderr.flush()
        os.execve(sys.executable, [sys.executable, "-m", "fastgan", *_argv_from_args(args)], env)
    try:
        device = timing.get_device(args.device)
    except (timing.DeviceUnavailableError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    if args.backends is not None:
        unknown = [b for b in args.backends if b not in fastgan.backends.BACKENDS]
        if unknown:
            raise UsageError(f"--backends: unknown backend {', '.join(unknown)}; known: "
                             f"{', '.join(fastgan.backends.BACKENDS)}")
    baselines = tuple(args.baselines) if args.baselines is not None else C.BASELINES
    if set(baselines) - set(C.BASELINES):
        raise UsageError(f"--baselines takes {', '.join(C.BASELINES)}, got {', '.join(args.baselines)}")
    case_list = C.select(args.ops, args.sizes, args.quick)
    if not case_list and not args.e2e:
        from fastgan.bench import SIZES

        have = {op: sorted({c.size for c in C.select([op], list(SIZES), False)}, key=SIZES.index) for op in args.ops}
        raise UsageError(f"--ops {','.join(args.ops)} with --sizes {','.join(args.sizes or ())}"
                         f"{' --quick' if args.quick else ''} selects no case; their sizes: "
                         + "; ".join(f"{op}: {','.join(z)}" for op, z in have.items()))
    writable_dir(args.out)
    plots_wanted = not args.no_plots
    if plots_wanted and optional("matplotlib") is None:
        print(f"fastgan bench: matplotlib is not installed: no PNG plots ({TRAIN_EXTRA})", file=sys.stderr)
        plots_wanted = False
    e2e_data = None
    if args.e2e and optional("sklearn") is None:
        from fastgan.bench import e2e

        e2e_data = tuple(d for d in e2e.DATA if d != "digits")
        print(f"fastgan bench: scikit-learn is not installed: --e2e leaves out the digits ({TRAIN_EXTRA})",
              file=sys.stderr)
    warnings.simplefilter("ignore", fastgan.FastganWarning)
    settings = _settings(args)
    provs = C.providers(device.type, args.backends, baselines)
    missing = [b for b in args.backends or () if f"fastgan_{b}" not in provs]
    name = args.name or timing.short_machine_name(device.type)
    suffix = ("-quick" if args.quick else "") + ("-nommap" if no_mmap_active() else "")
    stem = os.path.join(args.out, f"{device.type}-{name}{suffix}")

    machine = timing.machine_info(device.type)
    print(f"# {device.description}, torch {machine['torch']}, fastgan {machine.get('fastgan')}, "
          f"backends {', '.join(p for p in provs if p.startswith('fastgan_')) or 'none'}", file=sys.stderr)
    if missing:
        print(f"# not available on {device.type}: {', '.join(missing)}", file=sys.stderr)
    t_start = time.perf_counter()
    cpu = device.type == "cpu"
    max_wait = args.max_wait if args.max_wait is not None else ((15.0 if args.quick else 300.0) if cpu else 0.0)
    bar = _progress(len(case_list) + (1 if args.e2e else 0))

    def log_err(msg: str) -> None:
        bar.write(msg, file=sys.stderr)

    quiet = Quiet(max_wait if cpu else 0.0, window_s=0.25 if args.quick else 0.5, log=log_err, threshold=report.BUSY)
    copier = timing.CopyBandwidth(device)
    copies: list[dict] = []

    def copy_bw(repeats: int) -> dict:
        quiet.wait()
        mon = _monitor(device)
        bw = copier.measure(repeats=repeats)
        bw["foreign_load"] = mon.stop() if mon is not None else None
        copies.append(bw)
        return bw

    first = copy_bw(7 if args.quick else 15)
    log_err(f"# copy bandwidth {first['GBps']:.1f} GB/s ({device.type}, {first['buffer_MiB']:.0f} MiB buffers)")
    retries = (args.retries if args.retries is not None else (1 if args.quick else 2)) if cpu else 0
    rows: list[dict] = []
    e2e_rows: list[dict] = []
    e2e_info: dict | None = None
    interrupted = None

    def on_signal(signum, frame):
        raise KeyboardInterrupt(signal.Signals(signum).name)

    previous = signal.signal(signal.SIGTERM, on_signal) if _main_thread() else None
    try:
        for case in case_list:
            bar.set_postfix_str(case.label, refresh=True)
            t0 = time.perf_counter()
            case_copy = None if args.quick else copy_bw(5)["GBps"]  # the bandwidth drifts
            skip = {"compiled": QUICK_SKIP} if args.quick and case.family else None
            case_rows = run_case(case, provs, device, settings, quiet, retries, log=log_err, skip=skip)
            for r in case_rows:
                r["copy_GBps_before_case"] = case_copy
            rows += case_rows
            best = {report.display(r["provider"]): timing.fmt_time(r["median_s"]) for r in case_rows if r.get("median_s")}
            fl = case_rows[0].get("foreign_load")
            busy = f", other processes {fl:.0%} of the CPUs" if fl is not None else ""
            log_err(f"{case.label} ({time.perf_counter() - t0:.0f}s{busy}): {best}")
            bar.update(1)
        if args.e2e:
            from fastgan.bench import e2e

            bar.set_postfix_str("training steps (--e2e)", refresh=True)
            e2e_rows, e2e_info = e2e.run(device, quick=args.quick, budget_s=settings["budget_s"], log=log_err,
                                         backends=args.backends, data=e2e_data)
            bar.update(1)
        copy_bw(7 if args.quick else 15)
    except KeyboardInterrupt as exc:  # Ctrl-C or SIGTERM: keep what was measured
        interrupted = str(exc) or "SIGINT"
        log_err(f"\ninterrupted ({interrupted}) after {len(report.cases_of(rows))} of {len(case_list)} cases: "
                "writing the partial results")
        if not rows:
            bar.close()
            return 130
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        bar.close()
    copier.close()
    quiet_copies = [c["GBps"] for c in copies if (c["foreign_load"] or 0) <= report.BUSY] or [c["GBps"] for c in copies]
    copy_gbps = statistics.median(quiet_copies)
    for r in rows:
        if r.get("GBps") is not None:
            r["share_of_copy_bw"] = r["GBps"] / copy_gbps
    elapsed = time.perf_counter() - t_start

    result = {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": "fastgan " + " ".join(_argv_from_args(args)),
        "device": device.type,
        "device_description": device.description,
        "timer": device.timer.name,
        "machine": machine,
        "copy_bandwidth": {"GBps_used": copy_gbps, "measurements": copies},
        "settings": {**settings, "quick": args.quick, "rotate_bytes": device.rotate_bytes,
                     "providers": list(provs), "dtype": "float32", "retries": retries, "max_wait_s": max_wait},
        "elapsed_s": round(elapsed, 1),
        "waited_for_quiet_s": round(quiet.waited, 1),
        "interrupted": interrupted,
        "results": rows,
        "e2e": {"info": e2e_info, "results": e2e_rows} if args.e2e else None,
    }
    report.write_json(stem + ".json", result)
    report.write_csv(stem + ".csv", rows, report.CSV_FIELDS)
    files = [stem + ".json", stem + ".csv", stem + ".md"]
    if e2e_rows:
        report.write_csv(stem + "-e2e.csv", e2e_rows, report.E2E_FIELDS)
        files.append(stem + "-e2e.csv")

    table = report.main_table(rows)
    copy_lo, copy_hi = min(quiet_copies), max(quiet_copies)
    notes = (
        f"{device.description}, torch {machine['torch']}, fp32, forward + backward w.r.t. every input "
        f"({'CUDA-event' if device.type == 'cuda' else 'wall-clock'} timing). Median per call (± half the "
        f"inter-quartile range). Check: largest |provider − reference| relative to the reference's largest "
        f"magnitude (✓ within {C.TOL_OP:.0e} for operators, {C.TOL_FAMILY:.0e} for full losses; ✗: never timed). "
        f"Copy bandwidth {copy_gbps:.1f} GB/s: median of {len(quiet_copies)} measurements during the run "
        f"({copy_lo:.1f}–{copy_hi:.1f}). Run took {elapsed / 60:.1f} min."
    )
    if cpu:
        notes += f" Allocator: {machine['allocator']}."
    if interrupted:
        notes += f" ⚠ PARTIAL: interrupted ({interrupted}) after {len(report.cases_of(rows))} of {len(case_list)} cases."
    busy = sorted({report.case_key(r) for r in rows if (r.get("foreign_load") or 0) > report.BUSY})
    if busy:
        notes += (f" ⚠ {len(busy)} case(s) ran while other processes used more than {report.BUSY:.0%} of the CPUs: "
                  "their times are not trustworthy.")
    md = notes + "\n\n" + table + "\n\nSummary (one line per case):\n\n" + report.summary_table(rows) + "\n"
    if args.e2e:
        md += "\nWhole training steps (--e2e):\n\n" + (report.e2e_table(e2e_rows) if e2e_rows else "nothing ran") + "\n"
    with open(stem + ".md", "w") as f:
        f.write(md)
    if plots_wanted:
        from fastgan.bench import plots

        title = f"fastgan bench, {device.description}, torch {machine['torch']}"
        try:
            plots.speedup_plot(rows, stem + "-speedup.png", title)
            plots.bandwidth_plot(rows, copy_gbps, stem + "-bandwidth.png", title)
            files += [stem + "-speedup.png", stem + "-bandwidth.png"]
        except ImportError as exc:
            print(f"fastgan bench: no PNG plots ({exc}; {TRAIN_EXTRA})", file=sys.stderr)
        except Exception as exc:  # a plot never costs the measurements
            print(f"fastgan bench: the plots failed ({type(exc).__name__}: {' '.join(str(exc).split())[:160]}); "
                  "the results are written", file=sys.stderr)
    print(notes + "\n")
    print(table)
    if args.e2e:
        print("\nWhole training steps (one D step + one G step of every family, then the DCGAN WGAN-GP case), "
              "reference backend against the fused ones:\n")
        print(report.e2e_table(e2e_rows) if e2e_rows else "nothing ran")
    print(f"\nwrote {', '.join(files)}", file=sys.stderr)
    failed = [r for r in rows if r["status"] != "ok" and provs.get(r["provider"], None) is not None
              and provs[r["provider"]].kind == "fastgan"]
    failed += [r for r in e2e_rows if r.get("status") == "wrong"]
    return 130 if interrupted else 1 if failed else 0


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()
