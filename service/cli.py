"""`casematch`: the command line of the case-matching service."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
import yaml
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from ml.embeddings import Encoder, load_encoder
from ml.evaluation.corpora import CORPORA_DIR, SHARED_DATA, CorpusMissingError
from ml.synthetic.knowledge import (
    DEFAULT_KB_DIR,
    KnowledgeBase,
    KnowledgeBaseError,
    coverage_report,
    load_knowledge_base,
)
from ml.taxonomy import load_taxonomy
from service.settings import Settings

if TYPE_CHECKING:
    from ml.data import TimeSplit
    from ml.models.bundle import RoutingBundle
    from ml.training.pipeline import TrainingConfig, TrainingData, TrainingResult

app = typer.Typer(
    help="casematch: route hard patient cases to the right specialties, doctors and similar resolved cases.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console(stderr=True)


@app.callback()
def _main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="log debug messages")] = False,
) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s"
    )
    # faiss logs its probing of CPU-specific builds at INFO; only --verbose wants that.
    logging.getLogger("faiss.loader").setLevel(logging.DEBUG if verbose else logging.WARNING)
    # Presidio logs every analysis at INFO ("Fetching all recognizers ..."): noise, once per post.
    logging.getLogger("presidio-analyzer").setLevel(logging.DEBUG if verbose else logging.WARNING)


class _RichProgress:
    """Shows the generator's stages as progress bars."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._task: TaskID | None = None

    def stage(self, name: str, total: int) -> None:
        self._task = self._progress.add_task(name, total=total)

    def advance(self, n: int = 1) -> None:
        if self._task is not None:
            self._progress.advance(self._task, n)


@app.command()
def synth(
    name: Annotated[str, typer.Option(help="world name: written to <synthetic dir>/<name>/")] = "world",
    cases: Annotated[int, typer.Option(min=1, help="number of cases")] = 20_000,
    doctors: Annotated[int, typer.Option(min=20, help="number of doctors")] = 5_000,
    seed: Annotated[int, typer.Option(help="random seed: the same seed gives the same bytes")] = 20251,
    out: Annotated[
        Path | None, typer.Option(help="output folder (default: $CASEMATCH_SYNTHETIC_DIR/<name>)")
    ] = None,
    kb: Annotated[Path, typer.Option(help="knowledge base folder (YAML)")] = DEFAULT_KB_DIR,
    force: Annotated[bool, typer.Option(help="overwrite an existing, different world")] = False,
) -> None:
    """Generate a synthetic bilingual world of doctors, cases, answers and resolutions (Parquet).

    Does nothing when the folder already holds the very world these options would generate.
    """
    from ml.synthetic.world import WorldConfig, generate_world, is_up_to_date, read_manifest, write_world

    settings = Settings()
    out_dir = out or settings.synthetic_dir / name
    knowledge = _load_kb(kb)
    try:
        config = WorldConfig(name=name, seed=seed, n_cases=cases, n_doctors=doctors)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise typer.BadParameter(first["msg"], param_hint=str(first["loc"][0])) from None
    existing = read_manifest(out_dir)
    if existing is not None and not force:
        if is_up_to_date(out_dir, config, knowledge):
            console.print(f"world {name!r} in {out_dir} is up to date")
            _print_stats(name, existing["stats"])
            return
        chosen = ("name", "seed", "n_cases", "n_doctors")  # what this command's options set
        if any(existing.get("config", {}).get(key) != getattr(config, key) for key in chosen):
            console.print(
                f"[yellow]{out_dir} holds a world made with other options; pass --force to overwrite it.[/]"
            )
            raise typer.Exit(code=1)
        # Same options, but the knowledge base or generator changed (or files were damaged):
        # the world is derived data, so it is simply made again.
        console.print(f"world {name!r} in {out_dir} is out of date; generating it again")
    started = time.perf_counter()
    with _progress_bar() as bar:
        world = generate_world(config, knowledge, load_taxonomy(), progress=_RichProgress(bar))
    write_world(world, out_dir)
    elapsed = time.perf_counter() - started
    console.print(f"wrote world {name!r} to {out_dir} in {elapsed:.1f} s")
    _print_stats(name, world.stats)


