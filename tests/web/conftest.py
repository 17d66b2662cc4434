"""Browser tests: Debian's chromium driven by Playwright (no browser download), with the network
limited to the loopback so a page that reaches for a CDN or any outside address fails its test."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from fhir_module.api import create_app
from fhir_module.config import Settings
from tests.api.helpers import make_engine, serve_app

# Flags that work as root with no network (../shared/docs/testing.md).
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"]
# Screenshots are kept as test artefacts (CI keeps the folder; it is ignored by git).
ARTEFACTS = Path(__file__).resolve().parents[2] / "test-artefacts" / "screenshots"


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    executable = shutil.which("chromium")
    assert executable, "Debian's chromium is needed for the page tests (.ci/run installs it)"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        try:
            yield browser
        finally:
            browser.close()


class OfflinePage:
    """A page whose requests may reach only the loopback; the others are refused and recorded."""

    def __init__(self, browser: Any) -> None:
        self.context = browser.new_context(viewport={"width": 1280, "height": 900})
        self.page = self.context.new_page()
        self.outside: list[str] = []
        self.errors: list[str] = []
        self.context.route("**/*", self._route)
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))

    def _route(self, route: Any) -> None:
        url = route.request.url
        host = urlsplit(url).hostname or ""
        if url.startswith(("data:", "blob:", "about:")) or host in ("127.0.0.1", "localhost", "::1"):
            route.continue_()
        else:
            self.outside.append(url)
            route.abort()

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def offline_page(browser: Any) -> Iterator[OfflinePage]:
    page = OfflinePage(browser)
    try:
        yield page
    finally:
        page.close()


@pytest.fixture(scope="session")
def engine() -> Any:
    return make_engine()


@pytest.fixture
def live(engine: Any, tmp_path: Path) -> Callable[..., Any]:
    """`live(**settings)` -> context manager yielding the base URL of a freshly built app."""

    @contextmanager
    def start(**overrides: Any) -> Iterator[str]:
        overrides.setdefault("database_url", f"sqlite:///{tmp_path / 'feedback.sqlite3'}")
        with serve_app(create_app(Settings(**overrides), engine)) as url:
            yield url

    return start


def screenshot(page: Any, name: str) -> Path:
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTEFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
