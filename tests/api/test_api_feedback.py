"""Feedback: validated per CDS Hooks 2.0, stored one row per item, committed before 200, and still
there after the service process is restarted (SQLite) or in PostgreSQL."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from fhir_module.feedback import FeedbackEntry, store_from_url
from tests.api.helpers import free_port, scenario_request

# The shapes of an accepted and an overridden item (their uuids are not issued by any service:
# `issued` makes real ones from a running service's cards).
ACCEPTED = {
    "card": "4e0a3a1e-3283-4575-ab82-028d55fe2719",
    "outcome": "accepted",
    "acceptedSuggestions": [{"id": "e56e1945-20b3-4393-8503-a1a20fd73152"}],
    "outcomeTimestamp": "2026-11-26T10:05:31Z",
}
OVERRIDDEN = {
    "card": "9368d37b-283f-44a0-93ea-547cebab93ed",
    "outcome": "overridden",
    "overrideReason": {
        "reason": {"system": "http://fhir-module.org/fhir/CodeSystem/override-reason", "code": "benefit",
                   "display": "Benefit outweighs risk"},
        "userComment": "Discussed with the patient.",
    },
    "outcomeTimestamp": "2026-11-26T11:00:00.52+01:00",
    "extension": {"org.example.ui": "sidebar"},
}


TOPICS = "http://fhir-module.org/fhir/CodeSystem/levomilnacipran-rule-topic"


def service_id(discovery: dict[str, Any]) -> str:
    return scenario_request("pub-max-dose", discovery)[0]


def issued(url: str, discovery: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """ACCEPTED and OVERRIDDEN naming cards, a suggestion and a reason the service at `url` issued."""
    cards = []
    for name in ("pub-max-dose", "pub-maoi-active"):
        sid, body = scenario_request(name, discovery)
        response = httpx.post(f"{url}/cds-services/{sid}", json=body, timeout=30)
        assert response.status_code == 200, response.text
        cards.append(response.json()["cards"][0])
    accepted = {**ACCEPTED, "card": cards[0]["uuid"], "acceptedSuggestions": [{"id": cards[0]["suggestions"][0]["uuid"]}]}
    reason = cards[1]["overrideReasons"][0]
    overridden = {**OVERRIDDEN, "card": cards[1]["uuid"],
                  "overrideReason": {**OVERRIDDEN["overrideReason"], "reason": reason}}
    return accepted, overridden


def test_feedback_is_stored_one_row_per_item(live: Any, discovery: dict[str, Any], tmp_db: str) -> None:
    sid = service_id(discovery)
    with live() as url:
        accepted_item, overridden_item = issued(url, discovery)
        response = httpx.post(f"{url}/cds-services/{sid}/feedback", json={"feedback": [accepted_item, overridden_item]})
        assert response.status_code == 200, response.text
        assert response.json() == {"stored": 2, "alreadyStored": 0}
    store = store_from_url(tmp_db)
    rows = store.list(sid)
    store.close()
    assert [r.entry.card for r in rows] == [accepted_item["card"], overridden_item["card"]]
    accepted, overridden = rows[0].entry, rows[1].entry
    assert accepted.outcome == "accepted"
    assert accepted.accepted_suggestions == (accepted_item["acceptedSuggestions"][0]["id"],)
    assert overridden.override_code == overridden_item["overrideReason"]["reason"]["code"]
    assert overridden.user_comment == "Discussed with the patient."
    assert overridden.outcome_timestamp == dt.datetime(2026, 11, 26, 10, 0, 0, 520000, tzinfo=dt.timezone.utc)
    assert overridden.raw == overridden_item  # the item as sent, extensions included
    assert (accepted.rule, overridden.rule) == (f"{TOPICS}|dose-limit", f"{TOPICS}|maoi-washout")  # the cards' rules
    assert all(r.service_id == sid for r in rows)
    assert abs((rows[0].received_at - dt.datetime.now(dt.timezone.utc)).total_seconds()) < 60


@pytest.mark.parametrize(
    "body, where",
    [
        ({}, "feedback"),
        ({"feedback": []}, "feedback"),
        ({"feedback": "accepted"}, "feedback"),
        ({"feedback": [{**ACCEPTED, "card": ""}]}, "feedback[0].card"),
        ({"feedback": [{k: v for k, v in ACCEPTED.items() if k != "card"}]}, "feedback[0].card"),
        ({"feedback": [{**ACCEPTED, "outcome": "ignored"}]}, "feedback[0].outcome"),
        ({"feedback": [{k: v for k, v in ACCEPTED.items() if k != "acceptedSuggestions"}]}, "feedback[0]"),
        ({"feedback": [{**ACCEPTED, "acceptedSuggestions": [{"uuid": "x"}]}]}, "acceptedSuggestions[0].id"),
        ({"feedback": [{**OVERRIDDEN, "acceptedSuggestions": [{"id": "x"}]}]}, "feedback[0]"),
        ({"feedback": [{**ACCEPTED, "outcomeTimestamp": "yesterday"}]}, "outcomeTimestamp"),
        ({"feedback": [{**ACCEPTED, "outcomeTimestamp": "2026-11-26T10:05:31"}]}, "outcomeTimestamp"),
        ({"feedback": [{**ACCEPTED, "outcomeTimestamp": 1764151531}]}, "outcomeTimestamp"),
        # Valid RFC 3339, but before year 1 in UTC: once answered 503 "send it again later".
        ({"feedback": [{**ACCEPTED, "outcomeTimestamp": "0001-01-01T00:00:00+14:00"}]}, "outcomeTimestamp"),
        ({"feedback": [{**OVERRIDDEN, "overrideReason": {}}]}, "overrideReason"),
        ({"feedback": [{**OVERRIDDEN, "overrideReason": {"reason": {"code": "x"}}}]}, "reason.system"),
        ({"feedback": [ACCEPTED, {**OVERRIDDEN, "outcome": None}]}, "feedback[1].outcome"),
    ],
)
def test_invalid_feedback_is_400_and_nothing_is_stored(live: Any, discovery: dict[str, Any], tmp_db: str,
                                                       body: Any, where: str) -> None:
    sid = service_id(discovery)
    with live() as url:
        response = httpx.post(f"{url}/cds-services/{sid}/feedback", json=body)
    assert response.status_code == 400, response.text
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert any(where in e for i in outcome["issue"] for e in i.get("expression", [])), outcome
    store = store_from_url(tmp_db)
    assert store.list() == []
    store.close()


def test_feedback_format_errors(live: Any, discovery: dict[str, Any]) -> None:
    sid = service_id(discovery)
    with live() as url:
        fb = f"{url}/cds-services/{sid}/feedback"
        assert httpx.post(fb, content=b"{", headers={"Content-Type": "application/json"}).status_code == 400
        assert httpx.post(fb, content=b'{"feedback": []}', headers={"Content-Type": "text/plain"}).status_code == 415
        assert httpx.get(fb).status_code == 405


def test_a_database_failure_is_503_not_a_false_ok(live: Any, discovery: dict[str, Any], tmp_path: Path) -> None:
    db = tmp_path / "gone.sqlite3"
    with live(database_url=f"sqlite:///{db}") as url:
        accepted, _ = issued(url, discovery)
        # Make the table unwritable behind the service's back: the insert must fail, loudly.
        import sqlite3
        conn = sqlite3.connect(db)
        conn.execute("DROP TABLE cds_feedback")
        conn.commit()
        conn.close()
        response = httpx.post(f"{url}/cds-services/{service_id(discovery)}/feedback", json={"feedback": [accepted]})
    assert response.status_code == 503, response.text
    assert response.json()["issue"][0]["code"] == "transient"


def _start_service(db_url: str, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "FHIR_MODULE_DATABASE_URL": db_url}
    env.pop("FHIR_MODULE_TRUSTED_CLIENTS", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "fhir_module.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"service exited: {log.read_text()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise AssertionError(f"service did not start: {log.read_text()}")


def test_acknowledged_feedback_survives_a_killed_process(discovery: dict[str, Any], tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path / 'durable.sqlite3'}"
    sid = service_id(discovery)
    log = tmp_path / "service.log"
    port = free_port()
    first = _start_service(db_url, port, log)
    try:
        accepted, overridden = issued(f"http://127.0.0.1:{port}", discovery)
        response = httpx.post(f"http://127.0.0.1:{port}/cds-services/{sid}/feedback",
                              json={"feedback": [accepted]}, timeout=30)
        assert response.status_code == 200
    finally:
        first.send_signal(signal.SIGKILL)  # no graceful shutdown: only what was committed remains
        first.wait(timeout=30)
    second = _start_service(db_url, port, log)
    try:
        # The restarted service recognises the cards the first one issued (the key is in the database).
        response = httpx.post(f"http://127.0.0.1:{port}/cds-services/{sid}/feedback",
                              json={"feedback": [overridden, accepted]}, timeout=30)
        assert response.status_code == 200, response.text
        assert response.json() == {"stored": 1, "alreadyStored": 1}  # the resent item is not stored twice
    finally:
        second.terminate()
        second.wait(timeout=30)
    store = store_from_url(db_url)
    assert [r.entry.card for r in store.list(sid)] == [accepted["card"], overridden["card"]]
    store.close()


def test_postgresql_store(postgres_url: str, live: Any, discovery: dict[str, Any]) -> None:
    sid = service_id(discovery)
    with live(database_url=postgres_url) as url:
        accepted, overridden = issued(url, discovery)
        response = httpx.post(f"{url}/cds-services/{sid}/feedback", json={"feedback": [accepted, overridden]})
        assert response.status_code == 200, response.text
        again = httpx.post(f"{url}/cds-services/{sid}/feedback", json={"feedback": [accepted, overridden]})
        assert again.json() == {"stored": 0, "alreadyStored": 2}
        bad = httpx.post(f"{url}/cds-services/{sid}/feedback", json={"feedback": [{**accepted, "outcome": "x"}]})
        assert bad.status_code == 400
    store = store_from_url(postgres_url)  # a new connection: reads what was committed
    rows = [r for r in store.list(sid) if r.entry.card in (accepted["card"], overridden["card"])]
    assert [r.entry.outcome for r in rows] == ["accepted", "overridden"]
    last = rows[-1].entry
    assert last.override_display == overridden["overrideReason"]["reason"]["display"] and last.raw == overridden
    assert last.outcome_timestamp == dt.datetime(2026, 11, 26, 10, 0, 0, 520000, tzinfo=dt.timezone.utc)
    assert rows[0].entry.accepted_suggestions == (accepted["acceptedSuggestions"][0]["id"],)
    assert last.rule == f"{TOPICS}|maoi-washout"
    store.ping()
    store.close()


def test_store_from_url_rejects_unknown_schemes(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unsupported"):
        store_from_url("mysql://localhost/db")
    with pytest.raises(ValueError, match="does not exist"):
        store_from_url(f"sqlite:///{tmp_path}/missing-dir/x.sqlite3")


def test_sqlite_store_writes_durably(tmp_path: Path) -> None:
    store = store_from_url(f"sqlite:///{tmp_path / 'x.sqlite3'}")
    import sqlite3
    assert store._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert store._db.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    entry = FeedbackEntry(card="c", outcome="overridden", outcome_timestamp=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc))
    assert store.add("svc", [entry], dt.datetime.now(dt.timezone.utc)) == (1, 0)
    assert store.add("svc", [entry], dt.datetime.now(dt.timezone.utc)) == (0, 1)  # once per card and outcome
    # Another connection sees the row at once: it was committed by add().
    other = sqlite3.connect(tmp_path / "x.sqlite3")
    assert other.execute("SELECT card_uuid FROM cds_feedback").fetchall() == [("c",)]
    other.close()
    store.close()
