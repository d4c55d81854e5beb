"""Fast tests of saets.effectvis' Python side: top-k lists, page data, HTML validity, errors."""
import json
import re
from html.parser import HTMLParser
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

from saets.core import MismatchError, NonFiniteError, SaetsError, ShapeError
from saets.effectvis import (
    FORMAT, ChunkedEffects, TopK, _clip_snippet, _decode_topk, _encode_topk, effects_from_approximator, effects_from_dataset,
    effectvis_data, feature_info, read_effectvis_data, render_effectvis_html, show_effectvis, synthetic_effectvis_inputs,
    topk_cosine, topk_effects, write_effectvis,
)


def brute_rows(E, k):
    return E.argsort(1, descending=True)[:, :k]


@pytest.mark.parametrize("n,k,chunk", [(1, 3, 1), (5, 10, 2), (33, 4, 8), (64, 7, 1000)])
def test_topk_effects_matches_brute_force(n, k, chunk):
    g = torch.Generator().manual_seed(n)
    E = torch.randn(n, n, generator=g)
    eff, act, seen = topk_effects(E, k, chunk_rows=chunk)
    kk = min(k, n)
    assert seen == n and eff.ids.shape == (n, kk) and act.ids.shape == (n, kk)
    assert torch.equal(eff.ids, brute_rows(E, kk))
    assert torch.allclose(eff.vals, E.sort(1, descending=True).values[:, :kk])
    assert torch.equal(act.ids, E.argsort(0, descending=True)[:kk].T)
    assert torch.allclose(act.vals, E.sort(0, descending=True).values[:kk].T)


def test_topk_effects_inputs_agree(tmp_path):
    """Tensor, numpy array, numpy memmap, a list of chunks and ChunkedEffects all give the same lists."""
    g = torch.Generator().manual_seed(1)
    E = torch.randn(40, 40, generator=g)
    ref = topk_effects(E, 6)
    mm = np.lib.format.open_memmap(tmp_path / "E.npy", mode="w+", dtype=np.float32, shape=(40, 40))
    mm[:] = E.numpy()
    inputs = [E.numpy(), mm, [E[:13], E[13:14], E[14:].numpy()], ChunkedEffects(lambda s, e: E[s:e], 40, 40, chunk_rows=9)]
    for x in inputs:
        got = topk_effects(x, 6, n_features=40, chunk_rows=5)
        assert torch.equal(got[0].ids, ref[0].ids) and torch.equal(got[1].ids, ref[1].ids) and got[2] == 40


def test_topk_effects_subset_rows():
    g = torch.Generator().manual_seed(2)
    E = torch.randn(12, 30, generator=g)
    ids = torch.randperm(30, generator=g)[:12]
    eff, act, seen = topk_effects(E, 5, effect_ids=ids, chunk_rows=5)
    assert seen == 12
    others = torch.ones(30, dtype=torch.bool)
    others[ids] = False
    assert (eff.ids[others] == -1).all() and eff.row(int(torch.nonzero(others)[0])) == []
    assert torch.equal(eff.ids[ids], brute_rows(E, 5))
    assert torch.equal(act.ids, ids[E.argsort(0, descending=True)[:5]].T)
    # fewer rows than k: action lists are as long as the number of rows
    eff, act, _ = topk_effects(E[:3], 5, effect_ids=ids[:3])
    assert act.ids.shape == (30, 3)


