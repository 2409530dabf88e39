"""``fastgan check``: the correctness matrix passes on this machine, and a deliberately broken
backend implementation (wrong values, wrong gradient, wrong dtype, a crash) makes it fail with a
non-zero exit status that names the broken operator."""

from __future__ import annotations

import argparse
import contextlib
import io

import pytest
import torch

import fastgan
from fastgan import backends, check

import kernel_cases as kc

#: Backends whose implementations can be swapped for a broken one while the reference (the
#: expected values) stays intact: the compiled ones that run at full speed here (the check's
#: machinery is the same for every backend; an interpreted one only when there is no other).
#: Where none is built, :data:`STANDIN`: the ``cpu`` backend stood in for by the reference's
#: implementations (see :func:`_backend_under_test`), so that the failure path runs everywhere.
STANDIN = "reference-as-cpu"
_RUNNABLE = [b for b in kc.COMPILED if kc.DEVICE[b] == "cpu" or torch.cuda.is_available()]
SWAPPABLE = [b for b in _RUNNABLE if not check.interpreted(b)] or _RUNNABLE[:1] or [STANDIN]
FAST = [b for b in fastgan.available_backends() if not check.interpreted(b)]
INTERPRETED = [b for b in fastgan.available_backends() if check.interpreted(b)]


@contextlib.contextmanager
def _backend_under_test(name: str, monkeypatch: pytest.MonkeyPatch):
    """The backend to break: ``name`` itself, or for :data:`STANDIN` the ``cpu`` backend made
    available with copies of the reference's implementations (whatever is built here). The
    backends' tables are restored afterwards."""
    backends._RESOLVED.clear()
    if name == STANDIN:
        probe = backends._probe
        monkeypatch.setattr(backends, "_probe", lambda n: (True, "stand-in: the reference's functions") if n == "cpu" else probe(n))
        monkeypatch.setitem(backends._IMPLS, "cpu", dict(backends._IMPLS["reference"]))
        name = "cpu"
    try:
        yield name
    finally:
        monkeypatch.undo()
        backends._RESOLVED.clear()


def _check(**kw) -> tuple[int, str]:
    out = io.StringIO()
    status = check.check(out=out, **kw)
    return status, out.getvalue()


def test_matrix_passes_on_this_machine():
    """The whole matrix on every backend that runs at full speed here."""
    status, text = _check(backend_names=FAST)
    assert status == 0, text
    assert "PASS" in text
    assert {b for b, _ in check.backend_devices()} == set(fastgan.available_backends())
    pairs = check.backend_devices(FAST)
    table = text.splitlines()
    # every operator and every family shows up, for every backend and dtype
    for b, d in pairs:
        for dt in ("f32", "f64", "bf16", "f16"):
            rows = [l for l in table if not l.startswith(" ") and l.split()[:3] == [b, d, dt]]
            checked = {l.split()[3].split("[")[0] for l in rows}
            assert set(kc.OP_NAMES) <= checked, (b, d, dt, checked)
            assert any("gradient_penalty" in l for l in rows) and any("began update" in l for l in rows)
            assert all(l.rstrip().endswith("ok") for l in rows)


@pytest.mark.parametrize("backend", INTERPRETED or [pytest.param("-", marks=pytest.mark.skip(reason="no interpreted backend here"))])
def test_matrix_passes_on_an_interpreted_backend(backend):
    """Triton's interpreter (~1000x slower than torch) is checked on the small items only, in
    fp32 and bf16 here (the full dtype matrix runs with ``fastgan check --backend triton``)."""
    items = [i for i in check.all_items() if check._numel(i) <= 600]
    status, text = _check(backend_names=[backend], dtypes=[torch.float32, torch.bfloat16], items=items)
    assert status == 0, text
    assert {l.split()[3].split("[")[0] for l in text.splitlines() if l.startswith(backend + " ")} >= set(kc.OP_NAMES)