def _print_stats(name: str, stats: dict[str, float]) -> None:
    table = Table(title=f"world {name!r}")
    table.add_column("statistic")
    table.add_column("value", justify="right")
    for key, value in stats.items():
        table.add_row(key, f"{value:g}")
    Console().print(table)


@app.command("index")
def build_index(
    world: Annotated[
        str, typer.Option(help="synthetic world to index (a name under the synthetic dir)")
    ] = "sample",
    all_cases: Annotated[bool, typer.Option("--all", help="index unresolved cases too")] = False,
) -> None:
    """Build the similar-cases index from a synthetic world's resolved cases, into $CASEMATCH_HOME/index."""
    from ml.matching import Matcher
    from ml.synthetic.corpus import world_case_texts

    settings = Settings()
    world_dir = _world_dir(settings, world)
    texts = world_case_texts(world_dir, resolved_only=not all_cases)
    with _batch_encoder(settings) as encoder, _progress_bar() as bar:
        matcher = Matcher.empty(encoder)
        started = time.perf_counter()
        task = bar.add_task("encoding", total=len(texts))
        matcher.add(texts, on_batch=lambda n: bar.advance(task, n))
    matcher.index.watermark = {"world": world, "cases": len(texts)}
    target = settings.index_dir_for(matcher.encoder.fingerprint.token)
    matcher.index.save(target)
    console.print(
        f"indexed {len(texts)} cases of world {world!r} with {matcher.encoder.name} in "
        f"{time.perf_counter() - started:.1f} s -> {target}"
    )


@app.command()
def search(
    text: Annotated[str, typer.Argument(help="a case post, in English or Spanish")],
    k: Annotated[int, typer.Option(min=1, max=100, help="how many similar cases")] = 5,
    language: Annotated[str | None, typer.Option(help="only cases in this language (en, es)")] = None,
    mode: Annotated[str, typer.Option(help="hybrid, dense or lexical")] = "hybrid",
) -> None:
    """Find the indexed cases most like TEXT (build the index first with `casematch index`)."""
    from ml.index import CaseIndex, SearchFilter
    from ml.matching import Matcher

    if mode not in ("hybrid", "dense", "lexical"):
        raise typer.BadParameter(f"mode {mode!r} is not hybrid, dense or lexical", param_hint="--mode")
    settings = Settings()
    encoder = _encoder(settings)
    try:
        index = CaseIndex.load(
            settings.index_dir_for(encoder.fingerprint.token), expected_fingerprint=encoder.fingerprint.token
        )
    except (FileNotFoundError, ValueError) as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(code=1) from None
    hits = Matcher(encoder, index).search(
        text,
        k=k,
        search_filter=SearchFilter(language=language),
        mode=mode,  # type: ignore[arg-type]
    )
    table = Table(title=f"{len(hits)} similar cases ({mode})")
    for column in ("case", "score", "dense", "lexical"):
        table.add_column(column, justify="left" if column == "case" else "right")
    for hit in hits:
        table.add_row(
            hit.case_id,
            f"{hit.score:.4f}",
            "-" if hit.dense_score is None else f"{hit.dense_score:.3f}",
            "-" if hit.lexical_score is None else f"{hit.lexical_score:.1f}",
        )
    Console().print(table)


