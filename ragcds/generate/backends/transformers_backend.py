"""transformers backend: a local HF folder or a GGUF file (dequantised by transformers, needs `gguf`).

Constrained formats use xgrammar's HF LogitsProcessor: the grammar is compiled once per (tokenizer, format)
and cached; a fresh processor is made for every generate() call (it is single-use).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from ragcds.errors import BackendUnavailable, ModelNotFound
from ragcds.generate.base import GenerationRequest
from ragcds.generate.formats import grammar
from ragcds.generate.prompt import render_chat, template_supports_system

_MODELS: dict[tuple[str, str], TransformersGenerator] = {}
_LOCK = threading.Lock()


def _import_torch_transformers() -> tuple[Any, Any]:
    try:
        import torch
        import transformers
    except ImportError as exc:  # pragma: no cover - both are core dependencies
        raise BackendUnavailable(
            f"transformers backend needs torch and transformers ({exc}) — pip install ragcds"
        ) from exc
    return torch, transformers


class TransformersGenerator:
    backend = "transformers"

    def __init__(self, model: Any, tokenizer: Any, model_id: str, device: str = "cpu"):
        self.model = model
        self.tokenizer = tokenizer
        self.model_id = model_id
        self.device = device
        self.model_type = str(getattr(model.config, "model_type", "") or "")
        self.supports_system = template_supports_system(tokenizer)
        self._compiled: dict[str, Any] = {}

    def compiled_grammar(self, format: str) -> Any:
        """Compiled once per (tokenizer, format): the tokenizer belongs to this cached generator."""
        if format not in self._compiled:
            try:
                import xgrammar as xgr
            except ImportError as exc:
                raise BackendUnavailable(
                    "constrained xml/array output needs xgrammar — pip install --no-deps 'xgrammar>=0.2.8' "
                    "apache-tvm-ffi (or pip install 'ragcds[constrained]')"
                ) from exc
            info = xgr.TokenizerInfo.from_huggingface(self.tokenizer, vocab_size=self.model.config.vocab_size)
            self._compiled[format] = xgr.GrammarCompiler(info).compile_grammar(grammar(format))
        return self._compiled[format]

    def prompt_text(self, request: GenerationRequest) -> str:
        return render_chat(self.tokenizer, request.messages, self.model_type, self.supports_system)

    def generate(self, request: GenerationRequest) -> str:
        torch, _ = _import_torch_transformers()
        text = self.prompt_text(request)
        bos = getattr(self.tokenizer, "bos_token", None)
        add_special = not (bos and text.startswith(bos))
        enc = self.tokenizer(text, return_tensors="pt", add_special_tokens=add_special).to(self.device)
        kwargs: dict[str, Any] = {"max_new_tokens": request.max_new_tokens}
        if request.temperature > 0:
            kwargs.update(do_sample=True, temperature=request.temperature)
        else:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        if request.format in ("xml", "array"):
            from xgrammar.contrib.hf import LogitsProcessor

            kwargs["logits_processor"] = [LogitsProcessor(self.compiled_grammar(request.format))]
        pad = self.tokenizer.pad_token_id
        if pad is None:
            pad = self.tokenizer.eos_token_id
        with torch.inference_mode():
            out = self.model.generate(**enc, pad_token_id=pad, **kwargs)
        new = out[0, enc["input_ids"].shape[1] :]
        return str(self.tokenizer.decode(new, skip_special_tokens=True)).strip()


def load_transformers(ref: str, device: str | None = None, **_: Any) -> TransformersGenerator:
    """Load (and cache per process) a model from a HF folder or a .gguf file."""
    path = Path(ref).expanduser()
    if not path.exists():
        raise ModelNotFound(
            f"no model at '{ref}' — pass a local HF folder or a .gguf file (e.g. --model smollm2)"
        )
    torch, transformers = _import_torch_transformers()
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    key = (str(path.resolve()), device)
    with _LOCK:
        if key in _MODELS:
            return _MODELS[key]
        dtype = torch.bfloat16 if device == "cuda" else torch.float32
        if path.is_file():
            if path.suffix.lower() != ".gguf":
                raise ModelNotFound(
                    f"'{ref}' is a file but not a .gguf — pass a GGUF file or a HF model folder"
                )
            if _missing("gguf"):
                raise BackendUnavailable(
                    "loading a GGUF with transformers needs the gguf package — pip install gguf"
                )
            src, extra = str(path.parent), {"gguf_file": path.name}
        else:
            if not (path / "config.json").exists():
                raise ModelNotFound(
                    f"'{ref}' has no config.json — pass a Hugging Face model folder or a .gguf file"
                )
            src, extra = str(path), {}
        tok = transformers.AutoTokenizer.from_pretrained(src, **extra)
        model = transformers.AutoModelForCausalLM.from_pretrained(src, dtype=dtype, **extra)
        model.to(device).eval()
        gen = TransformersGenerator(model, tok, model_id=path.name, device=device)
        _MODELS[key] = gen
        return gen


def _missing(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is None
