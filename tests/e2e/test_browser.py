"""The console and the storefront in a real headless Chromium (tests/e2e/browser.py; needs `chromium`).

Screenshots of both pages are saved as test artifacts in ``.local/e2e/screenshots/`` (console.png,
storefront.png), overwritten on each run.
"""

from __future__ import annotations

import json
import urllib.request
import uuid
from pathlib import Path

import pytest
from streamrec_core.ranking import REASON_CATEGORY, REASON_COVISIT

from local_emulator.pipeline import REPO_ROOT
from tests.e2e.browser import Browser
from tools.generate_clickstream import generate_events
from tools.replay import replay
from tools.storefront import ROUTE, Storefront

SCREENSHOTS = REPO_ROOT / ".local" / "e2e" / "screenshots"
# The freshness the storefront must show: a click visible in the panel within this many seconds.
PANEL_DEADLINE_S = 2.0

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.embedded_only("the console and storefront are served by the embedded emulator's runtime"),
]


@pytest.fixture
def shop(local_pipeline):
    """A small generated shop replayed through the API (so items have co-visitation and categories), with
    the storefront serving its catalog."""
    pipeline = local_pipeline.pipeline
    events = generate_events(800, users=40, items=60, seed=uuid.uuid4().int % 10_000)
    salt = uuid.uuid4().hex[:8]
    for event in events:  # this test's own ids: other tests share the pipeline
        event["user_id"] = f"{salt}-{event['user_id']}"
        event["item_id"] = f"{salt}-{event['item_id']}"
        event["category"] = f"{salt}-{event['category']}"
    summary = replay(events, base_url=pipeline.base_url, api_key=pipeline.api_keys["producer"])
    assert summary.accepted == len(events), summary.describe()
    pipeline.wait_until_idle(timeout_s=120)
    storefront = Storefront(pipeline.base_url, pipeline.api_keys, events)
    storefront.install(pipeline.runtime)
    return storefront


@pytest.fixture
def browser(tmp_path: Path):
    with Browser.launch(tmp_path / "chromium") as chromium:
        yield chromium


