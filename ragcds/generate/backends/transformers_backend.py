"""transformers backend: a local HF folder or a GGUF file (dequantised by transformers, needs `gguf`).

Model classes: a folder loads with AutoModelForCausalLM when transformers maps its model_type there (in
transformers 5, ``gemma3`` — MedGemma 4B-IT, Gemma 3 4B+ — maps to Gemma3ForConditionalGeneration, used
text-only), else with AutoModelForImageTextToText (older transformers, other vision-language models). A
Gemma 3 GGUF holds the text weights only and loads as Gemma3ForCausalLM (model_type gemma3_text).

Chat templates: the tokenizer's own (tokenizer_config.json or chat_template.jinja), else a processor-style
chat_template.json beside it (how Gemma 3 / MedGemma repositories ship it), else the Gemma turn fallback.

Constrained formats use xgrammar's HF LogitsProcessor: the grammar is compiled once per (tokenizer, format)
and cached; a fresh processor is made for every generate() call (it is single-use).
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from ragcds.errors import BackendUnavailable, ModelNotFound
from ragcds.generate.base import GenerationRequest
from ragcds.generate.formats import grammar
from ragcds.generate.prompt import render_chat, template_supports_system

_MODELS: dict[tuple[str, str], TransformersGenerator] = {}
END_OF_TURN = ("<end_of_turn>", "<|im_end|>", "<|eot_id|>", "<|end|>")  # Gemma, ChatML, Llama 3, Phi 3
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
        self.stop_ids = stop_token_ids(model, tokenizer)
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
            info = xgr.TokenizerInfo.from_huggingface(self.tokenizer, vocab_size=logits_size(self.model))
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
            out = self.model.generate(**enc, pad_token_id=pad, eos_token_id=self.stop_ids, **kwargs)
        new = out[0, enc["input_ids"].shape[1] :]
        return str(self.tokenizer.decode(new, skip_special_tokens=True)).strip()


def stop_token_ids(model: Any, tokenizer: Any) -> list[int]:
    """Generation stops at the model's eos ids and at the chat template's end-of-turn token. A GGUF
    records one eos only (Gemma's <eos>), while a Gemma chat turn ends with <end_of_turn>."""
    eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    ids = set(eos if isinstance(eos, list) else [eos]) | {tokenizer.eos_token_id}
    unk = tokenizer.unk_token_id
    for token in END_OF_TURN:
        tid = tokenizer.convert_tokens_to_ids(token)
        if isinstance(tid, int) and tid != unk and tokenizer.convert_ids_to_tokens(tid) == token:
            ids.add(tid)
    return sorted(i for i in ids if isinstance(i, int))


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
        if not extra:
            _adopt_processor_template(tok, path)
        model = model_class(transformers, None if extra else path).from_pretrained(src, dtype=dtype, **extra)
        model.to(device).eval()
        gen = TransformersGenerator(model, tok, model_id=path.name, device=device)
        _MODELS[key] = gen
        return gen


def _missing(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is None


def logits_size(model: Any) -> int:
    """The width of the model's logits (the grammar's vocabulary size). A multimodal config such as
    Gemma3Config keeps vocab_size in its text config, so ask the output layer first."""
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if head is not None and getattr(head, "weight", None) is not None:
        return int(head.weight.shape[0])
    return int(model.config.get_text_config().vocab_size)


def model_class(transformers: Any, folder: Path | None) -> Any:
    """AutoModelForCausalLM, or AutoModelForImageTextToText for a folder whose model_type transformers does
    not map to a causal LM (a GGUF, folder None, always loads as a causal LM)."""
    if folder is None:
        return transformers.AutoModelForCausalLM
    from transformers.models.auto import modeling_auto as auto

    model_type = transformers.AutoConfig.from_pretrained(str(folder)).model_type
    if model_type in auto.MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
        return transformers.AutoModelForCausalLM
    if model_type in getattr(auto, "MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES", {}):
        return transformers.AutoModelForImageTextToText
    raise ModelNotFound(
        f"'{folder}' holds a {model_type!r} model, which is neither a causal LM nor an image-text-to-text model "
        "in this transformers version — pass a chat model (e.g. MedGemma 4B-IT) or upgrade transformers"
    )


def _adopt_processor_template(tokenizer: Any, folder: Path) -> None:
    """Gemma 3 / MedGemma folders may keep the chat template only in the processor's chat_template.json."""
    legacy = folder / "chat_template.json"
    if getattr(tokenizer, "chat_template", None) or not legacy.is_file():
        return
    try:
        template = json.loads(legacy.read_text(encoding="utf-8")).get("chat_template")
    except (ValueError, AttributeError):
        return
    if isinstance(template, str) and template.strip():
        tokenizer.chat_template = template
