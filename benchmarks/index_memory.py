"""Is encode/evaluate memory flat in corpus size? Peak memory and seconds of each phase on synthetic corpora.

A synthetic BEIR folder of N passages (random words, about 60 each; 1,000 queries, one judged passage each in
`test` and in `train`) is written once per size. Each phase then
runs in a fresh process (`--phase`), which reports its own peak: VmHWM (peak resident set, including the pages of
memory-mapped files it touched, which the kernel may drop at will) and the peak of RssAnon (private memory that
cannot be dropped), sampled every 5 ms. `baseline` is the same process right after its imports.

Phases (the stage each stands for in brackets):
- validate [download]: `fetch_dataset("local:...")`: validate the folder and write it as data/raw/<name>;
- read_dict: the old loader (`read_corpus`, every text held in a dict), for comparison;
- ids [encode, pass one]: `read_corpus_ids`: validate every record, keep the ids (compact) and refuse repeats;
- read_stream [encode, pass two]: `iter_corpus`: every passage's text, one at a time;
- choose [augment]: `load_for_augmentation`: the seeded choice of 200 passages and the few-shot examples' texts;
- encode [encode]: `encode_chunks` over the whole corpus into the memory-mapped embeddings.npy, with a stand-in
  encoder (a seeded 384-dim vector per text, no model) so the memory is the pipeline's and not the model's weights;
- encode_model_slice: the real encoder path (a tiny 2-layer, 32-wide BERT with MiniLM's tokenizer, built here) on
  the first 2,000 passages only; its seconds are extrapolated linearly to N (a real model is slower still);
- build <index> [encode]: `build_on_disk`: train on a seeded sample (25,600 vectors), fill, write the index folder;
- search <index> [evaluate]: `load_index` and search 1,000 queries for the top 100; the rows are kept, so each
  approximate index's recall@100 against Flat's (exact) top 100 is reported for the same queries.

    nice -n 19 .venv/bin/python benchmarks/index_memory.py --sizes 10000 100000 1000000
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
CHOSEN = 200  # passages the choose phase picks: the default run's augment.num_passages
PHASES = ("validate", "read_dict", "ids", "read_stream", "choose", "encode", "build", "search", "encode_model_slice")
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
    """A BEIR folder at `folder`/beir (written once): N passages, 1,000 queries, test and train qrels."""
    beir = folder / "beir"
    if (beir / "qrels" / "train.tsv").is_file():
        return beir / "corpus.jsonl"
    (beir / "qrels").mkdir(parents=True, exist_ok=True)
    rng = random.Random(size)
    words = [f"w{i}" for i in range(20000)]
    with (beir / "corpus.tmp").open("w") as handle:
        for i in range(size):
            text = " ".join(rng.choices(words, k=60))
            handle.write(json.dumps({"_id": f"doc{i}", "title": f"title {i}", "text": text}) + "\n")
    with (beir / "queries.jsonl").open("w") as handle:
        for i in range(QUERIES):
            handle.write(json.dumps({"_id": f"q{i}", "text": " ".join(rng.choices(words, k=8))}) + "\n")
    for split in ("test", "train"):
        half = range(0, QUERIES, 2) if split == "test" else range(1, QUERIES, 2)
        lines = [f"q{i}\tdoc{rng.randrange(size)}\t1\n" for i in half]
        (beir / "qrels" / f"{split}.tsv").write_text("query-id\tcorpus-id\tscore\n" + "".join(lines))
    (beir / "corpus.tmp").rename(beir / "corpus.jsonl")
    return beir / "corpus.jsonl"


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
    import shutil

    import numpy as np

    from augir.augmentation.augment import load_for_augmentation
    from augir.data.beir import iter_corpus, read_corpus, read_corpus_ids
    from augir.data.sources import fetch_dataset
    from augir.params import AugmentParams
    from augir.retrieval.chunked import ChunkPlan, encode_chunks
    from augir.retrieval.index import IDS_FILE, INFO_FILE, IndexOptions, build_on_disk, load_index
    from augir.retrieval.on_disk import EmbeddingsFile

    beir = work / "beir"
    corpus = beir / "corpus.jsonl"
    folder = work / "indexes" / (index or "")
    baseline = _status("VmRSS")
    sampler = AnonPeak()
    started = time.perf_counter()
    extra: dict = {}
    if phase == "validate":
        shutil.rmtree(work / "raw", ignore_errors=True)
        fetch_dataset(f"local:{beir}", work / "raw")
        shutil.rmtree(work / "raw")
    elif phase == "read_dict":
        extra["documents"] = len(read_corpus(corpus))
    elif phase == "ids":
        extra["documents"] = len(read_corpus_ids(corpus))
    elif phase == "read_stream":
        extra["documents"] = sum(1 for _ in iter_corpus(corpus))
    elif phase == "choose":
        dataset = load_for_augmentation(beir, AugmentParams(dataset="synthetic", num_passages=CHOSEN))
        extra["texts_held"] = len(dataset.corpus)
    elif phase == "encode":
        ids = read_corpus_ids(corpus)
        plan = ChunkPlan(rows=len(ids), dim=DIM, chunk_size=4096, fingerprint="benchmark")
        encode_chunks(stand_in_encoder, (text for _, text in iter_corpus(corpus)), plan, work / "partial")
        ids.save(work / IDS_FILE)
    elif phase == "encode_model_slice":
        encoder = tiny_encoder(work)
        texts = [text for _, text in zip(range(SLICE), (t for _, t in iter_corpus(corpus)))]
        started = time.perf_counter()  # the model's build is not the encoder's time
        encoder.encode_document(texts, batch_size=64, convert_to_numpy=True)
    elif phase == "build":
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        embeddings = EmbeddingsFile.open(work / "partial" / "embeddings.npy")
        info = build_on_disk(embeddings, IndexOptions(factory=index, train_sample=TRAIN_SAMPLE), folder)
        (folder / INFO_FILE).write_text(json.dumps(info))
        extra.update(train_rows=info["train_rows"], index_mmap=info["index_mmap"])
    elif phase == "search":
        for name in (IDS_FILE, "partial/embeddings.npy"):  # what an index folder holds beside the index
            target = folder / Path(name).name
            if not target.exists():
                os.link(work / name, target)
        dense = load_index(folder, nprobe=16, ef_search=128)
        queries = stand_in_encoder([f"query {i}" for i in range(QUERIES)])
        _, rows = dense.index.search(queries, 100)
        np.save(work / f"rows-{index}.npy", rows)
        extra["index_mmap"] = dense.info["index_mmap"]
    seconds = time.perf_counter() - started
    anon = sampler.stop()
    return {"phase": phase, "index": index, "seconds": round(seconds, 2), "baseline_rss_mb": round(baseline / 1024, 1),
            "peak_rss_mb": round(_status("VmHWM") / 1024, 1), "peak_anon_mb": round(anon / 1024, 1), **extra}


def recall_against_flat(work: Path, index: str) -> float:
    """Mean share of Flat's (exact) top 100 that `index` found for the same 1,000 queries."""
    import numpy as np

    exact, found = np.load(work / "rows-Flat.npy"), np.load(work / f"rows-{index}.npy")
    return round(float(np.mean([len(set(a) & set(b)) / len(a) for a, b in zip(exact, found)])), 4)


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
    parser.add_argument("--phases", nargs="+", choices=PHASES, default=list(PHASES), help="the phases to measure")
    parser.add_argument("--keep", action="store_true", help="keep the rows of --out that this run does not measure")
    parser.add_argument("--phase")
    parser.add_argument("--work", type=Path)
    parser.add_argument("--index")
    args = parser.parse_args()
    if args.phase:
        print(json.dumps(run_phase(args.phase, args.work, args.index)))
        return

    rows: list[dict] = _earlier_rows(args)
    for size in args.sizes:
        work = args.work_root / str(size)
        write_corpus(work, size)
        for phase in ("validate", "read_dict", "ids", "read_stream", "choose", "encode"):
            if phase in args.phases:
                _measured(args, rows, size, phase, work)
        # Each index is searched right after it is built, Flat first: the others' recall is measured against it.
        for name in args.indexes:
            if "build" in args.phases:
                _measured(args, rows, size, "build", work, name)
            if "search" in args.phases:
                row = _measured(args, rows, size, "search", work, name)
                if name != "Flat" and (work / "rows-Flat.npy").is_file():
                    row["recall_at_100_vs_flat"] = recall_against_flat(work, name)
                    _write(args, rows)
        if "encode_model_slice" in args.phases:
            slice_row = _measured(args, rows, size, "encode_model_slice", work)
            slice_row["extrapolated_seconds"] = round(slice_row["seconds"] * size / SLICE, 1)
        _write(args, rows)
    print(f"wrote {args.out}")


