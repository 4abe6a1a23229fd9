"""`briefing` command line: thin commands that call the modules and render their results.

Heavy imports (llama-index, chromadb, llama.cpp) happen inside the commands so `--help` is fast.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

app = typer.Typer(
    help="Local briefing assistant: index documents, ask questions with verified footnoted citations, "
    "write one-page briefs, and evaluate groundedness. Offline; settings from BRIEFING_* env vars "
    "or briefing.toml (see `briefing doctor`).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console(highlight=False)
err = Console(stderr=True, highlight=False)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON instead of text.")]
KOpt = Annotated[int | None, typer.Option("--k", min=1, max=50, help="Passages to retrieve (default from settings).")]


def fail(message: str, code: int = 2) -> NoReturn:
    """One line on stderr, a non-zero exit, no traceback."""
    err.print(f"[bold red]error:[/] {message}", soft_wrap=True)
    raise typer.Exit(code)


def _known_errors() -> tuple[type[Exception], ...]:
    from assistant.config import ConfigError
    from assistant.ingest import IngestError
    from assistant.model_files import ModelFileError

    known: list[type[Exception]] = [ConfigError, IngestError, ModelFileError]
    if "assistant.store" in sys.modules:
        from assistant.store import StoreError

        known.append(StoreError)
    if "assistant.lexical" in sys.modules:
        from assistant.lexical import LexicalError

        known.append(LexicalError)
    if "assistant.retrieval" in sys.modules:
        from assistant.retrieval import QueryError

        known.append(QueryError)
    if "assistant.llm" in sys.modules:
        from assistant.llm import LLMError

        known.append(LLMError)
    if "assistant.evaluation" in sys.modules:
        from assistant.evaluation import EvalError

        known.append(EvalError)
    if "assistant.embeddings" in sys.modules:
        from assistant.embeddings import EmbeddingError

        known.append(EmbeddingError)
    if "assistant.searcher" in sys.modules:
        from assistant.searcher import SearcherError

        known.append(SearcherError)
    return tuple(known)


@contextmanager
def clean_errors() -> Iterator[None]:
    """Turn the project's own errors (and Ctrl-C) into one-line messages."""
    try:
        yield
    except typer.Exit:
        raise
    except KeyboardInterrupt:
        fail("interrupted", 130)
    except Exception as exc:
        if isinstance(exc, _known_errors()):
            fail(str(exc))
        raise


def settings() -> Any:
    from assistant.config import get_settings

    with clean_errors():
        return get_settings()


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2) + "\n")


