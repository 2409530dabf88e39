"""Benchmark of ``fastgan.functional.reconstruction_error(x, recon, p)``, p = 1 and 2,
forward + backward w.r.t. x and recon.

Providers: eager_idiom, best_eager, compiled (torch.compile of the reference), fastgan_<backend>
for every available backend (fastgan/bench/providers.py); the cases are ``fastgan bench``'s
(fastgan/bench/catalogue.py), parametrised in conftest.py. Every
provider is checked against the reference before it is timed. Run with
``python -m pytest benchmarks/test_bench_reconstruction_error.py --benchmark-only``.
"""

OP = "reconstruction_error"


def test_reconstruction_error(bench, case, provider):
    bench(case, provider)