@app.command()
def reindex(
    encoder: Annotated[
        str | None, typer.Option(help="encoder to re-embed every case under [default: CASEMATCH_ENCODER]")
    ] = None,
    ray_address: Annotated[
        str | None,
        typer.Option(help="Ray cluster (host:port, ray://host:port or auto) [default: a local Ray]"),
    ] = None,
    workers: Annotated[
        int | None, typer.Option(min=1, max=256, help="encoder actors [default: one per CPU Ray reports]")
    ] = None,
) -> None:
    """Re-embed every stored case under ENCODER on Ray, into that encoder's own index snapshot.

    The service keeps serving from its current snapshot meanwhile. To switch, set CASEMATCH_ENCODER
    to the new encoder and restart the workers (behind a load balancer, one replica at a time: no
    downtime): each loads the new snapshot and catches up with the writes made since, without
    re-encoding. The MLflow champion must have been trained with the same encoder.
    """
    from ml.embeddings.distributed import RayEncoder, RayUnavailableError
    from ml.matching import Matcher
    from service.follower import StoreFollower
    from service.store.migrate import upgrade_to_head
    from service.store.repository import CaseStore

    settings = Settings()
    spec = encoder or settings.encoder
    upgrade_to_head(settings.database_url)
    store = CaseStore.from_url(settings.database_url)
    started = time.perf_counter()
    try:
        with RayEncoder(spec, address=ray_address, workers=workers) as on_ray:
            target = settings.index_dir_for(on_ray.fingerprint.token)
            follower = StoreFollower(store, Matcher.empty(on_ray), target)
            with _progress_bar() as bar:
                task = bar.add_task(f"re-embedding on {on_ray.workers} Ray workers", total=store.head_seq())
                follower.catch_up(on_batch=lambda n: bar.advance(task, n))
            follower.save_snapshot()
    except RayUnavailableError as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(code=2) from None
    except ValueError as exc:  # an unknown encoder spec
        console.print(f"[red]CASEMATCH_ENCODER: {exc}[/]")
        raise typer.Exit(code=2) from None
    finally:
        store.close()
    console.print(
        f"re-embedded {len(follower.matcher.index)} cases under {spec!r} in "
        f"{time.perf_counter() - started:.1f} s -> {target}; serve with CASEMATCH_ENCODER={spec}"
    )


@app.command("kb")
def kb_check(
    path: Annotated[Path, typer.Argument(help="knowledge base folder, or one YAML file")] = DEFAULT_KB_DIR,
) -> None:
    """Validate the clinical knowledge base and show how many conditions each specialty leads."""
    Console().print(coverage_report(_load_kb(path)))


@app.command()
def settings() -> None:
    """Show the settings in force (from CASEMATCH_* variables and .env)."""
    for key, value in Settings().model_dump().items():
        if key == "api_keys":  # secrets never reach a terminal or a log
            names = [entry.split(":")[0] for entry in str(value).split(",") if entry.strip()]
            value = f"<{len(names)} key(s): {', '.join(names)}>" if names else "<none>"
        Console().print(f"CASEMATCH_{key.upper()}={value}")


