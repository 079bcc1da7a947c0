"""The web viewer end to end in a real headless Chromium (Debian's chromium and chromium-driver, which `make test`
installs): upload, chart on ECG paper, the predictions the API gives, the attribution overlay, one printed page.

Set ECGSCOPE_SCREENSHOTS=DIR to keep the screenshots beyond the test's own folder (the README's comes from here).
"""

from __future__ import annotations

import base64
import os
import re
import shutil
from pathlib import Path

import pytest

from .serving import KEY, Server, muse_file, simulated_leads_uv

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")


@pytest.fixture(scope="module")
def browser():
    if not (CHROMIUM and DRIVER):  # never skipped: `make test` installs both (make browser)
        pytest.fail("the viewer test needs Debian's chromium and chromium-driver: run `make browser` (apt-get "
                    "install chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--window-size=1280,1500", "--force-device-scale-factor=1"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def server(small_model, tmp_path_factory):
    running = Server(small_model, tmp_path_factory.mktemp("viewer-server"))
    yield running
    running.stop()


def _wait(driver, condition, timeout=60):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(lambda d: condition(d))


def _keep(path: Path) -> None:
    if os.environ.get("ECGSCOPE_SCREENSHOTS"):
        shutil.copy(path, Path(os.environ["ECGSCOPE_SCREENSHOTS"]) / path.name)


def _open_viewer(browser, server) -> None:
    """Load the viewer and enter the API key, as a person would; each test does this itself, since tests of
    this module can run in different processes, each with its own browser (pytest-xdist)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    browser.get(server.url + "/")
    key = browser.find_element(By.ID, "api-key")
    key.clear()
    key.send_keys(KEY, Keys.TAB)  # leaving the key field fires its change event
    _wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#model option"))


def _pages(pdf_base64: str) -> int:
    return len(re.findall(rb"/Type\s*/Page(?!s)", base64.b64decode(pdf_base64)))


def test_viewer_shows_what_the_api_says_on_ecg_paper(browser, server, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.print_page_options import PrintOptions

    ecg = muse_file(tmp_path / "ecg.xml", simulated_leads_uv())
    with server.client() as client:
        expected = client.post("/v1/predict", content=ecg.read_bytes()).json()
    assert expected["status"] == "result"

    _open_viewer(browser, server)
    browser.find_element(By.ID, "file").send_keys(str(ecg))
    _wait(browser, lambda d: d.find_element(By.ID, "status").get_attribute("data-status") in ("result", "error",
                                                                                               "cannot_assess"))
    assert browser.find_element(By.ID, "status").get_attribute("data-status") == "result"

    # the numbers shown are the API's
    shown = browser.find_element(By.CSS_SELECTOR, "#targets tr[data-target=rvef] td[data-value]")
    assert float(shown.get_attribute("data-value")) == pytest.approx(expected["targets"]["rvef"]["value"], abs=1e-4)
    interval = browser.find_element(By.CSS_SELECTOR, "#targets tr[data-target=rvef] td[data-lower]")
    assert float(interval.get_attribute("data-lower")) == pytest.approx(expected["targets"]["rvef"]["lower"], abs=1e-4)
    probability = browser.find_element(By.CSS_SELECTOR, "#phenotypes td[data-probability]")
    assert float(probability.get_attribute("data-probability")) == pytest.approx(
        expected["phenotypes"]["rv_dysfunction"]["probability"], abs=1e-5)
    flag = browser.find_element(By.CSS_SELECTOR, "#phenotypes td[data-flag]").get_attribute("data-flag")
    assert flag == str(expected["phenotypes"]["rv_dysfunction"]["flag"]).lower()

    # ECG paper: 1 mm and 5 mm grid over 250 x 120 mm, 12 leads in 3 x 4 and a lead II rhythm strip
    minor = browser.find_element(By.ID, "grid-minor").get_attribute("d")
    major = browser.find_element(By.ID, "grid-major").get_attribute("d")
    assert minor.count("M") == 200 + 96 and major.count("M") == 51 + 25
    traces = browser.find_elements(By.CSS_SELECTOR, "path.trace")
    assert sorted(t.get_attribute("data-lead") for t in traces) == sorted(
        ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6", "II"])
    assert all(t.get_attribute("d").count("L") >= 100 for t in traces)
    rhythm = browser.find_element(By.CSS_SELECTOR, "path.trace[data-rhythm=true]")
    assert rhythm.get_attribute("d").count("L") == 5000 - 1  # 10 s at 500 Hz
    browser.save_screenshot(str(tmp_path / "viewer.png"))

    # the attribution overlay toggles
    assert not browser.find_elements(By.CSS_SELECTOR, "rect.attribution")
    browser.find_element(By.ID, "overlay").click()
    _wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "rect.attribution"))
    assert "most attribution in" in browser.find_element(By.ID, "overlay-info").text
    browser.save_screenshot(str(tmp_path / "viewer_attribution.png"))
    browser.find_element(By.ID, "overlay").click()
    _wait(browser, lambda d: not d.find_elements(By.CSS_SELECTOR, "rect.attribution"))
    _keep(tmp_path / "viewer.png")
    _keep(tmp_path / "viewer_attribution.png")

    # the chart prints on one landscape A4 or Letter page
    for width, height in ((29.7, 21.0), (27.94, 21.59)):
        options = PrintOptions()
        options.orientation, options.page_width, options.page_height = "landscape", height, width
        assert _pages(browser.print_page(options)) == 1

    # keyboard: the drop zone is reachable and announced as a button; a tablet width needs no sideways scroll
    browser.execute_script("document.getElementById('drop').focus()")
    assert browser.switch_to.active_element.get_attribute("id") == "drop"
    assert browser.find_element(By.ID, "drop").get_attribute("role") == "button"
    browser.set_window_size(820, 1180)
    assert browser.execute_script("return document.documentElement.scrollWidth") <= 820


def test_viewer_shows_why_an_ecg_cannot_be_assessed(browser, server, tmp_path):
    import numpy as np
    from selenium.webdriver.common.by import By

    leads = simulated_leads_uv()
    rng = np.random.default_rng(1)
    noisy = muse_file(tmp_path / "noisy.xml", {k: v + rng.normal(0, 600, v.size) for k, v in leads.items()})
    browser.set_window_size(1280, 1500)
    _open_viewer(browser, server)
    browser.find_element(By.ID, "file").send_keys(str(noisy))
    _wait(browser, lambda d: d.find_element(By.ID, "status").get_attribute("data-status") == "cannot_assess")
    assert "too noisy" in browser.find_element(By.ID, "reasons").text
    assert not browser.find_elements(By.CSS_SELECTOR, "#targets tr[data-target]")
