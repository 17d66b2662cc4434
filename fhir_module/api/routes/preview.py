"""The card preview page: `GET /` and the little it asks of the service besides the CDS calls.

The page (static/preview/, no framework, no CDN) lists the served modules and their examples,
builds a chart from its form, and then calls the CDS services themselves, as an EHR would; it shows
their cards. Its own calls:

- `GET /preview/modules`: the modules, their services, form choices and examples (preview.py);
- `GET /preview/examples/{module}/{id}`: one example's chart, dates resolved for today;
- `POST /preview/requests`: a chart -> the hook request for each service of its hook.

The page is on when the service has no trusted clients (it then answers loopback clients only);
with trusted clients it is off (404) unless enabled (FHIR_MODULE_PREVIEW_PAGE=on), and then its
data calls, like the CDS calls, need a client JWT (the page sends the one it is given).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from fhir_module.selftest import ScenarioError

from ..auth import require_client
from ..body import read_json_object
from ..errors import ApiError
from ..preview import CaseIndex, case_document, chart_case, hook_requests, modules

ASSETS_URL = "/static/preview"
ASSETS_DIR = Path(__file__).resolve().parent.parent / "static" / "preview"


def _page_on(request: Request) -> None:
    """404 when the page is off, saying how to turn it on."""
    if not request.app.state.settings.preview_enabled:
        raise ApiError(404, "the card preview page is off: this service has trusted clients configured; "
                            "set FHIR_MODULE_PREVIEW_PAGE=on to enable it", code="not-found")


router = APIRouter(include_in_schema=False, dependencies=[Depends(_page_on)])
data = APIRouter(include_in_schema=False, dependencies=[Depends(_page_on), Depends(require_client)])


def assets() -> StaticFiles:
    return StaticFiles(directory=ASSETS_DIR)


def case_index(request: Request) -> CaseIndex:
    index = getattr(request.app.state, "preview_cases", None)
    if index is None:
        index = request.app.state.preview_cases = CaseIndex.for_settings(request.app.state.settings)
    return index


@router.get("/")
async def page() -> FileResponse:
    return FileResponse(ASSETS_DIR / "index.html", media_type="text/html; charset=utf-8")


@data.get("/preview/modules")
async def served_modules(request: Request) -> JSONResponse:
    return JSONResponse({"modules": modules(request.app.state.engine, case_index(request))})


@data.get("/preview/examples/{module}/{case_id}")
async def example(request: Request, module: str, case_id: str) -> JSONResponse:
    try:
        case = case_index(request).case(module, case_id, date.today())
    except (ScenarioError, ValueError) as exc:
        raise ApiError(500, f"the example {module}/{case_id} cannot be read: {exc}", code="exception") from None
    if case is None:
        raise ApiError(404, f"no example {case_id!r} in module {module!r}", code="not-found")
    return JSONResponse(case_document(case))


@data.post("/preview/requests")
async def requests_for_chart(request: Request) -> JSONResponse:
    today = date.today()
    try:
        case = chart_case(await read_json_object(request), today)
        built = hook_requests(request.app.state.engine, case, today)
    except ScenarioError as exc:
        raise ApiError(400, str(exc), code="invalid") from None
    if not built:
        raise ApiError(400, f"no served service answers the hook {case.hook!r}", code="not-supported")
    return JSONResponse({"requests": built})
