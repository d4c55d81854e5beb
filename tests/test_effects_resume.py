"""Kill a real effect-dataset collection mid-way, resume it, and compare with an uninterrupted run."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
import effects_worker  # noqa: E402

from saets.effects import load_effect_dataset, load_effect_shards  # noqa: E402


def test_killed_collection_resumes_to_identical_dataset(tmp_path):
    killed = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, str(Path(__file__).parent / "effects_worker.py"), str(killed)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 300
    while time.time() < deadline and not list(killed.glob("shard_*.safetensors")):
        if proc.poll() is not None:
            raise AssertionError(f"worker exited early: {proc.stderr.read().decode()[-2000:]}")
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    n_before = len(list(killed.glob("shard_*.safetensors")))
    assert 1 <= n_before < 8, f"the kill must land mid-way (found {n_before} of 8 shards)"

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the worker ran single-threaded too: same float reduction order
    try:
        _, steer = effects_worker.run(killed)               # resume in this process
        full = tmp_path / "full"
        effects_worker.run(full)                            # uninterrupted
    finally:
        torch.set_num_threads(threads)

    a, b = load_effect_shards(killed), load_effect_shards(full)
    assert len(a["ids"]) == 32
    for k in ("ids", "scales", "crossed", "effects"):
        assert torch.equal(a[k], b[k]), k
    assert not list(killed.glob(".*tmp")), "no temp files may be left behind"
    ds = load_effect_dataset(killed, steer)
    assert ds.X.shape[0] == ds.Y.shape[0] == 32
