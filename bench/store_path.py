"""Is training from the store faithful? The same world trained from its Parquet files and from a store
it was posted into through the API, side by side on the same months (writes bench/store_path.md).

Path "parquet": the world's tables read as typed records (`ml.data.synthetic.SyntheticWorld`),
posts de-identified as the service would, split by the world's months. Path "store": an empty
service (SQLite, no seed world), the world's raw records posted through its HTTP API one request
at a time (`service.api_client`: doctors, then cases, answers and resolutions in time order; the
service de-identifies on the way in), exported back (`service.store.export`) and trained with the
same month boundaries. The store has no urgency labels, so that path's urgency is the parquet
run's model carried over (as `casematch train --source store` carries the champion's over): its
urgency rows are equal by construction and say so. Novelty's "condition" is the world's condition
id on one path and the resolution's diagnosis on the other. Both runs score dev and test; each run
of this script appends one row to bench/test_ledger.csv.

    .venv/bin/python bench/store_path.py [--world data/synthetic/sample]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from fastapi.testclient import TestClient
from test_ledger import record_test_use, usage_sentence

from ml import registry
from ml.data.synthetic import RAW, WORLD_SPLIT, SyntheticWorld
from ml.embeddings import load_encoder
from ml.paths import SAMPLE_WORLD_DIR
from ml.privacy.batch import DeidentifiedCache, packaged_fingerprint
from ml.training.pipeline import TrainingConfig, TrainingResult, load_training_data, train, training_data_hash
from ml.training.tracking import log_training
from service.api_client import post_platform_data
from service.app import create_app
from service.runtime import Runtime
from service.settings import Settings
from service.store.export import export_platform_data

BENCH_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = BENCH_DIR.parent
KEY = "bench-loader-0000000001"
# (row label, metric key with {source} for the platform's own set)
ROWS = (
    ("specialty hit@3, platform cases", "specialty.{source}.hit@3"),
    ("specialty hit@1, platform cases", "specialty.{source}.hit@1"),
    ("specialty ECE, platform cases", "specialty.{source}.ece"),
    ("specialty hit@3, English posts", "specialty.{source}_en.hit@3"),
    ("specialty hit@3, Spanish posts", "specialty.{source}_es.hit@3"),
    ("specialty hit@3, MTSamples (real)", "specialty.mtsamples.hit@3"),
    ("specialty hit@3, CodiEsp (real)", "specialty.codiesp.hit@3"),
    ("doctors: first answerer recall@10 (served)", "doctors.holdout.served.first_answerer.recall@10"),
    ("doctors: first answerer MRR (served)", "doctors.holdout.served.first_answerer.mrr"),
    ("doctors: activity baseline recall@10", "doctors.holdout.activity_baseline.first_answerer.recall@10"),
    ("novelty: rarely-seen AUC", "novelty.rarely_seen_auc"),
    ("urgency: emergent recall (store: carried over)", "urgency.emergent_recall"),
)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--world", type=Path, default=SAMPLE_WORLD_DIR)
    parser.add_argument("--cache", type=Path, default=Path("var/embeddings.sqlite"), help="embedding cache")
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "store_path.md")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    encoder = load_encoder("use", threads=2, cache_path=args.cache)
    config = TrainingConfig()
    home = Path(tempfile.mkdtemp(prefix="casematch-store-path-"))

    started = time.perf_counter()
    cache = DeidentifiedCache(args.cache.with_name("deidentified.sqlite"), packaged_fingerprint())
    parquet = SyntheticWorld(args.world, cache=cache).read()
    cache.close()
    from_parquet = _train(config, parquet, encoder, previous=None)
    seconds = {"parquet: read + train": time.perf_counter() - started}

    settings = Settings(
        home=home,
        database_url=f"sqlite:///{home / 'casematch.db'}",
        mlflow_tracking_uri=f"sqlite:///{home / 'mlflow.db'}",
        seed_world="",
        api_keys=f"bench:{KEY}:ingest+route",
    )
    registry.configure(settings.mlflow_tracking_uri, home / "mlartifacts")
    logged = log_training(from_parquet, config, data_hash=training_data_hash(parquet, config.corpora))
    registry.promote(logged.version)  # the service needs a champion to start
    started = time.perf_counter()
    raw = SyntheticWorld(args.world, deidentify=RAW).read()
    runtime = Runtime.start(settings, watch=False)
    try:
        with TestClient(create_app(runtime)) as client:
            counts = post_platform_data(client, raw, headers={"Authorization": f"Bearer {KEY}"})
        exported = export_platform_data(runtime.store, settings.database_url)
    finally:
        runtime.close()
    seconds["store: post through the API + export"] = time.perf_counter() - started
    log(f"posted {counts} in {seconds['store: post through the API + export']:.0f} s")
    started = time.perf_counter()
    from_store = _train(config, exported, encoder, previous=from_parquet)
    seconds["store: train"] = time.perf_counter() - started

    same_text = sum(
        (a.title, a.text) == (b.title, b.text)
        for a, b in zip(sorted(parquet.cases, key=_id), sorted(exported.cases, key=_id), strict=True)
    )
    headline = {
        f"{path}.{key.format(source=source)}": result.metrics["test"][key.format(source=source)]
        for path, source, result in (("parquet", "synthetic", from_parquet), ("store", "store", from_store))
        for key in ("specialty.{source}.hit@3", "doctors.holdout.served.first_answerer.recall@10")
    }
    uses = record_test_use("bench/store_path.py", "test", headline, note=f"world {args.world.name}")
    args.out.write_text(
        _report(args.world, counts, same_text, len(parquet.cases), from_parquet, from_store, seconds, uses)
    )
    log(f"wrote {args.out}")


def _id(case: object) -> str:
    return str(case.case_id)  # type: ignore[attr-defined]


def _train(config: TrainingConfig, platform, encoder, *, previous: TrainingResult | None) -> TrainingResult:  # type: ignore[no-untyped-def]
    data = load_training_data(config, platform, WORLD_SPLIT, encoder, score_test=True)
    return train(
        config,
        platform,
        WORLD_SPLIT,
        encoder,
        encoder_spec="use",
        data=data,
        score_test=True,
        previous=previous.bundle if previous else None,
    )


def _report(
    world: Path,
    counts: dict[str, int],
    same_text: int,
    cases: int,
    parquet: TrainingResult,
    store: TrainingResult,
    seconds: dict[str, float],
    uses: int,
) -> str:
    posted = ", ".join(f"{v:,} {k}" for k, v in counts.items())
    timing = ", ".join(f"{k} {v:.0f}" for k, v in seconds.items())
    lines = [
        "# Training from the store, beside training from the Parquet files",
        "",
        f"Command: `.venv/bin/python bench/store_path.py --world {_shown(world)}` "
        f"({len(os.sched_getaffinity(0))} core(s)). World `{world.name}`, split by its months "
        f"(`{WORLD_SPLIT.describe()}`) on both paths. Posted through the API into an empty SQLite "
        f"store: {posted}. The stored (de-identified) text equals the parquet path's de-identified "
        f"text for {same_text:,} of {cases:,} cases. {usage_sentence(uses)} Seconds: {timing}.",
        "",
        "Store-path notes: " + ("; ".join(store.notes) or "none") + ".",
        "",
    ]
    for split in ("dev", "test"):
        lines += [f"## {split}", "", "| metric | parquet | store | store - parquet |", "|---|---:|---:|---:|"]
        for label, key in ROWS:
            a = parquet.metrics[split].get(key.format(source="synthetic"))
            b = store.metrics[split].get(key.format(source="store"))
            if a is not None or b is not None:
                diff = "n/a" if a is None or b is None else f"{b - a:+.3f}"
                lines.append(f"| {label} | {_cell(a)} | {_cell(b)} | {diff} |")
        cases_a = parquet.sizes.get(f"{split}.synthetic", 0)
        cases_b = store.sizes.get(f"{split}.store", 0)
        lines += ["", f"Resolved platform cases scored: parquet {cases_a:,}, store {cases_b:,}.", ""]
    return "\n".join(lines)


def _shown(path: Path) -> str:
    return str(path.relative_to(PROJECT_ROOT)) if path.is_relative_to(PROJECT_ROOT) else str(path)


def _cell(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


if __name__ == "__main__":
    main()
