"""The registration of the operators with PyTorch, on every backend built here: the backends
under test implement every operator, ``torch.library.opcheck`` of every ``torch.ops.fastgan``
operator, every public operator a custom op, and the fallback to the reference without the
compiled extension."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_map

import fastgan
from fastgan import backends

import kernel_cases as kc

backend_params_compiled_and_triton = pytest.mark.parametrize(
    "backend", [pytest.param(b, id=b) for b in kc.BACKENDS if b != "reference"]
    or [pytest.param("-", marks=pytest.mark.skip(reason="only the reference backend is available here"))]
)


needs_custom_ops = pytest.mark.skipif(
    not kc.HAS_CUSTOM_OPS,
    reason="torch.ops.fastgan is not registered: the compiled extension fastgan._C is not built here",
)


def dev(backend: str) -> str:
    return kc.DEVICE[backend]


def _skip_unusable(backend: str) -> None:
    if dev(backend) == "cuda" and not torch.cuda.is_available():  # pragma: no cover
        pytest.skip("no CUDA device")


def test_reference_is_under_test():
    assert "reference" in kc.BACKENDS
    assert kc.HAS_CUSTOM_OPS == (backends.extension() is not None), (
        "torch.ops.fastgan.interpolate must be registered exactly when fastgan._C is loaded"
    )


@pytest.mark.parametrize("backend", kc.COMPILED or [pytest.param("-", marks=pytest.mark.skip(reason="no compiled backend is available here"))])
def test_compiled_backend_implements_every_operator(backend):
    """A fixed backend silently hands operators it lacks to the reference: make sure the tests
    below exercise the backend's own kernels for all four operators."""
    device = torch.device(dev(backend))
    with fastgan.use_backend(backend):
        for op in kc.OP_NAMES:
            assert backends.resolve(op, device)[0] == backend, f"{backend} does not implement {op}"
    with fastgan.use_backend("auto"):
        for op in kc.OP_NAMES:
            assert backends.resolve(op, device)[0] != "reference", f"auto picks the reference for {op}"


def main_op_samples(name: str) -> list[tuple]:
    """Sample positional arguments of the public custom op ``torch.ops.fastgan.<name>``."""
    g = kc.generator("opcheck", name)

    def t(shape, dtype=kc.F32, rg=True, layout="contig", norm=False, positive=False):
        x = kc.rows_with_norms(shape, g) if norm else kc.away_from(torch.randn(shape, generator=g, dtype=kc.F64) * 2, (1.0, -1.0))
        x = x.abs() if positive else x
        return kc.arrange(x.to(dtype), layout).requires_grad_(rg and dtype.is_floating_point)

    if name == "interpolate":
        return [
            (t((3, 4, 5)), t((3, 4, 5)), t((3,))),
            (t((2, 3, 4, 5), kc.F64), t((2, 3, 4, 5), kc.F64, layout="channels_last"), t((2,), kc.F64)),
            (t((1, 7), kc.BF16), t((1, 7), kc.BF16), t((1,), kc.BF16)),
            (t((4, 3)), t((4, 3), rg=False), t((4,), rg=False)),
            (t((2, 3), kc.F16, rg=False, layout="strided"), t((2, 3), kc.F16, rg=False), t((2,), kc.F16, rg=False)),
        ]
    if name == "grad_norm_penalty":
        zero_row = kc.rows_with_norms((3, 6), g)
        zero_row[1] = 0
        return [
            (t((3, 4, 5), norm=True), 1.0, False),
            (t((2, 3, 4, 5), kc.F64, layout="channels_last", norm=True), 0.5, True),
            (zero_row.float().requires_grad_(True), 1.0, False),
            (t((4, 6), kc.F16, norm=True), 0.0, False),
            (t((2, 5), kc.BF16, rg=False, layout="permuted", norm=True), 1.0, True),
        ]
    if name == "reconstruction_error":
        return [
            (t((3, 4, 5)), t((3, 4, 5)), 1),
            (t((2, 3, 4, 5), kc.F64, layout="strided"), t((2, 3, 4, 5), kc.F64, layout="channels_last"), 2),
            (t((2, 9), kc.BF16), t((2, 9), kc.BF16), 2),
            (t((4, 3)), t((4, 3), rg=False), 1),
            (t((3, 2), kc.F16, rg=False), t((3, 2), kc.F16, rg=False), 1),
        ]
    if name == "adversarial_loss":
        samples = [(t((4, 1)), t((4, 1)), kind, 0.75, -0.25, 1.5) for kind in kc.KINDS]
        samples += [
            (None, t((3, 1, 2, 2), kc.F64), "lsgan", 1.0, 0.0, 1.0),
            (t((5,), kc.BF16), None, "bce", 1.0, 0.0, 1.0),
            (t((5, 1)), t((3, 1)), "hinge", 1.0, 0.0, 1.0),
            (t((6,), kc.F16, positive=True), t((6,), kc.F16, rg=False, positive=True), "margin", 1.0, 0.0, 2.0),
            (t((2, 3, 2, 2), layout="channels_last", rg=False), t((2, 3, 2, 2), rg=False), "wgan", 1.0, 0.0, 1.0),
        ]
        return samples
    return []


