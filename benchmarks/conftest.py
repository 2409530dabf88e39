"""pytest-benchmark views of ``fastgan bench``'s cases (``test_bench_<op>.py``).

``fastgan bench`` is the benchmark's one frontend (one process, interleaved rounds, every output
file); these suites time the same cases and providers one test at a time, for pytest-benchmark's
own comparisons (``--benchmark-compare``, histograms). They are not part of the normal test
suite — ``pytest.ini`` collects ``tests/`` only — and run with::

    python -m pytest benchmarks/ --benchmark-only                 # time (pytest-benchmark)
    python -m pytest benchmarks/ --benchmark-disable              # check every provider once
    python -m pytest benchmarks/ --benchmark-only --bench-sizes=all   # + 256x3x128x128

Each test module names its operator in ``OP`` and has one test taking the ``case`` and
``provider`` parameters (generated here from :func:`fastgan.bench.cases.select` and
:func:`fastgan.bench.cases.providers`) and the ``bench`` fixture, which prepares the provider as
``fastgan bench`` does (:func:`fastgan.bench.runner.prepare`: made, checked against the
reference, warmed; a provider that fails is never timed), calibrates it with
:func:`fastgan.bench.timing.calibrate` and times it with ``benchmark.pedantic``.
"""

from __future__ import annotations

import warnings

import pytest

import fastgan
from fastgan.bench import cases as suite
from fastgan.bench import runner
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
    """``bench(case, provider_name)``: prepare the provider on the case as ``fastgan bench``
    does (checked against the reference first), then time forward + backward with
    ``benchmark.pedantic`` on rotated inputs."""

    budget = request.config.getoption("--bench-budget")

    def run(case: suite.Case, provider_name: str) -> None:
        prov = suite.providers()[provider_name]
        sets = suite.input_sets(case, DEVICE)
        res, step = runner.prepare(case, provider_name, prov, DEVICE, sets, log=lambda msg: None)
        assert step is not None, (f"{provider_name} on {case.label}: "
                                  f"{res.error or f'largest error {res.max_error:.3g} in {res.where}'}")
        benchmark.group = f"{case.op} {case.id}"
        benchmark.extra_info.update(provider=provider_name, ideal_bytes=case.ideal_bytes(), input_sets=len(sets))
        with prov.context():
            iterations, rounds = common.calibrate(step, DEVICE.timer, budget_s=budget)
            load = common.ForeignLoad().start()
            benchmark.pedantic(step, rounds=rounds, iterations=iterations, warmup_rounds=1)
            foreign = load.stop()
        # share of the CPUs other processes used meanwhile: above ~0.1 the times are not
        # trustworthy on a small machine (see README.md, Noise)
        benchmark.extra_info["foreign_load"] = None if foreign is None else round(foreign, 3)
        stats = getattr(benchmark, "stats", None)
        if stats:  # None / empty under --benchmark-disable
            gbps = case.ideal_bytes() / stats.stats.median / 1e9
            copy = request.getfixturevalue("copy_bandwidth")["GBps"]
            benchmark.extra_info.update(GBps=round(gbps, 2), share_of_copy_bw=round(gbps / copy, 3))

    return run
