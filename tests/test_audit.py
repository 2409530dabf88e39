"""fastgan.testing.audit: the catalogue, the arguments, the report, unmatched departures, the
user's own D and data, and the worked example of docs/audit.md (run, and its printed report
compared with the one in the doc)."""

from __future__ import annotations

import contextlib
import doctest
import io
import pathlib
import random
import re
import sys

import numpy as np
import pytest
import torch
from torch import nn

import fastgan.testing
import test_audit_adversarial as adversarial
import test_audit_autoencoders as autoencoders
from fastgan.testing import AuditReport, audit

began_d = autoencoders.began_d()
DOC = pathlib.Path(__file__).resolve().parent.parent / "docs" / "audit.md"


def test_every_catalogue_entry_has_a_wrong_implementation_test():
    tested = set(adversarial.WRONG) | set(autoencoders.WRONG)
    assert tested == {e.id for e in audit.CATALOGUE}


def test_catalogue_entries_are_complete():
    for e in audit.CATALOGUE:
        assert e.families and set(e.families) <= set(audit.FAMILIES), e.id
        assert set(e.parts) <= set(audit.PARTS) and e.title and e.fix, e.id
        assert "docs/design.md §1" in e.paper, e.id
        assert e.kind in ("numeric", "performance"), e.id


def catalogue_row(e) -> str:
    """The row of docs/audit.md's catalogue table for entry ``e``."""
    parts = ", ".join({"d": "d_loss", "g": "g_loss", "k": "k_update", "clip": "clip"}[p] for p in e.parts)
    title = e.title + (" (performance)" if e.kind == "performance" else "")
    return f"| `{e.id}` | {', '.join(e.families)} | {parts} | {title} | {e.fix.replace('|', '/')} |"


def test_every_catalogue_entry_is_documented():
    """docs/audit.md's table holds each entry's row as the catalogue has it (regenerate the table
    from catalogue_row when an entry changes)."""
    lines = DOC.read_text().splitlines()
    for e in audit.CATALOGUE:
        assert catalogue_row(e) in lines, e.id


def test_the_module_is_callable_and_exports():
    assert callable(fastgan.testing.audit) and audit.audit is not None
    assert fastgan.testing.AuditReport is audit.AuditReport and fastgan.testing.Finding is audit.Finding
    assert isinstance(audit("lsgan", g_loss=adversarial.lsgan_g_mse), AuditReport)
    assert isinstance(audit.audit("lsgan", g_loss=adversarial.lsgan_g_mse), AuditReport)


def test_unknown_departure_is_reported_unmatched_with_numbers():
    report = audit("gan", d_loss=lambda D, r, f: 3 * adversarial.gan_d_bce_logits(D, r, f))
    (finding,) = report.findings
    assert finding.id == "unmatched" and finding.kind == "unmatched"
    assert any("× 3 on every probe" in e for e in finding.evidence), str(report)
    assert "eq. 3" in finding.paper


def test_unmatched_gradient_departure_names_the_quantity():
    def g_loss(D, fake):  # G's gradient cut: the loss value is the paper's, its gradient is not
        f = D(fake.detach())
        return nn.functional.softplus(-f).mean()
    report = audit("gan", g_loss=g_loss)
    assert report.ids == ["unmatched"]
    assert any("grad wrt G's output" in e and "missing" in e for e in report.findings[0].evidence), str(report)


def test_report_prints_and_raises():
    report = audit("lsgan", g_loss=adversarial.lsgan_g_no_half)
    text = str(report)
    assert "lsgan-no-half" in text and "fix:" in text and "paper:" in text and "evidence:" in text
    with pytest.raises(AssertionError, match="lsgan-no-half"):
        report.raise_if_failed()
    with pytest.raises(audit.AuditFailure):
        report.raise_if_failed()


def test_your_own_D_and_data_are_a_probe():
    torch.manual_seed(1)
    D = nn.Sequential(nn.Flatten(), nn.Linear(12, 6), nn.LeakyReLU(0.2), nn.Linear(6, 1))
    real, fake = torch.randn(4, 3, 2, 2), torch.randn(4, 3, 2, 2)
    before = [p.detach().clone() for p in D.parameters()]
    good = audit("wgan", adversarial.wgan_d, adversarial.wgan_g, D=D, real=real, fake=fake)
    assert good.ok and "yours" in good.probes, str(good)
    bad = audit("wgan-gp", adversarial.gp_d(norm="batch"), D=D, real=real, fake=fake)
    assert bad.ids == ["gp-batch-norm"], str(bad)
    assert all(torch.equal(a, b) for a, b in zip(before, D.parameters())) and D[1].weight.dtype == torch.float32


