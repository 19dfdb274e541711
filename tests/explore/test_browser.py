"""The page in a real browser: headless Chromium, driven by Selenium, loads the page, submits
specs, seeds, files and sentences, and the tests check what it shows against the API and the
library. One browser serves the module; every wait is on a condition of the page.

The page counts the runs scheduled or in flight in ``<body data-pending>``; a run overtaken by a
later one is dropped, so ``pending == 0`` means the page shows the latest inputs.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.select import Select
from selenium.webdriver.support.ui import WebDriverWait

from augsvc.errors import InputError, SpecError
from augsvc.image import ImagePipeline
from augsvc.wire.images import decode_image
from augsvc.wire.tensors import Limits
from augsvc.wire.v1 import augment_pb2 as pb
from tests.explore.conftest import Page

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
TIMEOUT = 60  # seconds: a busy 2-core CI machine is slow, and every wait ends on its condition
SYNONYM = "transforms:\n  - name: synonym\n    aug_p: 0.4\n    context_threshold: null\n"


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        message = "headless Chromium is not installed: apt-get install chromium chromium-driver"
        if os.environ.get("CI"):
            pytest.fail(message + " (make test installs them)")
        pytest.skip(message)
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)  # both paths given: Selenium Manager downloads nothing
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1200,800",
                 "--disable-gpu", "--disable-extensions", "--no-first-run"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(TIMEOUT)
    yield driver
    driver.quit()


def settle(driver: WebDriver, results: str = "grid", after: int = 0) -> None:
    """Wait until nothing is pending, ``results`` (grid or text-results) shows a run's outcome,
    and more than ``after`` runs have ended."""
    script = ("const r = document.getElementById(arguments[0]); const b = document.body.dataset;"
              "return b.ready === 'true' && b.pending === '0' && Number(r.dataset.runs) > arguments[1]"
              " && (r.dataset.state === 'done' || r.dataset.state === 'error');")
    WebDriverWait(driver, TIMEOUT).until(lambda d: d.execute_script(script, results, after),
                                         f"the page did not settle ({results})")


def runs(driver: WebDriver, results: str = "grid") -> int:
    return int(driver.find_element(By.ID, results).get_attribute("data-runs") or 0)


def open_page(driver: WebDriver, page: Page) -> None:
    driver.get(page.base + "/")
    settle(driver)


def type_into(driver: WebDriver, element_id: str, text: str) -> None:
    element = driver.find_element(By.ID, element_id)
    element.clear()
    element.send_keys(text)


def submit(driver: WebDriver, button: str = "run", results: str = "grid") -> None:
    before = runs(driver, results)
    driver.find_element(By.ID, button).click()
    settle(driver, results, before)


def grid_sources(driver: WebDriver) -> list[str]:
    return [img.get_attribute("src") or "" for img in driver.find_elements(By.CSS_SELECTOR, "#grid img")]


def form(driver: WebDriver) -> dict[str, object]:
    """The image form as the page sends it (sample source)."""
    value = driver.execute_script
    return {"spec": value("return document.getElementById('spec').value"),
            "seed": value("return document.getElementById('seed').value"),
            "n": value("return document.getElementById('n').value"),
            "targets": value("return document.getElementById('targets').value"),
            "source": {"kind": "sample", "name": value("return document.getElementById('sample').value")}}


def test_the_grid_shows_n_samples_with_their_parameters(browser: WebDriver, local_page: Page,
                                                       tmp_path: Path) -> None:
    open_page(browser, local_page)
    assert browser.find_element(By.ID, "backend").text == "library, in this process"
    type_into(browser, "n", "4")
    submit(browser)
    figures = browser.find_elements(By.CSS_SELECTOR, "#grid figure.sample")
    assert len(browser.find_elements(By.CSS_SELECTOR, "#grid img")) == len(figures) == 4
    status, reply = local_page.call("POST", "/api/image", form(browser))
    assert status == 200 and grid_sources(browser) == [item["src"] for item in reply["images"]]
    for figure, item in zip(figures, reply["images"], strict=True):
        items = figure.find_elements(By.CSS_SELECTOR, "ul.params li")
        shown = [li.get_attribute("data-name") for li in items]
        assert shown == [p["name"] for p in item["params"]]
    original = browser.find_element(By.CSS_SELECTOR, "#original img")
    assert original.get_attribute("src") == reply["original"]["src"]
    status, presets = local_page.call("GET", "/api/presets")
    listed = browser.find_elements(By.CSS_SELECTOR, "#image-presets .preset")
    assert [p.get_attribute("data-name") for p in listed] == [p["name"] for p in presets["image"]]
    browser.save_screenshot(str(tmp_path / "image.png"))
    assert (tmp_path / "image.png").stat().st_size > 10_000


def test_a_changed_seed_changes_the_images(browser: WebDriver, local_page: Page) -> None:
    open_page(browser, local_page)
    type_into(browser, "n", "3")
    submit(browser)
    first = grid_sources(browser)
    type_into(browser, "seed", "5")
    submit(browser)
    changed = grid_sources(browser)
    assert len(changed) == 3 and all(a != b for a, b in zip(first, changed, strict=True))
    assert browser.find_element(By.ID, "grid").get_attribute("data-seed") == "5"
    type_into(browser, "seed", "0")
    submit(browser)
    assert grid_sources(browser) == first


def test_a_broken_spec_shows_the_library_s_error_at_the_spec(browser: WebDriver, local_page: Page,
                                                              tmp_path: Path) -> None:
    open_page(browser, local_page)
    broken = "transforms:\n  - name: horizontal_flip\n  - name: rotat\n"
    with pytest.raises(SpecError) as expected:
        ImagePipeline(broken)
    type_into(browser, "spec", broken)
    submit(browser)
    error = browser.find_element(By.ID, "spec-error")
    assert error.is_displayed() and error.text == str(expected.value)
    assert "invalid" in (browser.find_element(By.ID, "spec").get_attribute("class") or "")
    assert not browser.find_element(By.ID, "run-error").is_displayed()
    browser.save_screenshot(str(tmp_path / "spec-error.png"))
    type_into(browser, "spec", "transforms:\n  - name: horizontal_flip\n")
    submit(browser)
    assert not browser.find_element(By.ID, "spec-error").is_displayed()
    assert len(grid_sources(browser)) == 8


def test_copy_spec_copies_the_canonical_spec(browser: WebDriver, local_page: Page) -> None:
    """The button hands the spec the grid was made with, in canonical form, to the clipboard.
    The clipboard call is recorded in the page: what the browser then does with it is its own."""
    open_page(browser, local_page)
    typed = "transforms:\n  - name: horizontal_flip\n    p: 0.3\n  - name: gamma\n"
    type_into(browser, "spec", typed)
    submit(browser)
    browser.execute_script("window.copiedText = null;"
                           "navigator.clipboard.writeText = async (text) => { window.copiedText = text; };")
    browser.find_element(By.ID, "copy-spec").click()
    WebDriverWait(browser, TIMEOUT).until(
        lambda d: d.execute_script("return window.copiedText !== null"), "nothing was copied")
    copied = json.loads(browser.execute_script("return window.copiedText"))
    assert copied == ImagePipeline(typed).to_spec()
    assert browser.find_element(By.ID, "copied").is_displayed()


def test_uploads_and_an_undecodable_file(browser: WebDriver, local_page: Page, tmp_path: Path) -> None:
    import cv2
    import numpy as np

    open_page(browser, local_page)
    junk = tmp_path / "broken.png"
    junk.write_bytes(b"not a picture" * 20)
    with pytest.raises(InputError) as expected:
        decode_image(pb.Image(encoded=junk.read_bytes()), "upload", Limits())
    Select(browser.find_element(By.ID, "source-kind")).select_by_value("upload")
    browser.find_element(By.ID, "upload").send_keys(str(junk))
    error = browser.find_element(By.ID, "image-error")
    WebDriverWait(browser, TIMEOUT).until(lambda d: error.is_displayed() and error.text,
                                          "no error for the undecodable upload")
    assert error.text == str(expected.value)
    browser.save_screenshot(str(tmp_path / "upload-error.png"))
    good = tmp_path / "gradient.png"
    cv2.imwrite(str(good), np.dstack([np.tile(np.arange(120, dtype=np.uint8), (90, 1))] * 3))
    before = runs(browser)
    browser.find_element(By.ID, "upload").send_keys(str(good))
    settle(browser, after=before)
    assert not error.is_displayed() and len(grid_sources(browser)) == 8
    assert "your file, 120x90" in browser.find_element(By.CSS_SELECTOR, "#original figcaption").text


def marks(driver: WebDriver) -> list[list[tuple[str | None, ...]]]:
    """Per variant, its highlighted edits: (op, original, position, text) in text order."""
    out = []
    for item in driver.find_elements(By.CSS_SELECTOR, "#text-results li.variant"):
        found = item.find_elements(By.CSS_SELECTOR, "mark.sub, mark.ins, del.gone")
        out.append([(m.get_attribute("data-op"), m.get_attribute("data-original"),
                     m.get_attribute("data-position"), m.text) for m in found])
    return out


def api_marks(reply: dict[str, object]) -> list[list[tuple[str | None, ...]]]:
    return [[(s["op"], s["original"], str(s["position"]), s["text"] or s["original"])
             for s in v["segments"] if "op" in s]
            for r in reply["results"] for v in r["variants"]]  # type: ignore[index, union-attr]


def text_form(driver: WebDriver) -> dict[str, object]:
    value = driver.execute_script
    return {"texts": value("return document.getElementById('texts').value"),
            "spec": value("return document.getElementById('text-spec').value"),
            "seed": value("return document.getElementById('text-seed').value"),
            "n": value("return document.getElementById('text-n').value"),
            "filter": {"on": value("return document.getElementById('semantic-filter').checked"),
                       "threshold": value("return document.getElementById('threshold').value")}}


def test_text_highlights_are_the_ops(browser: WebDriver, local_page: Page, tmp_path: Path) -> None:
    open_page(browser, local_page)
    browser.find_element(By.ID, "tab-text").click()
    settle(browser, "text-results")
    status, reply = local_page.call("POST", "/api/text", text_form(browser))  # the page's own spec
    assert status == 200 and marks(browser) == api_marks(reply)
    assert sum(map(len, marks(browser))) > 0
    variants = browser.find_elements(By.CSS_SELECTOR, "#text-results li.variant")
    assert [v.get_attribute("data-text") for v in variants] == [
        v["text"] for r in reply["results"] for v in r["variants"]]
    browser.save_screenshot(str(tmp_path / "text.png"))
    type_into(browser, "text-spec", SYNONYM)
    submit(browser, "text-run", "text-results")
    status, reply = local_page.call("POST", "/api/text", text_form(browser))
    by_ops = [[(o["op"], o["original"], str(o["position"]), o["substitute"]) for o in v["ops"]]
              for r in reply["results"] for v in r["variants"]]
    assert marks(browser) == by_ops and any(by_ops)


def test_the_semantic_filter_shows_the_similarity(browser: WebDriver, local_page: Page) -> None:
    open_page(browser, local_page)
    browser.find_element(By.ID, "tab-text").click()
    settle(browser, "text-results")
    type_into(browser, "text-spec", SYNONYM)
    type_into(browser, "threshold", "0.5")
    browser.find_element(By.ID, "semantic-filter").click()
    submit(browser, "text-run", "text-results")
    status, reply = local_page.call("POST", "/api/text", text_form(browser))
    assert status == 200
    scores = [v["similarity"]["similarity"] for r in reply["results"] for v in r["variants"]]
    shown = browser.find_elements(By.CSS_SELECTOR, "#text-results .similarity")
    assert [float(s.get_attribute("data-score") or "nan") for s in shown] == scores
    assert all(s.text.startswith("similarity ") for s in shown) and len(shown) == 8


def test_the_page_works_against_a_server(browser: WebDriver, local_page: Page, remote_page: Page,
                                         tmp_path: Path) -> None:
    sources = []
    for page in (local_page, remote_page):
        open_page(browser, page)
        type_into(browser, "n", "3")
        submit(browser)
        sources.append(grid_sources(browser))
    address = remote_page.server.explorer.backend.describe()["address"]
    assert browser.find_element(By.ID, "backend").text == f"server {address}"
    assert len(sources[1]) == 3 and sources[0] == sources[1]  # the server runs the same library
    Select(browser.find_element(By.ID, "source-kind")).select_by_value("dataset")
    settle(browser)
    WebDriverWait(browser, TIMEOUT).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, "#dataset option[value=digits]"))
    Select(browser.find_element(By.ID, "dataset")).select_by_value("digits")
    type_into(browser, "dataset-index", "7")
    submit(browser)
    assert "digits[7]" in browser.find_element(By.CSS_SELECTOR, "#original figcaption").text
    assert len(grid_sources(browser)) == 3
    browser.find_element(By.ID, "tab-text").click()
    settle(browser, "text-results")
    status, reply = remote_page.call("POST", "/api/text", text_form(browser))
    assert status == 200 and marks(browser) == api_marks(reply)
    browser.save_screenshot(str(tmp_path / "server-text.png"))
