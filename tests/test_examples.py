"""The README's example training loop runs for every family and logs finite losses."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest

import fastgan

_PATH = Path(__file__).resolve().parent.parent / "examples" / "quickstart.py"


def _quickstart():
    spec = importlib.util.spec_from_file_location("quickstart", _PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", fastgan.losses.available())
def test_quickstart_every_family(name, capsys):
    logs = _quickstart().main(["--loss", name, "--steps", "3", "--batch", "16"])
    assert logs and all(math.isfinite(v) for v in logs.values())
    assert f"{name}: 3 generator steps" in capsys.readouterr().out