def _progress_bar() -> Progress:
    return Progress(
        TextColumn("{task.description:>8}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )


def _world_dir(settings: Settings, world: str) -> Path:
    world_dir = settings.synthetic_dir / world
    if not (world_dir / "manifest.json").exists():
        console.print(
            f"[red]no synthetic world {world!r} in {settings.synthetic_dir}; run `casematch synth`[/]"
        )
        raise typer.Exit(code=1)
    return world_dir


def _encoder(settings: Settings) -> Encoder:
    """The configured encoder, on `CASEMATCH_ENCODER_THREADS` threads."""
    from ml.index import set_search_threads

    set_search_threads(settings.encoder_threads)  # encoder and FAISS share the same small budget
    try:
        return load_encoder(
            settings.encoder, threads=settings.encoder_threads, cache_path=settings.embedding_cache
        )
    except ValueError as exc:
        console.print(f"[red]CASEMATCH_ENCODER: {exc}[/]")
        raise typer.Exit(code=2) from None


@contextmanager
def _batch_encoder(settings: Settings) -> Iterator[Encoder]:
    """The encoder of a batch job (training, indexing a world): behind the embedding cache, on
    one in-process thread until the job has met `CASEMATCH_RAY_FROM_TEXTS` uncached posts, then
    on Ray (local, or `CASEMATCH_RAY_ADDRESS`), stopped when the job ends."""
    from ml.embeddings.cache import CachingEncoder, EmbeddingCache
    from ml.embeddings.distributed import BatchJobEncoder, RayUnavailableError
    from ml.index import set_search_threads

    set_search_threads(len(os.sched_getaffinity(0)))  # FAISS may use every core in a batch job
    try:
        local = load_encoder(settings.encoder, threads=1)
    except ValueError as exc:
        console.print(f"[red]CASEMATCH_ENCODER: {exc}[/]")
        raise typer.Exit(code=2) from None
    jobs = BatchJobEncoder(
        local, settings.encoder, address=settings.ray_address, ray_from=settings.ray_from_texts
    )
    try:
        yield CachingEncoder(jobs, EmbeddingCache(settings.embedding_cache))
    except RayUnavailableError as exc:
        console.print(f"[red]CASEMATCH_RAY_ADDRESS: {exc}[/]")
        raise typer.Exit(code=2) from None
    finally:
        jobs.close()


def _load_kb(path: Path) -> KnowledgeBase:
    try:
        return load_knowledge_base(path)
    except KnowledgeBaseError as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(code=2) from None


# --- models: train, promote, bootstrap -------------------------------------------------------------


def _tracking(settings: Settings) -> None:
    from ml.registry import configure

    settings.home.mkdir(parents=True, exist_ok=True)
    configure(settings.mlflow_tracking_uri, settings.home / "mlartifacts")


def _training_config(config_file: Path | None, corpora: str | None) -> TrainingConfig:
    from ml.training.pipeline import TrainingConfig

    try:
        values = (yaml.safe_load(config_file.read_text()) or {}) if config_file else {}
        if not isinstance(values, dict):
            raise ValueError(f"{config_file} must hold a mapping of TrainingConfig fields")
        if corpora is not None:
            values["corpora"] = [c for c in corpora.split(",") if c]
        return TrainingConfig.model_validate(values or {})
    except (OSError, ValueError, yaml.YAMLError) as exc:  # pydantic's ValidationError is a ValueError
        console.print(f"[red]training config: {exc}[/]")
        raise typer.Exit(code=2) from None


_SOURCE_HELP = (
    "world: the synthetic world named by --world; store: everything CASEMATCH_DATABASE_URL recorded"
)
_SHARE_HELP = "share of the store's cases, by posting time, for the {} split (newest last)"
# Options `train` and `retrain` share.
ConfigFile = Annotated[
    Path | None,
    typer.Option(
        help="YAML file of TrainingConfig values (e.g. `specialty: {c: 0.5}`); unset ones keep defaults"
    ),
]
CorporaOption = Annotated[
    str | None, typer.Option(help="real corpora to add, comma-separated: mtsamples,codiesp ('' for none)")
]
DevShare = Annotated[float, typer.Option(min=0, max=0.5, help=_SHARE_HELP.format("dev"))]
TestShare = Annotated[float, typer.Option(min=0, max=0.5, help=_SHARE_HELP.format("test"))]


@app.command()
def train(
    source: Annotated[str, typer.Option(help=_SOURCE_HELP)] = "world",
    world: Annotated[str, typer.Option(help="synthetic world to train on (--source world)")] = "world",
    config: ConfigFile = None,
    corpora: CorporaOption = None,
    dev_share: DevShare = 0.1,
    test_share: TestShare = 0.1,
) -> None:
    """Train every routing model, evaluate on dev, log an MLflow run, register a version.

    The new version is not served until `casematch promote` makes it the champion. With
    `--source store` the models learn from what the platform recorded: specialties from
    resolutions, the doctor ranker from answers and acceptances in time order; urgency, which the
    store has no labels for, carries over from the champion (the run says so).
    """
    settings = Settings()
    _tracking(settings)
    run = _train_and_log(settings, source, world, _training_config(config, corpora), dev_share, test_share)
    _print_key_metrics(run.result.metrics["dev"], "dev")


@app.command()
def retrain(
    config: ConfigFile = None,
    corpora: CorporaOption = None,
    dev_share: DevShare = 0.1,
    test_share: TestShare = 0.1,
    tolerance: Annotated[
        float, typer.Option(min=0, help="largest drop on a dev metric that still promotes")
    ] = 0.005,
) -> None:
    """Train from the store, then promote unless worse than the champion on the newest dev weeks.

    Both are scored on the same data: the store's dev split, the newest cases but the test share.
    One command for a cron job or timer; exit code 0 whether or not it promoted, 1 on failure.
    """
    from ml.training.promotion import promote_on_same_data

    settings = Settings()
    _tracking(settings)
    champion = _champion_bundle()
    run = _train_and_log(settings, "store", "", _training_config(config, corpora), dev_share, test_share)
    candidate = run.result.metrics["dev"]
    decision = promote_on_same_data(run.version, run.result, run.data, champion, tolerance=tolerance)
    verdict = "[green]promoted[/]" if decision.promoted else "[yellow]kept the champion[/]"
    console.print(f"version {run.version}: {verdict}")
    for reason in decision.reasons:
        console.print(f"  {reason}")
    _print_key_metrics(candidate, "dev")


@dataclass(frozen=True)
class _Run:
    result: TrainingResult
    data: TrainingData
    split: TimeSplit
    version: int


def _champion_bundle() -> tuple[int, RoutingBundle] | None:
    from ml.registry import champion_version, load_bundle

    version = champion_version()
    return None if version is None else (version, load_bundle(version))


def _train_and_log(
    settings: Settings,
    source: str,
    world: str,
    training: TrainingConfig,
    dev_share: float,
    test_share: float,
) -> _Run:
    """Read the source, train, log and register a version (not promoted)."""
    from ml.training.pipeline import load_training_data, training_data_hash
    from ml.training.pipeline import train as run_training
    from ml.training.tracking import log_training
    from service.training_source import read_store, read_world, urgency_prior

    if source not in ("world", "store"):
        raise typer.BadParameter(f"{source!r} is not world or store", param_hint="--source")
    started = time.perf_counter()
    try:
        with _batch_encoder(settings) as encoder, _progress_bar() as bar:
            progress = _RichProgress(bar)
            if source == "world":
                _world_dir(settings, world)  # a clear message when the world is missing
                platform, split = read_world(settings, world, progress)
            else:
                platform, split = read_store(settings, dev_share=dev_share, test_share=test_share)
            champion = _champion_bundle()
            prior = urgency_prior(settings, progress) if champion is None and not platform.truth else None
            data = load_training_data(training, platform, split, encoder, progress)
            result = run_training(
                training,
                platform,
                split,
                encoder,
                encoder_spec=settings.encoder,
                data=data,
                progress=progress,
                previous=champion[1] if champion else None,
                urgency_prior=prior,
            )
    except (CorpusMissingError, ValueError) as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(code=1) from None
    counts = {f"{s}.cases": sum(1 for x in data.splits if x == s) for s in ("train", "dev", "test")}
    provenance = {
        **platform.provenance,
        **{k: str(v) for k, v in {**platform.counts(), **counts}.items()},
        "split": split.describe(),
    }
    logged = log_training(
        result, training, data_hash=training_data_hash(platform, training.corpora), source=provenance
    )
    elapsed = time.perf_counter() - started
    console.print(f"registered case-router version {logged.version} (run {logged.run_id}) in {elapsed:.0f} s")
    console.print(f"trained on {platform.provenance.get('source')}: {split.describe()}")
    for note in result.notes:
        console.print(f"[yellow]{note}[/]")
    return _Run(result, data, split, logged.version)


@app.command("vendor-corpora")
def vendor_corpora(
    source: Annotated[Path, typer.Option("--from", help="the shared data folder to copy from")] = SHARED_DATA,
    out: Annotated[Path, typer.Option(help="where the Parquet files go")] = CORPORA_DIR,
) -> None:
    """Copy the real corpora (MTSamples, CodiEsp, TICO-19, MEDDOCAN, PhysioNet deid) into zstd Parquet.

    Run it when ../shared/data changes; the result is committed, so a clone needs nothing beside it.
    """
    from ml.evaluation.corpora import vendor_corpora as run_vendoring

    try:
        counts = run_vendoring(source, out)
    except CorpusMissingError as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(code=1) from None
    for name, rows in counts.items():
        console.print(f"{name}: {rows} rows -> {out / name}.parquet")


@app.command("train-deid")
def train_deid(
    language: Annotated[str, typer.Option(help="es (MEDDOCAN), en (PhysioNet deid) or both")] = "both",
    out: Annotated[
        Path | None, typer.Option(help="models folder (default: the packaged ml/resources/deid_ner)")
    ] = None,
    epochs: Annotated[
        int | None, typer.Option(min=1, help="most passes over the training data (default: es 15, en 20)")
    ] = None,
    world: Annotated[
        str,
        typer.Option(
            help="synthetic world whose train-month posts are added (a name under the synthetic dir)"
        ),
    ] = "sample",
    track: Annotated[bool, typer.Option(help="log one MLflow run per language")] = True,
    score_only: Annotated[
        bool, typer.Option(help="no training: score the models on dev again and update their metadata")
    ] = False,
) -> None:
    """Train the de-identifier's token classifiers (spaCy NER, CPU) on the real corpora's train split.

    The model with the best dev score replaces the packaged one (or goes to --out), with a
    `<language>.json` beside it: fingerprint, training data hash, dev metrics and this command.
    """
    import sys

    from ml.training.deid_ner import (
        DEFAULT_EPOCHS,
        MODELS_DIR,
        NerTrainingConfig,
        log_run,
        rescore,
        train_language,
    )

    if language not in ("es", "en", "both"):
        raise typer.BadParameter(f"language {language!r} is not es, en or both", param_hint="--language")
    settings = Settings()
    world_dir = _world_dir(settings, world)
    out_root = out or MODELS_DIR
    out_root.mkdir(parents=True, exist_ok=True)
    command = "casematch " + " ".join(sys.argv[1:])
    for lang in ("es", "en") if language == "both" else (language,):
        if score_only:
            console.print(f"{lang}: scoring {out_root / lang} on dev")
            _print_key_metrics_deid(rescore(lang, world_dir=world_dir, out_root=out_root))
            continue
        config = NerTrainingConfig(
            language=lang, max_epochs=epochs or DEFAULT_EPOCHS[lang], world_dir=world_dir
        )
        try:
            result = train_language(config, out_root=out_root, command=command, on_stage=console.print)
        except CorpusMissingError as exc:
            console.print(f"[red]{exc}[/]")
            raise typer.Exit(code=1) from None
        run_id = ""
        if track:
            settings.home.mkdir(parents=True, exist_ok=True)
            run_id = log_run(
                result,
                config,
                tracking_uri=settings.mlflow_tracking_uri,
                artifact_root=settings.home / "mlartifacts",
            )
        console.print(
            f"{lang}: model in {result.model_dir} ({result.size_bytes / 1e6:.1f} MB, fingerprint "
            f"{result.fingerprint[:12]}) in {result.seconds:.0f} s"
            + (f", MLflow run {run_id}" if run_id else "")
        )
        _print_key_metrics_deid(result.metrics)


def _print_key_metrics_deid(metrics: dict[str, float]) -> None:
    table = Table(title="dev split")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in sorted(metrics.items()):
        if key.endswith(("direct_recall", ".damage", "clean_damage")):
            table.add_row(key, f"{value:.3f}")
    Console().print(table)


def _print_key_metrics(metrics: dict[str, float], split: str) -> None:
    table = Table(title=f"{split} split")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in sorted(metrics.items()):
        if key.endswith(("hit@3", "recall@10", "emergent_recall", "ece")) and "confusion" not in key:
            table.add_row(key, f"{value:.3f}")
    Console().print(table)


@app.command()
def promote(
    version: Annotated[int | None, typer.Option(help="registered version (default: the newest)")] = None,
    tolerance: Annotated[
        float, typer.Option(min=0, help="largest drop on a dev metric that still promotes")
    ] = 0.005,
) -> None:
    """Make a registered version the champion, unless it is worse than the current one on dev."""
    from ml.registry import promote as promote_version

    _tracking(Settings())
    try:
        decision = promote_version(version, tolerance=tolerance)
    except LookupError as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(code=1) from None
    for reason in decision.reasons:
        console.print(f"  {reason}")
    if not decision.promoted:
        console.print(f"[yellow]version {decision.version} not promoted[/]")
        raise typer.Exit(code=1)
    console.print(f"version {decision.version} is the champion")


@app.command()
def bootstrap(
    world: Annotated[
        str, typer.Option(help="synthetic world to generate (if missing) and train on")
    ] = "sample",
    corpora: Annotated[
        str | None, typer.Option(help="real corpora to add, comma-separated ('' for none; default: both)")
    ] = None,
) -> None:
    """Take a fresh home to a serving champion: world (if missing), training, registration, promotion.

    Idempotent: with a champion already registered it does nothing.
    """
    from ml.registry import champion_version

    settings = Settings()
    _tracking(settings)
    if (current := champion_version()) is not None:
        console.print(f"case-router version {current} is already the champion; nothing to do")
        return
    if not (settings.synthetic_dir / world / "manifest.json").exists():
        defaults = {"world": {}, "sample": {"cases": 2000, "doctors": 500}}.get(world, {})
        synth(name=world, **defaults)  # type: ignore[arg-type]
    train(source="world", world=world, config=None, corpora=corpora, dev_share=0.1, test_share=0.1)
    promote(version=None, tolerance=0.005)


# --- serve -----------------------------------------------------------------------------------------


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port")] = 8000,
    workers: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=64,
            help="processes serving behind the port, each following the store's changes "
            "[default: CASEMATCH_WORKERS, else the number of cores]",
        ),
    ] = None,
) -> None:
    """Serve the API: bootstraps a champion model first if there is none, loads the synthetic
    world into an empty store, catches the index up, then listens with one or more workers.

    Every worker follows the store's change feed, so a write taken by any of them is seen by all
    within a second. Without CASEMATCH_API_KEYS a local key with every scope is created in
    $CASEMATCH_HOME/api-key.
    """
    from threadpoolctl import threadpool_limits

    from ml.registry import champion_version
    from service.auth import ApiKeyConfigError, parse_api_keys
    from service.logs import configure_json_logging

    settings = Settings()
    workers = workers or settings.workers or len(os.sched_getaffinity(0))
    _tracking(settings)
    if champion_version() is None:
        bootstrap(world=settings.seed_world or "sample", corpora=None)
    if not settings.api_keys:
        settings.api_keys = _local_api_key(settings.home)
    try:
        parse_api_keys(settings.api_keys)
    except ApiKeyConfigError as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(code=2) from None
    verbose = logging.getLogger().isEnabledFor(logging.DEBUG)  # --verbose set the root level
    configure_json_logging(verbose=verbose)
    # One request, one thread: OpenMP and BLAS pools would spread each call's few hundred rows
    # (the doctor ranker's trees, FAISS) over every core and lose more in hand-offs than they
    # gain; concurrent requests already use the cores. (After bootstrap, which trains on all.)
    threadpool_limits(limits=settings.encoder_threads)
    if workers == 1:
        _serve_in_process(settings, host, port, verbose=verbose)
    else:
        _serve_workers(settings, host, port, workers, verbose=verbose)


