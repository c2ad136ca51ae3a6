"""Data: rows from files -> token ids with a loss mask -> packed or padded batches.

This is the part of training the ecosystem leaves to each trainer, and where most trainer
bugs live (wrong chat template, missing EOS, loss on prompt tokens, packing that leaks):
- text (.txt, or jsonl/json rows with "text"): tokenized, EOS after each document,
  concatenated and cut into max_seq_len blocks; loss on every token (GPT-2 / run_clm.py).
- alpaca rows (instruction, input, output; optional system and history [[q, a], ...]) are
  turned into chat messages; chat rows carry `messages`. Both are rendered with the
  tokenizer's chat template; the loss covers assistant tokens only; every assistant turn
  ends with EOS.
- packing: examples are placed into max_seq_len rows (first-fit decreasing); position ids
  restart at 0 for each example, and no attention_mask is passed, so transformers builds a
  block-diagonal causal mask from the position ids (masking_utils.find_packed_sequence_indices,
  sdpa and eager alike): no attention across examples.
"""
from __future__ import annotations

import hashlib
import json
import math
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from advisor.errors import UserError

IGNORE = -100  # label value ignored by transformers' ForCausalLMLoss (torch cross_entropy ignore_index)
ROLES = ("system", "user", "assistant")
ROW_FIELDS = ('{"instruction", "input"?, "output"} (alpaca), {"messages": [{"role", "content"}]} (chat) '
              'or {"text"} (raw text)')


# --- reading rows -------------------------------------------------------------------------------

def _json_array_rows(text: str, path: str) -> Iterator[tuple[int, Any]]:
    """Elements of a JSON array with the line each starts on (json.load would lose the lines)."""
    dec = json.JSONDecoder()
    i = text.index("[") + 1
    n = len(text)

    def skip_ws(j: int) -> int:
        while j < n and text[j] in " \t\r\n":
            j += 1
        return j

    i = skip_ws(i)
    if i < n and text[i] == "]":
        return
    while True:
        line = text.count("\n", 0, i) + 1
        try:
            obj, i = dec.raw_decode(text, i)
        except json.JSONDecodeError as e:
            raise UserError(f"{path}:{e.lineno}: invalid JSON ({e.msg})") from None
        yield line, obj
        i = skip_ws(i)
        if i < n and text[i] == ",":
            i = skip_ws(i + 1)
            continue
        if i < n and text[i] == "]":
            return
        raise UserError(f"{path}:{text.count(chr(10), 0, i) + 1}: invalid JSON (expected ',' or ']')")


def _check_data_file(p: Path, path: str) -> None:
    if p.is_dir():
        raise UserError(f"data.paths: {path} is a folder; list its files (.txt, .jsonl or .json) instead")
    if not p.is_file():
        raise UserError(f"data.paths: {path} does not exist")


def read_rows(path: str) -> Iterator[tuple[str, Any]]:
    """(where, row) for every row of a .txt / .jsonl / .json file; `where` is 'file:line'."""
    p = Path(path)
    _check_data_file(p, path)
    raw = p.read_bytes()
    try:
        text = raw.decode("utf-8-sig")  # -sig: a leading byte-order mark is dropped
    except UnicodeDecodeError as e:
        line = raw[:e.start].count(b"\n") + 1
        raise UserError(f"{path}:{line}: not UTF-8 text ({e.reason} at byte {e.start}); save the file as UTF-8 "
                        f"(e.g. iconv -f latin1 -t utf-8)") from None
    suffix = p.suffix.lower()
    if suffix in (".txt", ".md"):
        if text.strip():
            yield f"{path}:1", {"text": text}
        return
    if suffix not in (".jsonl", ".json"):
        raise UserError(f"data.paths: {path}: unsupported file type {suffix or '(none)'}; use .txt, .jsonl or .json")
    if suffix == ".json" and text.lstrip().startswith("["):
        for line, obj in _json_array_rows(text, path):
            yield f"{path}:{line}", obj
        return
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            yield f"{path}:{n}", json.loads(line)
        except json.JSONDecodeError as e:
            raise UserError(f"{path}:{n}: invalid JSON ({e.msg} at column {e.colno}); expected one JSON object per "
                            f"line: {ROW_FIELDS}") from None


