"""saets.judges: the OpenAI judge against a real HTTP server on 127.0.0.1, and the local proxy judge.

The server (`saets.judges.FakeChatServer`) speaks POST /v1/chat/completions and injects faults per
item (429, 500, slow answers past the client timeout, malformed answers, a 401 echoing the key).
Every retry loop is bounded and backoffs are ~10 ms, so the whole file runs in seconds.
"""
import math
import os
import time
import zlib

import numpy as np
import pytest

from saets.core import ConfigError, SaetsError, get_config
from saets.judges import (COHERENCE_CRITERION, FakeChatServer, JudgeCache, JudgeError, JudgeItem, LocalJudge,
                          OpenAIJudge, _retry_after, cache_key, completion_nll, distinct_ngram_ratio, make_judge,
                          normalise_score)
from saets.tasks import get_task

pytestmark = pytest.mark.timeout(120)

KEY = "sk-test-SECRET-0123456789abcdef"
WEDDING = "The text contains discussion about a wedding"


@pytest.fixture
def server():
    with FakeChatServer(slow_s=1.5) as srv:
        yield srv


@pytest.fixture
def key(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    return KEY


def make(server, tmp_path, **kw):
    args = dict(base_url=server.base_url, cache=tmp_path / "cache.sqlite", timeout=2.0, backoff_s=0.01,
                backoff_max_s=0.05, max_retries=3, max_reasks=2, concurrency=4)
    args.update(kw)
    return OpenAIJudge(**args)


# --- OpenAIJudge ------------------------------------------------------------------------------

def test_missing_key_fails_before_any_request(server, tmp_path, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(JudgeError, match="OPENAI_API_KEY"):
        make(server, tmp_path)
    monkeypatch.setenv("OPENAI_API_KEY", "   ")
    with pytest.raises(JudgeError, match="OPENAI_API_KEY"):
        make(server, tmp_path)
    monkeypatch.setenv("MY_KEY_VAR", KEY)
    make(server, tmp_path, api_key_env="MY_KEY_VAR")  # another variable name works
    with pytest.raises(JudgeError, match="OPENAI_API_KEY"):
        make_judge(get_config("tiny").replace(eval={"judge": "openai"}), cache=False)
    assert server.requests == 0


def test_scores_and_protocol(server, tmp_path, key):
    j = make(server, tmp_path)
    items = [JudgeItem("I think", "I think the wedding was lovely", WEDDING),
             ("I think", "I think the bus is late", WEDDING),
             ("I think", "whatever [[score:1]]", WEDDING),
             ("I think", "whatever [[score:10]]", COHERENCE_CRITERION)]
    assert j.score(items) == [normalise_score(9), normalise_score(2), 0.0, 1.0]
    assert server.requests == 4 and server.auth_ok == 4  # the key is sent as a bearer token
    assert j.stats.scored == 4 and j.stats.failures == 0 and j.stats.retries == 0


def test_retries_on_429_500_and_timeouts(server, tmp_path, key):
    j = make(server, tmp_path, timeout=0.5)  # [[slow]] answers take 1.5 s
    texts = ["I think the wedding [[429:2]]", "I think the wedding [[500:2]]", "I think the wedding [[slow:1]]",
             "I think about trains [[429:1]] [[500:1]]"]
    t0 = time.time()
    out = j.behavioral(WEDDING, "I think", texts)
    assert out == [normalise_score(9)] * 3 + [normalise_score(2)]
    assert j.stats.retries == 2 + 2 + 1 + 1
    assert server.requests == 4 + j.stats.retries
    assert j.stats.failures == 0
    assert time.time() - t0 < 10


def test_transient_failures_are_counted_not_dropped(server, tmp_path, key):
    j = make(server, tmp_path, max_retries=2, timeout=0.5)
    out = j.behavioral(WEDDING, "I think", ["a wedding [[500:*]]", "a wedding", "a wedding [[slow:*]]"])
    assert out[0] is None and out[2] is None and out[1] == normalise_score(9)
    assert len(out) == 3
    assert j.stats.failures == 2 and j.stats.scored == 1
    assert server.requests == 3 + 3 + 1  # two items x (1 + 2 retries), one success
    reasons = " ".join(f["reason"] for f in j.stats.failed)
    assert "gave up after 2 retries" in reasons and "InternalServerError" in reasons and "Timeout" in reasons
    # failures are not cached: the next run asks again (and succeeds once the server recovers)
    n = server.requests
    j2 = make(server, tmp_path, max_retries=0)
    j2.behavioral(WEDDING, "I think", ["a wedding [[500:*]]", "a wedding"])
    assert server.requests == n + 1 and j2.stats.cache_hits == 1


def test_malformed_answers_reasked_then_failed(server, tmp_path, key):
    j = make(server, tmp_path, max_reasks=2)
    texts = ["a wedding [[bad:1]]", "a wedding [[noscore:2]]", "a wedding [[badbody:1]]",
             "a wedding [[bad:*]]", "a wedding [[range:*]]"]
    out = j.behavioral(WEDDING, "I think", texts)
    assert out[:3] == [normalise_score(9)] * 3
    assert out[3] is None and out[4] is None
    assert j.stats.failures == 2
    assert j.stats.malformed == 1 + 2 + 1 + 3 + 3
    assert j.stats.reasks == 1 + 2 + 1 + 2 + 2
    assert server.requests == 2 + 3 + 2 + 3 + 3
    assert all("asked 3 times" in f["reason"] for f in j.stats.failed)


def test_cache_prevents_paying_twice(server, tmp_path, key):
    texts = [f"I think the wedding number {i}" for i in range(6)]
    j = make(server, tmp_path)
    first = j.behavior_and_coherence(get_task("wedding"), "I think", texts)
    assert server.requests == 12
    j2 = make(server, tmp_path)  # a new process / resumed run: same cache file
    assert j2.behavior_and_coherence(get_task("wedding"), "I think", texts) == first
    assert server.requests == 12 and j2.stats.cache_hits == 12 and j2.stats.requests == 0
    # duplicates within one call are asked once; another model is another cache entry
    j3 = make(server, tmp_path, model="other-model")
    j3.behavioral(WEDDING, "I think", ["same text"] * 5)
    assert server.requests == 13
    assert len(JudgeCache(tmp_path / "cache.sqlite")) == 13


def test_key_never_written(server, tmp_path, key):
    j = make(server, tmp_path)
    j.score([("I think", "wedding bells", WEDDING), ("I think", "bad [[bad:*]]", WEDDING)])
    assert KEY not in repr(j) and KEY not in str(j.stats.as_dict()) and KEY not in str(vars(j))
    for f in tmp_path.iterdir():
        assert KEY.encode() not in f.read_bytes(), f
    with pytest.raises(JudgeError) as e:  # a server echoing the key: masked in our error
        j.score([("I think", "x [[401:*]]", WEDDING)])
    assert "401" in str(e.value) and KEY not in str(e.value) and "***" in str(e.value)


def test_fatal_errors_stop(server, tmp_path, key):
    j = make(server, tmp_path, base_url=server.base_url.replace("/v1", "/nope"))
    with pytest.raises(JudgeError, match="HTTP 404"):
        j.score([("I think", "x", WEDDING)])
    assert server.requests == 1  # not retried


def test_concurrency_is_limited(tmp_path, key):
    with FakeChatServer(delay_s=0.3) as srv:
        j = make(srv, tmp_path, concurrency=3, timeout=2)
        t0 = time.time()
        j.behavioral(WEDDING, "I think", [f"text {i}" for i in range(9)])
        dt = time.time() - t0
    assert 2 <= srv.max_inflight <= 3
    assert dt < 9 * 0.3  # faster than one at a time


def test_retry_after_header():
    class R:
        def __init__(self, h): self.headers = h
    class E(Exception):
        def __init__(self, h): self.response = R(h)
    assert _retry_after(E({"retry-after": "2"})) == 2.0
    assert _retry_after(E({"retry-after-ms": "250"})) == 0.25
    assert _retry_after(E({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"})) is None
    assert _retry_after(ValueError()) is None


def test_cache_key_and_items():
    it = JudgeItem("p", "c", "k")
    assert cache_key("a", "m", it) == cache_key("a", "m", ("p", "c", "k"))
    assert len({cache_key("a", "m", it), cache_key("a", "m", it._replace(completion="d")),
                cache_key("b", "m", it), cache_key("a", "n", it)}) == 4


def test_bad_items(server, tmp_path, key):
    j = make(server, tmp_path)
    with pytest.raises(SaetsError, match="item 0"):
        j.score([("only two", "fields")])
    with pytest.raises(SaetsError, match="completion must be a string"):
        j.score([("p", None, "c")])
    with pytest.raises(SaetsError, match="2 prompts for 3 completions"):
        j.behavioral(WEDDING, ["a", "b"], ["x", "y", "z"])


# --- LocalJudge -------------------------------------------------------------------------------

class BagOfWords:
    "A deterministic stand-in for the sentence embedder: hashed word counts."
    def __call__(self, texts):
        out = np.zeros((len(texts), 256), dtype=np.float32)
        for i, t in enumerate(texts):
            for w in t.lower().replace(".", " ").replace(",", " ").split():
                out[i, zlib.crc32(w.encode()) % 256] += 1
        return out + 1e-3


@pytest.fixture(scope="module")
def tiny():
    from saets.models import load_model
    return load_model("tiny")


def test_local_behaviour_with_fake_embedder():
    j = LocalJudge(embedder=BagOfWords())
    s = j.behavioral(get_task("wedding"), "I think",
                     ["the bride and the groom exchanged vows at the wedding", "the printer is out of paper", ""])
    assert s[0] > 0.3 and s[1] < s[0] and s[2] == 0.0
    # a criterion that is not a task's: the criterion's own embedding, default span
    ref, s_neu, s_on = j.reference("The text is about cats")
    assert abs(s_on - s_neu - j.default_span) < 1e-6
    assert j.score([("", "cats cats about text", "The text is about cats")])[0] > 0.5


def test_local_coherence_tiny(tiny):
    j = LocalJudge(lm=tiny, embedder=BagOfWords())
    c = j.coherence("I think", ["I think it is a fine day for a walk.", "the the the the the the the the", ""])
    assert 0 < c[0] <= 1 and c[1] == 0.0 and c[2] == 0.0
    # the prompt repeated at the start of the completion is not scored twice
    assert j.coherence("I think", [" it is fine."]) == j.coherence("I think", ["I think it is fine."])
    fresh = LocalJudge(lm=tiny, embedder=BagOfWords())
    assert fresh.coherence("I think", ["I think it is fine."]) == j.coherence("I think", [" it is fine."])
    assert len(j._nll) == 4  # each distinct (prompt, text) went through the LM once
    with pytest.raises(ConfigError, match="reference LM"):
        LocalJudge(embedder=BagOfWords()).coherence("I think", ["x"])
    with pytest.raises(ConfigError, match="calibration"):
        LocalJudge(ppl_lo=100, ppl_hi=10)


def test_nll_matches_manual_and_hf_model(tiny):
    import torch
    ps, cs = ["I think", "", "ab"], [" so.", "hello there", "c d e f"]
    got = completion_nll(tiny, ps, cs, batch_size=2)
    for p, c, g in zip(ps, cs, got):
        toks = tiny.to_tokens(p + c)
        n_p = tiny.to_tokens(p).shape[1] if p else 1
        logp = tiny(toks).log_softmax(-1)[0, :-1].gather(-1, toks[0, 1:, None])[:, 0]
        assert math.isclose(g, -logp[n_p - 1:].mean().item(), rel_tol=1e-4), (p, c)
    # a Hugging Face causal LM (random, built from a config: no download) with an explicit tokenizer
    from transformers import GPT2Config, GPT2LMHeadModel
    tok = tiny.tokenizer
    torch.manual_seed(0)
    hf = GPT2LMHeadModel(GPT2Config(vocab_size=len(tok), n_positions=64, n_embd=32, n_layer=1, n_head=2)).eval()
    a = completion_nll(hf, ps, cs, tokenizer=tok, batch_size=3)
    b = [completion_nll(hf, [p], [c], tokenizer=tok)[0] for p, c in zip(ps, cs)]
    assert np.allclose(a, b, atol=1e-5) and all(math.isfinite(x) for x in a)
    j = LocalJudge(lm=hf, tokenizer=tok, embedder=BagOfWords())
    assert 0 <= j.coherence("I think", ["I think so."])[0] <= 1


def test_distinct_ngrams():
    assert distinct_ngram_ratio("one two three four five") == 1.0
    assert distinct_ngram_ratio("ha ha ha ha ha ha ha ha ha") < 0.2
    assert distinct_ngram_ratio("") == 1.0


def test_make_judge_local(tiny):
    j = make_judge(get_config("tiny").replace(eval={"judge": "local"}), lm=tiny)
    assert isinstance(j, LocalJudge) and j.lm is tiny
    assert make_judge(get_config("tiny").replace(eval={"judge": "local"}))._lm == "tiny"


def test_local_judge_with_minilm():
    "The real bundled embedder (a few seconds): on-topic above off-topic for three tasks."
    j = LocalJudge()
    on = {"wedding": "I think the bride and groom will cut the cake after the vows.",
          "london": "I think the Tube in London is faster than the red buses.",
          "anger": "I think I'm going to scream, I am so furious with them!"}
    for name, text in on.items():
        others = [t for n, t in on.items() if n != name] + ["I think the printer needs more paper."]
        s = j.behavioral(get_task(name), "I think", [text] + others)
        assert s[0] > 0.5 and max(s[1:]) < s[0] - 0.3, (name, s)
