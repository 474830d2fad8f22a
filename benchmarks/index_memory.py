"""Is encode/evaluate memory flat in corpus size? Peak memory and seconds of each phase on synthetic corpora.

A synthetic BEIR corpus of N passages (random words, about 60 each) is written once per size. Each phase then
runs in a fresh process (`--phase`), which reports its own peak: VmHWM (peak resident set, including the pages of
memory-mapped files it touched, which the kernel may drop at will) and the peak of RssAnon (private memory that
cannot be dropped), sampled every 5 ms. `baseline` is the same process right after its imports.

Phases:
- read_dict: the old loader (`read_corpus`, every text held in a dict), for comparison;
- read_stream: what encode does now (`iter_corpus`: validate every record, keep only the ids);
- encode: `encode_chunks` over the whole corpus into the memory-mapped embeddings.npy, with a stand-in encoder
  (a seeded 384-dim vector per text, no model) so the memory is the pipeline's and not the model's weights;
- encode_model_slice: the real encoder path (a tiny 2-layer, 32-wide BERT with MiniLM's tokenizer, built here) on
  the first 2,000 passages only; its seconds are extrapolated linearly to N (a real model is slower still);
- build <index>: train on a seeded sample (25,600 vectors) and add from the memmap in chunks, write the index;
- search <index>: read the index memory-mapped where faiss allows it and search 1,000 queries for the top 100.

    nice -n 19 .venv/bin/python benchmarks/index_memory.py --sizes 10000 100000
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import threading
import time
from pathlib import Path

RESULTS = Path(__file__).with_name("results")
DIM = 384  # all-MiniLM-L6-v2's
INDEXES = ("Flat", "IVF256,Flat", "IVF256,PQ16", "HNSW32")
SLICE = 2000
QUERIES = 1000
TRAIN_SAMPLE = 25_600  # 100 vectors per IVF list: keeps training a small share of the build on this busy machine


def _status(key: str) -> int:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(key + ":"):
                return int(line.split()[1])  # kB
    return 0


class AnonPeak:
    """Samples RssAnon in a thread: the kernel keeps a peak only for the whole resident set (VmHWM)."""

    def __init__(self) -> None:
        self.peak, self._stop = _status("RssAnon"), threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, _status("RssAnon"))

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return max(self.peak, _status("RssAnon"))


def write_corpus(folder: Path, size: int) -> Path:
    path = folder / "corpus.jsonl"
    if path.is_file():
        return path
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(size)
    words = [f"w{i}" for i in range(20000)]
    with (folder / "corpus.tmp").open("w") as handle:
        for i in range(size):
            text = " ".join(rng.choices(words, k=60))
            handle.write(json.dumps({"_id": f"doc{i}", "title": f"title {i}", "text": text}) + "\n")
    (folder / "corpus.tmp").rename(path)
    return path


def stand_in_encoder(texts: list[str]):
    import zlib

    import numpy as np

    vectors = np.stack([np.random.default_rng(zlib.crc32(t.encode())).standard_normal(DIM, dtype=np.float32)
                        for t in texts])
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def tiny_encoder(folder: Path):
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer
    from transformers import BertConfig, BertModel

    from augir.retrieval.encoders import minilm_path

    torch.manual_seed(0)
    transformer = Transformer(str(minilm_path()), max_seq_length=128)
    config = BertConfig(vocab_size=transformer.model.config.vocab_size, hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=64)
    transformer.model = BertModel(config)
    return SentenceTransformer(modules=[transformer, Pooling(32, "mean"), Normalize()], device="cpu")


def run_phase(phase: str, work: Path, index: str | None) -> dict:
    import faiss
    import numpy as np

    from augir.data.beir import iter_corpus, read_corpus
    from augir.retrieval.chunked import ChunkPlan, encode_chunks
    from augir.retrieval.factory import apply_search_params, mmap_mode
    from augir.retrieval.index import IndexOptions, build_faiss_index, corpus_ids, read_index_file

    corpus = work / "corpus.jsonl"
    baseline = _status("VmRSS")
    sampler = AnonPeak()
    started = time.perf_counter()
    extra: dict = {}
    if phase == "read_dict":
        extra["documents"] = len(read_corpus(corpus))
    elif phase == "read_stream":
        extra["documents"] = sum(1 for _ in iter_corpus(corpus))
    elif phase == "encode":
        ids = corpus_ids(corpus)
        plan = ChunkPlan(rows=len(ids), dim=DIM, chunk_size=4096, fingerprint="benchmark")
        encode_chunks(stand_in_encoder, (text for _, text in iter_corpus(corpus)), plan, work / "partial")
    elif phase == "encode_model_slice":
        encoder = tiny_encoder(work)
        texts = [text for _, text in zip(range(SLICE), (t for _, t in iter_corpus(corpus)))]
        started = time.perf_counter()  # the model's build is not the encoder's time
        encoder.encode_document(texts, batch_size=64, convert_to_numpy=True)
    elif phase == "build":
        embeddings = np.load(work / "partial" / "embeddings.npy", mmap_mode="r")
        built, info = build_faiss_index(embeddings, IndexOptions(factory=index, train_sample=TRAIN_SAMPLE))
        faiss.write_index(built, str(work / f"{index}.faiss"))
        extra.update(train_rows=info["train_rows"], index_mmap=mmap_mode(built).mode)
    elif phase == "search":
        loaded, mode = read_index_file(work / f"{index}.faiss", {"index": index, "index_mmap": _mmap_of(work, index)})
        apply_search_params(loaded, nprobe=16, ef_search=128)
        queries = stand_in_encoder([f"query {i}" for i in range(QUERIES)])
        loaded.search(queries, 100)
        extra["index_mmap"] = mode
    seconds = time.perf_counter() - started
    anon = sampler.stop()
    return {"phase": phase, "index": index, "seconds": round(seconds, 2), "baseline_rss_mb": round(baseline / 1024, 1),
            "peak_rss_mb": round(_status("VmHWM") / 1024, 1), "peak_anon_mb": round(anon / 1024, 1), **extra}


def _mmap_of(work: Path, index: str) -> str:
    return json.loads((work / "mmap.json").read_text())[index]


def measure(phase: str, work: Path, index: str | None = None) -> dict:
    command = [sys.executable, __file__, "--phase", phase, "--work", str(work)] + (["--index", index] if index else [])
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--work-root", type=Path, default=Path("/tmp/augir-index-memory"))
    parser.add_argument("--out", type=Path, default=RESULTS / "index_memory.json")
    parser.add_argument("--indexes", nargs="+", default=list(INDEXES))
    parser.add_argument("--phase")
    parser.add_argument("--work", type=Path)
    parser.add_argument("--index")
    args = parser.parse_args()
    if args.phase:
        print(json.dumps(run_phase(args.phase, args.work, args.index)))
        return

    rows: list[dict] = []
    for size in args.sizes:
        work = args.work_root / str(size)
        write_corpus(work, size)
        for phase in ("read_dict", "read_stream", "encode"):
            _measured(args, rows, size, phase, work)
        # Each index is searched right after it is built, cheapest first, so a run cut short keeps whole pairs.
        mmap: dict[str, str] = {}
        for name in args.indexes:
            mmap[name] = _measured(args, rows, size, "build", work, name)["index_mmap"]
            (work / "mmap.json").write_text(json.dumps(mmap))
            _measured(args, rows, size, "search", work, name)
        slice_row = _measured(args, rows, size, "encode_model_slice", work)
        slice_row["extrapolated_seconds"] = round(slice_row["seconds"] * size / SLICE, 1)
        _write(args, rows)
    print(f"wrote {args.out}")


def _measured(args: argparse.Namespace, rows: list[dict], size: int, phase: str, work: Path,
              index: str | None = None) -> dict:
    row = {"passages": size, **measure(phase, work, index)}
    rows.append(row)
    print(json.dumps(row), flush=True)
    _write(args, rows)
    return row


def _write(args: argparse.Namespace, rows: list[dict]) -> None:
    """Written after every phase, so an interrupted run keeps what it measured."""
    result = {"sizes": args.sizes, "dim": DIM, "train_sample": TRAIN_SAMPLE, "queries": QUERIES, "rows": rows,
              "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "(libgomp default)"),
              "ratios_largest_over_smallest": _ratios(rows, args.sizes), "cpus": len(os.sched_getaffinity(0)),
              "load_average": list(os.getloadavg()),
              "note": "each phase in a fresh process; peak_rss_mb includes touched pages of memory-mapped files"}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")


def _ratios(rows: list[dict], sizes: list[int]) -> dict[str, dict[str, float]]:
    small, large = min(sizes), max(sizes)
    by = {(r["passages"], r["phase"], r["index"]): r for r in rows}
    ratios = {}
    for (size, phase, index), row in by.items():
        if size == large and (small, phase, index) in by:
            base = by[(small, phase, index)]
            ratios[f"{phase} {index or ''}".strip()] = {
                key: round(row[key] / base[key], 2) for key in ("peak_rss_mb", "peak_anon_mb", "seconds") if base[key]}
    return ratios


if __name__ == "__main__":
    main()