def detect_format(row: Any, where: str) -> str:
    """text | alpaca | chat, from the keys of a row."""
    if not isinstance(row, dict):
        raise UserError(f"{where}: expected a JSON object per row, got {type(row).__name__}")
    if "messages" in row:
        return "chat"
    if "instruction" in row or "output" in row:
        return "alpaca"
    if "text" in row:
        return "text"
    raise UserError(f"{where}: cannot tell the format from fields {sorted(row)}; expected {ROW_FIELDS}")


def _str_field(row: dict, key: str, where: str, required: bool) -> str:
    v = row.get(key)
    if v is None:
        if required:
            raise UserError(f"{where}: missing field '{key}'")
        return ""
    if not isinstance(v, str):
        raise UserError(f"{where}: field '{key}' must be a string, got {type(v).__name__}")
    return v


def alpaca_to_messages(row: dict, where: str) -> list[dict[str, str]]:
    """Alpaca row -> chat messages (LLaMA-Factory's alpaca format: history is [[query, response], ...])."""
    instruction = _str_field(row, "instruction", where, True)
    output = _str_field(row, "output", where, True)
    inp = _str_field(row, "input", where, False)
    system = _str_field(row, "system", where, False)
    msgs: list[dict[str, str]] = [{"role": "system", "content": system}] if system else []
    history = row.get("history") or []
    if not isinstance(history, list) or not all(isinstance(h, (list, tuple)) and len(h) == 2 for h in history):
        raise UserError(f"{where}: field 'history' must be a list of [query, response] pairs")
    for q, a in history:
        msgs += [{"role": "user", "content": str(q)}, {"role": "assistant", "content": str(a)}]
    user = f"{instruction}\n\n{inp}" if inp.strip() else instruction
    if not user.strip() or not output.strip():
        raise UserError(f"{where}: empty {'instruction' if not user.strip() else 'output'}")
    return msgs + [{"role": "user", "content": user}, {"role": "assistant", "content": output}]


def chat_messages(row: dict, where: str) -> list[dict[str, str]]:
    """Validate a chat row's `messages`: roles system/user/assistant, string content, ends with the assistant."""
    msgs = row.get("messages")
    if not isinstance(msgs, list) or not msgs:
        raise UserError(f"{where}: 'messages' must be a non-empty list of {{role, content}}")
    out = []
    for i, m in enumerate(msgs):
        if isinstance(m, dict) and isinstance(m.get("role"), str) and m["role"] not in ROLES:
            raise UserError(f"{where}: messages[{i}]: unknown role {m['role']!r}; expected system, user or assistant")
        if not isinstance(m, dict) or m.get("role") not in ROLES or not isinstance(m.get("content"), str):
            raise UserError(f"{where}: messages[{i}] must be {{role: system|user|assistant, content: string}}")
        out.append({"role": m["role"], "content": m["content"]})
    if out[-1]["role"] != "assistant":
        raise UserError(f"{where}: the last message must be the assistant's (it is what the loss trains)")
    if out[0]["role"] == "assistant":  # chat templates cannot render the empty prompt before it
        raise UserError(f"{where}: messages[0] is the assistant's; expected a user (or system) message first, "
                        "the prompt the response answers")
    if not out[-1]["content"].strip():   # as an alpaca row's empty output: only the end-of-turn token would train
        raise UserError(f"{where}: messages[{len(out) - 1}] (the assistant's reply the loss trains) is empty")
    return out


# --- tokenizing ------------------------------------------------------------------------------

@dataclass
class Example:
    """One tokenized example: ids and labels (IGNORE where no loss is taken)."""

    input_ids: list[int]
    labels: list[int]
    where: str = ""


@dataclass
class DataStats:
    """What the data turned into; printed before training and stored in the run summary."""

    format: str = ""
    files: int = 0
    rows: int = 0
    examples: int = 0
    train_examples: int = 0
    eval_examples: int = 0
    train_rows: int = 0
    eval_rows: int = 0
    train_tokens: int = 0
    train_loss_tokens: int = 0
    truncated: int = 0
    dropped_no_response: int = 0
    packed: bool = False
    fill: float = 1.0  # real tokens / (rows x max_seq_len): how full the packed rows are
    warnings: list[str] = field(default_factory=list)


