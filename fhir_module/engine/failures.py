"""Evaluation that failed on a request's data: said on the cards, logged and counted, never silent.

An expression that raises on odd request data (a route text that is a number, a list where one
value belongs, a function of ours that meets what it did not foresee) must not read as "checked
and fine". `Expression.evaluate` raises `EvaluationFailure`; the applier records which check it
stopped (`PlanApplier`), the cards of the order say so, and if none fired a notice card does.
Each failure counts in the engine's `EvaluationFailures`, which /healthz reports.
"""

from __future__ import annotations

import threading
from collections import Counter


class EvaluationFailure(Exception):
    """An expression could not be evaluated on this request's data."""

    def __init__(self, expression: str, cause: BaseException | str) -> None:
        # The cause's type name, not the cause (raised `from` it, it is the __cause__): scopes keep
        # failures, and an exception object would keep its traceback's frames with them.
        self.cause_name = cause if isinstance(cause, str) else type(cause).__name__
        super().__init__(f"{self.cause_name} evaluating {expression!r}")
        self.expression = expression


class EvaluationFailures:
    """How many checks could not be evaluated since the engine started, and which (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_check: Counter[str] = Counter()

    def add(self, check: str) -> None:
        with self._lock:
            self._by_check[check] += 1

    @property
    def total(self) -> int:
        with self._lock:
            return sum(self._by_check.values())

    def by_check(self) -> dict[str, int]:
        """Failures per check (`PlanDefinition id: action path`), for metrics."""
        with self._lock:
            return dict(self._by_check)