def test_global_state_is_restored():
    torch.manual_seed(123)
    np.random.seed(7)
    random.seed(5)
    expected = (torch.rand(3), np.random.random(2), random.random())
    torch.manual_seed(123)
    np.random.seed(7)
    random.seed(5)
    threads, dtype = torch.get_num_threads(), torch.get_default_dtype()
    audit("wgan-gp", adversarial.gp_d(), adversarial.wgan_g)
    assert torch.get_num_threads() == threads and torch.get_default_dtype() == dtype
    got = (torch.rand(3), np.random.random(2), random.random())
    assert torch.equal(got[0], expected[0]) and np.array_equal(got[1], expected[1]) and got[2] == expected[2]


@pytest.mark.parametrize("entry_id", sorted(set(adversarial.WRONG) | set(autoencoders.WRONG)))
def test_wrong_implementations_are_named_with_other_probes(entry_id):
    family, kwargs = {**adversarial.WRONG, **autoencoders.WRONG}[entry_id]
    report = audit(family, seed=7, **kwargs)
    assert report.ids == [entry_id], str(report)


def test_wgan_without_clip_notes_it():
    report = audit("wgan", adversarial.wgan_d)
    assert report.ok and report.notes and "clip=" in report.notes[0]


def test_seed_changes_the_probes_not_the_verdict():
    for seed in (1, 2):
        assert audit("gan", adversarial.gan_d_averaged, seed=seed).ids == ["d-averaged"]
        assert audit("gan", adversarial.gan_d_softplus, seed=seed).ok


@pytest.mark.parametrize("call, error, name", [
    (lambda: audit(3, adversarial.wgan_d), TypeError, "family"),
    (lambda: audit("dcgan", adversarial.wgan_d), ValueError, "family"),
    (lambda: audit("gan"), ValueError, "d_loss"),
    (lambda: audit("gan", d_loss="bce"), TypeError, "d_loss"),
    (lambda: audit("gan", g_loss=1.0), TypeError, "g_loss"),
    (lambda: audit("gan", adversarial.gan_d_softplus, k_update=lambda *a: 0), ValueError, "k_update"),
    (lambda: audit("gan", adversarial.gan_d_softplus, clip=lambda D: None), ValueError, "clip"),
    (lambda: audit("gan", adversarial.gan_d_softplus, margin=1.0), TypeError, "margin"),
    (lambda: audit("ebgan", autoencoders.ebgan_d, margin=-1.0), ValueError, "margin"),
    (lambda: audit("ebgan", autoencoders.ebgan_d, margin="1"), TypeError, "margin"),
    (lambda: audit("gan", adversarial.gan_d_softplus, saturating=1), TypeError, "saturating"),
    (lambda: audit("wgan", clip=adversarial.wgan_clip, clip_value=0), ValueError, "clip_value"),
    (lambda: audit("gan", adversarial.gan_d_softplus, seed=1.5), TypeError, "seed"),
    (lambda: audit("gan", adversarial.gan_d_softplus, D=nn.Linear(2, 1)), ValueError, "real"),
    (lambda: audit("gan", adversarial.gan_d_softplus, D=lambda x: x, real=torch.ones(2, 2), fake=torch.ones(2, 2)), TypeError, "D"),
    (lambda: audit("gan", adversarial.gan_d_softplus, D=nn.Linear(2, 1), real=torch.ones(2, 2), fake=torch.ones(3, 2)), ValueError, "fake"),
    (lambda: audit("gan", adversarial.gan_d_softplus, D=nn.Linear(2, 1), real=[1.0], fake=torch.ones(3, 2)), TypeError, "real"),
    (lambda: audit("gan", lambda D, r, f: 1.0), TypeError, "d_loss"),
    (lambda: audit("gan", adversarial.gan_d_softplus, D=nn.Linear(2, 1), real=torch.ones(2, 2), fake=torch.ones(2, 2),
                   labels=torch.zeros(2, dtype=torch.long)), ValueError, "labels"),
    (lambda: audit("cgan", adversarial.cgan_d_bce_logits, D=nn.Linear(2, 1), real=torch.ones(2, 2), fake=torch.ones(2, 2)),
     ValueError, "labels"),
    (lambda: audit("began", began_d, D=nn.Linear(2, 2), real=torch.ones(2, 2), fake=torch.ones(2, 2), k=1.5), ValueError, "k"),
    (lambda: audit("gan", adversarial.gan_d_softplus, k=0.5), ValueError, "k"),
    (lambda: audit("gan", lambda D, r, f: D(r)), TypeError, "d_loss"),
    (lambda: audit("began", k_update=lambda k, D, r, f: "k"), TypeError, "k_update"),
])
def test_bad_arguments_name_the_argument(call, error, name):
    with pytest.raises(error, match=name):
        call()


