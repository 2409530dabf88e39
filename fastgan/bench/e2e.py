"""``fastgan bench --e2e``: whole training steps — one discriminator/critic step plus one
generator step, optimiser steps included — of every family on the models of ``fastgan train``:
the toy MLP (``ring8``) and the small conv net (``digits``), with the reference backend against
each fused backend of the device.

For each family × data, one trainer per backend is built with the same seed
(:func:`fastgan.train.make_trainer`), so both start from the same weights and draw the same
batches. Before timing, one D step of each is compared: the discriminator losses must agree
(relative 1e-3 — they differ only by the fp32 summation order of the fused kernels); a backend
that disagrees is reported ``wrong`` and not timed. The steps are then timed in interleaved
rounds (:func:`fastgan.bench.timing.measure`) and the ratio reference time / backend time
reported (above 1: the fused backend makes training faster).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from fastgan.bench import cases as C
from fastgan.bench import timing

DATA = {"ring8": "toy MLP", "digits": "small conv net"}
#: the families timed (all of them)
FAMILIES = C.FAMILIES
TOL = 1e-3


def _step(trainer: Any) -> Callable[[], None]:
    def step() -> None:
        trainer.discriminator_step()
        trainer.generator_step()

    return step


def _first_d_loss(trainer: Any) -> float:
    logs = trainer.discriminator_step()
    return float(logs["d_loss"]) if "d_loss" in logs else float("nan")


def run(device: timing.Device, *, quick: bool = False, budget_s: float = 1.0, log: Callable[[str], None] = print,
        backends: list[str] | None = None, families: tuple[str, ...] | None = None,
        data: tuple[str, ...] | None = None) -> tuple[list[dict], dict]:
    """Time one D step + one G step of every family on every dataset; returns (rows, info).

    A row: ``family``, ``data``, ``model``, ``backend``, ``status`` (``ok``, ``wrong``,
    ``error``), ``median_s``, ``iqr_rel``, ``samples``, ``ratio_vs_reference``. ``families``
    and ``data`` default to :data:`FAMILIES` and every key of :data:`DATA`.
    """
    families = tuple(families if families is not None else FAMILIES)
    data = tuple(data if data is not None else DATA)
    try:
        from fastgan.train import make_trainer
    except ImportError as exc:
        log(f"--e2e: fastgan.train is not importable ({exc}): no training steps timed")
        return [], {"error": f"fastgan.train is not importable: {exc}"}
    fused = [b for b in C.backends_for(device.type, backends) if b != "reference"]
    if not fused:
        log(f"--e2e: no fused backend runs on {device.type} here: timing the reference only")
    names = ["reference", *fused]
    settings = dict(budget_s=budget_s, min_samples=5 if quick else 10, rounds=3 if quick else 5,
                    warmup_s=0.05 if quick else 0.1, min_sample_s=0.0)
    rows: list[dict] = []
    info: dict[str, Any] = {"backends": names, "data": DATA, "tolerance": TOL,
                            "step": "Trainer.discriminator_step() + Trainer.generator_step()"}
    for fam in families:
        for ds in data:
            t0 = time.perf_counter()
            base = {"family": fam, "data": ds, "model": DATA[ds]}
            trainers, results = {}, {}
            for b in names:
                try:
                    tr = make_trainer(fam, ds, backend=b, seed=0, device=device.type)
                    results[b] = _first_d_loss(tr)
                    device.synchronize()
                    trainers[b] = tr
                except Exception as exc:
                    rows.append({**base, "backend": b, "status": "error", "error": f"{type(exc).__name__}: {exc}"})
                    log(f"  e2e {fam} {ds} {b}: {type(exc).__name__}: {exc}")
            ref = results.get("reference")
            steps, status = {}, {}
            for b, tr in trainers.items():
                got = results[b]
                ok = b == "reference" or (ref is not None and abs(got - ref) <= TOL * max(abs(ref), 1e-3))
                status[b] = "ok" if ok else "wrong"
                if ok:
                    steps[b] = _step(tr)
                else:
                    log(f"  e2e {fam} {ds} {b}: first D loss {got:.6g} vs reference {ref:.6g}: not timed")
            timings = timing.measure(steps, timer=device.timer, **settings) if steps else {}
            ref_t = timings.get("reference")
            for b in trainers:
                row = {**base, "backend": b, "status": status[b], "first_d_loss": results[b]}
                t = timings.get(b)
                if t is not None:
                    row.update(median_s=t.median, iqr_rel=t.iqr_rel, samples=len(t.samples))
                    if ref_t is not None:
                        row["ratio_vs_reference"] = ref_t.median / t.median
                rows.append(row)
            shown = {b: timing.fmt_time(timings[b].median) for b in timings}
            log(f"e2e {fam} {ds} ({time.perf_counter() - t0:.0f}s): {shown}")
            del trainers, steps
    return rows, info
