"""Effect analysis (saets.analysis): effect/bias tables with missing labels, appendix E groups, writers."""
import math

import pandas as pd
import pytest
import torch

from saets.analysis import (NO_LABEL, bias_table, describe, effect_similarity_groups, effect_table,
                            predicted_effect_table, predicted_effects)
from saets.approximator import EffectApproximator
from saets.core import SaetsError, ShapeError, markdown_table, write_table


@pytest.fixture
def labels():
    return pd.DataFrame({"label": ["bos", None, "wedding"], "density": [0.42, 0.1, 0.002],
                         "top_tokens": [[], [], []], "snippets": [[], [], []], "neuronpedia_url": [None] * 3},
                        index=pd.Index([0, 2, 4], name="feature"))


def approx(d_model, d_sae, M=None, b=None):
    a = EffectApproximator(d_model, d_sae, seed=None)
    a.M.data = torch.zeros(d_model, d_sae) if M is None else torch.as_tensor(M, dtype=torch.float32)
    if b is not None:
        a.b.data = torch.as_tensor(b, dtype=torch.float32)
    return a


def test_describe_copes_with_missing(labels):
    assert describe(labels, 4) == ("wedding", 0.002)
    assert describe(labels, 2)[0] == NO_LABEL                        # None label
    lab, dens = describe(labels, 3)                                  # absent feature
    assert lab == NO_LABEL and math.isnan(dens)
    assert describe(None, 0)[0] == NO_LABEL
    assert describe(labels.drop(columns="density"), 0) == ("bos", describe(labels.drop(columns="density"), 0)[1])
    assert math.isnan(describe(labels.drop(columns="density"), 0)[1])


def test_effect_table_orders(labels):
    e = torch.tensor([0.5, -3.0, 2.0, 0.0, 1.0])
    assert effect_table(e, labels, k=2).feature.tolist() == [2, 4]
    assert effect_table(e, labels, k=1, order="bottom").act_diff.tolist() == [-3.0]
    t = effect_table(e, labels, k=3, order="abs")
    assert t.feature.tolist() == [1, 2, 4] and t.description.tolist() == [NO_LABEL, NO_LABEL, "wedding"]
    with pytest.raises(SaetsError, match="k must be"):
        effect_table(e, k=0)


def test_predicted_tables_and_bias(labels):
    a = approx(2, 5, M=[[0, 0, 0, 0, 3.0], [0, 1.0, 0, 0, 0]], b=[0.9, 0, -0.2, 0, 0.05])
    assert torch.allclose(predicted_effects(a, torch.tensor([0.0, -4.0])), torch.tensor([0.9, -1.0, -0.2, 0, 0.05]))
    t = predicted_effect_table(a, torch.tensor([2.0, 0.0]), labels, k=2)
    assert t.feature.tolist() == [4, 0] and t.pred_act_diff.tolist()[0] == pytest.approx(3.05)
    bt = bias_table(a, labels, k=3)
    assert bt.feature.tolist() == [0, 2, 4] and bt.value.tolist() == pytest.approx([0.9, -0.2, 0.05])
    assert bt.description.tolist()[0] == "bos" and bt.density.tolist()[0] == 0.42
    with pytest.raises(ShapeError, match="d_model=2"):
        predicted_effects(a, torch.zeros(3))
    with pytest.raises(SaetsError, match="zero vector"):
        predicted_effects(a, torch.zeros(2))


def test_similarity_groups_effect_vs_decoder():
    g = torch.Generator().manual_seed(3)
    W = torch.randn(20, 8, generator=g)
    W[[2, 5]] = W[0] + 0.05 * torch.randn(2, 8, generator=g)          # decoder neighbours of 0
    E = torch.randn(20, 50, generator=g)
    E[[7, 9]] = E[0] + 0.05 * torch.randn(2, 50, generator=g)         # effect neighbours of 0
    E[11] = E[0]; W[11] = W[0]                                         # neighbour by both
    sg = effect_similarity_groups(E, W, 0, k=3)
    assert sg.counts == {"effect_only": 2, "decoder_only": 2, "both": 1}
    assert sg.table.feature.tolist()[0] == 11 and sg.table.group.tolist()[0] == "both"
    assert set(sg.table.feature) == {2, 5, 7, 9, 11}


def test_similarity_groups_from_approximator():
    # M maps decoder row j to the effect of feature (j mod 4): features with equal j mod 4 share effects
    d_model = 12
    W = torch.eye(d_model)
    M = torch.zeros(d_model, 4)
    for j in range(d_model):
        M[j, j % 4] = 1.0
    a = approx(d_model, 4, M=M, b=[0.0, 0.0, 0.0, 0.0])
    sg = effect_similarity_groups(a, W, 1, k=2)
    assert set(sg.table.query("group != 'decoder'").feature) == {5, 9}
    assert sg.table.set_index("feature").loc[5, "effect_cos"] == pytest.approx(1.0)
    assert sg.table.set_index("feature").loc[5, "decoder_cos"] == pytest.approx(0.0)


def test_writers(tmp_path, labels):
    t = effect_table(torch.tensor([1.5, 0.0, 0.25, 0.0, 3.0]), labels, k=3)
    md = markdown_table(t)
    assert md.splitlines()[2] == "| 3.0000 | 4 | wedding | 0.2% |"
    assert md.splitlines()[3] == "| 1.5000 | 0 | bos | 42% |"
    paths = write_table(t, tmp_path / "tables", "t", floatfmt=".2f")
    assert pd.read_csv(paths["csv"]).feature.tolist() == [4, 0, 2]
    assert "| 3.00 | 4 | wedding |" in paths["md"].read_text()
    assert not list((tmp_path / "tables").glob(".*tmp"))
