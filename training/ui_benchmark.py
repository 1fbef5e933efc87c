"""Benchmark of the staff review pages in headless Chromium (issue 6: "the queue page lists 1,000
items and the picker filters 500+ leaves in under 200 ms in the browser").

Builds a temporary home whose active model classifies into a large taxonomy (the shared 517-leaf
Teddy Cup taxonomy when ``../shared`` exists, with the demo taxonomy and synthetic leaves to pass
``--leaves``), posts ``--tickets`` appeals through ``POST /v1/tickets/batch`` with every ticket
queued, serves the app with uvicorn and measures in Debian's ``/usr/bin/chromium``:

* the queue page: DOMContentLoaded, and the first frame after all rows are in the DOM (ms from
  navigation start; median of ``--repeats`` loads);
* the taxonomy picker: ``performance.now()`` around filter + render for every keystroke of about
  20 queries typed into the search box (median and max, ms).

Run: ``.venv/bin/python -m training.ui_benchmark``. Prints the figures.
"""

from __future__ import annotations

import argparse
import random
import shutil
import socket
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from models.artifacts import Registry
from training.jobs import read_labelled, train_version
from training.routing import build_dispatcher
from triage.settings import Settings
from triage.taxonomy import Taxonomy

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
QUERIES = ["油烟", "噪声", "停车", "工资", "学", "医保", "垃圾", "其他", "交通", "合成", "违建", "燃气",
           "物业", "退费", "户口", "公交", "社区", "摊", "诈骗", "hb-0", "城市管理 垃圾"]
WORDS = ["道路", "路灯", "井盖", "绿化", "排水", "占道", "噪声", "油烟", "停车", "施工", "房屋", "供暖",
         "补贴", "证照", "窗口", "收费", "安全", "校园", "医疗", "就业", "养老", "救助", "公交", "快递"]
# Rendering a row marks a frame after DOMContentLoaded: "all rows rendered" for a server page.
ROWS_RENDERED = """
document.addEventListener("DOMContentLoaded", () => {
  window.__rows = document.querySelectorAll("#queue .rows > [data-ticket]").length;
  requestAnimationFrame(() => setTimeout(() => { window.__rowsRendered = performance.now(); }, 0));
});
"""


def _records(taxonomy: Taxonomy) -> list[dict[str, Any]]:
    return [{"path": n.path, "code": n.code, "description": n.description,
             "keywords": list(n.keywords), "department": n.department}
            for n in taxonomy.leaves()]


def big_taxonomy(settings: Settings, leaves: int, seed: int = 6) -> Taxonomy:
    """Demo + shared (when present) taxonomy, then synthetic leaves up to ``leaves``."""
    demo = Taxonomy.from_file(settings.demo_taxonomy)
    records = _records(demo)
    shared = settings.shared_dir / "teddy2020c" / "taxonomy_3level.csv"
    if shared.exists():
        known = {tuple(r["path"]) for r in records}
        records += [r for r in _records(Taxonomy.from_file(shared)) if tuple(r["path"]) not in known]
    rng = random.Random(seed)
    tops = [r.name for r in demo.roots]
    for i in range(max(0, leaves - len(records))):
        top = tops[i % len(tops)]
        words = rng.sample(WORDS, 3)
        records.append({"path": (top, f"合成二级{i % 7}", f"合成{words[0]}细目{i}"),
                        "code": f"SYN-{i:04d}", "keywords": words,
                        "department": f"合成单位{i % 40}"})
    return Taxonomy.from_records(records)


def build_home(home: Path, leaves: int) -> Settings:
    """A home whose active model uses the big taxonomy, trained on the demo appeals."""
    settings = Settings(home=home, _env_file=None, review_audit_every=1)
    taxonomy = big_taxonomy(settings, leaves)
    texts, labels = read_labelled([settings.demo_appeals], text_column="text", label_column="label")
    dispatcher = build_dispatcher(taxonomy=taxonomy, gazetteer=settings.demo_gazetteer,
                                  responsibility=settings.demo_responsibility)
    registry = Registry(settings.models_dir)
    loaded = train_version(texts=texts, labels=labels, taxonomy=taxonomy, output=None,
                           registry=registry, holdout=0.0, dispatcher=dispatcher)
    registry.activate(loaded.version)
    return settings


def appeals(settings: Settings, n: int, seed: int = 6) -> list[dict[str, Any]]:
    """``n`` appeals reworded from the demo data, received over the last two days."""
    texts, _ = read_labelled([settings.demo_appeals], text_column="text", label_column="label")
    rng = random.Random(seed)
    now = datetime.now(UTC)
    return [{"text": f"{rng.choice(texts)}（第{i}次反映）",
             "received_at": (now - timedelta(minutes=rng.uniform(0, 48 * 60))).isoformat()}
            for i in range(n)]


