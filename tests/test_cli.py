"""The `saets` console script: bad input fails fast and clearly; the pipeline runs end to end."""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent / "saets"


def saets(*args, env=None, timeout=3600):
    e = {**os.environ, **(env or {})}
    return subprocess.run([str(BIN), *args], capture_output=True, text=True, env=e, timeout=timeout)


def test_configs_listed():
    r = saets("configs")
    assert r.returncode == 0
    for name in ("gemma-2-2b", "gemma-2-9b", "gemma-3-270m", "tiny"):
        assert name in r.stdout


def test_unknown_config_and_preset(tmp_path):
    r = saets("run", "gemma-7b", "--out", str(tmp_path))
    assert r.returncode == 2 and "unknown config 'gemma-7b'" in r.stderr
    r = saets("run", "tiny", "--preset", "enormous", "--out", str(tmp_path))
    assert r.returncode == 2 and "unknown preset 'enormous'" in r.stderr
    assert not any(tmp_path.iterdir()), "nothing may be written for bad input"


def test_missing_api_key_fails_before_compute(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    t0 = time.time()
    r = subprocess.run([str(BIN), "run", "gemma-2-2b", "--out", str(tmp_path)], capture_output=True, text=True, env=env)
    assert r.returncode == 2 and "OPENAI_API_KEY" in r.stderr
    assert time.time() - t0 < 60 and not any(tmp_path.iterdir())


def test_offline_hub_config_says_how_to_download(tmp_path):
    r = saets("run", "gemma-2-2b", "--judge", "local", "--stages", "effects", "--out", str(tmp_path),
              env={"HF_HUB_OFFLINE": "1"})
    assert r.returncode == 2
    assert "huggingface-cli download" in r.stderr and "see the executed notebook" in r.stderr


def _check_run(root: Path):
    assert (root / "config.json").exists() and (root / "report.md").exists()
    report = (root / "report.md").read_text()
    for name in ("table6_all_methods", "table6_heldout", "table2_main"):
        assert (root / "tables" / f"{name}.csv").exists(), name
        assert name in report
    assert (root / "effectvis" / "index.html").exists() and "effectvis/index.html" in report
    assert list((root / "figures").glob("*.png"))
    nbs = sorted(p.stem for p in (root / "notebooks").glob("*.ipynb"))
    assert "13_evaluation" in nbs and "08_effects" in nbs
    times = json.loads((root / "tables" / "stage_times.json").read_text())
    return times


def test_tiny_pipeline_end_to_end(tmp_path):
    r = saets("run", "tiny", "--preset", "smoke", "--out", str(tmp_path), "--no-progress",
              env={"SAETS_CACHE": str(tmp_path / "cache")})
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    root = tmp_path / "tiny" / "smoke"
    _check_run(root)
    assert str(root.resolve()) in r.stdout, "the run must print where its outputs went"
    # a second run finds everything on disk and redoes nothing expensive
    t0 = time.time()
    r2 = saets("run", "tiny", "--preset", "smoke", "--out", str(tmp_path), "--no-progress", "--stages", "effects",
               env={"SAETS_CACHE": str(tmp_path / "cache")})
    assert r2.returncode == 0, r2.stderr[-2000:]


def _fresh_cache(tmp_path: Path) -> Path:
    """A private, empty saets cache (the run converts the model and trains its SAEs as on a fresh machine),
    sharing only the npm corpus tarball that `make install` fetched, so the test never needs the network."""
    cache = tmp_path / "cache"
    cache.mkdir()
    user = Path(os.environ.get("SAETS_CACHE", Path.home() / ".cache" / "saets")).expanduser() / "npm"
    if user.exists():
        (cache / "npm").symlink_to(user, target_is_directory=True)
    return cache


@pytest.mark.slow
def test_embedded_smoke_pipeline(tmp_path):
    """The embedded default's smoke preset, offline, through the console script, from an empty cache:
    GGUF conversion, corpus, both SAEs trained, labels, effects, approximator, vectors, evaluation, EffectVis."""
    out = tmp_path / "out"
    r = saets("run", "gemma-3-270m", "--preset", "smoke", "--out", str(out), "--no-progress",
              env={"SAETS_CACHE": str(_fresh_cache(tmp_path))})
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    root = out / "gemma-3-270m" / "smoke"
    times = _check_run(root)
    print("stage times (s):", times, "total", sum(times.values()))
    # the SAEs it trained come with quality cards, and they are real SAEs, not noise
    for which in ("measure", "steer"):
        q = json.loads((root / "tables" / f"sae_quality_{which}.json").read_text())
        assert q["explained_variance"] > 0.5 and 1 < q["l0"] < 400 and q["ce_recovered"] > 0.5, (which, q)
    chosen = json.loads((root / "artifacts" / "task_features.json").read_text())
    assert len([k for k in chosen if k != "config"]) == 9, chosen
