"""Benchmark: steered sampled generation on the embedded model, saets vs HF `generate`.

Batch 64 x 32 new tokens, Gemma-3-270m (float32, CPU), one steering vector added at layer 9 at
every position. (a) `saets.steering.generate` on the HookedTransformer; (b) HF `generate` with a
plain torch forward hook on the same weights. Same batch, same sampling settings (top_k 50,
top_p 0.3, T 1), same thread count, interleaved repeats in one run; the report is the ratio of
medians (a speed claim is a ratio measured in one run, never an absolute time).

    python bench/steered_generation.py [--batch 64] [--new 32] [--repeats 3] [--out bench/results]
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from saets.core import get_config
from saets.models import load_hf_model, load_model
from saets.steering import generate


def hf_generate(hf, toks, vector, scale, layer, new):
    def hook(module, args, output):
        if isinstance(output, tuple):
            return (output[0] + scale * vector,) + tuple(output[1:])
        return output + scale * vector
    h = hf.model.layers[layer].register_forward_hook(hook)
    try:
        return hf.generate(toks, attention_mask=torch.ones_like(toks), do_sample=True, top_k=50, top_p=0.3,
                           temperature=1.0, max_new_tokens=new, min_new_tokens=new, pad_token_id=0)
    finally:
        h.remove()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--new", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--scale", type=float, default=2000.0)
    ap.add_argument("--out", default="bench/results")
    args = ap.parse_args()
    cfg = get_config("gemma-3-270m")
    torch.manual_seed(0)
    model = load_model(cfg)
    hf, _ = load_hf_model(cfg.model)
    v = torch.randn(model.cfg.d_model)
    v /= v.norm()
    toks = model.to_tokens("I think").expand(args.batch, -1).contiguous()
    ntok = args.batch * args.new

    def ours():
        g = generate(model, toks, n=args.batch, max_new_tokens=args.new, hook_name=cfg.hook_name, vectors=v,
                     scales=args.scale, seeds=0, stop_at_eos=False)
        assert g.tokens.shape == (args.batch, toks.shape[1] + args.new)

    def theirs():
        out = hf_generate(hf, toks, v, args.scale, cfg.layer, args.new)
        assert out.shape == (args.batch, toks.shape[1] + args.new)

    times = {"saets": [], "hf": []}
    ours(); theirs()  # warm-up
    for _ in range(args.repeats):
        for name, fn in (("saets", ours), ("hf", theirs)):
            t0 = time.perf_counter(); fn(); times[name].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in times.items()}
    res = {"batch": args.batch, "new_tokens": args.new, "threads": torch.get_num_threads(),
           "seconds": times, "median_s": med,
           "tokens_per_s": {k: ntok / v for k, v in med.items()},
           "ratio_saets_over_hf_throughput": med["hf"] / med["saets"]}
    out = Path(args.out); out.mkdir(parents=True, exist_ok=True)
    (out / "steered_generation.json").write_text(json.dumps(res, indent=2))
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
