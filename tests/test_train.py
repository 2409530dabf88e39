"""``fastgan train``: short runs of every family, the metrics on constructed samples, data,
bit-identical resume, checkpoint checks, and the command line end to end (tiny settings)."""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest
import torch

import fastgan
from fastgan import cli
from fastgan.train import Trainer, default_config, make_trainer
from fastgan.train import data as D
from fastgan.train import metrics as M

FAMILIES = fastgan.losses.available()


@pytest.fixture(autouse=True)
def _one_thread():
    """The tiny networks here run faster on one thread (and the CLI sets one for 2-D data)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
TINY = {"width": 16, "depth": 2, "batch_size": 32}


# ------------------------------------------------------------------------------ short runs
@pytest.mark.parametrize("loss", FAMILIES)
def test_every_family_trains_on_ring8_without_nan(loss):
    t = make_trainer(loss, "ring8", steps=8, log_every=2, **TINY)
    before = [p.detach().clone() for p in t.G.parameters()]
    t.fit(progress=False)
    assert t.step == 8
    hist = t.history
    assert hist["step"] == [2, 4, 6, 8]
    logged = [k for k in hist if k != "step"]
    assert "d_loss" in logged and "g_loss" in logged
    for k in logged:
        assert len(hist[k]) == 4 and all(math.isfinite(x) for x in hist[k]), (k, hist[k])
    assert all(torch.isfinite(p).all() for p in t.G.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(before, t.G.parameters())), "G did not change"
    res = t.evaluate(200)
    assert res["samples"].shape == (200, 2) and res["metrics"]["finite"]
    if loss == "cgan":
        assert res["labels"].shape == (200,) and "in_requested_mode" in res["metrics"]
    if loss == "wgan":  # clipping after each critic step
        assert max(p.abs().max().item() for p in t.D.parameters()) <= 0.01
    if loss == "began":
        assert 0.0 < t.loss.k.item() <= 1.0 and "convergence" in hist


@pytest.mark.parametrize("loss", FAMILIES)
def test_every_family_takes_a_step_on_digits(loss):
    t = make_trainer(loss, "digits", width=4, batch_size=8, steps=2)
    logs = t.train_step()
    assert all(torch.isfinite(v) for v in logs.values())
    x, labels = t.generate(5)
    assert x.shape == (5, 1, 8, 8) and (x.abs() <= 1).all()
    assert (labels is not None) == (loss == "cgan")


def test_swissroll_trains_and_is_measured_against_the_curve():
    t = make_trainer("lsgan", "swissroll", steps=3, **TINY)
    t.fit(progress=False)
    m = t.evaluate(200)["metrics"]
    assert set(m) >= {"high_quality", "mean_distance"} and 0 <= m["high_quality"] <= 1 and m["mean_distance"] > 0


def test_steps_return_device_tensors_and_follow_the_backend():
    """Logs stay 0-dim tensors; the operators run on the trainer's backend."""
    calls = []
    from fastgan import backends

    t = make_trainer("wgan-gp", "ring8", backend="reference", **TINY)
    assert t.backend == "reference"
    original = backends.resolve

    def spy(op, device):
        hit = original(op, device)
        calls.append(hit[0])
        return hit

    backends.resolve = spy
    try:
        d_logs = t.discriminator_step()
        g_logs = t.generator_step()
    finally:
        backends.resolve = original
    assert calls and set(calls) == {"reference"}
    for v in {**d_logs, **g_logs}.values():
        assert isinstance(v, torch.Tensor) and v.dim() == 0 and not v.requires_grad
    assert fastgan.get_backend() != "reference" or os.environ.get("FASTGAN_BACKEND") == "reference"


