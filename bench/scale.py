"""Scale benchmark (issue 14): a world of up to 1,000,000 cases and 500,000 doctors, served by the
real service from an index snapshot, on one machine.

What it measures, per size (by default 100,000 cases / 50,000 doctors as the reference, then
1,000,000 / 500,000), each step in a process of its own so one size's memory never counts for
another's:

1. build: the world generated, bulk-loaded into a fresh SQLite store (`upgrade_to_head`, then
   `CaseStore.load_world`) and indexed from precomputed vectors (`CaseIndex.upsert`), the snapshot
   saved with watermark `store_seq` = the store's head, as `StoreFollower` saves it: a service
   that starts on it re-encodes nothing. Seconds per stage and peak RSS.
2. snapshot: the first start on that home, which finds the index snapshot only, so it rebuilds
   doctor activity and the answer book by replaying every answer in the store; then the full
   snapshot (index and routing state at one watermark) is saved, as a worker saves it when it stops.
3. serve: `Runtime.start(Settings(...))` on that home, as `casematch serve` starts a worker:
   seconds to start (and per stage: opening the store, encoder and index snapshot; loading the
   champion; restoring doctor activity and the answer book from their snapshot), resident memory
   (RSS) after start and what holds it (`CaseIndex.nbytes_by_part()`, `DoctorActivity.nbytes()`
   and the Python objects of doctors and answers), then
   - route latency of real sample posts twice: `RoutingEngine.route` directly (the routing work:
     encoding, specialty and urgency models, index search, doctors), split by stage; and
     POST /v1/route through the ASGI app (`fastapi.testclient.TestClient(create_app(runtime))`:
     de-identification, validation, routing, JSON, the audit record);
   - ingest: POST /v1/cases of new posts (de-identified, encoded, stored, indexed before the
     response) and erasure: DELETE /v1/cases/{id} of resolved, answered world cases.
4. report: bench/scale.md from every size's JSON.

How the world is made (from the committed sample world, `data/synthetic/sample`: 2,000 cases,
500 doctors, 8,755 answers over 365 days):
- doctors: doctor i is a copy of sample doctor i mod 500 (specialties, interests, languages,
  country, time zone), so every profile mix keeps its share;
- cases: each copies a random sample post (its template), de-identified as the store keeps it
  (the sample's cached de-identification), with its body's sentences recombined with another
  post of the same condition and language, so the lexical channel sees realistic, varied text.
  Posting days are spread evenly over the 365 days up to the build (so activity windows are
  live when the service routes "now"), at the template's time of day;
- vectors: sqrt(0.6) x the template's real USE embedding + sqrt(0.4) x a vector from
  `bench/index_bench.py`'s `embeddings_like` (fitted to USE case embeddings), normalised: real
  posts find cases of their own condition, and cases are not 500 copies of one point;
- answers, acceptances and resolutions: the template's, at the same delays after posting (events
  later than the build have not happened yet and are left out), each answer given by a random
  copy of the template's answerer and the post authored by a random copy of the template's author,
  so answers per case, who answers what, response times and the answers-per-doctor shape follow
  the sample (scaled: the sample has 4 cases per doctor, 1M / 500k has 2).

    taskset -c 1 .venv/bin/python bench/scale.py [--sizes 100000:50000,1000000:500000]
        [--home /tmp/casematch-scale] [--routes 300] [--writes 50]

The champion model is trained once into <home>/registry (`casematch bootstrap` on the sample
world and the vendored corpora, about 5 minutes; kept for later runs). Homes are kept
(<home>/<cases>-<doctors>) unless --clean; `--stage serve` alone re-measures a built home (its
store then holds the previous run's writes, which the start-up catches up first).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

BENCH_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = BENCH_DIR.parent
DEFAULT_SIZES = "100000:50000,1000000:500000"
WORLD_DAYS = 365
TEMPLATE_SHARE = 0.6  # of a case vector's squared norm: its template's real embedding
API_SECRET = "scale-bench-secret-0123456789"
TARGETS = {"start_seconds": 60.0, "bytes_per_case": 4096.0, "bytes_per_doctor": 3072.0, "route_p99_ms": 100.0}
MAX_CANDIDATES_DEFAULT = 2_000  # ml.routing.doctors.MAX_CANDIDATES (not imported: report-only code)
BULK_CACHE_KIB = 4 * 2**20  # SQLite page cache for the bulk load (used as the database grows)
SENTENCE = re.compile(r"(?<=[.?!])\s+")


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def rss_bytes() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def percentiles(values: Sequence[float]) -> dict[str, float]:
    return {
        "p50": float(np.percentile(values, 50)),
        "p99": float(np.percentile(values, 99)),
        "max": float(np.max(values)),
        "count": len(values),
    }


# --- the registry ---------------------------------------------------------------------------------


def ensure_registry(registry: Path) -> None:
    """A champion trained on the sample world, as `casematch bootstrap` trains it (once per home)."""
    if (registry / "mlflow.db").exists() and (registry / "champion.ok").exists():
        return
    registry.mkdir(parents=True, exist_ok=True)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CASEMATCH_")},
        "CASEMATCH_HOME": str(registry),
        "CASEMATCH_SYNTHETIC_DIR": str(PROJECT_ROOT / "data" / "synthetic"),
        "HF_HUB_OFFLINE": "1",
    }
    log(f"training the champion into {registry} (casematch bootstrap --world sample)")
    started = time.perf_counter()
    casematch = Path(sys.executable).parent / "casematch"
    subprocess.run([str(casematch), "bootstrap", "--world", "sample"], env=env, check=True, cwd=PROJECT_ROOT)
    (registry / "champion.ok").write_text(f"{time.perf_counter() - started:.0f} s\n")


def snapshot_dir(settings: Any, fingerprint: str) -> Path:
    """Where the service looks for the index snapshot (one folder per encoder, where it has them)."""
    folder_for = getattr(settings, "index_dir_for", None)
    return Path(folder_for(fingerprint)) if folder_for is not None else Path(settings.index_dir)


def settings_for(home: Path, registry: Path) -> Any:
    from service.settings import Settings

    return Settings(
        home=home,
        mlflow_tracking_uri=f"sqlite:///{registry / 'mlflow.db'}",
        seed_world="",
        encoder="use",
        encoder_threads=1,
        ui_enabled=False,
        api_keys=f"bench:{API_SECRET}:route+ingest+admin",
    )


# --- the world ------------------------------------------------------------------------------------


@dataclass
class Templates:
    """The sample world as templates: its de-identified posts and everything that happened to them."""

    cases: list[Any]  # CaseRecord, de-identified
    raw: list[dict[str, Any]]  # the posts as the platform sent them (identifiers included)
    vectors: np.ndarray  # (2000, 512) real USE embeddings of the de-identified posts
    condition: list[str]
    doctors: list[Any]  # DoctorRecord
    answers: list[list[tuple[int, int, bool]]]  # per template: (sample doctor, delay us, accepted)
    resolution: list[tuple[str, tuple[str, ...], int] | None]  # diagnosis, specialties, delay us
    author: list[int]  # sample doctor index


def read_templates(registry: Path, encoder: Any) -> Templates:
    from ml.data.synthetic import SyntheticWorld
    from ml.matching import post_text
    from ml.paths import SAMPLE_WORLD_DIR
    from ml.privacy.batch import DeidentifiedCache, packaged_fingerprint
    from ml.synthetic.world import read_table

    cache = DeidentifiedCache(registry / "deidentified.sqlite", packaged_fingerprint())
    data = SyntheticWorld(SAMPLE_WORLD_DIR, cache=cache).read()  # de-identified (cached by bootstrap)
    cache.close()
    cases = list(data.cases)
    row = {c.case_id: i for i, c in enumerate(cases)}
    doctor = {d.doctor_id: i for i, d in enumerate(data.doctors)}
    raw_by_id = {c["case_id"]: c for c in read_table(SAMPLE_WORLD_DIR, "cases").to_pylist()}
    answers: list[list[tuple[int, int, bool]]] = [[] for _ in cases]
    for a in sorted(data.answers, key=lambda a: a.created_at):
        posted = cases[row[a.case_id]].created_at
        answers[row[a.case_id]].append((doctor[a.doctor_id], _micros(a.created_at - posted), a.accepted))
    resolution: list[tuple[str, tuple[str, ...], int] | None] = [None] * len(cases)
    for r in data.resolutions:
        posted = cases[row[r.case_id]].created_at
        resolution[row[r.case_id]] = (r.diagnosis, tuple(r.specialties), _micros(r.resolved_at - posted))
    vectors = np.asarray(
        encoder.encode_documents([post_text(c.title, c.text) for c in cases]), dtype=np.float32
    )
    return Templates(
        cases,
        [raw_by_id[c.case_id] for c in cases],
        vectors,
        [data.truth[c.case_id].condition_id for c in cases],
        list(data.doctors),
        answers,
        resolution,
        [doctor[c.author_id] for c in cases],
    )


def _micros(delta: timedelta) -> int:
    return delta // timedelta(microseconds=1)


@dataclass
class World:
    records: Any  # service.store.bulk.WorldRecords
    template: np.ndarray  # per case
    stats: dict[str, Any]


def make_world(templates: Templates, n_cases: int, n_doctors: int, *, end: datetime, seed: int) -> World:
    from service.store.bulk import WorldRecords
    from service.store.records import Answer, Doctor, NewCase, Resolution

    rng = np.random.default_rng(seed)
    n_templates, n_sample_doctors = len(templates.cases), len(templates.doctors)
    doctor_ids = [f"d{i:07d}" for i in range(n_doctors)]
    doctors = []
    for i, doctor_id in enumerate(doctor_ids):
        d = templates.doctors[i % n_sample_doctors]
        doctors.append(
            Doctor(doctor_id, d.specialties, d.languages, d.country, d.timezone, interests=d.interests)
        )
    copies = np.array(
        [(n_doctors - j + n_sample_doctors - 1) // n_sample_doctors for j in range(n_sample_doctors)]
    )

    def copy_of(sample_doctor: np.ndarray, draws: np.ndarray) -> np.ndarray:
        """A random copy of each sample doctor (draws uniform in [0, 1))."""
        return sample_doctor + n_sample_doctors * (draws * copies[sample_doctor]).astype(np.int64)

    template = rng.integers(n_templates, size=n_cases)
    start = end - timedelta(days=WORLD_DAYS)
    start_us = _micros(start - datetime(1970, 1, 1, tzinfo=UTC))
    end_us = _micros(end - datetime(1970, 1, 1, tzinfo=UTC))
    time_of_day = np.array(
        [
            _micros(c.created_at - c.created_at.replace(hour=0, minute=0, second=0, microsecond=0))
            for c in templates.cases
        ]
    )
    day = np.floor(np.linspace(0, WORLD_DAYS, n_cases, endpoint=False)).astype(np.int64)
    posted_us = start_us + day * 86_400_000_000 + time_of_day[template]
    order = np.argsort(posted_us, kind="stable")
    template, posted_us = template[order], posted_us[order]
    keep = posted_us < end_us
    template, posted_us = template[keep], posted_us[keep]
    n_cases = len(template)
    authors = copy_of(np.array(templates.author)[template], rng.random(n_cases))

    sentences = [SENTENCE.split(c.text) for c in templates.cases]
    peers: dict[tuple[str, str], list[int]] = defaultdict(list)
    for t, c in enumerate(templates.cases):
        peers[(templates.condition[t], c.language)].append(t)
    peer = rng.integers(1 << 30, size=n_cases)
    mix = rng.random((n_cases, 8)) < 0.5

    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    cases, resolutions, answers = [], {}, []
    answer_draws = rng.random(sum(len(templates.answers[t]) for t in template))
    drawn = 0
    for i in range(n_cases):
        t = int(template[i])
        source = templates.cases[t]
        group = peers[(templates.condition[t], source.language)]
        other = sentences[group[peer[i] % len(group)]]
        text = " ".join(
            other[k] if k < len(other) and mix[i, k % 8] else s for k, s in enumerate(sentences[t])
        )
        case_id = f"c{i:08d}"
        posted = epoch + timedelta(microseconds=int(posted_us[i]))
        cases.append(
            NewCase(
                case_id=case_id,
                title=source.title,
                text=text,
                language=source.language,
                country=source.country,
                author_id=doctor_ids[authors[i]],
                patient_age=source.patient_age,
                patient_sex=source.patient_sex,
                created_at=posted,
            )
        )
        resolved = templates.resolution[t]
        if resolved is not None and posted_us[i] + resolved[2] < end_us:
            resolutions[case_id] = Resolution(
                resolved[0], resolved[1], posted + timedelta(microseconds=resolved[2])
            )
        given = templates.answers[t]
        if given:
            who = copy_of(np.array([g[0] for g in given]), answer_draws[drawn : drawn + len(given)])
            drawn += len(given)
            for k, ((_, delay, accepted), doctor) in enumerate(zip(given, who, strict=True)):
                if posted_us[i] + delay < end_us:
                    answers.append(
                        Answer(
                            f"{case_id}-a{k}",
                            case_id,
                            doctor_ids[doctor],
                            posted + timedelta(microseconds=delay),
                            accepted and case_id in resolutions,
                        )
                    )
    per_doctor = np.bincount([int(a.doctor_id[1:]) for a in answers], minlength=n_doctors)
    sample_per_doctor = np.bincount(
        [g[0] for given in templates.answers for g in given], minlength=n_sample_doctors
    )
    stats = {
        "cases": n_cases,
        "doctors": n_doctors,
        "answers": len(answers),
        "resolved": len(resolutions),
        "answers_per_case": len(answers) / n_cases,
        "resolved_share": len(resolutions) / n_cases,
        "spanish_share": float(np.mean([c.language == "es" for c in cases])),
        "answers_per_doctor": _shape(per_doctor),
        "sample_answers_per_doctor": _shape(sample_per_doctor),
        "distinct_texts": len({c.text for c in cases}),
    }
    return World(WorldRecords(cases, resolutions, doctors, answers), template, stats)


def _shape(counts: np.ndarray) -> dict[str, float]:
    """Quantiles of a per-doctor count, and the share of doctors with none."""
    return {
        "mean": float(counts.mean()),
        "zero_share": float(np.mean(counts == 0)),
        **{f"q{q}": float(np.percentile(counts, q)) for q in (50, 90, 99)},
        "max": float(counts.max()),
    }


def case_vectors(
    templates: Templates, template: np.ndarray, start: int, stop: int, noise: np.ndarray
) -> np.ndarray:
    mixed = (
        np.sqrt(TEMPLATE_SHARE) * templates.vectors[template[start:stop]]
        + np.sqrt(1 - TEMPLATE_SHARE) * noise
    )
    return (mixed / np.linalg.norm(mixed, axis=1, keepdims=True)).astype(np.float32)


def build(home: Path, registry: Path, n_cases: int, n_doctors: int, *, seed: int) -> dict[str, Any]:
    """Generate the world, bulk-load it into a new store, index it and save the snapshot."""
    from index_bench import embeddings_like
    from sqlalchemy import event

    from ml.embeddings import load_encoder
    from ml.index import CaseIndex, CaseMeta, IndexedCase
    from ml.matching import post_text
    from service.follower import WATERMARK_KEY
    from service.store.database import create_store_engine
    from service.store.migrate import upgrade_to_head
    from service.store.repository import CaseStore

    if home.exists():
        shutil.rmtree(home)
    home.mkdir(parents=True)
    settings = settings_for(home, registry)
    result: dict[str, Any] = {"seconds": {}, "cases": n_cases, "doctors": n_doctors}
    seconds = result["seconds"]
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        seconds[name] = round(now - clock, 1)
        clock = now
        log(f"  {name}: {seconds[name]:.1f} s (RSS {rss_bytes() / 2**30:.1f} GiB)")

    shutil.copyfile(registry / "embeddings.sqlite", home / "embeddings.sqlite")  # the sample's posts
    encoder = load_encoder("use", threads=len(os.sched_getaffinity(0)), cache_path=settings.embedding_cache)
    templates = read_templates(registry, encoder)
    lap("sample world and its embeddings")
    world = make_world(templates, n_cases, n_doctors, end=datetime.now(UTC), seed=seed)
    result["world"] = world.stats
    lap("generating the world")
    upgrade_to_head(settings.database_url)
    engine = create_store_engine(settings.database_url)
    # The bulk load is one transaction: with SQLite's default 2 MiB page cache, its index pages
    # spill to the write-ahead log over and over, and every page read then searches a WAL of
    # gigabytes (a 1M-case load ran for 20+ minutes, re-reading 17 GB). Room for the whole
    # database in the cache writes each page once, at commit.
    event.listen(
        engine, "connect", lambda connection, _: connection.execute(f"PRAGMA cache_size=-{BULK_CACHE_KIB}")
    )
    store = CaseStore(engine)
    head = store.load_world(world.records)
    lap("bulk-loading the store")
    template = world.template
    metas = [
        (
            c.case_id,
            post_text(c.title, c.text),
            CaseMeta(
                c.case_id in world.records.resolutions,
                c.language,
                tuple(world.records.resolutions[c.case_id].specialties)
                if c.case_id in world.records.resolutions
                else (),
            ),
        )
        for c in world.records.cases
    ]
    del world
    gc.collect()
    noise = embeddings_like(len(metas), seed=seed)
    index = CaseIndex(dim=encoder.dim, fingerprint=encoder.fingerprint.token)  # the service's config
    batch = 10_000
    for start in range(0, len(metas), batch):
        stop = min(start + batch, len(metas))
        vectors = case_vectors(templates, template, start, stop, noise[start:stop])
        index.upsert(
            [
                IndexedCase(i, v, text, meta)
                for (i, text, meta), v in zip(metas[start:stop], vectors, strict=True)
            ]
        )
        if (start // batch) % 10 == 0:
            log(f"  indexed {stop:,} ({time.perf_counter() - clock:.0f} s, {index.kind})")
    index.wait_for_rebuild()
    lap("indexing")
    result["index"] = {"kind": index.kind, "cases": len(index), "bytes": index.nbytes_by_part()}
    result["neighbours"] = neighbour_cosines(index, noise, templates, template)
    del noise
    index.watermark[WATERMARK_KEY] = head
    snapshot = snapshot_dir(settings, encoder.fingerprint.token)
    index.save(snapshot)
    lap("saving the snapshot")
    result["head_seq"] = head
    result["peak_rss_bytes"] = peak_rss_bytes()
    result["disk_bytes"] = {p.name: p.stat().st_size for p in home.iterdir() if p.is_file()}
    result["disk_bytes"]["index"] = sum(p.stat().st_size for p in snapshot.iterdir())
    store.close()
    return result


def neighbour_cosines(
    index: Any, noise: np.ndarray, templates: Templates, template: np.ndarray
) -> dict[str, Any]:
    """Mean cosine to the 1st, 10th and 100th nearest case: of indexed cases, and of real posts."""
    rng = np.random.default_rng(1)
    picked = rng.choice(len(template), size=100, replace=False)
    out: dict[str, Any] = {}
    for name, queries, skip in (
        (
            "indexed cases",
            np.stack(
                [case_vectors(templates, template, int(i), int(i) + 1, noise[i : i + 1])[0] for i in picked]
            ),
            1,
        ),
        (
            "real sample posts",
            templates.vectors[rng.choice(len(templates.vectors), size=100, replace=False)],
            0,
        ),
    ):
        scores = np.array(
            [[h.score for h in index.search(q, "", k=101, mode="dense")][skip : skip + 100] for q in queries]
        )
        out[name] = {f"{k}": float(scores[:, k - 1].mean()) for k in (1, 10, 100)}
    return out


# --- serving --------------------------------------------------------------------------------------


@contextmanager
def timed(target: Any, name: str, laps: dict[str, float], rss: dict[str, int]) -> Iterator[None]:
    """Wrap `target.name` to add its seconds to `laps[name]` and note RSS after it (measuring only)."""
    original = getattr(target, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            laps[name] = laps.get(name, 0.0) + time.perf_counter() - started
            rss[name] = rss_bytes()

    setattr(target, name, wrapper)
    try:
        yield
    finally:
        setattr(target, name, original)


def serve(home: Path, registry: Path, *, routes: int, writes: int, seed: int) -> dict[str, Any]:
    """Start the service on a built home and measure it."""
    from threadpoolctl import threadpool_limits

    import service.runtime
    from ml.index import CaseIndex
    from service.runtime import Runtime

    settings = settings_for(home, registry)
    threadpool_limits(limits=settings.encoder_threads)  # as `casematch serve` does
    result: dict[str, Any] = {"rss_bytes": {"before start": rss_bytes()}}
    laps: dict[str, float] = {}
    rss: dict[str, int] = {}
    started = time.perf_counter()
    with (
        timed(service.runtime, "load_encoder", laps, rss),
        timed(CaseIndex, "load", laps, rss),
        timed(service.runtime, "prepare", laps, rss),
        timed(service.runtime, "load_bundle", laps, rss),
        timed(service.runtime, "_restore_state", laps, rss),
    ):
        runtime = Runtime.start(settings)
    result["start_seconds"] = time.perf_counter() - started
    result["start_laps"] = laps
    result["rss_bytes"] |= {f"after {name}": value for name, value in rss.items()}
    result["rss_bytes"]["after start"] = rss_bytes()
    log(f"  started in {result['start_seconds']:.1f} s, RSS {rss_bytes() / 2**30:.2f} GiB")
    try:
        result |= holdings(runtime)
        result["lexical_budget"] = lexical_budget(runtime, 100, seed=seed)
        result["route_engine"] = route_engine(runtime, routes, seed=seed)
        log(f"  engine.route p50 {result['route_engine']['total']['p50']:.1f} ms")
        result |= through_the_app(runtime, routes=routes, writes=0, seed=seed)
        result["rss_bytes"]["after the route calls"] = rss_bytes()
        log(f"  POST /v1/route p50 {result['app_route']['p50']:.1f} ms")
        result |= through_the_app(runtime, routes=0, writes=writes, seed=seed)
        result["peak_rss_bytes"] = peak_rss_bytes()
    finally:
        runtime.watcher.stop()
        runtime.follower.stop()
        runtime.store.close()  # no snapshot save: the next serve run starts from the built one
    return result


def first_start(home: Path, registry: Path) -> dict[str, Any]:
    """Start on a home whose snapshot holds the index only (as built): doctor activity and the
    answer book are rebuilt by replaying every answer in the store. Then save the full snapshot,
    index and routing state at one watermark, as a worker does when it stops: the serve stage
    starts from it."""
    import service.runtime
    from ml.embeddings import load_encoder
    from service.live_state import ACTIVITY_FILE, ANSWERS_FILE
    from service.runtime import Runtime

    settings = settings_for(home, registry)
    folder = snapshot_dir(settings, load_encoder(settings.encoder).fingerprint.token)
    for name in (ACTIVITY_FILE, ANSWERS_FILE):  # a state saved by an earlier run: this start replays
        (folder / name).unlink(missing_ok=True)
    laps: dict[str, float] = {}
    rss: dict[str, int] = {}
    started = time.perf_counter()
    with timed(service.runtime, "prepare", laps, rss), timed(service.runtime, "_restore_state", laps, rss):
        runtime = Runtime.start(settings, watch=False)
    result: dict[str, Any] = {"start_seconds": time.perf_counter() - started, "start_laps": laps}
    log(f"  started by replaying every answer in {result['start_seconds']:.1f} s")
    clock = time.perf_counter()
    runtime.follower.save_snapshot()
    result["save_seconds"] = time.perf_counter() - clock
    assert folder == runtime.follower.snapshot_dir
    result["state_file_bytes"] = {
        name: (folder / name).stat().st_size for name in (ACTIVITY_FILE, ANSWERS_FILE)
    }
    runtime.store.close()
    return result


def holdings(runtime: Any) -> dict[str, Any]:
    """What the worker holds for its cases and doctors: arrays by their own count, Python objects
    by walking them (each object once)."""
    index = runtime.engine.matcher.index
    activity = runtime.engine.activity
    seen: set[int] = set()

    def size(obj: Any) -> int:
        if id(obj) in seen:
            return 0
        seen.add(id(obj))
        total = sys.getsizeof(obj)
        if isinstance(obj, dict):
            total += sum(size(k) + size(v) for k, v in obj.items())
        elif isinstance(obj, (list, tuple, set, frozenset)):
            total += sum(size(x) for x in obj)
        elif hasattr(obj, "__slots__") and not isinstance(obj, str):
            total += sum(size(getattr(obj, s)) for s in obj.__slots__ if hasattr(obj, s))
        return total

    doctor_objects = size(activity.doctors) + size(activity.slot)
    book = runtime.state.answers._by_case  # the answer book's map (measuring only)
    answer_book = size(book)
    n_doctors = len(activity)
    activity_arrays = activity.nbytes()
    used_rows = activity_arrays * n_doctors // max(activity.capacity, 1)
    return {
        "indexed_cases": len(index),
        "doctors": n_doctors,
        "index_bytes": index.nbytes_by_part(),
        "answer_book_bytes": answer_book,
        "activity_array_bytes": activity_arrays,
        "activity_capacity": activity.capacity,
        "activity_used_row_bytes": used_rows,
        "doctor_object_bytes": doctor_objects,
    }


def route_engine(runtime: Any, count: int, *, seed: int) -> dict[str, Any]:
    """`RoutingEngine.route` on de-identified sample posts, timed in total and by stage."""
    from ml.routing.engine import RouteRequest

    posts = _sample_posts(runtime)
    picked = np.random.default_rng(seed).choice(len(posts), size=min(count + 20, len(posts)), replace=False)
    engine = runtime.engine
    stages: dict[str, list[float]] = defaultdict(list)
    sizes: list[int] = []

    def clocked(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                stages[name].append((time.perf_counter() - started) * 1000)

        return wrapper

    activity = engine.activity
    engine._encode = clocked("encode", engine._encode)
    engine.bundle.predict_cases = clocked("specialties + urgency", engine.bundle.predict_cases)
    engine.matcher.search_with_neighbours = clocked("index search", engine.matcher.search_with_neighbours)
    engine._doctors = clocked("doctors (all)", engine._doctors)
    engine.bundle.ranker.score = clocked("doctors: ranker", engine.bundle.ranker.score)
    original_candidates, original_features = activity.candidates, activity.features

    def candidates(*args: Any, **kwargs: Any) -> Any:
        chosen = original_candidates(*args, **kwargs)
        sizes.append(len(chosen))
        return chosen

    activity.candidates = clocked("doctors: candidates", candidates)
    activity.features = clocked("doctors: features", original_features)
    totals = []
    try:
        for n, i in enumerate(picked):
            post = posts[int(i)]
            started = time.perf_counter()
            engine.route(RouteRequest(post.title, post.text, post.language))
            if n >= 20:  # the first few warm caches up
                totals.append((time.perf_counter() - started) * 1000)
    finally:
        for name in ("_encode", "_doctors"):
            del engine.__dict__[name]
        del engine.bundle.__dict__["predict_cases"]
        del engine.bundle.ranker.__dict__["score"]
        del engine.matcher.__dict__["search_with_neighbours"]
        del activity.__dict__["candidates"], activity.__dict__["features"]
    out = {"total": percentiles(totals)} | {name: percentiles(v[20:]) for name, v in stages.items()}
    out["candidates_per_route"] = percentiles(sizes[20:])
    return out


BUDGETS = (None, 16_000_000, 8_000_000, 4_000_000, 2_000_000, 1_000_000)


def lexical_budget(runtime: Any, count: int, *, seed: int) -> dict[str, Any]:
    """The lexical channel's postings budget (`LexicalConfig.max_postings`) at this size, on
    de-identified sample posts against resolved cases, as a route searches: the lexical search
    alone and the index's hybrid search (ms), the postings scored, and how much of the unbudgeted
    results each budget keeps: its top 100 lexical hits (the fusion's input) and the top 10 fused."""
    from dataclasses import replace

    from ml.index import SearchFilter
    from ml.matching import post_text

    index = runtime.engine.matcher.index
    lexical = index._lexical
    original = lexical.config
    resolved = SearchFilter(resolved_only=True)
    allowed = index._slots.allowed(resolved)
    world = _sample_world(runtime)
    posts = list(world.cases)
    # a world case's diagnosis is its template's: the sample's diagnoses name the conditions
    condition_of = {r.diagnosis: world.truth[r.case_id].condition_id for r in world.resolutions}
    picked = np.random.default_rng(seed + 1).choice(len(posts), size=min(count, len(posts)), replace=False)
    texts = [post_text(posts[int(i)].title, posts[int(i)].text) for i in picked]
    conditions = [world.truth[posts[int(i)].case_id].condition_id for i in picked]
    vectors = runtime.engine.matcher.encoder.encode_queries(texts)
    reference: dict[int, tuple[list[int], list[str]]] = {}
    out: dict[str, Any] = {}
    try:
        for budget in BUDGETS:
            lexical.config = replace(original, max_postings=budget)
            lexical_ms, hybrid_ms, postings, kept_100, kept_10, same = [], [], [], [], [], []
            for n, (text, vector) in enumerate(zip(texts, vectors, strict=True)):
                terms, _ = lexical.query_terms(text)
                postings.append(float(lexical.df[terms].sum()))
                started = time.perf_counter()
                _, slots = lexical.search(text, allowed, 100)
                lexical_ms.append((time.perf_counter() - started) * 1000)
                started = time.perf_counter()
                hits = index.search(vector, text, k=10, search_filter=resolved)
                hybrid_ms.append((time.perf_counter() - started) * 1000)
                ids = [h.case_id for h in hits]
                if budget is None:
                    reference[n] = (slots.tolist(), ids)
                top_100, top_10 = reference[n]
                kept_100.append(len(set(slots.tolist()) & set(top_100)) / max(len(top_100), 1))
                kept_10.append(len(set(ids) & set(top_10)) / max(len(top_10), 1))
                stored = runtime.store.get_cases(ids)
                diagnoses = [c.resolution.diagnosis for c in stored.values() if c.resolution is not None]
                same.append(sum(condition_of.get(d) == conditions[n] for d in diagnoses) / max(len(ids), 1))
            out[str(budget)] = {
                "lexical_ms": percentiles(lexical_ms),
                "hybrid_ms": percentiles(hybrid_ms),
                "postings": percentiles(postings),
                "kept_lexical_100": float(np.mean(kept_100)),
                "kept_fused_10": float(np.mean(kept_10)),
                "same_condition_10": float(np.mean(same)),
                "queries": len(texts),
            }
            log(f"  budget {budget}: lexical p50 {out[str(budget)]['lexical_ms']['p50']:.1f} ms")
    finally:
        lexical.config = original
    return out


def _sample_posts(runtime: Any) -> list[Any]:
    """The committed sample world's posts, de-identified as the store keeps them."""
    return list(_sample_world(runtime).cases)


def _sample_world(runtime: Any) -> Any:
    """The committed sample world (posts de-identified as the store keeps them, and its truth)."""
    from ml.data.synthetic import SyntheticWorld
    from ml.paths import SAMPLE_WORLD_DIR
    from ml.privacy.batch import DeidentifiedCache, packaged_fingerprint

    registry = Path(runtime.settings.mlflow_tracking_uri.removeprefix("sqlite:///")).parent
    cache = DeidentifiedCache(registry / "deidentified.sqlite", packaged_fingerprint())
    try:
        return SyntheticWorld(SAMPLE_WORLD_DIR, cache=cache).read()
    finally:
        cache.close()


def through_the_app(runtime: Any, *, routes: int, writes: int, seed: int) -> dict[str, Any]:
    """POST /v1/route (`routes` calls), then POST /v1/cases and DELETE /v1/cases/{id} (`writes`
    each) through the ASGI app. The case ids erased are world cases with answers."""
    from fastapi.testclient import TestClient

    from ml.paths import SAMPLE_WORLD_DIR
    from ml.synthetic.world import read_table
    from service.app import create_app

    client = TestClient(create_app(runtime))
    headers = {"Authorization": f"Bearer {API_SECRET}"}
    raw = read_table(SAMPLE_WORLD_DIR, "cases").to_pylist()
    rng = np.random.default_rng(seed + 1)
    latencies: dict[str, list[float]] = defaultdict(list)

    def call(name: str, method: str, path: str, body: dict[str, Any] | None, expect: int) -> None:
        started = time.perf_counter()
        response = client.request(method, path, json=body, headers=headers)
        latencies[name].append((time.perf_counter() - started) * 1000)
        if response.status_code != expect:
            raise RuntimeError(f"{method} {path}: {response.status_code} {response.text[:300]}")

    if routes:
        for n, i in enumerate(rng.choice(len(raw), size=min(routes + 20, len(raw)), replace=False)):
            post = raw[int(i)]
            case = {"title": post["title"], "text": post["body"], "language": post["language"]}
            call("route", "POST", "/v1/route", {"case": case}, 200)
            if n < 20:  # warming up
                latencies["route"].pop()
    for k, i in enumerate(rng.choice(len(raw), size=writes, replace=False)):
        post = raw[int(i)]
        body = {
            "id": f"scale-new-{seed}-{k}-{time.time_ns()}",
            "title": post["title"],
            "text": post["body"] + f" (seen again, {k})",  # new content: no cache hit anywhere
            "language": post["language"],
            "country": post["country"],
        }
        call("ingest", "POST", "/v1/cases", body, 201)
    if writes:
        n_cases = len(runtime.engine.matcher.index)
        candidates = (f"c{int(i):08d}" for i in rng.choice(n_cases, size=4 * writes, replace=False))
        erasable = [case_id for case_id in candidates if runtime.store.answers_for_case(case_id)][:writes]
        for case_id in erasable:
            call("erasure", "DELETE", f"/v1/cases/{case_id}", None, 204)
    return {f"app_{name}": percentiles(v) for name, v in latencies.items()}


# --- the candidate cap -----------------------------------------------------------------------------


def _fits(activity: Any, case: Any, doctors: np.ndarray, top: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Specialty and interest fit to the case's top specialties (what the priors weigh)."""
    p = case.specialty_probabilities[top]
    return activity.specialty_mask[doctors][:, top] @ p, activity.interest_mask[doctors][:, top] @ p


def _activity(activity: Any, name: str, doctors: np.ndarray) -> np.ndarray:
    counts = activity.answers if name == "answers_total" else activity.window_counts[name]
    return np.asarray(counts[doctors])


def _fit_times(window: str, *, log: bool = False) -> Callable[..., np.ndarray]:
    def prior(a: Any, case: Any, d: np.ndarray, top: np.ndarray) -> np.ndarray:
        fit, interest = _fits(a, case, d, top)
        counts = _activity(a, window, d)
        return (fit + 0.3 * interest) * (1 + (np.log1p(counts) if log else counts))

    return prior


def _by_activity(window: str) -> Callable[..., np.ndarray]:
    def prior(a: Any, case: Any, d: np.ndarray, top: np.ndarray) -> np.ndarray:
        fit, interest = _fits(a, case, d, top)
        return _activity(a, window, d) + 1e-3 * (fit + 0.3 * interest)  # fit breaks ties

    return prior


def _fit_times_rate(a: Any, case: Any, d: np.ndarray, top: np.ndarray) -> np.ndarray:
    """Fit times a monthly answer rate that keeps recency: the last 30 days plus a twelfth of all."""
    fit, interest = _fits(a, case, d, top)
    return (fit + 0.3 * interest) * (
        1 + _activity(a, "answers_30d", d) + _activity(a, "answers_total", d) / 12
    )


def _specialty_only(a: Any, case: Any, d: np.ndarray, top: np.ndarray) -> np.ndarray:
    return _fits(a, case, d, top)[0] * (1 + _activity(a, "answers_30d", d))


def _fit_only(a: Any, case: Any, d: np.ndarray, top: np.ndarray) -> np.ndarray:
    fit, interest = _fits(a, case, d, top)
    return fit + 0.3 * interest


def _rules(a: Any, case: Any, d: np.ndarray, top: np.ndarray) -> np.ndarray:
    fit, interest = _fits(a, case, d, top)
    first = a.specialty_mask[d][:, top[0]]
    return fit + 0.5 * first + 0.3 * interest + 0.1 * np.log1p(_activity(a, "answers_30d", d))


PRIORS: dict[str, Callable[..., np.ndarray]] = {
    "fit x (1 + answers_30d)": _fit_times("answers_30d"),
    "specialty fit only x (1 + answers_30d)": _specialty_only,
    "fit x (1 + log1p answers_30d)": _fit_times("answers_30d", log=True),
    "fit x (1 + answers_7d)": _fit_times("answers_7d"),
    "fit x (1 + answers_total)": _fit_times("answers_total"),
    "fit x (1 + answers_30d + answers_total / 12) (served)": _fit_times_rate,
    "fit only": _fit_only,
    "answers_30d only": _by_activity("answers_30d"),
    "answers_total only": _by_activity("answers_total"),
    "the untrained ranker's rules": _rules,
}
SHARES = (0.01, 0.02, 0.05, 0.1, 0.25, 0.5)


def candidate_sweep(world_dir: Path, registry: Path, home: Path, caps: Sequence[int]) -> dict[str, Any]:
    """On a synthetic world's dev months (what the doctor gate scores), the candidate cap's cost:

    1. prior choice: for each dev case whose first answerer is a candidate but not a similar case's
       answerer (those always stay), that doctor's rank by each prior among such candidates, as a
       share of them: the share of such cases kept when the cap leaves room for that share;
    2. the gate's metric with a cap: first-answerer recall@10 of the served ranking (ranker fitted
       on the earlier half of dev with the same cap, scored on the later half), as in
       `ml.training.pipeline.train`, for several caps, priors, and no cap.
    """
    import ml.training.interactions as interactions
    from ml.data.synthetic import SyntheticWorld
    from ml.embeddings import load_encoder
    from ml.models.bundle import RoutingBundle
    from ml.models.doctor_ranker import apply_rules
    from ml.privacy.batch import DeidentifiedCache, packaged_fingerprint
    from ml.routing.doctors import DoctorActivity
    from ml.training.evaluate import doctor_metrics
    from ml.training.interactions import nearest_resolved, replay
    from ml.training.pipeline import TrainingConfig, _fit_ranker, load_training_data, train

    encoder = load_encoder("use", threads=1, cache_path=registry / "embeddings.sqlite")
    cache = DeidentifiedCache(registry / "deidentified.sqlite", packaged_fingerprint())
    world = SyntheticWorld(world_dir, cache=cache)
    platform = world.read()
    cache.close()
    config = TrainingConfig()
    data = load_training_data(config, platform, world.split, encoder)
    folder = home / f"candidates-{world_dir.name}.bundle"
    if (folder / "bundle.joblib").exists():
        bundle = RoutingBundle.load(folder)
    else:
        bundle = train(config, platform, world.split, encoder, encoder_spec="use", data=data).bundle
        bundle.save(folder)
    rows = data.rows_of("dev")
    neighbours, _ = nearest_resolved(platform, data.vectors, rows)
    probabilities = dict(
        zip(rows, bundle.router.predict_proba([data.texts[i] for i in rows], data.vectors[rows]), strict=True)
    )
    calls: list[tuple[np.ndarray, dict[str, np.ndarray], set[int]]] = []
    rng = np.random.default_rng(0)

    current: dict[str, Any] = {"cap": None, "prior": None, "record": False}

    class Recording(DoctorActivity):
        def candidates(self, case: Any, **settings: Any) -> Any:
            chosen = super().candidates(case, **{**settings, "max_candidates": current["cap"]})
            if current["record"]:
                top = np.argsort(-case.specialty_probabilities, kind="stable")[
                    : settings.get("top_specialties", 3)
                ]
                kept = {self.slot[d] for d in case.similar_case_answerers if d in self.slot}
                others = np.array([c for c in chosen if c not in kept], dtype=np.intp)
                scores = {name: prior(self, case, others, top) for name, prior in PRIORS.items()}
                calls.append((others, scores | {"random": rng.random(len(others))}, kept))
            return chosen

        def prior(self, case: Any, doctors: Any, top: Any) -> Any:
            prior = current["prior"]
            return super().prior(case, doctors, top) if prior is None else prior(self, case, doctors, top)

    def run(cap: int | None, prior: Callable[..., np.ndarray] | None, *, record: bool = False) -> list[Any]:
        current.update(cap=cap, prior=prior, record=record)
        served = interactions.DoctorActivity
        interactions.DoctorActivity = Recording  # type: ignore[misc]
        try:
            return replay(
                platform,
                data.split,
                data.vectors,
                lambda r: np.array([probabilities[i] for i in r]),
                splits=("dev",),
                neighbours=neighbours,
            )[1]
        finally:
            interactions.DoctorActivity = served  # type: ignore[misc]

    examples = run(None, None, record=True)
    where: dict[str, int] = defaultdict(int)
    ranks: dict[str, list[float]] = defaultdict(list)
    for example, (others, scores, kept) in zip(examples, calls, strict=True):
        first = example.first_answerer
        if first is None:
            continue
        if first in kept:
            where["a similar case's answerer (always kept)"] += 1
        elif first not in set(others.tolist()):
            where["not a candidate at all"] += 1
        else:
            where["another candidate (the cap's fill)"] += 1
            at = int(np.flatnonzero(others == first)[0])
            for name, score in scores.items():
                ahead = np.sum(score > score[at]) + np.sum((score == score[at]) & (others < first))
                ranks[name].append(float((ahead + 1) / len(others)))
    result: dict[str, Any] = {
        "world": world_dir.name,
        "doctors": len(platform.doctors),
        "dev_cases": len(examples),
        "candidates_median": float(np.median([len(e.candidates) for e in examples])),
        "similar_case_answerers_median": float(np.median([len(kept) for _, _, kept in calls])),
        "first_answerer_is": dict(where),
        "kept_at_share": {
            name: {str(share): float(np.mean(np.array(r) <= share)) for share in SHARES}
            for name, r in ranks.items()
        },
        "gate": {},
    }

    def gate(cap: int | None, prior: Callable[..., np.ndarray] | None) -> dict[str, float]:
        dev = run(cap, prior)
        half = len(dev) // 2
        ranker = _fit_ranker(config.doctors, dev[:half])
        scored = doctor_metrics(
            dev[half:], lambda e: apply_rules(ranker.score(e.features), e.features, bundle.rules), prefix="s"
        )
        return {
            "recall@10": scored["s.first_answerer.recall@10"],
            "mrr": scored["s.first_answerer.mrr"],
            "candidate_recall": scored["s.candidate_recall"],
            "candidates_median": float(np.median([len(e.candidates) for e in dev[half:]])),
            "cases": float(len(dev) - half),
        }

    result["gate"]["no cap"] = gate(None, None)
    log(f"  no cap: {result['gate']['no cap']}")
    for cap in caps:
        for name, prior in (
            ("fit x (1 + answers_30d + answers_total / 12) (served)", None),
            ("fit x (1 + answers_30d)", PRIORS["fit x (1 + answers_30d)"]),
            ("fit only", _fit_only),
            ("random", lambda a, c, d, t: rng.random(len(d))),
        ):
            result["gate"][f"{cap}|{name}"] = gate(cap, prior)
            log(f"  cap {cap}, {name}: {result['gate'][f'{cap}|{name}']}")
    return result


def candidate_report(sweeps: Sequence[dict[str, Any]]) -> list[str]:
    lines = [
        "## Doctor candidates: the cap and the recall it costs",
        "",
        "`DoctorActivity.candidates` keeps every similar case's answerer and fills the rest of "
        f"`max_candidates` (default {MAX_CANDIDATES_DEFAULT:,}) by a prior. Measured on synthetic worlds' "
        "dev months with `--stage candidates` (see `candidate_sweep`): a world of 500 doctors has pools of "
        "a few hundred, so the caps below are small enough to bind there; at 500,000 doctors a 2,000 cap "
        "leaves room for about 2% of a pool (the route table above: pools of tens of thousands).",
        "",
    ]
    for sweep in sweeps:
        lines += [
            f"### World `{sweep['world']}`: {sweep['doctors']:,} doctors, {sweep['dev_cases']:,} dev cases; "
            f"candidates per case (no cap): median {sweep['candidates_median']:,.0f}, of which similar "
            f"cases' answerers {sweep['similar_case_answerers_median']:,.0f}",
            "",
            f"Command: `{sweep.get('command', '?')}`.",
            "",
            "Where each dev case's first answerer was: "
            + "; ".join(f"{name}: {count}" for name, count in sweep["first_answerer_is"].items())
            + ".",
            "",
            "Of the cases whose first answerer is among the fill, the share a prior keeps when the cap "
            "leaves room for a given share of the fill:",
            "",
        ]
        rows = [
            [name, *(f"{kept[str(s)]:.3f}" for s in SHARES)] for name, kept in sweep["kept_at_share"].items()
        ]
        lines += _table(["prior", *(f"{s:.0%}" for s in SHARES)], rows)
        lines += [
            "The gate's metric (first-answerer recall@10 of the served ranking on the later half of dev, the "
            "ranker fitted on the earlier half with the same cap), and candidate recall (the first answerer "
            "among the candidates):",
            "",
        ]
        rows = []
        for key, g in sweep["gate"].items():
            cap, _, prior = key.partition("|")
            rows.append(
                [
                    cap,
                    prior or "-",
                    f"{g['candidates_median']:,.0f}",
                    f"{g['recall@10']:.3f}",
                    f"{g['mrr']:.3f}",
                    f"{g['candidate_recall']:.3f}",
                    f"{g['cases']:.0f}",
                ]
            )
        header = ["cap", "prior", "median candidates", "recall@10", "MRR", "candidate recall", "cases"]
        lines += _table(header, rows, left=2)
    return lines


# --- the report -----------------------------------------------------------------------------------


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], *, left: int = 1) -> list[str]:
    """A markdown table; the first `left` columns left-aligned, the rest right-aligned."""
    align = ["---"] * left + ["---:"] * (len(header) - left)
    return [
        "| " + " | ".join(header) + " |",
        "|" + "|".join(align) + "|",
        *("| " + " | ".join(row) + " |" for row in rows),
        "",
    ]


