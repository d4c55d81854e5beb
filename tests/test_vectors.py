"""Steering vector builders (saets.vectors): hand-worked cases, rotation orientation, CAA, errors."""
import math

import pytest
import torch

from saets.approximator import EffectApproximator
from saets.core import MismatchError, NonFiniteError, SaetsError, get_config
from saets.vectors import (METHODS, bias_direction, build_vectors, caa_vector, fit_rotation, load_vectors,
                           pinv_vector, rotation_vector, sae_decoder_vector, sae_ts_vector, save_vectors,
                           target_vector)


def approx_from(M, b):
    M, b = torch.as_tensor(M), torch.as_tensor(b)
    a = EffectApproximator(M.shape[0], M.shape[1], seed=None)
    a.M.data = torch.as_tensor(M, dtype=torch.float32)
    a.b.data = torch.as_tensor(b, dtype=torch.float32)
    return a


@pytest.fixture
def toy():
    # M = [[1, 0, 2], [0, 1, 2]], b = (1, -1, 0.5): M b = (2, 0)
    return approx_from([[1.0, 0.0, 2.0], [0.0, 1.0, 2.0]], [1.0, -1.0, 0.5])


def test_eq3_by_hand(toy):
    r = 1 / math.sqrt(2)
    assert torch.allclose(sae_ts_vector(toy, 1), torch.tensor([-r, r]), atol=1e-6)
    # feature 2 with lam = 1: unit(M_2) - unit(Mb) = (r - 1, r)
    n = math.hypot(r - 1, r)
    assert torch.allclose(sae_ts_vector(toy, 2), torch.tensor([(r - 1) / n, r / n]), atol=1e-6)
    # weighted targets {0: 2, 1: 1}: M t = (2, 1); unit = (2, 1)/sqrt5; minus (1, 0)
    s = torch.tensor([2 / math.sqrt(5) - 1, 1 / math.sqrt(5)])
    assert torch.allclose(sae_ts_vector(toy, {0: 2.0, 1: 1.0}), s / s.norm(), atol=1e-6)
    assert torch.allclose(bias_direction(toy), torch.tensor([1.0, 0.0]))


def test_pinv_by_hand(toy):
    x = pinv_vector(toy, 2, normalize=False)
    assert torch.allclose(x, torch.tensor([-8 / 9, 10 / 9]), atol=1e-6)
    assert torch.allclose(pinv_vector(toy, 2), x / x.norm(), atol=1e-6)
    # weighted target: t/|t| for {0: 3, 1: 4} = (0.6, 0.8, 0); minus b = (-0.4, 1.8, -0.5)
    pinv = torch.tensor([[5.0, -4.0], [-4.0, 5.0], [2.0, 2.0]]) / 9
    expect = torch.tensor([-0.4, 1.8, -0.5]) @ pinv
    assert torch.allclose(pinv_vector(toy, {0: 3.0, 1: 4.0}, normalize=False), expect, atol=1e-6)


def test_sae_decoder_vector():
    W = torch.tensor([[2.0, 0.0, 0.0], [0.0, 0.0, 5.0]])
    assert torch.allclose(sae_decoder_vector(W, {0: 1.0, 1: 1.0}), torch.tensor([1.0, 0.0, 1.0]) / math.sqrt(2))
    assert torch.allclose(sae_decoder_vector(W, 1), torch.tensor([0.0, 0.0, 1.0]))


def test_target_errors(toy):
    with pytest.raises(SaetsError, match="feature id 5 is out of range for d_sae=3"):
        sae_ts_vector(toy, 5)
    with pytest.raises(SaetsError, match="empty"):
        pinv_vector(toy, [])
    with pytest.raises(NonFiniteError, match="weight of feature 0 is inf"):
        sae_ts_vector(toy, {0: float("inf")})
    with pytest.raises(SaetsError, match="zero"):
        sae_decoder_vector(torch.zeros(3, 2), 0)
    assert target_vector({2: 0.5, 0: 0.25}, 3).tolist() == [0.25, 0.0, 0.5]
    assert target_vector(torch.tensor(1), 3).tolist() == [0.0, 1.0, 0.0]


