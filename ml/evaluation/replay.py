"""Counterfactual replay on the synthetic behaviour model: how fast would routed cases be answered?

The world's manifest holds the generator's config, so the latent doctors (activity, speed,
specialty fit, favourites) are rebuilt exactly from the seed. Each held-out case is then
simulated under several notification policies with the *same* random draws (common random
numbers), so the arms differ only by who was notified:
- broadcast: nobody is notified; the case waits in the feed (what the world itself did);
- a policy: its top doctors get a push notification, modelled as multiplying their answer
  hazard by `notify_boost` (an assumption — the data cannot tell how much a push helps).
Doctors start with no history and no load: the arms are compared with each other, not with the
world's logged times.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt

from ml.synthetic.behaviour import BehaviourParams, BehaviourSimulator, DoctorState
from ml.synthetic.doctors import generate_doctors
from ml.synthetic.geography import utc_offsets_by_day
from ml.synthetic.knowledge import KnowledgeBase
from ml.synthetic.world import doctor_state, read_manifest, read_table
from ml.taxonomy import load_taxonomy


@dataclass(frozen=True, slots=True)
class LatentWorld:
    state: DoctorState
    simulator: BehaviourSimulator
    start: datetime
    condition_index: dict[str, int]


def rebuild_latent_world(world_dir: Path, kb: KnowledgeBase, *, seed: int = 0) -> LatentWorld:
    """The world's hidden doctor parameters, regenerated from its manifest (same KB required)."""
    manifest = read_manifest(world_dir)
    if manifest is None:
        raise FileNotFoundError(f"no world manifest in {world_dir}")
    if manifest["knowledge_base"] != kb.fingerprint:
        raise ValueError(f"{world_dir} was generated from another knowledge base; regenerate it first")
    config = manifest["config"]
    start = datetime.fromisoformat(config["start"]).replace(tzinfo=UTC)
    # generate_world draws the doctors first from the seeded generator: the same draws give the same doctors
    doctors, fits = generate_doctors(
        config["n_doctors"],
        conditions=kb.conditions,
        taxonomy=load_taxonomy(),
        start=start,
        rng=np.random.default_rng(config["seed"]),
    )
    if list(doctors.doctor_id) != read_table(world_dir, "doctors").column("doctor_id").to_pylist():
        raise ValueError(f"could not rebuild the doctors of {world_dir} (generator changed?)")
    state = doctor_state(doctors, fits, kb.conditions)
    offsets = utc_offsets_by_day(start, config["days"] + 4)
    simulator = BehaviourSimulator(BehaviourParams(), state, offsets, np.random.default_rng(seed))
    return LatentWorld(state, simulator, start, {c.id: j for j, c in enumerate(kb.conditions)})


@dataclass(frozen=True, slots=True)
class ReplayCase:
    posted_at: datetime
    condition_id: str
    language: str
    author: int  # doctor slot


def first_answer_hours(
    world: LatentWorld,
    cases: Sequence[ReplayCase],
    policies: Mapping[str, Sequence[npt.NDArray[np.intp]]],
    *,
    notify_boost: float = 3.0,
    seed: int = 0,
) -> dict[str, npt.NDArray[np.float64]]:
    """Hours to the first answer per case under each policy (NaN: unanswered within the horizon).

    `policies[name][i]` are the doctor slots notified for case i; "broadcast" is always added.
    """
    rng = np.random.default_rng(seed)
    arms = {"broadcast": [np.zeros(0, dtype=np.intp)] * len(cases), **policies}
    out = {name: np.full(len(cases), np.nan) for name in arms}
    for i, case in enumerate(cases):
        posted_hours = (case.posted_at - world.start).total_seconds() / 3600
        rate = world.simulator.answer_rates(
            condition=world.condition_index[case.condition_id], language=case.language, author=case.author
        )
        needed = np.asarray(rng.exponential(size=rate.shape[0]), dtype=np.float64)  # shared by every arm
        for name, notified in arms.items():
            boosted = rate.copy()
            boosted[notified[i]] *= notify_boost
            boosted[case.author] = 0.0
            answering, times = world.simulator.answer_times(boosted, posted_hours, needed)
            if len(answering):
                out[name][i] = float(times.min())
    return out


def summarise(hours: npt.NDArray[np.float64]) -> dict[str, float]:
    answered = np.isfinite(hours)
    return {
        "median_hours": float(np.median(np.where(answered, hours, np.inf))),
        "within_1h": float((hours[answered] <= 1.0).sum() / len(hours)),
        "within_24h": float((hours[answered] <= 24.0).sum() / len(hours)),
    }
