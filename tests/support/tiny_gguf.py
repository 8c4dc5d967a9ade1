"""Write a tiny random-weight llama GGUF model for tests against a real server.

The model is meant to be loaded by llama.cpp (through llama-cpp-python's
OpenAI-compatible server) so the client code is exercised against real
tokenization, chat templating, sampling and streaming without downloading a
model. Its output is gibberish, but it is always printable ASCII: the weights
are shaped so that control tokens (including end-of-generation) and
non-printable byte tokens can never win sampling, which also means every
completion runs exactly to ``max_tokens`` and ends with
``finish_reason == "length"`` unless a stop sequence matches first.

The file is fully determined by ``seed``; writing it takes well under a second.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

__all__ = [
    "CHAT_TEMPLATE",
    "SPECIAL_TOKENS",
    "TinyLlamaSpec",
    "make_tiny_llama_gguf",
    "vocabulary",
]

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' }}"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% elif message['content'] %}{% for part in message['content'] %}"
    "{% if part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}"
    "{{ '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
"""ChatML, tolerant of ``content`` being None or a list of text parts."""

SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")

_TOKEN_NORMAL = 1
_TOKEN_CONTROL = 3

_CORPUS = """
Jupyter notebooks mix code, prose and output in one document. A language model
can answer questions, write a function, explain an error or summarize a table.
The quick brown fox jumps over the lazy dog. Hello world! What is the answer?
Streaming tokens arrive one chunk at a time; the client joins them into text.
import numpy as np; print(x + 1) # result: 42, done.
"""
"""Text the merge table is learned from, so merged tokens look word-like."""


class TinyLlamaSpec:
    """Shape of the generated model (kept small so the server answers in ms)."""

    n_embd = 64
    n_layer = 2
    n_head = 4
    n_head_kv = 2
    n_ff = 128
    n_ctx = 512
    n_merges = 240
    rms_eps = 1e-5
    rope_freq_base = 10000.0


def _bytes_to_unicode() -> Dict[int, str]:
    """GPT-2's reversible byte -> printable unicode mapping used by BPE vocabs."""
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    mapping = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in mapping:
            mapping[b] = chr(256 + extra)
            extra += 1
    return mapping


def _learn_merges(text: str, limit: int) -> List[Tuple[str, str]]:
    """Tiny deterministic BPE trainer over GPT-2 style pre-tokenized words."""
    b2u = _bytes_to_unicode()
    words = re.findall(r" ?[A-Za-z]+| ?[0-9]+| ?[^\sA-Za-z0-9]+", " ".join(text.split()))
    freq: Counter = Counter(
        tuple(b2u[b] for b in word.encode("utf-8")) for word in words
    )
    merges: List[Tuple[str, str]] = []
    while len(merges) < limit:
        pairs: Counter = Counter()
        for symbols, count in freq.items():
            for pair in zip(symbols, symbols[1:]):
                pairs[pair] += count
        if not pairs:
            break
        best = min(pairs, key=lambda p: (-pairs[p], p))
        merges.append(best)
        merged: Counter = Counter()
        for symbols, count in freq.items():
            out: List[str] = []
            i = 0
            while i < len(symbols):
                if i + 1 < len(symbols) and (symbols[i], symbols[i + 1]) == best:
                    out.append(symbols[i] + symbols[i + 1])
                    i += 2
                else:
                    out.append(symbols[i])
                    i += 1
            merged[tuple(out)] += count
        freq = merged
    return merges


def _build_vocab(n_merges: int) -> Tuple[List[str], List[int], List[str], np.ndarray]:
    """Return tokens, token types, merge strings and a mask of sampleable ids.

    Byte tokens for all 256 bytes are required: llama.cpp's BPE tokenizer
    falls back to them for any input text. Only printable ASCII (and merges,
    which are built from it) may be generated.
    """
    b2u = _bytes_to_unicode()
    tokens = [b2u[b] for b in range(256)]
    allowed = [0x20 <= b <= 0x7E for b in range(256)]
    merges = _learn_merges(_CORPUS, n_merges)
    seen = set(tokens)
    for left, right in merges:
        token = left + right
        if token not in seen:
            seen.add(token)
            tokens.append(token)
            allowed.append(True)
    types = [_TOKEN_NORMAL] * len(tokens)
    for special in SPECIAL_TOKENS:
        tokens.append(special)
        types.append(_TOKEN_CONTROL)
        allowed.append(False)
    merge_strings = [f"{left} {right}" for left, right in merges]
    return tokens, types, merge_strings, np.array(allowed, dtype=bool)


