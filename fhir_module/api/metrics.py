"""Prometheus metrics at `GET /metrics` (text exposition format 0.0.4).

Requests by route, method and status and their latency; cards answered by service, topic and
indicator; checks that could not be evaluated (the engine's EvaluationFailures); FHIR fetches by
server and outcome, with what is in flight and waiting; `$validate` calls by outcome; feedback
items stored; JWTs refused. No patient data and no identifiers in any label: routes are
templates (`/cds-services/{service_id}`), topics are codes of the knowledge.

Under `serve --workers N` each worker counts its own; `serve` gives them a shared folder
(FHIR_MODULE_METRICS_DIR) where each keeps a snapshot (refreshed every second and at each
scrape), and whichever worker is scraped answers the sum of all live workers' snapshots.
"""

from __future__ import annotations

import bisect
import itertools
import json
import os
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterable, Mapping

from starlette.types import ASGIApp, Message, Receive, Scope, Send

ENV_METRICS_DIR = "FHIR_MODULE_METRICS_DIR"
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

# name -> (type, help)
DESCRIPTIONS: dict[str, tuple[str, str]] = {
    "fhir_module_requests_total": ("counter", "HTTP requests answered, by route template, method and status"),
    "fhir_module_request_duration_seconds": ("histogram", "Time to answer an HTTP request, by route template"),
    "fhir_module_cards_total": ("counter", "Cards answered, by service, topic and indicator"),
    "fhir_module_evaluation_failures_total": ("counter", "Checks that could not be evaluated on a request's data, "
                                                         "by check (each said on its request's cards)"),
    "fhir_module_fetches_total": ("counter", "FHIR fetches, by allowed server and outcome (ok, failed, timeout, busy)"),
    "fhir_module_fetches_in_flight": ("gauge", "FHIR fetches in flight, by allowed server"),
    "fhir_module_fetches_waiting": ("gauge", "FHIR fetches waiting for a free slot, by allowed server"),
    "fhir_module_validations_total": ("counter", "$validate calls, by outcome (ok, refused, timeout, gone, busy, error)"),
    "fhir_module_feedback_items_total": ("counter", "Feedback items acknowledged, by service and outcome"),
    "fhir_module_feedback_resent_items_total": ("counter", "Feedback items acknowledged that were stored before "
                                                           "(resent), by service"),
    "fhir_module_auth_failures_total": ("counter", "Calls refused for their client JWT"),
}

Labels = tuple[tuple[str, str], ...]


def _labels(values: Mapping[str, Any]) -> Labels:
    return tuple(sorted((key, str(value)) for key, value in values.items()))


