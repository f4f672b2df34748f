"""Generator backends, all registered the same way (built-ins included): name → factory(ref, **options).
Installed packages add theirs through the ``ragcds.backends`` entry point group (``ragcds.plugins``).

`load_generator(ref, backend="auto")` infers the backend from the reference:
``*.gguf`` → llamacpp when llama_cpp is importable, else transformers (gguf_file=); ``http(s)://`` → openai;
a folder → transformers; no reference → extractive. Packaged names (``smollm2``, ``gemma3-270m``) resolve to
their GGUF files first. Heavy imports happen inside the factories.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path

from ragcds import plugins
from ragcds.errors import BackendUnavailable, ModelNotFound
from ragcds.generate.base import Generator

Factory = Callable[..., Generator]
_BACKENDS: dict[str, Factory] = {}


def register_backend(name: str, factory: Factory) -> None:
    """Register (or replace) a backend; factory(ref: str | None, **options) -> Generator."""
    _BACKENDS[name] = factory


def backend_names() -> list[str]:
    return sorted(_registry())


def _registry() -> dict[str, Factory]:
    """The factories, with installed plugins registered on first use (code registrations win)."""
    plugins.load(plugins.BACKENDS, lambda name, factory: _BACKENDS.setdefault(name, factory))  # type: ignore[arg-type]
    return _BACKENDS


def llama_cpp_available() -> bool:
    return importlib.util.find_spec("llama_cpp") is not None


def _resolve_ref(ref: str | None) -> str | None:
    if not ref or ref.startswith(("http://", "https://")):
        return ref
    from ragcds.generate.backends.models import resolve_packaged

    return resolve_packaged(ref) or ref


def infer_backend(ref: str | None) -> str:
    """The backend name for a (resolved) model reference."""
    if not ref:
        return "extractive"
    if ref.startswith(("http://", "https://")):
        return "openai"
    path = Path(ref).expanduser()
    if path.suffix.lower() == ".gguf":
        if not path.is_file():
            raise ModelNotFound(_not_found(ref))
        return "llamacpp" if llama_cpp_available() else "transformers"
    if path.is_dir():
        return "transformers"
    raise ModelNotFound(_not_found(ref))


def _not_found(ref: str) -> str:
    return (
        f"no model at '{ref}' — pass a local Hugging Face folder, a .gguf file, an http(s):// URL of an "
        "OpenAI-compatible server, or a packaged name (smollm2, gemma3-270m)"
    )


def load_generator(ref: str | None = None, backend: str = "auto", **options) -> Generator:
    """A ready generator for `ref` using `backend` (auto: inferred from the reference)."""
    resolved = _resolve_ref(ref)
    name = infer_backend(resolved) if backend == "auto" else backend
    registry = _registry()
    if name not in registry:
        why = plugins.failure(plugins.BACKENDS, name)
        if why:
            raise BackendUnavailable(f"backend plugin '{name}' could not be loaded ({why}) — reinstall the "
                                     "package that provides it")
        raise BackendUnavailable(
            f"unknown backend '{name}'; choose one of auto, {', '.join(backend_names())}"
        )
    return registry[name](resolved, **options)


def _transformers(ref: str | None, **options) -> Generator:
    from ragcds.generate.backends.transformers_backend import load_transformers

    if not ref:
        raise ModelNotFound("the transformers backend needs --model (a HF folder, a .gguf file, or smollm2)")
    return load_transformers(ref, **options)


def _openai(ref: str | None, **options) -> Generator:
    from ragcds.generate.backends.openai_backend import OpenAIGenerator

    if not ref:
        raise ModelNotFound("the openai backend needs --model http://HOST:PORT/v1")
    return OpenAIGenerator(ref, **options)


def _llamacpp(ref: str | None, **options) -> Generator:
    from ragcds.generate.backends.llamacpp_backend import LlamaCppGenerator

    if not ref:
        raise ModelNotFound("the llamacpp backend needs --model path/to/model.gguf")
    return LlamaCppGenerator(ref, **options)


def _extractive(ref: str | None, **options) -> Generator:
    from ragcds.generate.backends.extractive import ExtractiveGenerator

    return ExtractiveGenerator()


register_backend("transformers", _transformers)
register_backend("openai", _openai)
register_backend("llamacpp", _llamacpp)
register_backend("extractive", _extractive)
