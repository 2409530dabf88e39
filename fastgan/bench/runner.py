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
import sys
import time
import warnings
from typing import Any

import fastgan
from fastgan.bench import cases as C
from fastgan.bench import outputs, report, timing
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


def _row(case: C.Case, name: str, ideal: int | None, n_sets: int) -> dict[str, Any]:
    return {"op": case.op, "shape": case.shape_str, "params": case.params_str, "size": case.size,
            "family": case.family, "provider": name, "ideal_bytes": ideal, "input_sets": n_sets}


def prepare(case: C.Case, name: str, prov: C.Provider, device: timing.Device, sets: list,
             log) -> tuple[C.CheckResult, Any]:
    """Make ``prov``'s function, check it (compiles ``compiled``: never timed) and warm its
    step; returns (the check's result, the step or ``None`` when it is not to be timed). The
    pytest-benchmark suites (``benchmarks/``) prepare each provider with it too."""
    fn = None
    try:
        fn = prov.make(case, device.type)
    except Exception as exc:
        res = C.CheckResult(False, error=f"{type(exc).__name__}: {exc}")
    else:
        res = C.check(case, prov, fn, device.type)
    step = None
    if res.ok:
        try:
            step = C.make_step(fn, sets)
            with prov.context():
                step()  # a second warm call (compiled: the backward graph too)
            device.synchronize()
        except Exception as exc:
            res, step = C.CheckResult(False, res.max_error, error=f"{type(exc).__name__}: {exc}"), None
    if res.status != "ok":
        what = res.error or f"largest error {res.max_error:.3g} (in {res.where}) above the tolerance"
        log(f"  {case.label}: {report.display(name)} ✗ {what}: not timed")
    return res, step


def _time(case: C.Case, steps: dict, contexts: dict, device: timing.Device, settings: dict, quiet: Quiet,
          retries: int, log) -> tuple[dict, float | None, int]:
    """Time ``steps``, again (up to ``retries`` times) while other processes used the CPUs;
    returns (the quietest attempt's timings, its foreign load, the number of attempts)."""
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
    return timings, foreign, len(attempts)


def run_case(case: C.Case, provs: dict[str, C.Provider], device: timing.Device, settings: dict,
             quiet: Quiet, retries: int = 0, log=print, skip: dict[str, str] | None = None) -> list[dict]:
    """Check, then time, every provider on ``case``; one row per provider. ``skip``: providers
    left out of this case, with the reason (status ``skipped``)."""
    sets = C.input_sets(case, device)
    rows, steps, contexts = [], {}, {}
    ideal = case.ideal_bytes(4)
    skip = skip or {}
    for name, prov in provs.items():
        row = _row(case, name, ideal, len(sets))
        rows.append(row)
        if name in skip:
            row.update(status="skipped", check="–", error=skip[name])
            continue
        t0 = time.perf_counter()
        res, step = prepare(case, name, prov, device, sets, log)
        if step is not None:
            steps[name], contexts[name] = step, prov.context
        row.update(status=res.status, check=res.mark(), max_error=res.max_error, error=res.error)
        row["setup_s"] = round(time.perf_counter() - t0, 3)
    timings, foreign, attempts = _time(case, steps, contexts, device, settings, quiet, retries, log)
    for row in rows:
        row["foreign_load"] = foreign
        row["attempts"] = attempts
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


# --------------------------------------------------------------------------------------------
# the command


def _rerun_without_mmap(args: argparse.Namespace) -> None:
    """``--no-mmap``: run ``fastgan bench`` again with glibc's tunables set (glibc reads them at
    start-up only); nothing to do when they are set already."""
    if not args.no_mmap or no_mmap_active():
        return
    if args.device != "cpu":
        raise UsageError("--no-mmap is for --device cpu (it sets the C library's allocator)")
    if platform.libc_ver()[0] != "glibc":
        raise UsageError("--no-mmap needs glibc (GLIBC_TUNABLES); set your allocator yourself")
    env = dict(os.environ)
    env["GLIBC_TUNABLES"] = ":".join(filter(None, [env.get("GLIBC_TUNABLES"), NO_MMAP]))
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, "-m", "fastgan", *_argv_from_args(args)], env)


