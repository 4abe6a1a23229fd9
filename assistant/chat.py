"""Browser chat (Gradio): streamed answers re-rendered with verified footnotes, plus a Documents tab.

Everything shown in the chat is HTML built here. Every piece of text that comes from a
document, the model or the user goes through `html.escape` first; the only tags on the page
are the ones this module writes. The Chatbot additionally runs with Markdown off and
Gradio's sanitizer on, so nothing in an answer is ever interpreted as markup.

Footnotes need no custom JavaScript: a marker `[n]` is a same-page link to an element inside a
closed `<details>` under the answer. Browsers open a `<details>` when a link targets something
inside it, and the `<summary>` itself can be clicked too.
"""

from __future__ import annotations

import os

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"  # before gradio is imported: no network calls
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ.setdefault("GRADIO_RUN_HISTORY", "False")  # no run-history page (it offers remote storage)

import base64  # noqa: E402
import html  # noqa: E402
import logging  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import urllib.parse  # noqa: E402
import uuid  # noqa: E402
import warnings  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from pathlib import Path, PurePosixPath, PureWindowsPath  # noqa: E402
from typing import Any  # noqa: E402

import gradio as gr  # noqa: E402

from assistant import brief as briefing  # noqa: E402
from assistant import render  # noqa: E402
from assistant.answer import REFUSAL, Answer, Answerer, Footnote, answer_system  # noqa: E402
from assistant.config import Settings  # noqa: E402
from assistant.embeddings import EmbeddingError, get_embedder  # noqa: E402
from assistant.ingest import LOADERS  # noqa: E402
from assistant.llm import LLMError, Stats  # noqa: E402
from assistant.retrieval import QueryError, Retriever  # noqa: E402
from assistant.store import Index, StoreError  # noqa: E402

log = logging.getLogger(__name__)

CONTEXT_CHARS = 300
MARKER = re.compile(r"\s*\[\d+\]")
Turn = dict[str, str]
ChatMessages = list[dict[str, Any]]

THEME = gr.themes.Default(
    font=["ui-sans-serif", "system-ui", "sans-serif"],
    font_mono=["ui-monospace", "SFMono-Regular", "Menlo", "monospace"],
)

CSS = """
.bf-answer p { margin: 0 0 .5em 0; }
.bf-ref { font-size: .75em; margin-left: 1px; }
.bf-ref a { text-decoration: none; }
.bf-unverified { background: rgba(245, 158, 11, .15); border-bottom: 2px dotted #d97706; }
.bf-flag { color: #b45309; font-weight: 600; font-size: .85em; white-space: nowrap; }
.bf-refusal { border-left: 4px solid #9ca3af; padding: .3em .8em; }
.bf-refusal-head { font-weight: 600; }
.bf-muted { color: var(--body-text-color-subdued); font-size: .85em; }
.bf-notice { border-left: 4px solid #dc2626; padding: .3em .8em; }
.bf-conflict { border: 1px solid #d97706; border-radius: 6px; padding: .4em .6em; margin: .4em 0; }
.bf-conflict-head { font-weight: 600; margin-bottom: .3em; }
.bf-sides { display: flex; gap: .6em; flex-wrap: wrap; }
.bf-side { flex: 1 1 14em; border-left: 3px solid #d97706; padding: 0 .5em; }
.bf-side blockquote { margin: .2em 0; font-style: italic; }
.bf-sources { margin-top: .6em; border-top: 1px solid var(--border-color-primary); padding-top: .3em; }
.bf-sources-head { font-weight: 600; font-size: .85em; }
.bf-source summary { cursor: pointer; }
.bf-page { margin: .5em 0; }
.bf-page img { max-width: 100%; height: auto; border: 1px solid var(--border-color-primary); }
.bf-source[open] summary { font-weight: 600; }
.bf-passage { white-space: pre-wrap; font-size: .9em; border-left: 3px solid var(--border-color-primary);
  padding: .3em .6em; margin: .3em 0; }
.bf-passage mark, .bf-side mark { background: #fde68a; color: #111827; padding: 0 1px; }
.bf-status { color: var(--body-text-color-subdued); font-size: .85em; font-style: italic; }
.bf-docs table { width: 100%; border-collapse: collapse; }
.bf-docs th, .bf-docs td { text-align: left; padding: .25em .5em;
  border-bottom: 1px solid var(--border-color-primary); }
.bf-brief h1 { font-size: 1.3em; margin: 0 0 .2em; }
.bf-brief h2 { font-size: .85em; text-transform: uppercase; letter-spacing: .04em; margin: .9em 0 .3em;
  border-bottom: 1px solid var(--border-color-primary); }
.bf-brief .bluf { border-left: 4px solid #1d3f6e; padding: .3em .8em; background: rgba(29, 63, 110, .08); }
.bf-brief ul, .bf-brief ol { margin: 0; padding-left: 1.4em; }
.bf-brief .notes { font-size: .8em; }
.bf-brief table { width: 100%; border-collapse: collapse; font-size: .85em; }
.bf-brief td, .bf-brief th { text-align: left; vertical-align: top; padding: .2em .4em; }
.bf-brief .where, .bf-brief .conf { color: var(--body-text-color-subdued); }
"""


