"""LLM backends with constrained JSON output and token streaming.

- Embedded: llama.cpp in-process through `xllamacpp` (prebuilt wheel). One server per model per
  process, one slot, so the fixed system prompt stays in the KV cache between questions.
- Ollama: the official `ollama` client, `format` = the same JSON schema.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Protocol

from assistant.config import Settings
from assistant.model_files import ensure_model

Message = dict[str, str]


class LLMError(Exception):
    """The model backend failed; the message names the fix."""


@dataclass
class Stats:
    """Filled in while a generation streams; read after it ends."""

    prompt_tokens: int = 0
    generated_tokens: int = 0
    prompt_per_s: float = 0.0
    generate_per_s: float = 0.0
    cached_tokens: int = 0
    first_token_s: float | None = None
    total_s: float = 0.0
    incomplete: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


class Backend(Protocol):
    name: str
    model: str

    def stream(self, messages: list[Message], schema: dict[str, Any], max_tokens: int, stats: Stats) -> Iterator[str]:
        """Yield text deltas of a JSON document that matches `schema`."""
        ...


_DONE = object()


@lru_cache(maxsize=2)
def _server(path: str, n_ctx: int, n_threads: int) -> Any:
    """Load a GGUF model once per process (2–3 s for the 1.5B model)."""
    import xllamacpp as xlc

    params = xlc.CommonParams()
    params.model.path = path
    params.n_ctx = n_ctx
    params.n_parallel = 1
    params.cpuparams.n_threads = n_threads
    params.cpuparams_batch.n_threads = n_threads
    params.verbosity = -1
    params.log_json = False
    return xlc.Server(params)


def compact_grammar(schema: dict[str, Any]) -> str:
    """LLGuidance grammar for a JSON schema with no optional whitespace: fewer tokens to generate."""
    bounded = dict(schema)
    bounded["x-guidance"] = {"whitespace_flexible": False, "item_separator": ",", "key_separator": ":"}
    return "%llguidance {}\nstart: %json " + json.dumps(bounded)


class EmbeddedBackend:
    """llama.cpp in this process; requests are serialised (one slot keeps the prompt cache warm)."""

    name = "embedded"
    _lock = threading.Lock()

    def __init__(self, cfg: Settings, model: str | None = None):
        self.model = model or cfg.embedded_model
        self.path = ensure_model(self.model, cfg.model_cache_dir)
        self.cfg = cfg
        self.server = _server(str(self.path), cfg.n_ctx, cfg.n_threads)

    def stream(self, messages: list[Message], schema: dict[str, Any], max_tokens: int, stats: Stats) -> Iterator[str]:
        request = {
            "messages": messages,
            "max_tokens": max_tokens,
            "temperature": 0,
            "stream": True,
            "cache_prompt": True,
            "grammar": compact_grammar(schema),
        }
        chunks: queue.Queue[Any] = queue.Queue()
        cancel = threading.Event()
        t0 = time.perf_counter()

        def on_chunk(chunk: Any) -> bool:
            chunks.put(chunk)
            return cancel.is_set()

        def run() -> None:
            with self._lock:
                try:
                    result = self.server.handle_chat_completions(request, on_chunk)
                    if isinstance(result, dict) and result.get("code"):
                        chunks.put(LLMError(f"llama.cpp: {result.get('message', result)}"))
                except Exception as exc:  # surfaced to the consumer thread
                    chunks.put(LLMError(f"llama.cpp failed: {exc}"))
                finally:
                    chunks.put(_DONE)

        worker = threading.Thread(target=run, daemon=True)
        worker.start()
        try:
            while (chunk := chunks.get()) is not _DONE:
                if isinstance(chunk, LLMError):
                    raise chunk
                if not isinstance(chunk, dict):
                    continue
                if "error" in chunk:
                    raise LLMError(f"llama.cpp: {chunk['error']}")
                _read_timings(chunk.get("timings"), stats)
                for choice in chunk.get("choices") or []:
                    delta = (choice.get("delta") or {}).get("content")
                    if delta:
                        if stats.first_token_s is None:
                            stats.first_token_s = time.perf_counter() - t0
                        yield delta
        finally:
            cancel.set()  # llama.cpp stops at the next token; wait so no native work outlives us
            worker.join()
            stats.total_s = time.perf_counter() - t0


def _read_timings(timings: dict[str, Any] | None, stats: Stats) -> None:
    if not timings:
        return
    stats.prompt_tokens = int(timings.get("prompt_n", 0)) + int(timings.get("cache_n", 0))
    stats.cached_tokens = int(timings.get("cache_n", 0))
    stats.generated_tokens = int(timings.get("predicted_n", 0))
    stats.prompt_per_s = float(timings.get("prompt_per_second", 0.0))
    stats.generate_per_s = float(timings.get("predicted_per_second", 0.0))


class OllamaBackend:
    """An Ollama server via the official client; errors name the fix."""

    name = "ollama"

    def __init__(self, cfg: Settings, model: str | None = None):
        import ollama

        self.model = model or cfg.ollama_model
        self.host = cfg.ollama_host
        self.client = ollama.Client(host=cfg.ollama_host, timeout=cfg.ollama_timeout)
        self.timeout = cfg.ollama_timeout

    def _explain(self, exc: Exception) -> LLMError:
        import httpx
        import ollama

        if isinstance(exc, ollama.ResponseError) and exc.status_code == 404:
            return LLMError(
                f"Ollama at {self.host} has no model {self.model!r}: "
                f"run `ollama pull {self.model}` or use --backend embedded"
            )
        if isinstance(exc, (httpx.TimeoutException, TimeoutError)):
            return LLMError(f"Ollama at {self.host} did not answer within {self.timeout:g} s (BRIEFING_OLLAMA_TIMEOUT)")
        if isinstance(exc, (ConnectionError, httpx.ConnectError, httpx.RemoteProtocolError, OSError)):
            return LLMError(
                f"Ollama server not reachable at {self.host}: start it (`ollama serve`) or use --backend embedded"
            )
        return LLMError(f"Ollama error: {exc}")

    def stream(self, messages: list[Message], schema: dict[str, Any], max_tokens: int, stats: Stats) -> Iterator[str]:
        t0 = time.perf_counter()
        received = False
        try:
            parts = self.client.chat(
                model=self.model,
                messages=messages,
                format=schema,
                stream=True,
                options={"temperature": 0, "num_predict": max_tokens},
            )
            for part in parts:
                delta = part.message.content or ""
                if delta:
                    received = True
                    if stats.first_token_s is None:
                        stats.first_token_s = time.perf_counter() - t0
                    yield delta
                if part.done:
                    stats.prompt_tokens = part.prompt_eval_count or 0
                    stats.generated_tokens = part.eval_count or 0
                    if part.prompt_eval_duration:
                        stats.prompt_per_s = stats.prompt_tokens / (part.prompt_eval_duration / 1e9)
                    if part.eval_duration:
                        stats.generate_per_s = stats.generated_tokens / (part.eval_duration / 1e9)
        except Exception as exc:
            import ollama

            if isinstance(exc, LLMError):
                raise
            stats.incomplete = received
            if received and not isinstance(exc, ollama.ResponseError):
                raise LLMError(
                    f"Ollama at {self.host} closed the connection mid-answer ({type(exc).__name__})"
                ) from None
            if isinstance(exc, (ollama.ResponseError, ConnectionError, OSError)) or "httpx" in type(exc).__module__:
                raise self._explain(exc) from None
            raise
        finally:
            stats.total_s = time.perf_counter() - t0


def ollama_status(cfg: Settings, timeout: float = 1.0) -> str:
    """'ready', or why Ollama cannot be used (down, model missing)."""
    import httpx

    try:
        resp = httpx.get(f"{cfg.ollama_host.rstrip('/')}/api/tags", timeout=timeout)
        resp.raise_for_status()
        names = {m.get("name") or m.get("model") for m in resp.json().get("models", [])}
    except (httpx.HTTPError, ValueError) as exc:
        return f"not reachable ({type(exc).__name__})"
    wanted = cfg.ollama_model
    if wanted in names or f"{wanted}:latest" in names:
        return "ready"
    return f"reachable, but model {wanted!r} missing (ollama pull {wanted})"


def get_backend(cfg: Settings, choice: str | None = None, model: str | None = None) -> Backend:
    """auto = Ollama when it answers and has the model, else the embedded model."""
    choice = choice or cfg.backend
    if choice not in ("auto", "embedded", "ollama"):
        raise LLMError(f"unknown backend {choice!r}: choose auto, embedded or ollama")
    if choice == "ollama":
        return OllamaBackend(cfg, model)
    if choice == "auto" and ollama_status(cfg, timeout=0.5) == "ready":
        return OllamaBackend(cfg, model)
    return EmbeddedBackend(cfg, model)
