"""Data formatting, loss masking, EOS, packing and bad-input errors of training/data.py."""
from __future__ import annotations

import json

import pytest

from advisor.errors import UserError
from training import data as D
from training import tokenizer as T

pytestmark = pytest.mark.usefixtures("torch_one_thread")  # see conftest.torch_one_thread


@pytest.fixture(scope="module")
def tok():
    """A small byte-level BPE with tunepath's default chat template (trained in well under a second)."""
    from conftest import GARDEN_TXT

    return T.prepare(T.train_bpe([GARDEN_TXT.read_text()], 600))


def _write(path, rows):
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
    return str(path)


def test_malformed_jsonl_row_names_file_and_line(tmp_path):
    p = _write(tmp_path / "d.jsonl", [{"text": "ok"}, '{"text": "broken', {"text": "ok"}])
    with pytest.raises(UserError, match=r"d\.jsonl:2: invalid JSON"):
        list(D.read_rows(p))


def test_a_byte_order_mark_is_not_part_of_the_data(tmp_path):
    """Files saved with a BOM: jsonl and .json arrays failed at line 1 ('Unexpected UTF-8 BOM'), .txt kept it as text."""
    rows = [{"instruction": "a", "output": "b"}, {"instruction": "c", "output": "d"}]
    for name, body in (("d.jsonl", "".join(json.dumps(r) + "\n" for r in rows)), ("d.json", json.dumps(rows))):
        (tmp_path / name).write_bytes(b"\xef\xbb\xbf" + body.encode())
        assert [r for _, r in D.read_rows(str(tmp_path / name))] == rows
    (tmp_path / "d.txt").write_bytes(b"\xef\xbb\xbfLeeks are sown in spring.\n")
    assert [r for _, r in D.read_rows(str(tmp_path / "d.txt"))] == [{"text": "Leeks are sown in spring.\n"}]


def test_json_array_rows_carry_their_line(tmp_path):
    p = tmp_path / "d.json"
    p.write_text('[\n  {"instruction": "a", "output": "b"},\n\n  {"instruction": "c"}\n]\n')
    rows = list(D.read_rows(str(p)))
    assert [w for w, _ in rows] == [f"{p}:2", f"{p}:4"]
    with pytest.raises(UserError, match=r"d\.json:4: missing field 'output'"):
        D.alpaca_to_messages(rows[1][1], rows[1][0])


