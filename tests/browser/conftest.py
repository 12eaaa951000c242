"""Browser tests: the viewer served by uvicorn on a free loopback port over a real store, driven in Debian's
Chromium through Playwright (which never downloads a browser here). They skip, with the reason, where
``/usr/bin/chromium`` or the ``playwright`` package is missing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from autoloop.episodes import EpisodeStore
from autoloop.viewer.bench import CHROMIUM, launch_chromium
from tests.autoloop.viewer_store import build_viewer_store
from tests.conftest import SHARED_DATA


@pytest.fixture(scope="session")
def viewer_store(tmp_path_factory: pytest.TempPathFactory) -> EpisodeStore:
    forecasting = SHARED_DATA / "av2" / "forecasting"
    return build_viewer_store(tmp_path_factory.mktemp("browser") / "episodes",
                              av2_forecasting=forecasting if forecasting.is_dir() else None)


@pytest.fixture(scope="session")
def viewer_url(viewer_store: EpisodeStore) -> Iterator[str]:
    """The viewer over :func:`viewer_store`, served by uvicorn in a thread on a free loopback port."""
    from autoloop.viewer import create_app
    from autoloop.viewer.app import serving

    with serving(create_app(viewer_store.root)) as url:
        yield url


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM}: install Debian's `chromium` (apt-get install -y chromium; "
                    "`make test` does it as root)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("the playwright package is missing: pip install -e '.[dev]'")
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        yield browser
        browser.close()


@pytest.fixture()
def page(chromium: Any, viewer_url: str) -> Iterator[Any]:
    """A fresh page (1280x800) that fails the test on any script error."""
    context = chromium.new_context(viewport={"width": 1280, "height": 800}, base_url=viewer_url)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    tab.set_default_timeout(15_000)
    yield tab
    context.close()
    assert not errors, errors