class _Recorder(TorchDispatchMode):
    """Records every ``fastgan::*`` operator call that reaches the dispatcher below autograd,
    with copies of its arguments (sample inputs for the internal helper operators)."""

    def __init__(self):
        super().__init__()
        self.calls: dict[str, list[tuple]] = {}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func.namespace == "fastgan":
            copy = tree_map(lambda a: a.detach().clone() if isinstance(a, torch.Tensor) else a, (args, kwargs))
            self.calls.setdefault(func.__name__.split(".")[0], []).append((func, *copy))
        return func(*args, **kwargs)


_SAMPLES: dict[str, list] = {}


def opcheck_samples() -> dict[str, list]:
    """``name -> [(OpOverload, args, kwargs)]`` for every fastgan operator: the public ones from
    :func:`main_op_samples`, the helpers as recorded while the public ones run forward and
    backward (at most four per helper, of different dtypes first)."""
    if _SAMPLES:
        return _SAMPLES
    recorder = _Recorder()
    for name in kc.OP_NAMES:
        op = getattr(torch.ops.fastgan, name).default
        for args in main_op_samples(name):
            _SAMPLES.setdefault(name, []).append((op, args, {}))
            leaves = [a for a in args if isinstance(a, torch.Tensor) and a.requires_grad]
            with recorder:
                out = op(*args)
                if leaves:
                    torch.autograd.grad(out, leaves, torch.ones_like(out))
    for name, calls in recorder.calls.items():
        if name in kc.OP_NAMES:
            continue
        by_dtype: dict = {}
        for func, args, kwargs in calls:
            key = tuple(a.dtype for a in args if isinstance(a, torch.Tensor))
            by_dtype.setdefault(key, []).append((func, args, kwargs))
        chosen = [v[0] for v in by_dtype.values()] + [c for v in by_dtype.values() for c in v[1:]]
        _SAMPLES[name] = chosen[:4]
    return _SAMPLES


OPCHECK_NAMES = kc.fastgan_op_names() if kc.HAS_CUSTOM_OPS else ["<no fastgan ops>"]


@needs_custom_ops
@pytest.mark.parametrize("name", OPCHECK_NAMES)
def test_opcheck(name):
    samples = opcheck_samples().get(name)
    assert samples, (
        f"no sample inputs for torch.ops.fastgan.{name}: it is neither a public operator of "
        f"fastgan.ops nor called by one (schemas: {getattr(torch.ops.fastgan, name)._schemas if hasattr(getattr(torch.ops.fastgan, name), '_schemas') else '?'})"
    )
    for op, args, kwargs in samples:
        torch.library.opcheck(op, args, kwargs)


@needs_custom_ops
def test_every_public_operator_is_a_custom_op():
    names = kc.fastgan_op_names()
    for op in kc.OP_NAMES:
        assert op in names, f"torch.ops.fastgan.{op} is not registered (registered: {names})"


_FALLBACK_SCRIPT = textwrap.dedent(
    """
    import sys, warnings
    sys.modules["fastgan._C"] = None  # the extension is missing
    inputs_path, results_path = sys.argv[1], sys.argv[2]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        import torch
        import fastgan
        import fastgan.functional as FG
        from fastgan import backends
        inputs = torch.load(inputs_path, weights_only=True)
        results = {"available": fastgan.available_backends(),
                   "cpu_status": backends.backend_status()["cpu"][1],
                   "has_ops": hasattr(torch.ops.fastgan, "interpolate")}
        try:
            fastgan.use_backend("cpu")
            results["use_cpu"] = "no error"
        except fastgan.BackendUnavailableError as exc:
            results["use_cpu"] = "BackendUnavailableError: " + str(exc)
        for rep in range(2):
            x = {k: v.clone().requires_grad_(True) for k, v in inputs.items()}
            outs = {
                "interpolate": fastgan.functional.interpolate(x["real"], x["fake"], x["alpha"]),
                "grad_norm_penalty": fastgan.functional.grad_norm_penalty(x["grads"], 1.0, True),
                "reconstruction_error": fastgan.functional.reconstruction_error(x["real"], x["fake"], 2),
                "adversarial_loss": fastgan.functional.adversarial_loss(x["scores"], x["scores2"], "hinge"),
                "wgan_gp": FG.wgan_critic_loss(x["scores"], x["scores2"]) + FG.grad_norm_penalty(x["grads"]),
            }
            total = sum(o.sum() for o in outs.values())
            grads = torch.autograd.grad(total, list(x.values()))
            if rep == 0:
                results["outputs"] = {k: v.detach() for k, v in outs.items()}
                results["grads"] = dict(zip(x.keys(), grads))
    results["warnings"] = [(w.category.__name__, str(w.message)) for w in caught
                           if issubclass(w.category, fastgan.FastganWarning)]
    results["extension_imported"] = sys.modules.get("fastgan._C") is not None
    torch.save(results, results_path)
    """
)


