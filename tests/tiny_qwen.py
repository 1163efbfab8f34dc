"""A tiny random-weight Qwen3.5 checkpoint, laid out like ``Qwen/Qwen3.5-2B`` on the Hub.

Same architecture as the real model (``Qwen3_5ForConditionalGeneration``: a vision tower plus the
hybrid text stack, three Gated DeltaNet layers then one gated full-attention layer, tied embeddings),
with tiny widths; a byte-level BPE tokenizer of 256 byte tokens plus the chat control tokens, and a
ChatML chat template that honours ``enable_thinking``. Weights are drawn wide (std 1) so the logits
are far from uniform, and the embedding rows of the control tokens and of every byte but printable
ASCII are zero, so the tied output layer never scores them highest: greedy decoding always writes
``max_new_tokens`` tokens of visible random text instead of stopping at once.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

CONTROL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
THINK_TOKENS = ["<think>", "</think>"]

# ChatML, written for these tests; with enable_thinking=False the answer starts after an empty
# think block, as Qwen3's template does.
CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}"
    "{{ '<|im_start|>assistant\\n' }}"
    "{%- if enable_thinking is defined and not enable_thinking -%}"
    "{{ '<think>\\n\\n</think>\\n\\n' }}"
    "{%- endif -%}"
    "{%- endif -%}"
)


def _tokenizer():
    from tokenizers.pre_tokenizers import ByteLevel
    from transformers import AddedToken
    from transformers.models.qwen3_5.tokenization_qwen3_5 import Qwen3_5Tokenizer

    vocab = {"<|endoftext|>": 0}
    for char in sorted(ByteLevel.alphabet()):
        vocab[char] = len(vocab)
    tokenizer = Qwen3_5Tokenizer(vocab=vocab, merges=[])
    tokenizer.add_special_tokens(
        {"additional_special_tokens": [AddedToken(t, special=True) for t in CONTROL_TOKENS[1:]]}
    )
    tokenizer.add_tokens([AddedToken(t, special=False) for t in THINK_TOKENS])
    tokenizer.eos_token = "<|im_end|>"
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def _printable(text: str) -> bool:
    return len(text) == 1 and " " <= text <= "~"


# Qwen3.5-2B's language model, from its model card: 24 layers as 6 x (3 Gated DeltaNet + 1 gated
# attention), width 2048, feed-forward 6144, attention 8 query / 2 key-value heads of 256, DeltaNet
# 16 + 16 heads of 128, a 248320-token vocabulary tied to the output layer.
QWEN3_5_2B_TEXT = {
    "vocab_size": 248320,
    "hidden_size": 2048,
    "intermediate_size": 6144,
    "num_hidden_layers": 24,
    "num_attention_heads": 8,
    "num_key_value_heads": 2,
    "head_dim": 256,
    "linear_num_key_heads": 16,
    "linear_num_value_heads": 16,
    "linear_key_head_dim": 128,
    "linear_value_head_dim": 128,
    "linear_conv_kernel_dim": 4,
    "tie_word_embeddings": True,
}
TINY_SIZES = {
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 4,
    "layer_types": ["linear_attention"] * 3 + ["full_attention"],
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 16,
    "linear_num_key_heads": 2,
    "linear_num_value_heads": 2,
    "linear_key_head_dim": 16,
    "linear_value_head_dim": 16,
    "max_position_embeddings": 4096,
    "initializer_range": 1.0,
}


def _config(vocab_size: int, eos_id: int, pad_id: int):
    from transformers import Qwen3_5Config

    text = {
        **QWEN3_5_2B_TEXT,
        **TINY_SIZES,
        "vocab_size": vocab_size,
        "eos_token_id": eos_id,
        "pad_token_id": pad_id,
        "rope_parameters": {
            "rope_type": "default",
            "rope_theta": 10000000.0,
            "partial_rotary_factor": 0.25,
            "mrope_interleaved": True,
            "mrope_section": [1, 1, 0],
        },
    }
    vision = {
        "depth": 1,
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_heads": 2,
        "out_hidden_size": TINY_SIZES["hidden_size"],
        "num_position_embeddings": 16,
    }
    return Qwen3_5Config(text_config=text, vision_config=vision, tie_word_embeddings=True)


def write_tiny_qwen(folder: Path, seed: int = 0) -> Path:
    """Write the tiny checkpoint (config, safetensors, tokenizer, generation config) into ``folder``."""
    from transformers import GenerationConfig, Qwen3_5ForConditionalGeneration

    folder = Path(folder)
    tokenizer = _tokenizer()
    eos_id = tokenizer.convert_tokens_to_ids("<|im_end|>")
    pad_id = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    torch.manual_seed(seed)
    model = Qwen3_5ForConditionalGeneration(_config(len(tokenizer), eos_id, pad_id))
    with torch.no_grad():
        embeddings = model.get_input_embeddings().weight
        for token, index in tokenizer.get_vocab().items():
            if not _printable(tokenizer.convert_tokens_to_string([token])):
                embeddings[index] = 0.0
    model.generation_config = GenerationConfig(
        bos_token_id=pad_id,
        eos_token_id=[eos_id, pad_id],
        pad_token_id=pad_id,
        do_sample=True,
        temperature=1.0,
        top_k=20,
        top_p=0.95,
    )
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def with_model_type(source: Path, folder: Path, model_type: str) -> Path:
    """A copy of a checkpoint folder whose config names another architecture (symlinked weights)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for path in Path(source).iterdir():
        if path.name != "config.json":
            (folder / path.name).symlink_to(path.resolve())
    config = json.loads((Path(source) / "config.json").read_text())
    config["model_type"] = model_type
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    return folder
