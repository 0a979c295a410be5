"""The whole guided flow in headless Chromium, a reload during training, a restart."""

from __future__ import annotations

import io
import os
import time
import zipfile

import numpy as np
import pytest
import tifffile

from tests.web.browser import Server, browser_binaries, fetch, make_driver, screenshot

pytest.importorskip("fastapi")
pytest.importorskip("selenium")
if None in browser_binaries():
    pytest.skip("chromium and chromedriver are not installed", allow_module_level=True)

from selenium.common.exceptions import (
    NoSuchElementException,
    StaleElementReferenceException,
)
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

pytestmark = pytest.mark.browser
# Screenshots for the docs show a model trained longer (a few minutes on 2 cores).
DOCS = bool(os.environ.get("MICROSIGHT_WEB_SCREENSHOTS"))
TRAIN_TIMEOUT = 1200 if DOCS else 300
TINY = {"data.patch_size": "32, 32", "data.batch_size": 4, "method.depth": 1,
        "method.base_channels": 8}
DOCS_NET = {"data.patch_size": "48, 48", "data.batch_size": 8, "method.depth": 2,
            "method.base_channels": 16, "training.learning_rate": 0.001}


@pytest.fixture(scope="module")
def driver():
    drv = make_driver()
    yield drv
    drv.quit()


@pytest.fixture
def server(tmp_path):
    srv = Server(tmp_path / "data")
    yield srv
    srv.stop()


def wait(driver, condition, timeout=60):
    return WebDriverWait(driver, timeout, poll_frequency=0.2,
                         ignored_exceptions=(StaleElementReferenceException,
                                             NoSuchElementException)
                         ).until(lambda d: condition(d))


def css(driver, selector):
    return driver.find_element(By.CSS_SELECTOR, selector)


def status(driver) -> str:
    # Read in one script: the polled fragment may be swapped between two calls.
    return driver.execute_script(
        "const j = document.getElementById('job'); return j ? j.dataset.status : '';")


def text(driver, ident) -> str:
    return driver.execute_script(
        f"const e = document.getElementById('{ident}'); return e ? e.textContent : '';")


def token(driver) -> str:
    return driver.get_cookie("microsight_token")["value"]


def add_sample(driver, server):
    driver.get(f"{server.base}/data")
    css(driver, "#sample").click()
    wait(driver, lambda d: "sample data added" in d.page_source)


def fill_training(driver, server, model, epochs, steps, network=None):
    driver.get(f"{server.base}/train?method=care")
    css(driver, "input[name=model]").clear()
    css(driver, "input[name=model]").send_keys(model)
    Select(css(driver, "select[name=input]")).select_by_visible_text(
        "sample: noisy nuclei (training input)")
    Select(css(driver, "select[name=target]")).select_by_visible_text(
        "sample: clean nuclei (training target)")
    css(driver, "details summary").click()
    settings = {"training.epochs": epochs, "training.steps_per_epoch": steps,
                **(network or TINY)}
    for name, value in settings.items():
        box = css(driver, f"input[name='cfg.{name}']")
        box.clear()
        box.send_keys(str(value))


