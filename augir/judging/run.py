"""Train a judge on a dataset's judgments and measure its held-out agreement; load a trained judge to grade pairs.

The trained judge's folder holds `adapter/` (LoRA weights and tokenizer), `merged/` when asked, `judge.json` (base
model, grade scale, max length: what grading needs) and the judge-train/judge-test examples it was made from.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from importlib import metadata
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from augir.data.beir import BeirDataset
from augir.errors import AugirError
from augir.fileio import atomic_folder, write_json_atomic, write_jsonl
from augir.judging.agreement import agreement, fit_thresholds, grades_from_scores
from augir.judging.examples import GradedExample, build_examples, judge_queries
from augir.judging.prompt import grade_token_ids, prompt_ids
from augir.judging.readout import GradeReading, judge_prompts
from augir.judging.tune import LoraSettings, TuneSettings, load_adapter, save_judge, tune_judge

CONFIG = "judge.json"


@dataclass
class TrainedJudge:
    model: Any
    tokenizer: Any
    max_grade: int
    max_length: int
    batch_size: int = 8

    def grade(self, pairs: list[tuple[str, str]], progress: bool = False) -> list[GradeReading]:
        """Readings for (query, document text) pairs."""
        prompts = [prompt_ids(self.tokenizer, q, d, self.max_grade, self.max_length) for q, d in pairs]
        grade_ids = grade_token_ids(self.tokenizer, self.max_grade)
        return judge_prompts(self.model, self.tokenizer, prompts, grade_ids, self.batch_size, progress)


def load_base(name: str) -> tuple[Any, Any]:
    """A causal LM and its tokenizer: a built-in GGUF generator name (smollm2-135m), a folder or a hub id."""
    from augir.augmentation.generators import load_generator

    generator = load_generator(name)
    model = generator.model
    # A GGUF file is de-quantized to float32 on load, but the model keeps its quantizer, and the Trainer refuses to
    # train a "GGUF-quantized" model: drop the quantizer, which no longer does anything.
    if getattr(model, "hf_quantizer", None) is not None:
        model.hf_quantizer.remove_quantization_config(model)
    return model, generator.tokenizer


def load_trained_judge(folder: Path, batch_size: int = 8) -> TrainedJudge:
    config_path = folder / CONFIG
    if not config_path.is_file():
        raise AugirError(f"filter.judge_model: {config_path} is missing; train a judge first (judge.enabled: true)")
    config = json.loads(config_path.read_text(encoding="utf-8"))
    if not config.get("trained"):
        raise AugirError(f"filter.judge_model: {folder} holds no trained judge (judge.enabled was false)")
    model, tokenizer = load_base(config["base_model"])
    return TrainedJudge(load_adapter(model, folder / "adapter"), tokenizer, config["max_grade"], config["max_length"],
                        batch_size)


def _example_records(examples: list[GradedExample]) -> list[dict]:
    return [{"query_id": e.query_id, "doc_id": e.doc_id, "grade": e.grade} for e in examples]


def _hash(records: list[dict]) -> str:
    return hashlib.sha256(json.dumps(records, sort_keys=True).encode()).hexdigest()


def cosine_scores(encoder_name: str, examples: list[GradedExample]) -> list[float]:
    from augir.retrieval.encoders import load_encoder

    encoder = load_encoder(encoder_name)
    queries = encoder.encode_query([e.query for e in examples], normalize_embeddings=True, batch_size=32)
    documents = encoder.encode_document([e.document for e in examples], normalize_embeddings=True, batch_size=32)
    return [float(q @ d) for q, d in zip(queries, documents)]


def _measure(readings: list[GradeReading], human: list[int]) -> dict[str, float]:
    return agreement(human, [r.argmax for r in readings], [r.expected for r in readings])


def train_and_measure(dataset: BeirDataset, params: Any, out: Path, max_steps: int = -1, progress: bool = False) -> dict:
    """Build examples, measure the untuned judge, tune it, measure again, compare with the cosine; save to ``out``.

    ``params`` is an `augir.params.JudgeParams`. Returns the metrics (agreement per judge on judge-test).
    """
    from augir.retrieval.bm25 import bm25_run

    started = time.perf_counter()
    split = judge_queries(dataset, params.source_split, params.test_fraction, params.seed)
    asked = {q: dataset.queries[q] for q in split.train + split.test}
    candidates = bm25_run(dataset.corpus, asked, params.candidates_top_k)
    train = build_examples(dataset, params.source_split, split.train, candidates, params.max_grade,
                           params.max_examples, params.seed)
    test = build_examples(dataset, params.source_split, split.test, candidates, params.max_grade,
                          params.max_test_examples, params.seed)
    human = [e.grade for e in test]
    timings = {"examples_s": time.perf_counter() - started}

    model, tokenizer = load_base(params.base_model)
    untuned = TrainedJudge(model, tokenizer, params.max_grade, params.max_length, params.eval_batch_size)
    pairs = [(e.query, e.document) for e in test]
    clock = time.perf_counter()
    untuned_readings = untuned.grade(pairs, progress)
    timings["untuned_grading_s"] = time.perf_counter() - clock

    settings = TuneSettings(
        lora=LoraSettings(params.lora_r, params.lora_alpha, params.lora_dropout, list(params.lora_target_modules)),
        epochs=params.epochs, learning_rate=params.learning_rate, batch_size=params.batch_size,
        max_length=params.max_length, max_grade=params.max_grade, seed=params.seed,
    )
    clock = time.perf_counter()
    with atomic_folder(out) as folder:
        tuned_model, logs = tune_judge(model, tokenizer, train, settings, folder / "trainer", max_steps=max_steps)
        timings["tuning_s"] = time.perf_counter() - clock
        clock = time.perf_counter()
        tuned_readings = TrainedJudge(tuned_model, tokenizer, params.max_grade, params.max_length,
                                      params.eval_batch_size).grade(pairs, progress)
        timings["tuned_grading_s"] = time.perf_counter() - clock

        cosine_train = cosine_scores(params.cosine_encoder, train)
        cosine_test = cosine_scores(params.cosine_encoder, test)
        thresholds = fit_thresholds(cosine_train, [e.grade for e in train], params.max_grade)
        cosine = agreement(human, grades_from_scores(cosine_test, thresholds), cosine_test)

        records = {"train": _example_records(train), "test": _example_records(test)}
        write_jsonl(folder / "judge-train.jsonl", records["train"])
        write_jsonl(folder / "judge-test.jsonl", records["test"])
        write_jsonl(folder / "judge-test-readings.jsonl", [
            {**record, "untuned": asdict(u), "tuned": asdict(t), "cosine": c}
            for record, u, t, c in zip(records["test"], untuned_readings, tuned_readings, cosine_test)
        ])
        shutil.rmtree(folder / "trainer", ignore_errors=True)
        save_judge(tuned_model, tokenizer, folder, merged=params.merged)
        config = {"trained": True, "base_model": params.base_model, "max_grade": params.max_grade,
                  "max_length": params.max_length, "source_dataset": params.dataset, "source_split": params.source_split}
        write_json_atomic(folder / CONFIG, config)
    timings["total_s"] = time.perf_counter() - started
    return {
        "enabled": True,
        "dataset": params.dataset,
        "source_split": params.source_split,
        "queries": {"judge_train": len(split.train), "judge_test": len(split.test)},
        "examples": {
            "judge_train": dict(sorted(Counter(str(e.grade) for e in train).items())),
            "judge_test": dict(sorted(Counter(str(e.grade) for e in test).items())),
        },
        "data_hashes": {"judge_train": _hash(records["train"]), "judge_test": _hash(records["test"])},
        "agreement": {"tuned": _measure(tuned_readings, human), "untuned": _measure(untuned_readings, human),
                      "cosine": cosine},
        "cosine_thresholds": thresholds,
        "training": logs,
        "timings_s": {key: round(value, 1) for key, value in timings.items()},
        "peft_version": metadata.version("peft"),
    }


def write_disabled(out: Path) -> dict:
    """judge.enabled false: an empty judge folder and metrics that say so, in a second, nothing loaded."""
    with atomic_folder(out) as folder:
        write_json_atomic(folder / CONFIG, {"trained": False})
    return {"enabled": False}
