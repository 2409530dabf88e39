"""``fastgan train`` and ``fastgan bench`` without their optional packages (tqdm, matplotlib,
scikit-learn — the ``fastgan[train]`` extra): they run without a progress bar or plots and say
so once, and ``--data digits`` (which needs scikit-learn) is one line and exit 2 naming the
extra. The packages are blocked by a folder first on ``PYTHONPATH`` whose ``tqdm.py``,
``matplotlib.py`` and ``sklearn.py`` raise ImportError, or by ``sys.modules[name] = None``."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from fastgan import cli

BLOCKED = ("tqdm", "matplotlib", "sklearn")
EXTRA = 'pip install "fastgan[train]"'
TINY = ["--width", "8", "--depth", "1", "--batch-size", "8", "--steps", "2", "--eval-samples", "10"]
FAST_BENCH = ["--sizes", "tiny", "--budget", "0.01", "--max-wait", "0", "--retries", "0", "--quick",
              "--ops", "interpolate", "--baselines", "eager_idiom"]


@pytest.fixture()
def blocked_env(tmp_path):
    """An environment in which ``import tqdm`` / ``matplotlib`` / ``sklearn`` raise ImportError."""
    block = tmp_path / "block"
    block.mkdir()
    for name in BLOCKED:
        (block / f"{name}.py").write_text(f'raise ImportError("No module named {name} (blocked by a test)")\n')
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(block), *filter(None, [env.get("PYTHONPATH")])])
    env.pop("FASTGAN_BACKEND", None)
    for var in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(var, None)
    return env


def _fastgan(env, *argv):
    return subprocess.run([sys.executable, "-m", "fastgan", *argv], capture_output=True, text=True, timeout=180, env=env)


def test_the_block_works(blocked_env):
    r = subprocess.run([sys.executable, "-c", "import tqdm"], capture_output=True, text=True, env=blocked_env, timeout=60)
    assert r.returncode != 0 and "ImportError: No module named tqdm (blocked by a test)" in r.stderr


def test_train_runs_without_tqdm_and_matplotlib(blocked_env, tmp_path):
    out = tmp_path / "run"
    r = _fastgan(blocked_env, "train", "--loss", "gan", *TINY, "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    assert r.stderr.count("tqdm is not installed") == 1 and r.stderr.count("matplotlib is not installed") == 1
    assert r.stderr.count(EXTRA) == 2
    assert (out / "metrics.json").is_file() and (out / "samples.npy").is_file() and (out / "checkpoint.pt").is_file()
    assert not list(out.glob("*.png"))
    assert "gan on ring8: 2 steps" in r.stdout


def test_train_digits_without_scikit_learn_is_one_line(blocked_env, tmp_path):
    r = _fastgan(blocked_env, "train", "--loss", "gan", "--data", "digits", *TINY, "--out", str(tmp_path / "run"))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and "--data digits" in lines[0] and "scikit-learn" in lines[0] and EXTRA in lines[0]
    assert not (tmp_path / "run").exists()


def test_bench_runs_without_tqdm_and_matplotlib(blocked_env, tmp_path):
    out = tmp_path / "bench"
    r = _fastgan(blocked_env, "bench", *FAST_BENCH, "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    assert r.stderr.count("tqdm is not installed") == 1 and r.stderr.count("matplotlib is not installed") == 1
    assert len([f for f in os.listdir(out) if f.endswith(".json")]) == 1
    assert not [f for f in os.listdir(out) if f.endswith(".png")]


def test_in_process_train_without_tqdm_says_so_once(tmp_path, capsys, monkeypatch):
    for name in ("tqdm", "matplotlib"):
        monkeypatch.setitem(sys.modules, name, None)
    for var in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(var, raising=False)
    n = torch.get_num_threads()
    try:
        assert cli.main(["train", "--loss", "lsgan", *TINY, "--out", str(tmp_path / "run")]) == 0
    finally:
        torch.set_num_threads(n)
    err = capsys.readouterr().err
    assert err.count("tqdm is not installed") == 1 and err.count("matplotlib is not installed") == 1
    assert not list((tmp_path / "run").glob("*.png"))


def test_fit_without_tqdm_warns_and_trains(monkeypatch):
    import fastgan
    from fastgan.train import make_trainer

    monkeypatch.setitem(sys.modules, "tqdm", None)
    t = make_trainer("gan", "ring8", width=8, depth=1, batch_size=8, steps=2)
    with pytest.warns(fastgan.FastganWarning, match="tqdm is not installed"):
        t.fit(progress=True)
    assert t.step == 2


def test_bench_e2e_without_scikit_learn_leaves_out_the_digits(tmp_path, capsys, monkeypatch):
    from fastgan.bench import e2e

    monkeypatch.setitem(sys.modules, "sklearn", None)
    monkeypatch.setattr(e2e, "FAMILIES", ("gan",))
    out = tmp_path / "bench"
    rc = cli.main(["bench", *FAST_BENCH, "--no-plots", "--e2e", "--backends", "reference", "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 0, err
    assert err.count("scikit-learn is not installed") == 1 and EXTRA in err
    report = json.load(open(next(out.glob("*.json"))))
    rows = report["e2e"]["results"]
    assert rows and {r["data"] for r in rows} == {"ring8"}