def test_whole_flow_on_sample_data(driver, server, tmp_path):
    driver.get(server.url)  # the printed link: token -> cookie -> clean address
    wait(driver, lambda d: "From your images" in d.page_source)
    assert "token=" not in driver.current_url
    screenshot(driver, "web-0-home")
    add_sample(driver, server)

    # 1 Data: upload a 16-bit z-stack whose axes the file does not say.
    stack = (np.random.default_rng(0).random((6, 96, 128)) * 4000).astype(np.uint16)
    stack[:, 30:60, 40:90] += np.arange(6, dtype=np.uint16)[:, None, None] * 5000
    path = tmp_path / "stack.tif"
    tifffile.imwrite(path, stack, photometric="minisblack")
    css(driver, "input[name=name]").send_keys("my z-stack")
    css(driver, "input[type=file]").send_keys(str(path))
    css(driver, "form[action='/data/upload'] button").click()
    wait(driver, lambda d: "cannot tell the axes" in d.page_source)
    css(driver, "input[name=axes]").send_keys("ZYX")
    css(driver, "form[action$='/axes'] button").click()
    slider = wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "input.plane"))[0]
    driver.execute_script("arguments[0].value = 4; arguments[0].dispatchEvent("
                          "new Event('input', {bubbles: true}));", slider)
    wait(driver, lambda d: "plane=4" in css(d, ".viewer img").get_attribute("src"))
    wait(driver, lambda d: css(d, ".viewer img").get_attribute("naturalWidth") == "128")
    assert "Z 5/6" in driver.page_source and "uint16" in driver.page_source
    screenshot(driver, "web-1-data")

    # 2 Task in plain words -> method -> settings form from the schema.
    driver.get(f"{server.base}/task")
    screenshot(driver, "web-2-task")
    css(driver, "input[value=care]").click()
    css(driver, ".tasks button").click()
    wait(driver, lambda d: "Settings: care" in d.page_source)
    epochs, steps = (8, 12) if DOCS else (3, 6)
    fill_training(driver, server, "nuclei-care", epochs, steps, DOCS_NET if DOCS else TINY)
    screenshot(driver, "web-2-settings")
    css(driver, "#start").click()

    # 3 Train: the curve updates while it runs, and survives a reload.
    wait(driver, lambda d: text(d, "progress"), TRAIN_TIMEOUT)
    first = text(driver, "progress")
    wait(driver, lambda d: status(d) != "running" or text(d, "progress") != first,
         TRAIN_TIMEOUT)
    if status(driver) == "running":
        driver.refresh()
        wait(driver, lambda d: status(d) in ("running", "done"))
        assert driver.find_elements(By.CSS_SELECTOR, "svg.chart polyline")
    wait(driver, lambda d: status(d) == "done", TRAIN_TIMEOUT)
    assert "Over-fitting check" in text(driver, "overfitting")
    # Two dots per epoch: training and validation loss.
    assert len(driver.find_elements(By.CSS_SELECTOR, "svg.chart circle")) == 2 * epochs
    screenshot(driver, "web-3-train")

    # 4 Check: evaluation against classical baselines, verdict and report in the page.
    css(driver, "#to-model").click()
    css(driver, "#evaluate").click()
    wait(driver, lambda d: status(d) == "done", TRAIN_TIMEOUT)
    assert "best classical baseline" in text(driver, "eval-verdict")
    assert driver.find_elements(By.CSS_SELECTOR, "iframe.report")
    report = fetch(css(driver, "#report-link").get_attribute("href"), token(driver))
    assert b"<html" in report[:500].lower()
    screenshot(driver, "web-4-check")

    # 5 Predict: result beside the input, uncertainty, OOD verdict, downloads.
    driver.get(f"{server.base}/models/nuclei-care")
    css(driver, "input[name=uncertainty]").click()
    css(driver, "#predict").click()
    wait(driver, lambda d: status(d) == "done", TRAIN_TIMEOUT)
    wait(driver, lambda d: len([i for i in d.find_elements(By.CSS_SELECTOR, ".results img")
                                if i.get_attribute("naturalWidth") not in (None, "0")]) == 3)
    assert "Out-of-distribution check" in driver.page_source
    screenshot(driver, "web-5-predict")
    results = fetch(css(driver, "#download-results").get_attribute("href"), token(driver))
    names = zipfile.ZipFile(io.BytesIO(results)).namelist()
    assert {"nuclei.result.tif", "nuclei.result.tif.qc.json",
            "nuclei.result.uncertainty.tif"} <= set(names)
    bundle = fetch(f"{server.base}/models/nuclei-care/download", token(driver))
    assert "config.yaml" in zipfile.ZipFile(io.BytesIO(bundle)).namelist()


def test_restart_the_server_and_resume(driver, tmp_path):
    data = tmp_path / "data"
    server = Server(data)
    try:
        driver.get(server.url)
        add_sample(driver, server)
        # Epochs long enough that the run cannot end between its first epoch and the kill.
        fill_training(driver, server, "resumable", epochs=8, steps=40)
        css(driver, "#start").click()
        wait(driver, lambda d: text(d, "last-epoch"), TRAIN_TIMEOUT)
        job_url = driver.current_url
    finally:
        server.kill()  # mid-training, as a crash would
    time.sleep(0.5)
    server = Server(data)
    try:
        driver.get(server.url)  # a new token for the new server
        driver.get(job_url.replace(job_url.split("/jobs/")[0], server.base))
        wait(driver, lambda d: status(d) == "interrupted")
        assert "the server stopped during this job" in driver.page_source
        css(driver, "#resume").click()
        wait(driver, lambda d: status(d) == "done", TRAIN_TIMEOUT)
        assert "last epoch 8" in text(driver, "last-epoch")
        assert "resume resumable" in driver.page_source
    finally:
        server.stop()
