"""A clone with nothing beside it (no ../shared) finds the real corpora it trains and is gated on."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ml.paths import PROJECT_ROOT

PROBE = """
from ml.evaluation.corpora import CORPUS_FILES, load_codiesp, load_deid_gold, load_mtsamples
from ml.paths import PROJECT_ROOT
assert all(path.is_relative_to(PROJECT_ROOT) for path in CORPUS_FILES.values())
sizes = len(load_mtsamples("train")), len(load_codiesp("train")), len(load_deid_gold("meddocan", "train"))
print(PROJECT_ROOT, *sizes)
"""


@pytest.mark.skipif(not (PROJECT_ROOT / ".git").exists(), reason="the project is not a git checkout")
def test_a_lone_clone_loads_the_vendored_corpora(tmp_path: Path) -> None:
    clone = tmp_path / "alone" / "casematch"  # no shared/ beside it
    subprocess.run(["git", "clone", "--quiet", str(PROJECT_ROOT), str(clone)], check=True)
    assert not (clone.parent.parent / "shared").exists()
    probe = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=clone,
        env={"PYTHONPATH": str(clone), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert probe.returncode == 0, probe.stderr
    root, *counts = probe.stdout.split()
    assert Path(root) == clone  # the clone's own code and data, not this checkout's
    mtsamples, codiesp, meddocan = map(int, counts)
    assert (mtsamples, meddocan) == (1594, 500) and codiesp > 2000
