"""The ``fastgan`` command line."""

from __future__ import annotations

import json
import subprocess
import sys

import torch

import fastgan
from fastgan import cli


def _fastgan(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fastgan", *args], capture_output=True, text=True, timeout=120)


def test_info_reports_versions_and_backends():
    r = _fastgan("info")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert f"fastgan   {fastgan.__version__}" in out
    assert torch.__version__ in out
    for name, (ok, why) in fastgan.backends.backend_status().items():
        table = out.split("backends:", 1)[1].splitlines()
        line = next(l for l in table if l.strip().startswith(name + " "))
        assert ("not available" in line) != ok and why in line


def test_info_json_matches_the_library():
    r = _fastgan("info", "--json")
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert info["fastgan"] == fastgan.__version__ and info["torch"] == torch.__version__
    avail = [n for n, st in info["backends"].items() if st["available"]]
    assert avail == fastgan.available_backends()
    assert info["cuda_devices"] == ([] if not torch.cuda.is_available() else info["cuda_devices"])


def test_no_command_prints_help_and_fails():
    r = _fastgan()
    assert r.returncode == 2 and "info" in r.stdout


def test_unknown_command_fails():
    r = _fastgan("frobnicate")
    assert r.returncode != 0 and "invalid choice" in r.stderr


def test_main_in_process(capsys):
    assert cli.main(["info"]) == 0
    assert "backends:" in capsys.readouterr().out


def test_a_closed_pipe_ends_quietly():
    """``fastgan info | head``: no traceback when the reader has gone before fastgan writes
    (``true`` exits at once, long before fastgan has imported torch)."""
    import subprocess
    import sys

    r = subprocess.run(f"({sys.executable} -m fastgan info; echo status=$? >&2) | true", shell=True,
                       capture_output=True, text=True, timeout=120)
    assert "Traceback" not in r.stderr and "BrokenPipe" not in r.stderr, r.stderr
    assert "status=141" in r.stderr, r.stderr
