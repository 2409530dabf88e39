"""``fastgan train``'s quality curve and time to target: the schedule, a clock that excludes the
evaluation, the first point that meets a target, the curve across ``--resume``, weights that do
not depend on the curve, ``--eval-every`` on the command line (tiny settings; no timed
assertions: times are only checked to be positive, increasing, and free of the evaluation)."""

from __future__ import annotations

import json
import math
import time

import numpy as np
import pytest
import torch

from fastgan import cli

from test_train import _assert_identical
from fastgan.train import Trainer, default_config, make_trainer
from fastgan.train import metrics as M
from fastgan.train.loop import EVAL_EVERY, read_checkpoint

TINY = {"width": 8, "depth": 1, "batch_size": 16, "eval_samples": 100}
TINY_FLAGS = ["--width", "8", "--depth", "1", "--batch-size", "16", "--eval-samples", "100", "--no-progress"]


@pytest.fixture(autouse=True)
def _one_thread(monkeypatch):
    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(var, raising=False)
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _train(*argv: str) -> int:
    return cli.main(["train", *TINY_FLAGS, *argv])


def _weights(t: Trainer) -> dict:
    """Everything training changes (networks, optimisers, schedules, loss state, RNG streams)."""
    s = t.state_dict()
    return {k: s[k] for k in ("step", "G", "D", "loss", "opt_g", "opt_d", "sched_g", "sched_d", "rng")}




def _without_times(curve):
    return [{k: v for k, v in p.items() if k not in ("train_seconds", "eval_seconds")} for p in curve]


# ------------------------------------------------------------------------------ schedule
def test_the_curve_follows_the_schedule_and_ends_at_the_last_step():
    t = make_trainer("gan", "ring8", steps=7, eval_every=3, **TINY)
    t.fit(progress=False)
    assert [p["step"] for p in t.curve] == [3, 6, 7]
    for p in t.curve:
        assert {"step", "train_seconds", "eval_seconds", "modes", "n_modes", "high_quality", "finite"} <= set(p)
        assert "mode_counts" not in p and p["n_modes"] == 8
    # every point is the evaluation of that step: the last one is what evaluate() gives now
    final = t.evaluate()["metrics"]
    assert t.curve[-1]["high_quality"] == final["high_quality"] and t.curve[-1]["modes"] == final["modes"]
    assert t.final_evaluation()["metrics"] == final  # the last point's evaluation, reused

    t = make_trainer("gan", "ring8", steps=4, eval_every=10, **TINY)
    t.fit(progress=False)
    assert [p["step"] for p in t.curve] == [4]  # a schedule longer than the run: the last step only
    t = make_trainer("gan", "ring8", steps=4, eval_every=0, **TINY)
    t.fit(progress=False)
    assert t.curve == [] and t.step == 4


def test_the_default_schedule_per_dataset():
    assert EVAL_EVERY == {"ring8": 100, "grid25": 100, "swissroll": 100, "digits": 250}
    for data, every in EVAL_EVERY.items():
        assert default_config("gan", data).eval_every == every
    assert default_config("gan", "ring8", eval_every=0).eval_every == 0
    for bad in (-1, 1.5, True, "3"):
        with pytest.raises(ValueError, match="eval_every"):
            default_config("gan", "ring8", eval_every=bad)


def test_each_measure_of_its_dataset_is_on_the_curve():
    t = make_trainer("cgan", "grid25", steps=2, eval_every=1, **TINY)
    t.fit(progress=False)
    assert {"modes", "high_quality", "in_requested_mode", "nearest_is_requested"} <= set(t.curve[0])
    t = make_trainer("wgan-gp", "swissroll", steps=2, eval_every=1, **TINY)
    t.fit(progress=False)
    assert {"high_quality", "mean_distance"} <= set(t.curve[0]) and "modes" not in t.curve[0]
    t = make_trainer("cgan", "digits", width=4, batch_size=8, eval_samples=50, steps=1, eval_every=1)
    t.fit(progress=False)
    assert {"modes", "high_quality", "in_requested_mode"} <= set(t.curve[0]) and t.curve[0]["n_modes"] == 10


