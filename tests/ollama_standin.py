"""A STAND-IN for the Ollama server, used by the tests because the Ollama binary cannot be installed here.

This is not Ollama. It is a small stdlib HTTP server (`http.server.ThreadingHTTPServer`, 127.0.0.1, a free
port, a daemon thread) that speaks Ollama's HTTP API closely enough for the official `ollama` Python client
(0.6.3) to parse every answer: `GET /api/tags`, `POST /api/show`, `POST /api/chat`, `POST /api/generate`,
`POST /api/embed` (plus `GET /`, `GET /api/version`). The answers are real: by default generation is
delegated to the project's embedded llama.cpp model (`assistant.llm.EmbeddedBackend`, SmolLM2-135M for speed)
and embeddings to the project's ONNX MiniLM (`assistant.embeddings.MiniLMEmbedding`, 384 dimensions).
Tests may pass their own `generate` / `embed` callables instead.

Wire details matched (read from ollama/_client.py and ollama/_types.py):
- streaming answers are NDJSON (`application/x-ndjson`) sent with chunked transfer encoding, one JSON object per
  line; the client reads them with `iter_lines()` and raises `ResponseError` on a line with an `error` key;
- `stream` defaults to true when the request omits it (as in Ollama); the client always sends it explicitly;
- the last line has `done: true`, `done_reason` ("stop" or "length") and the counters `prompt_eval_count`,
  `eval_count` and durations in nanoseconds (`total_duration`, `load_duration`, `prompt_eval_duration`,
  `eval_duration`);
- errors are `{"error": "..."}` with a status code; an unknown model is HTTP 404 `model 'x' not found`, which
  the client turns into `ResponseError(status_code=404)`;
- `/api/show` must carry a `model_info` key (the client's `ShowResponse.modelinfo` is a required alias field);
- `/api/tags` `modified_at` must be an ISO-8601 timestamp (the client parses it into a datetime);
- a model name without a tag means `:latest`, as in Ollama.

Fault injection for hardening tests: `delay_s` (sleep before answering any request: a slow or hung server) and
`die_after_chunks=N` (close the connection abruptly after N NDJSON lines of a streamed answer).

Limits of the default backing: `EmbeddedBackend` always decodes greedily (temperature 0, which is what the
project's client sends) and always under a grammar; `options.temperature` is passed to custom `generate`
callables but the default one cannot vary it, and a request without `format` is constrained to "any JSON".
"""

from __future__ import annotations

import contextlib
import itertools
import json
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from functools import lru_cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

from assistant.llm import Stats


class GenerateFn(Protocol):
    """Text deltas for a chat; `schema` (None = unconstrained) must constrain them; fill `stats` if possible."""

    def __call__(
        self,
        messages: list[dict[str, str]],
        schema: dict[str, Any] | None,
        max_tokens: int,
        temperature: float,
        stats: Stats,
        /,
    ) -> Iterator[str]: ...


# embed(texts) -> one vector per text.
EmbedFn = Callable[[list[str]], list[list[float]]]

DEFAULT_NUM_PREDICT = 512  # Ollama's -1 ("until the context is full") needs a bound here
STANDIN_MODEL = "smollm2-135m"


def canonical(name: str) -> str:
    """Ollama's name normalisation for what matters here: no tag means `:latest`."""
    return name if ":" in name.rsplit("/", 1)[-1] else f"{name}:latest"


@lru_cache(maxsize=2)
def _embedded_backend(model: str) -> Any:
    from pathlib import Path

    from assistant.config import Settings
    from assistant.llm import EmbeddedBackend

    # In-process runtime: the llama-server binary dies with SIGILL on SmolLM2's Q4_1 weights on this CPU.
    cfg = Settings(index_dir=Path("index"), embedded_model=model, embedded_runtime="xllamacpp")  # type: ignore[arg-type]
    return EmbeddedBackend(cfg, model=model)


@lru_cache(maxsize=1)
def _minilm() -> Any:
    from assistant.embeddings import MiniLMEmbedding

    return MiniLMEmbedding()


