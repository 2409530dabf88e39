"""Names: one public name per function, operator modules reachable, no reach-ins.

* ``fastgan.ops.<op>`` is the operator's module (reference, checks, dispatch, constants);
  calling it is fastgan 0.1's form of ``fastgan.functional.<op>(...)``: it still works, eagerly
  and compiled, with a ``DeprecationWarning``, and gives the same values.
* ``fastgan.functional.gradient_norm_penalty`` is the deprecated name of ``grad_norm_penalty``.
* ``amp.gradient_penalty`` and ``functional.gradient_penalty`` are one implementation.
* No module of fastgan reaches into another with ``importlib`` or through its private names.
"""

from __future__ import annotations

import ast
import pathlib
import types
import warnings

import pytest
import torch

import fastgan
import fastgan.functional as FG
from fastgan import amp
from fastgan.ops import _module

ROOT = pathlib.Path(fastgan.__file__).parent
OPS = ("interpolate", "grad_norm_penalty", "reconstruction_error", "adversarial_loss")


def _args(op: str, dtype=torch.float64):
    g = torch.Generator().manual_seed(3)
    x = torch.randn(3, 2, 5, generator=g, dtype=dtype)
    y = torch.randn(3, 2, 5, generator=g, dtype=dtype)
    return {
        "interpolate": ((x, y, torch.rand(3, generator=g, dtype=dtype)), {}),
        "grad_norm_penalty": ((x, 0.5, True), {}),
        "reconstruction_error": ((x, y, 2), {}),
        "adversarial_loss": ((x, y, "hinge"), {"margin": 0.5}),
    }[op]


@pytest.mark.parametrize("op", OPS)
def test_operator_name_is_the_module(op):
    mod = getattr(fastgan.ops, op)
    assert mod.__name__ == f"fastgan.ops.{op}"
    for name in ("reference", "validate", "call", "OP"):
        assert hasattr(mod, name), (op, name)
    assert fastgan.ops.OPERATORS[op] is mod
    # the function has one public name, in fastgan.functional, and is defined with its operator
    assert getattr(FG, op) is getattr(mod, op)
    assert op in FG.__all__


def test_norm_dtype_is_reachable():
    assert fastgan.ops.grad_norm_penalty.NORM_DTYPE is torch.float64


@pytest.mark.parametrize("op", OPS)
def test_calling_the_operator_module_is_deprecated_and_the_same(op):
    args, kwargs = _args(op)
    expected = getattr(FG, op)(*args, **kwargs)
    with pytest.warns(DeprecationWarning, match=rf"fastgan\.functional\.{op}"):
        got = getattr(fastgan.ops, op)(*args, **kwargs)
    torch.testing.assert_close(got, expected, rtol=0, atol=0)


def test_old_keyword_names_of_reconstruction_error():
    (x, y, p), _ = _args("reconstruction_error")
    with pytest.warns(DeprecationWarning):
        got = fastgan.ops.reconstruction_error(x=x, recon=y, p=p)
    torch.testing.assert_close(got, FG.reconstruction_error(inputs=x, reconstructions=y, p=p), rtol=0, atol=0)


def test_deprecated_operator_call_compiles_fullgraph():
    torch._dynamo.reset()
    (x, y, alpha), _ = _args("interpolate", torch.float32)
    fn = torch.compile(lambda a, b, c: fastgan.ops.interpolate(a, b, c) * 2, fullgraph=True, dynamic=True)
    torch.testing.assert_close(fn(x, y, alpha), FG.interpolate(x, y, alpha) * 2)


def test_operator_module_forwards_attribute_writes(monkeypatch):
    mod = fastgan.ops.grad_norm_penalty
    real_module = type(mod)._fastgan_module
    monkeypatch.setattr(mod, "NORM_DTYPE", torch.float32)
    assert real_module.NORM_DTYPE is torch.float32
    monkeypatch.undo()
    assert real_module.NORM_DTYPE is torch.float64
    assert "reference" in dir(mod)
    assert vars(mod) is vars(real_module)  # what pytest's monkeypatch and vars() read


def test_gradient_norm_penalty_is_a_deprecated_alias():
    g = torch.randn(4, 7, dtype=torch.float64)
    with pytest.warns(DeprecationWarning, match="grad_norm_penalty"):
        got = FG.gradient_norm_penalty(g, 0.25, one_sided=True)
    torch.testing.assert_close(got, FG.grad_norm_penalty(g, 0.25, one_sided=True), rtol=0, atol=0)
    assert "gradient_norm_penalty" not in FG.__all__


def test_the_new_names_do_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for op in OPS:
            args, kwargs = _args(op)
            getattr(FG, op)(*args, **kwargs)


def test_amp_penalty_without_scaler_is_the_functional_penalty():
    torch.manual_seed(0)
    critic = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(10, 4), torch.nn.Tanh(), torch.nn.Linear(4, 1))
    real, fake = torch.randn(3, 2, 5), torch.randn(3, 2, 5)
    alpha = torch.rand(3)
    a = amp.gradient_penalty(critic, real, fake, None, gp_weight=3.0, alpha=alpha)
    b = FG.gradient_penalty(critic, real, fake, gp_weight=3.0, alpha=alpha)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    params = list(critic.parameters())[:3]  # the last bias does not change the input gradient
    ga = torch.autograd.grad(a, params)
    gb = torch.autograd.grad(b, params)
    for u, w in zip(ga, gb):
        torch.testing.assert_close(u, w, rtol=0, atol=0)


# ------------------------------------------------------------------ no reach-ins (source scan)
def _sources():
    return sorted(p for p in ROOT.rglob("*.py") if "__pycache__" not in p.parts)


def _module_of(path: pathlib.Path) -> str:
    rel = path.relative_to(ROOT.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_module(obj) -> bool:
    return isinstance(obj, (types.ModuleType, _module.OperatorModule))


def _reach_ins(path: pathlib.Path, here: str | None = None) -> list[str]:
    """importlib look-ups of fastgan modules, and uses of another fastgan module's private
    names (``mod._name`` through an imported module, ``from fastgan.x import _name`` of a
    non-module) in one source file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    here = here or _module_of(path)
    found, aliases = [], {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "import_module":
            arg = node.args[0] if node.args else None
            text = ast.unparse(arg) if arg is not None else ""
            if "fastgan" in text and "fastgan._C" not in text:  # the optional extension, loaded lazily
                found.append(f"line {node.lineno}: importlib.import_module({text})")
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("fastgan"):
            for a in node.names:
                target = __import__(node.module, fromlist=[a.name])
                obj = getattr(target, a.name, None)
                if _is_module(obj):
                    aliases[a.asname or a.name] = obj
                elif a.name.startswith("_") and node.module != here:
                    found.append(f"line {node.lineno}: from {node.module} import {a.name}")
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("fastgan") and a.asname:
                    aliases[a.asname] = a.name
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in aliases
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
        ):
            found.append(f"line {node.lineno}: {node.value.id}.{node.attr}")
    return found


@pytest.mark.parametrize("path", _sources(), ids=lambda p: str(p.relative_to(ROOT.parent)))
def test_no_reach_ins(path):
    assert _reach_ins(path) == []


def test_the_scan_finds_a_reach_in(tmp_path):
    bad = tmp_path / "probe.py"
    bad.write_text(
        "import importlib\n"
        "from fastgan import functional as F\n"
        "from fastgan.backends import _IMPLS\n"
        "m = importlib.import_module('fastgan.ops.interpolate')\n"
        "F._adv(None, None, 'bce')\n",
        encoding="utf-8",
    )
    found = _reach_ins(bad, here="probe")
    assert len(found) == 3, found