# ---------------------------------------------------------------------------------- clock
def test_times_increase_and_exclude_the_evaluation(monkeypatch):
    """evaluate() sleeps: no point's training seconds, nor the run's, hold any of that sleep."""
    nap = 0.2
    calls: list[float] = []
    original = Trainer.evaluate

    def slow_evaluate(self, n=None):
        calls.append(time.perf_counter())
        time.sleep(nap)
        return original(self, n)

    monkeypatch.setattr(Trainer, "evaluate", slow_evaluate)
    t = make_trainer("gan", "ring8", steps=6, eval_every=2, **TINY)
    t0 = time.perf_counter()
    t.fit(progress=False)
    wall = time.perf_counter() - t0
    assert [p["step"] for p in t.curve] == [2, 4, 6] and len(calls) == 3
    secs = [p["train_seconds"] for p in t.curve]
    assert 0 < secs[0] < secs[1] < secs[2] <= t.elapsed
    for i, (p, called) in enumerate(zip(t.curve, calls)):
        # the clock at point i is at most the wall time until its evaluation, less the i naps before
        assert p["train_seconds"] <= (called - t0) - i * nap, (i, p, called - t0)
        assert p["eval_seconds"] >= nap
    assert t.elapsed <= wall - len(calls) * nap


def test_no_curve_no_evaluation(monkeypatch):
    def never(self, n=None):
        raise AssertionError("evaluated with eval_every=0")

    monkeypatch.setattr(Trainer, "evaluate", never)
    t = make_trainer("gan", "ring8", steps=5, eval_every=0, **TINY)
    t.fit(progress=False)
    assert t.curve == [] and t.elapsed > 0


# ----------------------------------------------------------------------- first reached
def _point(step, secs, **m):
    return {"step": step, "train_seconds": secs, "eval_seconds": 0.01, **m}


def test_first_reached_on_a_synthetic_curve():
    target = M.Target("8/8 modes, >= 80% high quality", modes=8, high_quality=0.8)
    curve = [
        _point(100, 1.0, modes=8, n_modes=8, high_quality=0.5),   # modes, not quality
        _point(200, 2.0, modes=7, n_modes=8, high_quality=0.9),   # quality, not modes
        _point(300, 3.5, modes=8, n_modes=8, high_quality=0.8),   # both: exactly at the bar
        _point(400, 4.0, modes=6, n_modes=8, high_quality=0.95),  # lost again: still first at 300
        _point(500, 5.0, modes=8, n_modes=8, high_quality=0.99),
    ]
    hit = M.first_reached(curve, target)
    assert hit is not None and (hit["step"], hit["train_seconds"]) == (300, 3.5)
    assert M.first_reached(curve[:2], target) is None
    assert M.first_reached([], target) is None
    # missing or None measures never meet a threshold
    assert not target.met({"high_quality": 0.9})
    assert not M.Target("x", in_requested_mode=0.95).met({"in_requested_mode": None})
    assert M.Target("x", in_requested_mode=0.95).met({"in_requested_mode": 0.95})
    assert not M.Target("x", high_quality=0.8).met({"high_quality": float("nan")})

    rows = M.target_report(curve, [target, M.Target("all", modes=8, high_quality=0.999)], final=curve[-1])
    assert rows[0] == {"name": target.name, "requires": {"modes": 8, "high_quality": 0.8}, "measured": True,
                       "reached": True, "step": 300, "train_seconds": 3.5, "met_at_end": True}
    assert rows[1]["reached"] is False and rows[1]["step"] is None and rows[1]["train_seconds"] is None
    assert rows[1]["met_at_end"] is False
    rows = M.target_report([], [target], final=curve[-1])
    assert rows[0]["measured"] is False and rows[0]["reached"] is False and rows[0]["met_at_end"] is True
    assert M.target_report(curve, [target])[0]["met_at_end"] is None


