"""The augment stage: synthetic queries for a seeded choice of corpus passages.

Output is BEIR's generated-queries layout (`queries.jsonl`, `qrels/train.tsv`) plus `provenance.jsonl`,
one record per generated query. Finished batches are kept as shards in a work folder, so an interrupted run
started again continues where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from augir.beir import BeirDataset, document_text
from augir.fileio import atomic_folder, read_jsonl, write_jsonl
from augir.prompts import FewShotExample, choose_examples, question_prompt, truncate_words

MIN_QUERY_CHARS = 3


@dataclass(frozen=True)
class AugmentConfig:
    generator: str = "smollm2-135m"
    strategy: str = "question"
    num_passages: int = 200
    num_examples: int = 3
    max_new_tokens: int = 24
    batch_size: int = 16
    max_passage_words: int = 120
    seed: int = 0

    def fingerprint(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:16]


@dataclass
class AugmentStats:
    passages: int = 0
    generated: int = 0
    kept: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    new_tokens: int = 0
    seconds: float = 0.0

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "passages": self.passages,
            "generated": self.generated,
            "kept": self.kept,
            "dropped": self.dropped,
            "seconds": round(self.seconds, 2),
            "passages_per_second": round(self.passages / self.seconds, 3) if self.seconds else 0.0,
            "tokens_per_second": round(self.new_tokens / self.seconds, 2) if self.seconds else 0.0,
        }


def choose_passages(dataset: BeirDataset, num_passages: int, seed: int) -> list[str]:
    """The first `num_passages` of a seeded permutation of the corpus: smaller runs are prefixes of larger ones."""
    doc_ids = sorted(dataset.corpus)
    random.Random(seed).shuffle(doc_ids)
    return doc_ids[:num_passages]


def clean_query(raw: str) -> tuple[str | None, str | None]:
    """(query, None) when the generation is usable, else (None, reason it was dropped)."""
    lines = raw.strip().splitlines()
    query = re.sub(r"\s+", " ", lines[0]).strip().strip('"').strip() if lines else ""
    if not query:
        return None, "empty"
    if len(query) < MIN_QUERY_CHARS:
        return None, "too_short"
    return query, None


def generate_batch(generator: Any, prompts: list[str], max_new_tokens: int) -> tuple[list[str], int]:
    """Greedy continuations of a batch of prompts, and the number of new tokens generated."""
    import torch

    tokenizer, model = generator.tokenizer, generator.model
    encoded = tokenizer(prompts, return_tensors="pt", padding=True).to(model.device)
    with torch.inference_mode():
        output = model.generate(
            **encoded,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            pad_token_id=tokenizer.pad_token_id,
            # Only the first line is kept: stop a sequence once it has one.
            stop_strings=["\n"],
            tokenizer=tokenizer,
        )
    new_tokens = output[:, encoded["input_ids"].shape[1] :]
    texts = tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
    produced = int((new_tokens != tokenizer.pad_token_id).sum())
    return texts, produced


def run_augmentation(
    dataset: BeirDataset, config: AugmentConfig, out_dir: Path, work_dir: Path, generator: Any = None
) -> AugmentStats:
    """Generate, clean and write the augmented set; resume from finished shards in `work_dir`."""
    examples = choose_examples(
        dataset, num_examples=config.num_examples, seed=config.seed, max_words=config.max_passage_words
    )
    passages = choose_passages(dataset, config.num_passages, config.seed)
    shard_dir = work_dir / config.fingerprint()
    shard_dir.mkdir(parents=True, exist_ok=True)
    batches = [passages[start : start + config.batch_size] for start in range(0, len(passages), config.batch_size)]

    stats = AugmentStats(passages=len(passages))
    started = time.perf_counter()
    for number, batch in enumerate(tqdm(batches, desc="augment", unit="batch")):
        shard = shard_dir / f"{number:06d}.jsonl"
        if shard.exists():
            continue
        if generator is None:
            from augir.generators import load_generator

            generator = load_generator(config.generator)
        records, produced = _generate_shard(generator, dataset, batch, examples, config)
        stats.new_tokens += produced
        write_jsonl(shard.with_suffix(".partial"), records)
        shard.with_suffix(".partial").replace(shard)  # a shard exists only once it is complete
    stats.seconds = time.perf_counter() - started

    records = [record for number in range(len(batches)) for record in read_jsonl(shard_dir / f"{number:06d}.jsonl")]
    _count(records, stats)
    _write_output(records, out_dir)
    return stats


def _generate_shard(
    generator: Any, dataset: BeirDataset, doc_ids: list[str], examples: list[FewShotExample], config: AugmentConfig
) -> tuple[list[dict[str, Any]], int]:
    prompts = [
        question_prompt(truncate_words(document_text(dataset.corpus[doc_id]), config.max_passage_words), examples)
        for doc_id in doc_ids
    ]
    texts, produced = generate_batch(generator, prompts, config.max_new_tokens)
    records = []
    for doc_id, prompt, raw in zip(doc_ids, prompts, texts):
        query, dropped = clean_query(raw)
        records.append(
            {
                "query_id": f"gen-{doc_id}-0",
                "doc_id": doc_id,
                "query": query,
                "dropped": dropped,
                "raw": raw,
                "generator": config.generator,
                "strategy": config.strategy,
                "prompt": prompt,
                "few_shot_query_ids": [example.query_id for example in examples],
                "sampling": {"do_sample": False, "max_new_tokens": config.max_new_tokens},
                "seed": config.seed,
            }
        )
    return records, produced


def _count(records: list[dict[str, Any]], stats: AugmentStats) -> None:
    stats.generated = len(records)
    stats.kept = sum(1 for record in records if record["query"] is not None)
    for record in records:
        if record["dropped"]:
            stats.dropped[record["dropped"]] = stats.dropped.get(record["dropped"], 0) + 1


def _write_output(records: list[dict[str, Any]], out_dir: Path) -> None:
    kept = [record for record in records if record["query"] is not None]
    with atomic_folder(out_dir) as staging:
        write_jsonl(staging / "queries.jsonl", ({"_id": r["query_id"], "text": r["query"]} for r in kept))
        (staging / "qrels").mkdir()
        lines = ["query-id\tcorpus-id\tscore\n"] + [f"{r['query_id']}\t{r['doc_id']}\t1\n" for r in kept]
        (staging / "qrels" / "train.tsv").write_text("".join(lines), encoding="utf-8")
        write_jsonl(staging / "provenance.jsonl", records)