def embedded_generate(model: str = STANDIN_MODEL) -> GenerateFn:
    """Default backing: the project's embedded llama.cpp model (loaded on first use, once per process)."""

    def generate(
        messages: list[dict[str, str]], schema: dict[str, Any] | None, max_tokens: int, temperature: float, stats: Stats
    ) -> Iterator[str]:
        backend = _embedded_backend(model)
        # EmbeddedBackend decodes greedily (temperature 0) and always under a grammar; {} = any JSON value.
        yield from backend.stream(messages, schema if schema is not None else {}, max_tokens, stats)

    return generate


def minilm_embed(texts: list[str]) -> list[list[float]]:
    """Default embedding backing: the project's ONNX MiniLM (384 dimensions)."""
    return [list(map(float, v)) for v in _minilm().get_text_embedding_batch(texts)]


class OllamaStandin:
    """STAND-IN for the Ollama binary (which cannot be installed here), speaking Ollama's HTTP API.

    Answers come from the embedded llama.cpp model (and ONNX MiniLM for embeddings) unless the test passes other
    callables, so they are real model output, not canned text.

        with OllamaStandin(models={"qwen2.5-coder:1.5b": "completion", "all-minilm": "embedding"}) as s:
            client = ollama.Client(host=s.url)

    `models`: names the server "has" (a list means all are chat models; a mapping gives each one's capability,
    "completion" or "embedding"). `delay_s`: sleep before answering every request. `die_after_chunks`: close the
    connection abruptly after that many NDJSON lines of a streamed answer. `requests` records every
    (path, JSON body) received.
    """

    def __init__(
        self,
        models: Mapping[str, str] | Iterable[str] = (),
        *,
        generate: GenerateFn | None = None,
        embed: EmbedFn | None = None,
        delay_s: float = 0.0,
        die_after_chunks: int | None = None,
    ) -> None:
        pairs = models.items() if isinstance(models, Mapping) else ((m, "completion") for m in models)
        self.models: dict[str, str] = {canonical(name): kind for name, kind in pairs}
        self.generate: GenerateFn = generate or embedded_generate()
        self.embed: EmbedFn = embed or minilm_embed
        self.delay_s = delay_s
        self.die_after_chunks = die_after_chunks
        self.requests: list[tuple[str, Any]] = []
        self._stopping = threading.Event()
        self._idle = threading.Condition()
        self._generating = 0
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self._httpd is not None, "not started"
        return f"http://127.0.0.1:{self._httpd.server_port}"

    def start(self) -> OllamaStandin:
        httpd = _Server(("127.0.0.1", 0), _Handler)
        httpd.standin = self  # type: ignore[attr-defined]
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="ollama-standin", daemon=True
        )
        self._thread.start()
        return self

    def stop(self, wait_s: float = 30.0) -> None:
        """Stop serving, then wait for generations in flight so no llama.cpp thread outlives its caller."""
        self._stopping.set()  # wakes handlers sleeping in delay_s and ends streams early
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self._idle:
            self._idle.wait_for(lambda: self._generating == 0, timeout=wait_s)
        # A cancelled EmbeddedBackend request keeps its llama.cpp worker (which holds this lock) running until
        # the next token; a process that exits meanwhile crashes (SIGSEGV/SIGABRT). Wait for it to finish.
        from assistant.llm import EmbeddedBackend

        if EmbeddedBackend._lock.acquire(timeout=wait_s):
            EmbeddedBackend._lock.release()

    def __enter__(self) -> OllamaStandin:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hung up (timeout tests, dropped streams) is expected; anything else is printed."""
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive and chunked streaming, like Ollama (Go net/http)
    server_version = "ollama-standin"

    @property
    def standin(self) -> OllamaStandin:
        return self.server.standin  # type: ignore[attr-defined,no-any-return]

    def log_message(self, *args: Any) -> None:
        """Quiet: no access log in test output."""

    # ---- plumbing

    def _send_json(self, status: int, obj: Any) -> None:
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _error(self, status: int, message: str) -> None:
        self._send_json(status, {"error": message})

    def _read_json(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        return json.loads(raw) if raw.strip() else {}

    def _delay(self) -> bool:
        """Fault injection: be slow. False when the stand-in is stopping (then answer nothing)."""
        if self.standin.delay_s > 0 and self.standin._stopping.wait(self.standin.delay_s):
            self.close_connection = True
            return False
        return True

    def _model(self, body: dict[str, Any], need: str) -> str | None:
        """The canonical model name, or None after answering with the error Ollama gives."""
        name = body.get("model")
        if not isinstance(name, str) or not name:
            self._error(400, "model is required")
            return None
        full = canonical(name)
        kind = self.standin.models.get(full)
        if kind is None:
            self._error(404, f"model '{name}' not found")
            return None
        if kind != need:
            what = "embeddings" if need == "embedding" else "generate"
            self._error(400, f'"{name}" does not support {what}')
            return None
        return full

    # ---- routes

    def do_HEAD(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self) -> None:
        self.standin.requests.append((self.path, None))
        if not self._delay():
            return
        if self.path == "/":
            body = b"Ollama is running"
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        elif self.path == "/api/version":
            self._send_json(200, {"version": "0.0.0-standin"})
        elif self.path == "/api/tags":
            self._send_json(
                200, {"models": [self._model_entry(name, kind) for name, kind in self.standin.models.items()]}
            )
        else:
            self._error(404, "404 page not found")

    def do_POST(self) -> None:
        try:
            body = self._read_json()
        except ValueError as exc:
            self._error(400, f"invalid JSON: {exc}")
            return
        self.standin.requests.append((self.path, body))
        if not isinstance(body, dict):
            self._error(400, "invalid request body")
            return
        if not self._delay():
            return
        route = {
            "/api/chat": self._chat,
            "/api/generate": self._generate,
            "/api/embed": self._embed,
            "/api/show": self._show,
        }.get(self.path)
        if route is None:
            self._error(404, "404 page not found")
        else:
            route(body)

    def _model_entry(self, name: str, kind: str) -> dict[str, Any]:
        return {
            "name": name,
            "model": name,
            "modified_at": "2025-01-01T00:00:00Z",
            "size": 0,
            "digest": "0" * 64,
            "details": self._details(kind),
        }

    @staticmethod
    def _details(kind: str) -> dict[str, Any]:
        family = "bert" if kind == "embedding" else "llama"
        return {
            "parent_model": "",
            "format": "gguf",
            "family": family,
            "families": [family],
            "parameter_size": "stand-in",
            "quantization_level": "stand-in",
        }

    def _show(self, body: dict[str, Any]) -> None:
        name = body.get("model") or body.get("name")
        kind = self.standin.models.get(canonical(name)) if isinstance(name, str) and name else None
        if kind is None:
            self._error(404, f"model '{name}' not found")
            return
        arch = "bert" if kind == "embedding" else "llama"
        info: dict[str, Any] = {"general.architecture": arch, "general.basename": "ollama-standin"}
        if kind == "embedding":
            info["bert.embedding_length"] = 384
        self._send_json(
            200,
            {
                "modelfile": "# stand-in for Ollama: no Modelfile",
                "parameters": "",
                "template": "{{ .Prompt }}",
                "details": self._details(kind),
                "model_info": info,  # required by ollama.ShowResponse (alias of `modelinfo`)
                "capabilities": [kind],
                "modified_at": "2025-01-01T00:00:00Z",
            },
        )

    def _embed(self, body: dict[str, Any]) -> None:
        if self._model(body, "embedding") is None:
            return
        texts = body.get("input", "")
        texts = [texts] if isinstance(texts, str) else list(texts)
        t0 = time.perf_counter_ns()
        vectors = self.standin.embed(texts) if texts else []
        self._send_json(
            200,
            {
                "model": body["model"],
                "embeddings": vectors,
                "total_duration": time.perf_counter_ns() - t0,
                "load_duration": 0,
                "prompt_eval_count": sum(len(t.split()) for t in texts),
            },
        )

    def _chat(self, body: dict[str, Any]) -> None:
        messages = [
            {"role": str(m.get("role", "user")), "content": str(m.get("content") or "")}
            for m in body.get("messages") or []
            if isinstance(m, dict)
        ]
        self._answer(body, messages, lambda text: {"message": {"role": "assistant", "content": text}})

    def _generate(self, body: dict[str, Any]) -> None:
        prompt = body.get("prompt") or ""
        if not prompt:  # Ollama: an empty prompt just loads the model
            if self._model(body, "completion") is not None:
                self._send_json(
                    200,
                    {"model": body["model"], "created_at": _now(), "response": "", "done": True, "done_reason": "load"},
                )
            return
        messages = ([{"role": "system", "content": body["system"]}] if body.get("system") else []) + [
            {"role": "user", "content": prompt}
        ]
        self._answer(body, messages, lambda text: {"response": text})

    def _answer(
        self, body: dict[str, Any], messages: list[dict[str, str]], payload: Callable[[str], dict[str, Any]]
    ) -> None:
        """Shared by /api/chat and /api/generate: run the backing, then stream NDJSON or send one object."""
        if self._model(body, "completion") is None:
            return
        standin = self.standin
        with standin._idle:
            standin._generating += 1
        try:
            self._generate_answer(body, messages, payload)
        finally:
            with standin._idle:
                standin._generating -= 1
                standin._idle.notify_all()

    def _generate_answer(
        self, body: dict[str, Any], messages: list[dict[str, str]], payload: Callable[[str], dict[str, Any]]
    ) -> None:
        model = body["model"]
        options = body.get("options") or {}
        num_predict = options.get("num_predict")
        max_tokens = DEFAULT_NUM_PREDICT if num_predict is None or int(num_predict) < 0 else int(num_predict)
        temperature = float(options.get("temperature", 0.8))  # Ollama's default temperature
        fmt = body.get("format")
        schema: dict[str, Any] | None
        if isinstance(fmt, dict):
            schema = fmt
        elif fmt == "json":
            schema = {"type": "object"}
        else:
            schema = None
        stream = body.get("stream", True) is not False  # Ollama streams unless told not to

        t0 = time.perf_counter_ns()
        stats = Stats()
        try:
            deltas = self.standin.generate(messages, schema, max_tokens, temperature, stats)
        except Exception as exc:
            self._error(500, str(exc))
            return

        def final(text: str, n_deltas: int) -> dict[str, Any]:
            generated = stats.generated_tokens or n_deltas
            fresh_prompt = max(stats.prompt_tokens - stats.cached_tokens, 0)
            return {
                "model": model,
                "created_at": _now(),
                **payload(text),
                "done": True,
                "done_reason": "length" if generated >= max_tokens else "stop",
                "total_duration": time.perf_counter_ns() - t0,
                "load_duration": 0,
                "prompt_eval_count": stats.prompt_tokens,
                "prompt_eval_duration": int(fresh_prompt / stats.prompt_per_s * 1e9) if stats.prompt_per_s else 0,
                "eval_count": generated,
                "eval_duration": int(generated / stats.generate_per_s * 1e9) if stats.generate_per_s else 0,
            }

        if not stream:
            try:
                parts = list(deltas)
            except Exception as exc:
                self._error(500, str(exc))
                return
            self._send_json(200, final("".join(parts), len(parts)))
            return

        # Headers go out with the first token, as in Ollama; a failure before it is a plain HTTP 500.
        it = iter(deltas)
        try:
            head = [next(it)]
        except StopIteration:
            head = []
        except Exception as exc:
            self._error(500, str(exc))
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        lines = n_deltas = 0
        try:
            try:
                for delta in itertools.chain(head, it):
                    n_deltas += 1
                    self._line({"model": model, "created_at": _now(), **payload(delta), "done": False})
                    lines += 1
                    if self._maybe_die(lines):
                        return
                    if self.standin._stopping.is_set():  # shutting down: drop the stream like a killed server
                        self.close_connection = True
                        return
            except OSError:
                raise
            except Exception as exc:  # Ollama reports a mid-stream failure as an error line
                self._line({"error": str(exc)})
            else:
                self._line(final("", n_deltas))
                if self._maybe_die(lines + 1):
                    return
            self.wfile.write(b"0\r\n\r\n")  # last chunk
            self.wfile.flush()
        except OSError:  # the client went away
            self.close_connection = True
        finally:
            close = getattr(deltas, "close", None)
            if close is not None:
                close()  # stops the backing generator (EmbeddedBackend cancels its llama.cpp request)

    def _line(self, obj: dict[str, Any]) -> None:
        """One NDJSON line as one HTTP chunk."""
        data = json.dumps(obj).encode() + b"\n"
        self.wfile.write(b"%X\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def _maybe_die(self, lines: int) -> bool:
        """Fault injection: drop the connection without finishing the chunked body."""
        n = self.standin.die_after_chunks
        if n is None or lines < n:
            return False
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)
        return True
