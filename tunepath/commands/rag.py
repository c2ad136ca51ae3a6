"""`tunepath rag ...` commands. Heavy libraries are imported inside each command: this module
is imported by the advisor's CLI, which must never pay for torch."""

import json
from pathlib import Path
from typing import List, Optional

import typer

from advisor import retrieval
from rag.ann import KINDS  # the registry is plain Python: faiss loads only when an index is built or read

app = typer.Typer(help="Build, query and evaluate a retrieval index (sentence-transformers + FAISS).",
                  no_args_is_help=True)

_MODE_HELP = "dense (embeddings), bm25 (keywords) or hybrid (reciprocal rank fusion of both)"
_INDEX_HELP = "auto picks " + "; ".join(f"{k.name} when {k.auto_when}" for k in KINDS.values()) + \
    "; or name one: " + ", ".join(KINDS)


def _check_mode(mode: str) -> str:
    from advisor.errors import UserError

    if mode not in ("dense", "bm25", "hybrid"):
        raise UserError(f"--mode {mode}: expected dense, bm25 or hybrid")
    return mode


@app.command("index")
def index_cmd(
    paths: List[Path] = typer.Argument(..., help="files or folders (.txt .md .html .jsonl[.gz] .pdf)"),
    out: str = typer.Option(..., "--out", "-o", help="index folder (created, or updated in place)"),
    model: Optional[str] = typer.Option(None, help="sentence-transformers model: local path or hub id "
                                        "(default: all-MiniLM-L6-v2, bundled)"),
    chunk_tokens: int = typer.Option(retrieval.CHUNK_TOKENS, help="chunk length in embedding-model tokens (capped at what the model reads)"),
    overlap: int = typer.Option(retrieval.CHUNK_OVERLAP, help="tokens shared by consecutive chunks"),
    index: str = typer.Option("auto", help=_INDEX_HELP),
    rebuild: bool = typer.Option(False, help="ignore the existing index and re-embed everything"),
    batch_size: int = typer.Option(retrieval.EMBED_BATCH, help="embedding batch size"),
    as_json: bool = typer.Option(False, "--json", help="print the report as JSON"),
    ray: bool = typer.Option(False, "--ray", help="embed on Ray Data actors (a local Ray cluster unless "
                             "--ray-address); needs tunepath\\[cluster]"),
    ray_address: Optional[str] = typer.Option(None, "--ray-address", help="join this Ray cluster "
                                              "(host:port, ray://host:10001 or auto); implies --ray"),
    workers: Optional[int] = typer.Option(None, "--workers", help="embedding actors with --ray "
                                          "(default: one per GPU, else one per node)"),
) -> None:
    """Index documents; re-running adds new/changed files and drops deleted ones by content hash."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from advisor.console import err, out as console
    from advisor.errors import UserError
    from rag.indexer import build_index

    embedder = None
    if ray or ray_address:
        import logging

        from rag.distributed import RayEmbedder, ray_module

        ray_module()  # imports ray.data, which sets up its loggers; tunepath's bar and note replace its lines
        logging.getLogger("ray.data").setLevel(logging.ERROR)
        embedder = RayEmbedder(address=ray_address, workers=workers)
    elif workers is not None:
        raise UserError("--workers: only with --ray")
    for name, value, low in (("--batch-size", batch_size, 1), ("--chunk-tokens", chunk_tokens, 1),
                             ("--overlap", overlap, 0)):
        if value < low:
            raise UserError(f"{name}: expected an integer >= {low}, got {value}")
    started = {}
    # the bar starts with the first embedded batch, so an error found before (a missing path, a bad file)
    # is the only line on stderr
    bar = Progress(TextColumn("embedding"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("{task.fields[rate]} chunks/s"), TimeRemainingColumn(), console=err, transient=True)
    task = bar.add_task("embed", total=None, rate="-")

    def progress(done: int, total: int) -> None:
        import time

        if "t" not in started:
            bar.start()
        now = time.perf_counter()
        started.setdefault("t", now)
        rate = done / (now - started["t"]) if now > started["t"] else 0.0
        bar.update(task, completed=done, total=total, rate=f"{rate:.1f}")

    try:
        report = build_index([str(p) for p in paths], out, model=model, chunk_tokens=chunk_tokens,
                             overlap=overlap, index=index, rebuild=rebuild, progress=progress,
                             batch_size=batch_size, embedder=embedder)
    except KeyboardInterrupt:  # Ctrl-C: say what the folder now holds (the manifest rename is the commit point)
        if "t" in started:
            bar.stop()
        err.print(f"interrupted: {_what_index_holds(Path(out))}", soft_wrap=True)
        raise typer.Exit(130) from None
    finally:
        if "t" in started and bar.live.is_started:
            bar.stop()
    if embedder is not None and embedder.plan:
        p = embedder.plan
        err.print(f"note: embedded on Ray: {p['actors']} actor(s), {p['resources_per_actor']} each, "
                  f"cluster {p['cluster']}", soft_wrap=True)
    if report.skipped:
        err.print(f"[yellow]warning:[/] skipped {len(report.skipped)} file(s) or line(s): " + "; ".join(
            f"{Path(s.path).name}: {s.reason}" for s in report.skipped[:5]) + (" ..." if len(report.skipped) > 5 else ""),
            soft_wrap=True)
    for note in report.notes:
        err.print(f"note: {note}", soft_wrap=True)
    if as_json:
        print(json.dumps(report.model_dump(), indent=2))
        return
    m = report.manifest
    if report.up_to_date:
        console.print(f"{report.index_dir}: up to date ({m.counts.documents} documents, {m.counts.chunks} chunks)")
        return
    console.print(
        f"{report.index_dir}: {m.counts.documents} documents, {m.counts.chunks} chunks, "
        f"{m.index.kind} index, {m.dim}-d {Path(m.model).name}\n"
        f"files: {report.files_added} added, {report.files_changed} changed, {report.files_deleted} deleted, "
        f"{report.files_unchanged} unchanged, {len(report.skipped)} skipped\n"
        f"chunks: {report.chunks_embedded} embedded ({report.chunks_per_s:.1f}/s), "
        f"{report.chunks_reused} reused, {report.chunks_removed} removed; {report.seconds:.1f} s", soft_wrap=True)


def _show_hits(hits, console) -> None:
    from rich.table import Table

    table = Table(show_lines=True)
    for col in ("#", "score", "source", "offsets", "passage"):
        table.add_column(col, overflow="fold")
    for h in hits:
        text = " ".join(h.text.split())
        table.add_row(str(h.rank), f"{h.score:.4f}", h.doc_id, f"{h.start}-{h.end}",
                      text[:300] + ("..." if len(text) > 300 else ""))
    console.print(table)


def _what_index_holds(out: Path) -> str:
    from rag.indexer import read_manifest

    try:
        m = read_manifest(out)
    except Exception:  # no first build finished: nothing to keep
        return f"{out} holds no usable index yet; run the build again"
    return (f"{out} holds generation {m.generation} ({m.counts.documents} documents, {m.counts.chunks} chunks), "
            "usable as it is; the next build removes this one's partial files")


@app.command("query")
def query_cmd(
    index_dir: Path = typer.Argument(..., help="index folder built by `tunepath rag index`"),
    question: str = typer.Argument(..., help="the question"),
    k: int = typer.Option(retrieval.TOP_K, "-k", help="passages to return"),
    mode: str = typer.Option("hybrid", help=_MODE_HELP),
    answer: bool = typer.Option(False, "--answer", help="generate an answer citing the passages (needs --generator)"),
    generator: Optional[str] = typer.Option(None, help="local causal LM folder (transformers) for --answer"),
    max_new_tokens: int = typer.Option(200, help="answer length limit"),
    model: Optional[str] = typer.Option(None, help="embedding model you expect; refused unless the index was built with it"),
    as_json: bool = typer.Option(False, "--json", help="print results as JSON"),
) -> None:
    """Ranked passages with source, offsets and scores; optionally an answer that cites them."""
    from advisor.console import err, out as console

    _check_mode(mode)
    if model is not None:
        from rag.retrieve import RagIndex

        RagIndex(index_dir, model=model).close()
    if answer or generator:
        from rag.generate import answer as answer_fn

        result = answer_fn(index_dir, question, k=k, mode=mode, generator=generator, max_new_tokens=max_new_tokens)
        if as_json:
            print(json.dumps(result.model_dump(), indent=2))
            return
        if result.answer is None:
            err.print("note: no --generator given: showing the passages and their sources")
        else:
            console.print(result.answer, soft_wrap=True, markup=False)
            console.print()
        for i, h in enumerate(result.passages, 1):
            console.print(f"[{i}] {h.doc_id} ({h.start}-{h.end})", markup=False, soft_wrap=True)
        if result.answer is None:
            _show_hits(result.passages, console)
        return
    from rag.retrieve import search

    hits = search(index_dir, question, k=k, mode=mode)
    if as_json:
        print(json.dumps([h.model_dump() for h in hits], indent=2))
        return
    _show_hits(hits, console)


@app.command("eval")
def eval_cmd(
    index_dir: Path = typer.Argument(..., help="index folder built by `tunepath rag index`"),
    queries: Path = typer.Option(..., help="BEIR queries.jsonl ({_id, text} per line)"),
    qrels: Path = typer.Option(..., help="BEIR qrels .tsv (query-id, corpus-id, score)"),
    mode: List[str] = typer.Option(["hybrid"], help=_MODE_HELP + "; repeat to compare"),
    model: Optional[str] = typer.Option(None, help="embedding model you expect; refused unless the index was built with it"),
    as_json: bool = typer.Option(False, "--json", help="print metrics as JSON"),
) -> None:
    """nDCG@10, recall@{1,5,10,100} and MRR@10 at the document level (a document = its best chunk)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
    from rich.table import Table

    from advisor.console import err, out as console
    from rag.retrieve import RagIndex, load_qrels, load_queries

    modes = [_check_mode(m) for m in mode]
    q, r = load_queries(queries), load_qrels(qrels)
    # ranking SciFact's 300 test queries takes minutes on a small CPU: a bar per mode, on stderr, gone when done
    bar = Progress(TextColumn("ranking {task.fields[mode]}"), BarColumn(), MofNCompleteColumn(), TextColumn("queries"),
                   TimeRemainingColumn(), console=err, transient=True)
    results = []
    with RagIndex(index_dir, model=model) as idx:
        for m in modes:
            task = bar.add_task("rank", total=None, mode=m)

            def progress(done: int, total: int, task=task) -> None:
                if not bar.live.is_started:
                    bar.start()
                bar.update(task, completed=done, total=total)

            try:
                # a live bar on a pipe or log file leaves blank lines: draw it only on a terminal
                results.append(idx.evaluate(q, r, m, progress=progress if err.is_terminal else None))
            finally:
                if bar.live.is_started:  # Progress.stop prints a newline on a non-terminal even when never started
                    bar.stop()
                bar.remove_task(task)
    first = results[0]
    if first.note:
        from rich.markup import escape

        err.print(f"[yellow]warning:[/] {escape(first.note)}", soft_wrap=True)
    if as_json:
        print(json.dumps([m.model_dump() for m in results], indent=2))
        return
    table = Table(title=f"{index_dir} ({first.queries} queries; {first.qrels_docs_in_index} of "
                        f"{first.qrels_docs} qrels documents in the index)")
    cols = ["ndcg_at_10", "recall_at_1", "recall_at_5", "recall_at_10", "recall_at_100", "mrr_at_10"]
    table.add_column("mode")
    for c in cols:
        table.add_column(c.replace("_at_", "@"), justify="right")
    for m in results:
        table.add_row(m.mode, *(f"{getattr(m, c):.4f}" for c in cols))
    console.print(table)