@pytest.mark.parametrize("rows, message", [
    ([], "empty dataset"),
    ([{"prompt": "x"}], "cannot tell the format"),
    ([{"instruction": "x", "output": "y"}, {"text": "z"}], "a text row in a file whose first row is alpaca"),
    ([{"messages": [{"role": "user", "content": "hi"}]}], "last message must be the assistant"),
    ([{"messages": [{"role": "bot", "content": "hi"}]}], r"messages\[0\]: unknown role 'bot'; expected system, user or"),
    ([{"instruction": "x", "output": 3}], "field 'output' must be a string"),
    # a non-string text was an internal IndexError alone and dropped silently beside good rows
    ([{"text": 5}], r"d\.jsonl:1: field 'text' must be a string, got int"),
    ([{"text": "ok"}, {"text": None}], r"d\.jsonl:2: missing field 'text'"),
    ([{"text": "ok"}, {"text": ["a", "b"]}], r"d\.jsonl:2: field 'text' must be a string, got list"),
    # transformers' "Cannot apply chat template to an empty conversation" was an internal error
    ([{"messages": [{"role": "assistant", "content": "hi"}]}], r"d\.jsonl:1: messages\[0\] is the assistant's"),
    # an empty reply trained only the end-of-turn token
    ([{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": " "}]}],
     r"d\.jsonl:1: messages\[1\] \(the assistant's reply the loss trains\) is empty"),
])
def test_bad_rows_are_user_errors(tmp_path, tok, rows, message):
    p = _write(tmp_path / "d.jsonl", rows) if rows else str(tmp_path / "d.jsonl")
    if not rows:
        (tmp_path / "d.jsonl").write_text("\n")
    with pytest.raises(UserError, match=message):
        D.prepare(tok, [p])


def test_unsupported_and_missing_files(tmp_path, tok):
    (tmp_path / "d.csv").write_text("a,b\n")
    with pytest.raises(UserError, match="unsupported file type .csv"):
        D.prepare(tok, [str(tmp_path / "d.csv")])
    with pytest.raises(UserError, match="does not exist"):
        D.prepare(tok, [str(tmp_path / "nope.jsonl")])
    with pytest.raises(UserError, match="is a folder; list its files"):  # it said the folder did not exist
        D.prepare(tok, [str(tmp_path)])
    with pytest.raises(UserError, match="is a folder; list its files"):
        D.files_digest([str(tmp_path)])
    # the same file twice (here once through '..') trained its examples twice without a word
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.jsonl").write_text('{"text": "one"}\n')
    with pytest.raises(UserError, match=r"listed twice \(items 1 and 2\)"):
        D.prepare(tok, [str(tmp_path / "a.jsonl"), str(tmp_path / "sub" / ".." / "a.jsonl")])


def test_alpaca_history_and_system_become_messages():
    msgs = D.alpaca_to_messages({"system": "Be brief.", "instruction": "Sum", "input": "2 and 3", "output": "5",
                                 "history": [["hi", "hello"]]}, "x:1")
    assert [m["role"] for m in msgs] == ["system", "user", "assistant", "user", "assistant"]
    assert msgs[3]["content"] == "Sum\n\n2 and 3"


def test_loss_only_on_responses_and_every_response_ends_with_eos(tok):
    conv = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "When to sow peas?"},
            {"role": "assistant", "content": "In March."}, {"role": "user", "content": "And beans?"},
            {"role": "assistant", "content": "In May."}]
    stats = D.DataStats()
    [ex] = D.tokenize_sft(tok, [("x:1", conv)], 512, stats)
    eos = tok.eos_token_id
    # trained spans = exactly the two responses, each closed by EOS
    spans, cur = [], []
    for tid, lab in zip(ex.input_ids, ex.labels):
        if lab != D.IGNORE:
            assert lab == tid
            cur.append(tid)
        elif cur:
            spans.append(cur)
            cur = []
    spans.append(cur) if cur else None
    assert [tok.decode(s) for s in spans] == ["In March.<|endoftext|>", "In May.<|endoftext|>"]
    assert all(s[-1] == eos for s in spans)
    # the untrained part is the prompt the model sees at inference (chat template + generation prompt)
    prompt = tok.apply_chat_template(conv[:2], tokenize=False, add_generation_prompt=True)
    assert tok.decode(ex.input_ids).startswith(prompt)


def test_chat_rows_are_detected_and_masked(tmp_path, tok):
    rows = [{"messages": [{"role": "user", "content": "Sow leeks when?"}, {"role": "assistant", "content": "February."}]},
            {"messages": [{"role": "system", "content": "Short answers."}, {"role": "user", "content": "Peas?"},
                          {"role": "assistant", "content": "March."}]}]
    prep = D.prepare(tok, [_write(tmp_path / "c.jsonl", rows)], packing=False)
    assert prep.stats.format == "chat" and prep.sft
    trained = [tok.decode([t for t, lab in zip(e.input_ids, e.labels) if lab != D.IGNORE]) for e in prep.examples]
    assert trained == ["February.<|endoftext|>", "March.<|endoftext|>"]


def test_eos_is_appended_when_the_template_does_not_close_turns(tok):
    import copy

    t2 = copy.deepcopy(tok)
    t2.chat_template = ("{% for m in messages %}{{ m['role'] + ': ' + m['content'] + '\n' }}{% endfor %}"
                        "{% if add_generation_prompt %}assistant: {% endif %}")
    [ex] = D.tokenize_sft(t2, [("x:1", [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}])],
                          512, D.DataStats())
    assert ex.input_ids[-1] == tok.eos_token_id and ex.labels[-1] == tok.eos_token_id


def test_over_long_examples_are_truncated_and_counted(tmp_path, tok):
    rows = [{"instruction": "Tell me about gardens.", "output": "word " * 200}, {"instruction": "Hi", "output": "Hello"}]
    prep = D.prepare(tok, [_write(tmp_path / "d.jsonl", rows)], max_seq_len=32, packing=False)
    assert prep.stats.truncated == 1
    assert any("1 of 2 examples were longer" in w for w in prep.stats.warnings)
    assert max(len(r["input_ids"]) for r in prep.train) == 32


def test_a_max_seq_len_that_cuts_every_response_says_so(tmp_path, tok):
    """It said only 'no usable examples', though every row was a good example."""
    p = _write(tmp_path / "d.jsonl", [{"instruction": "When should I sow leeks in the garden?", "output": "In March."}] * 3)
    with pytest.raises(UserError, match=r"all 3 examples had no response tokens left within data.max_seq_len=8 "
                                        r"\(raise it\)"):
        D.prepare(tok, [p], max_seq_len=8)


