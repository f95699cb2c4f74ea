"""report.html of a short real backtest, opened in headless Chromium (the OS package, driven by
playwright): it loads without console errors or failed requests, the verdict comes first, and
every chart is present and decoded."""

from __future__ import annotations

import os

import pytest

from bot import report as rp
from bot.backtest import run_backtest
from tests.conftest import make_settings

CHROMIUM = "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(not os.access(CHROMIUM, os.X_OK),
                                reason=f"{CHROMIUM} not installed (apt-get install chromium)")


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("browser")
    s = make_settings(tmp, sim={"scenario": "chop", "seed": 1})
    run_backtest(s, tmp / "bt", days=4, tick=900, plain=True, parallel=False)
    return tmp / "bt"


def test_report_loads_clean_in_chromium_with_every_chart(report_dir):
    sync_api = pytest.importorskip("playwright.sync_api")
    problems: list[str] = []
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                     args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}")
                    if m.type in ("error", "warning") else None)
            page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
            page.on("requestfailed", lambda r: problems.append(f"failed: {r.url}"))
            page.goto((report_dir / "report.html").as_uri(), wait_until="load")
            first = page.evaluate("document.querySelector('h1').nextElementSibling.id")
            verdict = page.inner_text("#verdict")
            imgs = page.evaluate("""[...document.querySelectorAll('#charts img')].map(
                i => [i.getAttribute('src'), i.complete, i.naturalWidth, i.naturalHeight])""")
            tables = page.evaluate("""[...document.querySelectorAll('table')].map(
                t => t.className)""")
        finally:
            browser.close()
    assert problems == []
    assert first == "verdict" and verdict.startswith("Verdict.") and "plain condor" in verdict
    assert sorted(src for src, *_ in imgs) == sorted(rp.CHARTS)
    for src, done, w, h in imgs:
        assert done and w > 300 and h > 200, f"{src} did not decode ({w}x{h})"
    for cls in ("campaigns", "monthly", "costs"):
        assert cls in tables
