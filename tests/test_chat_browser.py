"""The browser chat, driven in Debian's Chromium with Playwright, on the real 1.5B model.

One app per module, served in-process on 127.0.0.1 over a private index of the seeds plus a
planted document full of HTML. Each question costs 10–30 s on two cores, so there are few.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
from conftest import ROOT, SEED_000, SEED_002, SEEDS, free_port, make_settings

from assistant.config import Settings
from assistant.render import pdf_pages as page_count

playwright_sync = pytest.importorskip("playwright.sync_api")
expect = playwright_sync.expect

CHROMIUM = Path("/usr/bin/chromium")
TIMEOUT_MS = 180_000
SANCTIONS_Q = "How many individuals and organizations did the US sanction?"
PLANTED = (
    "Rason harbour memo <i>draft</i>\n\n"
    "The Rason harbour crane operators' union has exactly 83 members, according to the harbour office. "
    "<script>window.__pwned=1</script> The union meets every Thursday in the old customs house. "
    '<img src=x onerror="window.__pwned=2"> Its chairwoman is Ri Sol Hwa.\n'
)
TIMINGS: dict[str, float] = {}

if not CHROMIUM.exists():
    pytest.skip("Debian chromium is not installed (/usr/bin/chromium): the browser tests need a real browser; "
                "`.ci/setup` installs it, so CI always runs them", allow_module_level=True)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The chat on a private index of the seeds plus planted.txt; closed at the end of the module."""
    from assistant.chat import build_app, make_answerer, source_folders
    from assistant.indexing import ingest

    tmp = tmp_path_factory.mktemp("chat")
    docs = tmp / "docs"
    shutil.copytree(SEEDS, docs)
    (docs / "planted.txt").write_text(PLANTED, encoding="utf-8")
    cfg = make_settings(tmp)
    report = ingest([docs], cfg)
    assert report.errors == [] and report.documents == 3
    t0 = time.perf_counter()
    answerer = make_answerer(cfg)
    app = build_app(cfg, answerer).queue()
    port = free_port()
    app.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
               allowed_paths=source_folders(cfg, answerer))
    TIMINGS["app_start_to_listening_s"] = round(time.perf_counter() - t0, 2)
    try:
        yield {"url": f"http://127.0.0.1:{port}/", "cfg": cfg, "docs": docs}
    finally:
        app.close()
        print("\nchat browser timings:", json.dumps(TIMINGS))


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with playwright_sync.sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            yield b
        finally:
            b.close()


def open_page(browser: Any, server: dict[str, Any]) -> Any:
    page = browser.new_context(viewport={"width": 1200, "height": 1000}).new_page()
    page.set_default_timeout(TIMEOUT_MS)
    t0 = time.perf_counter()
    page.goto(server["url"])
    page.locator("#bf-question textarea").wait_for()
    TIMINGS.setdefault("page_load_to_ready_s", round(time.perf_counter() - t0, 2))
    return page


@pytest.fixture
def page(browser: Any, server: dict[str, Any]) -> Iterator[Any]:
    pg = open_page(browser, server)
    yield pg
    pg.context.close()


def submit(page: Any, question: str) -> int:
    """Type and send a question; returns how many final messages were on the page before."""
    finals = page.locator("#bf-chat .bf-final").count()
    box = page.locator("#bf-question textarea")
    box.fill(question)
    box.press("Enter")
    return int(finals)


def wait_final(page: Any, before: int) -> Any:
    """The next final message (answer, refusal or notice) after `before` of them."""
    final = page.locator("#bf-chat .bf-final").nth(before)
    final.wait_for(state="visible", timeout=TIMEOUT_MS)
    return final


def ask(page: Any, question: str) -> Any:
    return wait_final(page, submit(page, question))


def rss_mb(pid: int | str = "self") -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def children_rss_mb() -> float:
    """Child processes of the app (e.g. a llama-server runtime), which hold the model."""
    pids = {p for f in Path("/proc/self/task").glob("*/children") for p in f.read_text().split()}
    total = 0.0
    for pid in pids:
        try:
            if b"playwright" in Path(f"/proc/{pid}/cmdline").read_bytes():  # the browser driver, not the app
                continue
        except OSError:
            continue
        total += rss_mb(pid)
    return total


