"""Direct routes (fhir_module/api/routing.py): documented by FastAPI, called without its per-call
machinery, so they must refuse what that machinery would have read for them."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI, Header, Path, Request
from fastapi.responses import Response
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from fhir_module.api.routing import DirectRoute


def test_a_direct_route_refuses_what_it_would_not_read() -> None:
    router = APIRouter(route_class=DirectRoute)

    async def needs_nothing() -> None:
        return None

    with pytest.raises(TypeError, match="dependencies"):
        router.add_api_route("/a/{x}", _endpoint, methods=["POST"], dependencies=[Depends(needs_nothing)])

    async def with_header(request: Request, x: str, token: str = Header()) -> Response:
        return Response()

    with pytest.raises(TypeError, match="header parameters"):
        router.add_api_route("/b/{x}", with_header, methods=["POST"])

    async def without_request(x: str) -> Response:
        return Response()

    with pytest.raises(TypeError, match="no Request parameter"):
        router.add_api_route("/c/{x}", without_request, methods=["POST"])


async def _endpoint(request: Request, x: str = Path(max_length=3)) -> Response:
    return Response(f"{x} {request.method}".encode(), media_type="text/plain")


class _Guarded(DirectRoute):
    calls: list[str] = []

    @staticmethod
    async def first(request: Request) -> None:
        _Guarded.calls.append(request.url.path)


def test_a_direct_route_checks_its_path_parameters_after_its_first_check() -> None:
    app = FastAPI()
    router = APIRouter(route_class=_Guarded)
    router.add_api_route("/a/{x}", _endpoint, methods=["POST"])
    app.include_router(router)
    client = TestClient(app)
    assert client.post("/a/abc").text == "abc POST"
    response = client.post("/a/abcd")
    assert response.status_code == 422 and response.json()["detail"][0]["loc"] == ["path", "x"]
    assert _Guarded.calls == ["/a/abc", "/a/abcd"]
    # Documented like any route: the parameter's limit is in the OpenAPI document.
    parameter = app.openapi()["paths"]["/a/{x}"]["post"]["parameters"][0]
    assert parameter["name"] == "x" and parameter["schema"]["maxLength"] == 3


async def _plain(request: Request, x: str = Path(max_length=3), n: int = Path(ge=1)) -> Response:
    return Response(f"{x} {n!r}".encode(), media_type="text/plain")


async def _aliased(request: Request, x: str = Path(max_length=3), tag: str = Path(alias="t", min_length=2)) -> Response:
    return Response(f"{x} {tag}".encode(), media_type="text/plain")


def test_a_direct_route_reads_its_path_parameters_as_fastapi_does() -> None:
    # Plain parameters are validated by their field alone (routing.py), a route with others (an
    # alias) by FastAPI's reading: values and every 422 are those of an ordinary FastAPI route.
    paths = ("/a/abc/5", "/a/abcd/5", "/a/abc/0", "/a/abcd/zz", "/a/ab/07", "/b/abc/tt", "/b/abcd/t", "/b/ab/tt")
    answers = {}
    for route_class in (DirectRoute, APIRoute):
        app = FastAPI()
        app.router.add_api_route("/a/{x}/{n}", _plain, methods=["POST"], route_class_override=route_class)
        app.router.add_api_route("/b/{x}/{t}", _aliased, methods=["POST"], route_class_override=route_class)
        client = TestClient(app)
        answers[route_class] = [(r.status_code, r.text) for r in (client.post(path) for path in paths)]
    assert answers[DirectRoute] == answers[APIRoute]
    assert [status for status, _ in answers[DirectRoute]] == [200, 422, 422, 422, 200, 200, 422, 200]
    assert answers[DirectRoute][4][1] == "ab 7"


def test_the_service_call_keeps_its_documented_path_limit(base_url: str, discovery: dict[str, Any]) -> None:
    response = httpx.post(f"{base_url}/cds-services/{'x' * 201}", json={})
    assert response.status_code == 422
    assert response.json()["issue"][0]["expression"] == ["path.service_id"]
    operation = httpx.get(f"{base_url}/openapi.json").json()["paths"]["/cds-services/{service_id}"]["post"]
    assert operation["parameters"][0]["schema"]["maxLength"] == 200
    assert operation["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("CdsServiceRequest")
