"""Benchmark of ``fastgan.functional.adversarial_loss(real, fake, kind)`` for every kind, on (64, 1)
logits and 64x1x30x30 PatchGAN maps, forward + backward w.r.t. real and fake.

Providers: eager_idiom, best_eager, compiled (torch.compile of the reference), fastgan_<backend>
for every available backend (fastgan/bench/providers.py); the cases are ``fastgan bench``'s
(fastgan/bench/catalogue.py), parametrised in conftest.py. Every
provider is checked against the reference before it is timed. Run with
``python -m pytest benchmarks/test_bench_adversarial_loss.py --benchmark-only``.
"""

OP = "adversarial_loss"


def test_adversarial_loss(bench, case, provider):
    bench(case, provider)
