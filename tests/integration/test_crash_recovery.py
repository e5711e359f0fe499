"""A real `casematch serve` killed with SIGKILL after acknowledged writes serves them all on restart;
stopped with SIGTERM, it leaves an index snapshot that covers them."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from service.cli import app as cli
from service.store import CaseStore
from tests.server_process import serving

KEY = "crash-secret-00000000001"
AUTH = {"Authorization": f"Bearer {KEY}"}
NEW_CASE = {
    "id": "crash-1",
    "title": "Moldes bronquiales ramificados tras cirugía de Fontan",
    "text": "Niña operada de Fontan que expulsa moldes gomosos al toser; satura 84%. Broncoscopia pendiente.",
    "language": "es",
}
QUERY = {"case": {"title": NEW_CASE["title"], "text": NEW_CASE["text"]}, "limit_similar": 20}


def test_acknowledged_writes_survive_a_killed_server(
    tmp_path: Path, small_world_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {
        "CASEMATCH_HOME": str(tmp_path / "home"),
        "CASEMATCH_SYNTHETIC_DIR": str(small_world_dir.parent),
        "CASEMATCH_SEED_WORLD": small_world_dir.name,
        "CASEMATCH_API_KEYS": f"crash:{KEY}:route+ingest",
        "HF_HUB_OFFLINE": "1",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    trained = CliRunner().invoke(cli, ["bootstrap", "--world", small_world_dir.name, "--corpora", ""])
    assert trained.exit_code == 0, trained.output

    with serving(env) as server:
        api = httpx.Client(base_url=server.base_url, headers=AUTH, timeout=30)
        assert api.post("/v1/cases", json=NEW_CASE).status_code == 201
        resolution = {"diagnosis": "bronquitis plástica", "specialties": ["pediatric_pulmonology"]}
        assert api.post("/v1/cases/crash-1/resolution", json=resolution).status_code == 200
        before = [s["case_id"] for s in api.post("/v1/route", json=QUERY).json()["similar_cases"]]
        erased = next(case_id for case_id in before if case_id != "crash-1")
        assert api.delete(f"/v1/cases/{erased}").status_code == 204
        server.kill()  # no shutdown handler: the index snapshot on disk predates every write above

    with serving(env) as restarted:
        api = httpx.Client(base_url=restarted.base_url, headers=AUTH, timeout=30)
        after = [s["case_id"] for s in api.post("/v1/route", json=QUERY).json()["similar_cases"]]
        assert "crash-1" in after, "an acknowledged, resolved case is searchable after the crash"
        assert erased not in after, "an acknowledged erasure stays erased after the crash"
        assert api.get(f"/v1/cases/{erased}").status_code == 404
        assert api.get("/v1/cases/crash-1").json()["resolved"] is True
        # a graceful stop closes the runtime: the snapshot on disk then covers every write
        restarted.stop()
        assert "runtime closed: index snapshot saved" in restarted.log_tail(80)
    (snapshot,) = (Path(env["CASEMATCH_HOME"]) / "index").glob("*/manifest.json")  # one encoder's
    manifest = json.loads(snapshot.read_text())
    store = CaseStore.from_url(f"sqlite:///{Path(env['CASEMATCH_HOME']) / 'casematch.db'}")
    assert manifest["watermark"]["store_seq"] == store.head_seq(), "a SIGTERM saves the index snapshot"
    store.close()