def _earlier_rows(args: argparse.Namespace) -> list[dict]:
    """With --keep, the rows an earlier run wrote, less those this run measures again (a size run phase by phase)."""
    if not args.keep or not args.out.is_file():
        return []
    again = {(size, phase) for size in args.sizes for phase in args.phases}
    return [row for row in json.loads(args.out.read_text())["rows"] if (row["passages"], row["phase"]) not in again]


def _measured(args: argparse.Namespace, rows: list[dict], size: int, phase: str, work: Path,
              index: str | None = None) -> dict:
    row = {"passages": size, **measure(phase, work, index)}
    rows[:] = [r for r in rows if (r["passages"], r["phase"], r["index"]) != (size, phase, index)] + [row]
    print(json.dumps(row), flush=True)
    _write(args, rows)
    return row


def _write(args: argparse.Namespace, rows: list[dict]) -> None:
    """Written after every phase, so an interrupted run keeps what it measured."""
    sizes = sorted({row["passages"] for row in rows})
    result = {"sizes": sizes, "dim": DIM, "train_sample": TRAIN_SAMPLE, "queries": QUERIES, "rows": rows,
              "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "(libgomp default)"),
              "ratios_each_size_over_the_one_before": _ratios(rows, sizes) if sizes else {}, "cpus": len(os.sched_getaffinity(0)),
              "load_average": list(os.getloadavg()),
              "note": "each phase in a fresh process; peak_rss_mb includes touched pages of memory-mapped files"}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")


def _ratios(rows: list[dict], sizes: list[int]) -> dict[str, dict[str, dict[str, float]]]:
    """Each size over the one before it (100k over 10k, 1M over 100k): the goal is peak RSS within 2x at 1M."""
    by = {(r["passages"], r["phase"], r["index"]): r for r in rows}
    ratios: dict[str, dict[str, dict[str, float]]] = {}
    for small, large in zip(sizes, sizes[1:]):
        pair = ratios.setdefault(f"{large}/{small}", {})
        for (size, phase, index), row in by.items():
            if size == large and (small, phase, index) in by:
                base = by[(small, phase, index)]
                pair[f"{phase} {index or ''}".strip()] = {
                    key: round(row[key] / base[key], 2) for key in ("peak_rss_mb", "peak_anon_mb", "seconds") if base[key]}
    return ratios


if __name__ == "__main__":
    main()