def _segments(tokenizer: Any, messages: list[dict[str, str]], where: str) -> list[tuple[str, bool]]:
    """Split the rendered conversation into (text, trained) pieces: assistant turns trained, the rest not.

    Each assistant turn's text is render(messages[:i+1]) minus render(messages[:i], add_generation_prompt),
    so the prompt part matches what the model sees at inference.
    """
    def render(msgs: list[dict[str, str]], gen: bool) -> str:
        return tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=gen)

    pieces: list[tuple[str, bool]] = []
    done = ""
    for i, m in enumerate(messages):
        if m["role"] != "assistant":
            continue
        prompt = render(messages[:i], True)
        full = render(messages[: i + 1], False)
        if not prompt.startswith(done) or not full.startswith(prompt):
            raise UserError(f"{where}: the chat template does not render turns as prefixes of each other, so the "
                            "loss cannot be limited to responses; set tokenizer.chat_template")
        pieces += [(prompt[len(done):], False), (full[len(prompt):], True)]
        done = full
    return [(t, trained) for t, trained in pieces if t]


def tokenize_sft(tokenizer: Any, conversations: list[tuple[str, list[dict[str, str]]]], max_seq_len: int,
                 stats: DataStats) -> list[Example]:
    """Chat-template rendering + response-only labels + EOS + truncation, in one batched tokenizer call."""
    eos = tokenizer.eos_token_id
    all_pieces = [(where, _segments(tokenizer, msgs, where)) for where, msgs in conversations]
    flat = [t for _, pieces in all_pieces for t, _ in pieces]
    ids_flat = tokenizer(flat, add_special_tokens=False)["input_ids"] if flat else []
    out: list[Example] = []
    k = 0
    for where, pieces in all_pieces:
        ids: list[int] = []
        labels: list[int] = []
        for _, trained in pieces:
            seg = list(ids_flat[k])
            k += 1
            if trained and eos not in seg:
                seg.append(eos)  # the template did not close the turn with EOS: add it so the model learns to stop
            ids += seg
            labels += seg if trained else [IGNORE] * len(seg)
        if len(ids) > max_seq_len:
            stats.truncated += 1
            ids, labels = ids[:max_seq_len], labels[:max_seq_len]
        if all(lab == IGNORE for lab in labels[1:]):
            stats.dropped_no_response += 1
            continue
        out.append(Example(ids, labels, where))
    return out


def tokenize_text(tokenizer: Any, docs: list[str], max_seq_len: int) -> list[Example]:
    """Documents (after BOS where the tokenizer adds one) + EOS, concatenated and cut into max_seq_len blocks (the last, shorter block is kept)."""
    from training.tokenizer import adds_bos

    eos = tokenizer.eos_token_id
    bos = [tokenizer.bos_token_id] if adds_bos(tokenizer) else []  # as the tokenizer's own pretraining data began
    stream: list[int] = []
    for ids in tokenizer(docs, add_special_tokens=False)["input_ids"]:
        stream += bos + ids + [eos]
    blocks = [stream[i:i + max_seq_len] for i in range(0, len(stream), max_seq_len)]
    return [Example(b, list(b), f"block {n}") for n, b in enumerate(blocks) if len(b) >= 2]


# --- packing and collation ------------------------------------------------------------------------

def pack(lengths: list[int], capacity: int) -> list[list[int]]:
    """First-fit decreasing bin packing of example indices into rows of `capacity` tokens (deterministic)."""
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    bins: list[list[int]] = []
    free: list[int] = []
    for i in order:
        n = lengths[i]
        for b, room in enumerate(free):
            if room >= n:
                bins[b].append(i)
                free[b] -= n
                break
        else:
            bins.append([i])
            free.append(capacity - n)
    return bins


def packed_rows(examples: list[Example], capacity: int) -> list[dict[str, list[int]]]:
    """Rows of several examples each, with position ids restarting per example.

    The first label of every example is IGNORE: the loss shifts labels by one, so that label
    would otherwise be predicted from the previous example's last token.
    """
    rows = []
    for b in pack([len(e.input_ids) for e in examples], capacity):
        ids: list[int] = []
        labels: list[int] = []
        pos: list[int] = []
        for i in sorted(b):
            e = examples[i]
            ids += e.input_ids
            labels += [IGNORE] + e.labels[1:]
            pos += list(range(len(e.input_ids)))
        rows.append({"input_ids": ids, "labels": labels, "position_ids": pos})
    return rows


