"""`$validate` for the HTTP service: bounded, and away from the process that answers hooks.

Validation is CPU work proportional to what a client sends: one 3 MB bundle of 50,000 entries took
61 s of CPU, and 45 concurrent 0.6 MB bundles (in the service's own threads, holding its GIL) made
order-select take 16 s instead of 20 ms while memory grew to 781 MiB; the work went on after the
client had gone. So each validation here

- runs in a worker process of its own (spawned once, reused), at a lower CPU priority, so it never
  holds the service's GIL and the hooks' requests come first on a busy machine;
- is bounded in size (the service's body limit), nesting (64, strict JSON), resources (a bundle's
  entries, contained resources, all counted: `max_resources`) and wall time (`timeout`, from the
  moment a ready worker has the content): past it the worker is killed and the answer is 413
  too-costly when the worker had the CPU for it; a worker that got less than half that time of CPU
  (a busy machine starves it: it runs at a lower priority) is killed too, but the answer is 503
  with Retry-After, since the content was never shown to be too costly. A worker's own start (a new process importing the validator, up to
  `STARTUP_SECONDS`) is not the content's cost: counted in, a small bundle on a busy machine was
  once a 413 "takes longer than" while its worker was still starting;
- waits for one of `concurrency` workers, at most `timeout` s; when `max_waiting` requests already
  wait, the answer is 503 with Retry-After at once;
- stops when the client goes: its worker is killed (and replaced on the next request).
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import multiprocessing
import os
import weakref
from collections import Counter
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any, Awaitable, Callable

from fhir_module import strictjson

log = logging.getLogger("fhir_module.validation.runner")

MAX_RESOURCES = 10_000
WORKER_NICENESS = 10  # below the service's priority: hooks first when the cores are busy
# What a worker validates before it says it is ready: a Bundle of the resources the service is about.
WARM_UP = (b'{"resourceType": "Bundle", "type": "collection", "entry": ['
           b'{"resource": {"resourceType": "Patient", "id": "warm-up"}},'
           b'{"resource": {"resourceType": "MedicationRequest", "id": "warm-up", "status": "draft", "intent": "order",'
           b' "subject": {"reference": "Patient/warm-up"}, "medicationCodeableConcept": {"text": "warm-up"}}}]}')
STARTUP_SECONDS = 120.0  # a worker that is not ready by then (imports, warm-up) is given up: 503


# Past the time limit, a worker that had less than this share of it on the CPU was starved, not
# given content too costly to validate.
STARVED_SHARE = 0.5


def process_cpu_seconds(pid: int | None) -> float | None:
    """User and system CPU time of a process so far, from /proc (Linux); None where it cannot be read."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()  # after the command name, which may hold spaces
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime
    except (OSError, ValueError, IndexError):
        return None


@dataclass(frozen=True)
class ValidationJob:
    """One `$validate` call: the raw body and what the URL said."""

    body: bytes
    resource_type: str | None = None
    fhir_version: str | None = None
    profiles: tuple[str, ...] = ()