def _gib(value: float) -> str:
    return f"{value / 2**30:.2f} GiB"


def _mib(value: float) -> str:
    return f"{value / 2**20:,.0f} MiB"


def _ms(stats: dict[str, float] | None) -> str:
    return "-" if stats is None else f"{stats['p50']:.1f} / {stats['p99']:.1f}"


def _cores(runs: list[dict[str, Any]]) -> str:
    cores = {run["serve"].get("context", {}).get("cores") for run in runs} - {None}
    return (
        " or ".join(f"{c} core{'s' if c > 1 else ''}" for c in sorted(cores))
        or "an unrecorded number of cores"
    )


def _count(stats: dict[str, float]) -> str:
    return f"{stats['p50']:,.0f} / {stats['max']:,.0f}"


def _shape_cell(a: dict[str, float]) -> str:
    quantiles = ", ".join(f"{a[k]:.0f}" for k in ("q50", "q90", "q99", "max"))
    return f"{a['mean']:.1f}, {quantiles}, {a['zero_share']:.1%}"


def per_case(serve: dict[str, Any]) -> float:
    """Bytes per indexed case a worker holds for its cases: the index and the answer book."""
    return (sum(serve["index_bytes"].values()) + serve["answer_book_bytes"]) / serve["indexed_cases"]


