"""Tokenizers: train a byte-level BPE for pretraining, or load an existing one; always with EOS, pad and a chat template.

A saved tokenizer loads with plain `AutoTokenizer.from_pretrained` (transformers 5 returns a
TokenizersBackend) and carries its chat template, so outputs work outside tunepath.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterable

from advisor.errors import UserError
from advisor.textio import share_tree

EOS = "<|endoftext|>"
PAD = "<|pad|>"

# tunepath's default chat template, used when a tokenizer has none (documented in training/README.md).
# Alpaca-style plain-text headers work with any vocabulary; every assistant turn ends with the
# tokenizer's EOS so that a tuned model learns to stop; `add_generation_prompt` opens the reply.
# It has the prefix property the loss masking relies on: rendering messages[:i] is a prefix of
# rendering messages[:i+1].
DEFAULT_CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{%- if message['role'] == 'system' %}{{ message['content'] + '\\n\\n' }}"
    "{%- elif message['role'] == 'user' %}{{ '### Instruction:\\n' + message['content'] + '\\n\\n' }}"
    "{%- elif message['role'] == 'assistant' %}{{ '### Response:\\n' + message['content'] + eos_token }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{ '### Response:\\n' }}{%- endif %}"
)
# The same for tokenizers that start every text with BOS (Llama 2, Mistral-7B-v0.1: add_bos_token): their models
# never saw a sequence without it. Chat templates put BOS themselves (apply_chat_template adds no special
# tokens), as Llama's and Gemma's own templates do.
DEFAULT_CHAT_TEMPLATE_BOS = "{{- bos_token }}" + DEFAULT_CHAT_TEMPLATE


def adds_bos(tokenizer: Any) -> bool:
    """Whether the tokenizer puts its BOS before a text when asked for its special tokens (add_bos_token)."""
    bos = getattr(tokenizer, "bos_token_id", None)
    return bos is not None and tokenizer("a")["input_ids"][:1] == [bos]


def train_bpe(texts: Iterable[str], vocab_size: int) -> Any:
    """Byte-level BPE (GPT-2's scheme: no unknown tokens) trained with `tokenizers`, wrapped for transformers."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[EOS, PAD], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(texts, trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=EOS, pad_token=PAD, bos_token=None)
    fast.chat_template = DEFAULT_CHAT_TEMPLATE
    return fast


def prepare(tokenizer: Any, chat_template: str | None = None) -> Any:
    """Make an existing tokenizer usable for training: EOS required, pad defaults to EOS, a chat template set."""
    if tokenizer.eos_token is None:
        raise UserError("tokenizer: has no eos_token; SFT responses must end with EOS (set one in tokenizer_config.json)")
    if tokenizer.pad_token is None:
        # Padding positions carry label -100, so reusing EOS as pad never trains on it.
        tokenizer.pad_token = tokenizer.eos_token
    if chat_template:
        tokenizer.chat_template = chat_template
    elif not getattr(tokenizer, "chat_template", None):
        tokenizer.chat_template = DEFAULT_CHAT_TEMPLATE_BOS if adds_bos(tokenizer) else DEFAULT_CHAT_TEMPLATE
    tokenizer.padding_side = "right"
    return tokenizer


def load(name_or_path: str, trust_remote_code: bool = False, chat_template: str | None = None,
         field: str = "tokenizer.name_or_path") -> Any:
    """AutoTokenizer.from_pretrained + prepare; failures are user errors naming the config field."""
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(name_or_path, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as e:
        raise UserError(f"{field}: cannot load a tokenizer from {name_or_path!r} ({str(e).splitlines()[0]})") from None
    return prepare(tok, chat_template)


def save_atomic(tokenizer: Any, directory: str | os.PathLike) -> Path:
    """save_pretrained into a temp dir beside `directory`, then rename: readers never see half a tokenizer."""
    target = Path(directory)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        tokenizer.save_pretrained(tmp)
        share_tree(tmp)  # mkdtemp made it 0700
        for f in tmp.iterdir():
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target

