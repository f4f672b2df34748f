"""A MedGemma-shaped model for tests, built in seconds on CPU.

MedGemma 4B-IT is a ``Gemma3ForConditionalGeneration`` (Gemma 3 text decoder + SigLIP vision tower) with
Gemma's tokenizer (sentencepiece BPE with byte fallback, ``<start_of_turn>``/``<end_of_turn>`` control
tokens) and a chat template that has no system turn. This module builds the same shape in miniature:

- ``gemma_tokenizer()``: a ``GemmaTokenizer`` (transformers' own class: Gemma's normaliser, splitting and
  decoder) whose small BPE vocabulary is learned here from ragcds' prompt text, the guideline-shaped test
  PDF and example packets, plus Gemma's special tokens and the 256 byte-fallback tokens;
- ``tiny_gemma3()``: random weights, 2 sliding-window decoder layers, hidden size 64, a 1-layer vision tower;
- ``teach()``: a few optimiser steps so that the model's first prose words are a fixed reply (used to show
  that a dose the model invents is removed); xml/array output stays whatever the grammar lets it write;
- ``save_folder()`` / ``write_gguf()``: an HF folder (as `ragcds ask --model FOLDER` reads it) and a GGUF
  of the text weights, written with llama.cpp's tensor names and conventions (Gemma norms stored as 1 + w).

Two chat templates, written for these tests after Gemma's published behaviour: ``TEMPLATE_FOLDS`` folds a
leading system message into the first user turn (Gemma 3 / MedGemma), ``TEMPLATE_NO_SYSTEM`` raises on a
system message (Gemma 2 and fine-tunes trained without one). Both trim turn contents and alternate
user/model turns.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

SPECIALS = (
    "<pad>",
    "<eos>",
    "<bos>",
    "<unk>",
    "<mask>",
    "<start_of_turn>",
    "<end_of_turn>",
    "<start_of_image>",
    "<end_of_image>",
    "<image_soft_token>",
)
CONTROL = SPECIALS[5:]

_TURNS = (
    "{%- for m in turns -%}"
    "{%- if (m['role'] == 'user') != (loop.index0 % 2 == 0) -%}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant') }}"
    "{%- endif -%}"
    "{{ '<start_of_turn>' + ('model' if m['role'] == 'assistant' else m['role']) + '\\n' }}"
    "{{- (prefix if loop.first else '') + (m['content'] | trim) + '<end_of_turn>\\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<start_of_turn>model\\n' }}{%- endif -%}"
)
TEMPLATE_FOLDS = (
    "{{ bos_token }}"
    "{%- if messages[0]['role'] == 'system' -%}"
    "{%- set prefix = (messages[0]['content'] | trim) + '\\n\\n' -%}{%- set turns = messages[1:] -%}"
    "{%- else -%}{%- set prefix = '' -%}{%- set turns = messages -%}{%- endif -%}" + _TURNS
)
TEMPLATE_NO_SYSTEM = (
    "{{ bos_token }}"
    "{%- if messages[0]['role'] == 'system' -%}{{ raise_exception('System role not supported') }}{%- endif -%}"
    "{%- set prefix = '' -%}{%- set turns = messages -%}" + _TURNS
)


def gemma_turns(system: str, user: str) -> str:
    """The exact prompt text Gemma's templates give for one system + user exchange."""
    return f"<bos><start_of_turn>user\n{system}\n\n{user}<end_of_turn>\n<start_of_turn>model\n"


def _corpus() -> list[str]:
    from ragcds.generate.prompt import BASE_RULES, CLOSED_BOOK_RULES, FORMAT_RULES, NO_TREATMENT_RULE
    from tests.pdfgen import DEFAULT_SECTIONS

    lines = [BASE_RULES, CLOSED_BOOK_RULES, NO_TREATMENT_RULE, *FORMAT_RULES.values()]
    lines += [f"{s.number} {s.title} " + " ".join(s.lines) for s in DEFAULT_SECTIONS]
    lines += [
        "<r><t>emergency</t><c>Severe malaria [1]</c><cf>high</cf><sg>Give IV artesunate [1]|Refer [2]</sg>"
        "<ns>Check blood glucose [1]</ns><rf>Convulsions [1]|Coma [2]</rf></r>",
        '["urgent","Snakebite [1]","medium",["Give antivenom [1]"],["Review in 24 hours [2]"],["Shock [1]"]]',
        "Passages from the UCG 2023: Question: What are the danger signs? Answer: [1] [2] [3] p. §",
    ]
    return lines * 3


