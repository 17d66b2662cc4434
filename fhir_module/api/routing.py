"""`DirectRoute`: a FastAPI route that is documented like any other and called without FastAPI's
per-call machinery.

FastAPI documents a route from its signature and options (path parameters and their limits,
`openapi_extra`, responses) and, on each call, solves the route's dependency graph, reads every
kind of parameter and prepares a response model. For `POST /cds-services/{id}` that per-call work
cost about 28 µs of CPU, as much as everything the rules need to judge an unrelated order. A
direct route keeps the documentation and calls `await endpoint(request, **path_parameters)`,
the path parameters still checked by FastAPI's own rules (a 422 as from any route).

Its endpoint takes the Request and path parameters only, does its own checks and returns a
Response: dependencies, query, header, cookie or body parameters would silently not be read, so a
direct route with any of them is refused when it is declared. What must come before everything,
even the path parameters' 422 (the client's authentication), is the route class's `first`.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable, ClassVar, Coroutine

from fastapi import Request
from fastapi.dependencies.utils import request_params_to_args
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.routing import APIRoute


class DirectRoute(APIRoute):
    """An APIRoute whose endpoint is called directly (see the module's docstring)."""

    # Awaited with the request before the path parameters are checked (as a route dependency was).
    first: ClassVar[Callable[[Request], Awaitable[Any]] | None] = None

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        dependant = self.dependant  # built by APIRoute before it asks for the handler
        unread = [kind for kind, found in (
            ("dependencies", dependant.dependencies), ("query parameters", dependant.query_params),
            ("header parameters", dependant.header_params), ("cookie parameters", dependant.cookie_params),
            ("body parameters", dependant.body_params)) if found]
        if unread or dependant.request_param_name is None:
            raise TypeError(f"direct route {self.path}: its endpoint must take the Request and path parameters "
                            f"only, and check the rest itself (found {', '.join(unread) or 'no Request parameter'})")
        endpoint, request_name, path_fields = self.endpoint, dependant.request_param_name, dependant.path_params
        first = type(self).first

        async def handle(request: Request) -> Response:
            if first is not None:
                await first(request)
            values, errors = request_params_to_args(path_fields, request.path_params)
            if errors:
                raise RequestValidationError(errors)
            return await endpoint(**{request_name: request}, **values)

        return handle
