"""What a finished ``fastgan train`` run reports: ``metrics.json`` (:func:`summary`) and the
summary lines it prints (:func:`format_summary`)."""

from __future__ import annotations

from typing import Any

from fastgan.train.loop import Trainer

__all__ = ["summary", "format_summary", "format_target"]


def summary(trainer: Trainer, result: dict[str, Any], threads: Any = None) -> dict[str, Any]:
    """What ``metrics.json`` holds: the run, the final ``metrics``, the quality ``curve``, the
    ``targets`` (each with the first step / training seconds the curve met it) and, for the
    run's own target (the first), ``target``, ``time_to_target`` and ``step_to_target``."""
    import platform

    import torch

    from fastgan import backends
    from fastgan.train import metrics as M

    used = trainer.backend
    if used == "auto":
        used = backends.resolve("interpolate", trainer.device)[0]
    history = trainer.history
    last = {k: history[k][-1] for k in history if k != "step" and history[k]}
    cfg = trainer.config
    targets = M.target_report(trainer.curve, M.targets_for(cfg.loss, cfg.data), result["metrics"])
    own = targets[0] if targets else None
    return {
        "loss": cfg.loss,
        "data": cfg.data,
        "steps": trainer.step,
        "train_seconds": trainer.elapsed,
        "generator_steps_per_s": trainer.step / trainer.elapsed if trainer.elapsed > 0 else None,
        "backend": trainer.backend,
        "backend_used": used,
        "world_size": trainer.world_size,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        # --threads auto: every switch of the thread count as [step, threads]
        "thread_choices": None if threads is None else [list(c) for c in threads.choices],
        "machine": platform.machine(),
        "metrics": result["metrics"],
        "eval_every": cfg.eval_every,
        "target": None if own is None else own["name"],
        "time_to_target": None if own is None else own["train_seconds"],
        "step_to_target": None if own is None else own["step"],
        "targets": targets,
        "curve": [dict(p) for p in trainer.curve],
        "eval_seconds": sum(p.get("eval_seconds", 0.0) for p in trainer.curve),
        "last_logs": last,
        "config": cfg.to_dict(),
    }


def format_summary(report: dict[str, Any]) -> str:
    """What ``fastgan train`` prints at the end: a line of the final metrics, then a line per
    target with the time to it (or that it was not reached)."""
    m = report["metrics"]
    parts = [f"{report['loss']} on {report['data']}: {report['steps']} steps in {report['train_seconds']:.1f} s"]
    if report["generator_steps_per_s"]:
        parts.append(f"{report['generator_steps_per_s']:.1f} steps/s")
    if "modes" in m:
        parts.append(f"modes {m['modes']}/{m['n_modes']}")
    parts.append(f"high quality {100 * m['high_quality']:.1f}%")
    if "in_requested_mode" in m:
        parts.append(f"in requested mode {100 * m['in_requested_mode']:.1f}%")
    if "mean_distance" in m:
        parts.append(f"mean distance {m['mean_distance']:.3f}")
    lines = [", ".join(parts)]
    lines += [format_target(t, report["steps"]) for t in report.get("targets", [])]
    return "\n".join(lines)


def format_target(t: dict[str, Any], steps: int) -> str:
    """One entry of :func:`summary`'s ``targets`` in words."""
    if t["reached"]:
        return f"time to target ({t['name']}): {t['train_seconds']:.1f} s of training, step {t['step']}"
    if not t["measured"]:
        met = {True: "met", False: "not met", None: "not checked"}[t["met_at_end"]]
        return f"target ({t['name']}) {met} at the end; time to target not measured (--eval-every 0)"
    return f"target ({t['name']}) not reached in {steps} steps"