def _doc_blocks():
    text = DOC.read_text()
    code = re.search(r"<!-- example -->\s*```python\n(.*?)```", text, re.S).group(1)
    printed = re.search(r"<!-- example output -->\s*```text\n(.*?)```", text, re.S).group(1)
    return code, printed


def test_docs_worked_example_prints_the_documented_report():
    code, printed = _doc_blocks()
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, str(DOC), "exec"), {"__name__": "docs_audit_example"})
    assert out.getvalue() == printed


def test_docs_worked_example_fixed_passes():
    """The fix the doc states (flattened per-sample norm, detached fakes) makes report.ok true."""
    code, _ = _doc_blocks()
    code = code.replace("gradients.norm(2, dim=1)", "gradients.view(gradients.size(0), -1).norm(2, dim=1)")
    code = code.replace("compute_gradient_penalty(D, real_imgs, fake_imgs)", "compute_gradient_penalty(D, real_imgs, fake_imgs.detach())")
    code = code.replace("print(report)", "assert report.ok, str(report)")
    exec(compile(code, str(DOC), "exec"), {"__name__": "docs_audit_example_fixed"})


def test_module_docstring_example_runs():
    result = doctest.testmod(sys.modules["fastgan.testing.audit"], verbose=False)
    assert result.attempted >= 3 and result.failed == 0


@pytest.mark.parametrize("family", ["gan", "cgan", "lsgan", "wgan", "wgan-gp", "ebgan"])
def test_fastgan_loss_objects_pass(family):
    """fastgan's own loss objects (fastgan.losses.create) agree with the audit's reference."""
    import fastgan.losses

    obj = fastgan.losses.create(family)
    extra = {"clip": obj.after_discriminator_step} if family == "wgan" else {}
    report = audit(family, lambda D, r, f, *lab: obj.discriminator_loss(D, r, f, *lab)[0],
                   lambda D, f, *lab: obj.generator_loss(D, f, *lab)[0], **extra)
    assert report.ok, str(report)


def test_hyper_parameters_are_the_ones_meant():
    """LSGAN with the paper's other targets (a = −1, b = 1, c = 0) and EBGAN with margin 2: right
    with the hyper-parameters given, a departure without them."""
    def d_loss(D, real, fake):
        return 0.5 * ((D(real) - 1) ** 2).mean() + 0.5 * ((D(fake) + 1) ** 2).mean()

    def g_loss(D, fake):
        return 0.5 * (D(fake) ** 2).mean()

    assert audit("lsgan", d_loss, g_loss, a=-1, b=1, c=0).ok
    wrong = audit("lsgan", d_loss, g_loss)
    assert wrong.ids == ["unmatched", "unmatched"] and [f.parts for f in wrong.findings] == [["d"], ["g"]], str(wrong)

    def ebgan_d(D, real, fake):
        return autoencoders.energies(D, real).mean() + torch.relu(2.0 - autoencoders.energies(D, fake)).mean()

    assert audit("ebgan", ebgan_d, margin=2.0).ok
    assert not audit("ebgan", ebgan_d).ok


def test_an_exception_in_user_code_propagates_and_state_is_restored():
    dtype, threads = torch.get_default_dtype(), torch.get_num_threads()

    def broken(D, real, fake):
        raise RuntimeError("the user's bug")

    with pytest.raises(RuntimeError, match="the user's bug"):
        audit("gan", broken)
    assert torch.get_default_dtype() == dtype and torch.get_num_threads() == threads


def test_fastgan_began_loss_object_passes():
    """fastgan's BEGANLoss (k as its float64 buffer, updated once per step by
    after_discriminator_step) agrees with the audit's reference in all three parts."""
    import fastgan.losses

    obj = fastgan.losses.create("began").double()

    def d_loss(D, real, fake, k):
        obj.update_k(k)  # the audit's k_t, then this step's loss
        return obj.discriminator_loss(D, real, fake)[0]

    def k_update(k, D, real, fake):
        obj.update_k(k)
        obj.discriminator_loss(D, real, fake)
        obj.after_discriminator_step(D)
        return obj.k.clone()

    report = audit("began", d_loss, lambda D, f: obj.generator_loss(D, f)[0], k_update=k_update)
    assert report.ok, str(report)
    wrong = fastgan.losses.create("began", gamma=0.75).double()

    def wrong_update(k, D, real, fake):
        wrong.update_k(k)
        wrong.discriminator_loss(D, real, fake)
        wrong.after_discriminator_step(D)
        return wrong.k.clone()

    assert not audit("began", k_update=wrong_update).ok  # the comparison can fail