def test_topk_cosine_brute_force_and_edge_cases():
    g = torch.Generator().manual_seed(3)
    W = torch.randn(50, 12, generator=g)
    W[7] = 0                                                  # a dead feature: no NaN, similarity 0
    Wn = W / W.norm(dim=1, keepdim=True).clamp_min(1e-12)
    S = Wn @ Wn.T
    S.fill_diagonal_(-2)
    for chunk in (1, 16, 100):
        c = topk_cosine(W, 8, chunk_rows=chunk)
        live = torch.arange(50) != 7                           # row 7 is all ties (zeros): any order is right
        assert torch.equal(c.ids[live], S.argsort(1, descending=True)[:, :8][live])
        assert torch.isfinite(c.vals).all() and (c.vals[7] == 0).all() and 7 not in c.ids[7]
    assert topk_cosine(torch.randn(1, 4), 5).ids.shape == (1, 0)
    c = topk_cosine(torch.randn(3, 4), 5)
    assert c.ids.shape == (3, 2) and not (c.ids == torch.arange(3)[:, None]).any()
    sae = SimpleNamespace(W_dec=torch.nn.Parameter(W))       # an SAE-like object works, grads or not
    assert torch.equal(topk_cosine(sae, 8).ids, topk_cosine(W, 8).ids)


def test_effects_from_approximator_equals_formula():
    approx, W, _ = synthetic_effectvis_inputs(30, 8, seed=4)
    E = effects_from_approximator(approx, W, chunk_rows=7)
    assert E.shape == (30, 30) and len(list(E)) == 5
    ref = (W / W.norm(dim=1, keepdim=True)) @ approx.M + approx.b
    assert torch.allclose(E.dense(), ref, atol=1e-5)
    with pytest.raises(MismatchError, match="d_model=9"):
        effects_from_approximator(approx, torch.randn(30, 9))
    with pytest.raises(ShapeError, match="approximator M"):
        effects_from_approximator(SimpleNamespace(M=torch.randn(8, 30), b=torch.randn(29)), W)


def test_effects_from_dataset():
    Y = torch.arange(12.0).reshape(6, 2)
    ids = torch.tensor([5, 1, 5, 1, 9, 5])
    scales = torch.tensor([1.0, 1.0, 2.0, 2.0, 2.0, 2.0])
    E, eids = effects_from_dataset(Y, ids)
    assert eids.tolist() == [1, 5, 9]
    assert torch.allclose(E, torch.stack([Y[[1, 3]].mean(0), Y[[0, 2, 5]].mean(0), Y[4]]))
    E, eids = effects_from_dataset(Y, ids, scales, scale=2.0)
    assert eids.tolist() == [1, 5, 9] and torch.allclose(E[1], Y[[2, 5]].mean(0))
    with pytest.raises(SaetsError, match="scale 3.0"):
        effects_from_dataset(Y, ids, scales, scale=3.0)
    with pytest.raises(ShapeError, match="5 ids"):
        effects_from_dataset(Y, ids[:5])
    E, eids = effects_from_dataset(torch.zeros(0, 4), torch.zeros(0))
    assert E.shape == (0, 4) and eids.shape == (0,)


@pytest.mark.parametrize("n", [10, 70_000])
def test_encode_decode_roundtrip(n):
    g = torch.Generator().manual_seed(5)
    ids = torch.randint(0, n, (4, 3), generator=g)
    ids[2, 1:] = -1
    t = TopK(ids, torch.randn(4, 3, generator=g))
    d = _encode_topk(t, n)
    assert d["dtype"] == ("u16" if n < 65535 else "i32")
    # pretend these 4 rows are the whole table
    back = _decode_topk(d, 4)
    assert torch.equal(back.ids, ids)
    assert torch.allclose(back.vals[ids >= 0], t.vals[ids >= 0])
    assert back.row(2) == [(int(ids[2, 0]), pytest.approx(float(t.vals[2, 0])))]


class _Checker(HTMLParser):
    def __init__(self):
        super().__init__()
        self.stack, self.scripts, self.external = [], [], []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "script":
            self.scripts.append(a)
        for key in ("src", "href"):
            if a.get(key) and not a[key].startswith(("#", "data:")):
                self.external.append((tag, a[key]))
        if tag not in ("meta", "input", "br", "img", "link"):
            self.stack.append(tag)

    def handle_endtag(self, tag):
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes <{self.stack[-1] if self.stack else None}>"
        self.stack.pop()


