"""Shared fixtures: the committed sample world and a small freshly generated one."""

from __future__ import annotations

from pathlib import Path

import pytest

from ml.synthetic.knowledge import KnowledgeBase, load_knowledge_base
from ml.synthetic.world import World, WorldConfig, generate_world, write_world
from ml.taxonomy import Taxonomy, load_taxonomy


@pytest.fixture(scope="session")
def taxonomy() -> Taxonomy:
    return load_taxonomy()


@pytest.fixture(scope="session")
def knowledge_base() -> KnowledgeBase:
    return load_knowledge_base()


@pytest.fixture(scope="session")
def small_config() -> WorldConfig:
    return WorldConfig(name="small", seed=11, n_cases=800, n_doctors=200)


@pytest.fixture(scope="session")
def small_world(small_config: WorldConfig, knowledge_base: KnowledgeBase, taxonomy: Taxonomy) -> World:
    return generate_world(small_config, knowledge_base, taxonomy)


@pytest.fixture(scope="session")
def small_world_dir(small_world: World, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("worlds") / "small"
    write_world(small_world, out)
    return out
