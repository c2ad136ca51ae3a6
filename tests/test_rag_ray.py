"""`tunepath rag index --ray`: embedding on Ray Data actors gives the index a local build gives
(same chunk ids, vectors within float tolerance, same search results), incrementally, and a
worker process killed mid-run is restarted by Ray without losing or duplicating a chunk."""
import json
import os
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from helpers import TEST_DATA, cli

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
QUERIES = ["vitamin D deficiency and fracture risk", "stem cells differentiate", "mortality in patients with cancer"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """20 SciFact abstracts in two files: 14 indexed first, 6 added by an incremental build."""
    rows = (TEST_DATA / "scifact" / "corpus.jsonl").read_text().splitlines()[:20]
    root = tmp_path_factory.mktemp("ray_corpus") / "corpus"
    root.mkdir()
    (root / "part0.jsonl").write_text("\n".join(rows[:14]) + "\n")
    return root, rows[14:]


def _chunks(index: Path) -> list[tuple]:
    m = json.loads((index / "manifest.json").read_text())
    con = sqlite3.connect(index / m["sqlite_file"])
    rows = con.execute("SELECT c.id, d.doc_id, c.start, c.end, c.text FROM chunks c JOIN docs d ON d.id = c.doc "
                       "ORDER BY c.id").fetchall()
    con.close()
    return rows


def _vectors(index: Path) -> dict[int, np.ndarray]:
    from rag import ann

    m = json.loads((index / "manifest.json").read_text())
    idx = ann.read(index / m["faiss_file"])
    return {int(i): v for ids, vecs in ann.iter_vectors(idx, m["index"]["kind"]) for i, v in zip(ids, vecs)}


def _index(*args) -> dict:
    res = cli("rag", "index", *args, "--json")
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


@pytest.fixture(scope="module")
def local_and_ray(corpus, ray_local, tmp_path_factory):
    """The same two builds (14 documents, then 6 more) locally and on Ray. The first Ray build
    goes through the API on 2 actors, one of which kills its own process on its first batch; the
    second, incremental one through `tunepath rag index --ray` on one actor."""
    from rag.distributed import ChunkEmbedder, RayEmbedder
    from rag.indexer import build_index

    folder, extra = corpus
    out = tmp_path_factory.mktemp("ray_indexes")
    marker = out / "crashed"

    class CrashOnce(ChunkEmbedder):
        def __call__(self, batch):
            if not marker.exists():
                marker.touch()
                os._exit(1)
            return super().__call__(batch)

    first = build_index([folder], out / "ray", embedder=RayEmbedder(workers=2, actor_cls=CrashOnce))
    reports = {"local": [_index(folder, "--out", out / "local")], "ray": [first.model_dump()],
               "crashed": marker.exists()}
    (folder / "part1.jsonl").write_text("\n".join(extra) + "\n")
    reports["local"].append(_index(folder, "--out", out / "local"))
    reports["ray"].append(_index(folder, "--out", out / "ray", "--ray", "--workers", "1"))  # one actor start less
    (folder / "part1.jsonl").unlink()
    return out / "local", out / "ray", reports


def test_ray_index_equals_local_build(local_and_ray):
    local, ray, reports = local_and_ray
    # incremental on Ray as locally: the second build embeds only the 6 new documents' chunks
    for a, b in zip(reports["local"], reports["ray"]):
        assert a["chunks_embedded"] == b["chunks_embedded"] > 0
        assert a["chunks_reused"] == b["chunks_reused"]
    assert reports["ray"][1]["chunks_reused"] == reports["ray"][0]["chunks_embedded"]
    assert reports["ray"][1]["manifest"]["generation"] == 2
    assert _chunks(local) == _chunks(ray)  # same ids, documents, offsets and texts
    lv, rv = _vectors(local), _vectors(ray)
    assert sorted(lv) == sorted(rv) == [c[0] for c in _chunks(local)]
    diff = max(float(np.abs(lv[i] - rv[i]).max()) for i in lv)
    assert diff < 1e-4, diff
    for q in QUERIES:
        for mode in ("dense", "hybrid"):
            a = json.loads(cli("rag", "query", local, q, "-k", "5", "--mode", mode, "--json").stdout)
            b = json.loads(cli("rag", "query", ray, q, "-k", "5", "--mode", mode, "--json").stdout)
            assert [(h["doc_id"], h["start"]) for h in a] == [(h["doc_id"], h["start"]) for h in b]
            assert [h["score"] for h in a] == pytest.approx([h["score"] for h in b], abs=1e-4)


def test_killed_embedding_actor_is_retried(local_and_ray):
    """The first Ray build lost an actor process mid-run; Ray restarted it and re-ran its batch:
    the build finished with every chunk embedded once, equal to the local build's."""
    local, ray, reports = local_and_ray
    assert reports["crashed"]  # a worker did die mid-run
    first_local, first_ray = reports["local"][0], reports["ray"][0]
    assert first_ray["chunks_embedded"] == first_local["chunks_embedded"] \
        == first_ray["manifest"]["counts"]["vectors"] == first_ray["manifest"]["counts"]["chunks"]
    assert first_ray["manifest"]["counts"] == first_local["manifest"]["counts"]


def test_cli_modules_do_not_import_ray():
    import subprocess
    import sys

    from helpers import REPO

    code = ("import sys, tunepath.cli, tunepath.commands.rag, tunepath.commands.train, rag.indexer; "
            "assert 'ray' not in sys.modules, 'ray imported'")
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]


def test_actor_resources_follow_the_cluster():
    """One GPU per actor (default: one actor per GPU); without GPUs the CPUs less a reserve for
    Ray Data's own operators, handed out in amounts Ray accepts (fractions < 1, whole numbers above)."""
    from advisor.errors import UserError
    from rag.distributed import actor_resources

    assert actor_resources({"CPU": 64, "GPU": 8}, None) == (8, {"num_gpus": 1, "num_cpus": 1}, 1)
    assert actor_resources({"CPU": 64, "GPU": 8}, 4)[0] == 4
    assert actor_resources({"CPU": 2, "_nodes": 1}, 2) == (2, {"num_cpus": 0.75}, 1)   # no deadlock on 2 cores
    assert actor_resources({"CPU": 2, "_nodes": 1}, None) == (1, {"num_cpus": 1}, 1)
    assert actor_resources({"CPU": 32, "_nodes": 2}, None) == (2, {"num_cpus": 15}, 15)
    with pytest.raises(UserError, match="--workers 0"):
        actor_resources({"CPU": 2}, 0)
