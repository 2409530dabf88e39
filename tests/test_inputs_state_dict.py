"""``load_state_dict`` of a loss object is all or nothing (issue "Every PyTorch transform,
every backend", item 9).

A refused load — a state from another configuration or family, a state without its
configuration (strict or not), a tensor of the wrong shape or kind, missing or unexpected keys
with ``strict=True``, something that is not a mapping — raises and leaves the loss exactly as it
was: every buffer (value, dtype, device, identity), its hyper-parameters and its
``state_dict()``.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from fastgan import losses

from test_losses import NON_DEFAULT_HPARAMS as HP
OTHER_HP = {
    "gan": {"saturating": False},
    "wgan": {"clip_value": 0.5},
    "wgan-gp": {"gp_weight": 1.0},
    "ebgan": {"margin": 1.0},
    "began": {"gamma": 0.7},
    "lsgan": {"c": 1.0},
}


def _loss(name):
    loss = losses.create(name, **HP[name])
    if name == "began":
        loss.k.fill_(0.625)  # a trained k: a half-load would change it
    return loss


def _snapshot(loss):
    return {
        "hparams": dict(loss.hparams()),
        "buffers": {n: (b, b.detach().clone(), b.dtype, b.device) for n, b in loss.named_buffers()},
        "params": {n: (p, p.detach().clone()) for n, p in loss.named_parameters()},
        "state": loss.state_dict(),
        "training": loss.training,
    }


def _assert_unchanged(loss, before):
    after = _snapshot(loss)
    assert after["hparams"] == before["hparams"]
    assert after["training"] == before["training"]
    assert set(after["buffers"]) == set(before["buffers"])
    for n, (obj, value, dtype, device) in before["buffers"].items():
        obj2, value2, dtype2, device2 = after["buffers"][n]
        assert obj2 is obj, f"buffer {n} was replaced"
        assert dtype2 == dtype and device2 == device and torch.equal(value2, value), f"buffer {n} changed: {value2} != {value}"
    for n, (obj, value) in before["params"].items():
        assert after["params"][n][0] is obj and torch.equal(after["params"][n][1], value)
    s1, s2 = before["state"], after["state"]
    assert set(s1) == set(s2)
    for k in s1:
        if isinstance(s1[k], torch.Tensor):
            assert torch.equal(s1[k], s2[k])
        else:
            assert s1[k] == s2[k]


def _bad_states(name):
    """(id, state_dict, strict, assign) that must be refused."""
    mine = _loss(name).state_dict()
    other_family = "wgan" if name != "wgan" else "gan"
    out = [
        ("other-family", losses.create(other_family).state_dict(), True),
        ("other-family-nonstrict", losses.create(other_family).state_dict(), False),
        ("missing-all-strict", {}, True),
        ("unexpected-key-strict", {**mine, "bogus": torch.zeros(())}, True),
        ("config-not-a-dict", {**mine, "_extra_state": "gan"}, False),
        ("config-with-tensor", {**mine, "_extra_state": {"loss": name, "hparams": {k: torch.tensor(0.0) for k in (HP[name] or ["x"])}}}, False),
        ("config-missing-hparams", {**mine, "_extra_state": {"loss": name}}, False),
    ]
    if name in OTHER_HP:
        out.append(("other-config", losses.create(name, **OTHER_HP[name]).state_dict(), True))
        out.append(("other-config-nonstrict", losses.create(name, **OTHER_HP[name]).state_dict(), False))
    if name == "began":
        k_state = {"k": torch.tensor(0.9)}
        out += [
            ("k-without-config-strict", k_state, True),
            ("k-without-config-nonstrict", k_state, False),
            ("k-wrong-shape", {**mine, "k": torch.zeros(2)}, True),
            ("k-wrong-shape-nonstrict", {**mine, "k": torch.zeros(2)}, False),
            ("k-not-a-tensor", {**mine, "k": 0.9}, False),
            ("config-without-k-strict", {"_extra_state": mine["_extra_state"]}, True),
            ("k-and-unexpected-key-strict", {**mine, "k": torch.tensor(0.9), "bogus": torch.zeros(())}, True),
            ("k-other-config", {**losses.create("began", gamma=0.9).state_dict(), "k": torch.tensor(0.9)}, False),
        ]
    return [(i, s, strict, assign) for i, s, strict in out for assign in (False, True)]


CASES = [pytest.param(name, *case, id=f"{name}-{case[0]}-{'assign' if case[3] else 'copy'}") for name in losses.available() for case in _bad_states(name)]


@pytest.mark.parametrize("name,case,state,strict,assign", CASES)
def test_refused_load_changes_nothing(name, case, state, strict, assign):
    loss = _loss(name)
    before = _snapshot(loss)
    with pytest.raises((ValueError, RuntimeError, TypeError)):
        loss.load_state_dict(state, strict=strict, assign=assign)
    _assert_unchanged(loss, before)
    # and the loss still works: a valid load afterwards succeeds
    good = _loss(name)
    if name == "began":
        good.k.fill_(0.875)
    loss.load_state_dict(good.state_dict())
    if name == "began":
        assert loss.k.item() == 0.875


def test_not_a_mapping_is_refused():
    loss = _loss("began")
    before = _snapshot(loss)
    with pytest.raises(TypeError):
        loss.load_state_dict([("k", torch.tensor(0.9))])
    _assert_unchanged(loss, before)


def test_the_errors_of_a_refused_load():
    """The configuration errors are fastgan's ValueErrors; key and shape errors are PyTorch's
    own RuntimeErrors — raised before (or undone after) any change."""
    began = _loss("began")
    with pytest.raises(ValueError, match="different loss configuration"):
        began.load_state_dict(losses.create("began", gamma=0.9).state_dict())
    for strict in (True, False):
        with pytest.raises(ValueError, match="not the loss configuration"):
            began.load_state_dict({"k": torch.tensor(0.9)}, strict=strict)
    with pytest.raises(RuntimeError, match="Unexpected key"):
        began.load_state_dict({**began.state_dict(), "k": torch.tensor(0.9), "bogus": torch.zeros(())})
    assert began.k.item() == 0.625
    with pytest.raises(RuntimeError, match="size mismatch"):
        began.load_state_dict({**began.state_dict(), "k": torch.zeros(2)})


def test_valid_non_strict_loads_still_load():
    began = _loss("began")
    src = _loss("began")
    src.k.fill_(0.125)
    result = began.load_state_dict({**src.state_dict(), "bogus": torch.zeros(())}, strict=False)
    assert began.k.item() == 0.125 and result.unexpected_keys == ["bogus"]
    # an empty state with strict=False loads nothing and changes nothing
    result = began.load_state_dict({}, strict=False)
    assert began.k.item() == 0.125 and set(result.missing_keys) == {"k", "_extra_state"}


class _Holder(nn.Module):
    def __init__(self, **hp):
        super().__init__()
        self.lin = nn.Linear(2, 2)
        self.loss = losses.create("began", **hp)


def test_loss_inside_a_model_checks_its_configuration_first():
    """Held by a model, the loss still refuses a state of another configuration, or its k
    without its configuration, before its k changes."""
    model = _Holder(gamma=0.4)
    model.loss.k.fill_(0.625)
    other = _Holder(gamma=0.9)
    other.loss.k.fill_(0.9)
    with pytest.raises(ValueError, match="different loss configuration"):
        model.load_state_dict(other.state_dict())
    assert model.loss.k.item() == 0.625
    state = other.state_dict()
    del state["loss._extra_state"]
    with pytest.raises(ValueError, match="not the loss configuration"):
        model.load_state_dict(state, strict=False)
    assert model.loss.k.item() == 0.625