def _device(args: argparse.Namespace) -> timing.Device:
    try:
        return timing.get_device(args.device)
    except (timing.DeviceUnavailableError, ValueError) as exc:
        raise UsageError(str(exc)) from None


def _baselines(args: argparse.Namespace) -> tuple[str, ...]:
    """The baselines asked for; an unknown backend or baseline is a usage error."""
    if args.backends is not None:
        unknown = [b for b in args.backends if b not in fastgan.backends.BACKENDS]
        if unknown:
            raise UsageError(f"--backends: unknown backend {', '.join(unknown)}; known: "
                             f"{', '.join(fastgan.backends.BACKENDS)}")
    baselines = tuple(args.baselines) if args.baselines is not None else C.BASELINES
    if set(baselines) - set(C.BASELINES):
        raise UsageError(f"--baselines takes {', '.join(C.BASELINES)}, got {', '.join(args.baselines)}")
    return baselines


def _cases(args: argparse.Namespace) -> list[C.Case]:
    """The cases of the run; a selection of none (without ``--e2e``) is a usage error."""
    case_list = C.select(args.ops, args.sizes, args.quick)
    if not case_list and not args.e2e:
        have = {op: sorted({c.size for c in C.select([op], list(C.SIZES), False)}, key=C.SIZES.index)
                for op in args.ops}
        raise UsageError(f"--ops {','.join(args.ops)} with --sizes {','.join(args.sizes or ())}"
                         f"{' --quick' if args.quick else ''} selects no case; their sizes: "
                         + "; ".join(f"{op}: {','.join(z)}" for op, z in have.items()))
    return case_list


def _optional_parts(args: argparse.Namespace) -> tuple[bool, tuple[str, ...] | None]:
    """(whether to draw the plots, the --e2e data): what the optional packages allow, said once."""
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
    return plots_wanted, e2e_data


def main(args: argparse.Namespace) -> int:
    """``fastgan bench`` (see :mod:`fastgan.bench`); returns the exit status. Usage errors are
    :class:`~fastgan.cli.UsageError`, raised before anything is measured or written."""
    backend_selection()  # a bad FASTGAN_BACKEND: every provider would fail
    _rerun_without_mmap(args)
    device = _device(args)
    baselines = _baselines(args)
    case_list = _cases(args)
    writable_dir(args.out)
    plots_wanted, e2e_data = _optional_parts(args)
    warnings.simplefilter("ignore", fastgan.FastganWarning)
    run = Run(args, device, case_list, C.providers(device.type, args.backends, baselines), e2e_data)
    if not run.measure():
        return 130
    return outputs.finish(run, plots_wanted)