def test_defaults_are_the_published_ones():
    c = default_config("wgan", "ring8")
    assert (c.optimizer, c.lr_d, c.lr_g, c.n_critic) == ("rmsprop", 5e-5, 5e-5, 5)
    t = make_trainer("wgan", "ring8", **TINY)
    assert t.loss.clip_value == 0.01
    c = default_config("wgan-gp", "digits")
    assert (c.optimizer, c.lr_d, c.betas, c.n_critic) == ("adam", 1e-4, (0.5, 0.9), 5)
    assert make_trainer("wgan-gp", "digits", width=4).loss.gp_weight == 10.0
    b = make_trainer("began", "ring8", **TINY).loss
    assert (b.gamma, b.lambda_k) == (0.5, 0.001)
    e = make_trainer("ebgan", "ring8", **TINY).loss
    assert e.pt_weight == 0.1 and e.margin == 1.0
    ls = make_trainer("lsgan", "ring8", **TINY).loss
    assert (ls.a, ls.b, ls.c) == (0.0, 1.0, 1.0)
    # overrides: config fields and loss hyper-parameters
    t = make_trainer("wgan-gp", "ring8", gp_weight=5.0, lr=3e-4, n_critic=2, **TINY)
    assert t.loss.gp_weight == 5.0 and t.config.lr_d == t.config.lr_g == 3e-4 and t.n_critic == 2
    with pytest.raises(TypeError, match="clip_value"):
        make_trainer("gan", "ring8", clip_value=0.1)
    with pytest.raises(ValueError, match="unknown data"):
        make_trainer("gan", "mnist")
    with pytest.raises(ValueError, match="batch_size"):
        make_trainer("gan", "ring8", batch_size=0)
    with pytest.raises(ValueError, match="labelled"):
        make_trainer("cgan", "swissroll")


def test_tuned_deviations_are_the_stated_ones_and_flags_override_them():
    c = default_config("wgan-gp", "grid25")
    assert c.loss_hparams == {"gp_weight": 0.1, "gp_interval": 4} and c.z_dim == 2 and c.lr_d == c.lr_g == 2e-3
    assert (c.steps, c.batch_size, c.n_critic, c.betas, c.lr_decay) == (6000, 256, 5, (0.5, 0.9), "linear")
    c = default_config("wgan-gp", "grid25", gp_weight=10.0, gp_interval=1, z_dim=8, lr=1e-4)
    assert c.loss_hparams == {"gp_weight": 10.0, "gp_interval": 1} and c.z_dim == 8 and c.lr_d == c.lr_g == 1e-4
    assert default_config("cgan", "grid25").lr_d == 1e-3 and default_config("gan", "grid25").lr_d == 1e-3
    assert default_config("wgan", "ring8").lr_d == 5e-5  # WGAN with clipping keeps the published values
    trainer = make_trainer("wgan-gp", "grid25", **TINY)
    assert (trainer.loss.gp_weight, trainer.loss.gp_interval) == (0.1, 4)
    for data, lazy in (("ring8", {"gp_interval": 4}), ("swissroll", {})):  # the toy recipe on 2-D data
        c = default_config("wgan-gp", data)
        assert c.loss_hparams == {"gp_weight": 0.1, **lazy} and c.lr_d == 2e-3 and c.z_dim == 2
    c = default_config("wgan-gp", "digits")
    assert c.loss_hparams == {} and c.lr_d == 1e-4 and c.z_dim == 32
    for loss in ("gan", "cgan", "lsgan"):
        c = default_config(loss, "digits")
        assert (c.lr_d, c.lr_g, c.steps) == (1e-3, 1e-3, 2000)
    assert default_config("hinge", "digits").lr_d == 2e-4


# ---------------------------------------------------------------------------------- data
def test_datasets_are_as_specified():
    g = torch.Generator().manual_seed(0)
    ring = D.create("ring8")
    assert torch.allclose(ring.centers.norm(dim=1), torch.full((8,), 2.0))
    x, y = ring.sample(4000, g)
    resid = x - ring.centers[y]
    assert abs(resid.std().item() - 0.02) < 0.002 and ring.sigma == 0.02
    grid = D.create("grid25")
    assert sorted(set(grid.centers.flatten().tolist())) == [-4.0, -2.0, 0.0, 2.0, 4.0]
    assert grid.centers.shape == (25, 2) and grid.sigma == 0.05
    x, y = grid.sample(4000, g)
    assert abs((x - grid.centers[y]).std().item() - 0.05) < 0.005
    assert torch.bincount(y, minlength=25).min() > 100
    x, y = D.create("swissroll").sample(100, g)
    assert y is None and x.shape == (100, 2)
    dig = D.create("digits")
    x, y = dig.sample(50, g)
    assert x.shape == (50, 1, 8, 8) and x.min() >= -1 and x.max() <= 1 and y.max() <= 9
    assert dig.images.shape[0] == 1797


