"""llama.cpp backend (optional extra `ragcds[llamacpp]`): runs GGUF weights directly, GBNF for xml/array.

The GBNF text is the same text as the xgrammar EBNF (`formats.grammar`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ragcds.errors import BackendUnavailable, ModelNotFound
from ragcds.generate.base import GenerationRequest
from ragcds.generate.formats import grammar
from ragcds.generate.prompt import fit_messages, render_fallback

INSTALL_HINT = "pip install 'ragcds[llamacpp]'"
_MODELS: dict[str, Any] = {}


def import_llama_cpp() -> Any:
    try:
        import llama_cpp
    except ImportError as exc:
        raise BackendUnavailable(
            f"the llamacpp backend needs llama-cpp-python — {INSTALL_HINT} (or use --backend transformers)"
        ) from exc
    return llama_cpp


class LlamaCppGenerator:
    backend = "llamacpp"

    def __init__(self, ref: str, n_ctx: int = 4096, n_threads: int | None = None, **_: Any):
        self.llama_cpp = import_llama_cpp()
        path = Path(ref).expanduser()
        if not path.is_file():
            raise ModelNotFound(f"no GGUF file at '{ref}' — pass path/to/model.gguf or a packaged name")
        self.model_id = path.name
        key = str(path.resolve())
        if key not in _MODELS:
            _MODELS[key] = self.llama_cpp.Llama(
                model_path=key, n_ctx=n_ctx, n_threads=n_threads, verbose=False
            )
        self.llm = _MODELS[key]
        self.model_type = (
            str(self.llm.metadata.get("general.architecture", "")) if hasattr(self.llm, "metadata") else ""
        )
        self.supports_system = not self.model_type.startswith("gemma")

    def generate(self, request: GenerationRequest) -> str:
        kwargs: dict[str, Any] = {"max_tokens": request.max_new_tokens, "temperature": request.temperature}
        if request.format in ("xml", "array"):
            kwargs["grammar"] = self.llama_cpp.LlamaGrammar.from_string(grammar(request.format), verbose=False)
        msgs = fit_messages(request.messages, self.supports_system)
        try:
            out = self.llm.create_chat_completion(messages=msgs, **kwargs)
            return str(out["choices"][0]["message"]["content"] or "").strip()
        except (ValueError, KeyError, TypeError):  # no usable chat template: plain turns
            prompt = render_fallback(msgs, self.model_type)
            out = self.llm.create_completion(prompt, **kwargs)
            return str(out["choices"][0]["text"] or "").strip()
