"""`/docs` and `/redoc` render with nothing but the service's own assets (no CDN)."""

from __future__ import annotations

import re
from typing import Any

import httpx

from tests.web.conftest import screenshot


def test_the_docs_pages_name_only_local_assets(live: Any) -> None:
    with live() as url:
        for page in ("/docs", "/redoc"):
            html = httpx.get(f"{url}{page}").text
            assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", html) + re.findall(r"url: ?'([^']+)'", html)
            assert assets, html
            for asset in assets:
                assert asset.startswith("/"), f"{page} loads {asset} from elsewhere"
                answer = httpx.get(f"{url}{asset}")
                assert answer.status_code == 200, asset


def test_swagger_ui_renders_offline(live: Any, offline_page: Any) -> None:
    page = offline_page.page
    with live() as url:
        page.goto(f"{url}/docs")
        page.wait_for_selector(".swagger-ui .info .title", timeout=20_000)
        assert "fhir_module CDS Hooks service" in page.inner_text(".swagger-ui .info .title")
        page.get_by_text("/cds-services/{service_id}", exact=True).first.wait_for(timeout=20_000)
        screenshot(page, "docs-swagger-ui")
    assert offline_page.outside == [] and offline_page.errors == []


def test_redoc_renders_offline(live: Any, offline_page: Any) -> None:
    page = offline_page.page
    with live() as url:
        page.goto(f"{url}/redoc")
        page.wait_for_selector("h1", timeout=20_000)
        assert "fhir_module CDS Hooks service" in page.inner_text("h1")
        page.locator("h2", has_text="Call a CDS service with a hook request").first.wait_for(timeout=20_000)
        screenshot(page, "docs-redoc")
    assert offline_page.outside == [] and offline_page.errors == []


def test_the_docs_are_public_when_authentication_is_on(live: Any, tmp_path: Any) -> None:
    from fhir_module.config import TrustedClient

    clients = (TrustedClient(iss="https://ehr.example.org", jwks={"keys": []}),)
    with live(trusted_clients=clients) as url:
        assert httpx.get(f"{url}/cds-services").status_code == 401
        for page in ("/docs", "/redoc", "/static/docs/swagger-ui-bundle.js", "/openapi.json"):
            assert httpx.get(f"{url}{page}").status_code == 200, page