@app.command()
def ingest(
    paths: Annotated[list[Path] | None, typer.Argument(help="Files or folders (default: the seeds folder).")] = None,
    rebuild: Annotated[
        bool, typer.Option(help="Drop the index and build it anew (e.g. after changing the embedder).")
    ] = False,
    repair: Annotated[
        bool, typer.Option(help="Rebuild the lexical (BM25) index from Chroma and drop chunks of interrupted "
                           "ingests; with no PATH, only repair.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Index .pdf (scanned ones via OCR), .html/.htm, .docx, .txt and .md files; unchanged files are skipped,
    vanished ones removed, files of other types listed as skipped. Chunks are embedded and written in batches
    across documents; the lexical index is updated in step with Chroma."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    cfg = settings()
    targets = paths or [cfg.docs_dir]
    with clean_errors():
        from assistant.indexing import ingest as run_ingest
        from assistant.indexing import repair as run_repair

        if repair:
            repaired = run_repair(cfg)
            line = (f"repaired: documents {repaired['documents']}  passages {repaired['passages']}  "
                    f"orphan chunks removed {repaired['orphan_chunks_removed']}")
            if not paths:
                if as_json:
                    print_json(repaired)
                else:
                    out.print(line)
                return
            err.print(line)

        with Progress(
            TextColumn("[bold]ingest[/] {task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            console=err, transient=True, disable=as_json or not err.is_terminal,
        ) as bar:
            task = bar.add_task("", total=None)

            def progress(name: str, done: int, total: int) -> None:
                bar.update(task, description=name, completed=done, total=total)

            report = run_ingest(targets, cfg, progress=progress, rebuild=rebuild)
    if as_json:
        print_json(report.as_dict())
    else:
        verdict = "nothing to re-embed, index up to date" if report.embedded == 0 and not report.removed else ""
        out.print(
            f"documents {report.documents}  chunks {report.chunks}  embedded {report.embedded}  "
            f"skipped {report.skipped}  removed {report.removed}  seconds {report.seconds:.2f}"
            + (f"  ({verdict})" if verdict else "")
        )
        for entry in report.files:
            if entry["status"] == "indexed":
                pages = f", {entry['pages']} pages" if entry.get("pages") else ""
                ocr = f", {entry['ocr_pages']} OCR" if entry.get("ocr_pages") else ""
                what = f"{entry['kind']}, {entry['chunks']} chunks{pages}{ocr}"
                out.print(f"  indexed    {escape(entry['file'])} ({what})", soft_wrap=True)
            elif entry["status"] == "unchanged":
                out.print(f"  unchanged  {escape(entry['file'])}", soft_wrap=True)
        for line in report.unsupported:
            out.print(f"  skipped    {escape(line)}", soft_wrap=True)
        for line in report.errors:
            err.print(f"[red]error:[/] {escape(line)}", soft_wrap=True)
    if report.errors:
        raise typer.Exit(1)


@app.command()
def search(
    query: Annotated[str, typer.Argument(help="What to look for.")],
    k: KOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show the top passages for a query (hybrid dense + BM25), with exact offsets into the files. The first search
    of a local index leaves a searcher running in the background for the next ones (`search_keep_warm_seconds`)."""
    cfg = settings()
    with clean_errors():
        from assistant import searcher

        found = searcher.ask(cfg, query, k)
        loaded_here = found is None
        if found is None:
            from assistant.retrieval import Retriever

            found = [p.as_dict() for p in Retriever(cfg).search(query, k)]
    if as_json:
        print_json(found)
    for p in [] if as_json else found:
        where = f"{p['doc']}" + (f" p. {p['page']}" if p["page"] else "") + f":{p['start']}-{p['end']}"
        out.print(f"[bold]{p['rank']}.[/] {escape(p['title'])} [dim]({escape(where)}, score {p['score']:.4f})[/]")
        out.print(f"   {p['text']}", soft_wrap=True)
    if loaded_here:
        sys.stdout.flush()
        searcher.start(cfg)


BackendOpt = Annotated[
    str | None,
    typer.Option("--backend", help="auto (Ollama if reachable with the model, else embedded), embedded, ollama."),
]
ModelOpt = Annotated[str | None, typer.Option("--model", help="Model name (Ollama tag, or embedded model id).")]


def load_history(path: Path | None) -> list[dict[str, str]]:
    """A JSON list of {"role": "user"|"assistant", "content": str} turns."""
    if path is None:
        return []
    try:
        turns = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        fail(f"cannot read history {path}: {exc}")
    ok = isinstance(turns, list) and all(
        isinstance(t, dict) and t.get("role") in ("user", "assistant") and isinstance(t.get("content"), str)
        for t in turns
    )
    if not ok:
        fail(f"history {path} must be a JSON list of {{'role': 'user'|'assistant', 'content': str}} objects")
    return list(turns)


def render_answer(answer: Any) -> None:
    """Terminal rendering: verified sentences with markers, flags, conflicts, footnotes."""
    if answer.refused and not answer.ungrounded:
        out.print(f"[bold yellow]{escape(answer.answer)}[/]", soft_wrap=True)
        out.print(f"[dim]({answer.refusal_reason})[/]")
        return
    if answer.ungrounded:  # a correction: the premise first, then what the sources do say, cited
        out.print(f"[bold yellow]{escape(answer.sentences[0].text)}[/]", soft_wrap=True)
    for s in answer.sentences[1 if answer.ungrounded else 0 :]:
        marks = "".join(f"[{n}]" for n in s.citations).replace("[", "\\[")
        flag = "" if s.supported else f" [bold red](unverified: {escape(s.reason)})[/]"
        out.print(f"{escape(s.text)}{marks}{flag}", soft_wrap=True)
    out.print()
    for f in answer.citations:
        where = " ".join(x for x in (f.outlet, f.url) if x)  # a saved web page has its address, often no outlet
        origin = f" — via {where}" if where else ""
        out.print(f"\\[{f.n}] {escape(f.title)} — “{escape(f.quote)}” ({f.doc}, {escape(f.locator())}){escape(origin)}",
                  soft_wrap=True)
    if answer.incomplete:
        out.print("[bold red]answer incomplete: generation stopped early[/]")


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="The question.")],
    as_json: JsonOpt = False,
    backend: BackendOpt = None,
    model: ModelOpt = None,
    k: KOpt = None,
    history: Annotated[Path | None, typer.Option(help="JSON file of earlier turns, for follow-up questions.")] = None,
) -> None:
    """Answer from the indexed documents; every sentence footnoted and checked against its source."""
    cfg = settings()
    turns = load_history(history)
    if k:
        cfg = cfg.model_copy(update={"k": k})
    with clean_errors():
        from assistant.retrieval import check_query

        check_query(question, cfg)  # fail fast, before the model loads
        from assistant.answer import Answerer
        from assistant.llm import get_backend

        answerer = Answerer(cfg, backend=get_backend(cfg, backend, model))
        answer = None
        streamed = False
        for kind, value in answerer.stream(question, turns):
            if kind == "delta" and not as_json:
                err.print(value, end="", style="dim", soft_wrap=True)
                streamed = True
            elif kind in ("status", "redraft") and not as_json:
                if streamed:  # the draft ends its line first: "checking the answer…" comes after it
                    err.print()
                    streamed = False
                err.print(f"[dim]{value}[/]")
            elif kind == "answer":
                answer = value
        if streamed:
            err.print()
    assert answer is not None
    if as_json:
        print_json(answer.model_dump())
    else:
        render_answer(answer)


@app.command("eval")
def eval_(
    as_json: JsonOpt = False,
    report: Annotated[Path | None, typer.Option(help="Write report.md and report.html into this folder.")] = None,
    only: Annotated[str | None, typer.Option(help="Comma-separated case ids to run.")] = None,
    sample: Annotated[int | None, typer.Option(min=1, help="Run N cases spread evenly over the file (a quicker "
                                                          "check; the same N cases every time).")] = None,
    docs: Annotated[Path | None, typer.Option(help="Evaluate this folder of documents (indexed privately).")] = None,
    facts: Annotated[Path | None, typer.Option(help="Facts file (default eval/facts.yaml).")] = None,
    gates: Annotated[Path | None, typer.Option(help="Gates file (default eval/gates.yaml).")] = None,
    backend: BackendOpt = None,
    model: ModelOpt = None,
) -> None:
    """Run the groundedness suite; exit 1 when a gate fails."""
    import tempfile

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    cfg = settings()
    with clean_errors(), tempfile.TemporaryDirectory() as tmp:
        from assistant import evaluation as ev
        from assistant.answer import Answerer
        from assistant.indexing import ingest as run_ingest
        from assistant.llm import get_backend

        try:
            cases = ev.load_facts(facts or ev.EVAL_DIR / "facts.yaml")
            limits = ev.load_gates(gates or ev.EVAL_DIR / "gates.yaml")
        except ev.EvalError as exc:
            fail(str(exc))
        if only:
            wanted = {x.strip() for x in only.split(",") if x.strip()}
            unknown = wanted - {c["id"] for c in cases}
            if unknown:
                fail(f"unknown case id(s): {', '.join(sorted(unknown))}")
            cases = [c for c in cases if c["id"] in wanted]
        cases = ev.evenly(cases, sample)
        if docs is not None:
            cfg = cfg.model_copy(update={"index_dir": Path(tmp) / "index", "chroma_host": None})
            result = run_ingest([docs], cfg)
            if result.errors or not result.documents:
                fail(f"cannot index {docs}: {'; '.join(result.errors) or 'no documents'}")
        answerer = Answerer(cfg, backend=get_backend(cfg, backend, model))
        with Progress(TextColumn("[bold]eval[/] {task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeRemainingColumn(), console=err, disable=as_json or not err.is_terminal) as bar:
            task = bar.add_task("", total=len(cases))

            def progress(done: int, total: int, name: str) -> None:
                bar.update(task, completed=done, description=name)

            result_report = ev.evaluate(cases, answerer, limits, progress, subset=bool(only or sample))
    if report is not None:
        md, page = ev.write_report(result_report, report)
        err.print(f"report: {md} {page}")
    if as_json:
        print_json(result_report)
    else:
        from rich.table import Table

        table = Table(title=f"groundedness — {result_report['backend']} / {result_report['model']}, "
                            f"{result_report['n_questions']} questions")
        for col in ("metric", "value", "gate", "pass"):
            table.add_column(col)
        for name, value in result_report["metrics"].items():
            gate = result_report["gates"].get(name)
            verdict = "" if not gate else ev.gate_verdict(gate, "[green]pass[/]", "[bold red]FAIL[/]")
            table.add_row(name, "n/a" if value is None else str(value), f"{gate['kind']} {gate['gate']}" if gate
                          else "", verdict)
        out.print(table)
        out.print(f"judge: {result_report['judge']['name']}, balanced accuracy "
                  f"{result_report['judge']['balanced_accuracy']}")
        for case in result_report["cases"]:
            if case["why"]:
                out.print(f"[red]✗[/] {case['id']}: {'; '.join(case['why'])}", soft_wrap=True)
    if any(g["pass"] is False for g in result_report["gates"].values()):
        raise typer.Exit(1)


@app.command()
def verify(
    pairs: Annotated[Path, typer.Argument(help="JSONL of claim/evidence pairs: `claim`, `evidence` (text or list of "
                                                "sentences) or `quote`, optional `question`, optional label "
                                                "(`supported`/`label`: true/false, or WiCE's supported / "
                                                "partially_supported / not_supported).")],
    as_json: JsonOpt = False,
    show: Annotated[int, typer.Option(help="Print the first N disagreements with the labels.")] = 10,
    judge: Annotated[str, typer.Option(help="model: the local model reads each pair (~2 s a pair on 2 cores; the "
                                            "best balanced accuracy measured on short claims); lexical: the "
                                            "word-level judge each answer sentence gets (microseconds a pair; better "
                                            "on long claims only partly stated); strict: supported only when both "
                                            "agree (fewest unsupported claims accepted). Numbers in the README.")
                 ] = "model",
    backend: BackendOpt = None,
    model: ModelOpt = None,
) -> None:
    """Check claims against their evidence with a support judge; with labels, report its balanced accuracy (the
    mean of supported pairs accepted and unsupported pairs rejected) and speed."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    if judge not in ("lexical", "model", "strict"):
        fail(f"unknown judge {judge!r}: choose model, lexical or strict")
    with clean_errors():
        from assistant.evaluation import judge_pairs, read_pairs
        from assistant.verify import Judge, ModelJudge, StrictJudge, SupportJudge

        rows = read_pairs(pairs)
        chosen: Judge = SupportJudge()
        if judge != "lexical":
            from assistant.llm import get_backend

            reader = ModelJudge(get_backend(settings(), backend, model))
            chosen = reader if judge == "model" else StrictJudge(SupportJudge(), reader)
        with Progress(TextColumn("[bold]verify[/]"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                      console=err, disable=judge == "lexical" or not err.is_terminal) as bar:
            task = bar.add_task("", total=len(rows))
            report = judge_pairs(chosen, rows, lambda done: bar.update(task, completed=done))
    if as_json:
        print_json(report)
        return
    out.print(f"judge: {report['judge']}; {report['pairs']} pairs, {report['ms_per_pair']} ms a pair")
    if "balanced_accuracy" in report:
        out.print(f"balanced accuracy {report['balanced_accuracy']} (supported accepted "
                  f"{report['supported_accepted']}, unsupported rejected {report['unsupported_rejected']})")
    wrong = [(r, v) for r, v in zip(rows, report["verdicts"], strict=True) if r[3] is not None
             and r[3] != v["supported"]]
    for (claim, evidence, _, label), v in wrong[:show]:
        out.print(f"[red]✗[/] labelled {'supported' if label else 'not supported'}, judged {v['reason']}: "
                  f"{escape(claim)} [dim]| {escape(evidence[:200])}[/]", soft_wrap=True)
    if "balanced_accuracy" not in report:
        for (claim, _, _, _), v in zip(rows, report["verdicts"], strict=True):
            out.print(f"{'✓' if v['supported'] else '✗'} {escape(claim)} [dim]({v['reason']})[/]", soft_wrap=True)


@app.command()
def brief(
    topic: Annotated[str, typer.Argument(help="What the brief is about, e.g. 'shipping through the strait'.")],
    out_path: Annotated[
        Path | None, typer.Option("--out", help="Output file; the extension picks the format: .md, .pdf or .docx.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the structured brief as JSON.")] = False,
    backend: BackendOpt = None,
    model: ModelOpt = None,
) -> None:
    """Write a one-page brief (BLUF, key judgments, evidence, conflicts, gaps, sources), every fact footnoted."""
    cfg = settings()
    target = out_path
    if target is None and not as_json:
        target = Path(f"brief-{''.join(c if c.isalnum() else '-' for c in topic.lower()).strip('-')[:60] or 'x'}.pdf")
    if target is not None and target.suffix.lower() not in (".md", ".pdf", ".docx"):
        fail(f"unknown brief format {target.suffix or '(none)'!r}: use --out NAME.md, NAME.pdf or NAME.docx")
    with clean_errors():
        from assistant import brief as briefing
        from assistant import render
        from assistant.llm import get_backend

        try:
            writer = briefing.BriefWriter(cfg, backend=get_backend(cfg, backend, model))
            result = writer.write(topic, progress=None if as_json else lambda msg: err.print(f"[dim]{msg}[/]"))
            if target is not None:
                result = render.write(result, target)
        except briefing.BriefError as exc:
            fail(str(exc))
    if as_json:
        print_json({**result.model_dump(), "output": str(target) if target else None})
        return
    err.print(f"[dim]{result.llm_calls} LLM calls, {result.timings.get('total_s', 0):.1f} s"
              + (f"; trimmed to fit one page: {', '.join(result.trimmed)}" if result.trimmed else "") + "[/]")
    out.print(f"wrote {target}")


@app.command()
def doctor(
    as_json: JsonOpt = False,
    probe: Annotated[bool, typer.Option("--probe", help="(Re)measure which llama.cpp runtime runs fastest on "
                                        "this CPU and remember it (about 30 s).")] = False,
) -> None:
    """Show settings and what is configured and reachable: index, embedder, LLM backends, model file, the CPU and
    which llama.cpp runtime runs on it."""
    cfg = settings()
    with clean_errors():
        from assistant.diagnostics import report

        info = report(cfg, probe)
    if as_json:
        print_json(info)
        return
    for section, values in info.items():
        out.print(f"[bold]{section}[/]")
        for key, value in values.items():
            out.print(f"  {key:<22} {value}", soft_wrap=True)


@app.command()
def chat(
    host: Annotated[str | None, typer.Option(help="Bind address (default from settings: 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(min=1, max=65535, help="Port (default from settings: 7860).")] = None,
    share: Annotated[bool, typer.Option("--share", help="Also open a public Gradio link (needs --auth).")] = False,
    auth: Annotated[str | None, typer.Option("--auth", help="user:pass required to open the chat.")] = None,
) -> None:
    """Open the browser chat: streamed, footnoted answers and a Documents tab to add files."""
    import ipaddress

    cfg = settings()
    host = host or cfg.chat_host
    port = port or cfg.chat_port
    secret = auth or cfg.chat_auth
    credentials: tuple[str, str] | None = None
    if secret:
        user, sep, password = secret.partition(":")
        if not (sep and user and password):
            fail("--auth must be user:pass (both non-empty)")
        credentials = (user, password)
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if credentials is None and (share or not loopback):
        where = "a public share link" if share else f"non-loopback host {host}"
        fail(f"refusing to serve on {where} without --auth user:pass (or BRIEFING_CHAT_AUTH)")
    with clean_errors():
        from assistant.chat import launch

        try:
            launch(cfg, host, port, share, credentials)
        except OSError as exc:
            fail(f"cannot serve on {host}:{port}: {exc}")


def main() -> None:
    """Console-script entry point."""
    app()



if __name__ == "__main__":
    main()
