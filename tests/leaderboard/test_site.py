"""The static leaderboard site (leaderboard/site.py, issue 17 items 3 and 4).

Without a browser: every page is rendered from the records, deterministically (same records, same
bytes), with links that resolve to files of the site, Δ bars and plots as inline SVG. In headless
Chromium (Debian's chromium and chromium-driver, driven by Selenium; skipped with the reason when
absent): every page loads without console errors, sorting a column reorders the rows correctly, the
links between protocol and method pages resolve, and screenshots of the index and a protocol page are
written (to ``$KDBENCH_SCREENSHOTS`` or the test's temporary folder)."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from bench.cli import main
from bench.results import iter_records
from leaderboard.site import site_files

RECORDS = Path(__file__).resolve().parents[2] / "leaderboard" / "records"


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site")
    assert main(["leaderboard", "--results", str(RECORDS), "--html", str(out)]) == 0
    return out


def test_the_site_is_deterministic_and_complete(site):
    again = site_files(iter_records(RECORDS))
    on_disk = {str(p.relative_to(site)): p.read_bytes() for p in site.rglob("*")
               if p.is_file() and p.name != ".kdbench-site"}
    assert again == on_disk  # the same records give the same bytes
    assert "index.html" in on_disk and "site.js" in on_disk
    protocols = [k for k in on_disk if k.startswith("protocol/")]
    methods = [k for k in on_disk if k.startswith("method/")]
    assert "protocol/classification-mini-v2.html" in protocols and "method/kd.html" in methods
    for name, content in on_disk.items():
        if not name.endswith(".html"):
            continue
        text = content.decode()
        for link in re.findall(r'href="([^"#]+)"', text):
            if link.startswith(("http://", "https://")):
                continue
            assert (site / Path(name).parent / link).resolve().is_file(), f"{name}: broken link {link}"
    page = on_disk["protocol/classification-mini-v2.html"].decode()
    assert page.count('<svg class="bar') >= 10 and '<svg class="plot"' in page
    assert "Teacher tinyresnet_32" in page and "Ensemble " in page
    assert "claimed" in page
    kd = on_disk["method/kd.html"].decode()
    assert "Hinton" in kd and "T^2" in kd and "classification-mini@v2" in kd


def test_html_output_refuses_to_overwrite_foreign_files(tmp_path, capsys):
    out = tmp_path / "site"
    out.mkdir()
    (out / "index.html").write_text("someone else's page")
    assert main(["leaderboard", "--results", str(RECORDS), "--html", str(out)]) == 2
    assert "index.html" in capsys.readouterr().err
    assert (out / "index.html").read_text() == "someone else's page"


def _chromium() -> tuple[str, str] | None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


@pytest.fixture(scope="module")
def browser():
    found = _chromium()
    if found is None:
        pytest.skip("headless Chromium is not installed (Debian: apt-get install chromium chromium-driver); "
                    ".ci/run installs it")
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (the test extra)")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = found[0]
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1400,1000", "--allow-file-access-from-files"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(found[1]), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def _errors(driver) -> list[str]:
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] in ("SEVERE", "ERROR")]


def test_every_page_loads_without_console_errors(site, browser):
    pages = sorted(site.rglob("*.html"))
    assert len(pages) > 5
    for page in pages:
        browser.get(page.as_uri())
        assert browser.find_element("tag name", "h1").text
        assert _errors(browser) == [], f"{page.relative_to(site)}: console errors"


def test_sorting_a_column_reorders_the_rows(site, browser):
    browser.get((site / "protocol" / "classification-mini-v2.html").as_uri())
    table = browser.find_element("id", "entries")
    headers = table.find_elements("css selector", "thead th")
    column = next(i for i, th in enumerate(headers) if th.text.startswith("top1"))

    def values() -> list[float]:
        cells = table.find_elements("css selector", f"tbody tr td:nth-child({column + 1})")
        return [float(c.get_attribute("data-value")) for c in cells if c.get_attribute("data-value")]

    headers[column].click()
    ascending = values()
    assert ascending == sorted(ascending) and len(ascending) > 5
    headers[column].click()
    assert values() == sorted(ascending, reverse=True)
    name = next(i for i, th in enumerate(headers) if th.text == "Method")
    headers[name].click()
    names = [c.text for c in table.find_elements("css selector", "tbody tr td:nth-child(1)")]
    assert names == sorted(names, key=str.lower)
    assert _errors(browser) == []


def test_links_between_protocol_and_method_pages_resolve_and_screenshots_are_written(site, browser, tmp_path):
    shots = Path(os.environ.get("KDBENCH_SCREENSHOTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    browser.get((site / "index.html").as_uri())
    assert browser.save_screenshot(str(shots / "index.png"))
    browser.find_element("link text", "classification-mini@v2").click()
    assert browser.find_element("tag name", "h1").text == "classification-mini@v2"
    assert browser.save_screenshot(str(shots / "classification-mini-v2.png"))
    browser.find_element("link text", "kd").click()
    assert browser.find_element("tag name", "h1").text == "kd"
    browser.find_element("link text", "classification-mini@v2").click()
    assert browser.find_element("tag name", "h1").text == "classification-mini@v2"
    for shot in ("index.png", "classification-mini-v2.png"):
        assert (shots / shot).stat().st_size > 10_000
    assert _errors(browser) == []
