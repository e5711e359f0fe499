"""What the quality gates share: the real encoder, the real corpora, and one training run.

The gates train exactly what `casematch train` trains (the default `TrainingConfig`, or the YAML
file named by CASEMATCH_GATE_CONFIG, to show a weakened model trips them) on the committed
sample world plus the real corpora's train splits, once per session, and read dev metrics only.
The corpora are vendored in data/corpora, so every gate runs on every clone.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
import yaml

from ml.data.synthetic import SyntheticWorld
from ml.embeddings import load_encoder
from ml.embeddings.base import Encoder
from ml.paths import SAMPLE_WORLD_DIR
from ml.privacy.batch import DeidentifiedCache, packaged_fingerprint
from ml.training.pipeline import TrainingConfig, TrainingResult, train

os.environ.setdefault("HF_HUB_OFFLINE", "1")


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
def trained(gate_config: TrainingConfig, encoder: Encoder, pytestconfig: pytest.Config) -> TrainingResult:
    """Trained as `casematch train` does: on the sample's posts de-identified as the store keeps them."""
    cache_plugin = getattr(pytestconfig, "cache", None)
    folder = cache_plugin.mkdir("deidentified") if cache_plugin else Path(tempfile.mkdtemp())
    cache = DeidentifiedCache(folder / "posts.sqlite", packaged_fingerprint())
    world = SyntheticWorld(SAMPLE_WORLD_DIR, cache=cache)
    platform = world.read()
    cache.close()
    return train(gate_config, platform, world.split, encoder, encoder_spec="use")


@pytest.fixture(scope="session")
def dev_metrics(trained: TrainingResult) -> dict[str, float]:
    return trained.metrics["dev"]
