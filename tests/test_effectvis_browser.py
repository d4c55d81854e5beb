"""End-to-end tests of the EffectVis page in headless Chromium.

Debian's Chromium (/usr/bin/chromium, or $SAETS_CHROMIUM) driven by the python `playwright` package, which never
downloads a browser here. Without the binary (or the package) these tests skip and say why; `make browser`
installs Chromium. Every test also checks that the page made no network request and raised no JS error.
"""
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from saets.effectvis import CHROMIUM_ARGS, write_effectvis

pytestmark = pytest.mark.browser
CHROMIUM = os.environ.get("SAETS_CHROMIUM", "/usr/bin/chromium")
READY = "() => document.documentElement.dataset.evReady === '1'"
N, K = 60, 12
NP_ID = "gemma-2-2b/12-gemmascope-res-16k"


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM}: run `make browser` (apt-get install chromium) or set SAETS_CHROMIUM")
    sync_api = pytest.importorskip("playwright.sync_api", reason="the python package playwright is not installed")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


def known_inputs(n=N):
    """Effects whose top lists are known: steering feature i raises i+1, i+2, i+3 (mod n) most, in that order."""
    g = torch.Generator().manual_seed(0)
    E = torch.rand(n, n, generator=g)
    i = torch.arange(n)
    for step, v in ((1, 10.0), (2, 9.0), (3, 8.0)):
        E[i, (i + step) % n] = v
    W = torch.randn(n, 16, generator=g)
    words = "amber basalt cobalt dune ember fjord glacier harbor iris jade".split()
    labels = [f"{words[j % 10]} {words[(j // 10) % 10]} {j}" for j in range(n)]
    labels[7], labels[8], labels[20] = "zebra crossing", "zebu milk", "quartz clock"
    labels[50] = ""
    df = pd.DataFrame({"label": labels, "density": np.linspace(1e-4, 0.05, n),
                       "top_tokens": [["tok", str(j)] for j in range(n)],
                       "snippets": [[f"a sentence where «token{j}» fires"] for j in range(n)],
                       "neuronpedia_url": [f"https://www.neuronpedia.org/{NP_ID}/{j}" for j in range(n)]},
                      index=pd.Index(range(n), name="feature"))
    return E, W, df


@pytest.fixture(scope="module")
def page_path(tmp_path_factory):
    E, W, df = known_inputs()
    return write_effectvis(tmp_path_factory.mktemp("ev"), E, W, df, k=K, title="EffectVis test")


def open_page(browser, url):
    page = browser.new_page(viewport={"width": 1500, "height": 950})
    page.ev_errors, page.ev_requests = [], []
    page.on("pageerror", lambda e: page.ev_errors.append(str(e)))
    page.on("console", lambda m: m.type == "error" and page.ev_errors.append(m.text))
    page.on("request", lambda r: r.url.startswith("file:") or page.ev_requests.append(r.url))
    page.goto(url)
    page.wait_for_function(READY)
    return page


def list_ids(page, feature, kind):
    return page.eval_on_selector_all(f'.ev-card[data-id="{feature}"] .ev-list[data-kind="{kind}"] .ev-item',
                                     "els => els.map(e => +e.dataset.id)")


def assert_clean(page):
    assert page.ev_errors == [], f"JS errors: {page.ev_errors}"
    assert page.ev_requests == [], f"network requests: {page.ev_requests}"