def per_doctor(serve: dict[str, Any]) -> float:
    """Bytes per doctor in doctor activity: its arrays' used rows and the profile objects."""
    return (serve["activity_used_row_bytes"] + serve["doctor_object_bytes"]) / serve["doctors"]


def _verdict(value: float, target: float, unit: str) -> str:
    if value <= target:
        return f"met ({value:,.1f} {unit} <= {target:,.0f})"
    return f"**missed** by {value - target:,.1f} {unit} ({value / target:.1f}x: {value:,.1f} > {target:,.0f})"


def report(runs: list[dict[str, Any]], machine: dict[str, Any]) -> str:
    sizes = [f"{r['build']['cases']:,} / {r['build']['doctors']:,}" for r in runs]
    serves = [r["serve"] for r in runs]
    lines = [
        "# Scale: a world of 1M cases and 500k doctors served by one worker",
        "",
        f"Each size (cases / doctors) was built, then served, in a process of its own, pinned to "
        f"{_cores(runs)} of a 2-core machine shared with other work (the load averages below: "
        "every latency includes waiting for that core). How the world is made and what each number means: "
        "the docstring of `bench/scale.py`.",
        "",
    ]
    for size, run in zip(sizes, runs, strict=True):
        for stage in ("build", "snapshot", "serve"):
            c = run.get(stage, {}).get("context")
            if c:
                lines.append(
                    f"- {size} {stage}: `{c['command']}` ({c['date']}; load average {c['load_start']} "
                    f"at the start, {c['load_end']} at the end)"
                )
    lines += [
        "",
        "## Targets",
        "",
    ]
    largest = serves[-1]
    checks = [
        ("start-up from the snapshot", largest["start_seconds"], TARGETS["start_seconds"], "s"),
        ("memory per indexed case (index + answer book)", per_case(largest), TARGETS["bytes_per_case"], "B"),
        ("memory per doctor (activity)", per_doctor(largest), TARGETS["bytes_per_doctor"], "B"),
        ("route p99, engine.route", largest["route_engine"]["total"]["p99"], TARGETS["route_p99_ms"], "ms"),
        ("route p99, POST /v1/route", largest["app_route"]["p99"], TARGETS["route_p99_ms"], "ms"),
    ]
    lines += [f"At {sizes[-1]}:", ""]
    lines += [f"- {name}: {_verdict(value, target, unit)}" for name, value, target, unit in checks]
    lines += [
        "",
        *_table(
            ["", "target", *sizes],
            [
                ["start-up from the snapshot", "<= 60 s", *(f"{s['start_seconds']:.1f} s" for s in serves)],
                ["RSS after start", "-", *(_gib(s["rss_bytes"]["after start"]) for s in serves)],
                [
                    "per indexed case: index + answer book",
                    "<= 4,096 B",
                    *(f"{per_case(s):,.0f} B" for s in serves),
                ],
                [
                    "per doctor: activity arrays + profile objects",
                    "<= 3,072 B",
                    *(f"{per_doctor(s):,.0f} B" for s in serves),
                ],
                [
                    "route p50 / p99 ms, engine.route",
                    "p99 <= 100",
                    *(_ms(s["route_engine"]["total"]) for s in serves),
                ],
                ["route p50 / p99 ms, POST /v1/route", "p99 <= 100", *(_ms(s["app_route"]) for s in serves)],
                ["ingest p50 / p99 ms, POST /v1/cases", "-", *(_ms(s["app_ingest"]) for s in serves)],
                [
                    "erasure p50 / p99 ms, DELETE /v1/cases/{id}",
                    "-",
                    *(_ms(s["app_erasure"]) for s in serves),
                ],
            ],
        ),
    ]
    lines += ["## Where start-up time goes (seconds)", ""]
    stages = {
        "load_encoder": "loading the encoder",
        "load": "reading the index snapshot (`CaseIndex.load`, inside prepare)",
        "prepare": "prepare(): migrate, open the store, encoder, snapshot, catch up",
        "load_bundle": "loading the champion bundle",
        "_restore_state": "restoring doctor activity and the answer book (snapshot, then the feed)",
    }
    rows = [[name, *(f"{s['start_laps'].get(key, 0):.1f}" for s in serves)] for key, name in stages.items()]
    lines += _table(["stage", *sizes], [*rows, ["total", *(f"{s['start_seconds']:.1f}" for s in serves)]])
    firsts = [r.get("snapshot") for r in runs]
    if any(firsts):
        lines += [
            "",
            "Without the routing-state snapshot (the `snapshot` stage: a home with the index snapshot only, "
            "as a first start after `casematch reindex` or an upgrade finds it), start-up replays every "
            "answer in the store in time order, then saves the state beside the index for the next start:",
            "",
            *_table(
                ["seconds", *sizes],
                [
                    [
                        "start-up replaying every answer",
                        *(f"{f['start_seconds']:.1f}" if f else "-" for f in firsts),
                    ],
                    [
                        "of which the replay",
                        *(f"{f['start_laps']['_restore_state']:.1f}" if f else "-" for f in firsts),
                    ],
                    [
                        "saving index + state snapshot",
                        *(f"{f['save_seconds']:.1f}" if f else "-" for f in firsts),
                    ],
                    [
                        "state snapshot on disk: activity, answer book",
                        *(
                            ", ".join(_mib(v) for v in f["state_file_bytes"].values()) if f else "-"
                            for f in firsts
                        ),
                    ],
                ],
            ),
        ]
    lines += [""]
    lines += ["## Where memory goes", ""]
    keys = dict.fromkeys(key for s in serves for key in s["rss_bytes"])
    rows = [
        [f"RSS {key}", *(_gib(s["rss_bytes"][key]) if key in s["rss_bytes"] else "-" for s in serves)]
        for key in keys
    ]
    rows += [
        [f"index: {part}", *(_mib(s["index_bytes"][part]) for s in serves)]
        for part in serves[0]["index_bytes"]
    ]
    rows += [
        ["answer book (Python dicts)", *(_mib(s["answer_book_bytes"]) for s in serves)],
        ["doctor activity arrays (at capacity)", *(_mib(s["activity_array_bytes"]) for s in serves)],
        ["doctor profiles and slot map (Python objects)", *(_mib(s["doctor_object_bytes"]) for s in serves)],
    ]
    lines += _table(["", *sizes], rows)
    lines += ["## Where route time goes (engine.route, ms, p50 / p99)", ""]
    stages_ms = list(
        dict.fromkeys(k for s in serves for k in s["route_engine"] if k != "candidates_per_route")
    )
    rows = [[stage, *(_ms(s["route_engine"].get(stage)) for s in serves)] for stage in stages_ms]
    rows.append(
        [
            "candidates per route (p50 / max)",
            *(_count(s["route_engine"]["candidates_per_route"]) for s in serves),
        ]
    )
    lines += _table(["stage", *sizes], rows)
    budgeted = [
        (size, s["lexical_budget"]) for size, s in zip(sizes, serves, strict=True) if "lexical_budget" in s
    ]
    if budgeted:
        lines += [
            "## The lexical channel's postings budget",
            "",
            "`LexicalConfig.max_postings` (served: 2,000,000) scores a query's rarest terms first, up to "
            "that many postings, and leaves out the commonest (low idf, long postings). Sample posts against "
            "resolved cases, as routes search; kept = the share of the unbudgeted results (the lexical "
            "top 100 fed to the fusion, the fused top 10 shown) that the budget still returns; of the "
            "post's condition = the share of the fused top 10 resolved with the post's condition (a world "
            "case has its template's).",
            "",
        ]
        for size, table in budgeted:
            rows = [
                [
                    "none" if budget == "None" else f"{int(budget):,}",
                    f"{b['postings']['p50']:,.0f}",
                    _ms(b["lexical_ms"]),
                    _ms(b["hybrid_ms"]),
                    f"{b['kept_lexical_100']:.3f}",
                    f"{b['kept_fused_10']:.3f}",
                    f"{b['same_condition_10']:.3f}" if "same_condition_10" in b else "-",
                ]
                for budget, b in table.items()
            ]
            queries = next(iter(table.values()))["queries"]
            lines += [f"{size}, {queries} queries:", ""]
            lines += _table(
                [
                    "budget",
                    "postings scored p50",
                    "lexical ms p50 / p99",
                    "hybrid ms p50 / p99",
                    "kept: lexical top 100",
                    "kept: fused top 10",
                    "fused top 10 of the post's condition",
                ],
                rows,
            )
            lines += [""]
    lines += ["## The worlds", ""]
    rows = []
    for run in runs:
        w = run["build"]["world"]
        a = w["answers_per_doctor"]
        rows.append(
            [
                f"{w['cases']:,} / {w['doctors']:,}",
                f"{w['answers']:,}",
                f"{w['answers_per_case']:.2f}",
                f"{w['resolved_share']:.1%}",
                f"{w['spanish_share']:.1%}",
                f"{w['distinct_texts']:,}",
                _shape_cell(a),
            ]
        )
    s0 = runs[0]["build"]["world"]["sample_answers_per_doctor"]
    rows.append(
        [
            "sample world: 2,000 / 500",
            "8,755",
            "4.38",
            "88.6%",
            "34.5%",
            "2,000",
            _shape_cell(s0),
        ]
    )
    header = ["cases / doctors", "answers", "answers/case", "resolved", "Spanish", "distinct texts"]
    lines += _table([*header, "answers per doctor: mean, median, p90, p99, max, share with none"], rows)
    lines += [
        "The benchmark worlds have 2 cases per doctor where the sample has 4, so half the answers per "
        "doctor, in the same shape.",
        "",
        "Mean cosine to the k-th nearest indexed case (dense search) from indexed cases and from real sample "
        "posts (their real USE vectors):",
        "",
    ]
    rows = [
        [sizes[i], name, *(f"{values[k]:.3f}" for k in ("1", "10", "100"))]
        for i, run in enumerate(runs)
        for name, values in run["build"]["neighbours"].items()
    ]
    lines += _table(["size", "queries", "1st", "10th", "100th"], rows, left=2)
    lines += ["## Building (not a target)", ""]
    stage_names = list(runs[0]["build"]["seconds"])
    rows = [
        [
            sizes[i],
            *(f"{run['build']['seconds'][name]:,.0f}" for name in stage_names),
            _gib(run["build"]["peak_rss_bytes"]),
            _gib(run["build"]["disk_bytes"].get("casematch.db", 0)),
            _gib(run["build"]["disk_bytes"]["index"]),
        ]
        for i, run in enumerate(runs)
    ]
    lines += _table(
        ["size", *(f"{n} s" for n in stage_names), "peak RSS", "store on disk", "snapshot on disk"], rows
    )
    return "\n".join(lines)


