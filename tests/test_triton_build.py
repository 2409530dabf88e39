"""Every Triton kernel of fastgan compiles ahead of time for an H100/H200-class GPU (sm_90).

``triton.compile`` builds a kernel down to a cubin for a given target without a GPU, so a
compile error (a type mismatch, an unsupported op, a wrong constexpr branch) is caught on a
CPU-only machine, where the interpreter (which runs Python, not the compiler) would not see it.
The compilation runs in a subprocess without ``TRITON_INTERPRET`` (the interpreter replaces the
kernels' JIT objects), over each kernel's dtype, flag and kind variants.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.skipif(importlib.util.find_spec("triton") is None, reason="triton is not installed")

SCRIPT = textwrap.dedent(
    r'''
    import itertools, json, sys, traceback
    import triton
    import triton.language as tl
    from triton.backends.compiler import GPUTarget
    from fastgan.triton import adversarial_loss, grad_norm_penalty, interpolate, reconstruction_error, _common

    TARGET = GPUTarget("cuda", 90, 32)
    INTS = {"B", "M", "stride", "C", "TILES", "NR", "NF", "CR", "CF", "TILES_R", "TILES_F", "gout_stride"}
    ACC_PTRS = {"part", "norms"}
    DTYPES = {"fp32": ("fp32", 1024), "fp64": ("fp64", 512), "fp16": ("fp32", 2048), "bf16": ("fp32", 2048)}

    def signature(kernel, dtype, int_type, consts):
        acc = "fp64" if consts["ACC"] == tl.float64 else "fp32"
        sig = {}
        for p in kernel.params:
            n = p.name
            if p.is_constexpr:
                sig[n] = "constexpr"
            elif n in INTS:
                sig[n] = int_type
            elif n.endswith(("_hi", "_lo")):
                sig[n] = "fp32"
            elif n in ACC_PTRS:
                sig[n] = "*" + acc
            elif n == "cnt":
                sig[n] = "*i32"
            else:
                sig[n] = "*" + dtype
        return sig

    def variants():
        for dtype in DTYPES:
            acc, block = DTYPES[dtype]
            base = {"ACC": tl.float64 if acc == "fp64" else tl.float32, "BLOCK": block}
            fin = {"FR": _common.FIN_ROWS, "FC": _common.FIN_CHUNKS}
            yield interpolate._interpolate_fwd, dtype, base
            for flags in [(True, True, True), (True, False, False), (False, True, True)]:
                yield interpolate._interpolate_bwd, dtype, {**base, **fin, **dict(zip(("NEED_REAL", "NEED_FAKE", "NEED_ALPHA"), flags))}
            for one_sided in (False, True):  # the penalty accumulates in fp64 for every dtype
                yield grad_norm_penalty._gnp_fwd, dtype, {**base, **fin, "ACC": tl.float64, "ONE_SIDED": one_sided}
                yield grad_norm_penalty._gnp_bwd, dtype, {**base, "ACC": tl.float64, "ONE_SIDED": one_sided}
            for p in (1, 2):
                yield reconstruction_error._rec_fwd, dtype, {**base, **fin, "P": p}
                yield reconstruction_error._rec_bwd, dtype, {**base, "P": p, "NEED_X": True, "NEED_R": p == 1}
            for k in range(5) if dtype in ("fp32", "bf16") else (0,):
                yield adversarial_loss._adv_fwd, dtype, {**base, "FC": _common.FIN_CHUNKS, "K": k}
                yield adversarial_loss._adv_bwd, dtype, {**base, "K": k}

    results = []
    for kernel, dtype, consts in variants():
        for int_type in (("i32", "i64") if dtype == "fp32" else ("i32",)):
            name = f"{kernel.fn.__name__}[{dtype},{int_type},{','.join(f'{k}={v}' for k, v in consts.items() if k not in ('ACC',))}]"
            try:
                src = triton.compiler.ASTSource(fn=kernel, signature=signature(kernel, dtype, int_type, consts), constexprs=consts)
                compiled = triton.compile(src, target=TARGET, options={"num_warps": 4, "enable_fp_fusion": False})
                results.append({"name": name, "ok": "cubin" in compiled.asm and len(compiled.asm["cubin"]) > 0})
            except Exception:
                results.append({"name": name, "ok": False, "error": traceback.format_exc()[-2000:]})
    json.dump(results, sys.stdout)
    '''
)


@pytest.fixture(scope="module")
def compiled():
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env.setdefault("TRITON_DEFAULT_FP_FUSION", "0")
    r = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=900)
    assert r.returncode == 0, r.stderr[-4000:]
    return json.loads(r.stdout)


def test_every_kernel_compiles_for_sm90(compiled):
    kernels = {c["name"].split("[", 1)[0] for c in compiled}
    assert kernels == {
        "_interpolate_fwd", "_interpolate_bwd", "_gnp_fwd", "_gnp_bwd", "_rec_fwd", "_rec_bwd", "_adv_fwd", "_adv_bwd",
    }
    failed = [c for c in compiled if not c["ok"]]
    assert not failed, "\n\n".join(f"{c['name']}:\n{c.get('error', 'no cubin')}" for c in failed)


def test_the_triton_backend_needs_the_compiled_extension():
    """The ``fastgan_triton`` ops (schemas, autograd) come from ``fastgan._C``: without it the
    backend is not available, also under Triton's interpreter, and the reason says so; the
    kernels still import (and compile ahead of time, above)."""
    code = (
        "import sys; sys.modules['fastgan._C'] = None\n"  # as if it were not built
        "import fastgan\n"
        "from fastgan import backends\n"
        "from fastgan.triton import interpolate\n"
        "print(fastgan.available_backends()); print(backends.backend_status()['triton'][1])\n"
    )
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-4000:]
    backends_line, reason = r.stdout.splitlines()[:2]
    assert backends_line == "['reference']"
    assert "fastgan._C" in reason and "not built" in reason
