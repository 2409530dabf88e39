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

The DCGAN case (data ``dcgan28``, :mod:`fastgan.bench.dcgan`; run with the ``wgan-gp`` family):
the end-to-end benchmark a user would run — a WGAN-GP DCGAN at the public MNIST script's size
(conv critic without batch norm on 1×28×28, conv-transpose generator from a latent of 100, batch
64, Adam(1e-4, (0.5, 0.9)), λ = 10, 5 critic steps per generator step) on fixed-seed random
data. Three configurations per fused backend: ``reference`` (the reference backend, k = 1),
``fused`` (k = 1) and ``fused+lazy`` (lazy regularisation, penalty every k-th critic step with
weight × k; k in :data:`LAZY`). Each is timed for (a) one D step and (b) one full step (5 D steps
+ 1 G step), all in the same interleaved rounds. A lazy configuration's sample spans whole
periods of its penalty schedule (k D steps for (a), k / gcd(k, 5) full steps for (b)) and the
time is reported per step, so its median is the amortised cost, not that of the steps without
the penalty. Before timing, the first D losses are checked: ``fused`` must agree with the
reference (relative 1e-3), ``fused+lazy`` (whose first step runs the penalty with weight k·λ)
with the reference's Wasserstein term plus k × its penalty. Ratios: reference time / time
(``ratio_vs_reference``) and, for ``fused+lazy``, fused time / time (``ratio_vs_fused``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from fastgan.bench import cases as C
from fastgan.bench import timing

#: the data (models): the two of ``fastgan train``, and the DCGAN case (with wgan-gp only)
DATA = {"ring8": "toy MLP", "digits": "small conv net", "dcgan28": "DCGAN conv, 1×28×28, batch 64"}
DCGAN = "dcgan28"
#: the families timed (all of them)
FAMILIES = C.FAMILIES
TOL = 1e-3
#: the penalty intervals k of the DCGAN case's fused+lazy configuration
LAZY = (4,)
#: the two steps timed in the DCGAN case: (name, D steps in it)
DCGAN_STEPS = (("D step", 1), ("full step", 5))


def _step(trainer: Any) -> Callable[[], None]:
    def step() -> None:
        trainer.discriminator_step()
        trainer.generator_step()

    return step


def _first_d_loss(trainer: Any) -> float:
    logs = trainer.discriminator_step()
    return float(logs["d_loss"]) if "d_loss" in logs else float("nan")


def _settings(quick: bool, budget_s: float) -> dict:
    return dict(budget_s=budget_s, min_samples=5 if quick else 10, rounds=3 if quick else 5,
                warmup_s=0.05 if quick else 0.1, min_sample_s=0.0)


def run(device: timing.Device, *, quick: bool = False, budget_s: float = 1.0, log: Callable[[str], None] = print,
        backends: list[str] | None = None, families: tuple[str, ...] | None = None,
        data: tuple[str, ...] | None = None) -> tuple[list[dict], dict]:
    """Time one D step + one G step of every family on every dataset; returns (rows, info).

    A row: ``family``, ``data``, ``model``, ``backend``, ``config`` (``reference``, ``fused``),
    ``gp_interval`` (1), ``step`` (``D+G step``), ``d_steps`` (1), ``status`` (``ok``, ``wrong``,
    ``error``), ``first_d_loss``, ``median_s``, ``iqr_rel``, ``samples``, ``ratio_vs_reference``. ``families``
    and ``data`` default to :data:`FAMILIES` and every key of :data:`DATA`; the DCGAN case
    (:func:`run_dcgan`, its rows in the same list) runs when ``data`` holds :data:`DCGAN` and
    ``families`` holds ``wgan-gp``.
    """
    families = tuple(families if families is not None else FAMILIES)
    data = tuple(data if data is not None else DATA)
    dcgan_too = DCGAN in data and "wgan-gp" in families
    try:
        from fastgan.train import make_trainer
    except ImportError as exc:
        log(f"--e2e: fastgan.train is not importable ({exc}): no training steps of fastgan train timed")
        if dcgan_too:
            rows, dc_info = run_dcgan(device, quick=quick, budget_s=budget_s, log=log, backends=backends)
            return rows, {"error": f"fastgan.train is not importable: {exc}", "dcgan": dc_info}
        return [], {"error": f"fastgan.train is not importable: {exc}"}
    fused = [b for b in C.backends_for(device.type, backends) if b != "reference"]
    if not fused:
        log(f"--e2e: no fused backend runs on {device.type} here: timing the reference only")
    names = ["reference", *fused]
    rows: list[dict] = []
    info: dict[str, Any] = {"backends": names, "data": DATA, "tolerance": TOL,
                            "step": "Trainer.discriminator_step() + Trainer.generator_step()"}
    for fam in families:
        for ds in (d for d in data if d != DCGAN):
            rows += _family_on(fam, ds, names, make_trainer, device, _settings(quick, budget_s), log)
    if dcgan_too:
        dc_rows, info["dcgan"] = run_dcgan(device, quick=quick, budget_s=budget_s, log=log, backends=backends)
        rows += dc_rows
    return rows, info


def _trainers(fam: str, ds: str, names: list[str], make_trainer: Callable[..., Any], device: timing.Device,
              log: Callable[[str], None], rows: list[dict]) -> tuple[dict, dict]:
    """One trainer per backend (the same seed) and its first D loss; ``rows`` gets an
    ``error`` row for each backend that raised. Returns (trainers, first D losses)."""
    trainers, results = {}, {}
    base = {"family": fam, "data": ds, "model": DATA[ds]}
    for b in names:
        try:
            tr = make_trainer(fam, ds, backend=b, seed=0, device=device.type)
            results[b] = _first_d_loss(tr)
            device.synchronize()
            trainers[b] = tr
        except Exception as exc:
            rows.append({**base, "backend": b, "status": "error", "error": f"{type(exc).__name__}: {exc}"})
            log(f"  e2e {fam} {ds} {b}: {type(exc).__name__}: {exc}")
    return trainers, results


def _family_on(fam: str, ds: str, names: list[str], make_trainer: Callable[..., Any], device: timing.Device,
               settings: dict, log: Callable[[str], None]) -> list[dict]:
    """Check, then time, one D step + one G step of ``fam`` on ``ds`` on every backend."""
    t0 = time.perf_counter()
    rows: list[dict] = []
    trainers, results = _trainers(fam, ds, names, make_trainer, device, log, rows)
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
        row = {"family": fam, "data": ds, "model": DATA[ds], "backend": b,
               "config": "reference" if b == "reference" else "fused", "gp_interval": 1,
               "step": "D+G step", "d_steps": 1, "status": status[b], "first_d_loss": results[b]}
        t = timings.get(b)
        if t is not None:
            row.update(median_s=t.median, iqr_rel=t.iqr_rel, samples=len(t.samples))
            if ref_t is not None:
                row["ratio_vs_reference"] = ref_t.median / t.median
        rows.append(row)
    shown = {b: timing.fmt_time(timings[b].median) for b in timings}
    log(f"e2e {fam} {ds} ({time.perf_counter() - t0:.0f}s): {shown}")
    return rows


def _period(k: int, d_steps: int) -> int:
    """How many steps of ``d_steps`` D steps each span whole periods of a k-step schedule."""
    return k // math.gcd(k, d_steps)


def _repeat(fn: Callable[[], Any], n: int) -> Callable[[], None]:
    def step() -> None:
        for _ in range(n):
            fn()

    return step


def run_dcgan(device: timing.Device, *, quick: bool = False, budget_s: float = 1.0, log: Callable[[str], None] = print,
              backends: list[str] | None = None, lazy: tuple[int, ...] | None = None,
              samples: int | None = None) -> tuple[list[dict], dict]:
    """The DCGAN WGAN-GP case: one D step and one full step (5 D + 1 G) of ``reference``,
    ``fused`` (k = 1) and ``fused+lazy`` (k in ``lazy``, default :data:`LAZY`) on every fused
    backend, timed in the same interleaved rounds; returns (rows, info).

    A row: ``family`` (wgan-gp), ``data`` (:data:`DCGAN`), ``model``, ``backend``, ``config``,
    ``gp_interval``, ``step`` (``D step``, ``full step``), ``d_steps`` (1, 5), ``status``,
    ``first_d_loss``, and when timed ``median_s`` (per step), ``iqr_rel``, ``samples``,
    ``steps_per_sample``, ``ratio_vs_reference`` and (fused+lazy) ``ratio_vs_fused``.
    ``samples``: per step, one per interleaved round (default 3 with ``quick``, else 5; a
    round's samples are capped by ``budget_s`` and these steps are long on a CPU)."""
    lazy = tuple(lazy if lazy is not None else LAZY)
    fused = [b for b in C.backends_for(device.type, backends) if b != "reference"]
    if not fused:
        log(f"--e2e: no fused backend runs on {device.type} here: timing the DCGAN reference only")
    configs = [("reference", "reference", 1)]
    for b in fused:
        configs += [(b, "fused", 1)] + [(b, "fused+lazy", k) for k in lazy]
    n = samples if samples is not None else (3 if quick else 5)
    settings = dict(budget_s=budget_s, min_samples=n, rounds=n,
                    warmup_s=0.0, min_warmup_calls=1, min_sample_s=0.0)
    t0 = time.perf_counter()
    rows: list[dict] = []
    trainers, first = _dcgan_trainers(configs, device, log, rows)
    status, expected = _dcgan_checks(configs[0], trainers, first, log)
    steps, per_call = {}, {}
    for cfg, tr in trainers.items():
        if status[cfg] != "ok":
            continue
        for step_name, d_steps in DCGAN_STEPS:
            reps = _period(cfg[2], d_steps)
            one = tr.discriminator_step if d_steps == 1 else tr.train_step
            steps[(cfg, step_name)] = _repeat(one, reps) if reps > 1 else one
            per_call[(cfg, step_name)] = reps
    names = {key: f"{key[0][0]}/{key[0][1]}/k={key[0][2]}/{key[1]}" for key in steps}
    timed = timing.measure({names[key]: fn for key, fn in steps.items()}, timer=device.timer, **settings) if steps else {}
    median = {key: timed[names[key]].median / per_call[key] for key in steps if names[key] in timed}
    for cfg in trainers:
        for step_name, d_steps in DCGAN_STEPS:
            key = (cfg, step_name)
            row = _dcgan_row(cfg, step_name, d_steps, status[cfg], first[cfg]["d_loss"], expected.get(cfg))
            if key in median:
                t = timed[names[key]]
                row.update(median_s=median[key], iqr_rel=t.iqr_rel, samples=len(t.samples),
                           steps_per_sample=per_call[key])
                row.update(_dcgan_ratios(cfg, step_name, median))
            rows.append(row)
    shown = {names[key]: timing.fmt_time(median[key]) for key in median}
    log(f"e2e dcgan ({time.perf_counter() - t0:.0f}s): {shown}")
    return rows, _dcgan_info(n, lazy)


def _dcgan_info(n: int, lazy: tuple[int, ...]) -> dict:
    from fastgan.bench import dcgan

    return {"model": dcgan.DESCRIPTION, "shape": list(dcgan.SHAPE), "z_dim": dcgan.Z_DIM, "batch": dcgan.BATCH,
            "samples_per_step": n,
            "lr": dcgan.LR, "betas": list(dcgan.BETAS), "gp_weight": dcgan.GP_WEIGHT, "n_critic": dcgan.N_CRITIC,
            "lazy_intervals": list(lazy), "data": f"fixed-seed random tensor of {dcgan.POOL} images in [-1, 1]",
            "steps": {"D step": "DCGANTrainer.discriminator_step()",
                      "full step": "5 × DCGANTrainer.discriminator_step() + DCGANTrainer.generator_step()"}}


def _dcgan_row(cfg: tuple, step_name: str, d_steps: int, status: str, first_d_loss: float | None = None,
               expected: float | None = None, error: str | None = None) -> dict:
    from fastgan.bench import dcgan

    b, conf, k = cfg
    row = {"family": "wgan-gp", "data": DCGAN, "model": DATA.get(DCGAN, dcgan.DESCRIPTION), "backend": b,
           "config": conf, "gp_interval": k, "step": step_name, "d_steps": d_steps, "status": status}
    if error is not None:
        row["error"] = error
    else:
        row["first_d_loss"] = first_d_loss
    if expected is not None:
        row["expected_first_d_loss"] = expected
    return row


def _dcgan_trainers(configs: list[tuple], device: timing.Device, log: Callable[[str], None],
                    rows: list[dict]) -> tuple[dict, dict]:
    """One DCGAN trainer per configuration (the same seed) and the logs of its first D step;
    ``rows`` gets ``error`` rows for a configuration that raised."""
    from fastgan.bench import dcgan

    trainers, first = {}, {}
    for cfg in configs:
        b, conf, k = cfg
        try:
            tr = dcgan.DCGANTrainer(b, gp_interval=k, seed=0, device=device.type)
            logs = tr.discriminator_step()
            first[cfg] = {key: float(val) for key, val in logs.items()}
            device.synchronize()
            trainers[cfg] = tr
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            rows += [_dcgan_row(cfg, step_name, d_steps, "error", error=error) for step_name, d_steps in DCGAN_STEPS]
            log(f"  e2e dcgan {b} {conf} k={k}: {error}")
    return trainers, first


def _dcgan_checks(ref_cfg: tuple, trainers: dict, first: dict, log: Callable[[str], None]) -> tuple[dict, dict]:
    """The first D loss of each configuration against the reference's (a lazy one's first step
    runs the penalty with weight k·λ); returns (status, expected first D loss) by configuration."""
    ref = first.get(ref_cfg)
    status, expected = {}, {}
    for cfg in trainers:
        b, conf, k = cfg
        got = first[cfg]["d_loss"]
        if cfg == ref_cfg:
            ok = True
        elif ref is None:
            ok = False
        else:
            want = ref["d_loss"] if k == 1 else -ref["wasserstein"] + k * ref["gp"]
            expected[cfg] = want
            ok = abs(got - want) <= TOL * max(abs(want), 1e-3)
        status[cfg] = "ok" if ok else "wrong"
        if not ok:
            log(f"  e2e dcgan {b} {conf} k={k}: first D loss {got:.6g} vs {expected.get(cfg, float('nan')):.6g} "
                "from the reference: not timed")
    return status, expected


def _dcgan_ratios(cfg: tuple, step_name: str, median: dict) -> dict:
    """``ratio_vs_reference`` and (fused+lazy) ``ratio_vs_fused`` of one timed step."""
    b, conf, _ = cfg
    out = {}
    mine = median[(cfg, step_name)]
    ref_t = median.get((("reference", "reference", 1), step_name))
    if ref_t is not None:
        out["ratio_vs_reference"] = ref_t / mine
    fused_t = median.get(((b, "fused", 1), step_name))
    if conf == "fused+lazy" and fused_t is not None:
        out["ratio_vs_fused"] = fused_t / mine
    return out
