"""The train stage: fine-tune a dual encoder on real training pairs plus the first N synthetic pairs.

sentence-transformers' trainer with MultipleNegativesRankingLoss (or its cached form); the no-duplicates batch
sampler keeps a passage (or query) from appearing twice in one batch, where it would become its own false negative.

Under torchrun (augir.training.launch) every process runs this with the same pairs: `train.batch_size` is the
global batch, split across processes (accelerate's split_batches), and each process's queries meet the negatives
of the whole batch (the loss's gather_across_devices), so the model is the one a single process trains.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from augir.errors import AugirError
from augir.fileio import atomic_folder, check_replaceable
from augir.params import TrainParams
from augir.retrieval.encoders import load_encoder, no_cuda, resolve_prefixes
from augir.training.pairs import Pair

log = logging.getLogger(__name__)

SIGNATURE = "modules.json"  # sentence-transformers writes it into every saved model


def train_encoder(pairs: list[Pair], params: TrainParams, out_dir: Path, log_dir: Path | None = None, *,
                  overwrite: bool = False) -> dict[str, Any]:
    """Fine-tune (or, with epochs 0, just save) the encoder; returns training statistics.

    An existing `out_dir` that is not an earlier saved model is refused before training.
    """
    check_replaceable(out_dir, SIGNATURE, overwrite=overwrite)
    from datasets import Dataset
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.base.sampler import BatchSamplers
    from transformers import set_seed

    started = time.perf_counter()
    set_seed(params.seed)
    prefixes = resolve_prefixes(params.model, params.query_prefix, params.passage_prefix)
    encoder = load_encoder(params.model, prefixes=prefixes, max_seq_length=params.max_seq_length, seed=params.seed)
    stats: dict[str, Any] = {"pairs": len(pairs), "epochs": params.epochs, "steps": 0, "final_loss": None}
    if params.epochs > 0 and len({pair.document for pair in pairs}) == 1:
        # In-batch negatives are the batch's other passages; the no-duplicates sampler gives this one batches of
        # a single pair, where the loss is log(1) = 0 and nothing is learnt.
        log.warning("train: all %d pairs have the same passage; in-batch negatives need at least 2 distinct "
                    "passages, so the loss is 0 and the model does not learn", len(pairs))
    if params.epochs > 0 and pairs:
        columns = {"query": [p.query for p in pairs], "document": [p.document for p in pairs]}
        # Hard negatives: one column each after the positive, which MultipleNegativesRankingLoss reads as negatives.
        negative_columns = [f"negative_{n}" for n in range(1, len(pairs[0].negatives) + 1)]
        if any(len(p.negatives) != len(negative_columns) for p in pairs):
            raise AugirError("train: every pair needs the same number of hard negatives")
        for n, column in enumerate(negative_columns):
            columns[column] = [p.negatives[n] for p in pairs]
        train_set = Dataset.from_dict(columns)
        with tempfile.TemporaryDirectory() as scratch:
            args = SentenceTransformerTrainingArguments(
                output_dir=scratch,
                num_train_epochs=params.epochs,
                per_device_train_batch_size=params.batch_size,
                learning_rate=params.learning_rate,
                warmup_ratio=params.warmup_ratio,
                seed=params.seed,
                data_seed=params.seed,
                batch_sampler=BatchSamplers.NO_DUPLICATES,
                # the sampler's batches are global ones; with one process this changes nothing
                accelerator_config={"split_batches": True},
                # accelerate forms a CPU process group (gloo) only when told the run is on CPUs
                use_cpu=world_size() > 1 and no_cuda(),
                prompts={"query": prefixes.query, "document": prefixes.passage,
                         **{column: prefixes.passage for column in negative_columns}},
                save_strategy="no",
                logging_steps=5,
                report_to="none",
                disable_tqdm=False,
            )
            trainer = SentenceTransformerTrainer(
                model=encoder,
                args=args,
                train_dataset=train_set,
                loss=make_loss(encoder, params),
                callbacks=_dvclive_callbacks(log_dir) if is_main_process() else [],
            )
            result = trainer.train()
        stats.update(steps=result.global_step, final_loss=round(float(result.training_loss), 5))
    elif log_dir is not None and is_main_process():
        _log_untrained(log_dir)
    stats["processes"] = world_size()
    if is_main_process():
        with atomic_folder(out_dir, signature=SIGNATURE, overwrite=overwrite) as staging:
            encoder.save(str(staging))
    stats["seconds"] = round(time.perf_counter() - started, 2)  # the study's cost column
    return stats


def make_loss(encoder: Any, params: TrainParams) -> Any:
    """The contrastive loss `train.loss` names, its in-batch negatives gathered across processes (a no-op in one)."""
    from sentence_transformers.sentence_transformer.losses import (
        CachedMultipleNegativesRankingLoss,
        MultipleNegativesRankingLoss,
    )

    if params.loss == "cached_mnrl":
        return CachedMultipleNegativesRankingLoss(encoder, mini_batch_size=params.mini_batch_size,
                                                  gather_across_devices=True)
    return MultipleNegativesRankingLoss(encoder, gather_across_devices=True)


def world_size() -> int:
    """How many processes train together (torchrun's WORLD_SIZE; 1 outside it)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_main_process() -> bool:
    """Only the first process writes the model, the logs and the metrics."""
    return int(os.environ.get("RANK", "0")) == 0


def _dvclive_callbacks(log_dir: Path | None) -> list[Any]:
    if log_dir is None:
        return []
    from transformers.integrations import DVCLiveCallback

    from dvclive import Live

    # dvc.yaml declares the plots itself, so DVCLive must neither edit it nor create experiments.
    return [DVCLiveCallback(live=Live(dir=str(log_dir), dvcyaml=False, save_dvc_exp=False))]


def _log_untrained(log_dir: Path) -> None:
    """A DVCLive folder even for a zero-shot run, so the stage always has the outputs dvc.yaml declares."""
    from dvclive import Live

    with Live(dir=str(log_dir), dvcyaml=False, save_dvc_exp=False) as live:
        live.log_param("epochs", 0)