def esc(text: object) -> str:
    """The one way text reaches HTML here."""
    return html.escape(str(text), quote=True)


def plain(text: str) -> str:
    """An answer's text without footnote markers, for the conversation history."""
    return MARKER.sub("", text).strip()


# --- rendering -------------------------------------------------------------------------------


def passage_html(text: str, start: int, end: int, width: int = CONTEXT_CHARS) -> str:
    """The cited span highlighted inside ~`width` characters of its original context."""
    a, b = max(0, start - width), min(len(text), end + width)
    if a > 0:
        space = text.find(" ", a, start)
        a = space + 1 if space != -1 else a
    if b < len(text):
        space = text.rfind(" ", end, b)
        b = space if space != -1 else b
    return (
        ("…" if a > 0 else "") + esc(text[a:start]) + "<mark>" + esc(text[start:end]) + "</mark>"
        + esc(text[end:b]) + ("…" if b < len(text) else "")
    )


def highlight(text: str, needles: list[str]) -> str:
    """Escape `text`, marking the first occurrence of each needle (spans found before escaping)."""
    spans: list[tuple[int, int]] = []
    for needle in needles:
        i = text.find(needle) if needle else -1
        if i != -1 and all(i >= e or i + len(needle) <= s for s, e in spans):
            spans.append((i, i + len(needle)))
    out, pos = [], 0
    for s, e in sorted(spans):
        out += [esc(text[pos:s]), "<mark>", esc(text[s:e]), "</mark>"]
        pos = e
    out.append(esc(text[pos:]))
    return "".join(out)


class Sources:
    """What the chat shows of cited documents, read once per answer: each document's text (the stored
    extraction for PDF/HTML/DOCX, the file itself for .txt/.md) and, for PDFs, the cited page as an
    image with the quote highlighted plus a link that opens the original at that page."""

    def __init__(self, answerer: Answerer):
        self.metas = answerer.retriever.documents
        self.index = answerer.retriever.index
        self.cache_dir = answerer.cfg.index_dir / "page_images"
        self.texts: dict[str, str | None] = {}

    def text(self, doc: str) -> str | None:
        if doc not in self.texts:
            meta = self.metas.get(doc)
            self.texts[doc] = self.index.document_text(meta) if meta else None
        return self.texts[doc]

    def page_html(self, f: Footnote) -> str:
        meta = self.metas.get(f.doc) or {}
        if f.page is None or meta.get("kind") != "pdf":
            return ""
        from assistant.pages import render_page

        source = Path(str(meta.get("source", "")))
        try:
            image = render_page(source, f.page, f.quote, self.cache_dir)
        except Exception:  # a moved, changed or unreadable PDF must not break the answer
            log.exception("page image for %s p. %s", f.doc, f.page)
            return '<div class="bf-muted">(page image unavailable: the PDF is missing or changed)</div>'
        data = base64.b64encode(image.path.read_bytes()).decode()
        note = "" if image.rects else (" · scanned page: no text layer to highlight" if f.ocr
                                       else " · the quote was not found on this page's text layer")
        link = f'<a href="{file_url(source)}#page={f.page}" target="_blank">open the PDF at this page</a>'

        lit = " bf-lit" if image.rects else ""
        return (f'<figure class="bf-page bf-page-{f.page}{lit}">'
                f'<img src="data:image/png;base64,{data}" width="{image.width}" height="{image.height}" '
                f'alt="{esc(f.doc)}, {esc(f.locator())}, the quoted passage highlighted">'
                f"<figcaption>{esc(f.locator())} · {link}{esc(note)}</figcaption></figure>")


    def original_link(self, f: Footnote) -> str:
        """For a saved web page or Word file: a link that opens the original file (PDFs get theirs on the page)."""
        meta = self.metas.get(f.doc) or {}
        if meta.get("kind") not in OPENABLE or meta.get("kind") == "pdf" or not meta.get("source"):
            return ""
        source = Path(str(meta["source"]))
        return (f'<a class="bf-original" href="{file_url(source)}" target="_blank">'
                f"open the original {esc(source.name)}</a>")


