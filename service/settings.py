"""Settings of the casematch deployable, read from `CASEMATCH_*` environment variables (and `.env`)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ml.paths import SYNTHETIC_DIR


class Settings(BaseSettings):
    """Where casematch keeps its state. Only entry points (CLI, app factory) construct this."""

    model_config = SettingsConfigDict(env_prefix="CASEMATCH_", env_file=".env", extra="ignore")

    home: Path = Field(
        default=Path("var"),
        description="working folder for the database, models and index",
    )
    database_url: str = Field(
        default="",
        description="SQLAlchemy URL of the case store; default: a SQLite file in the home",
    )
    mlflow_tracking_uri: str = Field(
        default="",
        description="MLflow tracking URI; default: a SQLite MLflow store in the home",
    )
    encoder: str = Field(
        default="use",
        description="sentence encoder: use | e5 | sentence-transformers:<folder or package>",
    )
    encoder_threads: int = Field(
        default=1,
        ge=1,
        le=64,
        description="threads the encoder may use (and, in `casematch serve`, FAISS and the models' pools)",
    )
    synthetic_dir: Path = Field(
        default=SYNTHETIC_DIR,
        description="folder that holds synthetic worlds, one sub-folder per world",
    )
    api_keys: str = Field(
        default="",
        repr=False,
        description="comma-separated <name>:<secret>:<scopes> (scopes route+ingest+admin); "
        "empty: `casematch serve` makes a local key in the home",
    )
    seed_world: str = Field(
        default="sample",
        description="synthetic world loaded into an empty store at start-up: the committed 2,000-case "
        "sample serves within minutes; 'world' (20,000 cases, generated) takes about 15; '' for none",
    )
    model_poll_seconds: float = Field(default=30.0, gt=0, description="how often to check the champion alias")
    max_body_bytes: int = Field(default=256_000, ge=1_000, description="largest request body accepted")
    rate_limit_per_minute: int = Field(
        default=6_000,
        ge=1,
        description="requests per API key and minute, counted by each worker (N workers allow N times this)",
    )
    route_batch: int = Field(
        default=16,
        ge=1,
        le=256,
        description="most posts of concurrent route calls encoded together (1: alone)",
    )
    ui_enabled: bool = Field(default=True, description="serve the /ui web page and its static files")
    workers: int = Field(
        default=0, ge=0, le=64, description="`casematch serve` processes behind the port; 0: one per core"
    )
    ray_address: str | None = Field(
        default=None,
        description="Ray cluster for batch jobs (host:port, ray://host:port or auto); unset: a local Ray",
    )
    ray_from_texts: int = Field(
        default=1000,
        ge=0,
        description="a batch job (train, index) encodes on Ray once it has met this many posts the "
        "embedding cache lacks; before that, and for smaller jobs, in-process on one thread",
    )
    follow_seconds: float = Field(
        default=0.2,
        gt=0,
        le=10,
        description="how often each worker polls the store for writes taken by the others",
    )

    @model_validator(mode="after")
    def _derive_defaults(self) -> Settings:
        # Paths become absolute at load time, so a later chdir cannot move the state.
        self.home = self.home.expanduser().resolve()
        self.synthetic_dir = self.synthetic_dir.expanduser().resolve()
        if not self.database_url:
            self.database_url = f"sqlite:///{self.home / 'casematch.db'}"
        if not self.mlflow_tracking_uri:
            self.mlflow_tracking_uri = f"sqlite:///{self.home / 'mlflow.db'}"
        return self

    @property
    def index_dir(self) -> Path:
        """Where index snapshots live: one folder per encoder (see `index_dir_for`)."""
        return self.home / "index"

    def index_dir_for(self, fingerprint: str) -> Path:
        """The index snapshot of the encoder with this fingerprint token: one folder per encoder,
        so `casematch reindex` builds a new encoder's snapshot beside the one being served."""
        return self.index_dir / hashlib.sha256(fingerprint.encode()).hexdigest()[:16]

    @property
    def embedding_cache(self) -> Path:
        return self.home / "embeddings.sqlite"

    @property
    def deidentified_cache(self) -> Path:
        """De-identified synthetic posts, shared by training on a world and seeding the store from it."""
        return self.home / "deidentified.sqlite"