def test_every_family_and_operator_variant_is_in_the_matrix():
    names = [i.name for i in check.all_items()]
    for family in ("gan discriminator", "gan generator", "wgan critic", "wgan generator", "lsgan discriminator",
                   "lsgan generator", "hinge discriminator", "hinge generator", "wgan-gp gradient_penalty",
                   "r1_penalty", "ebgan discriminator", "ebgan generator + pulling-away term",
                   "began discriminator", "began generator", "began update (k, M_global)"):
        assert family in names
    for kind in ("bce", "wgan", "lsgan", "hinge", "margin"):
        assert any(n.startswith("adversarial_loss[") and kind in n for n in names)
    assert any("p=1" in n for n in names) and any("p=2" in n for n in names)
    assert any("one_sided" in n for n in names) and any("center=0" in n for n in names)
    # rows longer than one parallel chunk of the CPU kernels, and a batch of one
    assert any("long" in n for n in names) and any("B1" in n for n in names)


def _wrong_value(op, original):
    """Forward off by 1e-3 relative (beyond the fp32 / fp64 tolerance; within bf16's)."""
    def fn(*args):
        return original(*args) * 1.001
    return fn


def _wrong_gradient(op, original):
    """Forward exact, but the gradient of every input is doubled."""
    def fn(*args):
        out = original(*args)
        return out + (out - out.detach())  # value unchanged, gradient x2
    return fn


def _wrong_dtype(op, original):
    """The right values, returned in another dtype than the inputs'."""
    def fn(*args):
        out = original(*args)
        return out.float() if out.dtype == torch.float64 else out.double()
    return fn


def _crash(op, original):
    def fn(*args):
        raise RuntimeError("simulated kernel failure")
    return fn


BREAKERS = {"wrong_value": _wrong_value, "wrong_gradient": _wrong_gradient, "wrong_dtype": _wrong_dtype, "crash": _crash}


#: (backend, op, breaker): every breaker of every operator on the swappable backends, and where a
#: compiled backend is built also the stand-in (one breaker per operator), so that the path the
#: suite takes on a machine without the extension runs here too.
BROKEN = [(b, op, br) for b in SWAPPABLE for op in kc.OP_NAMES for br in BREAKERS] + (
    [(STANDIN, op, "wrong_gradient") for op in kc.OP_NAMES] if STANDIN not in SWAPPABLE else []
)


@pytest.mark.parametrize("swapped,op,breaker", BROKEN, ids=["-".join(c) for c in BROKEN])
def test_a_broken_backend_fails_the_check(swapped, op, breaker, monkeypatch):
    with _backend_under_test(swapped, monkeypatch) as backend:
        _break_and_check(backend, op, breaker)


def _break_and_check(backend: str, op: str, breaker: str) -> None:
    original = backends._IMPLS[backend][op]
    backends.register(op, backend, BREAKERS[breaker](op, original))
    try:
        items = [i for i in check.all_items() if i.name.startswith(op + "[")][:4]
        items += [i for i in check.family_items() if i.name in ("wgan critic", "r1_penalty", "began generator")]
        results = check.run_matrix([backend], None, [torch.float64, torch.float32], items)
        status, text = _check(backend_names=[backend], dtypes=[torch.float64], failures_only=True, items=items)
    finally:
        backends.register(op, backend, original)
    failed = [r for r in results if not r.ok]
    assert failed, f"a {breaker} {op} on {backend} passed the check"
    # every direct call of the broken operator fails, in both dtypes
    assert {(r.item, r.dtype) for r in failed} >= {(i.name, d) for i in items[:4] for d in (torch.float64, torch.float32)}
    # the families fail exactly when they are built on the broken operator
    uses = {
        "wgan critic": {"adversarial_loss"},
        "r1_penalty": {"grad_norm_penalty"},
        "began generator": {"reconstruction_error", "adversarial_loss"},  # mean(L) through the wgan kind
    }
    for r in results:
        if r.item in uses:
            assert r.ok == (op not in uses[r.item]), (r.item, r.failure)
    if breaker == "wrong_dtype":
        assert all("dtype" in r.failure for r in failed if r.item.startswith(op))
    assert status == 1
    assert f"FAILED {backend}" in text and op in text
    assert any(line.startswith("FAIL: ") for line in text.splitlines())
    if breaker == "crash":
        assert "raised RuntimeError: simulated kernel failure" in text
    # restored: the backend passes again
    assert all(r.ok for r in check.run_matrix([backend], None, [torch.float64], items))


