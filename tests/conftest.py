"""Shared fixtures: isolated settings and a real index of the seeds (real Chroma, real embedder)."""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

import pytest

os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("BRIEFING_SEARCH_KEEP_WARM_SECONDS", "0")  # no background searchers but test_searcher.py's

from assistant.config import Settings  # noqa: E402
from assistant.store import StoredChunk  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SEEDS = ROOT / "seeds"
SEED_000 = SEEDS / "000_4f251fb10e67f7e9.txt"
SEED_002 = SEEDS / "002_66b593ec0b11b73e.txt"


def make_settings(tmp: Path, **overrides: object) -> Settings:
    """Settings pointing at a private index; nothing from the user's env or briefing.toml leaks in."""
    base: dict[str, object] = {
        "index_dir": tmp / "index",
        "docs_dir": SEEDS,
        "backend": "embedded",
        "ollama_host": f"http://127.0.0.1:{free_port()}",  # nothing listens: auto never picks Ollama
    }
    base.update(overrides)
    return Settings(**base)  # type: ignore[arg-type]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def cfg(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture(scope="session")
def seed_cfg(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """A session-wide index of the seeds, built once."""
    from assistant.indexing import ingest

    tmp = tmp_path_factory.mktemp("seedindex")
    settings = make_settings(tmp)
    report = ingest([SEEDS], settings)
    assert report.errors == [] and report.embedded > 0
    return settings


@pytest.fixture
def docs_copy(tmp_path: Path) -> Path:
    """A private copy of the seeds to modify."""
    dest = tmp_path / "docs"
    shutil.copytree(SEEDS, dest)
    return dest


def stored_chunks(cfg: Settings) -> list[StoredChunk]:
    """Every chunk Chroma holds for this index (committed or not), read back through the public `Index.get`."""
    from assistant.embeddings import get_embedder
    from assistant.store import Index

    index = Index(cfg, get_embedder(cfg).model_name)
    return index.get(index.col.get(include=[])["ids"])[0]
