"""`briefing doctor`: one screen of what is configured and reachable."""

from __future__ import annotations

from typing import Any

from assistant.config import Settings, config_file


def _index_section(cfg: Settings) -> dict[str, Any]:
    from assistant.embeddings import get_embedder
    from assistant.store import Index, StoreError, index_size_bytes

    embedder = get_embedder(cfg)
    where = f"{cfg.chroma_host}:{cfg.chroma_port}" if cfg.chroma_host else str(cfg.index_dir)
    section: dict[str, Any] = {"location": where}
    try:
        index = Index(cfg, embedder.model_name, create=False)
        versions = index.doc_versions()
        section.update(documents=len(versions), chunks=index.count(), size_mb=round(index_size_bytes(cfg) / 1e6, 2))
    except StoreError as exc:
        section["status"] = str(exc)
    section["embedding_model"] = embedder.model_name
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


def report(cfg: Settings) -> dict[str, dict[str, Any]]:
    """Sections: settings, index, llm. Values are plain strings/numbers for text or JSON."""
    settings = {k: str(v) for k, v in cfg.model_dump().items()}
    settings["config file"] = f"{config_file()} ({'found' if config_file().exists() else 'not present'})"
    return {"settings": settings, "index": _index_section(cfg), "llm": _llm_section(cfg)}
