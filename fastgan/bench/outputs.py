"""What a ``fastgan bench`` run writes and prints once it has measured: the copy bandwidth it
refers to, the JSON, CSV and markdown files, the PNG plots, the printed table, and the exit
status."""

from __future__ import annotations

import statistics
import sys
from datetime import datetime, timezone
from typing import Any

from fastgan.bench import cases as C
from fastgan.bench import report
from fastgan.cli import TRAIN_EXTRA


def copy_bandwidth(copies: list[dict]) -> tuple[float, list[float]]:
    """(the copy bandwidth of the run, the quiet measurements it is the median of): those
    taken while other processes used at most :data:`~fastgan.bench.report.BUSY` of the CPUs,
    or all of them when none was."""
    quiet = [c["GBps"] for c in copies if (c["foreign_load"] or 0) <= report.BUSY] or [c["GBps"] for c in copies]
    return statistics.median(quiet), quiet


def result(run: Any, copy_gbps: float) -> dict[str, Any]:
    """The JSON document of ``run``."""
    args, device = run.args, run.device
    return {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": run.command,
        "device": device.type,
        "device_description": device.description,
        "timer": device.timer.name,
        "machine": run.machine,
        "copy_bandwidth": {"GBps_used": copy_gbps, "measurements": run.copies},
        "settings": {**run.settings, "quick": args.quick, "rotate_bytes": device.rotate_bytes,
                     "providers": list(run.provs), "dtype": "float32", "retries": run.retries,
                     "max_wait_s": run.max_wait},
        "elapsed_s": round(run.elapsed, 1),
        "waited_for_quiet_s": round(run.quiet.waited, 1),
        "interrupted": run.interrupted,
        "results": run.rows,
        "e2e": {"info": run.e2e_info, "results": run.e2e_rows} if args.e2e else None,
    }


def notes(run: Any, copy_gbps: float, quiet_copies: list[float]) -> str:
    """The paragraph above the table: what was measured, how, and what to distrust."""
    device, machine, rows = run.device, run.machine, run.rows
    text = (
        f"{device.description}, torch {machine['torch']}, fp32, forward + backward w.r.t. every input "
        f"({'CUDA-event' if device.type == 'cuda' else 'wall-clock'} timing). Median per call (± half the "
        f"inter-quartile range). Check: largest |provider − reference| relative to the reference's largest "
        f"magnitude (✓ within {C.TOL_OP:.0e} for operators, {C.TOL_FAMILY:.0e} for full losses; ✗: never timed). "
        f"Copy bandwidth {copy_gbps:.1f} GB/s: median of {len(quiet_copies)} measurements during the run "
        f"({min(quiet_copies):.1f}–{max(quiet_copies):.1f}). Run took {run.elapsed / 60:.1f} min."
    )
    if run.cpu:
        text += f" Allocator: {machine['allocator']}."
    if run.interrupted:
        text += (f" ⚠ PARTIAL: interrupted ({run.interrupted}) after {len(report.cases_of(rows))} of "
                 f"{len(run.case_list)} cases.")
    busy = sorted({report.case_key(r) for r in rows if (r.get("foreign_load") or 0) > report.BUSY})
    if busy:
        text += (f" ⚠ {len(busy)} case(s) ran while other processes used more than {report.BUSY:.0%} of the CPUs: "
                 "their times are not trustworthy.")
    return text


def write_files(run: Any, copy_gbps: float, text: str, table: str) -> list[str]:
    """JSON, CSV (and the --e2e CSV) and markdown; returns the files written."""
    stem = run.stem
    report.write_json(stem + ".json", result(run, copy_gbps))
    report.write_csv(stem + ".csv", run.rows, report.CSV_FIELDS)
    files = [stem + ".json", stem + ".csv", stem + ".md"]
    if run.e2e_rows:
        report.write_csv(stem + "-e2e.csv", run.e2e_rows, report.E2E_FIELDS)
        files.append(stem + "-e2e.csv")
    md = text + "\n\n" + table + "\n\nSummary (one line per case):\n\n" + report.summary_table(run.rows) + "\n"
    if run.args.e2e:
        md += "\nWhole training steps (--e2e):\n\n" + (report.e2e_table(run.e2e_rows) if run.e2e_rows else "nothing ran") + "\n"
    with open(stem + ".md", "w") as f:
        f.write(md)
    return files


def write_plots(run: Any, copy_gbps: float) -> list[str]:
    """The speed-up and bandwidth PNGs; a failure is said and never costs the measurements."""
    from fastgan.bench import plots

    stem = run.stem
    title = f"fastgan bench, {run.device.description}, torch {run.machine['torch']}"
    try:
        plots.speedup_plot(run.rows, stem + "-speedup.png", title)
        plots.bandwidth_plot(run.rows, copy_gbps, stem + "-bandwidth.png", title)
        return [stem + "-speedup.png", stem + "-bandwidth.png"]
    except ImportError as exc:
        print(f"fastgan bench: no PNG plots ({exc}; {TRAIN_EXTRA})", file=sys.stderr)
    except Exception as exc:  # a plot never costs the measurements
        print(f"fastgan bench: the plots failed ({type(exc).__name__}: {' '.join(str(exc).split())[:160]}); "
              "the results are written", file=sys.stderr)
    return []


def finish(run: Any, plots_wanted: bool) -> int:
    """Write and print the results of ``run`` (a :class:`~fastgan.bench.runner.Run` that has
    measured); returns the exit status."""
    copy_gbps, quiet_copies = copy_bandwidth(run.copies)
    for r in run.rows:
        if r.get("GBps") is not None:
            r["share_of_copy_bw"] = r["GBps"] / copy_gbps
    table = report.main_table(run.rows)
    text = notes(run, copy_gbps, quiet_copies)
    files = write_files(run, copy_gbps, text, table)
    if plots_wanted:
        files += write_plots(run, copy_gbps)
    print(text + "\n")
    print(table)
    if run.args.e2e:
        print("\nWhole training steps (one D step + one G step of every family, then the DCGAN WGAN-GP case), "
              "reference backend against the fused ones:\n")
        print(report.e2e_table(run.e2e_rows) if run.e2e_rows else "nothing ran")
    print(f"\nwrote {', '.join(files)}", file=sys.stderr)
    return run.exit_status()
