"""The staff review pages, end to end: a real server and headless Chromium, used as a reviewer would.

Needs Debian's ``chromium`` at /usr/bin/chromium (``.ci/run`` installs it); Playwright drives it
without downloading a browser of its own.
"""

from __future__ import annotations

import re
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import uvicorn
from playwright.sync_api import Browser, Page, expect, sync_playwright

from api.app import create_app
from triage.settings import Settings

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(),
                                reason=f"headless UI tests need Debian chromium at {CHROMIUM}")

CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
REVIEWER = "王芳"
ROWS = "#queue .rows > [data-ticket]"
OILY_FUMES = "环境保护/大气污染/餐饮油烟污染"
VAGUE = "你好，我想反映一下情况，希望有关部门重视一下，谢谢。"
GAS = "东城区和平街道幸福里社区3栋楼道里一直有燃气味，担心会爆炸，物业说不归他们管。"
CLEAR = "幼儿园突然涨保育费，每月多收八百元，也没有开家长会说明，要求退还多收的费用。"
NIGHT_MARKET = "西城区文昌街道文昌路夜市的烧烤摊每天摆到人行道上，烟熏火燎，晚上一点还在吆喝，行人只能走机动车道。"
REWORDED = "文昌路夜市那些烧烤摊天天占着人行道摆摊，油烟很大，半夜一点还在吆喝，路人都得绕到机动车道上走。"
WAGES = "我在高新区一个工地干了三个月，包工头到现在还拖欠我们十几个农民工的工钱，一共六万多。"
POTHOLE = "北山区青山镇青山路中段有个大坑，下雨积水看不见，昨天有电动车摔倒了，请尽快修路。"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def base_url(trained_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The app on a copy of the trained home, served by uvicorn on a free local port."""
    home = tmp_path_factory.mktemp("ui") / "home"
    shutil.copytree(trained_home, home)
    # every ticket joins the queue (as an audit sample at least), so each test controls its rows
    app = create_app(Settings(home=home, _env_file=None, review_audit_every=1))
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           ws="none", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def api(base_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def _page(browser: Browser, base_url: str, *, reviewer: str | None) -> Page:
    context = browser.new_context(base_url=base_url, locale="zh-CN")
    context.set_default_timeout(10_000)
    if reviewer:
        context.add_init_script(f"localStorage.setItem('triage.reviewer', {reviewer!r})")
    return context.new_page()


@pytest.fixture
def page(browser: Browser, base_url: str) -> Iterator[Page]:
    """A reviewer whose name the browser already remembers."""
    page = _page(browser, base_url, reviewer=REVIEWER)
    yield page
    page.context.close()


@pytest.fixture
def new_page(browser: Browser, base_url: str) -> Iterator[Page]:
    """A browser that has never been used for review (no remembered name)."""
    page = _page(browser, base_url, reviewer=None)
    yield page
    page.context.close()


def _post(api: httpx.Client, text: str, hours_ago: float = 0) -> dict:
    at = (datetime.now(UTC) - timedelta(hours=hours_ago)).isoformat()
    response = api.post("/v1/tickets", json={"text": text, "received_at": at})
    assert response.status_code == 201, response.text
    return response.json()


def _row(page: Page, ticket_id: int):
    return page.locator(f'#queue [data-ticket="{ticket_id}"]')


def _corrections(api: httpx.Client, ticket_id: int) -> list[dict]:
    return api.get(f"/v1/tickets/{ticket_id}").json()["corrections"]


def test_queue_lists_posted_tickets_in_priority_order(page: Page, api: httpx.Client) -> None:
    overdue = _post(api, VAGUE + "上周就打过电话了。", hours_ago=5)
    gas, clear = _post(api, GAS), _post(api, CLEAR)
    page.goto("/review")
    shown = [int(t) for t in page.locator(ROWS).evaluate_all(
        "rows => rows.map(r => r.dataset.ticket)")]
    queued = [i["ticket_id"] for i in api.get("/v1/review").json()["data"]]
    assert shown == queued and set(shown) >= {overdue["id"], gas["id"], clear["id"]}
    assert shown[0] == overdue["id"]
    expect(_row(page, overdue["id"]).locator(".overdue-mark")).to_have_text("超期")
    expect(_row(page, gas["id"])).to_contain_text(gas["prediction"]["department"])
    page.select_option("select[name=reason]", "review")
    page.click("#filters button[type=submit]")
    expect(page).to_have_url(re.compile(r"reason=review"))
    reviewed = {i["ticket_id"] for i in api.get("/v1/review", params={"reason": "review"}).json()["data"]}
    assert {int(t) for t in page.locator(ROWS).evaluate_all(
        "rows => rows.map(r => r.dataset.ticket)")} == reviewed


def test_reviewer_picks_a_leaf_by_search_and_saves(page: Page, api: httpx.Client) -> None:
    ticket = _post(api, NIGHT_MARKET)
    page.goto("/review")
    _row(page, ticket["id"]).locator("a").click()
    expect(page).to_have_url(re.compile(rf"/review/{ticket['id']}$"))
    expect(page.locator("#ticket-text")).to_have_text(ticket["text"])
    expect(page.locator(".suggestion")).to_have_count(3)
    expect(page.locator("#explanation")).to_contain_text("命中词")
    expect(page.locator("#routing-source")).not_to_be_empty()
    expect(page.locator("#routing-address")).to_contain_text("西城区")
    page.fill("#picker-search", "油烟")
    leaf = page.locator("#picker-results li", has_text="餐饮油烟污染")
    expect(leaf).to_have_count(1)
    leaf.click()
    expect(page.locator("#chosen-subitem")).to_have_text(OILY_FUMES)
    page.fill("#note", "烧烤油烟为主")
    page.click("#save")
    page.wait_for_url(re.compile(rf"/review\?saved={ticket['id']}$"))
    expect(page.locator("#status")).to_contain_text(f"#{ticket['id']}")
    expect(_row(page, ticket["id"])).to_have_count(0)
    [correction] = _corrections(api, ticket["id"])
    assert correction["subitem"] == OILY_FUMES and correction["reviewer"] == REVIEWER
    assert correction["note"] == "烧烤油烟为主"
    again = _post(api, REWORDED)  # the same complaint reworded: the page says staff decided it
    page.goto(f"/review/{again['id']}")
    expect(page.locator("#memory")).to_contain_text(f"工单 #{ticket['id']}")
    expect(page.locator("#memory")).to_contain_text("已由工作人员更正")


def test_picker_finds_leaves_by_the_word_a_citizen_uses(page: Page, api: httpx.Client) -> None:
    """噪音 is how people say it; the demo taxonomy says 噪声: the picker offers both the leaf
    whose description says 噪音 and the 噪声 leaves, nearest first, and says they are near."""
    ticket = _post(api, NIGHT_MARKET)
    page.goto(f"/review/{ticket['id']}")
    page.fill("#picker-search", "噪音")
    results = page.locator("#picker-results li")
    expect(results.filter(has_text="邻里矛盾纠纷")).to_have_count(1)
    expect(results.filter(has_text="社会生活噪声")).to_have_count(1)
    expect(results.filter(has_text="建筑施工噪声")).to_have_count(1)
    expect(page.locator("#picker-info")).to_contain_text("相近")
    page.fill("#picker-search", "油烟")  # an exact word: no near leaves added
    expect(page.locator("#picker-info")).not_to_contain_text("相近")
    page.fill("#picker-search", "噪音")
    results.filter(has_text="社会生活噪声").click()
    expect(page.locator("#chosen-subitem")).to_have_text("环境保护/噪声污染/社会生活噪声")


def test_keyboard_on_the_ticket_page(page: Page, api: httpx.Client) -> None:
    ticket = _post(api, WAGES)
    top = [t["subitem"] for t in ticket["prediction"]["top"]]
    page.goto(f"/review/{ticket['id']}")
    page.keyboard.press("/")
    assert page.evaluate("document.activeElement.id") == "picker-search"
    page.keyboard.type("油烟")
    expect(page.locator("#picker-results li").first).to_contain_text("油烟")
    page.keyboard.press("Escape")
    page.keyboard.press("2")
    expect(page.locator("#chosen-subitem")).to_have_text(top[1])
    page.keyboard.press("1")
    expect(page.locator("#chosen-subitem")).to_have_text(top[0])
    page.keyboard.press("a")
    page.wait_for_url(re.compile(r"/review\?saved="))
    [correction] = _corrections(api, ticket["id"])
    assert correction["subitem"] == ticket["prediction"]["subitem"]
    assert correction["department"] == ticket["prediction"]["department"]


def test_keyboard_on_the_queue(page: Page, api: httpx.Client) -> None:
    _post(api, POTHOLE)
    _post(api, VAGUE)
    page.goto("/review")
    rows = page.locator(ROWS)
    expect(rows.nth(0)).to_have_class(re.compile("selected"))
    page.keyboard.press("j")
    expect(rows.nth(1)).to_have_class(re.compile("selected"))
    page.keyboard.press("k")
    expect(rows.nth(0)).to_have_class(re.compile("selected"))
    first = int(rows.nth(0).get_attribute("data-ticket"))
    page.keyboard.press("x")
    expect(rows.nth(0).locator(".pick")).to_be_checked()
    expect(page.locator("#bulk-accept")).to_have_text("批量确认（1）")
    page.keyboard.press("x")
    page.keyboard.press("a")
    expect(_row(page, first)).to_have_count(0)
    assert _corrections(api, first)[0]["reviewer"] == REVIEWER
    second = int(rows.nth(0).get_attribute("data-ticket"))
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(rf"/review/{second}$"))


def test_bulk_accept_two_rows(page: Page, api: httpx.Client) -> None:
    one, two = _post(api, CLEAR), _post(api, POTHOLE)
    page.goto("/review")
    _row(page, one["id"]).locator(".pick").check()
    _row(page, two["id"]).locator(".pick").check()
    page.click("#bulk-accept")
    expect(page.locator("#status")).to_have_text("已确认 2 件。")
    page.reload()
    expect(_row(page, one["id"])).to_have_count(0)
    expect(_row(page, two["id"])).to_have_count(0)
    for ticket in (one, two):
        [correction] = _corrections(api, ticket["id"])
        assert correction["subitem"] == ticket["prediction"]["subitem"]


def test_saving_needs_a_reviewer_name(new_page: Page, api: httpx.Client) -> None:
    ticket = _post(api, VAGUE)
    new_page.goto(f"/review/{ticket['id']}")
    new_page.click("#save")
    expect(new_page.locator("#status")).to_have_text(re.compile("请先.*填写审核人姓名"))
    assert new_page.evaluate("document.activeElement.id") == "reviewer"
    new_page.keyboard.press("Escape")
    new_page.keyboard.press("a")
    expect(new_page).to_have_url(re.compile(rf"/review/{ticket['id']}$"))
    assert _corrections(api, ticket["id"]) == []
    new_page.fill("#reviewer", "李静")  # remembered for the next visit
    new_page.goto("/review")
    expect(new_page.locator("#reviewer")).to_have_value("李静")


def test_an_api_error_is_shown_and_nothing_is_stored(page: Page, api: httpx.Client) -> None:
    ticket = _post(api, GAS)
    page.goto(f"/review/{ticket['id']}")
    page.fill("#department", "单" * 201)
    page.click("#save")
    expect(page.locator("#status")).to_have_text(
        "保存失败：department is too long: at most 200 characters")
    expect(page).to_have_url(re.compile(rf"/review/{ticket['id']}$"))
    assert _corrections(api, ticket["id"]) == []
