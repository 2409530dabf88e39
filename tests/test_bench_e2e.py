"""The DCGAN WGAN-GP case of ``fastgan bench --e2e`` (fastgan/bench/dcgan.py, e2e.run_dcgan):
the models' shapes (no batch norm in the critic), one step on every backend with the same first
critic loss, lazy regularisation skipping the penalty on k − 1 of k critic steps, and the rows
the e2e run emits. Tiny batches and budgets; no test asserts on a measured time."""

from __future__ import annotations

import csv
import math
import warnings

import pytest
import torch
from torch import nn

import fastgan
import fastgan.functional as FG
from fastgan.bench import cases as C
from fastgan.bench import dcgan, e2e, report, timing

BACKENDS = C.backends_for("cpu")


@pytest.fixture(autouse=True)
def _quiet_one_thread():
    """One torch thread: on a small machine shared with other processes, two threads that wait
    for each other make these conv steps many times slower (the tests time nothing)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", fastgan.FastganWarning)
            yield
    finally:
        torch.set_num_threads(threads)


def test_dcgan_models_have_the_public_scripts_shapes_and_no_batch_norm_in_the_critic():
    tr = dcgan.DCGANTrainer("reference")
    assert tr.batch_size == 64 and tr.n_critic == 5 and dcgan.Z_DIM == 100
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in tr.D.modules())
    assert any(isinstance(m, nn.LayerNorm) for m in tr.D.modules())
    assert any(isinstance(m, nn.BatchNorm2d) for m in tr.G.modules())
    assert any(isinstance(m, nn.ConvTranspose2d) for m in tr.G.modules())
    with torch.no_grad():
        fake = tr.G(tr._noise())
        real = tr._real()
        assert fake.shape == real.shape == (64, 1, 28, 28)
        assert fake.abs().max() <= 1 and real.abs().max() <= 1
        assert tr.D(fake).shape == (64, 1)
    for opt in (tr.opt_d, tr.opt_g):
        assert isinstance(opt, torch.optim.Adam)
        assert opt.defaults["lr"] == 1e-4 and tuple(opt.defaults["betas"]) == (0.5, 0.9)
    assert tr.loss.gp_weight == 10.0 and tr.loss.gp_interval == 1


def test_one_full_step_runs_on_every_backend_and_the_first_critic_losses_agree():
    first = {}
    for b in BACKENDS:
        tr = dcgan.DCGANTrainer(b, batch_size=16)
        first[b] = float(tr.discriminator_step()["d_loss"])
        logs = tr.train_step()
        assert math.isfinite(float(logs["d_loss"])) and math.isfinite(float(logs["g_loss"]))
    assert "reference" in first and len(first) >= 2  # the cpu backend is built here
    for b, got in first.items():
        assert math.isclose(got, first["reference"], rel_tol=e2e.TOL), (b, got, first["reference"])


@pytest.mark.parametrize("k", [1, 4])
def test_lazy_regularisation_skips_the_penalty_on_k_minus_1_of_k_critic_steps(k, monkeypatch):
    calls = []
    real_gp = FG.gradient_penalty

    def spy(*args, **kwargs):
        calls.append(kwargs.get("gp_weight", kwargs.get("weight")))  # weight: the deprecated name
        return real_gp(*args, **kwargs)

    monkeypatch.setattr(FG, "gradient_penalty", spy)
    tr = dcgan.DCGANTrainer("cpu" if "cpu" in BACKENDS else "reference", gp_interval=k, batch_size=4)
    gps = []
    for _ in range(3):  # 3 full steps: 15 critic steps, then the generator's (no penalty)
        for _ in range(tr.n_critic):
            gps.append(float(tr.discriminator_step()["gp"]))
        tr.generator_step()
    ran = [i for i, gp in enumerate(gps) if gp != 0.0]
    assert ran == list(range(0, 15, k))  # the 1st, the (k+1)-th, ...
    assert calls == [10.0 * k] * len(ran)  # weight x k
    assert int(tr.loss.gp_step) == 15


def test_a_lazy_sample_spans_whole_periods_of_the_schedule():
    # k D steps for the D step; k / gcd(k, 5) full steps (5 D steps each) for the full step
    assert [e2e._period(k, 1) for k in (1, 4, 16)] == [1, 4, 16]
    assert [e2e._period(k, 5) for k in (1, 4, 5, 10, 16)] == [1, 4, 1, 2, 16]


def test_the_e2e_run_emits_the_dcgan_rows(monkeypatch, tmp_path):
    monkeypatch.setattr(dcgan, "BATCH", 4)
    dev = timing.get_device("cpu")
    logged = []
    rows, info = e2e.run(dev, quick=True, budget_s=0.001, families=("wgan-gp",), data=(e2e.DCGAN,),
                         log=logged.append)
    fused = [b for b in BACKENDS if b != "reference"]
    configs = [("reference", "reference", 1)] + [(b, c, k) for b in fused for c, k in (("fused", 1), ("fused+lazy", 4))]
    assert [(r["backend"], r["config"], r["gp_interval"], r["step"]) for r in rows] == [
        (*cfg, s) for cfg in configs for s in ("D step", "full step")]
    assert info["dcgan"]["batch"] == 4 and info["dcgan"]["n_critic"] == 5 and info["dcgan"]["lazy_intervals"] == [4]
    by = {(r["backend"], r["config"], r["step"]): r for r in rows}
    for r in rows:
        assert r["family"] == "wgan-gp" and r["data"] == e2e.DCGAN and r["status"] == "ok", r
        assert r["d_steps"] == (1 if r["step"] == "D step" else 5)
        assert r["median_s"] > 0 and r["samples"] == 3
        assert r["steps_per_sample"] == (4 if r["config"] == "fused+lazy" else 1)
        ref = by[("reference", "reference", r["step"])]
        assert math.isclose(r["ratio_vs_reference"], ref["median_s"] / r["median_s"])
        if r["config"] == "fused":  # the same seed: the same first critic loss
            assert math.isclose(r["first_d_loss"], ref["first_d_loss"], rel_tol=e2e.TOL)
        if r["config"] == "fused+lazy":  # its first step runs the penalty with weight 4 λ
            fus = by[(r["backend"], "fused", r["step"])]
            assert math.isclose(r["ratio_vs_fused"], fus["median_s"] / r["median_s"])
            assert math.isclose(r["first_d_loss"], r["expected_first_d_loss"], rel_tol=e2e.TOL)
            assert r["first_d_loss"] > ref["first_d_loss"]
        else:
            assert "ratio_vs_fused" not in r
    assert any(m.startswith("e2e dcgan") for m in logged)
    # the CSV and the printed table carry them
    path = tmp_path / "e2e.csv"
    report.write_csv(str(path), rows, report.E2E_FIELDS)
    with open(path, newline="") as f:
        got = list(csv.DictReader(f))
    assert len(got) == len(rows) and {"config", "gp_interval", "step", "ratio_vs_fused"} <= set(got[0])
    table = report.e2e_table(rows)
    assert "DCGAN WGAN-GP" in table and "fused + lazy reg. k=4" in table and "full step (5 D + 1 G)" in table
    assert table.count("\n| reference | reference |") == 1


def test_the_dcgan_case_runs_with_wgan_gp_and_its_data_only(monkeypatch):
    ran = []
    monkeypatch.setattr(e2e, "run_dcgan", lambda *a, **kw: (ran.append(1), ([], {}))[1])
    dev = timing.get_device("cpu")
    e2e.run(dev, families=("gan",), data=(e2e.DCGAN,), log=lambda m: None)
    assert not ran
    e2e.run(dev, families=("wgan-gp",), data=(e2e.DCGAN,), log=lambda m: None)
    assert ran == [1]
    assert e2e.DCGAN in e2e.DATA  # the default data of --e2e
