"""`GET /monographs/{name}`: the monograph the cards cite, served by the service itself.

Cards name the monograph by its canonical URL, which is an identifier, not a page anyone hosts.
The service serves the copy inside its knowledge (the DocumentReference) as HTML with a section
anchor per heading, and points each card's links here, so a clinician's click opens the sentence.
Public like /healthz: a browser opens it without the EHR's JWT, and it holds no patient data.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse

from fhir_module.monograph import MonographError, parse_monograph
from fhir_module.monograph.html import render_html

from ..errors import ApiError
from ..openapi import ERROR_RESPONSES

router = APIRouter(tags=["monographs"])
ROUTE = "/monographs/"


@lru_cache(maxsize=16)
def _page(text: str) -> str:
    return render_html(parse_monograph(text))


def _source(engine: Any, name: str) -> str | None:
    for url in engine.monograph_urls():
        if url.rstrip("/").rsplit("/", 1)[-1] == name:
            return engine.monograph(url)
    return None


@router.get("/monographs/{name}", response_class=HTMLResponse, summary="The monograph the cards cite, as HTML",
            responses={200: {"content": {"text/html": {}}, "description": "The monograph, one anchor per heading"},
                       **ERROR_RESPONSES(403, 404, 422, descriptions={
                           404: "No monograph of that name in the served knowledge (or it cannot be read)"})})
async def monograph_page(request: Request, name: str = Path(min_length=1, max_length=200)) -> HTMLResponse:
    text = _source(request.app.state.engine, name)
    if text is None:
        raise ApiError(404, f"no monograph {name!r} in the served knowledge", expression=["name"])
    try:
        return HTMLResponse(_page(text))
    except MonographError as exc:  # a bundle edited into an unreadable monograph
        raise ApiError(404, f"the monograph {name!r} cannot be read: {exc}") from None


# Per knowledge and base URL; bounded, since without a configured public URL the base comes from the
# Host header a client sends.
@lru_cache(maxsize=64)
def _served_urls(monograph_urls: tuple[str, ...], base_url: str) -> tuple[tuple[str, str], ...]:
    """(canonical URL, this service's URL) of each monograph."""
    return tuple((url, f"{base_url.rstrip('/')}{ROUTE}{url.rstrip('/').rsplit('/', 1)[-1]}") for url in monograph_urls)


def localise_links(response: dict[str, Any], engine: Any, base_url: str) -> dict[str, Any]:
    """Point card links at the monograph URLs of the knowledge to this service's copy."""
    if not response.get("cards"):
        return response
    mapping = _served_urls(tuple(engine.monograph_urls()), base_url)

    def local(url: Any) -> Any:
        if not isinstance(url, str):
            return url
        for canonical, served in mapping:
            if url == canonical or url.startswith(canonical + "#"):
                return served + url[len(canonical):]
        return url

    for card in response.get("cards", []):
        source = card.get("source") or {}
        if "url" in source:
            source["url"] = local(source["url"])
        for link in card.get("links") or []:
            link["url"] = local(link.get("url"))
    return response
