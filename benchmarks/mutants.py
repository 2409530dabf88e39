"""Mutation check of the test suite (not part of CI): does the suite catch realistic mistakes in
the reference formulas and their precision?

Each mutant is one textual patch of one file of ``fastgan/``, applied to a temporary copy of the
tree (the compiled extension, when built, is copied with it); a pytest selection then runs with
``-x -q`` in that copy. A mutant is *caught* when pytest fails (exit status 1); it is *not
caught* when every selected test passes. A patch whose text is not found is reported as
``stale`` (the source changed: update the mutant).

    python benchmarks/mutants.py                        # every mutant, the default selection
    python benchmarks/mutants.py --tree DIR             # the tree to mutate (default: this one)
    python benchmarks/mutants.py --only lsgan_half      # some mutants
    python benchmarks/mutants.py --tests tests/test_families.py tests/test_op_adversarial_loss.py

The default selection is the files of the tree that hold the reference tests (the operator,
family, property, backend, edge-case and input tests of the formulas; not the CLI, training,
benchmark, build and validation tests), or the list given with ``--tests``; a file of the selection
that the tree does not have is skipped. Output: one line per mutant (caught / NOT CAUGHT,
seconds, the first failing test), then a Markdown table (``--markdown FILE`` writes it too).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


@dataclasses.dataclass(frozen=True)
class Mutant:
    """``old`` replaced by ``new`` (once; ``old`` must occur exactly once) in ``path``."""

    name: str
    path: str
    old: str
    new: str
    what: str


OPS = "fastgan/ops/"
FN = "fastgan/functional.py"
MUTANTS = [
    Mutant("bce_sign", OPS + "adversarial_loss.py", "return F.softplus(-x)", "return F.softplus(x)",
           "BCE's real term with the wrong sign: softplus(x) instead of softplus(−x)"),
    Mutant("lsgan_half", OPS + "adversarial_loss.py", "return 0.5 * (x - real_target).square()",
           "return (x - real_target).square()", "LSGAN's real term without its ½"),
    Mutant("hinge_fake_sign", OPS + "adversarial_loss.py", "return F.relu(margin + x)",
           "return F.relu(margin - x)", "hinge's fake term relu(margin − x) instead of relu(margin + x)"),
    Mutant("margin_clamp_dropped", OPS + "adversarial_loss.py", "return F.relu(margin - x)  # margin",
           "return (margin - x)  # margin", "EBGAN's margin term without its one-sided clamp"),
    Mutant("adv_low_precision", OPS + "adversarial_loss.py", "acc = v.accumulation_dtype(out_dtype)",
           "acc = out_dtype", "adversarial terms accumulated in the input dtype (bf16/fp16) instead of fp32"),
    Mutant("recon_sum_not_mean", OPS + "reconstruction_error.py", "return err.mean(dim=1)",
           "return err.sum(dim=1)", "reconstruction error: a sum where the per-sample mean is meant"),
    Mutant("recon_square_for_l1", OPS + "reconstruction_error.py", "err = diff.abs() if p == 1 else diff.square()",
           "err = diff.square() if p == 1 else diff.square()", "reconstruction error: ² where |·| is meant (p = 1)"),
    Mutant("recon_abs_for_l2", OPS + "reconstruction_error.py", "err = diff.abs() if p == 1 else diff.square()",
           "err = diff.abs()", "reconstruction error: |·| where ² is meant (p = 2)"),
    Mutant("norms_fp32", OPS + "grad_norm_penalty.py", "NORM_DTYPE = torch.float64",
           "NORM_DTYPE = torch.float32", "penalty norms in fp32 instead of fp64"),
    Mutant("one_sided_clamp_dropped", OPS + "grad_norm_penalty.py", "t = t.clamp_min(0.0)", "t = t",
           "one-sided penalty without its clamp (two-sided)"),
    Mutant("penalty_mean_of_norms", OPS + "grad_norm_penalty.py", "return t.square().mean().to(grads.dtype)",
           "return t.mean().square().to(grads.dtype)", "penalty: the square of the mean instead of the mean of squares"),
    Mutant("interpolate_swapped", OPS + "interpolate.py", "(fake_acc + a * (real.to(acc) - fake_acc))",
           "(real.to(acc) + a * (fake_acc - real.to(acc)))", "interpolate: ε weighs fake instead of real"),
    Mutant("interpolate_low_precision", OPS + "interpolate.py", "acc = v.accumulation_dtype(real.dtype)",
           "acc = real.dtype", "interpolate computed in the input dtype (bf16/fp16) instead of fp32"),
    Mutant("eps_not_per_sample", FN, "alpha = torch.rand(real.shape[0], device=real.device, dtype=real.dtype)",
           "alpha = torch.rand(1, device=real.device, dtype=real.dtype).expand(real.shape[0])",
           "WGAN-GP: one ε for the whole batch instead of one per sample"),
    Mutant("gp_center_ignored", FN, "return weight * _gnp_op._call(grads, center, one_sided)",
           "return weight * _gnp_op._call(grads, 1.0, False)", "gradient_penalty ignores center and one_sided"),
    Mutant("r1_no_half", FN, "return (0.5 * gamma) * _gnp_op._call(grads, 0.0, False)",
           "return gamma * _gnp_op._call(grads, 0.0, False)", "R1 without its ½ (γ instead of γ/2)"),
    Mutant("margin_on_batch_mean", FN, 'return _adv(real_energy, fake_energy, "margin", margin=v.check_nonneg("margin", margin))',
           'return _adv(real_energy.mean().reshape(1), fake_energy.mean().reshape(1), "margin", margin=v.check_nonneg("margin", margin))',
           "EBGAN: the margin applied to the batch mean of the fake energies, not per sample"),
    Mutant("pt_no_square", FN, "cos2 = (s @ s.T).square()", "cos2 = (s @ s.T)",
           "pulling-away term summing cosines instead of their squares"),
    Mutant("pt_with_diagonal", FN, "cos2.masked_fill(diagonal, 0.0).sum()", "cos2.sum()",
           "pulling-away term with its diagonal (i = j) terms"),
    Mutant("pt_wrong_normaliser", FN, "/ (n * (n - 1))", "/ (n * n)",
           "pulling-away term divided by N² instead of N(N−1)"),
    Mutant("k_not_clamped", FN, "(k_acc + lambda_k * balance).clamp(0.0, 1.0)", "(k_acc + lambda_k * balance)",
           "BEGAN's k not clamped to [0, 1]"),
    Mutant("began_gamma_dropped", FN, "balance = gamma * real_mean - ", "balance = real_mean - ",
           "BEGAN's balance without γ"),
    Mutant("began_convergence_no_abs", FN, "convergence = real_mean + balance.abs()", "convergence = real_mean + balance",
           "BEGAN's M_global without |·|"),
    Mutant("began_d_sign", FN, "loss = real_error.to(acc).mean() - k * fake_error", "loss = real_error.to(acc).mean() + k * fake_error",
           "BEGAN's discriminator loss adds k·L(G(z))"),
    Mutant("saturating_g_sign", FN, 'return -_adv(None, fake_logits, "bce")', 'return _adv(None, fake_logits, "bce")',
           "saturating generator loss without its minus sign"),
    Mutant("wgan_g_sign", FN, 'WGAN-GP generator loss: ``−mean(D(G(z)))``."""\n    v.check_scores(("fake_scores",), fake_scores)\n    return _adv(fake_scores, None, "wgan")',
           'WGAN-GP generator loss: ``−mean(D(G(z)))``."""\n    v.check_scores(("fake_scores",), fake_scores)\n    return _adv(None, fake_scores, "wgan")',
           "WGAN generator loss +mean D(G(z)) instead of −mean"),
    Mutant("create_gp_center_ignored", "fastgan/losses/scores.py", "weight=weight, center=self.center, one_sided=self.one_sided",
           "weight=weight", 'losses.create("wgan-gp", center=…, one_sided=…) uses the default penalty'),
]