def plain_rows(examples: list[Example]) -> list[dict[str, list[int]]]:
    """One example per row (padded per batch by the collator)."""
    return [{"input_ids": e.input_ids, "labels": e.labels} for e in examples]


class Collator:
    """Pads a batch of rows to its longest row, or (flat) concatenates them into one row.

    Packed rows: no attention_mask (that is what lets transformers derive the per-example mask
    from position_ids); the padding gets positions 0.. so it forms its own segment, label IGNORE.
    Plain rows: attention_mask zeros on padding (transformers' default padding collation).
    flat (packed rows for flash-attention's varlen kernel): the whole batch becomes one row with
    no padding at all, plus the sequence boundaries (`cu_seq_lens_q/k`, `max_length_q/k`) that
    transformers' flash-attention path reads; it infers them from position_ids only for a batch
    of one row (modeling_flash_attention_utils._is_packed_sequence), and TRL's padding-free
    collator passes them the same way. On sdpa/eager the one row gets the block-diagonal mask.
    """

    def __init__(self, pad_id: int, packed: bool, flat: bool = False):
        self.pad_id = pad_id
        self.packed = packed
        self.flat = flat and packed

    def __call__(self, rows: list[dict[str, list[int]]]) -> dict[str, Any]:
        import torch

        if self.flat:
            return self._flat(rows)
        # A batch whose rows hold one example each needs no per-example mask: collate it the plain way,
        # so fixed-length data costs exactly what the padding path costs (no mask built from position ids).
        packed = self.packed and any(r["position_ids"].count(0) > 1 for r in rows)
        width = max(len(r["input_ids"]) for r in rows)
        ids, labels, extra = [], [], []
        for r in rows:
            pad = width - len(r["input_ids"])
            ids.append(r["input_ids"] + [self.pad_id] * pad)
            labels.append(r["labels"] + [IGNORE] * pad)
            if packed:
                extra.append(r["position_ids"] + list(range(pad)))
            else:
                extra.append([1] * len(r["input_ids"]) + [0] * pad)
        batch = {"input_ids": torch.tensor(ids), "labels": torch.tensor(labels)}
        batch["position_ids" if packed else "attention_mask"] = torch.tensor(extra)
        return batch

    def _flat(self, rows: list[dict[str, list[int]]]) -> dict[str, Any]:
        import torch

        ids = [t for r in rows for t in r["input_ids"]]
        labels = [t for r in rows for t in r["labels"]]
        pos = [t for r in rows for t in r["position_ids"]]
        starts = [i for i, p in enumerate(pos) if p == 0] + [len(pos)]
        cu = torch.tensor(starts, dtype=torch.int32)
        longest = int(cu.diff().max())
        return {"input_ids": torch.tensor([ids]), "labels": torch.tensor([labels]), "position_ids": torch.tensor([pos]),
                "cu_seq_lens_q": cu, "cu_seq_lens_k": cu, "max_length_q": longest, "max_length_k": longest}


def packed_real_tokens(position_ids: Any, labels: Any) -> int:
    """Tokens of a packed batch that are not padding: the Collator pads a packed row with one last segment
    (positions from 0) whose labels are all IGNORE, while every real example has a trained label after its
    first token (examples without one are dropped in tokenize_sft)."""
    n = 0
    for pos, lab in zip(position_ids.tolist(), labels.tolist()):
        last = len(pos) - 1 - pos[::-1].index(0)
        n += last if last > 0 and all(x == IGNORE for x in lab[last:]) else len(pos)
    return n


# --- the whole pipeline -----------------------------------------------------------------------------

@dataclass
class Prepared:
    """Train/eval rows ready for the Trainer, the examples before packing (for --inspect-data) and stats."""

    train: list[dict[str, list[int]]]
    eval: list[dict[str, list[int]]]
    examples: list[Example]
    stats: DataStats
    sft: bool
    tokenizer: Any = None


