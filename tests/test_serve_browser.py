"""The clinician's page in a real headless Chromium (Debian's, driven by Playwright; nothing downloaded).

A person's path: type a question, press Enter, see a cited answer, open a citation with the keyboard and land on
the cited printed page; an off-topic question looks different. Every request must stay on the ragcds server.
Set RAGCDS_SCREENSHOTS=DIR to keep the screenshots (docs/serve.png is made by the integration test so).
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from ragcds.generate.backends.extractive import ExtractiveGenerator
from tests.servekit import IN_SCOPE_Q, OFF_TOPIC_Q, serving, small_index

CHROMIUM = Path(os.environ.get("RAGCDS_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed — pip install playwright (scripts/install.sh does)")
    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM} — apt-get install -y chromium (scripts/install.sh does), "
                    "or set RAGCDS_CHROMIUM")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory):
    return small_index(tmp_path_factory.mktemp("browser"))


def open_page(browser, url: str):
    page = browser.new_page(viewport=PHONE)
    page.requests, page.errors = [], []
    page.on("request", lambda r: page.requests.append(r.url))
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    page.on("console", lambda m: page.errors.append(m.text) if m.type == "error" else None)
    page.goto(url + "/")
    return page


def ask_by_keyboard(page, question: str) -> None:
    assert page.evaluate("document.activeElement.id") == "question"  # the box has focus on load
    page.keyboard.type(question)
    page.keyboard.press("Enter")
    page.locator("#answer[data-policy]:not([hidden])").wait_for()  # (the page's CSP forbids wait_for_function)


def shot(page, path: Path, name: str, keep: bool = True, **kw) -> None:
    page.screenshot(path=str(path / name), **kw)
    assert (path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    folder = os.environ.get("RAGCDS_SCREENSHOTS")
    if keep and folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        shutil.copy(path / name, Path(folder) / name)


def open_first_citation_by_keyboard(page) -> dict:
    """Tab from the answer to its first [n] link, press Enter; returns what the cited block shows."""
    label = page.locator(".sources a").first.inner_text()
    for _ in range(6):  # past the resolved section's link(s), to the first [n] of the answer
        page.keyboard.press("Tab")
        if re.fullmatch(r"\[\d+\]", page.evaluate("document.activeElement.textContent")):
            break
    assert re.fullmatch(r"\[\d+\]", page.evaluate("document.activeElement.textContent"))
    page.keyboard.press("Enter")
    cited = page.locator("#viewer .block.cited")
    cited.wait_for(state="visible")
    box = cited.bounding_box()
    assert box and 0 <= box["y"] < PHONE["height"], "the cited passage is scrolled into view"
    mark = page.evaluate("""() => { let n = document.querySelector('#viewer .block.cited');
        while (n && !n.classList.contains('page-mark')) n = n.previousElementSibling; return n && n.textContent; }""")
    return {"label": label, "heading": page.locator("#viewer h2").inner_text(), "mark": mark,
            "text": cited.inner_text(), "focused": page.evaluate("document.activeElement.className")}


def test_clinician_asks_sees_a_cited_answer_and_opens_the_citation(browser, index_dir, tmp_path):
    with serving(index_dir, ExtractiveGenerator()) as (url, _):
        page = open_page(browser, url)
        ask_by_keyboard(page, IN_SCOPE_Q)
        answer = page.locator("#answer")
        assert answer.get_attribute("data-policy") == "answered"
        assert page.locator("#answer h2").inner_text() == "Answer from the UCG 2023"
        label = page.locator(".sources a").first.inner_text()
        section, printed = re.fullmatch(r"\[1\] §([\d.]+) .+?, pp?\. (\w+).*", label).groups()
        answered_bg = answer.evaluate("e => getComputedStyle(e).backgroundColor")
        shot(page, tmp_path, "serve-small.png", keep=False, full_page=True)

        seen = open_first_citation_by_keyboard(page)
        assert seen["heading"].startswith(f"§{section} ") and seen["mark"] == f"p. {printed}"
        assert "block cited" in seen["focused"] and seen["text"].strip()
        assert page.url.endswith(f"#section/{section}?chunk=" + page.url.split("chunk=")[1])

        page.keyboard.press("Escape")
        page.locator("#answer").wait_for(state="visible")
        assert page.locator("#viewer").is_hidden()

        page.fill("#question", OFF_TOPIC_Q)
        page.locator("#ask-button").click()
        page.locator('#answer[data-policy="out_of_scope"]').wait_for()
        assert "Not covered by the UCG" in page.locator("#answer h2").inner_text()
        assert answer.evaluate("e => getComputedStyle(e).backgroundColor") != answered_bg
        assert page.locator(".sources").count() == 0
        assert not page.errors, page.errors
        assert page.requests and all(r.startswith(url + "/") for r in page.requests), page.requests


def test_the_page_asks_for_the_token_once(browser, index_dir):
    with serving(index_dir, ExtractiveGenerator(), token="clinic-7") as (url, _):
        page = open_page(browser, url)
        page.locator("#token-box").wait_for(state="visible")
        page.fill("#token", "clinic-7")
        page.keyboard.press("Enter")
        page.wait_for_selector("#health")  # the health call is retried with the token
        assert "extractive" in page.locator("#health").inner_text()
        page.fill("#question", IN_SCOPE_Q)
        page.keyboard.press("Enter")
        page.wait_for_selector(".sources a")
        assert page.locator("#token-box").is_hidden()


@pytest.mark.integration
def test_real_guideline_in_the_browser(browser, ucg_index, tmp_path):
    """The real UCG index: a cited answer, its section opened at the cited printed page (docs/serve.png)."""
    with serving(ucg_index, ExtractiveGenerator()) as (url, _):
        page = open_page(browser, url)
        ask_by_keyboard(page, "When should a child with pneumonia be referred?")
        assert page.locator("#answer").get_attribute("data-policy") in ("answered", "quoted")
        label = page.locator(".sources a").first.inner_text()
        printed = re.fullmatch(r"\[1\] §[\d.]+ .+?, pp?\. (\w+).*", label).group(1)
        page.evaluate("document.activeElement.blur(); document.querySelector('#answer').focus()")
        shot(page, tmp_path, "serve.png", full_page=True)
        seen = open_first_citation_by_keyboard(page)
        assert seen["mark"] == f"p. {printed}"
        shot(page, tmp_path, "serve-section.png")
        assert not page.errors, page.errors
        assert all(r.startswith(url + "/") for r in page.requests)
