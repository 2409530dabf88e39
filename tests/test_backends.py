"""Backend selection and the dispatch seam (docs/design.md §3)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import threading
import sys
import warnings

import pytest
import torch

import fastgan
import fastgan.functional as FG

import kernel_cases as kc
from fastgan import backends


def test_reference_always_available_and_status_consistent():
    status = backends.backend_status()
    assert set(status) == set(backends.BACKENDS)
    assert status["reference"][0] is True
    assert fastgan.available_backends() == [n for n, (ok, _) in status.items() if ok]
    for name, (ok, why) in status.items():
        assert isinstance(why, str) and why, name


_NO_EXTENSION = "import sys; sys.modules['fastgan._C'] = None\n"  # as if it were not built


def test_without_extension_only_reference_is_available():
    r = _run(
        _NO_EXTENSION
        + "import fastgan; from fastgan import backends\n"
        + "print(fastgan.available_backends()); print(backends.backend_status()['cpu'][1])"
    )
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    # the triton backend's ops and autograd are declared by the extension too (docs/design.md §3)
    assert lines[0] == str(["reference"])
    assert "not built" in lines[1]


def test_use_backend_setter_and_context_manager():
    assert fastgan.get_backend() == "auto"
    with fastgan.use_backend("reference") as sel:
        assert sel.name == "reference"
        assert fastgan.get_backend() == "reference"
        with fastgan.use_backend("auto"):
            assert fastgan.get_backend() == "auto"
        assert fastgan.get_backend() == "reference"
    assert fastgan.get_backend() == "auto"
    fastgan.use_backend("reference")
    try:
        assert fastgan.get_backend() == "reference"
    finally:
        fastgan.use_backend("auto")
    assert fastgan.get_backend() == "auto"


def test_failed_selection_keeps_previous():
    with fastgan.use_backend("reference"):
        with pytest.raises(ValueError):
            fastgan.use_backend("nonsense")
        assert fastgan.get_backend() == "reference"


@pytest.fixture
def fake_cpu_backend(monkeypatch):
    """Pretend a compiled cpu backend exists and implements grad_norm_penalty, through the same
    registry the real one will use; record its calls. It returns the reference's value plus
    1000, so a caller's result shows which backend produced it."""
    calls = []
    reference = backends._IMPLS["reference"]["grad_norm_penalty"]

    def spy(grads, center, one_sided):
        calls.append((tuple(grads.shape), center, one_sided))
        return reference(grads, center, one_sided) + 1000.0

    monkeypatch.setattr(backends, "_RESOLVED", {})  # resolve() caches its choices
    monkeypatch.setitem(backends._IMPLS, "cpu", {"grad_norm_penalty": spy})
    real_probe = backends._probe
    monkeypatch.setattr(backends, "_probe", lambda name: (True, "test") if name == "cpu" else real_probe(name))
    return calls


def test_auto_picks_registered_backend_for_device(fake_cpu_backend):
    g = torch.randn(3, 5)
    assert "cpu" in fastgan.available_backends()
    assert backends.resolve("grad_norm_penalty", g.device)[0] == "cpu"
    out = FG.grad_norm_penalty(g, center=0.5, one_sided=True)
    assert fake_cpu_backend == [((3, 5), 0.5, True)]
    # the caller gets the backend's result (the spy's mark), not a reference computed beside it
    torch.testing.assert_close(out, backends._IMPLS["reference"]["grad_norm_penalty"](g, 0.5, True) + 1000.0)
    # the families use the same seam
    FG.r1_penalty(lambda x: x.square().sum(1), g)
    assert len(fake_cpu_backend) == 2
    # ops the backend lacks go to the reference
    assert backends.resolve("interpolate", g.device)[0] == "reference"
    # a fixed selection overrides auto
    with fastgan.use_backend("reference"):
        assert FG.grad_norm_penalty(g) < 1000.0  # the reference's own value
    assert len(fake_cpu_backend) == 2
    with fastgan.use_backend("cpu"):
        FG.grad_norm_penalty(g)
        # a backend never runs tensors of a device it does not support
        with pytest.raises(ValueError, match="runs on cpu tensors"):
            backends.resolve("grad_norm_penalty", torch.device("meta"))
    assert len(fake_cpu_backend) == 3


def test_fallback_warns_once_at_the_callers_line():
    code = _NO_EXTENSION + (
        "import warnings, torch, fastgan\n"
        "import fastgan.functional as FG\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    warnings.simplefilter('always')\n"
        "    FG.wgan_critic_loss(torch.randn(2), torch.randn(2))\n"
        "    FG.grad_norm_penalty(torch.randn(2, 3))\n"
        "mine = [w for w in caught if issubclass(w.category, fastgan.FastganWarning)]\n"
        "print(len(mine)); print(mine[0].filename); print(mine[0].message)\n"
    )
    r = _run(code)
    assert r.returncode == 0, r.stderr
    count, filename, message = r.stdout.splitlines()[:3]
    assert count == "1"
    assert filename == "<string>"  # the caller's line, not fastgan's
    assert "reference" in message and "not built" in message


def test_no_fallback_warning_with_the_extension():
    if backends.extension() is None:
        pytest.skip("fastgan._C is not built here")
    with warnings.catch_warnings():
        warnings.simplefilter("error", fastgan.FastganWarning)
        FG.grad_norm_penalty(torch.randn(2, 3))


TRITON_ON_GPU = kc.TRITON_ON_GPU