def gemma_tokenizer(vocab_size: int = 700) -> Any:
    """A small Gemma-style tokenizer (GemmaTokenizer with a vocabulary learned from `_corpus`)."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
    from transformers import GemmaTokenizer

    bpe = Tokenizer(models.BPE(byte_fallback=True, unk_token="<unk>"))
    bpe.normalizer = normalizers.Replace(" ", "▁")
    bpe.pre_tokenizer = pre_tokenizers.Split("▁", "merged_with_next")
    alphabet = [chr(i) for i in range(33, 127)] + ["▁", "\n", "§", "…", "‹", "–"]
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, initial_alphabet=alphabet, max_token_length=16, show_progress=False
    )
    bpe.train_from_iterator(_corpus(), trainer)
    learned = json.loads(bpe.to_str())["model"]
    vocab = {tok: i for i, tok in enumerate(SPECIALS)}
    for b in range(256):
        vocab[f"<0x{b:02X}>"] = len(vocab)
    for tok, _ in sorted(learned["vocab"].items(), key=lambda kv: kv[1]):
        vocab.setdefault(tok, len(vocab))
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in learned["merges"]]
    tok = GemmaTokenizer(vocab=vocab, merges=merges, add_bos_token=True)
    tok.add_special_tokens({"additional_special_tokens": list(CONTROL)})
    return tok


def tiny_gemma3(tokenizer: Any, seed: int = 0) -> Any:
    """A random-weight Gemma3ForConditionalGeneration sized for tests (about 0.2 M parameters)."""
    import torch
    from transformers import Gemma3Config, Gemma3ForConditionalGeneration, GenerationConfig

    ids = tokenizer.convert_tokens_to_ids
    text = dict(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=32,
        max_position_embeddings=8192,
        sliding_window=64,
        pad_token_id=0,
        eos_token_id=1,
        bos_token_id=2,
    )
    vision = dict(
        hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2, image_size=28,
        patch_size=14,
    )
    config = Gemma3Config(
        text_config=text,
        vision_config=vision,
        mm_tokens_per_image=1,
        boi_token_index=ids("<start_of_image>"),
        eoi_token_index=ids("<end_of_image>"),
        image_token_index=ids("<image_soft_token>"),
    )
    torch.manual_seed(seed)
    model = Gemma3ForConditionalGeneration(config).eval()
    # as MedGemma's generation_config.json: stop at <eos> or <end_of_turn>
    model.generation_config = GenerationConfig(
        bos_token_id=2, eos_token_id=[1, ids("<end_of_turn>")], pad_token_id=0
    )
    return model


def teach(model: Any, tokenizer: Any, reply: str, steps: int = 60, seed: int = 0) -> Any:
    """Train the model briefly to answer any short user turn with `reply` (then <end_of_turn>). The decoder
    only attends to the last 64 tokens, so the reply carries over to long prompts."""
    import torch

    rng = random.Random(seed)
    torch.manual_seed(seed)
    words = " ".join(_corpus()).split()
    target = tokenizer(reply + "<end_of_turn>", add_special_tokens=False)["input_ids"]
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(steps):
        rows = []
        for _ in range(8):
            user = " ".join(rng.choice(words) for _ in range(rng.randint(3, 25)))
            prompt = tokenizer.apply_chat_template(
                [{"role": "user", "content": user}], tokenize=False, add_generation_prompt=True
            )
            rows.append((tokenizer(prompt, add_special_tokens=False)["input_ids"], target))
        width = max(len(p) + len(r) for p, r in rows)
        ids = torch.zeros(len(rows), width, dtype=torch.long)
        mask = torch.zeros_like(ids)
        labels = torch.full_like(ids, -100)
        for i, (p, r) in enumerate(rows):
            ids[i, : len(p) + len(r)] = torch.tensor(p + r)
            mask[i, : len(p) + len(r)] = 1
            labels[i, len(p) : len(p) + len(r)] = torch.tensor(r)
        model(input_ids=ids, attention_mask=mask, labels=labels).loss.backward()
        opt.step()
        opt.zero_grad()
    return model.eval()


def save_folder(model: Any, tokenizer: Any, folder: Path, template: str, legacy_template: bool = False) -> Path:
    """An HF folder; the template goes to chat_template.jinja, or (legacy_template) only to a
    processor-style chat_template.json as older Gemma 3 / MedGemma repositories ship it."""
    folder = Path(folder)
    model.save_pretrained(folder)
    tokenizer.chat_template = None if legacy_template else template
    tokenizer.save_pretrained(folder)
    if legacy_template:
        (folder / "chat_template.json").write_text(json.dumps({"chat_template": template}), encoding="utf-8")
    return folder


def write_gguf(model: Any, tokenizer: Any, path: Path, template: str) -> Path:
    """The text decoder and tokenizer as a GGUF (architecture gemma3, F32 tensors), as llama.cpp's
    converter writes a Gemma 3 checkpoint: no vision tower, RMSNorm weights stored as 1 + w."""
    import gguf
    import numpy as np

    cfg = model.config.get_text_config()
    lm = model.model.language_model
    writer = gguf.GGUFWriter(str(path), "gemma3")
    writer.add_name("tiny medgemma-shaped test model")
    writer.add_context_length(cfg.max_position_embeddings)
    writer.add_embedding_length(cfg.hidden_size)
    writer.add_block_count(cfg.num_hidden_layers)
    writer.add_feed_forward_length(cfg.intermediate_size)
    writer.add_head_count(cfg.num_attention_heads)
    writer.add_head_count_kv(cfg.num_key_value_heads)
    writer.add_key_length(cfg.head_dim)
    writer.add_value_length(cfg.head_dim)
    writer.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    writer.add_sliding_window(cfg.sliding_window)
    writer.add_rope_freq_base(1_000_000.0)
    vocab = sorted(tokenizer.get_vocab().items(), key=lambda kv: kv[1])
    tokens = [t for t, _ in vocab]
    assert [i for _, i in vocab] == list(range(len(tokens))), "token ids must be dense"
    writer.add_tokenizer_model("llama")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(tokens)
    writer.add_token_scores([-float(i) for i in range(len(tokens))])
    writer.add_token_types(
        [3 if t in SPECIALS else 6 if t.startswith("<0x") and len(t) == 6 else 1 for t in tokens]
    )
    for name in ("bos", "eos", "unk", "pad"):
        getattr(writer, f"add_{name}_token_id")(tokenizer.convert_tokens_to_ids(f"<{name}>"))
    writer.add_add_bos_token(True)
    writer.add_add_eos_token(False)
    writer.add_chat_template(template)
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.GEMMA3, cfg.num_hidden_layers)
    for key, tensor in lm.state_dict().items():
        gguf_name = names.get_name("model." + key, try_suffixes=(".weight",))
        assert gguf_name, key
        data = tensor.detach().float().numpy()
        if key.endswith("norm.weight"):
            data = data + 1.0
        writer.add_tensor(gguf_name, np.ascontiguousarray(data, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return Path(path)