# ------------------------------------------------------------------------------- metrics
def test_metrics_all_modes_one_mode_and_off_mode():
    grid = D.create("grid25")
    c, s = grid.centers.numpy(), grid.sigma
    rng = np.random.default_rng(0)
    every = np.repeat(c, 100, axis=0) + rng.normal(0, s / 2, (2500, 2))
    m = M.mode_metrics(every, c, s)
    assert m["modes"] == 25 and m["high_quality"] > 0.99 and m["mode_kl"] < 0.01
    one = c[7] + rng.normal(0, s / 2, (2500, 2))
    m = M.mode_metrics(one, c, s)
    assert m["modes"] == 1 and m["high_quality"] > 0.99 and m["mode_counts"][7] == m["high_quality"] * 2500
    assert abs(m["mode_kl"] - math.log(25)) < 1e-9
    off = (c[:24] + c[1:25]) / 2  # midpoints: 1 or 2 away from every mode
    m = M.mode_metrics(off, c, s)
    assert m["modes"] == 0 and m["high_quality"] == 0.0 and m["mode_kl"] is None
    # the 3σ boundary, and NaN samples are never high quality
    pts = np.array([c[0] + [2.9 * s, 0], c[1] + [0, 3.1 * s], [np.nan, 0.0], c[2]])
    m = M.mode_metrics(pts, c, s)
    assert m["high_quality"] == 0.5 and m["modes"] == 2 and m["mode_counts"][0] == 1 and m["mode_counts"][1] == 0


def test_conditional_metrics():
    ring = D.create("ring8")
    c, s = ring.centers.numpy(), ring.sigma
    labels = np.arange(8).repeat(10)
    right = c[labels] + 0.5 * s
    assert M.conditional_metrics(right, labels, c, s)["in_requested_mode"] == 1.0
    wrong = c[(labels + 1) % 8]
    m = M.conditional_metrics(wrong, labels, c, s)
    assert m["in_requested_mode"] == 0.0 and m["modes"] == 8 and m["high_quality"] == 1.0
    assert m["nearest_is_requested"] == 0.0
    near = c[labels] + 5 * s  # off the mode, but nearer to it than to any other
    m = M.conditional_metrics(near, labels, c, s)
    assert m["in_requested_mode"] == 0.0 and m["nearest_is_requested"] == 1.0
    half = np.concatenate([right[:40], wrong[40:]])
    assert M.conditional_metrics(half, labels, c, s)["in_requested_mode"] == 0.5
    with pytest.raises(ValueError, match="labels"):
        M.conditional_metrics(right, labels[:5], c, s)


def test_curve_and_digit_metrics():
    lo, hi = D.SwissRoll.t_range
    curve = D.SwissRoll.curve(torch.linspace(lo, hi, 5000)).numpy()
    on = D.SwissRoll.curve(torch.linspace(lo + 0.1, hi - 0.1, 300)).numpy()
    assert M.curve_metrics(on, curve, 0.05)["high_quality"] == 1.0
    far = np.full((10, 2), 5.0)
    m = M.curve_metrics(far, curve, 0.05)
    assert m["high_quality"] == 0.0 and m["mean_distance"] > 1.0
    dig = D.create("digits")
    real, y = dig.images[:500], dig.labels[:500]
    m = M.digit_metrics(real, y.numpy())
    assert m["modes"] == 10 and m["high_quality"] > 0.8 and m["in_requested_mode"] > 0.8
    m = M.digit_metrics(torch.full((100, 1, 8, 8), -1.0))
    assert m["modes"] <= 1
    m = M.digit_metrics(real[:100], ((y[:100] + 1) % 10).numpy())
    assert m["in_requested_mode"] < 0.05


# -------------------------------------------------------------------------------- resume
def _snapshot(t: Trainer) -> dict:
    """The state without the clock: ``elapsed`` and the curve's times (its steps and metrics
    stay)."""
    s = t.state_dict()
    s.pop("elapsed")
    s["curve"] = [{k: v for k, v in p.items() if k not in ("train_seconds", "eval_seconds")} for p in s["curve"]]
    return s