def _serve_in_process(settings: Settings, host: str, port: int, *, verbose: bool) -> None:
    import uvicorn

    from service.app import create_app
    from service.logs import configure_json_logging
    from service.runtime import Runtime

    with _progress_bar() as bar:
        runtime = Runtime.start(settings, progress=_RichProgress(bar))
    configure_json_logging(verbose=verbose)  # again: libraries loaded meanwhile attached their own
    console.print(
        f"casematch serving model version {runtime.model_version} on http://{host}:{port} (docs: /docs)"
    )
    try:
        api = create_app(runtime, close_on_shutdown=True)
        uvicorn.run(api, host=host, port=port, log_config=None, access_log=False)
    finally:
        runtime.close()


def _serve_workers(settings: Settings, host: str, port: int, workers: int, *, verbose: bool) -> None:
    """Prepare the store and the index snapshot once, then let uvicorn run `workers` processes (and
    restart any that dies), each starting from that snapshot and following the store."""
    import uvicorn

    from service.logs import configure_json_logging
    from service.runtime import prepare
    from service.worker import VERBOSE_ENV

    with _progress_bar() as bar:
        store, _, follower = prepare(settings, progress=_RichProgress(bar))
    follower.save_snapshot()
    store.close()
    del store, follower  # the parent only supervises: its copy of the index is not needed
    configure_json_logging(verbose=verbose)
    # the workers read their settings from the environment: hand over what was decided here
    os.environ["CASEMATCH_HOME"] = str(settings.home)
    os.environ["CASEMATCH_DATABASE_URL"] = settings.database_url
    os.environ["CASEMATCH_MLFLOW_TRACKING_URI"] = settings.mlflow_tracking_uri
    os.environ["CASEMATCH_API_KEYS"] = settings.api_keys
    os.environ[VERBOSE_ENV] = "1" if verbose else "0"
    console.print(f"casematch serving on http://{host}:{port} with {workers} workers (docs: /docs)")
    uvicorn.run(
        "service.worker:create_worker_app",
        factory=True,
        workers=workers,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
    )


def _local_api_key(home: Path) -> str:
    """A key with every scope for this machine, made once and kept readable by its owner only."""
    import secrets

    path = home / "api-key"
    if not path.exists():
        home.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(f"local:{secrets.token_urlsafe(32)}:route+ingest+admin\n")
    console.print(
        f"API key (every scope): the secret in {path} — send it as `Authorization: Bearer <secret>`"
    )
    return path.read_text().strip()
