"""The training recipes of ``fastgan train`` (fastgan.train.loop.TUNED, docs/train-recipes.md):
every stated deviation is what ``default_config`` returns, flags still override it, and the model
options the recipes use (spectral norm, the autoencoder's code size) do what they say."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn

from fastgan import losses as fl
from fastgan.train import data as data_mod
from fastgan.train import loop
from fastgan.train.loop import DATA_DEFAULTS, FAMILY_DEFAULTS, TUNED, Config, default_config, make_trainer
from fastgan.train.models import MLPAutoEncoder, build_models

TOY = ("ring8", "grid25", "swissroll")
DATASETS_NO_SKLEARN = [d for d in data_mod.DATASETS if d != "digits"]


def _expected(cfg: Config, key: str):
    return cfg.loss_hparams[key] if key in fl.create(cfg.loss).hparams() else getattr(cfg, key)


@pytest.mark.parametrize("loss, data", sorted(TUNED))
def test_each_stated_deviation_is_the_default(loss, data):
    cfg = default_config(loss, data)
    for key, val in TUNED[(loss, data)].items():
        got = _expected(cfg, key)
        if key == "betas":
            assert tuple(got) == tuple(val)
        else:
            assert got == val, (loss, data, key)


@pytest.mark.parametrize("loss", fl.available())
@pytest.mark.parametrize("data", data_mod.DATASETS)
def test_untuned_fields_keep_the_family_and_dataset_defaults(loss, data):
    cfg = default_config(loss, data)
    tuned = TUNED.get((loss, data), {})
    fam = FAMILY_DEFAULTS[loss]
    if "lr_d" not in tuned and "lr" not in tuned:
        assert cfg.lr_d == fam["lr"]
    if "lr_g" not in tuned and "lr" not in tuned:
        assert cfg.lr_g == fam["lr"]
    if "betas" not in tuned:
        assert cfg.betas == tuple(fam["betas"])
    if "optimizer" not in tuned:
        assert cfg.optimizer == fam["optimizer"]
    if "n_critic" not in tuned:
        assert cfg.n_critic == fl.create(loss).n_critic
    for key, val in DATA_DEFAULTS[data].items():
        if key not in tuned:
            assert getattr(cfg, key) == val, (loss, data, key)
    assert cfg.spectral_norm == tuned.get("spectral_norm", False)
    assert cfg.ae_code == tuned.get("ae_code", 16)
    assert cfg.lr_decay == ("linear" if data in TOY else "none")


@pytest.mark.parametrize("loss, data", sorted(TUNED))
def test_overrides_still_override_the_recipe(loss, data):
    cfg = default_config(loss, data, lr=3e-5, steps=7, betas=(0.1, 0.2), n_critic=2, batch_size=32, width=16,
                         depth=1, z_dim=3, spectral_norm=False, ae_code=2)
    assert (cfg.lr_d, cfg.lr_g, cfg.steps, cfg.betas, cfg.n_critic) == (3e-5, 3e-5, 7, (0.1, 0.2), 2)
    assert (cfg.batch_size, cfg.width, cfg.depth, cfg.z_dim, cfg.spectral_norm, cfg.ae_code) == (32, 16, 1, 3, False, 2)
    for key in TUNED[(loss, data)]:
        if key in fl.create(loss).hparams():
            default = fl.create(loss).hparams()[key]
            other = default + 1 if isinstance(default, (int, float)) and not isinstance(default, bool) else default
            assert default_config(loss, data, **{key: other}).loss_hparams[key] == other


def test_new_options_are_config_fields_in_the_checkpoint_config():
    cfg = default_config("gan", "ring8", spectral_norm=True, ae_code=3)
    d = cfg.to_dict()
    assert d["spectral_norm"] is True and d["ae_code"] == 3
    names = {f.name for f in dataclasses.fields(Config)}
    assert {"spectral_norm", "ae_code"} <= names
    assert "spectral_norm" not in Config.RESUMABLE_CHANGES and "ae_code" not in Config.RESUMABLE_CHANGES


@pytest.mark.parametrize("bad", [{"spectral_norm": 1}, {"spectral_norm": "yes"}, {"ae_code": 0}, {"ae_code": 1.5},
                                 {"ae_code": True}])
def test_new_options_are_validated(bad):
    with pytest.raises(ValueError):
        default_config("ebgan", "ring8", **bad)


def _linears(net: nn.Module):
    return [m for m in net.modules() if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d))]


@pytest.mark.parametrize("loss", ["gan", "hinge", "cgan", "ebgan"])
def test_spectral_norm_parametrizes_every_layer_of_D_only(loss):
    torch.manual_seed(0)
    t = make_trainer(loss, "ring8", spectral_norm=True, backend="reference", eval_every=0)
    layers = _linears(t.D)
    assert layers and all(torch.nn.utils.parametrize.is_parametrized(m, "weight") for m in layers)
    assert not any(torch.nn.utils.parametrize.is_parametrized(m) for m in _linears(t.G))
    # the normalised weight has spectral norm ~1 after a few power iterations in training mode
    x = torch.randn(64, 2)
    for _ in range(30):
        t.D(x) if loss != "cgan" else t.D(x, torch.zeros(64, dtype=torch.long))
    for m in layers:
        assert torch.linalg.matrix_norm(m.weight.detach(), ord=2).item() == pytest.approx(1.0, rel=0.05)
    t.train_step()  # trains, and the checkpoint holds the parametrization's tensors
    assert any("parametrizations.weight.original" in k for k in t.state_dict()["D"])
    plain = make_trainer(loss, "ring8", backend="reference", eval_every=0)
    assert not any(torch.nn.utils.parametrize.is_parametrized(m) for m in _linears(plain.D))


def test_spectral_norm_on_digits_nets():
    pytest.importorskip("sklearn")
    G, D = build_models(data_mod.create("digits"), "gan", z_dim=4, width=4, depth=0, conditional=False,
                        spectral_norm=True)
    assert all(torch.nn.utils.parametrize.is_parametrized(m, "weight") for m in _linears(D))


@pytest.mark.parametrize("code", [1, 2, 16])
def test_ae_code_sets_the_autoencoder_bottleneck(code):
    t = make_trainer("began", "ring8", ae_code=code, backend="reference", eval_every=0)
    assert isinstance(t.D, MLPAutoEncoder)
    recon, emb = t.D(torch.randn(5, 2))
    assert recon.shape == (5, 2) and emb.shape == (5, code)