class Refused(Exception):
    """A `$validate` call answered with an HTTP error instead of an outcome."""

    def __init__(self, status: int, message: str, code: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.code, self.headers = status, message, code, headers


class ClientGone(Exception):
    """The client disconnected while its validation ran; the work was stopped."""


# -- the work itself (in a worker process, or in-process for tests and the CLI's sake) ----------


def count_resources(value: Any, limit: int) -> int:
    """Resources anywhere in `value` (the root, bundle entries, contained...), counting up to
    `limit + 1` at most."""
    count, stack = 0, [value]
    while stack and count <= limit:
        node = stack.pop()
        if isinstance(node, dict):
            if isinstance(node.get("resourceType"), str):
                count += 1
            stack.extend(item for item in node.values() if isinstance(item, (dict, list)))
        elif isinstance(node, list):
            stack.extend(item for item in node if isinstance(item, (dict, list)))
    return count


def validate_request(job: ValidationJob, max_resources: int = MAX_RESOURCES) -> dict[str, Any]:
    """The OperationOutcome for one call; raises Refused for a body that cannot be validated."""
    from fhir_module.validation.validator import validate

    if not job.body.strip():
        raise Refused(400, "the request body is empty; a FHIR resource is expected", "required")
    try:
        data = strictjson.loads(job.body)
    except strictjson.JsonError as exc:
        raise Refused(400, f"the request body is not valid JSON: {exc.message}", exc.code) from None
    count = count_resources(data, max_resources)
    if count > max_resources:
        raise Refused(413, f"the content holds more than {max_resources} resources; validate it in parts",
                      "too-costly")
    profiles = list(job.profiles)
    # The raw body keeps layer 1's duplicate-key check when the body is the resource itself.
    payload: Any = job.body
    if isinstance(data, dict) and data.get("resourceType") == "Parameters" and _has_resource_parameter(data):
        payload, given = _from_parameters(data)
        profiles += given
    outcome = validate(payload, fhir_version=job.fhir_version, profiles=profiles or None)
    given_type = (payload if isinstance(payload, dict) else data if isinstance(data, dict) else {}).get("resourceType")
    if job.resource_type and given_type and given_type != job.resource_type:
        mismatch = {"severity": "error", "code": "invalid",
                    "diagnostics": f"[request] Expected a {job.resource_type}, got a {given_type}"}
        outcome["issue"] = [mismatch, *[i for i in outcome["issue"] if i.get("diagnostics") != "No issues"]]
    return outcome


def _has_resource_parameter(params: dict[str, Any]) -> bool:
    items = params.get("parameter")
    return isinstance(items, list) and any(isinstance(p, dict) and p.get("name") == "resource" for p in items)


def _from_parameters(params: dict[str, Any]) -> tuple[Any, list[str]]:
    resource, profiles = None, []
    for p in params.get("parameter", []) if isinstance(params.get("parameter"), list) else []:
        if not isinstance(p, dict):
            continue
        if p.get("name") == "resource":
            resource = p.get("resource")
        elif p.get("name") == "profile":
            for key in ("valueUri", "valueCanonical", "valueString", "valueUrl"):
                if isinstance(p.get(key), str):
                    profiles.append(p[key])
    return resource, profiles


def _worker_main(conn: Connection, max_resources: int) -> None:
    """A worker process: validate each job received, answer ("ok", outcome) or ("refused", ...)."""
    try:
        os.nice(WORKER_NICENESS)
    except OSError:  # not permitted here: run at the same priority
        pass
    validate_request(ValidationJob(WARM_UP))  # the validator loads its models on first use
    conn.send(("ready",))
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        try:
            answer: tuple[Any, ...] = ("ok", validate_request(job, max_resources))
        except Refused as refused:
            answer = ("refused", refused.status, refused.message, refused.code)
        except Exception as exc:  # a validator bug: reported as such, the worker goes on
            answer = ("error", type(exc).__name__)
        conn.send(answer)


# -- the runner (in the service process) ---------------------------------------------------------


@dataclass
class _Worker:
    process: Any
    conn: Connection

    def roundtrip(self, job: ValidationJob) -> tuple[Any, ...]:
        """Blocking: send the job and wait for its answer (run in a thread)."""
        self.conn.send(job)
        return self.conn.recv()

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.conn.close()

    @property
    def alive(self) -> bool:
        return not self.conn.closed and self.process.is_alive()


@dataclass
class ValidationRunner:
    """Runs validations in up to `concurrency` worker processes, each call within `timeout` s."""

    concurrency: int = 1
    timeout: float = 30.0
    max_waiting: int = 4
    max_resources: int = MAX_RESOURCES
    counts: Counter[str] = field(default_factory=Counter)  # ok, refused, timeout, starved, gone, busy, error

    def __post_init__(self) -> None:
        self._idle: list[_Worker] = []
        self._workers: list[_Worker] = []  # idle and busy, to stop them all at close
        self._gates: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = weakref.WeakKeyDictionary()
        self.waiting = 0  # calls waiting for a worker
        self.running = 0  # calls a worker is on (or being started for)
        self._context = multiprocessing.get_context("spawn")

    def _gate(self) -> asyncio.Semaphore:
        """The concurrency gate of the running event loop (a process serves from one loop)."""
        loop = asyncio.get_running_loop()
        gate = self._gates.get(loop)
        if gate is None:
            gate = self._gates[loop] = asyncio.Semaphore(self.concurrency)
        return gate

    def _spawn(self) -> _Worker:
        """Blocking (run in a thread): a new worker, once it has imported and warmed up."""
        ours, theirs = self._context.Pipe()
        process = self._context.Process(target=_worker_main, args=(theirs, self.max_resources),
                                        name="fhir-module-validate", daemon=True)
        process.start()
        theirs.close()
        worker = _Worker(process, ours)
        self._workers.append(worker)
        try:
            ready = ours.poll(STARTUP_SECONDS) and ours.recv() == ("ready",)
        except (EOFError, OSError):  # it died while starting
            ready = False
        if not ready:
            worker.kill()
            raise Refused(503, f"a validation worker did not start within {STARTUP_SECONDS:g} s; try again later",
                          "transient", {"Retry-After": "10"})
        return worker

    async def _worker(self) -> _Worker:
        """An idle worker, or a new one. A start the request stops waiting for (the client left)
        still ends in the idle list, never in a process nobody uses or stops before exit."""
        if self._idle:
            return self._idle.pop()
        starting = asyncio.get_running_loop().run_in_executor(None, self._spawn)
        try:
            return await asyncio.shield(starting)
        except asyncio.CancelledError:
            starting.add_done_callback(self._keep_idle)
            raise

    def _keep_idle(self, started: asyncio.Future[_Worker]) -> None:
        if started.cancelled() or started.exception() is not None:
            return
        if len(self._idle) < self.concurrency:
            self._idle.append(started.result())
        else:  # others were started meanwhile: never more idle workers than the concurrency
            started.result().kill()

    async def run(self, job: ValidationJob, client_gone: Callable[[], Awaitable[Any]] | None = None) -> dict[str, Any]:
        """The outcome of `job`; raises Refused (busy, too costly, bad body) or ClientGone."""
        gate = self._gate()
        if gate.locked() and self.waiting >= self.max_waiting:
            self.counts["busy"] += 1
            raise Refused(503, f"{self.waiting} validations already wait; try again later", "transient",
                          {"Retry-After": str(max(1, int(self.timeout / 2)))})
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.timeout):
                self.waiting += 1
                try:
                    await gate.acquire()
                finally:
                    self.waiting -= 1
        except TimeoutError:
            self.counts["busy"] += 1
            raise Refused(503, f"no validation worker became free within {self.timeout:g} s; try again later",
                          "transient", {"Retry-After": str(max(1, int(self.timeout / 2)))}) from None
        self.running += 1
        try:
            worker = await self._worker()
            return await self._run_on_worker(worker, job, loop.time() + self.timeout, client_gone)
        finally:
            self.running -= 1
            gate.release()

    async def _run_on_worker(self, worker: _Worker, job: ValidationJob, deadline: float,
                             client_gone: Callable[[], Awaitable[Any]] | None) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        cpu_before = process_cpu_seconds(worker.process.pid)
        work = loop.run_in_executor(None, worker.roundtrip, job)
        # A killed worker's roundtrip ends in EOFError nobody awaits: retrieved here, so asyncio
        # does not log "Future exception was never retrieved" at ERROR for each timeout or client gone.
        work.add_done_callback(lambda done: done.cancelled() or done.exception())
        watch = asyncio.ensure_future(client_gone()) if client_gone else None
        try:
            done, _ = await asyncio.wait({work, *([watch] if watch else [])}, timeout=max(0.0, deadline - loop.time()),
                                         return_when=asyncio.FIRST_COMPLETED)
        except BaseException:  # cancelled: the request is gone with its worker
            worker.kill()
            raise
        finally:
            if watch is not None:
                watch.cancel()
        if work not in done:
            cpu_after = process_cpu_seconds(worker.process.pid)
            worker.kill()  # the thread's recv ends with the process
            if watch is not None and watch in done:
                self.counts["gone"] += 1
                log.info("validation stopped: the client disconnected")
                raise ClientGone
            if cpu_before is not None and cpu_after is not None and cpu_after - cpu_before < self.timeout * STARVED_SHARE:
                self.counts["starved"] += 1
                log.warning("validation stopped after %g s with %.1f s of CPU: the machine is too busy",
                            self.timeout, cpu_after - cpu_before)
                raise Refused(503, f"the validation got {cpu_after - cpu_before:.1f} s of CPU in {self.timeout:g} s: "
                                   "the service is too busy; try again later", "transient",
                              {"Retry-After": str(max(1, int(self.timeout / 2)))})
            self.counts["timeout"] += 1
            raise Refused(413, f"validating this content takes longer than {self.timeout:g} s; validate it in parts",
                          "too-costly")
        try:
            answer = work.result()
        except (EOFError, OSError):  # the worker died (killed by the system, out of memory...)
            worker.kill()
            self.counts["error"] += 1
            raise Refused(503, "the validation worker stopped; try again", "transient") from None
        self._idle.append(worker)
        if answer[0] == "ok":
            self.counts["ok"] += 1
            return answer[1]
        if answer[0] == "refused":
            self.counts["refused"] += 1
            raise Refused(answer[1], answer[2], answer[3])
        self.counts["error"] += 1
        log.error("validation failed inside the worker: %s", answer[1])
        raise Refused(500, f"internal error while validating ({answer[1]})", "exception")

    @property
    def idle(self) -> int:
        """Started workers waiting for a call."""
        return len(self._idle)

    @property
    def workers(self) -> int:
        """Live worker processes."""
        self._workers = [w for w in self._workers if w.alive]
        return len(self._workers)

    def close(self) -> None:
        for worker in self._workers:
            worker.kill()
        for worker in self._workers:
            worker.process.join(timeout=5)
        self._idle.clear()
        self._workers.clear()


_shared: dict[tuple[int, float, int], ValidationRunner] = {}


def shared_runner(concurrency: int = 1, timeout: float = 30.0, max_resources: int = MAX_RESOURCES) -> ValidationRunner:
    """One runner per configuration and process, stopped at exit: every app of the process (one in
    a deployment, many in a test run) shares its warm workers."""
    key = (concurrency, timeout, max_resources)
    if key not in _shared:
        runner = _shared[key] = ValidationRunner(concurrency=concurrency, timeout=timeout, max_resources=max_resources)
        atexit.register(runner.close)
    return _shared[key]
