"""Embedded llama.cpp runtimes (wiring, on the tiny SmolLM2 model) and model-file assembly/verification."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import pytest

from assistant.config import Settings
from assistant.llm import EmbeddedBackend, LLMError, Stats, compact_gbnf, get_backend, verdict_prefix
from assistant.model_files import MODELS, ModelFileError, ModelSpec, ensure_model, model_status

SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string", "maxLength": 20}, "digit": {"type": "integer", "enum": [1, 2, 3]}},
    "required": ["city", "digit"],
    "additionalProperties": False,
}
MESSAGES = [{"role": "user", "content": "Name one city and pick a digit. Answer in JSON."}]


def test_in_process_runtime_streams_schema_valid_json(tmp_path: Path) -> None:
    # Wiring only (SmolLM2 asserts no quality). Runtime choice and fallback: tests/test_runtimes.py.
    cfg = Settings(index_dir=tmp_path / "i", embedded_model="smollm2-135m", embedded_runtime="xllamacpp")
    backend = EmbeddedBackend(cfg)
    stats = Stats()
    deltas = list(backend.stream(MESSAGES, SCHEMA, 40, stats))
    data = json.loads("".join(deltas))
    assert set(data) == {"city", "digit"} and data["digit"] in (1, 2, 3) and len(data["city"]) <= 20
    assert stats.prompt_tokens > 0 and stats.generated_tokens > 0 and stats.first_token_s is not None


def test_scored_check_does_not_evict_the_answer_prompt_from_the_kv_cache(tmp_path: Path) -> None:
    # The premise check runs between two answers; the next answer must still find the shared prefix of the last one
    # (system prompt + passages) in the cache. The RAM prompt cache is off so that only the slots can keep it: its
    # restores are heuristic (a shorter shared prefix was not restored in answers measured on the seeds).
    cfg = Settings(index_dir=tmp_path / "i", embedded_model="smollm2-135m", embedded_runtime="xllamacpp",
                   prompt_cache_mb=0)
    backend = EmbeddedBackend(cfg)
    passages = " ".join(f"Passage {n}: the river town of Example{n} trades wool, salt and timber." for n in range(40))
    first, second = Stats(), Stats()
    list(backend.stream([{"role": "user", "content": f"{passages}\nQ: What does Example3 trade?"}], SCHEMA, 30, first))
    backend.scored([{"role": "user", "content": "Is the sky green? Answer yes or no in JSON."}],
                   {"type": "object", "properties": {"v": {"enum": ["yes", "no"]}}, "required": ["v"]}, ("yes", "no"))
    list(backend.stream([{"role": "user", "content": f"{passages}\nQ: What does Example7 trade?"}], SCHEMA, 30, second))
    assert second.cached_tokens >= 0.9 * first.prompt_tokens - 20  # all but the question (and what came after it)


ARRAY_SCHEMA = {"type": "object", "properties": {"items": {"type": "array", "minItems": 1, "maxItems": 2,
                                                          "items": SCHEMA}},
                "required": ["items"], "additionalProperties": False}


def test_the_compact_grammar_llama_server_gets_constrains_output_to_the_schema(tmp_path: Path) -> None:
    """`compact_gbnf` is what llama-server (built without LLGuidance) generates under; llama.cpp's own GBNF sampler
    runs it here in-process, on any CPU: schema-valid JSON, nested arrays and enums kept, no whitespace."""
    backend = EmbeddedBackend(Settings(index_dir=tmp_path / "i", embedded_model="smollm2-135m",
                                       embedded_runtime="xllamacpp"))
    for schema in (SCHEMA, ARRAY_SCHEMA):
        result = backend.server.handle_chat_completions({"messages": MESSAGES, "max_tokens": 80, "temperature": 0,
                                                         "grammar": compact_gbnf(schema)})
        text = result["choices"][0]["message"]["content"]
        data = json.loads(text)
        rows = data["items"] if schema is ARRAY_SCHEMA else [data]
        assert 1 <= len(rows) <= 2 and all(set(r) == {"city", "digit"} and r["digit"] in (1, 2, 3) for r in rows)
        assert text == json.dumps(data, separators=(",", ":"), ensure_ascii=False)


def test_a_schema_the_compact_grammar_cannot_express_is_refused_not_loosened() -> None:
    with pytest.raises(LLMError, match="unsupported schema node"):
        compact_gbnf({"type": "object", "properties": {"a": {"type": "string"}}, "required": []})  # "a" optional
    with pytest.raises(LLMError, match="unsupported schema node"):
        compact_gbnf({"type": "number"})
    with pytest.raises(LLMError, match="unsupported schema node"):
        compact_gbnf({"type": "array", "maxItems": 2})  # items of any kind
    empty = {"type": "object", "properties": {"sentences": {"type": "array", "maxItems": 0}}, "required": ["sentences"]}
    assert 'root-sentences ::= "[" "]"' in compact_gbnf(empty)  # the chat's warm-up request
    assert verdict_prefix({"type": "object", "properties": {"answers": {"enum": ["yes", "no"]}}}) == (
        "answers", '{"answers":"')
    with pytest.raises(LLMError, match="one enum property"):
        verdict_prefix(SCHEMA)


def test_both_runtimes_read_a_verdict_alike(tmp_path: Path) -> None:
    """The premise check's threshold (`verify.DOUBT`) was chosen on one runtime; it holds on the other only if both
    read the verdict off the same tokens. Before they did, llama-server put "no" over "yes" by 0.39 where the
    in-process runtime put it by 0.94, on this question. Needs both runtimes to run on this CPU (llama-server dies
    on AVX2-only CPUs, where only one runtime serves and there is nothing to compare)."""
    question = "What years was chemist John Boyle alive?"
    text = ("English chemist John Mayow (1641–1679) refined this work by showing that fire requires only a part of "
            "air that he called spiritus nitroaereus.")
    from assistant.llm import prompt
    from assistant.verify import ASKED_SCHEMA

    messages = [{"role": "system", "content": prompt("asked_system")},
                {"role": "user", "content": prompt("asked_user").format(text=text, question=question)}]
    odds = {}
    for runtime in ("xllamacpp", "llama-server"):
        try:
            backend = EmbeddedBackend(Settings(index_dir=tmp_path / "i", embedded_runtime=runtime))  # type: ignore[arg-type]
        except LLMError as exc:
            pytest.skip(f"{runtime} does not run on this CPU: {exc}")
        _, scores = backend.scored(messages, ASKED_SCHEMA, ("yes", "no"))  # type: ignore[arg-type]
        odds[runtime] = scores["no"] - scores["yes"]
        if runtime == "llama-server":
            stats = Stats()
            raw = "".join(backend.stream(MESSAGES, SCHEMA, 40, stats))  # type: ignore[arg-type]
            assert raw == json.dumps(json.loads(raw), separators=(",", ":"), ensure_ascii=False)
    assert abs(odds["xllamacpp"] - odds["llama-server"]) < 0.3, odds


def test_unknown_backend_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(LLMError, match="unknown backend 'gpt'"):
        get_backend(Settings(index_dir=tmp_path / "i"), "gpt")


@pytest.fixture
def fake_parts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[ModelSpec, bytes]:
    """A 3-part 'model' shipped in throwaway packages on sys.path, like the real PyPI parts."""
    blobs = [bytes([i]) * 1000 for i in range(3)]
    for i, blob in enumerate(blobs, 1):
        pkg = tmp_path / "site" / f"fake_model_part{i}"
        (pkg / "data").mkdir(parents=True)
        (pkg / "__init__.py").write_text("")
        (pkg / "data" / f"part{i:02d}.bin").write_bytes(blob)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    joined = b"".join(blobs)
    spec = ModelSpec("fake", "fake.gguf", hashlib.sha256(joined).hexdigest(),
                     tuple((f"fake_model_part{i}", f"data/part{i:02d}.bin") for i in range(1, 4)), "pip install fake")
    monkeypatch.setitem(MODELS, "fake", spec)
    return spec, joined


def test_model_is_assembled_verified_once_and_reused(tmp_path: Path, fake_parts: tuple[ModelSpec, bytes]) -> None:
    _, joined = fake_parts
    cache = tmp_path / "cache"
    assert "not assembled" in model_status("fake", cache)["checksum"]
    path = ensure_model("fake", cache)
    assert path.read_bytes() == joined
    assert model_status("fake", cache)["checksum"] == "verified sha256"
    mtime = path.stat().st_mtime_ns
    assert ensure_model("fake", cache).stat().st_mtime_ns == mtime  # not re-assembled


def test_wrong_checksum_is_refused_and_leaves_no_file(
    tmp_path: Path, fake_parts: tuple[ModelSpec, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    spec, _ = fake_parts
    monkeypatch.setitem(MODELS, "fake", ModelSpec(spec.name, spec.filename, "0" * 64, spec.parts, spec.install_hint))
    with pytest.raises(ModelFileError, match="failed its sha256 check.*pip install fake"):
        ensure_model("fake", tmp_path / "cache")
    assert not list((tmp_path / "cache").glob("fake*"))


def test_tampered_cached_model_is_not_trusted(tmp_path: Path, fake_parts: tuple[ModelSpec, bytes]) -> None:
    path = ensure_model("fake", tmp_path / "cache")
    path.write_bytes(b"tampered")  # size/mtime no longer match the verified stamp
    assert ensure_model("fake", tmp_path / "cache").read_bytes() == fake_parts[1]


def test_missing_part_names_the_fix(tmp_path: Path, fake_parts: tuple[ModelSpec, bytes]) -> None:
    sys.modules.pop("fake_model_part2", None)
    (tmp_path / "site" / "fake_model_part2" / "data" / "part02.bin").unlink()
    with pytest.raises(ModelFileError, match="parts are not installed: pip install fake"):
        ensure_model("fake", tmp_path / "cache")