def test_html_is_valid_and_self_contained(tmp_path):
    approx, W, df = synthetic_effectvis_inputs(25, 8, seed=6, neuronpedia_id="gemma-2-2b/12-gemmascope-res-16k")
    df.loc[3, "label"] = "</script><!-- <b>bold</b> & \u2028 \"quoted\""
    df.loc[4, "snippets"] = ["x" * 1000 + " «tok» " + "y" * 1000]
    p = write_effectvis(tmp_path / "ev", effects_from_approximator(approx, W), W, df, k=5, title="<T&T>")
    assert p == tmp_path / "ev" / "index.html"
    text = p.read_text(encoding="utf-8")
    c = _Checker()
    c.feed(text)
    c.close()
    assert c.stack == [], f"unclosed tags {c.stack}"
    assert not c.external, f"page references external resources: {c.external}"
    assert all("src" not in a for a in c.scripts) and len(c.scripts) == 5
    assert "<title>&lt;T&amp;T&gt;</title>" in text and "connect-src 'none'" in text
    blocks = dict(re.findall(r'<script type="application/json" id="ev-(\w+)">(.*?)</script>', text, flags=re.S))
    assert set(blocks) == {"meta", "labels", "info", "lists"}
    parsed = {name: json.loads(s) for name, s in blocks.items()}  # strict JSON (no NaN)
    assert parsed["labels"][3] == " ".join(df.loc[3, "label"].split())  # whitespace (incl. U+2028) collapsed
    assert parsed["meta"]["format"] == FORMAT and parsed["meta"]["n_features"] == 25
    assert parsed["info"]["urls"][7] == "https://www.neuronpedia.org/gemma-2-2b/12-gemmascope-res-16k/7"
    snip = parsed["info"]["snippets"][4][0]
    assert "«tok»" in snip and len(snip) < 260
    data = read_effectvis_data(tmp_path / "ev")
    E = effects_from_approximator(approx, W).dense()
    assert torch.equal(data["lists"]["effects"].ids, brute_rows(E, 5))
    assert torch.equal(data["lists"]["cosine"].ids, topk_cosine(W, 5).ids)
    assert not list(tmp_path.glob("ev/.*")), "temporary files left behind"


def test_labels_frame_variants():
    df = pd.DataFrame({"feature": [0, 2, 2], "label": ["a", "old", "  new\nlabel "], "density": [0.1, float("nan"), 0.3]})
    labs, info, notes = feature_info(df, 4)
    assert labs == ["a", "", "new label", ""] and info["density"] == [0.1, None, 0.3, None]
    assert "missing for 2 of 4" in notes[0] and "tokens" not in info and "urls" not in info
    labs, info, notes = feature_info(None, 3, densities=[0.5, 0.25, float("nan")], neuronpedia_id="m/1")
    assert labs == ["", "", ""] and info["density"] == [0.5, 0.25, None] and info["urls"][2] == "https://www.neuronpedia.org/m/1/2"
    assert "No feature labels" in notes[0]
    bad_url = pd.DataFrame({"label": ["x"], "neuronpedia_url": ["javascript:alert(1)"]}, index=pd.Index([0], name="feature"))
    assert feature_info(bad_url, 1)[1]["urls"] == [None]
    with pytest.raises(MismatchError, match=r"\[5\]"):
        feature_info(pd.DataFrame({"label": ["x"]}, index=[5]), 4)
    with pytest.raises(MismatchError, match="integer"):
        feature_info(pd.DataFrame({"label": ["x"]}, index=["a"]), 4)
    with pytest.raises(ShapeError, match="densities"):
        feature_info(None, 3, densities=[0.1])
    assert _clip_snippet("short «x»", 50) == "short «x»"
    s = _clip_snippet("a " * 200 + "«target»" + " b" * 200, 60)
    assert "«target»" in s and s.startswith("…") and s.endswith("…")