def test_the_targets_table():
    (ring,) = M.targets_for("gan", "ring8")
    assert ring.requires() == {"modes": 8, "high_quality": 0.8}
    (grid,) = M.targets_for("lsgan", "grid25")
    assert grid.requires() == {"modes": 24, "high_quality": 0.8}
    common, strict = M.targets_for("wgan-gp", "grid25")
    assert common == grid and strict.requires() == {"modes": 25, "high_quality": 0.9}
    for data in ("ring8", "grid25"):
        (c,) = M.targets_for("cgan", data)
        assert c.requires() == {"in_requested_mode": 0.95}
    assert M.targets_for("cgan", "digits")[0].requires() == {"in_requested_mode": 0.8}
    assert M.targets_for("gan", "digits")[0].requires() == {"modes": 10, "high_quality": 0.8}
    assert M.targets_for("wgan-gp", "swissroll")[0].requires() == {"high_quality": 0.8}
    assert M.targets_for("gan", "nothing") == ()


def test_summary_reports_the_time_to_target(capsys):
    from fastgan.train import format_summary, summary

    t = make_trainer("wgan-gp", "grid25", steps=3, eval_every=0, **TINY)
    t.step, t.elapsed = 3, 3.0
    t.curve = [
        _point(1, 1.0, modes=20, n_modes=25, high_quality=0.5, finite=True),
        _point(2, 2.0, modes=24, n_modes=25, high_quality=0.85, finite=True),
        _point(3, 3.0, modes=25, n_modes=25, high_quality=0.85, finite=True),
    ]
    final = {"modes": 25, "n_modes": 25, "high_quality": 0.85, "finite": True}
    report = summary(t, {"metrics": final, "samples": None, "labels": None})
    assert report["target"] == ">= 24/25 modes, >= 80% high quality"
    assert (report["time_to_target"], report["step_to_target"]) == (2.0, 2)
    assert [r["reached"] for r in report["targets"]] == [True, False]
    assert report["curve"] == t.curve and report["eval_seconds"] == pytest.approx(0.03)
    json.dumps(report, allow_nan=False)  # strict JSON
    text = format_summary(report).splitlines()
    assert text[1] == "time to target (>= 24/25 modes, >= 80% high quality): 2.0 s of training, step 2"
    assert text[2] == "target (25/25 modes, >= 90% high quality) not reached in 3 steps"


# -------------------------------------------------------------------------------- resume
def test_resume_continues_the_curve_on_the_cumulative_clock(tmp_path):
    kw = dict(TINY, steps=9, eval_every=2, lr_decay="linear")
    whole = make_trainer("wgan-gp", "ring8", **kw)
    whole.fit(progress=False)
    first = make_trainer("wgan-gp", "ring8", **kw)
    first.fit(str(tmp_path), progress=False, stop_at=5)
    assert [p["step"] for p in first.curve] == [2, 4]
    saved = read_checkpoint(str(tmp_path / "checkpoint.pt"))
    assert saved["curve"] == first.curve
    resumed = make_trainer("wgan-gp", "ring8", **kw)
    resumed.load(str(tmp_path / "checkpoint.pt"))
    assert resumed.curve == first.curve and resumed.elapsed == saved["elapsed"]
    resumed.fit(progress=False)
    assert [p["step"] for p in resumed.curve] == [2, 4, 6, 8, 9]
    assert resumed.curve[:2] == first.curve  # the points before the resume, times included
    secs = [p["train_seconds"] for p in resumed.curve]
    assert all(a < b for a, b in zip(secs, secs[1:])) and secs[2] > saved["elapsed"]
    assert _without_times(resumed.curve) == _without_times(whole.curve)  # same steps, same measures


