"""pytest glue of fastgan's benchmark suites (``test_bench_<op>.py``).

They are not part of the normal test suite — ``pytest.ini`` collects ``tests/`` only — and run
with::

    python -m pytest benchmarks/ --benchmark-only                 # time (pytest-benchmark)
    python -m pytest benchmarks/ --benchmark-disable              # check every provider once
    python -m pytest benchmarks/ --benchmark-only --bench-sizes=all   # + 256x3x128x128

Each test module names its operator in ``OP`` and has one test taking the ``case`` and
``provider`` parameters (generated here from :mod:`fastgan.bench.cases`, the cases and providers
of ``fastgan bench``) and the ``bench`` fixture, which checks the provider against the reference
and then times it. The measurement core (timers, copy bandwidth, ideal bytes, input rotation)
is :mod:`fastgan.bench.timing`.
"""

from __future__ import annotations

import math
import time
import warnings

import pytest

import fastgan
from fastgan.bench import cases as suite
from fastgan.bench import timing as common

DEVICE = common.get_device("cpu")

SIZES = {"default": ("small", "large"), "tiny": ("tiny",), "small": ("small",), "all": ("small", "large", "target")}


def pytest_addoption(parser):
    group = parser.getgroup("fastgan benchmarks")
    group.addoption(
        "--bench-sizes", choices=sorted(SIZES), default="default",
        help="tiny: smoke-test sizes; small: 64x3x64x64 (+ all logits); default: + 256x3x64x64; all: + 256x3x128x128",
    )
    group.addoption(
        "--bench-budget", type=float, default=1.0,
        help="seconds of timed calls per test (rounds are derived from it; default 1.0)",
    )
    group.addoption(
        "--bench-providers", default=None,
        help="comma-separated providers (default: eager_idiom, best_eager, compiled, and "
        "fastgan_<backend> for every available backend)",
    )


def pytest_configure(config):
    warnings.simplefilter("ignore", fastgan.FastganWarning)
    # raised inside torch when torch.compile first imports its machinery; not ours to fix
    config.addinivalue_line("filterwarnings", "ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")


def pytest_generate_tests(metafunc):
    op = getattr(metafunc.module, "OP", None)
    if op is None or "case" not in metafunc.fixturenames:
        return
    sizes = SIZES[metafunc.config.getoption("--bench-sizes")]
    cases = suite.select([op], list(sizes))
    names = list(suite.providers())
    wanted = metafunc.config.getoption("--bench-providers")
    if wanted:
        names = [n for n in names if n in {w.strip() for w in wanted.split(",")}]
    metafunc.parametrize("case", cases, ids=[c.id for c in cases])
    metafunc.parametrize("provider", names)


def pytest_benchmark_update_machine_info(config, machine_info):
    machine_info["fastgan_bench"] = common.machine_info()


@pytest.fixture(scope="session")
def copy_bandwidth():
    """Measured once per session, lazily (only when a benchmark actually runs)."""
    return common.CopyBandwidth(DEVICE).measure()


@pytest.fixture
def bench(benchmark, request):
    """``bench(case, provider_name)``: check the provider on the case against the reference,
    then time forward + backward with ``benchmark.pedantic`` on rotated inputs."""

    budget = request.config.getoption("--bench-budget")

    def run(case: suite.Case, provider_name: str) -> None:
        prov = suite.providers()[provider_name]
        fn = prov.make(case)
        res = suite.check(case, prov, fn)  # a wrong kernel is never timed (compiles `compiled` too)
        assert res.ok, f"{provider_name} on {case.label}: {res.error or f'largest error {res.max_error:.3g} in {res.where}'}"
        sets = suite.input_sets(case, DEVICE)
        step = suite.make_step(fn, sets)
        benchmark.group = f"{case.op} {case.id}"
        benchmark.extra_info.update(
            provider=provider_name, ideal_bytes=case.ideal_bytes(), input_sets=len(sets),
        )
        with prov.context():
            t0, calls = time.perf_counter(), 0
            while calls < 3 or time.perf_counter() - t0 < 0.1:  # warm-up
                step()
                calls += 1
            t0 = time.perf_counter()
            step()
            t_call = max(time.perf_counter() - t0, 1e-9)
            iterations = max(1, math.ceil(1e-3 / t_call))
            rounds = int(min(200, max(10, budget / (iterations * t_call))))
            load = common.ForeignLoad().start()
            benchmark.pedantic(step, rounds=rounds, iterations=iterations, warmup_rounds=1)
            foreign = load.stop()
        # share of the CPUs other processes used meanwhile: above ~0.1 the times are not
        # trustworthy on a small machine (see README.md, Noise)
        benchmark.extra_info["foreign_load"] = None if foreign is None else round(foreign, 3)
        stats = getattr(benchmark, "stats", None)
        if stats:  # None / empty under --benchmark-disable
            median = stats.stats.median
            gbps = case.ideal_bytes() / median / 1e9
            copy = request.getfixturevalue("copy_bandwidth")["GBps"]
            benchmark.extra_info.update(GBps=round(gbps, 2), share_of_copy_bw=round(gbps / copy, 3))

    return run