def file_url(path: Path) -> str:
    """The chat's URL for a file in one of the `source_folders`."""
    return esc(f"/gradio_api/file={urllib.parse.quote(str(path))}")


def footnote_html(f: Footnote, fid: str, sources: Sources) -> str:
    """One collapsible source: number and title, the passage in context (and the PDF page), its provenance."""
    text = sources.text(f.doc)
    if text is not None and text[f.start : f.end] == f.quote:
        passage = passage_html(text, f.start, f.end)
        changed = ""
    else:
        passage = "<mark>" + esc(f.quote) + "</mark>"
        changed = '<div class="bf-muted">(the file is not readable or changed since indexing: stored quote)</div>'
    byline = ", ".join(esc(x) for x in (f.author, f.date) if x)
    origin = []
    if f.outlet:
        origin.append(esc(f.outlet))
    if f.url:
        url = f.url.strip()
        origin.append(f'<a href="{esc(url)}">{esc(url)}</a>' if re.match(r"https?://", url) else esc(url))
    meta = [f"{esc(f.doc)}, {esc(f.locator())}"]
    if byline:
        meta.insert(0, byline)
    if origin:
        meta.append("originally " + " ".join(origin))
    if link := sources.original_link(f):
        meta.append(link)
    return (
        f'<details class="bf-source" id="{fid}"><summary>[{f.n}] {esc(f.title)}'
        + (f' <span class="bf-muted">— {byline}</span>' if byline else "")
        + f'</summary><div class="bf-passage" id="{fid}-passage">{passage}</div>{changed}'
        + sources.page_html(f)
        + f'<div class="bf-muted">{" · ".join(meta)}</div></details>'
    )


def render_answer(answer: Answer, sources: Sources) -> str:
    """The verified answer as HTML: footnoted sentences, flags, conflicts, then only the cited sources."""
    if answer.refused and not answer.ungrounded:
        reason = f'<div class="bf-muted">({esc(answer.refusal_reason)})</div>' if answer.refusal_reason else ""
        return (
            f'<div class="bf-answer bf-final bf-refusal"><div class="bf-refusal-head">{esc(REFUSAL)}</div>'
            f'<div class="bf-muted">{esc(answer.searched)}</div>{reason}{interpreted(answer)}</div>'
        )
    tid = "bf-" + uuid.uuid4().hex[:10]

    def refs(numbers: list[int]) -> str:
        return "".join(f'<sup class="bf-ref"><a href="#{tid}-{n}-passage">[{n}]</a></sup>' for n in numbers)

    summaries = {c.summary for c in answer.conflicts}
    parts = []
    head = ""
    if answer.ungrounded:  # a correction: the false premise first, then what the sources do say, cited
        head = (f'<div class="bf-refusal-head">{esc(answer.sentences[0].text)}</div>'
                f'<div class="bf-muted">{esc(answer.searched)}</div>')
    for s in answer.sentences[1 if answer.ungrounded else 0 :]:
        if s.text in summaries:
            continue
        if s.supported:
            parts.append(f"{esc(s.text)}{refs(s.citations)}")
        else:
            why = "its sources do not support it" if s.citations else "it cites no valid source"
            parts.append(f'<span class="bf-unverified" title="{esc(s.reason)}">⚠ {esc(s.text)}{refs(s.citations)} '
                         f'<span class="bf-flag">(unverified: {why})</span></span>')
    body = head + (f"<p>{' '.join(parts)}</p>" if parts else "")
    notes = {f.n: f for f in answer.citations}
    for c in answer.conflicts:
        sides = []
        for side in c.sides:
            f = notes.get(side.citation)
            if f is None:
                continue
            sides.append(f'<div class="bf-side"><div>{refs([f.n])} {esc(f.title)}</div>'
                         f"<blockquote>“{highlight(f.quote, side.details)}”</blockquote></div>")
        body += (f'<div class="bf-conflict"><div class="bf-conflict-head">⚖ {esc(c.summary)}</div>'
                 f'<div class="bf-sides">{"".join(sides)}</div></div>')
    if answer.incomplete:
        body += '<div class="bf-flag">⚠ The answer is incomplete: generation stopped early.</div>'
    listed = "".join(footnote_html(f, f"{tid}-{f.n}", sources) for f in answer.citations)
    if listed:
        body += f'<div class="bf-sources"><div class="bf-sources-head">Sources</div>{listed}</div>'
    took = answer.timings.get("total_s")
    foot = " · ".join(esc(x) for x in (answer.backend, answer.model, f"{took:.1f} s" if took else "") if x)
    kind = "bf-answer bf-final" + (" bf-refusal bf-correction" if answer.ungrounded else "")
    return f'<div class="{kind}">{body}{interpreted(answer)}<div class="bf-muted">{foot}</div></div>'