def test_resume_on_the_command_line_continues_the_curve(tmp_path):
    common = ["--loss", "gan", "--data", "ring8", "--lr-decay", "none", "--eval-every", "3", "--no-plots",
              "--out", str(tmp_path)]
    assert _train(*common, "--steps", "4") == 0
    one = json.loads((tmp_path / "metrics.json").read_text())
    assert [p["step"] for p in one["curve"]] == [3, 4]
    assert _train(*common, "--steps", "8", "--resume") == 0
    two = json.loads((tmp_path / "metrics.json").read_text())
    assert [p["step"] for p in two["curve"]] == [3, 4, 6, 8]
    assert two["curve"][:2] == one["curve"]
    assert two["curve"][-1]["train_seconds"] <= two["train_seconds"]
    assert two["train_seconds"] > one["train_seconds"] > 0


def test_a_checkpoint_without_a_curve_resumes_and_a_damaged_curve_is_refused(tmp_path, capsys):
    common = ["--loss", "gan", "--data", "ring8", "--lr-decay", "none", "--eval-every", "2", "--no-plots",
              "--out", str(tmp_path)]
    assert _train(*common, "--steps", "2") == 0
    ckpt = tmp_path / "checkpoint.pt"
    state = torch.load(ckpt, weights_only=True)
    torch.save({k: v for k, v in state.items() if k != "curve"}, ckpt)  # as written before the curve
    assert _train(*common, "--steps", "4", "--resume") == 0
    assert [p["step"] for p in json.loads((tmp_path / "metrics.json").read_text())["curve"]] == [4]
    for bad in ("not a list", [{"step": "two", "train_seconds": 1.0}], [{"train_seconds": 1.0}]):
        torch.save({**state, "curve": bad}, ckpt)
        before = ckpt.read_bytes()
        capsys.readouterr()
        assert _train(*common, "--steps", "4", "--resume") == 2
        err = capsys.readouterr().err
        assert len(err.splitlines()) == 1 and "damaged" in err and "curve" in err, err
        assert ckpt.read_bytes() == before


# ----------------------------------------------------------------------- bit-identical
@pytest.mark.parametrize("loss,data", [("wgan-gp", "ring8"), ("cgan", "grid25"), ("began", "ring8"),
                                       ("gan", "digits")])
def test_the_curve_never_changes_the_training(loss, data):
    kw = dict(TINY, steps=6, lr_decay="linear")
    if data == "digits":
        kw.update(width=4, batch_size=8, eval_samples=50)
    a = make_trainer(loss, data, eval_every=1, **kw)
    a.fit(progress=False)
    b = make_trainer(loss, data, eval_every=0, **kw)
    b.fit(progress=False)
    assert len(a.curve) == 6 and b.curve == []
    _assert_identical(_weights(a), _weights(b))


def test_an_evaluation_that_draws_from_the_global_rngs_changes_nothing_either(monkeypatch):
    """The global RNG states are restored after each point; without that, the comparison above
    fails (WGAN-GP's interpolation coefficients come from torch's global RNG)."""
    import contextlib
    import random

    from fastgan.train import loop

    original = Trainer.evaluate

    def drawing(self, n=None):
        torch.rand(3)
        np.random.rand(3)
        random.random()
        return original(self, n)

    monkeypatch.setattr(Trainer, "evaluate", drawing)
    kw = dict(TINY, steps=4)
    b = make_trainer("wgan-gp", "ring8", eval_every=0, **kw)
    b.fit(progress=False)
    a = make_trainer("wgan-gp", "ring8", eval_every=1, **kw)
    a.fit(progress=False)
    _assert_identical(_weights(a), _weights(b))
    monkeypatch.setattr(loop, "_global_rng_kept", lambda device: contextlib.nullcontext())
    c = make_trainer("wgan-gp", "ring8", eval_every=1, **kw)
    c.fit(progress=False)
    with pytest.raises(AssertionError):
        _assert_identical(_weights(c), _weights(b))