@pytest.mark.parametrize("swapped", sorted({SWAPPABLE[0], STANDIN}))
def test_a_broken_backend_fails_through_the_command_line(swapped, monkeypatch, capsys):
    """``fastgan check``'s ``run(args)`` as the command line calls it, with one operator's
    gradient broken: the operator and the family built on it (WGAN-GP) fail, exit status 1 — on
    the compiled backend where one is built, and everywhere on the stand-in."""
    with _backend_under_test(swapped, monkeypatch) as backend:
        original = backends._IMPLS[backend]["grad_norm_penalty"]
        monkeypatch.setitem(backends._IMPLS[backend], "grad_norm_penalty", _wrong_gradient("grad_norm_penalty", original))
        backends._RESOLVED.clear()
        parser = argparse.ArgumentParser()
        check.add_arguments(parser)
        args = parser.parse_args(["--backend", backend, "--dtype", "f32", "--device", "cpu"])
        assert check.run(args) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "grad_norm_penalty" in out and "wgan-gp gradient_penalty" in out
    assert "interpolate[odd] " in out and " ok" in out  # the operators left alone pass


def test_command_line_options():
    parser = argparse.ArgumentParser()
    check.add_arguments(parser)
    args = parser.parse_args(["--backend", "reference", "--dtype", "f64", "--dtype", "bf16", "--device", "cpu", "--failures-only"])
    assert args.backend == ["reference"] and args.dtype == ["f64", "bf16"] and args.device == ["cpu"]
    with pytest.raises(SystemExit):
        parser.parse_args(["--dtype", "f8"])


def test_unknown_or_unavailable_backend_is_a_usage_error():
    status, text = _check(backend_names=["fast"])
    assert status == 2 and "unknown backend 'fast'" in text
    status, text = _check(devices=["gpu0"])
    assert status == 2 and "--device" in text
    if not torch.cuda.is_available():
        status, text = _check(devices=["cuda"])
        assert status == 2 and "no CUDA device" in text
    unavailable = [n for n, (ok, _) in backends.backend_status().items() if not ok]
    for name in unavailable:
        status, text = _check(backend_names=[name])
        assert status == 2 and "not available" in text


def test_cli_runs_check():
    """``fastgan check`` is wired into the command line (``fastgan.cli``)."""
    from fastgan import cli

    out = io.StringIO()
    import contextlib

    with contextlib.redirect_stdout(out):
        status = cli.main(["check", "--backend", "reference", "--dtype", "f64"])
    assert status == 0, out.getvalue()
    assert "PASS" in out.getvalue()


def test_compare_rules():
    """The pass rule itself: tolerance, NaN / infinity placement, overflow to infinity."""
    tol = check.OP_TOL[torch.float32]
    e = torch.tensor([1.0, -2.0, float("nan"), float("inf")], dtype=torch.float64)
    ok = torch.tensor([1.0 + 1e-6, -2.0, float("nan"), float("inf")])
    assert check.compare(ok, e, torch.float32, tol)[2] is None
    assert check.compare(torch.tensor([1.001, -2.0, float("nan"), float("inf")]), e, torch.float32, tol)[2] is not None
    assert check.compare(torch.tensor([1.0, -2.0, 0.0, float("inf")]), e, torch.float32, tol)[2] is not None  # NaN lost
    assert check.compare(torch.tensor([1.0, -2.0, float("nan"), 3.0]), e, torch.float32, tol)[2] is not None
    assert check.compare(torch.tensor([1.0, float("nan"), float("nan"), float("inf")]), e, torch.float32, tol)[2] is not None
    # an exact value beyond fp16's range: the fp16 result is +inf
    big = torch.tensor([1e5], dtype=torch.float64)
    assert check.compare(torch.tensor([float("inf")], dtype=torch.float16), big, torch.float16, check.OP_TOL[torch.float16])[2] is None
    assert check.compare(torch.tensor([6e4], dtype=torch.float16), big, torch.float16, check.OP_TOL[torch.float16])[2] is not None
    # below fp32's normal range: any result within finfo.tiny passes, a larger one does not
    e_tiny = torch.tensor([1e-50], dtype=torch.float64)
    assert check.compare(torch.tensor([0.0]), e_tiny, torch.float32, tol)[2] is None
    assert check.compare(torch.tensor([1e-37]), e_tiny, torch.float32, tol)[2] is not None
    # dtype and shape must match
    assert "dtype" in check.compare(ok.double(), e, torch.float32, tol)[2]
    assert "shape" in check.compare(ok[:2], e, torch.float32, tol)[2]
