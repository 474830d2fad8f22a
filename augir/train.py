"""The train stage: fine-tune a dual encoder on real training pairs plus the first N synthetic pairs.

sentence-transformers' trainer with MultipleNegativesRankingLoss; the no-duplicates batch sampler keeps a
passage (or query) from appearing twice in one batch, where it would become its own false negative.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from augir.beir import BeirDataset, document_text, read_generated_pairs
from augir.encoders import Prefixes, default_prefixes, load_encoder
from augir.errors import AugirError
from augir.fileio import atomic_folder

REAL_SPLIT = "train"


@dataclass(frozen=True)
class TrainConfig:
    model: str = "minilm-l2"
    query_prefix: str | None = None
    passage_prefix: str | None = None
    augmented_pairs: int = 0
    epochs: float = 1
    batch_size: int = 32
    learning_rate: float = 5e-5
    warmup_ratio: float = 0.1
    max_seq_length: int = 128
    seed: int = 0

    def prefixes(self) -> Prefixes:
        known = default_prefixes(self.model)
        return Prefixes(
            query=known.query if self.query_prefix is None else self.query_prefix,
            passage=known.passage if self.passage_prefix is None else self.passage_prefix,
        )


@dataclass(frozen=True)
class Pair:
    query: str
    document: str


def real_pairs(dataset: BeirDataset, name: str) -> list[Pair]:
    """(query, relevant passage) for every positive judgment of the dataset's train split."""
    if REAL_SPLIT not in dataset.qrels:
        raise AugirError(f"train.datasets: {name} has no {REAL_SPLIT!r} qrels (splits: {', '.join(dataset.qrels)})")
    return [
        Pair(dataset.queries[query_id], document_text(dataset.corpus[doc_id]))
        for query_id, judged in sorted(dataset.qrels[REAL_SPLIT].items())
        for doc_id, grade in sorted(judged.items())
        if grade > 0
    ]


def synthetic_pairs(augmented_dir: Path, dataset: BeirDataset, limit: int) -> list[Pair]:
    """The first `limit` synthetic pairs in generation order (the seeded passage order), so scales nest."""
    if limit == 0:
        return []
    pairs = []
    for query_id, text, doc_id in read_generated_pairs(augmented_dir):
        if doc_id not in dataset.corpus:
            raise AugirError(f"{augmented_dir / 'qrels' / 'train.tsv'}: passage {doc_id!r} of {query_id} is not in the corpus")
        pairs.append(Pair(text, document_text(dataset.corpus[doc_id])))
    if len(pairs) < limit:
        raise AugirError(f"train.augmented_pairs: {limit} asked, but {augmented_dir} holds only {len(pairs)} pairs")
    return pairs[:limit]


def train_encoder(pairs: list[Pair], config: TrainConfig, out_dir: Path, log_dir: Path | None = None) -> dict[str, Any]:
    """Fine-tune (or, with epochs 0, just save) the encoder; returns training statistics."""
    from datasets import Dataset
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.base.sampler import BatchSamplers
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
    from transformers import set_seed

    set_seed(config.seed)
    prefixes = config.prefixes()
    encoder = load_encoder(config.model, prefixes=prefixes, max_seq_length=config.max_seq_length, seed=config.seed)
    stats: dict[str, Any] = {"pairs": len(pairs), "epochs": config.epochs, "steps": 0, "final_loss": None}
    if config.epochs > 0 and pairs:
        train_set = Dataset.from_dict({"query": [p.query for p in pairs], "document": [p.document for p in pairs]})
        with tempfile.TemporaryDirectory() as scratch:
            args = SentenceTransformerTrainingArguments(
                output_dir=scratch,
                num_train_epochs=config.epochs,
                per_device_train_batch_size=config.batch_size,
                learning_rate=config.learning_rate,
                warmup_ratio=config.warmup_ratio,
                seed=config.seed,
                data_seed=config.seed,
                batch_sampler=BatchSamplers.NO_DUPLICATES,
                prompts={"query": prefixes.query, "document": prefixes.passage},
                save_strategy="no",
                logging_steps=5,
                report_to="none",
                disable_tqdm=False,
            )
            trainer = SentenceTransformerTrainer(
                model=encoder,
                args=args,
                train_dataset=train_set,
                loss=MultipleNegativesRankingLoss(encoder),
                callbacks=_dvclive_callbacks(log_dir),
            )
            result = trainer.train()
        stats.update(steps=result.global_step, final_loss=round(float(result.training_loss), 5))
    elif log_dir is not None:
        _log_untrained(log_dir)
    with atomic_folder(out_dir) as staging:
        encoder.save(str(staging))
    return stats


def _dvclive_callbacks(log_dir: Path | None) -> list[Any]:
    if log_dir is None:
        return []
    from dvclive import Live
    from transformers.integrations import DVCLiveCallback

    # dvc.yaml declares the plots itself, so DVCLive must neither edit it nor create experiments.
    return [DVCLiveCallback(live=Live(dir=str(log_dir), dvcyaml=False, save_dvc_exp=False))]


def _log_untrained(log_dir: Path) -> None:
    """A DVCLive folder even for a zero-shot run, so the stage always has the outputs dvc.yaml declares."""
    from dvclive import Live

    with Live(dir=str(log_dir), dvcyaml=False, save_dvc_exp=False) as live:
        live.log_param("epochs", 0)
