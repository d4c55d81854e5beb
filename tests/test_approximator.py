"""Effect approximator (saets.approximator): fits recover a known map, metrics, save/load, input checks."""
import json
import math

import pytest
import torch

from saets.approximator import (EffectApproximator, check_effect_data, effect_metrics, evaluate, fit_adam,
                                fit_approximator, fit_ridge, run_metadata)
from saets.core import ApproxSpec, MismatchError, NonFiniteError, SaetsError, ShapeError, get_config


def synthetic(n=400, d_model=12, d_sae=30, noise=0.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d_model, generator=g)
    X = X / X.norm(dim=1, keepdim=True)
    M = torch.randn(d_model, d_sae, generator=g)
    b = torch.randn(d_sae, generator=g)
    return X, X @ M + b + noise * torch.randn(n, d_sae, generator=g), M, b


def test_ridge_noise_free_is_exact():
    X, Y, M, b = synthetic()
    a = fit_ridge(X, Y, lam=0.0, n_val=50)
    assert (a.M - M).abs().max() < 1e-4 and (a.b - b).abs().max() < 1e-4
    assert a.metadata["method"] == "ridge" and a.metadata["n_train"] == 350
    assert a.metadata["metrics"]["r2"] > 1 - 1e-8 and a.metadata["metrics"]["n"] == 50


def test_ridge_shrinks_with_lambda_and_keeps_bias_unpenalised():
    X, Y, M, b = synthetic(noise=0.01)
    small, big = fit_ridge(X, Y, lam=1e-3, n_val=0), fit_ridge(X, Y, lam=1e6, n_val=0)
    assert big.M.norm() < 1e-2 * small.M.norm()
    # with M shrunk to ~0, the unpenalised bias is the mean effect
    assert torch.allclose(big.b, Y.mean(0), atol=1e-2)


def test_ridge_primal_dual_agree():
    X, Y, _, _ = synthetic(n=25, d_model=40, d_sae=7, noise=0.1)
    p = fit_ridge(X, Y, lam=0.3, n_val=5, form="primal")
    d = fit_ridge(X, Y, lam=0.3, n_val=5)
    assert d.metadata["training"]["form"] == "dual"
    assert torch.allclose(p.M, d.M, atol=1e-5) and torch.allclose(p.b, d.b, atol=1e-5)


def test_adam_close_with_more_epochs_and_reproducible():
    X, Y, M, b = synthetic()
    a = fit_adam(X, Y, n_val=50, epochs=60, lr=5e-2, progress=False)
    err = (a.M - M).abs()
    assert err.max() < 0.1 and err.mean() < 1e-2 and (a.b - b).abs().max() < 0.05
    assert a.metadata["metrics"]["r2"] > 0.9999
    assert [h["epoch"] for h in a.metadata["history"]] == list(range(1, 61))
    spec = ApproxSpec(epochs=2, n_val=50, seed=3)
    a1, a2 = fit_approximator(X, Y, spec, progress=False), fit_approximator(X, Y, spec, progress=False)
    assert torch.equal(a1.M, a2.M) and a1.metadata["training"]["seed"] == 3
    assert not torch.equal(a1.M, fit_approximator(X, Y, spec.replace(seed=4), progress=False).M)


def test_paper_settings_are_the_defaults():
    s = ApproxSpec()
    assert (s.lr, s.epochs, s.batch_size, s.n_val) == (2e-4, 15, 64, 100)
    a = EffectApproximator(10, 1000, seed=0)
    bound = math.sqrt(6 / 1000)        # kaiming_uniform_ on [d_model, d_sae]: fan-in = d_sae
    assert a.M.abs().max() <= bound and a.M.abs().max() > 0.9 * bound and (a.b == 0).all()


def test_metrics_known_cases():
    g = torch.Generator().manual_seed(1)
    Y = torch.randn(30, 5, generator=g)
    assert effect_metrics(Y, Y)["r2"] == pytest.approx(1.0)
    assert effect_metrics(Y.mean(0).expand_as(Y), Y)["r2"] == pytest.approx(0.0, abs=1e-9)
    m = effect_metrics(2 * Y, Y)       # a scaled prediction: perfect correlation and cosine, MSE = mean(Y^2)
    assert m["mean_feature_corr"] == pytest.approx(1.0) and m["mean_cosine"] == pytest.approx(1.0)
    assert m["mse"] == pytest.approx(float((Y.double() ** 2).mean()))


def test_input_checks():
    X, Y, _, _ = synthetic(n=20)
    with pytest.raises(SaetsError, match="not unit norm"):
        check_effect_data(X * 1.5, Y)
    X0 = X.clone(); X0[2] = 0
    with pytest.raises(SaetsError, match="zero"):
        fit_ridge(X0, Y, n_val=2)
    Xn = X.clone(); Xn[1, 1] = float("inf")
    with pytest.raises(NonFiniteError, match="steering vectors X"):
        fit_adam(Xn, Y, n_val=2, progress=False)
    with pytest.raises(ShapeError, match="20 steering vectors but 19"):
        fit_adam(X, Y[:19], n_val=2, progress=False)
    with pytest.raises(ShapeError, match=r"\[n, d_sae\]"):
        fit_ridge(X, Y[0], n_val=2)
    a = fit_ridge(X, Y, n_val=2)
    with pytest.raises(ShapeError, match="d_model=12"):
        a.predict(torch.randn(13))
    with pytest.raises(MismatchError, match="d_sae=31"):
        evaluate(a, X, torch.zeros(20, 31))


def test_save_load_and_width_mismatch(tmp_path):
    cfg = get_config("tiny")
    X, Y, _, _ = synthetic(n=60, d_model=cfg.model.d_model, d_sae=cfg.measure_sae.train.d_sae)
    a = fit_ridge(X, Y, n_val=10, metadata=run_metadata(cfg))
    p = a.save(tmp_path / "approximator")
    assert p.name == "approximator.safetensors"
    meta = json.loads(p.with_suffix(".json").read_text())
    assert meta["config"] == "tiny" and meta["measure_sae"]["width"] == 128 and meta["d_sae"] == 128
    b = EffectApproximator.load(p, expected_d_sae=128, expected_d_model=64)
    assert torch.equal(a.M, b.M) and torch.equal(a.b, b.b) and b.metadata["metrics"] == a.metadata["metrics"]
    assert torch.equal(a.predict(X[:3]), b.predict(X[:3]))
    with pytest.raises(MismatchError, match="predicts 128 SAE features but the SAE has d_sae=256"):
        EffectApproximator.load(p, expected_d_sae=256)
