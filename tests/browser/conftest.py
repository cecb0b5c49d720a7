"""A real Chromium (Debian's chromium + chromium-driver, driven by selenium) against a live server.

Nothing is downloaded: the browser and its driver come from the system (.ci/run installs them),
found at K8SDM_CHROMIUM / K8SDM_CHROMEDRIVER or on PATH. Screenshots of every page a test looks
at go to K8SDM_SCREENSHOT_DIR (default .data/screenshots/), for people to read.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
WIDTH, HEIGHT = 1366, 900
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", f"--window-size={WIDTH},{HEIGHT}", "--hide-scrollbars"]
PASSWORD = "a-long-staff-password-1"


def _find(env: str, *names: str) -> str:
    path = os.environ.get(env) or next((p for n in names if (p := shutil.which(n))), None)
    if not path:
        pytest.fail(f"no {names[0]} found: install Debian's chromium and chromium-driver (.ci/run does) or set {env}",
                    pytrace=False)
    return path


@pytest.fixture(scope="session")
def screenshot_dir() -> Path:
    path = Path(os.environ.get("K8SDM_SCREENSHOT_DIR", ROOT / ".data" / "screenshots"))
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def chromium():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = _find("K8SDM_CHROMIUM", "chromium", "chromium-browser")
    for flag in FLAGS:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(_find("K8SDM_CHROMEDRIVER", "chromedriver")), options=options)
    driver.set_window_size(WIDTH, HEIGHT)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


class Page:
    """What a person sees: the browser, plus the checks every page must pass."""

    def __init__(self, driver, base_url: str, screenshots: Path):
        self.driver = driver
        self.base_url = base_url
        self.screenshots = screenshots

    def open(self, path: str):
        self.driver.get(self.base_url + path)
        return self

    def text(self) -> str:
        return self.driver.find_element("tag name", "body").text

    def find(self, css: str):
        return self.driver.find_element("css selector", css)

    def find_all(self, css: str):
        return self.driver.find_elements("css selector", css)

    def click(self, css: str):
        """Click something that loads a new page, and wait for that page."""
        self.follow(self.find(css))
        return self

    def follow(self, element):
        from selenium.webdriver.support import expected_conditions
        from selenium.webdriver.support.ui import WebDriverWait

        old = self.find("html")
        element.click()
        WebDriverWait(self.driver, 30).until(expected_conditions.staleness_of(old))
        WebDriverWait(self.driver, 30).until(
            lambda d: d.execute_script("return document.readyState") == "complete")
        return self

    def check(self, name: str) -> str:
        """No horizontal overflow at 1366 px, no console errors; a full-page screenshot. Returns the text."""
        width, scroll_width = self.driver.execute_script(
            "return [window.innerWidth, document.scrollingElement.scrollWidth]")
        assert scroll_width <= width, f"{name}: the page is {scroll_width} px wide in a {width} px window"
        clipped = self.driver.execute_script(
            "const r = document.querySelector('#changelist .results');"
            "return r ? [r.scrollWidth, r.clientWidth] : null")
        assert not clipped or clipped[0] <= clipped[1], f"{name}: the list is {clipped[0]} px wide in {clipped[1]} px"
        errors = [entry for entry in self.driver.get_log("browser") if entry["level"] == "SEVERE"]
        assert not errors, f"{name}: console errors: {errors}"
        self.screenshot(name)
        return self.text()

    def screenshot(self, name: str) -> Path:
        height = self.driver.execute_script("return document.scrollingElement.scrollHeight")
        self.driver.set_window_size(WIDTH, max(HEIGHT, min(height + 120, 6000)))
        path = self.screenshots / f"{name}.png"
        self.driver.save_screenshot(str(path))
        self.driver.set_window_size(WIDTH, HEIGHT)
        return path


@pytest.fixture
def staff_user(transactional_db):
    from django.contrib.auth import get_user_model

    return get_user_model().objects.create_superuser("ops-anna", "anna@example.com", PASSWORD)


@pytest.fixture
def console(chromium, live_server, screenshot_dir, staff_user):
    """A browser logged in to the console through its login form."""
    chromium.delete_all_cookies()
    chromium.get_log("browser")  # drop what earlier tests left
    page = Page(chromium, live_server.url, screenshot_dir)
    page.open("/admin/login/?next=/admin/")
    page.find("#id_username").send_keys(staff_user.username)
    page.find("#id_password").send_keys(PASSWORD)
    page.click("input[type=submit]")
    assert "Operations dashboard" in page.text(), page.text()[:500]
    return page