@pytest.fixture(scope="module")
def sanctions(browser: Any, server: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """One page that asked the sanctions question, with every request it made recorded."""
    context = browser.new_context(viewport={"width": 1200, "height": 1100})
    pg = context.new_page()
    pg.set_default_timeout(TIMEOUT_MS)
    requests: list[str] = []
    pg.on("request", lambda r: requests.append(r.url))
    pg.goto(server["url"])
    pg.locator("#bf-question textarea").wait_for()
    t0 = time.perf_counter()
    before = submit(pg, SANCTIONS_Q)
    pg.wait_for_function("() => [...document.querySelectorAll('#bf-chat .bf-answer p')]"
                         ".some(p => p.textContent.trim().length > 0)", timeout=TIMEOUT_MS)
    TIMINGS["first_token_in_browser_s"] = round(time.perf_counter() - t0, 2)
    answer = wait_final(pg, before)
    TIMINGS["answer_in_browser_s"] = round(time.perf_counter() - t0, 2)
    TIMINGS["app_process_rss_mb"] = round(rss_mb(), 1)
    TIMINGS["app_children_rss_mb"] = round(children_rss_mb(), 1)
    yield {"page": pg, "answer": answer, "requests": requests}
    context.close()


@pytest.mark.browser
def test_answer_shows_footnote_that_opens_the_highlighted_source_passage(
    sanctions: dict[str, Any], tmp_path: Path
) -> None:
    page, answer = sanctions["page"], sanctions["answer"]
    assert "250" in answer.inner_text()
    marker = answer.locator("sup.bf-ref a", has_text="[1]").first
    expect(marker).to_be_visible()
    source = answer.locator("details.bf-source").first
    expect(source).not_to_have_attribute("open", "")
    marker.click()  # a plain link into the closed <details>: the browser opens it, no script involved
    expect(source).to_have_attribute("open", "")
    mark = source.locator("mark")
    expect(mark).to_be_visible()
    quote = mark.inner_text()
    seeds = SEED_000.read_text(encoding="utf-8") + SEED_002.read_text(encoding="utf-8")
    assert "250" in quote and quote in seeds
    passage = source.locator(".bf-passage").inner_text()
    assert len(passage) > len(quote) + 200  # shown inside its surrounding context
    assert "The Global Implications" in source.locator("summary").inner_text()  # the title
    shot = tmp_path / "answer.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 0
    keep = os.environ.get("BRIEFING_SCREENSHOT")
    if keep:
        shutil.copyfile(shot, keep)


@pytest.mark.browser
def test_every_request_of_the_page_stays_on_127_0_0_1(sanctions: dict[str, Any]) -> None:
    urls = sanctions["requests"]
    assert urls, "no requests recorded"
    remote = [u for u in urls if urlparse(u).scheme not in ("data", "blob") and urlparse(u).hostname != "127.0.0.1"]
    assert remote == []


@pytest.mark.browser
def test_follow_up_question_uses_the_previous_turn(page: Any) -> None:
    first = ask(page, "Who is Oleg Kozhemyako?")
    assert "Kozhemyako" in first.inner_text() or "Kojemyako" in first.inner_text()
    follow = ask(page, "Which North Korean minister led the talks with him?")
    assert "Yun Jong Ho" in follow.inner_text()


@pytest.mark.browser
def test_unanswerable_question_is_refused_with_what_was_searched(page: Any) -> None:
    final = ask(page, "What is the population of Pyongyang?")
    assert "bf-refusal" in (final.get_attribute("class") or "")
    text = final.inner_text()
    assert "The sources do not say." in text and "Searched" in text
    assert final.locator("details.bf-source").count() == 0


@pytest.mark.browser
def test_a_false_premise_question_gets_the_correction_or_a_refusal_never_the_lure(page: Any) -> None:
    """The seeds report sanctions announced by the United States; asked about the European Union's, the user must
    not be handed the US figure as the answer: a correction that names the missing premise, or a refusal."""
    final = ask(page, "How many individuals and organizations did the European Union sanction on December 12, 2023?")
    assert "bf-refusal" in (final.get_attribute("class") or "")
    text = final.inner_text()
    if "250" in text:  # the near miss may be shown, but only as what the sources say instead, cited
        assert "do not mention" in text and "European" in text
        assert final.locator("sup.bf-ref").count() >= 1
    else:
        assert "The sources do not" in text


@pytest.mark.browser
def test_planted_html_in_a_document_is_shown_as_text(page: Any) -> None:
    final = ask(page, "How many members does the Rason harbour crane operators' union have?")
    assert "83" in final.inner_text()
    source = final.locator("details.bf-source", has_text="Rason harbour memo").first
    source.locator("summary").click()
    passage = source.locator(".bf-passage")
    expect(passage).to_contain_text("<script>window.__pwned=1</script>")
    expect(passage).to_contain_text('<img src=x onerror="window.__pwned=2">')
    expect(source.locator("summary")).to_contain_text("<i>draft</i>")
    assert page.locator("#bf-chat script, #bf-chat img[src='x'], #bf-chat i").count() == 0
    page.get_by_role("tab", name="Documents").click()
    expect(page.locator("#bf-docs")).to_contain_text("Rason harbour memo <i>draft</i>")
    page.wait_for_timeout(500)
    assert page.evaluate("() => typeof window.__pwned") == "undefined"


def upload(page: Any, files: Any, shown: str) -> None:
    """Add files through the Documents tab, wait until they are indexed and listed, and go back to the chat."""
    page.get_by_role("tab", name="Documents").click()
    page.locator("#bf-upload input[type=file]").set_input_files(files)
    expect(page.locator("#bf-upload")).to_contain_text(shown, timeout=30_000)
    page.locator("#bf-add").click()
    expect(page.locator("#bf-upload-status")).to_contain_text("added", timeout=TIMEOUT_MS)
    expect(page.locator("#bf-docs")).to_contain_text(shown)
    page.get_by_role("tab", name="Chat").click()


@pytest.mark.browser
def test_uploaded_document_is_indexed_and_cited(page: Any, server: dict[str, Any]) -> None:
    text = ("Tumen River crossing notes\n\nThe Tumen River bridge toll is 7 won for every passenger car, "
            "according to the Rason border office. Trucks pay the same toll on weekends.\n")
    upload(page, [{"name": "tumen bridge.txt", "mimeType": "text/plain", "buffer": text.encode()}], "tumen")
    cfg: Settings = server["cfg"]
    assert (cfg.index_dir / "uploads" / "tumen_bridge.txt").read_text(encoding="utf-8") == text
    final = ask(page, "What is the toll on the Tumen River bridge?")
    assert "7" in final.inner_text()
    expect(final.locator("details.bf-source").first).to_contain_text("tumen_bridge.txt")


@pytest.mark.browser
def test_uploaded_pdf_footnote_shows_its_page_with_the_quote_highlighted(
    page: Any, server: dict[str, Any], tmp_path: Path
) -> None:
    import httpx
    from PIL import Image

    pdf = ROOT / "eval" / "corpora" / "documents" / "docs" / "pdf" / "crs_IF12672_russia_nuclear_weapons.pdf"
    upload(page, str(pdf), "crs_IF12672")
    final = ask(page, "How many deployed nuclear warheads does Russia have?")
    assert "1,718" in final.inner_text()
    source = final.locator("details.bf-source", has_text="crs_IF12672").first
    source.locator("summary").click()
    figure = source.locator("figure.bf-page")
    expect(figure).to_be_visible()
    quote = source.locator(".bf-passage mark").inner_text()
    gold = next(i + 1 for i, text in enumerate(pdf_pages(pdf)) if squash(quote) in squash(text))
    classes = (figure.get_attribute("class") or "").split()
    assert f"bf-page-{gold}" in classes and "bf-lit" in classes  # the image is of the quote's page, highlighted
    expect(figure.locator("figcaption")).to_contain_text(f"p. {gold}")
    shot = tmp_path / "figure.png"
    figure.locator("img").screenshot(path=str(shot))
    pixels = Image.open(shot).convert("RGB")
    yellow = sum(1 for x in range(pixels.width) for y in range(pixels.height)
                 if (p := pixels.getpixel((x, y))) and p[0] > 200 and p[1] > 170 and p[2] < 170 and p[0] - p[2] > 60)
    assert yellow > 200  # the highlight is drawn on the rendered page
    href = figure.locator("a").get_attribute("href") or ""
    assert href.endswith(f"#page={gold}")
    got = httpx.get(server["url"].rstrip("/") + href.split("#")[0], timeout=30)
    assert got.status_code == 200 and got.content[:5] == b"%PDF-"  # the link opens the original file


@pytest.mark.browser
def test_uploaded_web_page_footnote_links_its_original_file(page: Any, server: dict[str, Any]) -> None:
    import httpx

    html = ("<html><head><title>Harbour levy notice</title></head><body><nav>Home | News | Contact</nav><article>"
            "<h1>Harbour levy notice</h1><p>The harbour levy for fishing boats is 12 crowns per landing, the port "
            "board said on Monday. Cargo ships pay by tonnage instead.</p></article></body></html>")
    upload(page, [{"name": "harbour levy.html", "mimeType": "text/html", "buffer": html.encode()}], "harbour")
    final = ask(page, "What is the harbour levy for fishing boats?")
    assert "12" in final.inner_text()
    source = final.locator("details.bf-source", has_text="harbour_levy.html").first
    source.locator("summary").click()
    expect(source.locator(".bf-passage mark")).to_contain_text("12 crowns")  # the passage, in context
    link = source.locator("a.bf-original")
    expect(link).to_contain_text("open the original harbour_levy.html")
    got = httpx.get(server["url"].rstrip("/") + (link.get_attribute("href") or ""), timeout=30)
    assert got.status_code == 200 and b"12 crowns per landing" in got.content


def pdf_pages(pdf: Path) -> list[str]:
    import pypdfium2 as pdfium

    document = pdfium.PdfDocument(str(pdf))
    return [document[i].get_textpage().get_text_range() for i in range(len(document))]


def squash(text: str) -> str:
    return re.sub(r"[\s\ufffe\u00ad-]+", "", text).lower()


@pytest.mark.browser
def test_two_pages_asking_at_once_each_get_their_own_answer(browser: Any, server: dict[str, Any]) -> None:
    a, b = open_page(browser, server), open_page(browser, server)
    try:
        t0 = time.perf_counter()
        before_a = submit(a, SANCTIONS_Q)
        before_b = submit(b, "Which region of Russia is Oleg Kozhemyako the governor of?")
        answer_a = wait_final(a, before_a).inner_text()
        answer_b = wait_final(b, before_b).inner_text()
        TIMINGS["two_concurrent_answers_s"] = round(time.perf_counter() - t0, 2)
        assert "250" in answer_a and "Primorye" not in answer_a
        assert "Primorye" in answer_b and "250" not in answer_b
    finally:
        a.context.close()
        b.context.close()


@pytest.mark.browser
def test_empty_and_overlong_questions_get_clear_messages(page: Any, server: dict[str, Any]) -> None:
    empty = ask(page, "   ")
    assert "Type a question first." in empty.inner_text()
    cfg: Settings = server["cfg"]
    long = ask(page, "why " * (cfg.max_question_chars // 3))
    assert "Please rephrase" in long.inner_text() and "limit" in long.inner_text()
    assert "Traceback" not in page.locator("#bf-chat").inner_text()


@pytest.mark.browser
def test_upload_names_are_reduced_to_a_safe_basename() -> None:
    from assistant.chat import safe_upload_name

    assert safe_upload_name("../../etc/passwd.txt") == "passwd.txt"
    assert safe_upload_name("/abs/path/notes.MD") == "notes.md"
    assert safe_upload_name("..\\..\\win\\evil name.txt") == "evil_name.txt"
    assert safe_upload_name("...txt") is None
    assert safe_upload_name("script.py") is None
    assert safe_upload_name("a<b>.txt") == "a_b_.txt"


@pytest.mark.browser
def test_brief_tab_writes_a_footnoted_one_page_brief(page: Any, tmp_path: Path) -> None:
    page.get_by_role("tab", name="Brief").click()
    topic = page.locator("#bf-brief-topic textarea")
    expect(topic).to_have_value("")  # no topic of any corpus is built in
    topic.fill("North Korea–Russia economic cooperation")
    t0 = time.perf_counter()
    page.locator("#bf-brief-write").click()
    preview = page.locator("#bf-brief-preview .bf-brief-final, #bf-brief-preview .bf-final").first
    preview.wait_for(state="visible", timeout=400_000)
    TIMINGS["brief_in_browser_s"] = round(time.perf_counter() - t0, 2)
    text = preview.inner_text()
    assert "bottom line" in text.lower(), text[:500]
    assert preview.locator("sup.bf-ref").count() >= 1
    assert "Traceback" not in text
    link = page.locator("#bf-brief-pdf a[download]").first
    expect(link).to_be_visible(timeout=30_000)
    expect(page.locator("#bf-brief-md a[download]").first).to_be_visible()
    with page.expect_download() as download:
        link.click()
    pdf = tmp_path / "brief.pdf"
    download.value.save_as(str(pdf))
    assert page_count(pdf) == 1  # the product's own page count: pdfinfo when present, else the page objects