class Run:
    """One ``fastgan bench`` run: its settings, what it measured so far (``rows``, ``e2e_rows``,
    the copy bandwidths ``copies``), and whether it was interrupted."""

    def __init__(self, args: argparse.Namespace, device: timing.Device, case_list: list[C.Case],
                 provs: dict[str, C.Provider], e2e_data: tuple[str, ...] | None) -> None:
        self.args, self.device, self.case_list, self.provs, self.e2e_data = args, device, case_list, provs, e2e_data
        self.settings = _settings(args)
        self.command = "fastgan " + " ".join(_argv_from_args(args))
        self.cpu = device.type == "cpu"
        name = args.name or timing.short_machine_name(device.type)
        suffix = ("-quick" if args.quick else "") + ("-nommap" if no_mmap_active() else "")
        self.stem = os.path.join(args.out, f"{device.type}-{name}{suffix}")
        self.machine = timing.machine_info(device.type)
        self.max_wait = args.max_wait if args.max_wait is not None else (
            (15.0 if args.quick else 300.0) if self.cpu else 0.0)
        self.retries = (args.retries if args.retries is not None else (1 if args.quick else 2)) if self.cpu else 0
        self.rows: list[dict] = []
        self.e2e_rows: list[dict] = []
        self.e2e_info: dict | None = None
        self.copies: list[dict] = []
        self.interrupted: str | None = None
        self.elapsed = 0.0
        self.bar: Any = None
        self.quiet: Quiet | None = None

    def log(self, msg: str) -> None:
        self.bar.write(msg, file=sys.stderr)

    def _header(self) -> None:
        missing = [b for b in self.args.backends or () if f"fastgan_{b}" not in self.provs]
        fused = ", ".join(p for p in self.provs if p.startswith("fastgan_")) or "none"
        print(f"# {self.device.description}, torch {self.machine['torch']}, fastgan {self.machine.get('fastgan')}, "
              f"backends {fused}", file=sys.stderr)
        if missing:
            print(f"# not available on {self.device.type}: {', '.join(missing)}", file=sys.stderr)

    def copy_bw(self, repeats: int) -> dict:
        """Measure the copy bandwidth (after waiting for quiet CPUs) and keep it."""
        self.quiet.wait()
        mon = _monitor(self.device)
        bw = self.copier.measure(repeats=repeats)
        bw["foreign_load"] = mon.stop() if mon is not None else None
        self.copies.append(bw)
        return bw

    def measure(self) -> bool:
        """Every case (and ``--e2e``), the copy bandwidth before, during and after; ``False``
        when interrupted before anything was measured (nothing to write)."""
        args, device = self.args, self.device
        self._header()
        t_start = time.perf_counter()
        self.bar = _progress(len(self.case_list) + (1 if args.e2e else 0))
        self.quiet = Quiet(self.max_wait if self.cpu else 0.0, window_s=0.25 if args.quick else 0.5, log=self.log,
                           threshold=report.BUSY)
        self.copier = timing.CopyBandwidth(device)
        first = self.copy_bw(7 if args.quick else 15)
        self.log(f"# copy bandwidth {first['GBps']:.1f} GB/s ({device.type}, {first['buffer_MiB']:.0f} MiB buffers)")
        previous = signal.signal(signal.SIGTERM, _on_signal) if _main_thread() else None
        try:
            self._loop()
        except KeyboardInterrupt as exc:  # Ctrl-C or SIGTERM: keep what was measured
            self.interrupted = str(exc) or "SIGINT"
            self.log(f"\ninterrupted ({self.interrupted}) after {len(report.cases_of(self.rows))} of "
                     f"{len(self.case_list)} cases: writing the partial results")
            if not self.rows:
                return False
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)
            self.bar.close()
        self.copier.close()
        self.elapsed = time.perf_counter() - t_start
        return True

    def _loop(self) -> None:
        args = self.args
        for case in self.case_list:
            self._case(case)
        if args.e2e:
            from fastgan.bench import e2e

            self.bar.set_postfix_str("training steps (--e2e)", refresh=True)
            self.e2e_rows, self.e2e_info = e2e.run(self.device, quick=args.quick, budget_s=self.settings["budget_s"],
                                                   log=self.log, backends=args.backends, data=self.e2e_data)
            self.bar.update(1)
        self.copy_bw(7 if args.quick else 15)

    def _case(self, case: C.Case) -> None:
        quick = self.args.quick
        self.bar.set_postfix_str(case.label, refresh=True)
        t0 = time.perf_counter()
        case_copy = None if quick else self.copy_bw(5)["GBps"]  # the bandwidth drifts
        skip = {"compiled": QUICK_SKIP} if quick and case.family else None
        case_rows = run_case(case, self.provs, self.device, self.settings, self.quiet, self.retries, log=self.log,
                             skip=skip)
        for r in case_rows:
            r["copy_GBps_before_case"] = case_copy
        self.rows += case_rows
        best = {report.display(r["provider"]): timing.fmt_time(r["median_s"]) for r in case_rows if r.get("median_s")}
        fl = case_rows[0].get("foreign_load")
        busy = f", other processes {fl:.0%} of the CPUs" if fl is not None else ""
        self.log(f"{case.label} ({time.perf_counter() - t0:.0f}s{busy}): {best}")
        self.bar.update(1)

    def exit_status(self) -> int:
        """130 when interrupted, 1 when a fastgan provider or an --e2e backend failed, else 0."""
        failed = [r for r in self.rows if r["status"] != "ok" and self.provs.get(r["provider"], None) is not None
                  and self.provs[r["provider"]].kind == "fastgan"]
        failed += [r for r in self.e2e_rows if r.get("status") == "wrong"]
        return 130 if self.interrupted else 1 if failed else 0


def _on_signal(signum, frame):
    raise KeyboardInterrupt(signal.Signals(signum).name)


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()
