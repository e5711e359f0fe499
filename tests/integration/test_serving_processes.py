"""Past one machine, proven here: real `casematch serve` processes over one store.

- Two servers on different ports (as two machines would be): a case ingested on one is routed to
  by the other within 1 s, an erasure on the other disappears from the first within 1 s, a doctor
  made unavailable on one is never routed to by the other after 1 s. On SQLite and PostgreSQL.
- Faults under load: a worker killed with SIGKILL loses nothing acknowledged, the other keeps
  serving and it comes back; PostgreSQL going away answers 503 with Retry-After, and casematch
  recovers by itself when it returns.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import make_url

from tests.integration.conftest import registry_copy
from tests.postgres import postgres_schema_url
from tests.server_process import ServerProcess, serving
from tests.tcp_proxy import TcpProxy
from tests.waiting import seconds_until

pytestmark = pytest.mark.slow  # several real servers: minutes, run by CI's slow stage

KEY = "procs-secret-000000000001"
AUTH = {"Authorization": f"Bearer {KEY}"}
VISIBLE_WITHIN = 1.0  # seconds
CASE = {
    "title": "Moldes bronquiales ramificados tras cirugía de Fontan",
    "text": "Niña operada de Fontan que expulsa moldes gomosos al toser; satura 84%. Broncoscopia pendiente.",
    "language": "es",
}
QUERY = {"case": {"title": CASE["title"], "text": CASE["text"]}, "limit_similar": 10, "limit_doctors": 10}


def _env(home: Path, database_url: str, tracking_uri: str, world_dir: Path) -> dict[str, str]:
    return {
        "CASEMATCH_HOME": str(home),
        "CASEMATCH_DATABASE_URL": database_url,
        "CASEMATCH_MLFLOW_TRACKING_URI": tracking_uri,
        "CASEMATCH_SYNTHETIC_DIR": str(world_dir.parent),
        "CASEMATCH_SEED_WORLD": world_dir.name,
        "CASEMATCH_API_KEYS": f"procs:{KEY}:route+ingest",
        "HF_HUB_OFFLINE": "1",
    }


def _routed(api: httpx.Client) -> dict[str, list[str]]:
    body = api.post("/v1/route", json=QUERY).raise_for_status().json()
    return {
        "similar": [s["case_id"] for s in body["similar_cases"]],
        "doctors": [d["doctor_id"] for d in body["doctors"]],
    }


def test_two_servers_over_one_store_see_each_others_writes_within_a_second(
    tmp_path: Path, database_url: str, trained_home: Path, small_world_dir: Path
) -> None:
    tracking = registry_copy(trained_home, tmp_path / "registry")
    first_env = _env(tmp_path / "first", database_url, tracking, small_world_dir)
    second_env = _env(tmp_path / "second", database_url, tracking, small_world_dir)
    with serving(first_env) as first, serving(second_env) as second:
        one = httpx.Client(base_url=first.base_url, headers=AUTH, timeout=30)
        other = httpx.Client(base_url=second.base_url, headers=AUTH, timeout=30)
        assert one.post("/v1/cases", json={"id": "procs-1", **CASE}).status_code == 201
        resolution = {"diagnosis": "bronquitis plástica", "specialties": ["pediatric_pulmonology"]}
        assert one.post("/v1/cases/procs-1/resolution", json=resolution).status_code == 200
        seen = seconds_until(lambda: "procs-1" in _routed(other)["similar"])
        assert seen <= VISIBLE_WITHIN, f"the other server routed to the new case after {seen:.2f} s"

        assert other.delete("/v1/cases/procs-1").status_code == 204
        gone = seconds_until(lambda: "procs-1" not in _routed(one)["similar"])
        assert gone <= VISIBLE_WITHIN, f"the first server still returned the erased case {gone:.2f} s later"

        doctor = _routed(other)["doctors"][0]
        profile = {"specialties": ["pediatric_pulmonology"], "languages": ["es"], "available": False}
        assert one.put(f"/v1/doctors/{doctor}", json=profile).status_code == 200
        away = seconds_until(lambda: doctor not in _routed(other)["doctors"])
        assert away <= VISIBLE_WITHIN, f"the other server routed to an unavailable doctor {away:.2f} s later"
        time.sleep(VISIBLE_WITHIN)
        assert all(doctor not in _routed(other)["doctors"] for _ in range(5))


class _Load:
    """Clients posting new cases and routing, on threads, recording what was acknowledged."""

    def __init__(self, base_url: str, clients: int = 4) -> None:
        self.base_url = base_url
        self.acknowledged: list[str] = []
        self.statuses: list[tuple[float, int, str | None]] = []  # (time, status, Retry-After)
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(n,), daemon=True) for n in range(clients)]
        self._lock = threading.Lock()

    def __enter__(self) -> _Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)

    def _run(self, client: int) -> None:
        api = httpx.Client(base_url=self.base_url, headers=AUTH, timeout=30)
        n = 0
        while not self._stop.is_set():
            n += 1
            case_id = f"load-{client}-{n}"
            try:
                response = api.post(
                    "/v1/cases", json={"id": case_id, **CASE, "text": f"{CASE['text']} ({n})"}
                )
            except httpx.HTTPError:
                self._record(0, None)  # a worker died with the connection open
                continue
            self._record(response.status_code, response.headers.get("retry-after"))
            if response.status_code == 201:
                with self._lock:
                    self.acknowledged.append(case_id)

    def _record(self, status: int, retry_after: str | None) -> None:
        with self._lock:
            self.statuses.append((time.monotonic(), status, retry_after))

    def since(self, moment: float) -> list[int]:
        with self._lock:
            return [status for at, status, _ in self.statuses if at >= moment]


def test_a_killed_worker_loses_nothing_acknowledged_and_comes_back(
    tmp_path: Path, trained_home: Path, small_world_dir: Path
) -> None:
    env = _env(
        tmp_path / "home",
        f"sqlite:///{tmp_path / 'casematch.db'}",
        registry_copy(trained_home, tmp_path),
        small_world_dir,
    )
    with serving(env, workers=2) as server:
        seconds_until(lambda: len(server.worker_pids()) == 2, limit=120)
        with _Load(server.base_url) as load:
            time.sleep(3)
            victim = min(server.worker_pids())
            os.kill(victim, signal.SIGKILL)
            killed_at = time.monotonic()
            # the other worker keeps acknowledging writes (a loaded machine may take seconds per post)
            seconds_until(lambda: 201 in load.since(killed_at), limit=60)
            back = seconds_until(
                lambda: len(server.worker_pids()) == 2 and victim not in server.worker_pids(), limit=120
            )
            time.sleep(2)
        assert load.acknowledged and back < 120
        _assert_all_stored(server, load.acknowledged)


def _assert_all_stored(server: ServerProcess, case_ids: list[str]) -> None:
    api = httpx.Client(base_url=server.base_url, headers=AUTH, timeout=30)
    missing = [case_id for case_id in case_ids if api.get(f"/v1/cases/{case_id}").status_code != 200]
    assert not missing, f"{len(missing)} of {len(case_ids)} acknowledged cases are missing"


def test_postgresql_going_away_is_503_with_retry_after_then_casematch_recovers_by_itself(
    tmp_path: Path, trained_home: Path, small_world_dir: Path
) -> None:
    with postgres_schema_url() as direct_url:
        target = make_url(direct_url)
        proxy = TcpProxy(target.host or "127.0.0.1", target.port or 5432)
        proxy.start()
        proxied = target.set(port=proxy.port).render_as_string(hide_password=False)
        env = _env(tmp_path / "home", proxied, registry_copy(trained_home, tmp_path), small_world_dir)
        try:
            with serving(env) as server, _Load(server.base_url, clients=2) as load:
                time.sleep(2)
                proxy.stop()
                away_at = time.monotonic()
                # requests begun before the cut may still finish: judge those started after it
                seconds_until(lambda: len(load.since(away_at + 1.0)) >= 4, limit=60)
                during = load.since(away_at + 1.0)
                assert during and set(during) <= {503}, f"while the store was away: {sorted(set(during))}"
                assert all(retry for _, status, retry in load.statuses if status == 503)
                proxy.start()
                back_at = time.monotonic()
                recovered = seconds_until(lambda: 201 in load.since(back_at), limit=30)
                assert recovered < 30
            assert 500 not in {status for _, status, _ in load.statuses}
            _assert_all_stored_direct(direct_url, load.acknowledged)
        finally:
            proxy.stop()


def _assert_all_stored_direct(database_url: str, case_ids: list[str]) -> None:
    from service.store import CaseStore

    store = CaseStore.from_url(database_url)
    try:
        stored = store.get_cases(case_ids)
    finally:
        store.close()
    assert set(stored) == set(case_ids), f"{len(set(case_ids) - set(stored))} acknowledged cases are missing"
