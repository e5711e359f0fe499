"""Where the project's own data lives (the source tree; the package is installed editable)."""

from __future__ import annotations

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SYNTHETIC_DIR = PROJECT_ROOT / "data" / "synthetic"
KNOWLEDGE_BASE_DIR = SYNTHETIC_DIR / "kb"
SAMPLE_WORLD_DIR = SYNTHETIC_DIR / "sample"  # the committed test world