def test_fallback_without_the_extension(tmp_path):
    g = kc.generator("fallback")
    inputs = {
        "real": torch.randn(3, 2, 5, 4, generator=g),
        "fake": torch.randn(3, 2, 5, 4, generator=g),
        "alpha": torch.rand(3, generator=g),
        "grads": kc.rows_with_norms((3, 2, 5, 4), g).float(),
        "scores": kc.logits((6, 1), g).float(),
        "scores2": kc.logits((6, 1), g).float(),
    }
    torch.save(inputs, tmp_path / "inputs.pt")
    script = tmp_path / "fallback.py"
    script.write_text(_FALLBACK_SCRIPT)
    # a plain CPU environment: no FASTGAN_BACKEND, no Triton interpreter (tests/conftest.py)
    env = {k: v for k, v in os.environ.items() if k not in ("FASTGAN_BACKEND", "TRITON_INTERPRET")}
    r = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "inputs.pt"), str(tmp_path / "results.pt")],
        env=env, capture_output=True, text=True, timeout=180,
    )
    assert r.returncode == 0, r.stderr
    res = torch.load(tmp_path / "results.pt", weights_only=True)
    assert res["available"] == (["reference", "triton"] if kc.TRITON_ON_GPU else ["reference"])
    assert "not built" in res["cpu_status"]
    assert res["use_cpu"].startswith("BackendUnavailableError"), res["use_cpu"]
    assert not res["has_ops"] and not res["extension_imported"]
    assert len(res["warnings"]) == 1, f"expected exactly one FastganWarning, got {res['warnings']}"
    assert "reference" in res["warnings"][0][1]

    # the subprocess's results are the reference's, and every backend here agrees with them
    x = {k: v.clone().requires_grad_(True) for k, v in inputs.items()}
    ref = {
        "interpolate": kc.REFERENCE["interpolate"](x["real"], x["fake"], x["alpha"]),
        "grad_norm_penalty": kc.REFERENCE["grad_norm_penalty"](x["grads"], 1.0, True),
        "reconstruction_error": kc.REFERENCE["reconstruction_error"](x["real"], x["fake"], 2),
        "adversarial_loss": kc.REFERENCE["adversarial_loss"](x["scores"], x["scores2"], "hinge", 1.0, 0.0, 1.0),
    }
    for name, value in ref.items():
        torch.testing.assert_close(res["outputs"][name], value.detach(), rtol=0, atol=0, msg=lambda m: f"{name}: {m}")
    for backend in kc.BACKENDS:
        if dev(backend) != "cpu":
            continue
        with fastgan.use_backend(backend):
            for name in ref:
                args = {
                    "interpolate": (x["real"], x["fake"], x["alpha"]),
                    "grad_norm_penalty": (x["grads"], 1.0, True),
                    "reconstruction_error": (x["real"], x["fake"], 2),
                    "adversarial_loss": (x["scores"], x["scores2"], "hinge", 1.0, 0.0, 1.0),
                }[name]
                got = kc.PUBLIC[name](*[a.detach() if isinstance(a, torch.Tensor) else a for a in args])
                kc.assert_matches(got, res["outputs"][name].double(), kc.F32, f"{backend} {name} vs the fallback")
    # gradients of the subprocess (reference path) against the in-process reference, with the
    # functional WGAN-GP term included on both sides
    wgan_gp = kc.REFERENCE["adversarial_loss"](x["scores"], x["scores2"], "wgan", 1.0, 0.0, 1.0) + kc.REFERENCE["grad_norm_penalty"](x["grads"], 1.0, False)
    torch.testing.assert_close(res["outputs"]["wgan_gp"], wgan_gp.detach(), rtol=0, atol=0)
    ref_grads = dict(zip(x.keys(), torch.autograd.grad(sum(o.sum() for o in ref.values()) + wgan_gp, list(x.values()))))
    for k, v in ref_grads.items():
        torch.testing.assert_close(res["grads"][k], v, rtol=1e-6, atol=1e-7, msg=lambda m: f"d/d{k}: {m}")