def test_the_curve_never_changes_the_training_on_the_command_line(tmp_path):
    common = ["--loss", "wgan-gp", "--data", "ring8", "--steps", "6", "--no-plots"]
    assert _train(*common, "--eval-every", "1", "--out", str(tmp_path / "curve")) == 0
    assert _train(*common, "--eval-every", "0", "--out", str(tmp_path / "none")) == 0
    a = torch.load(tmp_path / "curve" / "checkpoint.pt", weights_only=True)
    b = torch.load(tmp_path / "none" / "checkpoint.pt", weights_only=True)
    for key in ("G", "D", "opt_g", "opt_d", "loss", "rng"):
        _assert_identical(a[key], b[key], key)
    assert np.array_equal(np.load(tmp_path / "curve" / "samples.npy"), np.load(tmp_path / "none" / "samples.npy"))
    assert len(a["curve"]) == 6 and b["curve"] == []


# -------------------------------------------------------------------------------- CLI
def test_cli_writes_the_curve_targets_and_plot(tmp_path, capsys):
    out = tmp_path / "run"
    assert _train("--loss", "cgan", "--data", "ring8", "--steps", "4", "--eval-every", "2", "--out", str(out)) == 0
    report = json.loads((out / "metrics.json").read_text())
    assert report["eval_every"] == 2 and [p["step"] for p in report["curve"]] == [2, 4]
    assert report["target"] == ">= 95% in the requested mode"
    assert set(report["targets"][0]) == {"name", "requires", "measured", "reached", "step", "train_seconds",
                                         "met_at_end"}
    assert report["time_to_target"] is None and report["step_to_target"] is None  # 4 tiny steps
    assert report["curve"][-1]["in_requested_mode"] == report["metrics"]["in_requested_mode"]
    assert report["config"]["eval_every"] == 2 and report["eval_seconds"] > 0
    assert (out / "quality.png").is_file()
    assert "target (>= 95% in the requested mode) not reached in 4 steps" in capsys.readouterr().out


def test_eval_every_0_disables_the_curve(tmp_path, capsys):
    out = tmp_path / "run"
    assert _train("--loss", "gan", "--data", "ring8", "--steps", "3", "--eval-every", "0", "--out", str(out)) == 0
    report = json.loads((out / "metrics.json").read_text())
    assert report["curve"] == [] and report["eval_every"] == 0 and report["time_to_target"] is None
    (t,) = report["targets"]
    assert t["measured"] is False and t["reached"] is False and t["met_at_end"] in (True, False)
    assert not (out / "quality.png").exists() and (out / "samples.png").is_file()
    assert "time to target not measured (--eval-every 0)" in capsys.readouterr().out


@pytest.mark.parametrize("value", ["-1", "1.5", "ten", ""])
def test_bad_eval_every_is_one_line_and_exit_2(value, tmp_path, capsys):
    out = tmp_path / "run"
    capsys.readouterr()
    try:
        status = _train("--loss", "gan", "--eval-every", value, "--out", str(out))
    except SystemExit as exc:
        status = exc.code
    err = capsys.readouterr().err
    assert status == 2 and len(err.splitlines()) == 1 and "--eval-every" in err and "Traceback" not in err, err
    assert not out.exists()


def test_eval_every_is_in_the_help(capsys):
    with pytest.raises(SystemExit):
        cli.main(["train", "--help"])
    assert "--eval-every" in capsys.readouterr().out


