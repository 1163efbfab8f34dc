"""A random-weight T5Gemma encoder + tokenizer in the ``t5gemma-b-b-ul2/`` layout the SA3 repos bundle.

The folder holds ``config.json`` (the encoder-decoder format of google/t5gemma-b-b-ul2),
``model.safetensors`` (bfloat16 encoder weights under ``model.encoder.``) and a small BPE
``tokenizer.json`` that, like Gemma's, prepends ``<bos>`` and pads with ``<pad>`` = 0.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import save_file

SPECIALS = ["<pad>", "<eos>", "<bos>", "<unk>"]  # ids 0..3, as in Gemma
_CORPUS = (
    "warm analog synth arpeggio with deep sub bass 120 BPM lo-fi hip hop beat dusty vinyl crackle "
    "mellow piano chords rain on a tin roof distant thunder trap drums ambient pad strings guitar "
    "TrackType: Music, VocalType: Instrumental, Genre: Techno, Instruments: kick, hi-hat, snare "
    "footsteps on gravel door slam birds forest wind low quality noise distortion orchestral "
)

_SIZES = {
    # layers, heads, intermediate size, vocab
    "tiny": (2, 1, 32, 288),
    "released": (12, 12, 2048, 256000),
}


def _module_config(layers: int, heads: int, intermediate: int, vocab: int) -> dict:
    return {
        "attention_bias": False,
        "attention_dropout": 0.0,
        "attn_logit_softcapping": 50.0,
        "bos_token_id": 2,
        "eos_token_id": 1,
        "final_logit_softcapping": 30.0,
        "head_dim": 64,
        "hidden_activation": "gelu_pytorch_tanh",
        "hidden_size": 768,
        "initializer_range": 0.02,
        "intermediate_size": intermediate,
        "layer_types": ["sliding_attention" if i % 2 == 0 else "full_attention" for i in range(layers)],
        "max_position_embeddings": 8192,
        "model_type": "t5_gemma_module",
        "num_attention_heads": heads,
        "num_hidden_layers": layers,
        "num_key_value_heads": heads,
        "pad_token_id": 0,
        "query_pre_attn_scalar": 64,
        "rms_norm_eps": 1e-06,
        "rope_theta": 10000.0,
        "sliding_window": 4096,
        "torch_dtype": "bfloat16",
        "use_cache": True,
        "vocab_size": vocab,
    }


def text_encoder_config(size: str = "tiny") -> dict:
    """``config.json`` of the bundled text encoder at ``size`` ("tiny" or "released")."""
    if size not in _SIZES:
        raise ValueError(f"Unknown size {size!r}; use one of {sorted(_SIZES)}.")
    layers, heads, intermediate, vocab = _SIZES[size]
    return {
        "architectures": ["T5GemmaForConditionalGeneration"],
        "bos_token_id": 2,
        "classifier_dropout_rate": 0.0,
        "decoder": _module_config(1, heads, intermediate, vocab),
        "dropout_rate": 0.0,
        "encoder": _module_config(layers, heads, intermediate, vocab),
        "eos_token_id": 1,
        "initializer_range": 0.02,
        "is_encoder_decoder": True,
        "model_type": "t5gemma",
        "pad_token_id": 0,
        "tie_word_embeddings": True,
        "torch_dtype": "bfloat16",
        "use_cache": True,
        "vocab_size": vocab,
    }


def _write_tokenizer(folder: Path, vocab_size: int) -> None:
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.normalizer = normalizers.NFKC()
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first")
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="first")
    trainer = trainers.BpeTrainer(
        vocab_size=min(vocab_size, 288), special_tokens=SPECIALS, show_progress=False
    )
    tok.train_from_iterator([_CORPUS], trainer=trainer)
    tok.post_processor = processors.TemplateProcessing(
        single="<bos> $A", pair="$A $B:1", special_tokens=[("<bos>", 2)]
    )
    tok.save(str(folder / "tokenizer.json"))
    (folder / "tokenizer_config.json").write_text(
        json.dumps(
            {
                "add_bos_token": True,
                "add_eos_token": False,
                "bos_token": "<bos>",
                "eos_token": "<eos>",
                "pad_token": "<pad>",
                "unk_token": "<unk>",
                "clean_up_tokenization_spaces": False,
                "padding_side": "right",
                "tokenizer_class": "PreTrainedTokenizerFast",
            },
            indent=2,
        )
    )


def write_text_encoder(folder, size: str = "tiny", seed: int = 0) -> Path:
    """Write a random-weight text encoder folder and return its path."""
    from transformers import AutoConfig, T5GemmaEncoderModel

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    config = text_encoder_config(size)
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    _write_tokenizer(folder, config["vocab_size"])
    hf_config = AutoConfig.from_pretrained(str(folder), is_encoder_decoder=False)
    torch.manual_seed(seed)
    model = T5GemmaEncoderModel(hf_config).to(torch.bfloat16)
    tensors = {f"model.{k}": v.contiguous() for k, v in model.state_dict().items()}
    save_file(tensors, str(folder / "model.safetensors"), metadata={"format": "pt"})
    return folder