def exact_rotation(d_model=6, d_sae=40, seed=0):
    g = torch.Generator().manual_seed(seed)
    W = torch.randn(d_sae, d_model, generator=g, dtype=torch.float64)
    Q, _ = torch.linalg.qr(torch.randn(d_model, d_model, generator=g, dtype=torch.float64))
    Wn = W / W.norm(dim=1, keepdim=True)
    M = (Wn @ Q).T * torch.linspace(0.2, 3.0, d_sae, dtype=torch.float64)   # column j = |M_j| * unit(d_j) Q
    return approx_from(M, torch.randn(d_sae, generator=g)), W.float(), Q


def test_rotation_maps_decoder_rows_to_M_columns():
    a, W, Q = exact_rotation()
    assert torch.allclose(fit_rotation(a, W), Q, atol=1e-5)
    for i in range(a.d_sae):
        Mi = a.M[:, i] / a.M[:, i].norm()
        assert torch.allclose(rotation_vector(a, W, i, lam=0.0), Mi, atol=1e-5)
        assert torch.allclose(rotation_vector(a, W, i), sae_ts_vector(a, i), atol=1e-5)


def test_rotation_for_features_of_another_sae():
    a, W, Q = exact_rotation()
    W2 = torch.randn(90, 6, generator=torch.Generator().manual_seed(9))          # a wider SAE, same layer
    v = rotation_vector(a, W2, 17, lam=0.0, W_dec_fit=W)
    u = W2[17].double() / W2[17].double().norm()
    assert torch.allclose(v, (u @ Q).float(), atol=1e-5)
    with pytest.raises(MismatchError, match="W_dec_fit"):
        rotation_vector(a, W2, 17)
    with pytest.raises(MismatchError, match="same layer"):
        rotation_vector(a, torch.randn(90, 7), 1, W_dec_fit=W)


@pytest.fixture(scope="module")
def tiny():
    from saets.models import load_model
    cfg = get_config("tiny")
    return load_model(cfg), cfg.hook_name


def test_caa_matches_run_with_cache(tiny):
    model, hook = tiny
    pos, neg = ["wedding bells", "", "a bride"], ["spreadsheet rows", "tax"]

    def mean_of(prompts):
        means = []
        for p in prompts:
            toks = model.to_tokens(p) if p else torch.tensor([[model.tokenizer.bos_token_id]])
            _, cache = model.run_with_cache(toks, names_filter=hook)
            means.append(cache[hook][0].mean(0))
        return torch.stack(means).mean(0)

    v = mean_of(pos) - mean_of(neg)
    assert torch.allclose(caa_vector(model, hook, pos, neg), v / v.norm(), atol=1e-5)


def test_build_vectors_and_io(tiny, tmp_path):
    model, hook = tiny
    a, W, _ = exact_rotation(d_model=model.cfg.d_model, d_sae=80)
    vs = build_vectors(a, {3: 0.5, 4: 0.5}, W, model=model, hook_name=hook, positive=["a"], negative=["b"])
    assert tuple(vs) == METHODS
    assert all(v.dtype == torch.float32 and abs(float(v.norm()) - 1) < 1e-5 for v in vs.values())
    only = build_vectors(a, 3, W, methods=["sae_ts", "rotation"])
    assert set(only) == {"sae_ts", "rotation"} and torch.allclose(only["sae_ts"], only["rotation"], atol=1e-5)
    with pytest.raises(MismatchError, match="d_sae=81"):
        build_vectors(a, 3, torch.randn(81, model.cfg.d_model), methods=["sae"])
    p = save_vectors(tmp_path / "v.safetensors", {"love": vs})
    back = load_vectors(p)
    assert all(torch.equal(back["love"][m], vs[m]) for m in METHODS)