# ------------------------------------------------------------------------ curve metrics
def test_curve_metrics_without_scipy_match(monkeypatch):
    import sys

    from fastgan.train import data as D

    lo, hi = D.SwissRoll.t_range
    curve = D.SwissRoll.curve(torch.linspace(lo, hi, 3000)).numpy()
    x = D.create("swissroll").sample(300, torch.Generator().manual_seed(0))[0].numpy() * 1.05
    x[0] = np.nan
    x[1, 0] = np.inf
    fast = M.curve_metrics(x, curve, 0.05)
    fast_finite = M.curve_metrics(x[2:], curve, 0.05)
    with monkeypatch.context() as m:
        m.setitem(sys.modules, "scipy.spatial", None)  # "from scipy.spatial import ..." fails
        slow = M.curve_metrics(x, curve, 0.05)
        slow_finite = M.curve_metrics(x[2:], curve, 0.05)
    assert fast["high_quality"] == slow["high_quality"] and 0 < fast["high_quality"] < 1
    assert fast["mean_distance"] == slow["mean_distance"] == math.inf  # the non-finite samples
    assert fast_finite["high_quality"] == slow_finite["high_quality"]
    assert fast_finite["mean_distance"] == pytest.approx(slow_finite["mean_distance"], rel=1e-9)


# ------------------------------------------------------------------ benchmarks/train_table.py
def _train_table():
    import importlib.util
    import pathlib

    path = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "train_table.py"
    spec = importlib.util.spec_from_file_location("train_table_under_test", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_train_table_filters_runs_one_at_a_time_and_reports_time_to_target(tmp_path, monkeypatch):
    table = _train_table()
    calls = []

    def fake_run_one(loss, data, flags, out):
        calls.append((loss, data, flags))
        own = {"name": "t", "requires": {}, "measured": True, "reached": loss == "cgan",
               "step": 700 if loss == "cgan" else None, "train_seconds": 4.12 if loss == "cgan" else None,
               "met_at_end": True}
        strict = {**own, "name": "strict", "reached": False, "step": None, "train_seconds": None}
        return {"loss": loss, "data": data, "steps": 5, "train_seconds": 7.1, "wall_seconds": 9.0,
                "generator_steps_per_s": 100.0, "flags": " ".join(flags),
                "metrics": {"modes": 8, "n_modes": 8, "high_quality": 0.9},
                "targets": [own, strict] if loss == "wgan-gp" else [own]}

    monkeypatch.setattr(table, "run_one", fake_run_one)
    out = tmp_path / "out"
    assert table.main(["--only", "cgan:ring8,wgan-gp:*", "--steps", "5", "--out", str(out),
                       "--runs-dir", str(tmp_path / "runs"), "--picture", str(tmp_path / "pic.png")]) == 0
    assert [c[:2] for c in calls] == [("cgan", "ring8"), ("wgan-gp", "ring8"), ("wgan-gp", "grid25"),
                                      ("wgan-gp", "swissroll"), ("wgan-gp", "digits")]
    assert all(c[2][-2:] == ["--steps", "5"] for c in calls)
    md = (out / "train-table.md").read_text()
    assert "| time to target (s) | step |" in md
    assert "| cgan | ring8 | --steps 5 | 5 | 8/8 | 90.0 % | – | t | 4.1 | 700 |" in md
    assert "| wgan-gp | grid25 | --steps 5 | 5 | 8/8 | 90.0 % | – | t | not reached | – | strict: not reached |" in md
    assert not (tmp_path / "pic.png").exists()  # never a picture from a shortened run
    with pytest.raises(SystemExit) as exc:
        table.main(["--only", "nothing:*", "--out", str(out)])
    assert exc.value.code == 2


# ----------------------------------------------------------------------------- distributed
def test_under_torchrun_rank_0_records_the_curve(tmp_path):
    import socket
    import subprocess
    import sys

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--rdzv-backend", "c10d",
           "--rdzv-endpoint", f"127.0.0.1:{port}", "-m", "fastgan.train", "--loss", "gan", "--data", "ring8",
           "--steps", "3", "--eval-every", "1", *TINY_FLAGS, "--no-plots", "--distributed", "--out", str(out)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stdout + r.stderr
    report = json.loads((out / "metrics.json").read_text())
    assert [p["step"] for p in report["curve"]] == [1, 2, 3] and report["world_size"] == 2
    assert torch.load(out / "checkpoint.rank0.pt", weights_only=True)["curve"] == report["curve"]
    assert torch.load(out / "checkpoint.rank1.pt", weights_only=True)["curve"] == []
