"""Run every notebook in nbs/ with nbdev's test runner (one pytest result per notebook).

Cells marked `#| eval: false` (heavy, papermill-only) and `#| slow` are skipped, exactly as
`nbdev_test` does. Set SAETS_TEST_SLOW=1 to run `#| slow` cells too.
"""
import os
from pathlib import Path

import pytest
from nbdev.test import test_nb as _run_nb  # renamed so pytest does not collect it

NBS = sorted(p for p in (Path(__file__).parent.parent / "nbs").glob("[0-9]*.ipynb"))


@pytest.mark.parametrize("nb", NBS, ids=[p.stem for p in NBS])
def test_notebook(nb, tmp_path, monkeypatch):
    monkeypatch.setenv("SAETS_OUTPUTS", str(tmp_path / "outputs"))
    force = ["slow"] if os.environ.get("SAETS_TEST_SLOW") else []
    ok, secs = _run_nb(nb, skip_flags=[] if force else ["slow"], force_flags=force, do_print=False, basepath=nb.parent)
    assert ok, f"{nb.name} failed under nbdev's test runner (run `nbdev_test --path {nb}` to see the cell)"
