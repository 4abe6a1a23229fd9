"""The project's Ollama client code, tested against a STAND-IN Ollama server.

The Ollama binary cannot be installed here, so `tests/ollama_standin.py` plays the server: a stdlib HTTP server
speaking Ollama's HTTP API (`/api/tags`, `/api/show`, `/api/chat`, `/api/generate`, `/api/embed`) closely enough
for the official `ollama` client. It is not Ollama, but its answers are real: generation comes from the embedded
llama.cpp model (SmolLM2-135M, served under the Ollama library name `smollm2:135m`) and embeddings from the ONNX
MiniLM (served as `all-minilm`). What is under test is the project's real code: `assistant.llm.OllamaBackend`,
`ollama_status`, `get_backend` and `assistant.embeddings.OllamaEmbedding`, through the official client.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import ollama
import pytest
from ollama_standin import OllamaStandin, embedded_generate
from pydantic import BaseModel, ConfigDict, Field

from assistant.config import Settings
from assistant.embeddings import EmbeddingError, MiniLMEmbedding, OllamaEmbedding, get_embedder
from assistant.llm import LLMError, OllamaBackend, Stats, get_backend, ollama_status

CHAT = "smollm2:135m"  # what the stand-in "has"; answered by the embedded SmolLM2-135M
EMBED = "all-minilm"  # answered by the ONNX MiniLM (384 dimensions)
MISSING = "qwen2.5-coder:1.5b"  # the project's default Ollama model, which the stand-in lacks


class CityDigit(BaseModel):
    """A small, bounded answer: the JSON cannot run past the token budget below."""

    model_config = ConfigDict(extra="forbid")
    city: str = Field(max_length=24)
    digit: int = Field(ge=0, le=9)


SCHEMA = CityDigit.model_json_schema()
MESSAGES = [
    {"role": "system", "content": "Answer in JSON."},
    {"role": "user", "content": "Name one city and one digit."},
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def settings(tmp_path: Path, host: str, model: str = CHAT, **extra: Any) -> Settings:
    return Settings(
        index_dir=tmp_path / "i",
        ollama_host=host,
        ollama_model=model,
        embedded_model="smollm2-135m",  # never the 1.5B model in these tests
        embedded_runtime="xllamacpp",  # the llama-server build dies (SIGILL) on SmolLM2's Q4_1 weights here
        **extra,
    )


@pytest.fixture(scope="module")
def standin() -> Iterator[OllamaStandin]:
    with OllamaStandin(models={CHAT: "completion", EMBED: "embedding"}) as server:
        yield server


def test_stream_yields_deltas_of_schema_valid_json(standin: OllamaStandin, tmp_path: Path) -> None:
    backend = OllamaBackend(settings(tmp_path, standin.url))
    stats = Stats()
    deltas = list(backend.stream(MESSAGES, SCHEMA, 60, stats))

    assert len(deltas) > 1, "streamed as several deltas, not one blob"
    answer = CityDigit.model_validate_json("".join(deltas), strict=True)
    assert answer.city.strip()

    path, body = standin.requests[-1]
    assert path == "/api/chat"
    assert body["model"] == CHAT and body["stream"] is True
    assert body["format"] == SCHEMA
    assert body["options"] == {"temperature": 0, "num_predict": 60}


def test_stats_carry_the_servers_token_counts(tmp_path: Path) -> None:
    seen: list[Stats] = []
    inner = embedded_generate()

    def recording(
        messages: list[dict[str, str]], schema: dict[str, Any] | None, max_tokens: int, temperature: float, st: Stats
    ) -> Iterator[str]:
        seen.append(st)
        yield from inner(messages, schema, max_tokens, temperature, st)

    with OllamaStandin(models=[CHAT], generate=recording) as server:
        stats = Stats()
        text = "".join(OllamaBackend(settings(tmp_path, server.url)).stream(MESSAGES, SCHEMA, 60, stats))

    (backing,) = seen
    CityDigit.model_validate_json(text, strict=True)
    assert stats.prompt_tokens == backing.prompt_tokens > 0
    assert stats.generated_tokens == backing.generated_tokens > 1
    assert stats.generated_tokens <= 60
    assert stats.prompt_per_s > 0 and stats.generate_per_s > 0  # from the ns durations on the done line
    assert stats.first_token_s is not None and 0 < stats.first_token_s <= stats.total_s


def test_max_tokens_reaches_the_model(standin: OllamaStandin, tmp_path: Path) -> None:
    stats = Stats()
    text = "".join(OllamaBackend(settings(tmp_path, standin.url)).stream(MESSAGES, SCHEMA, 4, stats))
    assert 0 < stats.generated_tokens <= 4
    with pytest.raises(ValueError):
        json.loads(text)  # cut off by num_predict


def test_status_ready_or_names_the_missing_model(standin: OllamaStandin, tmp_path: Path) -> None:
    assert ollama_status(settings(tmp_path, standin.url, CHAT)) == "ready"
    assert ollama_status(settings(tmp_path, standin.url, EMBED)) == "ready"  # listed as all-minilm:latest
    status = ollama_status(settings(tmp_path, standin.url, MISSING))
    assert status != "ready" and "missing" in status
    assert f"ollama pull {MISSING}" in status
    assert ollama_status(settings(tmp_path, f"http://127.0.0.1:{free_port()}")).startswith("not reachable")


def test_auto_picks_ollama_only_when_it_has_the_model(standin: OllamaStandin, tmp_path: Path) -> None:
    chosen = get_backend(settings(tmp_path, standin.url, CHAT), "auto")
    assert chosen.name == "ollama" and chosen.model == CHAT

    fallback = get_backend(settings(tmp_path, standin.url, MISSING), "auto")
    assert fallback.name == "embedded" and fallback.model == "smollm2-135m"

    down = get_backend(settings(tmp_path, f"http://127.0.0.1:{free_port()}"), "auto")
    assert down.name == "embedded"

    assert get_backend(settings(tmp_path, standin.url, MISSING), "ollama").name == "ollama"  # explicit choice
    with pytest.raises(LLMError, match="unknown backend"):
        get_backend(settings(tmp_path, standin.url), "gpt")


def test_missing_model_says_ollama_pull(standin: OllamaStandin, tmp_path: Path) -> None:
    backend = OllamaBackend(settings(tmp_path, standin.url, MISSING))
    with pytest.raises(LLMError, match=rf"ollama pull {MISSING}"):
        list(backend.stream(MESSAGES, SCHEMA, 60, Stats()))


def test_down_server_is_not_reachable(tmp_path: Path) -> None:
    backend = OllamaBackend(settings(tmp_path, f"http://127.0.0.1:{free_port()}"))
    with pytest.raises(LLMError, match="not reachable"):
        list(backend.stream(MESSAGES, SCHEMA, 60, Stats()))


def test_slow_server_times_out(tmp_path: Path) -> None:
    with OllamaStandin(models=[CHAT], delay_s=10) as server:
        backend = OllamaBackend(settings(tmp_path, server.url, ollama_timeout=0.5))
        t0 = time.perf_counter()
        with pytest.raises(LLMError, match=r"did not answer within 0\.5 s"):
            list(backend.stream(MESSAGES, SCHEMA, 60, Stats()))
        assert time.perf_counter() - t0 < 3


def test_error_reported_mid_stream_becomes_llm_error(tmp_path: Path) -> None:
    def failing(*_: Any) -> Iterator[str]:
        yield '{"city":'
        yield '"Oslo"'
        raise RuntimeError("model runner crashed")

    with OllamaStandin(models=[CHAT], generate=failing) as server:
        got: list[str] = []
        with pytest.raises(LLMError, match="model runner crashed"):
            got.extend(OllamaBackend(settings(tmp_path, server.url)).stream(MESSAGES, SCHEMA, 60, Stats()))
    assert got == ['{"city":', '"Oslo"']


def test_connection_dropped_mid_stream_keeps_partial_output(tmp_path: Path) -> None:
    stats = Stats()
    with OllamaStandin(models=[CHAT], die_after_chunks=3) as server:
        got: list[str] = []
        with pytest.raises(LLMError, match="closed the connection mid-answer"):
            got.extend(OllamaBackend(settings(tmp_path, server.url)).stream(MESSAGES, SCHEMA, 60, stats))
    assert len(got) == 3 and stats.incomplete


def test_ollama_embedding_returns_384_dim_vectors(standin: OllamaStandin, tmp_path: Path) -> None:
    cfg = settings(tmp_path, standin.url, embed_backend="ollama", ollama_embed_model=EMBED)
    embedder = get_embedder(cfg)
    assert isinstance(embedder, OllamaEmbedding)
    texts = ["The budget was approved in March.", "Rainfall doubled.", "Ministers met on Tuesday."]
    vectors = embedder.get_text_embedding_batch(texts)
    query = embedder.get_query_embedding("When was the budget approved?")

    assert [len(v) for v in vectors] == [384, 384, 384] and len(query) == 384
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-3)
    assert np.allclose(vectors, MiniLMEmbedding().get_text_embedding_batch(texts), atol=1e-5)  # real model output
    assert float(np.dot(query, vectors[0])) > float(np.dot(query, vectors[1]))
    embeds = [body for path, body in standin.requests if path == "/api/embed"]
    assert {"model": EMBED, "input": texts} in embeds


def test_slow_embedding_server_raises_embedding_error() -> None:
    with OllamaStandin(models={EMBED: "embedding"}, delay_s=10) as server:
        embedder = OllamaEmbedding(server.url, EMBED, timeout=0.5)
        with pytest.raises(EmbeddingError, match="timed out"):
            embedder.get_query_embedding("anything")


def test_standin_speaks_the_official_clients_wire_format(standin: OllamaStandin) -> None:
    """Guards the stand-in itself: the official client parses every route, errors look like Ollama's."""
    client = ollama.Client(host=standin.url, timeout=60)
    assert {m.model for m in client.list().models} == {CHAT, f"{EMBED}:latest"}
    assert client.show(CHAT).capabilities == ["completion"]

    reply = client.chat(model=CHAT, messages=MESSAGES, format=SCHEMA, options={"temperature": 0, "num_predict": 60})
    assert reply.done and reply.done_reason == "stop" and reply.eval_count and reply.prompt_eval_count
    CityDigit.model_validate_json(reply.message.content or "", strict=True)

    parts = list(client.generate(model=CHAT, prompt="One city and one digit.", format=SCHEMA, stream=True))
    assert all(not p.done for p in parts[:-1]) and parts[-1].done and parts[-1].total_duration
    CityDigit.model_validate_json("".join(p.response or "" for p in parts), strict=True)

    assert len(client.embed(model=EMBED, input="one text").embeddings[0]) == 384

    with pytest.raises(ollama.ResponseError) as err:
        client.chat(model="nope", messages=MESSAGES)
    assert err.value.status_code == 404 and err.value.error == "model 'nope' not found"

    request = {"model": CHAT, "messages": MESSAGES, "options": {"num_predict": 5}}  # no "stream": Ollama streams
    with httpx.stream("POST", f"{standin.url}/api/chat", json=request, timeout=60) as resp:
        assert resp.headers["content-type"] == "application/x-ndjson"
        assert resp.headers["transfer-encoding"] == "chunked"
        lines = [json.loads(line) for line in resp.iter_lines()]
    assert [line["done"] for line in lines] == [False] * (len(lines) - 1) + [True]
    assert lines[-1]["message"] == {"role": "assistant", "content": ""} and lines[-1]["done_reason"] == "length"
    for key in ("prompt_eval_count", "eval_count", "prompt_eval_duration", "eval_duration", "total_duration"):
        assert isinstance(lines[-1][key], int)


def test_scored_returns_the_constrained_answer_and_no_scores_when_the_server_reports_none(
    standin: OllamaStandin, tmp_path: Path
) -> None:
    """The stand-in, like an older Ollama, sends no log-probabilities: `scored` (the premise check's call)
    still returns the schema-valid answer, with empty scores, so the check decides by the verdict itself."""
    text, scores = OllamaBackend(settings(tmp_path, standin.url)).scored(MESSAGES, SCHEMA, ("yes", "no"))
    CityDigit.model_validate_json(text, strict=True)
    assert scores == {}
    path, body = standin.requests[-1]
    assert path == "/api/chat" and body["stream"] is False and body["format"] == SCHEMA
    assert body["logprobs"] is True and body["top_logprobs"] == 10
