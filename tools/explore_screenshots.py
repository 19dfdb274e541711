"""Take the README's screenshots of `augsvc explore`: docs/explore/image.png and text.png.

Starts the page over the library in this process, opens it in headless Chromium (Debian's
`chromium` and `chromium-driver`, as the browser tests use), waits for each view to settle and
saves it as a palette PNG (small enough for the repository). Run: .venv/bin/python
tools/explore_screenshots.py [--out docs/explore]
"""

from __future__ import annotations

import argparse
import io
import threading
from pathlib import Path

from PIL import Image
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from augsvc.explore.api import Explorer
from augsvc.explore.backends import LocalBackend
from augsvc.explore.server import ExploreServer

SETTLED = ("const r = document.getElementById(arguments[0]); const b = document.body.dataset;"
           "return b.ready === 'true' && b.pending === '0' && r.dataset.state === 'done';")
TEXTS = ("The quick brown fox jumps over the lazy dog.\n"
         "She bought fresh vegetables at the market yesterday morning.\n"
         "Researchers published new results about climate change and ocean temperatures.")


def save(driver: WebDriver, path: Path, results: str) -> None:
    WebDriverWait(driver, 120).until(lambda d: d.execute_script(SETTLED, results))
    shot = Image.open(io.BytesIO(driver.get_screenshot_as_png())).convert("RGB")
    shot.quantize(colors=128, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)
    print(f"wrote {path} ({path.stat().st_size // 1024} KiB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/explore", type=Path)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    server = ExploreServer(Explorer(LocalBackend(max_pixels=25_000_000)), "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1200,800",
                 "--hide-scrollbars"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path="/usr/bin/chromedriver"), options=options)
    try:
        driver.get(server.url)
        save(driver, args.out / "image.png", "grid")
        driver.find_element(By.ID, "tab-text").click()
        WebDriverWait(driver, 120).until(lambda d: d.execute_script(SETTLED, "text-results"))
        driver.execute_script("document.getElementById('texts').value = arguments[0];"
                              "document.getElementById('semantic-filter').checked = true;", TEXTS)
        driver.find_element(By.ID, "text-run").click()
        save(driver, args.out / "text.png", "text-results")
    finally:
        driver.quit()
        server.shutdown()
        server.server_close()


if __name__ == "__main__":
    main()
