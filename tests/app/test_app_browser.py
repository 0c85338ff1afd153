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
           str(c["textok-n4"]), "--baseline", str(c["baseline-n2"]), "--scenes", str(c["textok-n2"]), "--scenes",
           str(c["baseline-n2"]), "--port", str(port), "--threads", "1",
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


def _pick(driver, selector: str, option: str):
    """Choose ``option`` in the Gradio dropdown ``selector``."""
    driver.find_element(By.CSS_SELECTOR, f"{selector} input").click()
    _wait(driver, lambda d: [o for o in d.find_elements(By.CSS_SELECTOR, "[role=option]") if o.text == option],
          f"{option} in {selector}")[0].click()


def _value(driver, selector: str) -> str:
    found = driver.find_elements(By.CSS_SELECTOR, selector)
    return found[0].get_attribute("value") if found else ""


SCENE_IMAGES = ["scene-img-original", "scene-img-baseline", "scene-img-textok"]
EDIT_IMAGES = ["scene-img-own", "scene-img-edited", "scene-img-target"]


def test_the_scenes_tab_in_a_browser(app_url, browser, shots):
    """The page opens on the Scenes tab with its first example reconstructed and judged; the menus write the
    caption and a typed caption sets the menus; reconstruct, decode under an edited caption, a random edit;
    a caption outside the grammar is a message."""
    from textok.explore import SCENE_EXAMPLES

    d = browser
    d.get(app_url)
    first = next(iter(SCENE_EXAMPLES.values()))
    # 1. opened on a reconstructed scene: nothing clicked
    opening = _wait(d, lambda d: (im := _images(d, SCENE_IMAGES)) and all(im.values()) and im, "the opening scene")
    assert len(set(opening.values())) == 3 and "Scenes" in d.title + _text(d, "#scenes-guide")
    table = _text(d, "#scene-metrics")
    assert re.search(r"scene \(rendered\) the caption( ✓){8}", table) and "TexTok the caption" in table, table
    assert _value(d, "#scene-caption textarea") == _value(d, "#scene-made-from textarea") == first
    assert _text(d, "#scene-status") == ""
    d.save_screenshot(str(shots / "0-scenes-opening.png"))

    # 2. the menus write the caption: object 1 turns blue, object 3 is switched off
    assert first.startswith("a small yellow square at top middle, ") and first.count(" at ") == 3
    _pick(d, "#scene-colour-1", "blue")
    _wait(d, lambda d: _value(d, "#scene-caption textarea").startswith("a small blue square at top middle"),
          "menu -> caption")
    d.find_element(By.CSS_SELECTOR, "#scene-on-3 input").click()
    caption = _wait(d, lambda d: (v := _value(d, "#scene-caption textarea")) and v.count(" at ") == 2 and v,
                    "object 3 out of the caption")
    assert caption.startswith("a small blue square at top middle and ") and caption.endswith("on a navy background")

    # 3. the same tokens (the opening scene's) decoded with the edited caption
    d.find_element(By.CSS_SELECTOR, "#scene-edit").click()
    edit = _wait(d, lambda d: (t := _text(d, "#scene-edit-metrics")) and "edited caption" in t and t, "the decode")
    _wait(d, lambda d: all(_images(d, EDIT_IMAGES).values()), "the edit's images")
    assert re.search(r"edited scene \(rendered\) the edited scene( ✓){8}", edit), edit
    assert _value(d, "#scene-made-from textarea") == first  # still the opening scene's tokens
    d.save_screenshot(str(shots / "0-scenes-edit.png"))

    # 4. reconstruct the composed scene: new images, new tokens
    d.find_element(By.CSS_SELECTOR, "#scene-reconstruct").click()
    _wait(d, lambda d: _value(d, "#scene-made-from textarea") == caption, "the new tokens' caption")
    _wait(d, lambda d: (im := _images(d, SCENE_IMAGES)) and all(im.values()) and im["scene-img-original"]
          != opening["scene-img-original"], "the composed scene's images")

    # 5. a random background edit: the caption changes, and the decode follows
    d.find_element(By.CSS_SELECTOR, "#scene-swap-background").click()
    note = _wait(d, lambda d: (t := _text(d, "#scene-status")) and "random edit: background: navy ->" in t and t, "the edit")
    new_bg = note.split("-> ")[1].split()[0]
    _wait(d, lambda d: _value(d, "#scene-caption textarea").endswith(f"on a {new_bg} background"), "the edited caption")
    _wait(d, lambda d: _value(d, "#scene-background input") == new_bg, "the background menu")
    _wait(d, lambda d: f"on a {new_bg} background" in _text(d, "#scene-edit-metrics")
          or "edited scene" in _text(d, "#scene-edit-metrics"), "the decode of the random edit")

    # 6. a typed caption sets the menus; one outside the grammar is a message, not an error page
    box = d.find_element(By.CSS_SELECTOR, "#scene-caption textarea")
    box.clear()
    box.send_keys("a small white ring at center, on a navy background")
    d.find_element(By.CSS_SELECTOR, "#scenes-guide").click()  # leave the box: the menus follow it
    _wait(d, lambda d: _value(d, "#scene-background input") == "navy" and _value(d, "#scene-shape-1 input") == "ring",
          "caption -> menus")
    assert not d.find_element(By.CSS_SELECTOR, "#scene-on-2 input").is_selected()
    box.clear()
    box.send_keys("a purple elephant")
    d.find_element(By.CSS_SELECTOR, "#scene-reconstruct").click()
    _wait(d, lambda d: "Scene caption: caption 'a purple elephant' does not end with" in _text(d, "#scene-status"),
          "the grammar message")
    _wait(d, lambda d: not any(_images(d, SCENE_IMAGES).values()), "the old result cleared")
    d.save_screenshot(str(shots / "0-scenes-bad-caption.png"))


def test_reconstruct_swap_and_bad_uploads_in_a_browser(app_url, browser, shots, tmp_path):
    d = browser
    t0 = time.monotonic()
    d.get(app_url)
    _wait(d, lambda d: d.find_elements(By.XPATH, "//button[@role='tab'][contains(., 'Photos and emoji')]"), "the page")
    d.find_element(By.XPATH, "//button[@role='tab'][contains(., 'Photos and emoji')]").click()
    _wait(d, lambda d: [e for e in d.find_elements(By.CSS_SELECTOR, "#reconstruct") if e.is_displayed()], "the tab")
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
