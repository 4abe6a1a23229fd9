"""`briefing doctor`: one screen of what is configured and reachable."""

from __future__ import annotations

import sqlite3
from typing import Any

from assistant.config import Settings, config_file


def _index_section(cfg: Settings) -> dict[str, Any]:
    """The dense index (Chroma) beside the lexical one (SQLite FTS5), and whether they hold the same passages."""
    from assistant import searcher
    from assistant.embeddings import get_embedder
    from assistant.lexical import LexicalError, LexicalIndex, lexical_path
    from assistant.store import Index, StoreError, index_size_bytes

    embedder = get_embedder(cfg)
    where = f"{cfg.chroma_host}:{cfg.chroma_port}" if cfg.chroma_host else str(cfg.index_dir)
    section: dict[str, Any] = {"location": where}
    try:
        index = Index(cfg, embedder.model_name, create=False)
        manifest = index.manifest()
        committed = sum(int(m["n_chunks"]) for m in manifest.values())
        section.update(documents=len(manifest), chunks=index.count(), size_mb=round(index_size_bytes(cfg) / 1e6, 2))
    except StoreError as exc:
        section["status"] = str(exc)
        committed = None
    section["embedding_model"] = embedder.model_name
    section["searcher"] = searcher.status(cfg)
    path = lexical_path(cfg)
    section["lexical engine"] = "SQLite FTS5 (BM25)"
    section["lexical location"] = str(path)
    if not path.exists():
        section["lexical status"] = "not built yet (the next search or ingest builds it from Chroma)"
        return section
    try:
        lexical = LexicalIndex(path)
        passages = lexical.count()
        section.update({"lexical passages": passages, "lexical size_mb": round(lexical.size_bytes() / 1e6, 2)})
    except (LexicalError, sqlite3.DatabaseError) as exc:
        section["lexical status"] = f"unreadable ({exc}): the next search rebuilds it, or `briefing ingest --repair`"
        return section
    if committed is not None and passages != committed:
        section["lexical status"] = (f"DISAGREES: {passages} passages where Chroma has {committed} committed; "
                                     "the next search re-syncs it, or run `briefing ingest --repair`")
    elif committed is not None and section["chunks"] != committed:
        section["lexical status"] = (f"in line; Chroma also holds {section['chunks'] - committed} chunks of "
                                     "uncommitted versions (an interrupted ingest): `briefing ingest --repair` "
                                     "drops them")
    else:
        section["lexical status"] = "in line with Chroma"
    return section


def _llm_section(cfg: Settings) -> dict[str, Any]:
    from assistant.llm import ollama_status
    from assistant.model_files import model_status

    status = model_status(cfg.embedded_model, cfg.model_cache_dir)
    return {
        "backend (setting)": cfg.backend,
        "embedded model": cfg.embedded_model,
        "embedded model file": status["path"],
        "embedded checksum": status["checksum"],
        "ollama host": cfg.ollama_host,
        "ollama model": cfg.ollama_model,
        "ollama status": ollama_status(cfg),
    }


def _runtime_section(cfg: Settings, probe: bool) -> dict[str, Any]:
    """The CPU, each llama.cpp runtime's status on it, and which one the embedded model uses and why."""
    from assistant import runtimes
    from assistant.llm import LLMError, notice

    key, cpu, probes = runtimes.remembered(cfg, cfg.embedded_model)
    section: dict[str, Any] = {"cpu": cpu.model, "cpu flags": " ".join(cpu.flags) or "none of the SIMD flags known"}
    try:
        choice = (runtimes.choose(cfg, cfg.embedded_model, notice, refresh=True) if probe
                  else runtimes.known_choice(cfg, cfg.embedded_model))
        in_use = f"{choice.runtime} ({choice.reason})" if choice else \
            "decided at the first answer, measured on this CPU (or now: `briefing doctor --probe`)"
    except LLMError as exc:
        choice, in_use = None, f"none: {exc}"
    probes = choice.probes if choice else probes
    for name in runtimes.RUNTIMES:
        version = runtimes.runtime_version(name, cfg)
        status = "not installed" if version is None else probes[name].describe() if name in probes \
            else "not checked on this CPU yet (`briefing doctor --probe`)"
        section[name] = f"{version or '-'}: {status}"
    section["in use"] = in_use
    section["remembered in"] = f"{runtimes.memory_path(cfg)} (CPU key {key.split('|')[0]})"
    return section


def report(cfg: Settings, probe: bool = False) -> dict[str, dict[str, Any]]:
    """Sections: settings, index, llm, runtime. Values are plain strings/numbers for text or JSON."""
    settings = {k: str(v) for k, v in cfg.model_dump().items()}
    settings["config file"] = f"{config_file()} ({'found' if config_file().exists() else 'not present'})"
    return {"settings": settings, "index": _index_section(cfg), "llm": _llm_section(cfg),
            "runtime": _runtime_section(cfg, probe)}