def _weights(
    rng: np.random.Generator, spec: TinyLlamaSpec, allowed: np.ndarray
) -> Dict[str, np.ndarray]:
    """Random weights plus a constant residual channel that gates the vocabulary.

    Residual dimension 0 is set to a constant by the embeddings and never
    written by any layer, so after the final RMS norm it is a large positive
    value. The output matrix's column 0 turns that into a big positive bias
    for sampleable tokens and a big negative one for everything else.
    """
    n_vocab = allowed.shape[0]
    d, f = spec.n_embd, spec.n_ff
    head_dim = d // spec.n_head
    d_kv = head_dim * spec.n_head_kv

    def normal(*shape: int, std: float) -> np.ndarray:
        return (rng.standard_normal(shape) * std).astype(np.float32)

    tensors: Dict[str, np.ndarray] = {}
    embd = normal(n_vocab, d, std=0.5)
    embd[:, 0] = 4.0
    tensors["token_embd.weight"] = embd
    for i in range(spec.n_layer):
        p = f"blk.{i}."
        tensors[p + "attn_norm.weight"] = np.ones(d, dtype=np.float32)
        tensors[p + "attn_q.weight"] = normal(d, d, std=0.3)
        tensors[p + "attn_k.weight"] = normal(d_kv, d, std=0.3)
        tensors[p + "attn_v.weight"] = normal(d_kv, d, std=0.3)
        wo = normal(d, d, std=0.1)
        wo[0, :] = 0.0
        tensors[p + "attn_output.weight"] = wo
        tensors[p + "ffn_norm.weight"] = np.ones(d, dtype=np.float32)
        tensors[p + "ffn_gate.weight"] = normal(f, d, std=0.3)
        tensors[p + "ffn_up.weight"] = normal(f, d, std=0.3)
        down = normal(d, f, std=0.1)
        down[0, :] = 0.0
        tensors[p + "ffn_down.weight"] = down
    tensors["output_norm.weight"] = np.ones(d, dtype=np.float32)
    out = normal(n_vocab, d, std=0.6)
    out[:, 0] = np.where(allowed, 4.0, -4.0).astype(np.float32)
    tensors["output.weight"] = out
    return tensors


def make_tiny_llama_gguf(
    path: Union[str, os.PathLike],
    *,
    seed: int = 0,
    name: str = "tiny-llama",
    pooling: Optional[str] = None,
) -> Path:
    """Write the tiny llama GGUF to ``path`` and return it as a ``Path``.

    ``pooling`` ("mean", "cls", "last") makes llama.cpp pool the token vectors
    into one embedding per text; without it an embedding server sends one
    vector per token.

    Requires the ``gguf`` package (installed by scripts/install_llama_server.sh).
    """
    import gguf

    spec = TinyLlamaSpec()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tokens, types, merges, allowed = _build_vocab(spec.n_merges)
    rng = np.random.default_rng(seed)
    tensors = _weights(rng, spec, allowed)

    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name(name)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    writer.add_vocab_size(len(tokens))
    writer.add_context_length(spec.n_ctx)
    writer.add_embedding_length(spec.n_embd)
    writer.add_block_count(spec.n_layer)
    writer.add_feed_forward_length(spec.n_ff)
    writer.add_head_count(spec.n_head)
    writer.add_head_count_kv(spec.n_head_kv)
    writer.add_rope_dimension_count(spec.n_embd // spec.n_head)
    writer.add_rope_freq_base(spec.rope_freq_base)
    writer.add_layer_norm_rms_eps(spec.rms_eps)

    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("gpt-2")
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges(merges)
    writer.add_bos_token_id(tokens.index("<|endoftext|>"))
    writer.add_eos_token_id(tokens.index("<|im_end|>"))
    writer.add_add_bos_token(False)
    writer.add_add_eos_token(False)
    writer.add_chat_template(CHAT_TEMPLATE)
    if pooling is not None:
        writer.add_pooling_type(gguf.PoolingType[pooling.upper()])

    for tensor_name, data in tensors.items():
        writer.add_tensor(tensor_name, data)

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def vocabulary() -> Sequence[str]:
    """The token strings of the generated model, in id order."""
    return _build_vocab(TinyLlamaSpec.n_merges)[0]
