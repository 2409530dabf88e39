"""``fastgan bench`` end to end on tiny settings, its outputs, its checks and its timers.

No test asserts on a measured time: only that times exist, are positive and are reported
consistently in every output.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import time

import pytest
import torch

import fastgan
from fastgan import cli
from fastgan.bench import cases as C
from fastgan.bench import e2e, report, runner, timing

PNG = b"\x89PNG\r\n\x1a\n"
FAST = ["--sizes", "tiny", "--budget", "0.01", "--max-wait", "0", "--retries", "0", "--quick"]


def _wrong_provider() -> C.Provider:
    """A fastgan-like provider that is 1 % off: must show ✗ and never be timed."""

    def make(case, device="cpu"):
        good = C.reference(case, device)
        return lambda *t: good(*t) * 1.01

    return C.Provider("fastgan_wrong", make, kind="fastgan")


def _only_file(folder, suffix: str) -> str:
    found = [f for f in os.listdir(folder) if f.endswith(suffix)]
    assert len(found) == 1, (suffix, os.listdir(folder))
    return os.path.join(folder, found[0])


def _key(r: dict) -> tuple:
    return r["op"], r["shape"], r["params"], r["provider"]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """One in-process run: two operators and two families on tiny sizes, eager baselines, every
    backend, a wrong provider, and --e2e restricted to one family on the toy MLP."""
    out = tmp_path_factory.mktemp("bench")
    mp = pytest.MonkeyPatch()
    mp.setitem(C.EXTRA_PROVIDERS, "fastgan_wrong", _wrong_provider())
    mp.setattr(e2e, "FAMILIES", ("wgan-gp",))
    mp.setattr(e2e, "DATA", {"ring8": "toy MLP"})
    import contextlib
    import io

    stdout, stderr = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            rc = cli.main(["bench", *FAST, "--ops", "interpolate,reconstruction_error,gan,wgan-gp",
                           "--baselines", "eager_idiom,best_eager", "--e2e", "--out", str(out)])
    finally:
        mp.undo()
    return rc, out, stdout.getvalue(), stderr.getvalue()


def test_run_writes_consistent_json_csv_md_and_plots(tiny_run):
    rc, out, stdout, _ = tiny_run
    report_ = json.load(open(_only_file(out, "-quick.json")))
    rows = report_["results"]
    with open(_only_file(out, "-quick.csv"), newline="") as f:
        csv_rows = list(csv.DictReader(f))
    # the same rows in JSON and CSV: every case x provider once
    assert sorted(map(_key, rows)) == sorted(map(_key, csv_rows))
    expected_cases = {c.label for c in C.select(["interpolate", "reconstruction_error", "gan", "wgan-gp"], ["tiny"])}
    assert {" ".join(filter(None, r[:3])) for r in map(_key, rows)} == expected_cases
    by_csv = {_key(r): r for r in csv_rows}
    for r in rows:
        c = by_csv[_key(r)]
        assert c["status"] == r["status"]
        if r.get("median_s") is not None:
            assert math.isclose(float(c["median_s"]), r["median_s"], rel_tol=1e-9)
    providers = {r["provider"] for r in rows}
    assert providers == {"eager_idiom", "best_eager", "fastgan_wrong"} | {
        f"fastgan_{b}" for b in C.backends_for("cpu")}
    # every good provider is checked (✓) and timed; speed-ups are ratios of the same medians
    good = [r for r in rows if r["provider"] != "fastgan_wrong"]
    assert good and all(r["status"] == "ok" and r["check"].startswith("✓") for r in good)
    assert all(r["median_s"] > 0 and r["samples"] >= 1 for r in good)
    idiom = {(r["op"], r["shape"], r["params"]): r["median_s"] for r in rows if r["provider"] == "eager_idiom"}
    for r in good:
        assert math.isclose(r["speedup_vs_eager_idiom"], idiom[(r["op"], r["shape"], r["params"])] / r["median_s"])
        if r["family"]:
            assert r.get("GBps") is None
        else:  # GB/s of ideal bytes and the share of the run's copy bandwidth
            assert math.isclose(r["GBps"], r["ideal_bytes"] / r["median_s"] / 1e9)
            assert math.isclose(r["share_of_copy_bw"], r["GBps"] / report_["copy_bandwidth"]["GBps_used"])
    assert report_["copy_bandwidth"]["GBps_used"] > 0 and report_["device"] == "cpu"
    assert report_["machine"]["fastgan_backends"] == fastgan.available_backends()
    # the printed table and the markdown file show every case and provider
    md = open(_only_file(out, "-quick.md")).read()
    for text in (stdout, md):
        for label in expected_cases:
            assert label in text
        assert "fastgan wrong" in text and "✗" in text
    for suffix in ("-speedup.png", "-bandwidth.png"):
        with open(_only_file(out, suffix), "rb") as f:
            data = f.read()
        assert data.startswith(PNG) and len(data) > 2000


def test_a_wrong_provider_is_marked_and_never_timed(tiny_run):
    rc, out, stdout, stderr = tiny_run
    rows = json.load(open(_only_file(out, "-quick.json")))["results"]
    wrong = [r for r in rows if r["provider"] == "fastgan_wrong"]
    n_cases = len(report.cases_of(rows))
    assert n_cases == 5 and len(wrong) == n_cases
    for r in wrong:
        assert r["status"] == "wrong" and r["check"].startswith("✗")
        assert 0.005 < r["max_error"] < 0.02  # 1 % off, relative to the reference's scale
        assert r.get("median_s") is None and r.get("speedup_vs_eager_idiom") is None
    lines = [l for l in stdout.splitlines() if "| fastgan wrong |" in l]
    assert len(lines) == n_cases and all("✗" in l and "not timed" in l for l in lines)
    assert "not timed" in stderr
    assert rc == 1  # a failing fastgan provider fails the run


def test_e2e_times_training_steps_of_both_backends(tiny_run):
    rc, out, stdout, _ = tiny_run
    rep = json.load(open(_only_file(out, "-quick.json")))
    rows = rep["e2e"]["results"]
    fused = [b for b in C.backends_for("cpu") if b != "reference"]
    assert {r["backend"] for r in rows} == {"reference", *fused}
    assert all(r["family"] == "wgan-gp" and r["data"] == "ring8" and r["status"] == "ok" for r in rows)
    ref = next(r for r in rows if r["backend"] == "reference")
    for r in rows:
        assert r["median_s"] > 0
        assert math.isclose(r["ratio_vs_reference"], ref["median_s"] / r["median_s"])
        # the same seed: both backends computed the same first discriminator loss
        assert math.isclose(r["first_d_loss"], ref["first_d_loss"], rel_tol=1e-3)
    with open(_only_file(out, "-e2e.csv"), newline="") as f:
        assert len(list(csv.DictReader(f))) == len(rows)
    assert "Whole training steps" in stdout


def test_compiled_baseline_is_checked_then_timed(tmp_path, capsys):
    rc = cli.main(["bench", *FAST, "--ops", "grad_norm_penalty", "--baselines", "eager_idiom,compiled",
                   "--no-plots", "--out", str(tmp_path)])
    assert rc == 0
    rows = json.load(open(_only_file(tmp_path, ".json")))["results"]
    comp = next(r for r in rows if r["provider"] == "compiled")
    assert comp["status"] == "ok" and comp["median_s"] > 0
    for r in rows:
        assert math.isclose(r["speedup_vs_compiled"], comp["median_s"] / r["median_s"])
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".png")]  # --no-plots
    assert "torch.compile" in capsys.readouterr().out


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message given where there is no GPU")
def test_device_cuda_without_gpu_fails_clearly(tmp_path, capsys):
    out = tmp_path / "never"
    assert cli.main(["bench", "--device", "cuda", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "--device cuda" in err and "no GPU" in err
    assert not out.exists()  # nothing written, nothing measured
    with pytest.raises(timing.DeviceUnavailableError, match="no GPU"):
        timing.get_device("cuda")


@pytest.mark.parametrize("argv, message", [
    (["--ops", "interpolate,softmax"], "unknown operator or loss 'softmax'"),
    (["--sizes", "huge"], "sizes are among"),
    (["--budget", "-1"], "expected a finite number >= 0"),
    (["--budget", "inf"], "expected a finite number >= 0"),
    (["--device", "tpu"], "invalid choice"),
])
def test_bad_options_are_usage_errors(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["bench", *argv])
    assert exc.value.code == 2 and message in capsys.readouterr().err


def test_unknown_backend_and_baseline_are_refused(tmp_path, capsys):
    assert cli.main(["bench", "--backends", "tpu", "--out", str(tmp_path)]) == 2
    assert "unknown backend tpu" in capsys.readouterr().err
    assert cli.main(["bench", "--baselines", "numpy", "--out", str(tmp_path)]) == 2
    assert "--baselines takes" in capsys.readouterr().err


def test_argv_round_trip_for_the_no_mmap_rerun():
    import fastgan.bench as B

    p = argparse.ArgumentParser()
    B.add_arguments(p)
    args = p.parse_args(["--quick", "--ops", "losses", "--sizes", "tiny,small", "--budget", "0.5",
                         "--no-mmap", "--backends", "cpu", "--name", "box", "--max-wait", "3", "--e2e"])
    again = p.parse_args(runner._argv_from_args(args)[1:])
    assert vars(again) == vars(args)
    assert args.ops == list(C.FAMILIES)


def test_quick_selection_is_small_and_covers_every_operator_and_family():
    quick = C.select(None, None, quick=True)
    assert {c.op for c in quick} == set(C.NAMES)
    assert all(c.size == "small" for c in quick) and len(quick) <= 16
    full = C.select(None, None)
    assert set(quick) < set(full) and not [c for c in full if c.size == "tiny"]


@pytest.mark.parametrize("case", [c for c in C.select(None, ["tiny"]) if c.family], ids=lambda c: c.op)
def test_family_compositions_match_the_loss_objects(case):
    """The eager idiom and best eager compositions of every family compute the loss object's
    value and gradients (so timing them compares like with like)."""
    for name in ("eager_idiom", "best_eager", "fastgan_reference"):
        prov = C.providers("cpu", ["reference"])[name]
        res = C.check(case, prov)
        assert res.ok, (name, res)


class _FakeEvent:
    """Stands in for torch.cuda.Event: records host times; elapsed_time in milliseconds."""

    log: list[str] = []

    def __init__(self, enable_timing=False):
        assert enable_timing
        self.t = None
        self.done = False

    def record(self):
        self.t = time.perf_counter()
        _FakeEvent.log.append("record")

    def synchronize(self):
        self.done = True
        _FakeEvent.log.append("event.synchronize")

    def elapsed_time(self, end):
        assert end.done, "elapsed_time read before the end event completed"
        return (end.t - self.t) * 1e3


class _ClockEvent(_FakeEvent):
    """A fake event on a fake clock that only the timed step advances: the timer's arithmetic
    is checked exactly, with no wall-clock time involved."""

    now = 0.0

    def record(self):
        super().record()
        self.t = _ClockEvent.now


def test_cuda_event_timer_logic_without_a_gpu():
    syncs = []
    timer = timing.CudaEventTimer(event=_ClockEvent, synchronize=lambda: syncs.append(1))
    calls = []

    def step():  # 2 ms of fake device time per call
        calls.append(1)
        _ClockEvent.now += 0.002

    per_call = timer.sample(step, 3)
    # the events bracket the 3 calls; elapsed_time's milliseconds become seconds per call
    assert len(calls) == 3 and per_call == pytest.approx(0.002)
    assert _FakeEvent.log[-3:] == ["record", "record", "event.synchronize"]
    # the interleaved measurement synchronises the device after warm-up and before each round
    t = timing.measure({"a": lambda: None, "b": lambda: None}, timer=timer, warmup_s=0.0, budget_s=0.001,
                       min_samples=2, rounds=2)
    assert set(t) == {"a", "b"} and all(len(x.samples) >= 2 for x in t.values()) and len(syncs) >= 4


def test_a_case_runs_through_the_cuda_timer_path_on_cpu_tensors():
    """The runner with a device whose timer is the CUDA-event timer (fake events): what
    ``--device cuda`` runs, minus the GPU."""
    dev = timing.Device("cpu", timing.CudaEventTimer(event=_FakeEvent, synchronize=lambda: None), 1 << 20, "fake")
    case = C.select(["interpolate"], ["tiny"])[0]
    provs = C.providers("cpu", ["reference"], baselines=("eager_idiom",))
    rows = runner.run_case(case, provs, dev, dict(budget_s=0.005, min_samples=3, rounds=2, warmup_s=0.0),
                           runner.Quiet(0), log=lambda m: None)
    assert [r["status"] for r in rows] == ["ok", "ok"]
    assert all(r["median_s"] > 0 and r["GBps"] > 0 for r in rows)
    assert rows[0]["input_sets"] >= 2  # rotated: one tiny set is far below 4 x the cache


def test_copy_bandwidth_counts_read_and_write():
    dev = timing.get_device("cpu")
    bw = timing.CopyBandwidth(dev, buffer_bytes=16 << 20).measure(repeats=3, warmup=1)
    assert bw["buffer_MiB"] == 16 and 0 < bw["GBps_min"] <= bw["GBps"] <= bw["GBps_max"]


def test_ideal_bytes_and_rotation():
    assert timing.ideal_bytes("interpolate", 10) == 8 * 10 * 4
    assert timing.ideal_bytes("grad_norm_penalty", 10, 2) == 3 * 10 * 2
    assert timing.ideal_bytes("reconstruction_error", 10, backward=False) == 2 * 10 * 4
    assert timing.rotation_sets(100, 1000) == 10 and timing.rotation_sets(1000, 1000) == 1
    assert timing.rotation_sets(1, 10**9) == 64
    nxt = timing.rotating(["a", "b"])
    assert [nxt() for _ in range(3)] == ["a", "b", "a"]


def test_report_speedups_and_headline():
    rows = [
        {"op": "x", "shape": "1", "params": "", "provider": "eager_idiom", "median_s": 4.0},
        {"op": "x", "shape": "1", "params": "", "provider": "compiled", "median_s": 2.0},
        {"op": "x", "shape": "1", "params": "", "provider": "fastgan_cpu", "median_s": 1.0},
        {"op": "x", "shape": "1", "params": "", "provider": "fastgan_wrong", "status": "wrong"},
    ]
    report.add_speedups(rows)
    assert rows[2]["speedup_vs_eager_idiom"] == 4.0 and rows[2]["speedup_vs_compiled"] == 2.0
    assert "speedup_vs_eager_idiom" not in rows[3]
    assert report.headline_provider(["fastgan_reference", "fastgan_cpu"]) == "fastgan_cpu"



def test_bench_check_uses_the_one_tolerance_table():
    """The benchmark's check applies fastgan.testing's rows, whose values are the catalogue's
    documented ``TOL_OP`` / ``TOL_FAMILY``: an error just under the row passes, one just above
    it fails, and a NaN where the reference has none is wrong."""
    import torch

    from fastgan.bench import catalogue, checks
    from fastgan.bench.providers import Provider
    from fastgan.testing import TOLERANCES

    assert TOLERANCES["benchmark_op"][torch.float32].atol_scaled == catalogue.TOL_OP
    assert TOLERANCES["benchmark_fam"][torch.float32].atol_scaled == catalogue.TOL_FAMILY
    case = next(c for c in catalogue.CASES if not c.family and c.size == "tiny")
    provider = Provider("test", lambda c, d: None)
    for factor, ok in ((1 + 0.5 * catalogue.TOL_OP, True), (1 + 4 * catalogue.TOL_OP, False), (float("nan"), False)):
        ref = checks.reference(case, "cpu")
        res = checks.check(case, provider, lambda *t, f=factor, ref=ref: ref(*t) * f)
        assert res.ok is ok and res.status == ("ok" if ok else "wrong"), (factor, res)
        assert (res.max_error < catalogue.TOL_OP) is ok, (factor, res)