def interpreted(answer: Answer) -> str:
    if answer.standalone_question == answer.question:
        return ""
    return f'<div class="bf-muted">Searched for: {esc(answer.standalone_question)}</div>'


def streaming_html(status: str, text: str) -> str:
    return (f'<div class="bf-answer"><div class="bf-status">{esc(status)}</div>'
            f"<p>{esc(text)}{'▍' if text else ''}</p></div>")


def notice_html(message: str) -> str:
    return f'<div class="bf-final bf-notice">{esc(message)}</div>'


def explain(exc: Exception) -> str:
    """A sentence for the user instead of a stack trace."""
    if isinstance(exc, QueryError):
        return f"Please rephrase: {exc}."
    if isinstance(exc, StoreError):
        return f"The document index is not usable: {exc}. Add documents in the Documents tab."
    if isinstance(exc, LLMError):
        return f"The language model is not available: {exc}"
    if isinstance(exc, EmbeddingError):
        return f"The embedding model is not available: {exc}"
    if isinstance(exc, briefing.BriefError):
        return f"No brief: {exc}."
    return f"Something went wrong while answering ({type(exc).__name__}); the details are in the server log."


# --- brief ---------------------------------------------------------------------------------------

BRIEF_STEPS = len(briefing.SUBQUESTIONS) + 3  # evidence sub-questions, BLUF, judgments, PDF


def brief_html(brief: briefing.Brief, trimmed: list[str]) -> str:
    """The brief as a preview: the same sections and page-aware footnotes as the printed page (`render.body_html`)."""
    parts = [render.body_html(brief, ref_class="bf-ref")]
    took = brief.timings.get("total_s")
    foot = [f"{brief.llm_calls} model calls", f"{took:.0f} s" if took else ""]
    if trimmed:
        foot.append("the PDF was shortened to fit one page: " + ", ".join(trimmed))
    parts.append(f'<div class="bf-muted">{esc(" · ".join(x for x in foot if x))}</div>')
    return f'<div class="bf-brief bf-brief-final">{"".join(parts)}</div>'


def brief_filename(topic: str) -> str:
    slug = "".join(c if c.isascii() and c.isalnum() else "-" for c in topic.lower())
    return "brief-" + ("-".join(x for x in slug.split("-") if x)[:60] or "topic")


# --- documents -------------------------------------------------------------------------------

TYPES = ", ".join(LOADERS)
SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def safe_upload_name(name: str) -> str | None:
    """A plain basename with a supported suffix, or None. Never a path: no `..`, no separators."""
    base = PureWindowsPath(PurePosixPath(name).name).name
    base = SAFE_NAME.sub("_", base).strip("._-")
    stem, dot, suffix = base.rpartition(".")
    if not dot or not stem or f".{suffix.lower()}" not in LOADERS:
        return None
    return f"{stem[:100]}.{suffix.lower()}"


def docs_html(index: Index) -> str:
    """The committed documents (the manifest: one small record each, so the tab stays quick on a large archive)."""
    try:
        manifest = index.manifest()
    except Exception as exc:  # a broken store should not break the page
        log.exception("listing documents failed")
        return notice_html(f"Cannot list the documents: {exc}")
    if not manifest:
        return f'<div class="bf-docs bf-muted">No documents indexed yet: upload {TYPES} files below.</div>'
    rows = [f"<tr><td>{esc(str(meta.get('title') or name))}</td><td>{esc(name)}</td><td>{meta['n_chunks']}</td></tr>"
            for name, meta in sorted(manifest.items())]
    total = sum(int(meta["n_chunks"]) for meta in manifest.values())
    return (f'<div class="bf-docs"><table><thead><tr><th>Title</th><th>File</th><th>Chunks</th></tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table>'
            f'<div class="bf-muted">{len(manifest)} documents, {total} chunks</div></div>')