#: The files that hold the reference tests (a file the tree does not have is skipped): the new
#: layout, then the old one. A mutant of ``fastgan/ops/`` is first met by the backend-against-
#: reference tests (the compiled kernels are not mutated), a mutant of the families by the paper
#: oracle: :func:`ordered` puts those files first (the order changes the time only: a mutant is
#: caught when any selected test fails).
DEFAULT_TESTS = [
    "tests/test_op_interpolate.py", "tests/test_op_grad_norm_penalty.py",
    "tests/test_op_reconstruction_error.py", "tests/test_op_adversarial_loss.py", "tests/test_kernels.py",
    "tests/test_families.py", "tests/test_paper_math.py", "tests/test_losses.py", "tests/test_ops.py",
    "tests/test_properties.py", "tests/test_backends.py", "tests/test_edge_cases.py",
    "tests/test_inputs_pulling_away.py", "tests/test_inputs_began_k.py",
]
_OPERATOR_FILES = ("test_op_", "test_kernels")


def ordered(m: Mutant, tests: list[str]) -> list[str]:
    """``tests`` with the files most likely to catch ``m`` first (the mutated operator's own
    file, then the other operator files, for a mutant of ``fastgan/ops/``)."""
    if not m.path.startswith(OPS):
        return list(tests)
    own = [t for t in tests if t.endswith("test_op_" + m.path[len(OPS):])]
    first = own + [t for t in tests if any(k in t for k in _OPERATOR_FILES) and t not in own]
    return first + [t for t in tests if t not in first]


