"""Headless Chromium driven by Selenium, against a console served by uvicorn over a real engine.

Skips with a message when Chromium or chromedriver is absent, unless LIAISON_REQUIRE_BROWSER=1 (set by
deploy/scripts/test.sh, which installs Debian's chromium and chromium-driver): then their absence fails.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1400,900")


def require_browser() -> None:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("the selenium package")
    if not missing:
        return
    message = f"browser tests need {', '.join(missing)} (apt-get install chromium chromium-driver)"
    if os.environ.get("LIAISON_REQUIRE_BROWSER") == "1":
        pytest.fail(message + "; LIAISON_REQUIRE_BROWSER=1 requires them")
    pytest.skip(message)


class Browser:
    """One Chromium with a fresh profile; every Selenium call runs in a thread so the console keeps serving."""

    def __init__(self, profile: Path, base_url: str):
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
        options = webdriver.ChromeOptions()
        options.binary_location = str(CHROMIUM)
        for flag in FLAGS:
            options.add_argument(flag)
        options.add_argument(f"--user-data-dir={profile}")
        self.driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
        self.base_url = base_url

    async def run(self, function, *args):
        return await asyncio.to_thread(function, *args)

    async def get(self, path: str) -> None:
        await self.run(self.driver.get, self.base_url + path)

    async def find(self, css: str, timeout: float = 10.0):
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support import expected_conditions
        from selenium.webdriver.support.ui import WebDriverWait
        wait = WebDriverWait(self.driver, timeout)
        return await self.run(wait.until, expected_conditions.presence_of_element_located((By.CSS_SELECTOR, css)))

    async def fill(self, css: str, text: str) -> None:
        element = await self.find(css)
        await self.run(element.clear)
        await self.run(element.send_keys, text)

    async def click(self, css: str) -> None:
        await self.run((await self.find(css)).click)

    async def text(self, css: str) -> str:
        return (await self.find(css)).text

    async def source(self) -> str:
        return await self.run(lambda: self.driver.page_source)

    async def login(self, name: str, password: str) -> None:
        await self.get("/login")
        await self.fill("#name", name)
        await self.fill("#password", password)
        form = await self.find("#login")
        await self.click("#login")
        await self.landed(form)

    async def landed(self, old_element, timeout: float = 10.0) -> None:
        """Wait until the page the click left is gone (the next one loaded), so a following get() is not raced."""
        from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
        from selenium.webdriver.support.ui import WebDriverWait

        def gone(_driver) -> bool:
            try:
                old_element.is_enabled()
                return False
            except StaleElementReferenceException:
                return True
            except WebDriverException as exc:      # chromedriver's word for a node whose document was replaced
                if "does not belong to the document" in str(exc):
                    return True
                raise

        await self.run(WebDriverWait(self.driver, timeout).until, gone)
        await self.run(WebDriverWait(self.driver, timeout).until,
                       lambda driver: driver.execute_script("return document.readyState") == "complete")

    async def screenshot(self, path: Path) -> None:
        await self.run(self.driver.save_screenshot, str(path))

    def quit(self) -> None:
        self.driver.quit()


@pytest.fixture
def browser_factory(tmp_path):
    require_browser()
    browsers: list[Browser] = []

    def make(base_url: str) -> Browser:
        profile = tmp_path / f"chromium-profile-{len(browsers)}"
        browsers.append(Browser(profile, base_url))
        return browsers[-1]

    yield make
    for browser in browsers:
        browser.quit()
    for index in range(len(browsers)):
        shutil.rmtree(tmp_path / f"chromium-profile-{index}", ignore_errors=True)