def backend_line(answerer: Answerer) -> str:
    backend = answerer.backend
    return (f'<div class="bf-muted">Answers by the <b>{esc(backend.name)}</b> backend, model '
            f"<b>{esc(backend.model)}</b>; retrieval over the local index (k={answerer.cfg.k}).</div>")


# --- the app ---------------------------------------------------------------------------------


def make_answerer(cfg: Settings) -> Answerer:
    """Retriever on an index that may still be empty (uploads can fill it), and the model, loaded now."""
    index = Index(cfg, get_embedder(cfg).model_name, create=True)
    return Answerer(cfg, retriever=Retriever(cfg, index=index))


def build_app(cfg: Settings, answerer: Answerer | None = None) -> gr.Blocks:
    """The chat and documents UI around one shared Answerer (loads the model if none is given)."""
    answerer = answerer or make_answerer(cfg)
    shared: Answerer = answerer

    def respond(question: str, chat: ChatMessages | None, turns: list[Turn] | None) -> Iterator[Any]:
        chat, turns = list(chat or []), list(turns or [])
        question = (question or "").strip()
        if not question:
            yield chat + [{"role": "assistant", "content": notice_html("Type a question first.")}], "", turns
            return
        chat.append({"role": "user", "content": esc(question)})
        status, text = "searching the documents…", ""
        yield chat + [{"role": "assistant", "content": streaming_html(status, text)}], "", turns
        events = shared.stream(question, turns)
        try:
            for kind, value in events:
                if kind == "status":
                    status = str(value)
                elif kind == "delta":
                    status, text = "writing…", text + str(value)
                elif kind == "redraft":
                    status, text = str(value), ""
                elif kind == "answer":
                    answer: Answer = value
                    chat.append({"role": "assistant", "content": render_answer(answer, Sources(shared))})
                    turns += [{"role": "user", "content": question},
                              {"role": "assistant", "content": plain(answer.answer)}]
                    yield chat, "", turns
                    return
                yield chat + [{"role": "assistant", "content": streaming_html(status, text)}], "", turns
        except Exception as exc:
            if not isinstance(exc, (QueryError, StoreError, LLMError, EmbeddingError)):
                log.exception("answering %r failed", question)
            chat.append({"role": "assistant", "content": notice_html(explain(exc))})
            yield chat, "", turns
        finally:
            close = getattr(events, "close", None)
            if close:
                close()  # the user left mid-answer: stop generating (llama.cpp stops at the next token)

    def add_documents(files: list[str] | None, progress: gr.Progress = gr.Progress()) -> tuple[str, str, None]:  # noqa: B008
        index = shared.retriever.index
        if not files:
            return notice_html(f"Choose one or more files first ({TYPES})."), docs_html(index), None
        uploads = cfg.index_dir / "uploads"
        uploads.mkdir(parents=True, exist_ok=True)
        limit = int(cfg.upload_max_mb * 1_000_000)
        known = index.manifest()
        saved: list[Path] = []
        problems: list[str] = []
        for upload in files:
            src = Path(upload)
            name = safe_upload_name(src.name)
            if name is None:
                problems.append(f"{src.name}: only {', '.join(LOADERS)} files can be added")
                continue
            dest = (uploads / name).resolve()
            if dest.parent != uploads.resolve():
                problems.append(f"{src.name}: not a plain file name")
                continue
            size = src.stat().st_size
            if size > limit:
                problems.append(f"{name}: {size / 1e6:.1f} MB is over the {cfg.upload_max_mb:g} MB upload limit")
                continue
            other = known.get(name, {}).get("source")
            if other and Path(other).resolve() != dest:
                problems.append(f"{name}: a different document with this name is already indexed; rename the file")
                continue
            shutil.copyfile(src, dest)
            saved.append(dest)
        lines = [f"✗ {p}" for p in problems]
        if saved:
            from assistant.indexing import ingest

            progress(0, desc="indexing")

            def report(stage: str, done: int, total: int) -> None:
                progress(done / total if total else 1.0, desc=f"indexing {stage}")

            try:
                result = ingest(saved, cfg, progress=report)
                progress(1.0, desc="refreshing the search index")
                shared.retriever.refresh()
            except Exception as exc:
                log.exception("ingest of uploads failed")
                lines.append(f"✗ indexing failed: {exc}")
            else:
                failed = {Path(f["file"]).name for f in result.files if f["status"] == "error"}
                for path in saved:
                    if path.name in failed:
                        path.unlink(missing_ok=True)  # an unreadable upload is not kept
                lines += [f"✗ {e}" for e in result.errors]
                added = [p.name for p in saved if p.name not in failed]
                if added:
                    lines.insert(0, f"✓ added {', '.join(added)}: {result.embedded} new chunks "
                                    f"in {result.seconds:.1f} s; ask about them in the Chat tab.")
        status = "".join(f"<div>{esc(line)}</div>" for line in lines)
        return f'<div class="bf-upload-status">{status}</div>', docs_html(index), None

    def write_brief(topic: str, progress: gr.Progress = gr.Progress()) -> tuple[str, str | None, str | None]:  # noqa: B008
        """The Brief tab: draft, check and render one brief; files go to a fresh temp folder."""
        step = [0]

        def say(message: str) -> None:
            step[0] += 1
            progress(min(step[0], BRIEF_STEPS) / BRIEF_STEPS, desc=message)

        progress(0, desc="searching the documents…")
        try:
            writer = briefing.BriefWriter(cfg, backend=shared.backend, retriever=shared.retriever)
            brief = writer.write(topic or "", say)
            say("typesetting the one-page PDF")
            out = Path(tempfile.mkdtemp(prefix="bf-brief-"))
            name = brief_filename(brief.topic)
            md, pdf = out / f"{name}.md", out / f"{name}.pdf"
            md.write_text(render.to_markdown(brief), encoding="utf-8")
            printed = render.write_pdf(brief, pdf)
        except Exception as exc:
            if not isinstance(exc, (briefing.BriefError, QueryError, StoreError, LLMError, EmbeddingError)):
                log.exception("brief on %r failed", topic)
            return notice_html(explain(exc)), None, None
        return brief_html(brief, printed.trimmed), str(md), str(pdf)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # theme/css on Blocks: kept for plain .launch() callers
        blocks = gr.Blocks(title="Briefing assistant", theme=THEME, css=CSS, analytics_enabled=False)
    with blocks as app:
        turns = gr.State([])
        with gr.Tabs():
            with gr.Tab("Chat", id="chat"):
                chatbot = gr.Chatbot(
                    label="Briefing assistant", elem_id="bf-chat", height=600, render_markdown=False,
                    sanitize_html=True, allow_tags=False, latex_delimiters=[], buttons=[], feedback_options=None,
                    placeholder="Ask a question about the indexed documents. Every sentence of the answer is "
                                "footnoted and checked against its source.",
                )
                with gr.Row():
                    box = gr.Textbox(placeholder="Ask about the documents…", show_label=False, scale=8,
                                     max_lines=6, elem_id="bf-question", autofocus=True)
                    ask = gr.Button("Ask", variant="primary", scale=1, elem_id="bf-ask")
                new = gr.Button("New conversation", size="sm", elem_id="bf-new")
            with gr.Tab("Documents", id="documents"):
                gr.HTML(backend_line(shared), elem_id="bf-backend")
                listing = gr.HTML(docs_html(shared.retriever.index), elem_id="bf-docs")
                files = gr.File(label=f"Add documents ({TYPES}, up to {cfg.upload_max_mb:g} MB each)",
                                file_types=list(LOADERS), file_count="multiple", type="filepath", elem_id="bf-upload")
                add = gr.Button("Add to index", variant="primary", elem_id="bf-add")
                upload_status = gr.HTML(elem_id="bf-upload-status")
            with gr.Tab("Brief", id="brief"):
                with gr.Row():
                    topic = gr.Textbox("", label="Topic", placeholder="what the brief is about, in a few words",
                                       scale=8, max_lines=2, elem_id="bf-brief-topic")
                    write = gr.Button("Write brief", variant="primary", scale=1, elem_id="bf-brief-write")
                gr.HTML('<div class="bf-muted">A one-page brief (BLUF, key judgments, evidence, conflicts, gaps, '
                        "sources), every fact footnoted; takes a minute or two.</div>")
                preview = gr.HTML(elem_id="bf-brief-preview")
                with gr.Row():
                    brief_md = gr.File(label="Markdown", interactive=False, elem_id="bf-brief-md")
                    brief_pdf = gr.File(label="PDF (one page)", interactive=False, elem_id="bf-brief-pdf")
        for trigger, name in ((box.submit, "ask"), (ask.click, "ask_button")):
            trigger(respond, [box, chatbot, turns], [chatbot, box, turns], concurrency_limit=2,
                    concurrency_id="answer", show_progress="hidden", api_name=name,
                    api_visibility="public" if name == "ask" else "undocumented")
        quiet: dict[str, Any] = {"queue": False, "api_visibility": "undocumented"}
        new.click(lambda: ([], "", []), None, [chatbot, box, turns], **quiet)
        chatbot.clear(lambda: [], None, turns, **quiet)  # the chatbot's own trash button forgets the turns too
        def answer_json(question: str) -> dict[str, Any]:
            """Scripting API (`/answer_json`): the verified Answer as JSON, same checks as the chat."""
            return shared.ask(question).model_dump()

        gr.api(answer_json, api_name="answer_json", concurrency_limit=2, concurrency_id="answer")
        write.click(write_brief, [topic], [preview, brief_md, brief_pdf], concurrency_limit=2,
                    concurrency_id="answer", show_progress="full", api_name="write_brief")
        add.click(add_documents, [files], [upload_status, listing, files], concurrency_limit=1,
                  concurrency_id="ingest", api_name="add_documents")
        app.load(lambda: docs_html(shared.retriever.index), None, listing, **quiet)
    return app


