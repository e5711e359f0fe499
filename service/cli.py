"""`casematch`: the command line of the case-matching service."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from ml.synthetic.knowledge import (
    DEFAULT_KB_DIR,
    KnowledgeBase,
    KnowledgeBaseError,
    coverage_report,
    load_knowledge_base,
)
from ml.taxonomy import load_taxonomy
from service.settings import Settings

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
    config = WorldConfig(name=name, seed=seed, n_cases=cases, n_doctors=doctors)
    existing = read_manifest(out_dir)
    if existing is not None and not force:
        if is_up_to_date(out_dir, config, knowledge):
            console.print(f"world {name!r} in {out_dir} is up to date")
            _print_stats(name, existing["stats"])
            return
        if existing.get("config") != config.model_dump(mode="json"):
            console.print(
                f"[yellow]{out_dir} holds a world made with other options; pass --force to overwrite it.[/]"
            )
            raise typer.Exit(code=1)
        # Same options, but the knowledge base or generator changed (or files were damaged):
        # the world is derived data, so it is simply made again.
        console.print(f"world {name!r} in {out_dir} is out of date; generating it again")
    started = time.perf_counter()
    with Progress(
        TextColumn("{task.description:>8}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    ) as bar:
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
        Console().print(f"CASEMATCH_{key.upper()}={value}")


def _load_kb(path: Path) -> KnowledgeBase:
    try:
        return load_knowledge_base(path)
    except KnowledgeBaseError as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(code=2) from None
