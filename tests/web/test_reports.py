"""Every method's evaluation report in headless Chromium at 1280 px: legible and verdict first.

Tiny models of every registered method (the data makers of the method-contract
test) are trained for two steps and evaluated; each report must fit the
window width (wide tables scroll inside their own box), open with the verdict,
show no Python notation and explain every em dash. With
``MICROSIGHT_REPORT_SHOTS`` set, whole-page screenshots of a restoration, a
segmentation and an SMLM report are saved there.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest

from tests.web.browser import browser_binaries, make_driver

pytest.importorskip("selenium")
if None in browser_binaries():
    pytest.skip("chromium and chromedriver are not installed", allow_module_level=True)

from microsight import api
from tests.unit.test_method_contract import METHODS, _tiny

pytestmark = pytest.mark.browser
WIDTH = 1280
SHOTS = {"care": "restoration", "distmap": "segmentation", "localize": "smlm"}

# The text a reader sees, outside the configuration listing (YAML, shown verbatim).
_READ = """
const main = document.querySelector('main').cloneNode(true);
main.querySelectorAll('pre').forEach(e => e.remove());
document.body.appendChild(main);
const text = main.innerText;
main.remove();
return text;
"""

_FIRST_PARAGRAPH = """
const p = [...document.querySelectorAll('main p')].find(
    e => !e.closest('header') && !e.closest('nav') && e.textContent.trim());
return p ? {text: p.textContent, verdict: p.closest('.verdict') !== null,
            heading: p.closest('section').querySelector('h2').textContent} : null;
"""

# Sections whose table shows an em dash, and whether they explain it in a note.
_DASHES = """
return [...document.querySelectorAll('section')].filter(
    s => [...s.querySelectorAll('td')].some(td => td.textContent.trim() === '—')
).map(s => [s.querySelector('h2').textContent,
            [...s.querySelectorAll('p.note')].some(p => p.textContent.includes('—'))]);
"""


@pytest.fixture(scope="module")
def driver():
    drv = make_driver()
    drv.set_window_size(WIDTH, 900)
    yield drv
    drv.quit()


def _report(method: str, root: Path) -> tuple[Path, object]:
    config, make = _tiny(method)
    (root / "data").mkdir(parents=True)
    train_in, train_target, test_in, test_target, _, axes = make(root / "data")
    model = api.train(method, train_in, train_target, out=root / "model", config=config,
                      progress=False)
    result = api.evaluate(model, test_in, test_target, axes=axes, report=root / "report.html")
    return root / "report.html", result


def _screenshot(driver, name: str) -> None:
    folder = os.environ.get("MICROSIGHT_REPORT_SHOTS")
    if not folder:
        return
    Path(folder).mkdir(parents=True, exist_ok=True)
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(WIDTH, min(int(height) + 140, 16000))
    time.sleep(0.3)
    driver.save_screenshot(str(Path(folder) / f"{name}.png"))
    driver.set_window_size(WIDTH, 900)


@pytest.mark.parametrize("method", METHODS)
def test_report_fits_the_window_and_opens_with_the_verdict(method, driver, tmp_path):
    path, result = _report(method, tmp_path)
    driver.set_window_size(WIDTH, 900)
    driver.get(path.as_uri())
    width = driver.execute_script("return document.documentElement.scrollWidth")
    assert width <= WIDTH, f"{method}: the page is {width} px wide"

    first = driver.execute_script(_FIRST_PARAGRAPH)
    assert first and first["verdict"] and first["heading"] == "Verdict", first
    assert result.verdict.text in " ".join(first["text"].split())

    text = driver.execute_script(_READ)
    raw = re.findall(r"\['|\{\}|\[\]|\b(?:True|False|None|NaN)\b", text)
    assert not raw, f"{method}: Python notation on the page: {raw}"
    unexplained = [h for h, noted in driver.execute_script(_DASHES) if not noted]
    assert not unexplained, f"{method}: em dashes without a footnote in {unexplained}"
    assert driver.execute_script(
        "return [...document.images].every(i => i.complete && i.naturalWidth > 0)")
    assert "Glossary" in text
    if method in SHOTS:
        _screenshot(driver, f"{SHOTS[method]}-{method}")