def load_records(paths: list[str], fmt: str, max_examples: int | None) -> tuple[str, list[tuple[str, Any]]]:
    """All rows of all files with one format (auto: decided per file from its first row; must agree)."""
    first: dict[Path, int] = {}
    for i, path in enumerate(paths, 1):       # a file listed twice would train its examples twice, unannounced
        key = Path(path).resolve()
        if key in first:
            raise UserError(f"data.paths: {path} is listed twice (items {first[key]} and {i}); list each file once "
                            "(to weight a file, repeat its rows in it)")
        first[key] = i
    records: list[tuple[str, Any]] = []
    formats = set()
    for path in paths:
        file_fmt = fmt
        for where, row in read_rows(path):
            row_fmt = detect_format(row, where)
            if file_fmt == "auto":
                file_fmt = row_fmt
            if row_fmt != file_fmt:
                if fmt == "auto":
                    raise UserError(f"{where}: a {row_fmt} row in a file whose first row is {file_fmt}")
                raise UserError(f"{where}: data.format is {fmt} but this row has fields {sorted(row)}")
            records.append((where, row))
            if max_examples and len(records) >= max_examples:
                break
        if file_fmt != "auto":
            formats.add(file_fmt)
        if max_examples and len(records) >= max_examples:
            break
    if not records:
        raise UserError(f"data.paths: no rows in {', '.join(paths)} (empty dataset)")
    sft = formats & {"alpaca", "chat"}
    if sft and "text" in formats:
        raise UserError("data.paths: mixes raw text with instruction/chat data; train them in two runs")
    return ("text" if not sft else "+".join(sorted(sft))), records


def split(n: int, fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Shuffled (train, eval) index lists; eval gets ceil(fraction * n) items but never all of them."""
    if fraction <= 0 or n < 2:
        return list(range(n)), []
    idx = list(range(n))
    random.Random(seed).shuffle(idx)
    n_eval = min(n - 1, max(1, math.ceil(fraction * n - 1e-9)))
    return sorted(idx[n_eval:]), sorted(idx[:n_eval])


def prepare(tokenizer: Any, paths: list[str], fmt: str = "auto", max_seq_len: int = 512, packing: bool = True,
            eval_fraction: float = 0.0, seed: int = 42, max_examples: int | None = None) -> Prepared:
    """Files -> Prepared. Raises UserError with file:line for malformed rows, missing fields or no data."""
    kind, records = load_records(paths, fmt, max_examples)
    stats = DataStats(format=kind, files=len(paths), rows=len(records))
    sft = kind != "text"
    if sft:
        convs = [(w, chat_messages(r, w) if "messages" in r else alpaca_to_messages(r, w)) for w, r in records]
        examples = tokenize_sft(tokenizer, convs, max_seq_len, stats)
        if stats.truncated:
            stats.warnings.append(f"{stats.truncated} of {len(records)} examples were longer than "
                                  f"data.max_seq_len={max_seq_len} and were truncated (their EOS is cut off)")
        if stats.dropped_no_response:
            stats.warnings.append(f"{stats.dropped_no_response} examples had no response tokens left after "
                                  "truncation and were dropped")
    else:
        examples = tokenize_text(tokenizer, [_str_field(r, "text", w, True) for w, r in records], max_seq_len)
    if not examples:
        why = (f": all {stats.dropped_no_response} examples had no response tokens left within "
               f"data.max_seq_len={max_seq_len} (raise it)" if stats.dropped_no_response else "")
        raise UserError(f"data.paths: no usable examples in {', '.join(paths)}{why}")
    stats.examples = len(examples)
    tr_idx, ev_idx = split(len(examples), eval_fraction, seed)
    train_ex = [examples[i] for i in tr_idx]
    eval_ex = [examples[i] for i in ev_idx]
    stats.packed = sft and packing
    rows = (lambda ex: packed_rows(ex, max_seq_len)) if stats.packed else plain_rows
    train, ev = rows(train_ex), rows(eval_ex)
    stats.train_examples, stats.eval_examples = len(train_ex), len(eval_ex)
    stats.train_rows, stats.eval_rows = len(train), len(ev)
    stats.train_tokens = sum(len(e.input_ids) for e in train_ex)
    stats.train_loss_tokens = sum(sum(1 for lab in e.labels[1:] if lab != IGNORE) for e in train_ex)
    stats.fill = stats.train_tokens / max(1, len(train) * max_seq_len)
    return Prepared(train, ev, examples, stats, sft, tokenizer)


def files_digest(paths: list[str]) -> dict[str, str]:
    """sha256 of each data file: part of the resume fingerprint (changed data refuses a resume)."""
    out = {}
    for p in paths:
        _check_data_file(Path(p), p)
        h = hashlib.sha256()
        with open(p, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        out[str(Path(p).resolve())] = h.hexdigest()
    return out
