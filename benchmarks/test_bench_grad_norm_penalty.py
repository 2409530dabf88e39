"""Benchmark of ``fastgan.functional.grad_norm_penalty(grads)`` (center 1, two-sided),
forward + backward w.r.t. grads.

Providers: eager_idiom, best_eager, compiled (torch.compile of the reference), fastgan_<backend>
for every available backend (fastgan/bench/providers.py); the cases are ``fastgan bench``'s
(fastgan/bench/catalogue.py), parametrised in conftest.py. Every
provider is checked against the reference before it is timed. Run with
``python -m pytest benchmarks/test_bench_grad_norm_penalty.py --benchmark-only``.
"""

OP = "grad_norm_penalty"


def test_grad_norm_penalty(bench, case, provider):
    bench(case, provider)
