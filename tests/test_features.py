"""saets.features: running top-k labels and task-feature ranking on synthetic data with known answers."""
import math

import numpy as np
import pandas as pd
import pytest
import torch

from saets.core import SaetsError, get_config
from saets.features import (check_feature_ids, choose_features, feature_direction, feature_stats, labels_from_stats,
                            load_labels, rank_task_features, save_labels, score_features, select_task_features)


@pytest.fixture(scope="module")
def tiny():
    from saets.models import load_model
    cfg = get_config("tiny")
    return cfg, load_model(cfg)


def test_running_topk_matches_brute_force():
    g = torch.Generator().manual_seed(3)
    f = torch.relu(torch.randn(50, 7, 5, generator=g) - 0.5)
    s = feature_stats(((i, f[i:i + 8]) for i in range(0, 50, 8)), d_sae=5, k=6)
    m, arg = f.max(1)
    for j in range(5):
        v, c = m[:, j].topk(6)
        assert torch.allclose(s.top_values[j], v) and torch.equal(s.top_chunks[j], c)
        assert torch.equal(s.top_pos[j], arg[c, j] + 1)
    assert torch.allclose(s.density, (f > 0).double().mean((0, 1)))


def test_labels_find_the_planted_token(tmp_path):
    from saets.data import get_tokenizer
    tok = get_tokenizer(get_config("tiny"))
    ids = tok("xyz abc " * 60, add_special_tokens=False)["input_ids"]
    toks = torch.tensor([[tok.bos_token_id] + ids[i:i + 19] for i in range(0, 400, 19)])
    y = tok.convert_tokens_to_ids("y")
    f = torch.zeros(len(toks), 19, 3)
    f[..., 1] = (toks[:, 1:] == y).float() * 2
    df = labels_from_stats(feature_stats([(0, f)], 3, k=5), toks, tok, urls=[None, "u1", None])
    assert df.loc[1, "top_tokens"] == ["y"] and df.loc[1, "label"].startswith("y")
    assert all("«y»" in s for s in df.loc[1, "snippets"]) and df.loc[1, "neuronpedia_url"] == "u1"
    assert df.loc[0, "label"] == "" and df.loc[0, "density"] == 0
    save_labels(df, tmp_path / "l.parquet")
    back = load_labels(tmp_path / "l.parquet")
    assert back.loc[1, "snippets"] == df.loc[1, "snippets"] and back.index.name == "feature"


def test_score_prefers_specific_consistent_features():
    pos = [torch.zeros(5, 6) for _ in range(4)]
    neg = [torch.zeros(5, 6) for _ in range(4)]
    for a in pos:
        a[:, 1] = 1.0     # topic feature: every positive text
        a[:, 4] = 3.0     # generic feature: every text, strongly
    for a in neg:
        a[:, 4] = 2.9
    pos[2][:, 2] = 5.0    # fires on one positive text only
    dens = torch.tensor([0, 1e-3, 1e-3, 0, 0.5, 0])
    r = score_features(pos, neg, dens)
    assert r.index[0] == 1 and r.loc[4, "score"] == -math.inf and r.loc[2, "coverage"] == 0.25
    assert choose_features(r) == {1: 1.0}


def test_feature_id_errors():
    with pytest.raises(SaetsError, match="id 4096 is out of range.*d_sae=4096"):
        check_feature_ids([4096], 4096)
    from sae_lens import TopKSAE, TopKSAEConfig
    sae = TopKSAE(TopKSAEConfig(d_in=8, d_sae=4, k=2))
    with pytest.raises(SaetsError, match="id 9"):
        feature_direction(sae, {9: 1.0})


def _planted_sae(model, cfg, pos, neg):
    from sae_lens import JumpReLUSAE, JumpReLUSAEConfig
    from sae_lens.saes.sae import SAEMetadata
    def mean(texts):
        return torch.cat([model.run_with_cache(t, names_filter=cfg.hook_name)[1][cfg.hook_name][0, 1:] for t in texts]).mean(0)
    d = mean(pos) - mean(neg)
    torch.manual_seed(1)
    sae = JumpReLUSAE(JumpReLUSAEConfig(d_in=64, d_sae=16, metadata=SAEMetadata(hook_name=cfg.hook_name)))
    with torch.no_grad():
        W = torch.randn(64, 16) * 0.05
        W[:, 5] = d / d.norm() ** 2 * 4
        sae.W_enc.copy_(W); sae.W_dec.copy_(torch.nn.functional.normalize(W.T, dim=1))
        sae.b_dec.copy_(mean(neg)); sae.threshold.fill_(0.2)
    return sae


def test_task_selection_end_to_end(tiny, tmp_path):
    import json
    from saets.tasks import Task
    cfg, model = tiny
    pos, neg = ["zebra zoo zone", "zig zag", "lazy zebras", "zero"], ["the cat", "a red hat", "one two", "hi there"]
    sae = _planted_sae(model, cfg, pos, neg)
    task = Task(name="zeds", description="", criterion="z words", positive=pos, negative=neg)
    choices, rankings = select_task_features(cfg, tasks=[task], sae=sae, model=model, out=tmp_path, use_description=False)
    assert choices == {"zeds": {5: 1.0}} and rankings["zeds"].index[0] == 5
    from saets.core import RunPaths
    written = json.loads((RunPaths.for_config(cfg, tmp_path).artifacts / "task_features.json").read_text())
    assert written == {"config": "tiny", "zeds": {"5": 1.0}}
    from saets.tasks import load_chosen_features
    assert load_chosen_features(RunPaths.for_config(cfg, tmp_path).artifacts / "task_features.json", config="tiny")["zeds"]["features"] == {5: 1.0}
