"""The embedded default's trained SAEs (slow: needs `train_saes(get_config('gemma-3-270m', preset))` to have run).

Run with SAETS_TEST_SLOW=1 (and SAETS_TEST_PRESET=smoke|cpu, default cpu; SAETS_TEST_OVERRIDES='{json}' for
config overrides, e.g. the values a run was trained with). Checks that both SAEs load through
`saets.saes.load_sae`, fit the model, have unit decoder rows, and meet minimum quality on held-out text.
"""
import json
import os

import pytest
import torch

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not os.environ.get("SAETS_TEST_SLOW"), reason="slow: set SAETS_TEST_SLOW=1")]

PRESET = os.environ.get("SAETS_TEST_PRESET", "cpu")
OVERRIDES = json.loads(os.environ.get("SAETS_TEST_OVERRIDES", "{}"))


@pytest.fixture(scope="module")
def setup():
    from saets.core import get_config
    from saets.models import load_model
    from saets.saes import is_complete_sae_dir, trained_sae_path
    cfg = get_config("gemma-3-270m", PRESET, **OVERRIDES)
    if not all(is_complete_sae_dir(trained_sae_path(cfg, w)) for w in ("measure", "steer")):
        pytest.skip(f"the gemma-3-270m {PRESET} SAEs are not trained yet (run saets.train_sae.train_saes)")
    return cfg, load_model(cfg)


@pytest.mark.parametrize("which", ["measure", "steer"])
def test_embedded_sae_quality(setup, which):
    from saets.saes import load_sae, trained_sae_path
    from saets.train_sae import eval_inputs, sae_quality
    cfg, model = setup
    sae = load_sae(cfg, which, model=model)
    assert sae.cfg.d_in == 640 and sae.cfg.metadata.hook_name == "blocks.9.hook_resid_post"
    assert torch.allclose(sae.W_dec.norm(dim=1), torch.ones(sae.cfg.d_sae), atol=1e-3)
    q = sae_quality(sae, model, cfg, eval_inputs(model, cfg, n_eval_tokens=4096, n_ce_chunks=4))
    assert q["explained_variance"] > 0.6, q
    assert 5 < q["l0"] < 200, q
    assert q["ce_recovered"] > 0.7, q
    assert json.loads((trained_sae_path(cfg, which) / "training.json").read_text())["which"] == which
