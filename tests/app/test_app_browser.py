"""`textok app` end to end in a real headless browser: Debian's chromium + chromedriver via Selenium.

The app runs as a subprocess (``python -m textok app``) on a free loopback port with tiny random
checkpoints. The browser may reach 127.0.0.1 only (every other host resolves to nothing) and the
test checks that the page asked for nothing else. Screenshots go to a temporary folder (printed);
``TEXTOK_APP_SCREENSHOT=docs/img/app.png`` also copies the main one there.

Needs: ``apt-get install chromium chromium-driver``, ``pip install -e '.[app,test]'``. Selenium is
pointed at /usr/bin/chromedriver, so selenium-manager never downloads a driver.
"""

import importlib.util
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("TEXTOK_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("TEXTOK_CHROMEDRIVER", "/usr/bin/chromedriver")
MAX_UPLOAD_MB = 0.5
MAX_PIXELS = 1_000_000


def _missing() -> str | None:
    for module, how in (("selenium", "pip install -e '.[test]'"), ("gradio", "pip install -e '.[app]'")):
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed ({how})"
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            return f"{path} not found: apt-get install {package} (Debian's browser and driver; nothing is downloaded)"
    return None


if _missing():
    if os.environ.get("TEXTOK_REQUIRE_BROWSER"):  # CI (.ci/run): the browser test must run
        pytest.fail(f"TEXTOK_REQUIRE_BROWSER is set but {_missing()}", pytrace=False)
    pytest.skip(_missing(), allow_module_level=True)

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.options import Options  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def app_url(tiny_checkpoints, tmp_path_factory):
    port = _free_port()
    log = tmp_path_factory.mktemp("app-log") / "app.log"
    c = tiny_checkpoints
    cmd = [sys.executable, "-m", "textok", "app", "--checkpoint", str(c["textok-n2"]), "--checkpoint",
           str(c["textok-n4"]), "--baseline", str(c["baseline-n2"]), "--port", str(port), "--threads", "1",
           "--max-upload-mb", str(MAX_UPLOAD_MB), "--max-pixels", str(MAX_PIXELS)]
    env = dict(os.environ, GRADIO_ANALYTICS_ENABLED="False", OMP_NUM_THREADS="1")
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 180
        while True:
            if proc.poll() is not None:
                pytest.fail(f"textok app exited with {proc.returncode}:\n{log.read_text()}")
            try:
                with urllib.request.urlopen(url, timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"textok app did not answer on {url} within 180 s:\n{log.read_text()}")
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert "Traceback" not in log.read_text() and "share=True" not in log.read_text(), log.read_text()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    os.environ["SE_OFFLINE"] = "true"  # selenium-manager must never fetch anything
    options = Options()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1400,1150",
                "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",  # offline: loopback only
                f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    folder = tmp_path_factory.mktemp("app-screenshots")
    print(f"\nscreenshots: {folder}")
    return folder


def _wait(driver, condition, what: str, timeout: float = 90):
    return WebDriverWait(driver, timeout, poll_frequency=0.25).until(lambda d: condition(d), message=what)


def _text(driver, selector: str) -> str:
    found = driver.find_elements(By.CSS_SELECTOR, selector)
    return found[0].text if found else ""


def _upload(driver, path: Path):
    clear = [b for b in driver.find_elements(By.CSS_SELECTOR, "#upload button")
             if (b.get_attribute("aria-label") or "").lower().startswith("clear")]
    if clear:
        clear[0].click()
    field = _wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#upload input[type=file]"), "file input")[0]
    field.send_keys(str(path))


def _images(driver, ids) -> dict[str, str]:
    out = {}
    for i in ids:
        found = driver.find_elements(By.CSS_SELECTOR, f"#{i} img")
        loaded = found and driver.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0", found[0])
        out[i] = found[0].get_attribute("src") if loaded else ""
    return out


def _reconstruct_and_wait(driver, previous_metrics: str = "") -> str:
    driver.find_element(By.CSS_SELECTOR, "#reconstruct").click()
    return _wait(driver, lambda d: (m := _text(d, "#metrics")) and "PSNR" in m and m != previous_metrics and m,
                 "the metrics table")


def test_reconstruct_swap_and_bad_uploads_in_a_browser(app_url, browser, shots, tmp_path):
    d = browser
    t0 = time.monotonic()
    d.get(app_url)
    _wait(d, lambda d: d.find_elements(By.CSS_SELECTOR, "#reconstruct"), "the page")
    assert "TexTok" in d.title and "What you see" in _text(d, "#guide")
    d.find_element(By.CSS_SELECTOR, "#n-tokens input[value='2']").click()  # N = 2: TexTok and its baseline

    # 1. upload an image, edit the caption, reconstruct: three images and their metrics
    rng = np.random.default_rng(0)
    good = tmp_path / "photo.png"
    Image.fromarray(rng.integers(0, 255, (60, 48, 3), dtype=np.uint8)).save(good)
    _upload(d, good)
    _wait(d, lambda d: "photo" in _text(d, "#upload"), "the uploaded file name")
    caption = d.find_element(By.CSS_SELECTOR, "#caption textarea")
    caption.clear()
    caption.send_keys("a red square on a blue background")
    metrics = _reconstruct_and_wait(d)
    images = _wait(d, lambda d: (im := _images(d, ["img-original", "img-baseline", "img-textok"])) and all(im.values())
                   and im, "three images")
    assert len(set(images.values())) == 3, images
    # the exact 32 px PNG, enlarged by the browser with nearest-neighbour only
    natural, shown, rendering, src = d.execute_script(
        "const i = document.querySelector('#img-textok img');"
        "return [i.naturalWidth, i.clientWidth, getComputedStyle(i).imageRendering, i.currentSrc];")
    assert natural == 32 and shown >= 4 * 32 and rendering == "pixelated" and src.endswith(".png"), (natural, shown, src)
    assert re.search(r"TexTok \d+\.\d\d 0\.\d{4}", metrics), metrics
    assert re.search(r"baseline \d+\.\d\d 0\.\d{4}", metrics), metrics
    assert _text(d, "#status") == ""
    d.save_screenshot(str(shots / "1-reconstruct.png"))

    # 2. not an image: a message, nothing else breaks
    bad = tmp_path / "notes.png"
    bad.write_text("this is not an image")
    _upload(d, bad)
    _wait(d, lambda d: "notes" in _text(d, "#upload"), "the bad file name")
    d.find_element(By.CSS_SELECTOR, "#reconstruct").click()
    _wait(d, lambda d: "notes.png: not an image file PIL can read" in _text(d, "#status"), "the error message")
    assert _images(d, ["img-textok"])["img-textok"] == ""  # the old result is cleared
    d.save_screenshot(str(shots / "2-bad-file.png"))

    # 3. too many pixels: refused from the header
    wide = tmp_path / "wide.png"
    Image.new("RGB", (1200, 1200), "white").save(wide)
    _upload(d, wide)
    _wait(d, lambda d: "wide" in _text(d, "#upload"), "the wide file name")
    d.find_element(By.CSS_SELECTOR, "#reconstruct").click()
    _wait(d, lambda d: "megapixel limit" in _text(d, "#status"), "the pixel-limit message")

    # 4. too many bytes: refused by the upload limit before it reaches the models
    big = tmp_path / "big.png"
    big.write_bytes(b"\x89PNG" + os.urandom(int(MAX_UPLOAD_MB * 1024 * 1024) + 10_000))
    _upload(d, big)
    _wait(d, lambda d: "exceed the maximum allowed size" in d.find_element(By.TAG_NAME, "body").text, "the size message")
    for close in d.find_elements(By.CSS_SELECTOR, ".toast-close, [data-testid='toast-close']"):
        close.click()  # dismiss Gradio's toast
    d.save_screenshot(str(shots / "3-too-big.png"))

    # 5. the page still works: a bundled held-out example, then swap its caption
    example = d.find_element(By.CSS_SELECTOR, "#example input")
    example.click()
    option = _wait(d, lambda d: [o for o in d.find_elements(By.CSS_SELECTOR, "[role=option]") if o.text == "dog"],
                   "the example list")[0]
    option.click()
    _wait(d, lambda d: "dog" in d.find_element(By.CSS_SELECTOR, "#caption textarea").get_attribute("value"),
          "the example's caption")
    metrics = _reconstruct_and_wait(d, metrics)
    assert _text(d, "#status") == "" and "TexTok" in metrics
    _wait(d, lambda d: all(_images(d, ["img-original", "img-baseline", "img-textok"]).values()), "the example's images")
    d.save_screenshot(str(shots / "4-example.png"))
    if os.environ.get("TEXTOK_APP_SCREENSHOT"):
        shutil.copy(shots / "4-example.png", os.environ["TEXTOK_APP_SCREENSHOT"])
    d.find_element(By.XPATH, "//button[@role='tab'][contains(., 'Swap the caption')]").click()
    other = _wait(d, lambda d: [e for e in d.find_elements(By.CSS_SELECTOR, "#other-caption textarea") if e.is_displayed()],
                  "the other caption")[0]
    other.send_keys("a bright red sports car")
    d.find_element(By.CSS_SELECTOR, "#swap").click()
    swap = _wait(d, lambda d: (t := _text(d, "#swap-metrics")) and "Largest pixel change" in t and t, "the swap result")
    assert all(_images(d, ["img-rec", "img-swapped", "img-diff"]).values())
    assert re.search(r"swapped vs reconstruction \d+\.\d\d", swap), swap
    d.save_screenshot(str(shots / "5-swap.png"))

    # 6. the Tokens tab: every N side by side
    d.find_element(By.XPATH, "//button[@role='tab'][contains(., 'Tokens')]").click()
    d.find_element(By.CSS_SELECTOR, "#sweep").click()
    table = _wait(d, lambda d: (t := _text(d, "#sweep-metrics")) and "TexTok PSNR" in t and t, "the sweep table")
    assert re.search(r"^4 n/a n/a \d+\.\d\d", table, re.M), table
    d.save_screenshot(str(shots / "6-tokens.png"))

    # offline: the page asked for nothing but the app itself
    urls = []
    for entry in d.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    network = [u for u in urls if u.startswith(("http:", "https:", "ws:", "wss:", "ftp:"))]  # not chrome://, data:
    outside = [u for u in network if not u.startswith(app_url)]
    assert network and not outside, outside
    print(f"browser session took {time.monotonic() - t0:.1f} s")