def _assert_identical(a, b, path="state"):
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b), path
    elif isinstance(a, dict):
        assert set(a) == set(b), path
        for k in a:
            _assert_identical(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_identical(x, y, f"{path}[{i}]")
    elif isinstance(a, float) and math.isnan(a):
        assert math.isnan(b), path
    else:
        assert a == b, path


@pytest.mark.parametrize("loss", ["wgan-gp", "began", "wgan", "cgan", "ebgan"])
def test_resume_is_bit_identical(loss, tmp_path):
    kw = dict(TINY, steps=10, log_every=3, lr_decay="linear")
    whole = make_trainer(loss, "ring8", **kw)
    whole.fit(progress=False)

    first = make_trainer(loss, "ring8", **kw)
    first.fit(str(tmp_path), progress=False, stop_at=4)
    assert first.step == 4
    torch.manual_seed(12345)  # the resumed run must not depend on the RNG state it starts in
    np.random.seed(5)
    resumed = make_trainer(loss, "ring8", **kw)
    resumed.load(str(tmp_path / "checkpoint.pt"))
    resumed.fit(progress=False)
    _assert_identical(_snapshot(whole), _snapshot(resumed))
    assert np.array_equal(whole.evaluate(100)["samples"], resumed.evaluate(100)["samples"])
    if loss == "began":
        assert whole.loss.k.item() > 0


def test_resume_detects_a_difference():
    """The comparison above can fail: one extra RNG draw changes the end state."""
    kw = dict(TINY, steps=4)
    a, b = make_trainer("wgan-gp", "ring8", **kw), make_trainer("wgan-gp", "ring8", **kw)
    a.fit(progress=False)
    b.fit(progress=False, stop_at=2)
    torch.rand(1)
    b.fit(progress=False)
    with pytest.raises(AssertionError):
        _assert_identical(_snapshot(a), _snapshot(b))


def test_checkpoint_from_another_configuration_is_refused(tmp_path):
    t = make_trainer("gan", "ring8", steps=3, lr_decay="none", **TINY)
    t.fit(str(tmp_path), progress=False)
    other = make_trainer("gan", "ring8", steps=3, lr=1e-3, lr_decay="none", **TINY)
    before = _snapshot(other)
    with pytest.raises(ValueError, match="lr_d"):
        other.load(str(tmp_path / "checkpoint.pt"))
    _assert_identical(before, _snapshot(other))  # nothing half-loaded
    with pytest.raises(ValueError, match="another configuration"):
        make_trainer("lsgan", "ring8", steps=3, lr_decay="none", **TINY).load(str(tmp_path / "checkpoint.pt"))
    with pytest.raises(ValueError, match="beyond"):
        make_trainer("gan", "ring8", steps=2, lr_decay="none", **TINY).load(str(tmp_path / "checkpoint.pt"))
    # more steps is a valid continuation, except where the schedule depends on them
    make_trainer("gan", "ring8", steps=5, lr_decay="none", **TINY).load(str(tmp_path / "checkpoint.pt"))
    t = make_trainer("gan", "ring8", steps=3, **TINY)
    t.fit(str(tmp_path / "decay"), progress=False)
    with pytest.raises(ValueError, match="steps"):
        make_trainer("gan", "ring8", steps=5, **TINY).load(str(tmp_path / "decay" / "checkpoint.pt"))
    # the checkpoint loads with weights_only=True and carries its configuration
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert state["config"]["loss"] == "gan" and state["step"] == 3


# ---------------------------------------------------------------------------------- CLI
def _train(*argv: str) -> int:
    return cli.main(["train", "--no-progress", *argv])


def test_cli_writes_every_output(tmp_path, capsys):
    out = tmp_path / "cgan"
    rc = _train("--loss", "cgan", "--data", "ring8", "--steps", "6", "--width", "16", "--batch-size", "32",
                "--log-every", "2", "--eval-samples", "300", "--out", str(out))
    assert rc == 0
    for name in ("samples.png", "losses.png", "metrics.json", "samples.npy", "labels.npy", "checkpoint.pt"):
        assert (out / name).is_file(), name
    report = json.loads((out / "metrics.json").read_text())
    assert report["steps"] == 6 and report["loss"] == "cgan" and report["backend_used"] in fastgan.available_backends()
    assert 0 <= report["metrics"]["in_requested_mode"] <= 1 and report["generator_steps_per_s"] > 0
    assert np.load(out / "samples.npy").shape == (300, 2) and np.load(out / "labels.npy").shape == (300,)
    assert "cgan on ring8: 6 steps" in capsys.readouterr().out


def test_cli_began_digits_plots_k(tmp_path):
    out = tmp_path / "began"
    rc = _train("--loss", "began", "--data", "digits", "--steps", "2", "--width", "4", "--batch-size", "8",
                "--log-every", "1", "--eval-samples", "50", "--out", str(out), "--backend", "reference")
    assert rc == 0 and (out / "began.png").is_file()
    assert np.load(out / "samples.npy").shape == (50, 1, 8, 8)
    assert json.loads((out / "metrics.json").read_text())["backend_used"] == "reference"


def test_cli_resume_matches_an_uninterrupted_run(tmp_path):
    common = ["--loss", "wgan-gp", "--data", "ring8", "--width", "16", "--batch-size", "32", "--lr-decay", "none",
              "--eval-samples", "100", "--no-plots"]
    assert _train(*common, "--steps", "6", "--out", str(tmp_path / "whole")) == 0
    assert _train(*common, "--steps", "3", "--out", str(tmp_path / "split")) == 0
    assert _train(*common, "--steps", "6", "--out", str(tmp_path / "split"), "--resume") == 0
    a, b = np.load(tmp_path / "whole" / "samples.npy"), np.load(tmp_path / "split" / "samples.npy")
    assert np.array_equal(a, b)
    ca = torch.load(tmp_path / "whole" / "checkpoint.pt", weights_only=True)
    cb = torch.load(tmp_path / "split" / "checkpoint.pt", weights_only=True)
    for key in ("G", "D", "opt_d", "rng"):
        _assert_identical(ca[key], cb[key], key)


def test_cli_rejects_bad_options(tmp_path, capsys):
    assert _train("--loss", "gan", "--gp-weight", "5", "--out", str(tmp_path)) == 2
    assert "--gp-weight is not a hyper-parameter of the gan loss" in capsys.readouterr().err
    assert _train("--loss", "gan", "--resume", "--out", str(tmp_path / "none")) == 2
    assert "no checkpoint" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        _train("--loss", "gan", "--data", "mnist")


def test_python_m_fastgan_train_help():
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "fastgan.train", "--help"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "--distributed" in r.stdout and "--resume" in r.stdout


# ------------------------------------------------------------------- quality with the defaults
def _report_of_default_run(tmp_path, loss, data):
    out = tmp_path / f"{loss}-{data}"
    assert _train("--loss", loss, "--data", data, "--out", str(out), "--no-plots") == 0
    return json.loads((out / "metrics.json").read_text())


def test_wgan_gp_on_grid25_reaches_the_quality_target_with_the_defaults(tmp_path):
    """The grid25 targets (fastgan.train.metrics.TARGETS): >= 24/25 modes and >= 80 %
    high-quality samples at the end, and the time to it measured; 25/25 and >= 90 % reached
    (about a minute)."""
    report = _report_of_default_run(tmp_path, "wgan-gp", "grid25")
    m = report["metrics"]
    assert m["modes"] >= 24 and m["high_quality"] >= 0.80, m
    assert report["targets"][0]["met_at_end"] and report["time_to_target"] is not None, report["targets"]
    assert 0 < report["time_to_target"] <= report["train_seconds"]
    # the stricter bar for WGAN-GP (25/25 and >= 90 %) is reached during the run too (step 3800
    # here; 3800-4200 over seeds and rounding; >= 95 % at the end depends on the rounding, so
    # it is measured in the README's table, not asserted)
    strict = report["targets"][1]
    assert strict["reached"] and strict["step"] <= report["steps"], report["targets"]


def test_cgan_on_grid25_lands_in_the_requested_mode_with_the_defaults(tmp_path):
    report = _report_of_default_run(tmp_path, "cgan", "grid25")
    assert report["metrics"]["in_requested_mode"] >= 0.95, report["metrics"]
    assert report["targets"][0]["met_at_end"] and report["step_to_target"] is not None, report["targets"]


def test_a_checkpoint_saved_before_a_config_field_existed_resumes_with_its_default(tmp_path):
    t = make_trainer("hinge", "ring8", steps=4, **TINY)
    t.fit(out_dir=str(tmp_path), progress=False, stop_at=2)
    path = tmp_path / "checkpoint.pt"
    state = torch.load(path, weights_only=True)
    for key in ("spectral_norm", "ae_code"):  # fields added later
        del state["config"][key]
    torch.save(state, path)
    resumed = make_trainer("hinge", "ring8", steps=4, **TINY)
    resumed.load(str(path))
    assert resumed.step == 2
    with pytest.raises(ValueError, match="another configuration.*spectral_norm"):
        make_trainer("hinge", "ring8", steps=4, spectral_norm=True, **TINY).load(str(path))