def test_text_is_concatenated_with_eos_and_cut_into_blocks(tmp_path, tok):
    p = _write(tmp_path / "d.jsonl", [{"text": "the pea is sown in March. " * 20}, {"text": "beans in May"}])
    prep = D.prepare(tok, [p], max_seq_len=16, packing=True)
    assert not prep.sft and not prep.stats.packed
    stream = [t for r in prep.train for t in r["input_ids"]]
    assert stream.count(tok.eos_token_id) == 2 and stream[-1] == tok.eos_token_id
    assert all(len(r["input_ids"]) == 16 for r in prep.train[:-1])
    assert prep.train[0]["labels"] == prep.train[0]["input_ids"]


def test_pack_first_fit_decreasing_keeps_every_example_once():
    lengths = [7, 3, 9, 1, 4, 6, 2, 10, 5]
    bins = D.pack(lengths, 10)
    assert sorted(i for b in bins for i in b) == list(range(len(lengths)))
    assert all(sum(lengths[i] for i in b) <= 10 for b in bins)
    assert len(bins) == 5  # 47 tokens need >= 5 rows of 10


def test_packed_rows_restart_positions_and_mask_first_label():
    ex = [D.Example([1, 2, 3], [D.IGNORE, 2, 3]), D.Example([4, 5], [4, 5])]
    [row] = D.packed_rows(ex, 8)
    assert row["input_ids"] == [1, 2, 3, 4, 5]
    assert row["position_ids"] == [0, 1, 2, 0, 1]
    assert row["labels"] == [D.IGNORE, 2, 3, D.IGNORE, 5]
    batch = D.Collator(pad_id=0, packed=True)([row, {"input_ids": [9], "labels": [9], "position_ids": [0]}])
    assert "attention_mask" not in batch  # transformers derives the per-example mask from position_ids
    assert batch["position_ids"][1].tolist() == [0, 0, 1, 2, 3]  # padding is its own segment
    assert batch["labels"][1].tolist() == [9, D.IGNORE, D.IGNORE, D.IGNORE, D.IGNORE]
    # rows of one example each: plain padding collation (no per-example mask needed)
    single = D.Collator(pad_id=0, packed=True)([{"input_ids": [1, 2], "labels": [1, 2], "position_ids": [0, 1]},
                                                {"input_ids": [3], "labels": [3], "position_ids": [0]}])
    assert "position_ids" not in single and single["attention_mask"].tolist() == [[1, 1], [1, 0]]


def _tiny(model_type: str, attn: str):
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    torch.manual_seed(0)
    cfg = AutoConfig.for_model(model_type, vocab_size=97, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                               num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64)
    m = AutoModelForCausalLM.from_config(cfg, attn_implementation=attn).eval()
    m.config.use_cache = False  # as during training (TrainingArguments.use_cache=False)
    return m


@pytest.mark.parametrize("model_type", ["llama", "qwen2"])
@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_packed_logits_equal_each_example_alone(model_type, attn):
    import torch

    model = _tiny(model_type, attn)
    g = torch.Generator().manual_seed(1)
    examples = [D.Example(ids, list(ids)) for ids in
                (torch.randint(0, 97, (n,), generator=g).tolist() for n in (7, 12, 5))]
    [row] = D.packed_rows(examples, 30)
    batch = D.Collator(pad_id=0, packed=True)([row])
    with torch.no_grad():
        packed = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"]).logits[0]
        leaky = model(input_ids=batch["input_ids"]).logits[0]  # one causal sequence: attends across examples
        start = 0
        for e in examples:  # one row: packed_rows keeps the original order within it
            n = len(e.input_ids)
            alone = model(input_ids=torch.tensor([e.input_ids])).logits[0]
            assert torch.allclose(packed[start:start + n], alone, atol=1e-5), f"example at {start} leaks"
            start += n
    # the control: without restarting position ids the later examples do see the earlier ones
    assert not torch.allclose(leaky[7:19], packed[7:19], atol=1e-3)


def test_split_is_seeded_and_disjoint():
    tr, ev = D.split(100, 0.1, seed=3)
    assert len(ev) == 10 and not set(tr) & set(ev) and sorted(tr + ev) == list(range(100))
    assert D.split(100, 0.1, seed=3) == (tr, ev) and D.split(100, 0.1, seed=4) != (tr, ev)
    assert D.split(1, 0.5, seed=0) == ([0], [])