@contextmanager
def serve(settings: Settings) -> Iterator[str]:
    import uvicorn

    from api.app import create_app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port,
                                           log_level="warning", ws="none"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("the server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def measure_queue(page: Any, repeats: int) -> dict[str, float]:
    loads = []
    for _ in range(repeats):
        page.goto("/review", wait_until="load")
        page.wait_for_function("window.__rowsRendered !== undefined")
        nav = page.evaluate("performance.getEntriesByType('navigation')[0].toJSON()")
        loads.append({"rows": page.evaluate("window.__rows"),
                      "response_end": nav["responseEnd"],
                      "dom_content_loaded": nav["domContentLoadedEventEnd"],
                      "rows_rendered": page.evaluate("window.__rowsRendered"),
                      "load": nav["loadEventEnd"]})
    return {k: statistics.median(run[k] for run in loads) for k in loads[0]}


def measure_picker(page: Any, ticket_id: int) -> dict[str, Any]:
    page.goto(f"/review/{ticket_id}", wait_until="load")
    page.wait_for_function("window.triagePicker !== undefined")
    leaves = page.evaluate("window.triagePicker.leaves.length")
    search = page.locator("#picker-search")
    per_query = []
    for query in QUERIES:
        search.fill("")
        page.wait_for_timeout(150)  # let the debounced run for the cleared box finish first
        page.evaluate("window.triagePicker.timings.length = 0")
        search.press_sequentially(query, delay=120)  # slower than the debounce: a run per key
        page.wait_for_function("q => window.triagePicker.lastQuery === q", arg=query)
        timings = page.evaluate("window.triagePicker.timings.slice()")
        shown = page.locator("#picker-results li").count()
        per_query.append((query, timings, shown, page.inner_text("#picker-info")))
    keystrokes = [t for _, timings, _, _ in per_query for t in timings]
    return {"leaves": leaves, "keystrokes": len(keystrokes),  # runs: one per key, barring jitter
            "median": statistics.median(keystrokes), "max": max(keystrokes),
            "queries": per_query}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leaves", type=int, default=600)
    parser.add_argument("--tickets", type=int, default=1_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    if not Path(CHROMIUM).exists():
        raise SystemExit(f"this benchmark needs Debian chromium at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    home = Path(tempfile.mkdtemp(prefix="triage-ui-bench-"))
    try:
        start = time.perf_counter()
        settings = build_home(home, args.leaves)
        print(f"model trained in {time.perf_counter() - start:.1f} s")
        with serve(settings) as base_url, httpx.Client(base_url=base_url, timeout=600) as api:
            tickets = appeals(settings, args.tickets)
            start = time.perf_counter()
            for i in range(0, len(tickets), 1_000):
                api.post("/v1/tickets/batch", json={"tickets": tickets[i:i + 1_000]}
                         ).raise_for_status()
            queued = api.get("/v1/review", params={"limit": 5_000}).json()["data"]
            print(f"posted {len(tickets)} tickets in {time.perf_counter() - start:.1f} s; "
                  f"{len(queued)} queued")
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                context = browser.new_context(base_url=base_url)
                context.add_init_script(ROWS_RENDERED)
                page = context.new_page()
                queue = measure_queue(page, args.repeats)
                picker = measure_picker(page, queued[0]["ticket_id"])
                browser.close()
        report(queue, picker, args.repeats)
    finally:
        shutil.rmtree(home, ignore_errors=True)


def report(queue: dict[str, float], picker: dict[str, Any], repeats: int) -> None:
    print(f"\nqueue page, {int(queue['rows'])} rows (median of {repeats} loads, ms from navigation "
          "start):")
    print(f"  HTML received        {queue['response_end']:8.1f}")
    print(f"  DOMContentLoaded     {queue['dom_content_loaded']:8.1f}")
    print(f"  all rows rendered    {queue['rows_rendered']:8.1f}")
    print(f"  load event           {queue['load']:8.1f}")
    print(f"  in the browser (HTML received to rows rendered) "
          f"{queue['rows_rendered'] - queue['response_end']:.1f}")
    print(f"\ntaxonomy picker, {picker['leaves']} leaves, {len(picker['queries'])} queries, "
          f"{picker['keystrokes']} keystrokes (filter + render per keystroke, ms):")
    print(f"  median {picker['median']:.2f}   max {picker['max']:.2f}")
    for query, timings, shown, info in picker["queries"]:
        print(f"  {query!r:14} {' '.join(f'{t:5.2f}' for t in timings):24} shown {shown:2d}  {info}")


if __name__ == "__main__":
    main()