class Metrics:
    """The counters and histograms of one process, and the sum over a folder of processes."""

    def __init__(self, directory: str | Path | None = None) -> None:
        self._lock = threading.Lock()
        self._counters: dict[str, dict[Labels, float]] = defaultdict(lambda: defaultdict(float))
        # name -> labels -> [count per bucket..., +Inf count, sum]
        self._histograms: dict[str, dict[Labels, list[float]]] = defaultdict(dict)
        self.directory = Path(directory) if directory else None
        self._collectors: list[Any] = []
        self._writes = itertools.count()
        self._card_keys: dict[tuple[Any, Any, Any], Labels] = {}

    def inc(self, name: str, labels: Mapping[str, Any], amount: float = 1.0) -> None:
        self.inc_series(name, _labels(labels), amount)

    def inc_series(self, name: str, key: Labels, amount: float = 1.0) -> None:
        """`inc` with the labels already made into a series key (once, by the caller)."""
        with self._lock:
            self._counters[name][key] += amount

    def observe(self, name: str, labels: Mapping[str, Any], value: float) -> None:
        self.observe_series(name, _labels(labels), value)

    def observe_series(self, name: str, key: Labels, value: float) -> None:
        """`observe` with the labels already made into a series key (once, by the caller)."""
        with self._lock:
            cells = self._histograms[name].get(key)
            if cells is None:
                cells = self._histograms[name][key] = [0.0] * (len(BUCKETS) + 2)
            cells[bisect.bisect_left(BUCKETS, value)] += 1
            cells[-1] += value

    def collect_from(self, collector: Any) -> None:
        """`collector()` -> iterable of (name, labels, value): values read at each scrape."""
        self._collectors.append(collector)

    def count_cards(self, service_id: str, response: Mapping[str, Any]) -> None:
        for card in response.get("cards") or []:
            topic = ((card.get("source") or {}).get("topic") or {}).get("code", "none")
            labels = (service_id, topic, card.get("indicator", "none"))
            key = self._card_keys.get(labels)
            if key is None:  # made once per service, topic and indicator: the knowledge's, a few dozen
                key = self._card_keys[labels] = _labels(dict(zip(("service", "topic", "indicator"), labels)))
            self.inc_series("fhir_module_cards_total", key)

    # -- exposition ---------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """This process's values, collectors read now (JSON-ready)."""
        counters: dict[str, dict[Labels, float]] = defaultdict(dict)
        with self._lock:
            for name, series in self._counters.items():
                counters[name].update(series)
            histograms = {name: {key: list(cells) for key, cells in series.items()}
                          for name, series in self._histograms.items()}
        for collector in self._collectors:
            for name, labels, value in collector():
                counters[name][_labels(labels)] = value
        return {
            "counters": {name: [[list(map(list, key)), value] for key, value in series.items()]
                         for name, series in counters.items()},
            "histograms": {name: [[list(map(list, key)), cells] for key, cells in series.items()]
                           for name, series in histograms.items()},
        }

    def _write_own(self, snapshot: dict[str, Any]) -> None:
        assert self.directory is not None
        target = self.directory / f"{os.getpid()}.json"
        # A name of its own per write: the periodic flush (event loop) and a scrape (thread pool)
        # write at the same time, and a shared temporary name let one rename the other's file away.
        temporary = self.directory / f"{os.getpid()}.{threading.get_ident()}.{next(self._writes)}.tmp"
        try:
            temporary.write_text(json.dumps(snapshot))
            temporary.replace(target)  # readers never see half a file
        finally:
            temporary.unlink(missing_ok=True)

    def flush(self) -> None:
        """Keep this process's snapshot in the shared folder (when there is one)."""
        if self.directory is not None:
            self._write_own(self.snapshot())

    def _snapshots(self) -> Iterable[dict[str, Any]]:
        own = self.snapshot()
        if self.directory is None:
            return [own]
        try:
            self._write_own(own)
        except OSError:  # the others still read this worker's last snapshot; this scrape has its own
            pass
        found = [own]
        for path in self.directory.glob("*.json"):
            pid = int(path.stem) if path.stem.isdigit() else -1
            if pid == os.getpid():
                continue
            if not _alive(pid):  # a worker that is gone: its counts go with it
                path.unlink(missing_ok=True)
                continue
            try:
                found.append(json.loads(path.read_text()))
            except (OSError, ValueError):  # replaced while read: next scrape
                continue
        return found

    def render(self) -> str:
        counters: dict[str, dict[Labels, float]] = defaultdict(lambda: defaultdict(float))
        histograms: dict[str, dict[Labels, list[float]]] = defaultdict(dict)
        for snapshot in self._snapshots():
            for name, series in snapshot["counters"].items():
                for key, value in series:
                    counters[name][tuple(map(tuple, key))] += value
            for name, series in snapshot["histograms"].items():
                for key, cells in series:
                    total = histograms[name].setdefault(tuple(map(tuple, key)), [0.0] * len(cells))
                    for index, cell in enumerate(cells):
                        total[index] += cell
        lines: list[str] = []
        for name, (kind, text) in DESCRIPTIONS.items():
            lines += [f"# HELP {name} {text}", f"# TYPE {name} {kind}"]
            if kind == "histogram":
                for key, cells in sorted(histograms.get(name, {}).items()):
                    running = 0.0
                    for bound, count in zip([*map(_number, BUCKETS), "+Inf"], cells[:-1]):
                        running += count
                        lines.append(f"{name}_bucket{_render_labels(key, le=bound)} {_number(running)}")
                    lines.append(f"{name}_sum{_render_labels(key)} {_number(cells[-1])}")
                    lines.append(f"{name}_count{_render_labels(key)} {_number(running)}")
            else:
                for key, value in sorted(counters.get(name, {}).items()):
                    lines.append(f"{name}{_render_labels(key)} {_number(value)}")
        return "\n".join(lines) + "\n"


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _render_labels(key: Labels, **extra: str) -> str:
    pairs = [*key, *extra.items()]
    return "{" + ",".join(f'{name}="{_escape(str(value))}"' for name, value in pairs) + "}" if pairs else ""


# Label values come from a fixed set: any token is a valid HTTP method, and each new one once made a
# series of its own (50 made-up methods, no token needed, gave 50 series that lived for good).
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class RequestMetrics:
    """ASGI middleware: each HTTP request counted by route template, method and status, and timed."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics
        self._keys: dict[tuple[str, Any, int], tuple[Labels, Labels]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets if the app fails before answering

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            keys = self._keys.get((route, scope.get("method"), status))
            if keys is None:
                keys = self._keys_of(route, scope.get("method"), status)
            self.metrics.inc_series("fhir_module_requests_total", keys[0])
            self.metrics.observe_series("fhir_module_request_duration_seconds", keys[1], time.perf_counter() - started)

    def _keys_of(self, route: str, method: Any, status: int) -> tuple[Labels, Labels]:
        """The series keys of a (route, method, status), made once: few routes, methods and
        statuses exist (an unknown method counts as "other", so clients cannot add series)."""
        keys = (_labels({"route": route, "method": method if method in METHODS else "other", "status": status}),
                _labels({"route": route}))
        if method in METHODS:
            self._keys[(route, method, status)] = keys
        return keys
