"""`DirectRoute`: a FastAPI route that is documented like any other and called without FastAPI's
per-call machinery.

FastAPI documents a route from its signature and options (path parameters and their limits,
`openapi_extra`, responses) and, on each call, solves the route's dependency graph, reads every
kind of parameter and prepares a response model. For `POST /cds-services/{id}` that per-call work
cost about 28 µs of CPU, as much as everything the rules need to judge an unrelated order. A
direct route keeps the documentation and calls `await endpoint(request, **path_parameters)`,
the path parameters still checked by FastAPI's own rules (a 422 as from any route): a plain one
(a str, int, float or bool under its own name) by its field's validator, as FastAPI's
`request_params_to_args` ends up doing after working out, on every call, what kind of parameter it
is (45k instructions of an order-select's 2,600k for one `service_id`); any other kind by
`request_params_to_args` itself.

Its endpoint takes the Request and path parameters only, does its own checks and returns a
Response: dependencies, query, header, cookie or body parameters would silently not be read, so a
direct route with any of them is refused when it is declared. What must come before everything,
even the path parameters' 422 (the client's authentication), is the route class's `first`.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable, ClassVar, Coroutine, Mapping, Sequence

from fastapi import Request, params
from fastapi.dependencies.utils import request_params_to_args
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.routing import APIRoute

# Path parameters read as they come: validated by their field alone.
_PLAIN_TYPES = (str, int, float, bool)


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
        endpoint, request_name = self.endpoint, dependant.request_param_name
        read_path = _path_reader(dependant.path_params)
        first = type(self).first

        async def handle(request: Request) -> Response:
            if first is not None:
                await first(request)
            values, errors = read_path(request.path_params)
            if errors:
                raise RequestValidationError(errors)
            return await endpoint(**{request_name: request}, **values)

        return handle


def _path_reader(fields: Sequence[Any]) -> Callable[[Mapping[str, Any]], tuple[dict[str, Any], list[Any]]]:
    """The route's reading of its path parameters: (values, errors) as `request_params_to_args`
    gives them."""
    plain = [(field.name, ("path", field.alias), field) for field in fields
             if isinstance(field.field_info, params.Path) and field.field_info.annotation in _PLAIN_TYPES
             and not field.field_info.validation_alias]
    if len(plain) != len(fields):
        return lambda path_params: request_params_to_args(fields, path_params)

    def read(path_params: Mapping[str, Any]) -> tuple[dict[str, Any], list[Any]]:
        values: dict[str, Any] = {}
        errors: list[Any] = []
        for name, loc, field in plain:
            value = path_params.get(loc[1])
            if value is None:  # not in the path after all: FastAPI's reading says what that means
                return request_params_to_args(fields, path_params)
            value, found = field.validate(value, values, loc=loc)
            if found:
                errors.extend(found)
            else:
                values[name] = value
        return values, errors

    return read
