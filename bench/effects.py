"""Benchmark: feature effects of the same 32 vectors on the embedded model, batched vs one at a time.

(a) saets' batched path: `saets.effects.mean_activations`, one vector per batch row (8 vectors x
    R rollouts per batch of 64), per-rollout seeds, our sampling loop with a KV cache.
(b) a faithful one-vector-at-a-time loop as the authors' code did it: for each vector and prompt,
    TransformerLens `HookedTransformer.generate` (top_k 50, top_p 0.3, no EOS stop) with the
    steering hook, then the same unsteered re-encoding and SAE.
(c) for reference, HF `generate` with a torch hook on one batch of the same shape as (a).
Same vectors, scales, prompts, rollout counts and lengths; interleaved in one run; the report is
the ratio of wall times and tokens/s of each. Uses a random SAE of the measurement width (the
SAE's cost is negligible next to generation), so it needs no trained SAE.

    python bench/effects.py [--vectors 32] [--rollouts 8] [--prompts 2] [--len 24]
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from sae_lens import JumpReLUSAE, JumpReLUSAEConfig
from sae_lens.saes.sae import SAEMetadata

from saets.core import get_config
from saets.effects import encode_rollouts, mean_activations
from saets.models import load_hf_model, load_model


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--vectors", type=int, default=32)
    ap.add_argument("--rollouts", type=int, default=8)
    ap.add_argument("--prompts", type=int, default=2)
    ap.add_argument("--len", type=int, default=24)
    ap.add_argument("--scale", type=float, default=200.0)
    ap.add_argument("--out", default="bench/results")
    a = ap.parse_args()
    prompts = ["I think", "Breaking news", "Last night", "The best way to"][: a.prompts]
    cfg = get_config("gemma-3-270m").replace(effects={"prompts": prompts, "rollout_len": a.len, "rollouts_per_prompt": a.rollouts,
                                                     "batch_size": 64})
    model = load_model(cfg)
    torch.manual_seed(0)
    sae = JumpReLUSAE(JumpReLUSAEConfig(d_in=model.cfg.d_model, d_sae=4096, metadata=SAEMetadata(hook_name=cfg.hook_name)))
    V = torch.nn.functional.normalize(torch.randn(a.vectors, model.cfg.d_model), dim=-1)
    S = torch.full((a.vectors,), a.scale)
    new_tokens = sum(a.len - model.to_tokens(p).shape[1] for p in prompts) * a.rollouts * a.vectors

    def batched():
        return mean_activations(model, sae, cfg, V, S, progress=False)

    def one_at_a_time():
        out = torch.zeros(a.vectors, sae.cfg.d_sae)
        for i in range(a.vectors):
            delta = (S[i] * V[i]).to(model.cfg.dtype)
            hook = lambda act, hook: act + delta
            for p in prompts:
                toks = model.to_tokens(p).expand(a.rollouts, -1)
                with model.hooks(fwd_hooks=[(cfg.hook_name, hook)]):
                    g = model.generate(toks, max_new_tokens=a.len - toks.shape[1], top_k=50, top_p=0.3, temperature=1.0,
                                       stop_at_eos=False, verbose=False, use_past_kv_cache=True)
                out[i] += encode_rollouts(model, sae, g, cfg.layer).sum(0)
        return out / (a.rollouts * len(prompts))

    hf, _ = load_hf_model(cfg.model)
    rows = min(64, a.vectors * a.rollouts)
    toks = model.to_tokens(prompts[0]).expand(rows, -1).contiguous()
    vrow = V.repeat_interleave(a.rollouts, 0)[:rows] * a.scale

    def hf_batch():
        def hook(module, args, output):
            if isinstance(output, tuple):
                return (output[0] + vrow[:, None, :],) + tuple(output[1:])
            return output + vrow[:, None, :]
        h = hf.model.layers[cfg.layer].register_forward_hook(hook)
        try:
            hf.generate(toks, attention_mask=torch.ones_like(toks), do_sample=True, top_k=50, top_p=0.3,
                        max_new_tokens=a.len - toks.shape[1], min_new_tokens=a.len - toks.shape[1], pad_token_id=0)
        finally:
            h.remove()

    t = {}
    for name, fn in (("batched", batched), ("one_at_a_time", one_at_a_time), ("hf_one_batch", hf_batch)):
        t0 = time.perf_counter(); fn(); t[name] = time.perf_counter() - t0
    hf_tokens = rows * (a.len - toks.shape[1])
    res = {"vectors": a.vectors, "rollouts_per_prompt": a.rollouts, "prompts": prompts, "rollout_len": a.len,
           "threads": torch.get_num_threads(), "seconds": t, "new_tokens_per_path": new_tokens,
           "tokens_per_s": {"batched": new_tokens / t["batched"], "one_at_a_time": new_tokens / t["one_at_a_time"],
                            "hf_generate_one_batch": hf_tokens / t["hf_one_batch"]},
           "speedup_batched_over_one_at_a_time": t["one_at_a_time"] / t["batched"]}
    out = Path(a.out); out.mkdir(parents=True, exist_ok=True)
    (out / "effects.json").write_text(json.dumps(res, indent=2))
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