# --- entry point ----------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--sizes", default=DEFAULT_SIZES, help="cases:doctors, comma-separated (default %(default)s)"
    )
    parser.add_argument(
        "--home", type=Path, default=Path("/tmp/casematch-scale"), help="where homes are kept"
    )
    parser.add_argument("--routes", type=int, default=300, help="route calls per path (after 20 to warm up)")
    parser.add_argument("--writes", type=int, default=50, help="ingests and erasures")
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument(
        "--stage", choices=("all", "build", "snapshot", "serve", "report", "candidates"), default="all"
    )
    parser.add_argument(
        "--world",
        type=Path,
        help="--stage candidates: a synthetic world folder (default: the committed sample)",
    )
    parser.add_argument(
        "--caps", default="50,75,100", help="--stage candidates: caps to score (default %(default)s)"
    )
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "scale.md")
    parser.add_argument("--clean", action="store_true", help="delete the size homes at the end")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    registry = args.home / "registry"
    if args.stage == "candidates":
        from ml.paths import SAMPLE_WORLD_DIR

        ensure_registry(registry)
        world_dir = args.world or SAMPLE_WORLD_DIR
        sweep = candidate_sweep(world_dir, registry, args.home, [int(c) for c in args.caps.split(",")])
        sweep["command"] = " ".join(["taskset -c 1 .venv/bin/python bench/scale.py", *sys.argv[1:]])
        (args.home / f"candidates-{world_dir.name}.json").write_text(json.dumps(sweep, indent=1))
        return
    sizes = [tuple(int(x) for x in size.split(":")) for size in args.sizes.split(",")]
    if args.stage in ("build", "snapshot", "serve"):  # one size, in this process (run by "all")
        ((cases, doctors),) = sizes
        home = args.home / f"{cases}-{doctors}"
        context = {
            "command": " ".join(["taskset -c 1 .venv/bin/python bench/scale.py", *sys.argv[1:]]),
            "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "load_start": ", ".join(f"{x:.1f}" for x in os.getloadavg()),
            "cores": len(os.sched_getaffinity(0)),
        }
        if args.stage == "build":
            result = build(home, registry, cases, doctors, seed=args.seed)
        elif args.stage == "snapshot":
            result = first_start(home, registry)
        else:
            result = serve(home, registry, routes=args.routes, writes=args.writes, seed=args.seed)
        result["context"] = context | {"load_end": ", ".join(f"{x:.1f}" for x in os.getloadavg())}
        (home.parent / f"{cases}-{doctors}.{args.stage}.json").write_text(json.dumps(result, indent=1))
        return
    machine = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cores": len(os.sched_getaffinity(0)),
        "load_start": ", ".join(f"{x:.1f}" for x in os.getloadavg()),
        "python": platform.python_version(),
    }
    if args.stage == "all":
        ensure_registry(registry)
        for cases, doctors in sizes:
            for stage in ("build", "snapshot", "serve"):
                log(f"{stage} {cases:,} cases / {doctors:,} doctors")
                subprocess.run(
                    [
                        sys.executable,
                        __file__,
                        "--stage",
                        stage,
                        "--sizes",
                        f"{cases}:{doctors}",
                        "--home",
                        str(args.home),
                        "--routes",
                        str(args.routes),
                        "--writes",
                        str(args.writes),
                        "--seed",
                        str(args.seed),
                    ],
                    check=True,
                )
    machine["load_end"] = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    runs = [
        {
            stage: json.loads((args.home / f"{c}-{d}.{stage}.json").read_text())
            for stage in ("build", "snapshot", "serve")
            if (args.home / f"{c}-{d}.{stage}.json").exists()
        }
        for c, d in sizes
        if (args.home / f"{c}-{d}.serve.json").exists()
    ]
    sweeps = [json.loads(p.read_text()) for p in sorted(args.home.glob("candidates-*.json"))]
    args.out.write_text(
        report(runs, machine) + "\n".join(candidate_report(sweeps)) if sweeps else report(runs, machine)
    )
    log(f"wrote {args.out}")
    if args.clean:
        for cases, doctors in sizes:
            shutil.rmtree(args.home / f"{cases}-{doctors}", ignore_errors=True)


if __name__ == "__main__":
    main()