def _run(code: str, **env: str) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter with this environment plus ``env``, without the test
    session's TRITON_INTERPRET (conftest.py) unless ``env`` sets it."""
    full_env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    full_env.update(env)
    return subprocess.run([sys.executable, "-c", code], env=full_env, capture_output=True, text=True, timeout=120)


def test_environment_variable_selects_backend():
    r = _run("import fastgan; print(fastgan.get_backend())", FASTGAN_BACKEND="reference")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "reference"


def test_environment_variable_unknown_is_a_clear_error_on_first_use():
    code = (
        "import fastgan, torch\n"  # importing never fails
        "import fastgan.functional as FG\n"
        "FG.wgan_generator_loss(torch.randn(3))\n"
    )
    r = _run(code, FASTGAN_BACKEND="turbo")
    assert r.returncode != 0
    assert "ValueError" in r.stderr and "FASTGAN_BACKEND" in r.stderr and "turbo" in r.stderr


def test_environment_variable_unavailable_backend():
    unavailable = [n for n, (ok, _) in backends.backend_status().items() if not ok]
    if not unavailable:
        pytest.skip("every backend is available here")
    r = _run("import fastgan; fastgan.get_backend()", FASTGAN_BACKEND=unavailable[0])
    assert r.returncode != 0
    assert "BackendUnavailableError" in r.stderr and "FASTGAN_BACKEND" in r.stderr


def test_import_is_cheap():
    """Importing fastgan imports triton only where the triton backend can run (a GPU, or the
    interpreter asked for); the compiled extension, when built, loads at import: that only maps
    a shared library."""
    r = _run("import sys, fastgan; print('triton' in sys.modules)")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == [str(TRITON_ON_GPU)]


def test_triton_interpreter_runs_the_triton_backend_on_cpu_tensors():
    if importlib.util.find_spec("triton") is None:
        pytest.skip("triton is not installed")
    code = (
        "import torch, fastgan\n"
        "print(fastgan.available_backends())\n"
        "x = torch.randn(3, 5, dtype=torch.float64)\n"
        "with fastgan.use_backend('triton'):\n"
        "    print(float(fastgan.functional.grad_norm_penalty(x, 1.0, False)))\n"
        "with fastgan.use_backend('reference'):\n"
        "    print(float(fastgan.functional.grad_norm_penalty(x, 1.0, False)))\n"
    )
    r = _run(code, TRITON_INTERPRET="1")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert float(lines[1]) == pytest.approx(float(lines[2]), rel=1e-12)
    assert "triton" in eval(lines[0])


def test_environment_variable_bad_is_overridden_by_use_backend():
    code = (
        "import fastgan, torch\n"
        "import fastgan.functional as FG\n"
        "try:\n"
        "    fastgan.get_backend()\n"
        "except ValueError as e:\n"
        "    print('error', 'FASTGAN_BACKEND' in str(e))\n"
        "with fastgan.use_backend('reference'):\n"
        "    print(fastgan.get_backend(), float(FG.wgan_generator_loss(torch.ones(3))))\n"
        "fastgan.use_backend('auto')\n"
        "print(fastgan.get_backend())\n"
    )
    r = _run(code, FASTGAN_BACKEND="turbo")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split("\n")[:3] == ["error True", "reference -1.0", "auto"]


# ----------------------------------------------------------------------- selection per thread
def _in_thread(fn):
    out, err = [], []

    def run():
        try:
            out.append(fn())
        except BaseException as exc:  # pragma: no cover - reported below
            err.append(exc)

    t = threading.Thread(target=run)
    t.start()
    t.join()
    if err:
        raise err[0]
    return out[0]


def test_use_backend_is_thread_local():
    start = fastgan.get_backend()
    with fastgan.use_backend("reference"):
        assert _in_thread(fastgan.get_backend) == start  # another thread keeps its selection
    # a setter call in another thread never changes this one
    assert _in_thread(lambda: (fastgan.use_backend("reference"), fastgan.get_backend())[1]) == "reference"
    assert fastgan.get_backend() == start
    # two threads inside their own blocks, interleaved: each sees its own
    barrier, seen = threading.Barrier(2), {}

    def worker(name):
        with fastgan.use_backend(name):
            barrier.wait()
            seen[name] = fastgan.get_backend()
            barrier.wait()

    threads = [threading.Thread(target=worker, args=(n,)) for n in ("reference", "auto")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == {"reference": "reference", "auto": "auto"}


def test_use_backend_blocks_exit_in_any_order_and_are_reusable():
    start = fastgan.get_backend()
    outer, inner = fastgan.use_backend("reference"), fastgan.use_backend("auto")
    assert fastgan.get_backend() == "auto"  # constructing is also the setter
    outer.__enter__()
    inner.__enter__()
    assert fastgan.get_backend() == "auto"
    outer.__exit__(None, None, None)  # the outer block ends first: the inner one still holds
    assert fastgan.get_backend() == "auto"
    inner.__exit__(None, None, None)
    assert fastgan.get_backend() == start
    sel = fastgan.use_backend("reference")
    for _ in range(2):  # the same object, entered twice in a row and nested
        with sel:
            assert fastgan.get_backend() == "reference"
            with fastgan.use_backend("auto"):
                with sel:
                    assert fastgan.get_backend() == "reference"
                assert fastgan.get_backend() == "auto"
        assert fastgan.get_backend() == start
    # an exception inside a block restores too
    with pytest.raises(KeyError):
        with fastgan.use_backend("reference"):
            raise KeyError
    assert fastgan.get_backend() == start
