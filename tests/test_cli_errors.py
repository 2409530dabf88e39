"""Usage errors of the command line: every bad flag, combination of flags or environment ends
``fastgan train`` / ``bench`` / ``check`` / ``info`` with exit status 2 and ONE line on stderr
that names what is wrong — never a traceback — and before anything is trained or measured.

Most checks run in-process (``fastgan.cli.main``); a bad ``FASTGAN_BACKEND`` runs in a
subprocess, since the library reads the variable once per process.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

import fastgan
from fastgan import backends, cli
from fastgan.train import data as data_mod
from fastgan.train import make_trainer
from fastgan.train.loop import default_config, min_batch

TINY = ["--steps", "1", "--width", "8", "--batch-size", "8", "--eval-samples", "10", "--no-plots", "--no-progress"]
TORCHRUN_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


@pytest.fixture(autouse=True)
def _outside_torchrun(monkeypatch):
    for var in TORCHRUN_VARS:
        monkeypatch.delenv(var, raising=False)


def usage_error(capsys, *argv: str) -> str:
    """Run ``fastgan ARGV`` in-process; assert exit status 2, nothing on stderr but one line, no
    traceback; return that line."""
    capsys.readouterr()
    try:
        status = cli.main(list(argv))
    except SystemExit as exc:  # argparse's own rejections
        status = exc.code
    err = capsys.readouterr().err
    assert status == 2, (argv, status, err)
    lines = err.splitlines()
    assert len(lines) == 1, (argv, err)
    assert "Traceback" not in err
    assert lines[0].startswith(f"fastgan {argv[0]}: "), lines[0]
    return lines[0]


def run_fastgan(*argv: str, env: dict | None = None, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fastgan", *argv], capture_output=True, text=True, timeout=120,
                          env=env, cwd=cwd)


def assert_one_line(r: subprocess.CompletedProcess, status: int = 2) -> str:
    assert r.returncode == status, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr and len(r.stderr.splitlines()) == 1, r.stderr
    return r.stderr.strip()


# --------------------------------------------------------------------------- fastgan train
@pytest.mark.parametrize("argv, names", [
    (["--threads", "0"], "--threads"),
    (["--threads", "-2"], "--threads"),
    (["--steps", "0"], "--steps"),
    (["--steps", "-5"], "--steps"),
    (["--steps", "ten"], "--steps"),
    (["--batch-size", "0"], "--batch-size"),
    (["--lr", "0"], "--lr"),
    (["--lr", "-1e-3"], "--lr"),
    (["--lr", "nan"], "--lr"),
    (["--lr-d", "inf"], "--lr-d"),
    (["--lr-g", "0"], "--lr-g"),
    (["--betas", "0.5", "1.0"], "--betas"),
    (["--betas", "0.5"], "--betas"),
    (["--n-critic", "0"], "--n-critic"),
    (["--width", "0"], "--width"),
    (["--depth", "-1"], "--depth"),
    (["--z-dim", "0"], "--z-dim"),
    (["--log-every", "0"], "--log-every"),
    (["--ckpt-every", "-1"], "--ckpt-every"),
    (["--eval-samples", "0"], "--eval-samples"),
    (["--seed", "-1"], "--seed"),
    (["--seed", str(2**64)], "--seed"),
    (["--data", "mnist"], "--data"),
    (["--optimizer", "sgd"], "--optimizer"),
    (["--lr-decay", "cosine"], "--lr-decay"),
    (["--gp-weight", "nan"], "--gp-weight"),
    (["--frobnicate"], "--frobnicate"),
])
def test_train_rejects_bad_values_with_one_line(argv, names, capsys, tmp_path):
    line = usage_error(capsys, "train", "--loss", "gan", *argv, "--out", str(tmp_path / "run"))
    assert names in line
    assert not (tmp_path / "run").exists()  # refused before anything is written


def test_train_without_loss_is_one_line(capsys):
    assert "--loss" in usage_error(capsys, "train")


@pytest.mark.parametrize("loss, argv, flag", [
    ("gan", ["--gp-weight", "5"], "--gp-weight"),  # not a hyper-parameter of the family
    ("wgan-gp", ["--gp-weight", "-1"], "--gp-weight"),  # out of the family's range
    ("wgan", ["--clip-value", "0"], "--clip-value"),
    ("ebgan", ["--margin", "-1"], "--margin"),
    ("ebgan", ["--pt-weight", "-0.5"], "--pt-weight"),
    ("began", ["--lambda-k", "-1"], "--lambda-k"),
])
def test_train_rejects_bad_hyper_parameters_naming_the_flag(loss, argv, flag, capsys, tmp_path):
    line = usage_error(capsys, "train", "--loss", loss, *argv, "--out", str(tmp_path / "run"))
    assert flag in line


def test_train_rejects_unknown_and_unavailable_backends(capsys, tmp_path):
    line = usage_error(capsys, "train", "--loss", "gan", "--backend", "nonsense", *TINY, "--out", str(tmp_path))
    assert "--backend" in line and "'nonsense'" in line and "reference" in line
    for name, (ok, why) in backends.backend_status().items():
        if not ok:
            line = usage_error(capsys, "train", "--loss", "gan", "--backend", name, *TINY, "--out", str(tmp_path))
            assert "--backend" in line and "not available" in line and why in line
    for name in fastgan.available_backends():
        try:
            with fastgan.use_backend(name):
                backends.resolve("interpolate", torch.device("cpu"))
        except ValueError:  # a GPU-only backend: training runs on the CPU
            line = usage_error(capsys, "train", "--loss", "gan", "--backend", name, *TINY, "--out", str(tmp_path))
            assert "--backend" in line and "does not run on cpu" in line


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message given where there is no GPU")
def test_train_backend_triton_without_gpu_is_one_line(tmp_path):
    env = dict(os.environ, TRITON_INTERPRET="0")
    env.pop("FASTGAN_BACKEND", None)
    r = run_fastgan("train", "--loss", "gan", "--backend", "triton", *TINY, "--out", str(tmp_path / "run"), env=env)
    line = assert_one_line(r)
    assert "--backend" in line and "'triton'" in line and "not available" in line
    assert not (tmp_path / "run").exists()


def test_every_impossible_loss_data_pairing_is_refused(capsys, tmp_path):
    """A conditional loss needs labels: every unlabelled dataset is refused with it."""
    conditional = [loss for loss in fastgan.losses.available() if default_config(loss, "ring8").conditional]
    unlabelled = [d for d in data_mod.DATASETS if data_mod.N_CLASSES[d] == 0]
    assert conditional == ["cgan"] and unlabelled == ["swissroll"]
    for loss in conditional:
        for data in unlabelled:
            line = usage_error(capsys, "train", "--loss", loss, "--data", data, *TINY, "--out", str(tmp_path))
            assert f"--loss {loss}" in line and f"--data {data}" in line and "ring8" in line


def test_dataset_label_counts_are_the_datasets():
    for name in data_mod.DATASETS:
        assert data_mod.create(name).n_classes == data_mod.N_CLASSES[name], name


@pytest.mark.parametrize("loss", fastgan.losses.available())
@pytest.mark.parametrize("data", ["ring8", "digits"])
def test_min_batch_is_each_familys_smallest_batch(loss, data):
    """min_batch() is the smallest batch that trains: one step at it runs, one below it fails."""
    small = {"width": 4} if data == "digits" else {"width": 8, "depth": 1}
    cfg = default_config(loss, data)
    need = min_batch(cfg)
    assert need == (2 if loss == "ebgan" else 1)
    t = make_trainer(loss, data, batch_size=need, steps=2, **small)
    assert all(torch.isfinite(v).all() for v in t.train_step().values())
    if need > 1:
        with pytest.raises(ValueError, match="at least 2"):
            make_trainer(loss, data, batch_size=need - 1, steps=2, **small).train_step()
    if loss == "ebgan":  # without the pulling-away term one sample is enough
        assert min_batch(default_config(loss, data, pt_weight=0.0)) == 1


def test_batch_below_the_familys_minimum_is_refused(capsys, tmp_path):
    line = usage_error(capsys, "train", "--loss", "ebgan", "--batch-size", "1", "--steps", "1", "--out", str(tmp_path))
    assert "--batch-size 1" in line and "at least 2" in line and "--pt-weight 0" in line
    for loss in fastgan.losses.available():
        if loss != "ebgan":  # the others take one sample: the check lets them through
            cfg = default_config(loss, "ring8", batch_size=1)
            assert min_batch(cfg) == 1


def test_distributed_outside_torchrun_is_refused(capsys, tmp_path):
    line = usage_error(capsys, "train", "--loss", "gan", "--distributed", *TINY, "--out", str(tmp_path))
    assert "--distributed" in line and "torchrun" in line and "RANK" in line and "WORLD_SIZE" in line


def _torchrun_env(monkeypatch, rank: int, world: int) -> None:
    monkeypatch.setenv("RANK", str(rank))
    monkeypatch.setenv("WORLD_SIZE", str(world))
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", "1")  # never contacted: the checks come first


def test_distributed_batch_checks_happen_before_the_process_group(capsys, tmp_path, monkeypatch):
    _torchrun_env(monkeypatch, 0, 2)
    line = usage_error(capsys, "train", "--loss", "gan", "--distributed", "--batch-size", "7", "--steps", "1",
                       "--out", str(tmp_path))
    assert "--batch-size 7" in line and "2 processes" in line
    line = usage_error(capsys, "train", "--loss", "ebgan", "--distributed", "--batch-size", "2", "--steps", "1",
                       "--out", str(tmp_path))
    assert "--batch-size 2" in line and "per process" in line and "--batch-size 4" in line
    monkeypatch.setenv("RANK", "5")
    line = usage_error(capsys, "train", "--loss", "gan", "--distributed", *TINY, "--out", str(tmp_path))
    assert "RANK=5" in line and "WORLD_SIZE=2" in line


def test_several_processes_without_distributed_are_refused(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    line = usage_error(capsys, "train", "--loss", "gan", *TINY, "--out", str(tmp_path))
    assert "WORLD_SIZE=2" in line and "--distributed" in line


def test_out_that_is_a_file_or_unwritable_is_refused(capsys, tmp_path):
    f = tmp_path / "somefile"
    f.write_text("not a folder")
    line = usage_error(capsys, "train", "--loss", "gan", *TINY, "--out", str(f))
    assert "--out" in line and "is a file" in line
    line = usage_error(capsys, "train", "--loss", "gan", *TINY, "--out", str(f / "sub"))
    assert "--out" in line and "cannot write" in line and "somefile is a file" in line
    assert f.read_text() == "not a folder"


def test_resume_and_overwrite_exclude_each_other(capsys, tmp_path):
    line = usage_error(capsys, "train", "--loss", "gan", *TINY, "--resume", "--overwrite", "--out", str(tmp_path))
    assert "--resume" in line and "--overwrite" in line


def test_python_m_fastgan_train_has_the_same_errors(tmp_path):
    r = subprocess.run([sys.executable, "-m", "fastgan.train", "--loss", "gan", "--threads", "0"],
                       capture_output=True, text=True, timeout=120)
    assert "--threads" in assert_one_line(r)


# --------------------------------------------------------------------------- fastgan bench
def test_bench_out_that_is_a_file_is_refused(capsys, tmp_path):
    f = tmp_path / "results.txt"
    f.write_text("x")
    assert "--out" in usage_error(capsys, "bench", "--quick", "--out", str(f))
    assert "--out" in usage_error(capsys, "bench", "--quick", "--out", str(f / "sub"))
    assert f.read_text() == "x"


@pytest.mark.parametrize("argv, flag", [
    (["--retries", "-1"], "--retries"),
    (["--budget", "nan"], "--budget"),
    (["--max-wait", "-3"], "--max-wait"),
    (["--name", "a/b"], "--name"),
    (["--name", ".."], "--name"),
    (["--ops", ""], "--ops"),
    (["--sizes", "huge"], "--sizes"),
    (["--backends", "tpu"], "--backends"),
    (["--baselines", "numpy"], "--baselines"),
    (["--device", "tpu"], "--device"),
])
def test_bench_rejects_bad_values_with_one_line(argv, flag, capsys, tmp_path):
    assert flag in usage_error(capsys, "bench", *argv, "--out", str(tmp_path / "b"))
    assert not (tmp_path / "b").exists()


def test_bench_selection_of_no_case_is_refused(capsys, tmp_path):
    """Full losses have no ``target`` size: nothing would be measured (and nothing is: the
    selection is checked before the run)."""
    line = usage_error(capsys, "bench", "--ops", "gan,wgan", "--sizes", "target", "--out", str(tmp_path / "b"))
    assert "--ops gan,wgan" in line and "--sizes target" in line and "gan: tiny,small,large" in line
    assert not (tmp_path / "b").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message given where there is no GPU")
def test_bench_device_cuda_without_gpu_is_one_line(capsys, tmp_path):
    assert "--device cuda" in usage_error(capsys, "bench", "--device", "cuda", "--out", str(tmp_path / "b"))


# --------------------------------------------------------------------------- fastgan check
@pytest.mark.parametrize("device", ["meta", "nonsense", "cpu:3", "mps", "xla"])
def test_check_rejects_unsupported_devices(device, capsys):
    line = usage_error(capsys, "check", "--device", device, "--dtype", "f64")
    assert "--device" in line and repr(device) in line and "cpu" in line


def test_check_rejects_unavailable_devices_and_backends(capsys):
    if not torch.cuda.is_available():
        assert "no CUDA device" in usage_error(capsys, "check", "--device", "cuda")
    else:
        n = torch.cuda.device_count()
        assert f"cuda:{n}" in usage_error(capsys, "check", "--device", f"cuda:{n}")
    assert "--backend" in usage_error(capsys, "check", "--backend", "fast")
    for name, (ok, _) in backends.backend_status().items():
        if not ok:
            assert "not available" in usage_error(capsys, "check", "--backend", name)
    assert "--dtype" in usage_error(capsys, "check", "--dtype", "f8")


def test_check_backend_on_no_asked_for_device(capsys):
    runs_on = getattr(backends, "_DEVICES", {})
    for name in fastgan.available_backends():
        if runs_on.get(name) is not None and "cpu" not in runs_on[name]:
            line = usage_error(capsys, "check", "--backend", name, "--device", "cpu")
            assert "--backend" in line and name in line
    if "cpu" in fastgan.available_backends() and torch.cuda.is_available():
        assert "--backend" in usage_error(capsys, "check", "--backend", "cpu", "--device", "cuda")


# ------------------------------------------------------------------------ FASTGAN_BACKEND
def _bad_env_values() -> list[str]:
    values = ["nonsense"]
    values += [n for n, (ok, _) in backends.backend_status().items() if not ok][:1]
    return values


@pytest.mark.parametrize("value", _bad_env_values())
def test_bad_fastgan_backend_is_one_line_everywhere(value, tmp_path):
    env = dict(os.environ, FASTGAN_BACKEND=value)
    for argv in (["train", "--loss", "gan", *TINY, "--out", str(tmp_path / "run")],
                 ["check", "--dtype", "f64"],
                 ["bench", "--quick", "--out", str(tmp_path / "bench")]):
        line = assert_one_line(run_fastgan(*argv, env=env))
        assert line.startswith(f"fastgan {argv[0]}: FASTGAN_BACKEND={value!r}"), line
        assert ("is not a backend" in line) == (value == "nonsense") and "reference" in line
    assert not (tmp_path / "run").exists() and not (tmp_path / "bench").exists()


def test_info_reports_a_bad_fastgan_backend_and_exits_2():
    env = dict(os.environ, FASTGAN_BACKEND="nonsense")
    r = run_fastgan("info", env=env)
    line = assert_one_line(r)
    assert "FASTGAN_BACKEND='nonsense' is not a backend" in line
    selection = next(l for l in r.stdout.splitlines() if l.startswith("selection"))
    assert "FASTGAN_BACKEND='nonsense' is not a backend; expected auto or one of" in selection
    assert "backends:" in r.stdout  # the rest of the report is there
    r = run_fastgan("info", "--json", env=env)
    assert_one_line(r)
    import json

    info = json.loads(r.stdout)
    assert info["selection"] is None and "FASTGAN_BACKEND='nonsense'" in info["selection_error"]


def test_info_json_has_no_selection_error_normally(capsys):
    assert cli.main(["info", "--json"]) == 0
    import json

    info = json.loads(capsys.readouterr().out)
    assert info["selection_error"] is None and info["selection"] == fastgan.get_backend()


def test_unknown_command_is_one_line(capsys):
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        cli.main(["frobnicate"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and len(err.splitlines()) == 1 and "frobnicate" in err
