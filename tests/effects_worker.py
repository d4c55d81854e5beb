"""A small, deterministic effect-dataset collection on the tiny model (used by test_effects_resume).

Run as a script: `python tests/effects_worker.py FOLDER` collects into FOLDER (resuming if present).
"""
import sys
from pathlib import Path

import torch
from sae_lens import TopKSAE, TopKSAEConfig
from sae_lens.saes.sae import SAEMetadata

from saets.core import SamplingSpec, get_config
from saets.effects import collect_effect_dataset
from saets.models import load_model
from saets.steering import generate


def setup():
    cfg = get_config("tiny").replace(
        effects={"n_vectors": 32, "shard_size": 4, "rollouts_per_prompt": 2, "baseline_rollouts_per_prompt": 4},
        scales={"alpha_step": 4.0, "alpha_max": 40.0, "bisection_steps": 2})
    model = load_model(cfg)
    saes = []
    for seed, d_sae in ((0, 48), (1, 40)):
        torch.manual_seed(seed)
        sae = TopKSAE(TopKSAEConfig(d_in=model.cfg.d_model, d_sae=d_sae, k=4, metadata=SAEMetadata(hook_name=cfg.hook_name)))
        for p in sae.parameters():
            torch.nn.init.normal_(p, std=0.3)
        saes.append(sae.eval())
    chunks = generate(model, "", n=6, max_new_tokens=11, sampling=SamplingSpec(top_k=None, top_p=None, temperature=0.5),
                      seeds=0, stop_at_eos=False).tokens
    return cfg, model, saes[0], saes[1], chunks


def run(folder, **kw):
    cfg, model, measure, steer, chunks = setup()
    return collect_effect_dataset(model, measure, steer, cfg, folder, chunks, progress=False, **kw), steer


if __name__ == "__main__":
    torch.set_num_threads(1)
    run(Path(sys.argv[1]))
