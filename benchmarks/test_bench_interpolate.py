"""Benchmark of ``fastgan.functional.interpolate(real, fake, alpha)``,
forward + backward w.r.t. real, fake and alpha.

Providers: eager_idiom, best_eager, compiled (torch.compile of the reference), fastgan_<backend>
for every available backend (fastgan/bench/providers.py); the cases are ``fastgan bench``'s
(fastgan/bench/catalogue.py), parametrised in conftest.py. Every
provider is checked against the reference before it is timed. Run with
``python -m pytest benchmarks/test_bench_interpolate.py --benchmark-only``.
"""

OP = "interpolate"


def test_interpolate(bench, case, provider):
    bench(case, provider)