@app.command("tune")
def tune_cmd(
    pairs: Path = typer.Option(..., help="BEIR folder (queries.jsonl, qrels/<split>.tsv, corpus.jsonl), a BEIR "
                               "qrels .tsv (with --queries, --documents), or a .jsonl of {query, positive, negative?}"),
    out: str = typer.Option(..., "--out", "-o", help="folder for the tuned model (loads with SentenceTransformer(DIR))"),
    base: Optional[str] = typer.Option(None, help="model to tune: local path or hub id (default: all-MiniLM-L6-v2, bundled)"),
    method: str = typer.Option("full", help="full (all weights) or lora (adapters/ registry, merged on save)"),
    epochs: float = typer.Option(retrieval.TUNE_EPOCHS, help="passes over the training pairs (default chosen on SciFact "
                                 "train: advisor/retrieval.py)"),
    hard_negatives: str = typer.Option("bm25", help="bm25: add the best BM25 non-positive per query; "
                                       "none: in-batch negatives only"),
    batch_size: int = typer.Option(32, help="pairs per batch (each is a negative for the others)"),
    learning_rate: Optional[float] = typer.Option(None, help=f"peak step (default {retrieval.TUNE_LR['full']:g} "
                                                   f"full, {retrieval.TUNE_LR['lora']:g} lora: advisor/retrieval.py)"),
    holdout: float = typer.Option(0.2, help="share of queries held out to measure nDCG@10 before and after"),
    max_seq_length: Optional[int] = typer.Option(None, help="truncate texts to this many tokens while tuning (default: the model's own limit)"),
    queries: Optional[Path] = typer.Option(None, help="BEIR queries.jsonl (for a qrels .tsv)"),
    documents: Optional[Path] = typer.Option(None, help="BEIR corpus.jsonl[.gz] or an index folder (for a qrels .tsv)"),
    split: str = typer.Option("train", help="qrels split read from a BEIR folder"),
    seed: int = typer.Option(0, help="held-out split, data order and initialisation"),
    bf16: bool = typer.Option(False, help="train under bf16 autocast (fast on CPUs with AMX and on recent GPUs)"),
    overwrite: bool = typer.Option(False, help="replace a non-empty --out"),
    as_json: bool = typer.Option(False, "--json", help="print the report as JSON"),
) -> None:
    """Fine-tune the embedding model on your (query, relevant passage) pairs; prints held-out nDCG@10
    before and after. Re-index with `tunepath rag index --model OUT --rebuild`."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from advisor.console import err, out as console
    from rag.tune import tune

    # the bar starts with the first progress report, so an input error is the only line on stderr
    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("{task.fields[info]}"), TimeRemainingColumn(), console=err, transient=True)
    task = bar.add_task("loading", total=None, info="")
    shown = []

    def progress(phase: str, done: int, total: int, info: dict) -> None:
        if not shown:
            bar.start()
            shown.append(True)
        label = {"mine": "mining BM25 negatives", "eval": f"held-out nDCG@10 ({info.get('when', '')})",
                 "train": "training"}[phase]
        extra = f"loss {info['loss']:.4f}" if "loss" in info else None
        bar.update(task, description=label, completed=done, total=total or None,
                   **({"info": extra} if extra is not None else {}))

    try:
        report = tune(pairs, out, base=base, method=method, epochs=epochs, hard_negatives=hard_negatives,
                      batch_size=batch_size, learning_rate=learning_rate, holdout=holdout,
                      max_seq_length=max_seq_length, queries=queries, documents=documents, split=split,
                      seed=seed, bf16=bf16, overwrite=overwrite, progress=progress)
    finally:
        if shown:
            bar.stop()
    for note in report.notes:
        err.print(f"note: {note}", soft_wrap=True)
    if as_json:
        print(json.dumps(report.model_dump(), indent=2))
        return
    r = report
    console.print(
        f"{r.out}: {r.method} tuning of {Path(r.base).name} on {r.train_rows} pairs from {r.train_queries} queries "
        f"({r.hard_negative_rows} BM25 hard negatives), {r.steps} steps in {r.train_seconds:.0f} s; "
        f"{r.trainable_params:,} of {r.total_params:,} parameters trained", soft_wrap=True, markup=False)
    if r.heldout_queries:
        delta = r.ndcg_at_10_after - r.ndcg_at_10_before
        console.print(f"held-out nDCG@10 ({r.heldout_queries} queries, {r.eval_documents} documents): "
                      f"{r.ndcg_at_10_before:.4f} -> {r.ndcg_at_10_after:.4f} ({delta:+.4f})", soft_wrap=True)
    else:
        console.print("no held-out queries (--holdout 0): quality not measured")
    console.print(f"next: tunepath rag index DOCS --out INDEX --model {r.out} --rebuild", soft_wrap=True, markup=False)
