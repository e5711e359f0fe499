"""What the quality gates share: the real encoder, the real corpora, and one training run.

The gates train exactly what `casematch train` trains (the default `TrainingConfig`, or the YAML
file named by CASEMATCH_GATE_CONFIG, to show a weakened model trips them) on the committed
sample world plus the real corpora's train splits, once per session, and read dev metrics only.
The corpora are in ../shared/data beside the project; where they are missing the gates that need
them skip, saying so, unless CASEMATCH_REQUIRE_CORPORA=1 (set by .ci/run), which makes it a failure.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from ml.embeddings import load_encoder
from ml.embeddings.base import Encoder
from ml.evaluation.corpora import SHARED_DATA
from ml.paths import SAMPLE_WORLD_DIR
from ml.training.pipeline import TrainingConfig, TrainingResult, train

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def require_corpora() -> None:
    """Skip (or, under CASEMATCH_REQUIRE_CORPORA=1, fail) when the real corpora are not beside us."""
    if SHARED_DATA.is_dir():
        return
    message = f"real corpora not found at {SHARED_DATA}"
    if os.environ.get("CASEMATCH_REQUIRE_CORPORA") == "1":
        pytest.fail(f"{message}, and CASEMATCH_REQUIRE_CORPORA=1 says the gates must run")
    pytest.skip(message)


@pytest.fixture(scope="session")
def encoder(pytestconfig: pytest.Config) -> Encoder:
    """The served encoder; embeddings are cached under .pytest_cache, so a rerun skips encoding."""
    cache_plugin = getattr(pytestconfig, "cache", None)  # absent under -p no:cacheprovider
    cache = cache_plugin.mkdir("embeddings") if cache_plugin else None
    return load_encoder("use", threads=2, cache_path=cache / "use.sqlite" if cache else None)


@pytest.fixture(scope="session")
def gate_config() -> TrainingConfig:
    path = os.environ.get("CASEMATCH_GATE_CONFIG")
    if not path:
        return TrainingConfig()
    return TrainingConfig.model_validate(yaml.safe_load(Path(path).read_text()) or {})


@pytest.fixture(scope="session")
def trained(gate_config: TrainingConfig, encoder: Encoder) -> TrainingResult:
    require_corpora()
    return train(gate_config, SAMPLE_WORLD_DIR, encoder, encoder_spec="use")


@pytest.fixture(scope="session")
def dev_metrics(trained: TrainingResult) -> dict[str, float]:
    return trained.metrics["dev"]