def test_missing_and_empty_data_still_make_a_page(tmp_path):
    _, W, df = synthetic_effectvis_inputs(20, 8, seed=7, missing_labels=0.25)
    for effects in (None, torch.zeros(0, 20), torch.empty(0), ChunkedEffects(lambda s, e: torch.zeros(e - s, 20), 0, 20)):
        d = effectvis_data(effects, W, df)
        assert d["meta"]["n_effect_rows"] == 0 and d["meta"]["has"]["effects"] is False and "effects" not in d["lists"]
        assert any("No effect data" in s for s in d["meta"]["notes"])
        assert any("missing for 5 of 20" in s for s in d["meta"]["notes"])
    d = effectvis_data(torch.zeros(0, 20), None, None)
    assert d["meta"]["has"] == {"effects": False, "actions": False, "cosine": False}
    assert render_effectvis_html(d).startswith("<!DOCTYPE html>")


@pytest.mark.parametrize("call,err,words", [
    (lambda E, W: effectvis_data(E, W[:10]), MismatchError, "disagree"),
    (lambda E, W: effectvis_data(E, W, n_features=21), MismatchError, "disagree"),
    (lambda E, W: effectvis_data(E[:5], W), ShapeError, "pass effect_ids"),
    (lambda E, W: effectvis_data([E[:15], E[15:], E[:3]], W), ShapeError, "more than 20 rows"),  # chunks beyond n
    (lambda E, W: effectvis_data(E[:3], W, effect_ids=[1, 2]), ShapeError, "2 effect_ids"),
    (lambda E, W: effectvis_data(E[:3], W, effect_ids=[1, 2, -1]), MismatchError, "[-1]"),
    (lambda E, W: effectvis_data(E[:2], W, effect_ids=[4, 4]), MismatchError, "repeat"),
    (lambda E, W: effectvis_data(E[:, :7], W), MismatchError, "7"),
    (lambda E, W: effectvis_data(torch.randn(20), W), ShapeError, "2-d"),
    (lambda E, W: effectvis_data(E, W.index_put((torch.tensor([2]), torch.tensor([1])), torch.tensor(float("inf")))),
     NonFiniteError, "row 2"),
    (lambda E, W: effectvis_data(ChunkedEffects(lambda s, e: E[s:e].index_fill(1, torch.tensor([3]), float("nan")), 20, 20, 8), W),
     NonFiniteError, "row 0"),
    (lambda E, W: effectvis_data(E, W, k=0), ShapeError, "k must be"),
    (lambda E, W: effectvis_data(None, None, None), ShapeError, "number of features"),
    (lambda E, W: effectvis_data(E, W, labels="labels"), SaetsError, "DataFrame"),
])
def test_bad_input(call, err, words):
    g = torch.Generator().manual_seed(8)
    with pytest.raises(err) as e:
        call(torch.randn(20, 20, generator=g), torch.randn(20, 8, generator=g))
    assert words in str(e.value)


def test_read_rejects_other_files(tmp_path):
    (tmp_path / "x.html").write_text("<html></html>")
    with pytest.raises(SaetsError, match="not an EffectVis page"):
        read_effectvis_data(tmp_path / "x.html")


def test_show_effectvis(tmp_path):
    pytest.importorskip("IPython")
    from IPython.display import HTML, IFrame
    _, W, df = synthetic_effectvis_inputs(10, 4, seed=9)
    p = write_effectvis(tmp_path, None, W, df, k=3)
    out = show_effectvis(p, height=300)
    assert isinstance(out, HTML) and "srcdoc=" in out.data and "&lt;script" in out.data
    out = show_effectvis(tmp_path, embed=False)
    assert isinstance(out, IFrame) and out.src.endswith("index.html")
    with pytest.raises(SaetsError, match="no EffectVis page"):
        show_effectvis(tmp_path / "nothing")