def test_search_card_lists_pin_highlight(browser, page_path, tmp_path):
    page = open_page(browser, page_path.as_uri())
    assert page.text_content("#ev-count") == f"{N} features"
    page.fill("#ev-search", "zebra")
    page.wait_for_function("() => document.querySelector('#ev-count').textContent.startsWith('1 of')")
    assert page.eval_on_selector_all("#ev-results li[data-id]", "els => els.map(e => +e.dataset.id)") == [7]
    page.press("#ev-search", "Enter")
    card = page.locator('.ev-card[data-id="7"]')
    card.wait_for()
    assert "zebra crossing" in card.locator(".ev-card-head").text_content()
    # the effects, actions and cosine lists: first 10 shown, known top ids
    eff = list_ids(page, 7, "effects")
    assert len(eff) == 10 and eff[:3] == [8, 9, 10]
    assert list_ids(page, 7, "actions")[:3] == [6, 5, 4]
    cos = list_ids(page, 7, "cosine")
    assert len(cos) == 10 and 7 not in cos
    card.locator('.ev-list[data-kind="effects"] .ev-toggle').click()
    assert len(list_ids(page, 7, "effects")) == K
    # Neuronpedia link, density and a marked snippet
    link = card.locator("a.ev-np")
    assert link.get_attribute("href") == f"https://www.neuronpedia.org/{NP_ID}/7" and link.get_attribute("target") == "_blank"
    assert card.locator(".ev-snips mark").first.text_content() == "token7"
    assert "density" in card.locator(".ev-meta").text_content()
    # pin 7, open 8 from 7's effects list, pin 8: two pinned cards side by side
    card.locator(".ev-pin").click()
    card.locator('.ev-list[data-kind="effects"] .ev-item[data-id="8"]').click()
    card8 = page.locator('.ev-card[data-id="8"]')
    card8.wait_for()
    card8.locator(".ev-pin").click()
    assert page.locator(".ev-card.ev-pinned").count() == 2
    b7, b8 = card.bounding_box(), card8.bounding_box()
    assert abs(b7["y"] - b8["y"]) < 1 and b8["x"] > b7["x"] + b7["width"] - 1, (b7, b8)
    # selecting 8 highlights it in 7's lists; selecting 7 highlights it in 8's actions list
    page.click('.ev-card[data-id="8"] .ev-card-head')
    assert page.locator('.ev-card[data-id="7"] .ev-list[data-kind="effects"] .ev-item[data-id="8"].ev-hl').count() == 1
    assert "ev-selected" in card8.get_attribute("class")
    page.click('.ev-card[data-id="7"] .ev-card-head')
    assert list_ids(page, 8, "actions")[0] == 7
    assert page.locator('.ev-card[data-id="8"] .ev-item[data-id="7"].ev-hl').count() >= 1
    assert page.locator('.ev-card[data-id="7"] .ev-item.ev-hl[data-id="8"]').count() == 0
    # a new search opens an unpinned card and keeps the pinned ones; the next search replaces it
    page.keyboard.press("/")
    page.keyboard.type("quartz")
    page.keyboard.press("Enter")
    page.locator('.ev-card[data-id="20"]').wait_for()
    page.fill("#ev-search", "#33")
    page.press("#ev-search", "Enter")
    page.locator('.ev-card[data-id="33"]').wait_for()
    assert page.eval_on_selector_all(".ev-card", "els => els.map(e => +e.dataset.id)") == [7, 8, 33]
    assert page.evaluate("location.hash") == "#pin=7,8&feature=33"
    shot = tmp_path / "effectvis.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    assert_clean(page)
    page.close()


def test_deep_links(browser, page_path):
    page = open_page(browser, page_path.as_uri() + "#feature=99999")
    err = page.locator("#ev-messages .ev-error")
    assert err.count() == 1 and err.is_visible()
    assert "99999" in err.text_content() and "out of range" in err.text_content()
    assert page.locator(".ev-card").count() == 0
    page.fill("#ev-search", "zebu")                 # the page still works
    page.press("#ev-search", "Enter")
    page.locator('.ev-card[data-id="8"]').wait_for()
    assert_clean(page)
    page.close()
    page = open_page(browser, page_path.as_uri() + "#pin=3,4&feature=abc,12")
    assert page.eval_on_selector_all(".ev-card.ev-pinned", "els => els.map(e => +e.dataset.id)") == [3, 4]
    assert page.locator('.ev-card[data-id="12"]:not(.ev-pinned)').count() == 1
    assert "'abc' is not a feature id" in page.locator("#ev-messages .ev-error").text_content()
    page.evaluate("location.hash = '#feature=40'")  # following a link inside an open page
    page.locator('.ev-card[data-id="40"]').wait_for()
    assert_clean(page)
    page.close()


def test_missing_data_page(browser, tmp_path):
    E, W, df = known_inputs()
    path = write_effectvis(tmp_path, torch.zeros(0, N), W, df.drop(columns=["neuronpedia_url"]).drop(index=[5]), k=K)
    page = open_page(browser, path.as_uri() + "#feature=50")
    notes = page.locator("#ev-messages .ev-msg").all_text_contents()
    assert any("No effect data" in t for t in notes) and any("missing for 2 of 60" in t for t in notes), notes
    card = page.locator('.ev-card[data-id="50"]')
    assert "(no label)" in card.locator(".ev-card-head").text_content()
    assert card.locator('.ev-list[data-kind="effects"] .ev-none').text_content() == "no effect data"
    assert card.locator('.ev-list[data-kind="actions"] .ev-none').is_visible()
    assert len(list_ids(page, 50, "cosine")) == 10 and card.locator("a.ev-np").count() == 0
    page.evaluate("location.hash = '#feature=5'")    # a feature absent from the labels frame
    page.locator('.ev-card[data-id="5"]').wait_for()
    assert "density unknown" in page.locator('.ev-card[data-id="5"] .ev-meta').text_content()
    page.locator("#ev-messages .ev-msg .ev-x").first.click()  # messages can be dismissed
    assert page.locator("#ev-messages .ev-msg").count() == len(notes) - 1
    assert_clean(page)
    page.close()