def copy_tree(tree: Path, dest: Path) -> None:
    """``fastgan/`` (with the compiled extension), ``tests/`` and ``pytest.ini`` of ``tree``."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "build")
    for name in ("fastgan", "tests"):
        shutil.copytree(tree / name, dest / name, ignore=ignore)
    for name in ("pytest.ini", "setup.py", "pyproject.toml"):
        if (tree / name).exists():
            shutil.copy2(tree / name, dest / name)


def apply(dest: Path, m: Mutant) -> bool:
    """Patch the copy; False when ``m.old`` does not occur exactly once."""
    f = dest / m.path
    text = f.read_text()
    if text.count(m.old) != 1:
        return False
    f.write_text(text.replace(m.old, m.new))
    return True


def likely(m: Mutant, tests: list[str]) -> list[str]:
    """The tests most likely to catch ``m``, as pytest arguments: the mutated operator's own
    tests (``test_op_<op>.py``, or ``test_kernels.py::test_<op>`` in the old layout) for a
    mutant of ``fastgan/ops/``; the paper-oracle, loss and input files for the others."""
    if m.path.startswith(OPS):
        op = m.path[len(OPS):-3]
        return [t for t in tests if t.endswith("test_op_" + op + ".py")] + [
            f"{t}::test_{op}" for t in tests if t.endswith("test_kernels.py")]
    oracle = ("test_families.py", "test_paper_math.py", "test_losses.py", "test_inputs_pulling_away.py", "test_inputs_began_k.py")
    return [t for t in tests if t.endswith(oracle)]


def _pytest(dest: Path, args: list[str], keyword: str | None, timeout: float) -> tuple[int | None, str]:
    env = dict(os.environ, PYTHONPATH=str(dest), PYTHONDONTWRITEBYTECODE="1")
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "-p", "no:randomly", *args]
    if keyword:
        cmd += ["-k", keyword]
    try:
        proc = subprocess.run(cmd, cwd=dest, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, ""
    out = proc.stdout + proc.stderr
    first = next((ln.split(" ", 1)[1].split(" - ")[0] for ln in proc.stdout.splitlines() if ln.startswith("FAILED ")), "")
    if proc.returncode not in (0, 1):
        first = (out.strip().splitlines() or [""])[-1]
    return proc.returncode, first


def run_one(tree: Path, m: Mutant, tests: list[str], timeout: float, keyword: str | None = None) -> tuple[str, float, str]:
    """(status, seconds, first failing test) of one mutant: first the tests most likely to catch
    it (:func:`likely`), then, when they pass, the whole selection (the order changes the time
    only: a mutant is caught when any selected test fails)."""
    with tempfile.TemporaryDirectory(prefix="fastgan-mutant-") as tmp:
        dest = Path(tmp)
        copy_tree(tree, dest)
        if not apply(dest, m):
            return "stale", 0.0, ""
        t0 = time.perf_counter()
        rc, first = None, ""
        for args in (likely(m, tests), ordered(m, tests)):
            if not args:
                continue
            rc, first = _pytest(dest, args, keyword, max(1.0, timeout - (time.perf_counter() - t0)))
            if rc != 0:
                break
        seconds = time.perf_counter() - t0
    status = {0: "NOT CAUGHT", 1: "caught", None: "timeout"}.get(rc, f"error (pytest exit {rc})")
    return status, seconds, first


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tree", type=Path, default=Path(__file__).resolve().parent.parent)
    ap.add_argument("--tests", nargs="+", default=None, help="test files to run (default: DEFAULT_TESTS present in the tree)")
    ap.add_argument("--only", nargs="+", default=None, help="mutant names")
    ap.add_argument("--timeout", type=float, default=600.0, help="seconds per mutant (then: timeout, not caught in that time)")
    ap.add_argument("--markdown", type=Path, default=None)
    ap.add_argument("-k", dest="keyword", default=None,
                    help='pytest -k expression narrowing the selection (e.g. "not triton and not property")')
    args = ap.parse_args(argv)
    tree = args.tree.resolve()
    tests = args.tests or [t for t in DEFAULT_TESTS if (tree / t).exists()]
    chosen = [m for m in MUTANTS if not args.only or m.name in args.only]
    print(f"tree {tree}; {len(chosen)} mutants; tests: {' '.join(tests)}; -k {args.keyword!r}", flush=True)
    rows = []
    for m in chosen:
        status, seconds, first = run_one(tree, m, tests, args.timeout, args.keyword)
        rows.append((m, status, seconds, first))
        print(f"{m.name:<26} {status:<12} {seconds:7.1f} s  {first}", flush=True)
    caught = sum(r[1] == "caught" for r in rows)
    lines = [f"{caught} of {len(rows)} mutants caught", "", "| mutant | what | result | s | first failing test |",
             "|---|---|---|---|---|"]
    lines += [f"| {m.name} | {m.what} | {s} | {sec:.0f} | {first} |" for m, s, sec, first in rows]
    print("\n".join(lines))
    if args.markdown:
        args.markdown.write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
