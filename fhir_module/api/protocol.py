"""uvicorn's HTTP/1.1 protocol with a deadline for each request's head.

uvicorn closes a keep-alive connection that stays idle after a response, but not one that never
finishes a request: a connection that sends nothing, or half a request line, or headers without
the blank line that ends them, stays open for good (100 such connections, no token needed, were all
still open after 20 s). The application cannot see them (it is called once the head is complete),
so the deadline lives here: `head_timeout` seconds after a connection opens, or after the first
byte of a next request on a kept-alive connection, the request head must be complete, else the
connection is closed. The body has its own deadline in the application (body.py, `BodyLimits`),
which also holds under any server.

`fhir-module serve` uses this protocol; under plain uvicorn pass
`--http fhir_module.api.protocol:GuardedH11Protocol`. The deadline is the `header_timeout` setting.
"""

from __future__ import annotations

import asyncio
import logging

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger("fhir_module.api.protocol")

DEFAULT_HEAD_TIMEOUT = 10.0


def _configured_head_timeout() -> float:
    """`header_timeout` of the service's settings (FHIR_MODULE_HEADER_TIMEOUT or the TOML file):
    uvicorn builds the protocol itself, in each worker process, from its import string."""
    from fhir_module.config import ConfigError, load_settings

    try:
        return load_settings().header_timeout
    except ConfigError:  # reported by the app factory, which loads the same settings
        return DEFAULT_HEAD_TIMEOUT


class GuardedH11Protocol(H11Protocol):
    """H11Protocol that closes connections whose request head does not arrive in time."""

    head_timeout: float | None = None  # None: the configured header_timeout, read once per process

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        if GuardedH11Protocol.head_timeout is None:
            GuardedH11Protocol.head_timeout = _configured_head_timeout()
        super().connection_made(transport)
        self._head_timer: asyncio.TimerHandle | None = None
        self._arm_head_timer()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._waiting_for_head():
            self._arm_head_timer()  # a next request has begun on a kept-alive connection
        else:
            self._disarm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head_timer()
        super().connection_lost(exc)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # Idle now: uvicorn's keep-alive timeout takes over until the next request's first byte.
        self._disarm_head_timer()

    def _waiting_for_head(self) -> bool:
        return self.conn.their_state is h11.IDLE and not self.transport.is_closing()

    def _arm_head_timer(self) -> None:
        if getattr(self, "_head_timer", None) is None:
            self._head_timer = self.loop.call_later(self.head_timeout or DEFAULT_HEAD_TIMEOUT, self._head_timed_out)

    def _disarm_head_timer(self) -> None:
        timer = getattr(self, "_head_timer", None)
        if timer is not None:
            timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self._waiting_for_head():
            client = "%s:%d" % self.client if self.client else "a client"
            log.info("closed the connection of %s: no complete request head within %g s", client, self.head_timeout)
            self.transport.close()

