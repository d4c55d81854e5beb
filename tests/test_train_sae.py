"""saets.train_sae on the tiny model: training, SAELens round trip, load_sae, caching, interrupted saves."""
import json
import shutil

import pytest
import torch

from saets.core import ConfigError, SaetsError, SaeTrainSpec, get_config


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    import os
    cache = tmp_path_factory.mktemp("cache")
    old = os.environ.get("SAETS_CACHE")
    os.environ["SAETS_CACHE"] = str(cache)
    from saets.models import load_model
    from saets.train_sae import train_saes
    cfg = get_config("tiny", measure_sae={"train": {"lr": 3e-3, "architecture": "jumprelu", "l1_coefficient": 0.5}},
                     steer_sae={"train": {"lr": 3e-3}})
    model = load_model(cfg)
    out = tmp_path_factory.mktemp("out")
    paths = train_saes(cfg, model, out=out, verbose=False)
    yield cfg, model, paths, out
    if old is None:
        os.environ.pop("SAETS_CACHE", None)
    else:
        os.environ["SAETS_CACHE"] = old


def test_both_saes_trained_and_loadable(trained):
    from sae_lens import SAE
    from saets.saes import is_complete_sae_dir, load_sae
    cfg, model, paths, _ = trained
    assert set(paths) == {"measure", "steer"}
    for w, p in paths.items():
        assert is_complete_sae_dir(p)
        disk = SAE.load_from_disk(p)
        ours = load_sae(cfg, w, model=model)
        x = torch.randn(7, 64)
        assert torch.allclose(disk(x), ours(x), atol=1e-6)
        assert torch.allclose(ours.W_dec.norm(dim=1), torch.ones(ours.cfg.d_sae), atol=1e-4)
    assert load_sae(cfg, "measure").cfg.architecture() == "jumprelu"
    assert load_sae(cfg, "steer").cfg.architecture() == "topk"


def test_quality_cards(trained):
    from saets.core import RunPaths
    cfg, _, paths, out = trained
    tables = RunPaths.for_config(cfg, out).tables
    for w in ("measure", "steer"):
        card = json.loads((tables / f"sae_quality_{w}.json").read_text())
        assert card["explained_variance"] > 0.5, card
        assert 0 < card["l0"] and 0 <= card["dead_fraction"] <= 1
        assert card["ce_clean"] > 0 and card["ce_spliced"] > 0 and card["eval_tokens"] > 1000
        assert "| explained_variance |" in (tables / f"sae_quality_{w}.md").read_text()
    steer = json.loads((tables / "sae_quality_steer.json").read_text())
    assert steer["l0"] <= cfg.steer_sae.train.k + 1e-6


def test_rerun_skips_training(trained):
    from saets.train_sae import train_saes
    cfg, model, paths, out = trained
    stamp = {w: (p / "sae_weights.safetensors").stat().st_mtime_ns for w, p in paths.items()}
    train_saes(cfg, model, out=out, verbose=False)
    assert {w: (p / "sae_weights.safetensors").stat().st_mtime_ns for w, p in paths.items()} == stamp


def test_interrupted_save_then_retrain(trained, monkeypatch):
    from sae_lens import SAE
    from saets.saes import is_complete_sae_dir, load_sae
    from saets.train_sae import train_saes
    cfg, model, paths, out = trained
    p = paths["measure"]
    shutil.rmtree(p)
    real = SAE.save_model

    def half_save(self, path):
        real(self, path)
        raise KeyboardInterrupt

    monkeypatch.setattr(SAE, "save_model", half_save)
    with pytest.raises(KeyboardInterrupt):
        train_saes(cfg, model, out=out, verbose=False, evaluate=False)
    monkeypatch.setattr(SAE, "save_model", real)
    assert not p.exists() and not list(p.parent.glob(p.name + ".tmp-*"))
    with pytest.raises(SaetsError, match="has not been trained yet"):
        load_sae(cfg, "measure")
    # a killed process leaves a temp folder and maybe a final folder without the marker
    (p.parent / (p.name + ".tmp-1-2")).mkdir()
    shutil.copytree(paths["steer"], p)
    (p / ".complete").unlink()
    assert not is_complete_sae_dir(p)
    with pytest.raises(SaetsError, match="has not been trained yet"):
        load_sae(cfg, "measure")
    train_saes(cfg, model, out=out, verbose=False, evaluate=False)
    assert is_complete_sae_dir(p) and not list(p.parent.glob(p.name + ".tmp-*"))
    assert load_sae(cfg, "measure", model=model).cfg.architecture() == "jumprelu"


def test_bad_specs_and_mismatch(trained):
    from saets.core import MismatchError
    from saets.saes import check_sae, load_sae
    from saets.train_sae import make_training_sae, train_sae
    cfg, model, _, _ = trained
    with pytest.raises(ConfigError, match="'gated'"):
        make_training_sae(SaeTrainSpec(architecture="gated"), 64, cfg.hook_name, "tiny", 32)
    with pytest.raises(ConfigError, match="less than one batch"):
        train_sae(SaeTrainSpec(training_tokens=10, batch_size_tokens=512), torch.zeros(600, 64), cfg.hook_name, "tiny", 32)
    sae = load_sae(cfg, "steer")
    with pytest.raises(MismatchError, match="blocks.0.hook_resid_post"):
        check_sae(sae, model, "blocks.0.hook_resid_post")
    with pytest.raises(MismatchError, match="d_model=32"):
        check_sae(sae, d_model=32)