def test_a_new_visitor_clicks_items_and_the_console_shows_the_pipeline_react(local_pipeline, shop, browser):
    admin = local_pipeline.pipeline.endpoint_document()["admin_url"]
    browser.navigate(admin + ROUTE)
    browser.wait_for("document.body.dataset.ready === 'true'")
    # Given a new visitor (no history) on the storefront, and the catalog's most viewed items
    user = browser.evaluate("document.getElementById('user').value")
    assert user.startswith("visitor-")
    page = browser.evaluate("document.documentElement.outerHTML")
    assert local_pipeline.api_keys["reader"] not in page  # the reader key stays on the server
    items = [item["item_id"] for item in shop.catalog[:3]]
    for clicks, item_id in enumerate(items, start=1):
        before = browser.evaluate("document.getElementById('recs').innerHTML")
        # When the visitor clicks an item
        browser.evaluate(f"document.querySelector('#catalog [data-item=\"{item_id}\"]').click()")
        # Then within 2 s the panel shows recommendations computed from that click, and they changed
        browser.wait_for(f"document.body.dataset.shown === '{clicks}'", timeout_s=PANEL_DEADLINE_S)
        after = browser.evaluate("document.getElementById('recs').innerHTML")
        assert after != before
    # And they include co-visited or same-category items, and the panel says how long the click took
    reasons = browser.evaluate("[...document.querySelectorAll('#recs li')].map(li => li.dataset.reason)")
    assert {REASON_COVISIT, REASON_CATEGORY} & set(reasons), reasons
    # and none of the items the visitor just clicked (the page asks the API to exclude them)
    shown = browser.evaluate("[...document.querySelectorAll('#recs li')].map(li => li.dataset.item)")
    assert shown and not set(items) & set(shown), shown
    freshness_ms = int(browser.evaluate("document.body.dataset.freshnessMs"))
    assert browser.evaluate("document.getElementById('freshness').textContent") == f"{freshness_ms} ms"
    browser.screenshot(SCREENSHOTS / "storefront.png")
    # When the visitor clicks a recommendation (a click attributed to the experiment's variant)
    browser.evaluate("document.querySelector('#recs li a').click()")
    browser.wait_for("document.body.dataset.shown === '4'", timeout_s=PANEL_DEADLINE_S)
    local_pipeline.wait_until_idle()

    # Then the console draws every metric widget of the deployed dashboard, in order, with data
    with urllib.request.urlopen(admin + "console.json", timeout=30) as answer:
        document = json.loads(answer.read())
    browser.navigate(admin + "console")
    browser.wait_for("document.body.dataset.loaded === 'true'")
    drawn = browser.evaluate(
        "[...document.querySelectorAll('[data-widget=metric]')].map(w => [w.dataset.title, "
        "Number(w.dataset.points), w.querySelectorAll('polyline').length])"
    )
    # And, apart from the dashboard (local only), each click's freshness and the experiment's CTR per
    # variant with its interval, the attributed click counted
    browser.wait_for(
        "document.querySelector('[data-widget=local][data-kind=points]')?.dataset.points === '4'"
        " && document.querySelectorAll('[data-widget=local] [data-interval]').length > 0"
    )
    browser.screenshot(SCREENSHOTS / "console.png")
    # And the same widgets can be drawn at a local 1 s period (a sum per second), saying the dashboard's
    browser.evaluate(
        "const p = document.getElementById('period'); p.value = '1'; p.dispatchEvent(new Event('change'))"
    )
    browser.wait_for(
        "[...document.querySelectorAll('[data-widget=metric] .legend')]"
        ".every(l => /1s \\(dashboard: \\d+s\\)/.test(l.textContent))"
    )
    with urllib.request.urlopen(admin + "console.json", timeout=30) as answer:
        freshness, experiment = json.loads(answer.read())["local"]
    assert freshness_ms in [ms for _, ms in freshness["points"]]
    assert sum(v["clicks"] for v in experiment["variants"]) >= 1, experiment
    assert all(v["low"] <= v["value"] <= v["high"] for v in experiment["variants"] if v["value"] is not None)
    titles = [w["title"] for w in document["widgets"] if w["type"] == "metric"]
    assert [title for title, *_ in drawn] == titles
    # (Kinesis' and DynamoDB's own metrics included: the emulator meters them, local_emulator.service_metrics)
    empty = [title for title, points, lines in drawn if points == 0 or lines == 0]
    assert empty == [], f"widgets drawn without data: {empty}"
    # And every alarm of the alarm widget is listed with its state
    (alarms,) = [w for w in document["widgets"] if w["type"] == "alarm"]
    listed = browser.evaluate("[...document.querySelectorAll('[data-alarm]')].map(r => r.dataset.alarm)")
    assert listed == [a["name"] for a in alarms["alarms"]]


def test_a_failed_refresh_says_so_and_an_item_id_named_like_a_javascript_property_shows_as_itself(
    local_pipeline, browser
):
    """The console's refresh threw a ReferenceError in its catch (it read an undefined `doc`), so a
    stopped pipeline left "updated" at its last time; the storefront looked item ids up in a plain object,
    so "constructor" (a valid id) showed as "Object" and a click on it sent no item id."""
    pipeline = local_pipeline.pipeline
    Storefront(pipeline.base_url, pipeline.api_keys, []).install(pipeline.runtime)
    admin = pipeline.endpoint_document()["admin_url"]
    browser.navigate(admin + "console")
    browser.wait_for("document.body.dataset.loaded === 'true'")
    # When the console's next refresh cannot reach the runtime
    browser.evaluate("window.fetch = () => Promise.reject(new Error('runtime stopped')); refresh()")
    # Then it says so
    browser.wait_for("document.getElementById('updated').textContent.startsWith('failed: ')")
    assert "runtime stopped" in browser.evaluate("document.getElementById('updated').textContent")
    # And when the storefront's panel gets items named like properties of a JavaScript object
    browser.navigate(admin + ROUTE)
    browser.wait_for("document.body.dataset.ready === 'true'")
    ids = ["constructor", "__proto__", "toString"]
    browser.evaluate(f"show({{items: {json.dumps([{'item_id': i, 'reason': 'trending'} for i in ids])}}})")
    # Then each shows as its id (no catalog name), and what a click on it sends names that id
    assert browser.evaluate("[...document.querySelectorAll('#recs li a')].map(a => a.textContent)") == ids
    sent = browser.evaluate(
        "(() => { const sent = []; window.click = (event) => sent.push(event.item_id);"
        " document.querySelectorAll('#recs li a').forEach((a) => a.click()); return sent; })()"
    )
    assert sent == ids