def warm_up(answerer: Answerer) -> None:
    """Embed once, read the dictionary the answer checks use (~0.9 s) and put the fixed system prompt in the model's
    cache, so the first answer is quick."""
    from assistant.verify import ordinary_stems

    answerer.retriever.embedder.get_query_embedding("warm up")
    ordinary_stems()
    messages = [{"role": "system", "content": answer_system()}, {"role": "user", "content": "ok"}]
    schema = {"type": "object", "properties": {"sentences": {"type": "array", "maxItems": 0}},
              "required": ["sentences"]}
    for _ in answerer.backend.stream(messages, schema, 4, Stats()):
        pass


OPENABLE = ("pdf", "html", "docx")  # originals the chat links to (text files are shown whole in the passage view)


def source_folders(cfg: Settings, answerer: Answerer) -> list[str]:
    """Folders of the indexed PDF, HTML and DOCX files (and the uploads folder): the chat may serve those files, so
    a footnote's link opens the original (a PDF at the cited page); nothing else on disk is reachable."""
    folders = {str(Path(str(meta.get("source", ""))).parent) for meta in answerer.retriever.documents.values()
               if meta.get("kind") in OPENABLE}
    return sorted(folders | {str(cfg.index_dir / "uploads")})


def launch(cfg: Settings, host: str, port: int, share: bool = False, auth: tuple[str, str] | None = None) -> None:
    """Load the model, serve the chat until Ctrl-C."""
    t0 = time.perf_counter()
    print("loading the index and the model…", file=sys.stderr, flush=True)
    answerer = make_answerer(cfg)
    try:
        warm_up(answerer)
    except Exception as exc:  # the chat still starts and explains the problem per question
        print(f"warning: the model did not answer a warm-up request: {exc}", file=sys.stderr, flush=True)
    app = build_app(cfg, answerer).queue(default_concurrency_limit=2, max_size=64)
    _, local_url, share_url = app.launch(
        server_name=host, server_port=port, share=share, auth=auth, prevent_thread_lock=True, quiet=True,
        allowed_paths=source_folders(cfg, answerer),
        show_error=False, max_file_size=int(cfg.upload_max_mb * 1_000_000), theme=THEME, css=CSS,
        footer_links=["settings"], run_history=False,
    )
    took = time.perf_counter() - t0
    print(f"briefing chat: {local_url}  ({answerer.backend.name} / {answerer.backend.model}, ready in {took:.1f} s;"
          f" Ctrl-C stops)", flush=True)
    if share_url:
        print(f"public link: {share_url}", flush=True)
    app.block_thread()
