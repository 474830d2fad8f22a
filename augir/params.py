"""Typed mirror of `params.yaml`: one model per stage. Unknown keys and wrong types are errors naming the key."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from augir.errors import AugirError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


ModelT = TypeVar("ModelT", bound=BaseModel)


class DownloadParams(_Strict):
    # dataset name -> source: `semanlink`, `local:<dir>`, `hf:<repo>` or `beir:<name>`
    sources: dict[str, str] = Field(min_length=1)
    seed: int = 0
    # only for sources without their own split (semanlink): share of queries held out for testing
    test_fraction: float = Field(0.5, gt=0, lt=1)
    # true: refuse judgments naming documents or queries the dataset lacks (default: keep them, warn, count them)
    strict: bool = False


class OpenAIParams(_Strict):
    """An OpenAI-compatible endpoint. The API key is read from the variable named here, never stored."""

    base_url: str = "http://127.0.0.1:8000/v1"
    model: str | None = None  # None: augment.generator
    api_key_env: str = "OPENAI_API_KEY"
    concurrency: int = Field(4, ge=1)
    timeout_s: float = Field(60, gt=0)
    max_retries: int = Field(3, ge=0)


class VllmParams(_Strict):
    tensor_parallel_size: int = Field(1, ge=1)
    data_parallel_size: int = Field(1, ge=1)
    gpu_memory_utilization: float = Field(0.9, gt=0, le=1)
    dtype: str = "auto"


class AugmentParams(_Strict):
    dataset: str
    generator: str = "smollm2-135m"
    backend: Literal["transformers", "vllm", "openai"] = "transformers"
    strategy: Literal["question", "keyword", "claim", "title", "diverse"] = "question"
    prompt_format: Literal["completion", "chat"] = "completion"
    examples: Literal["train", "generic", "none"] = "train"  # where few-shot examples come from
    num_examples: int = Field(3, ge=0)
    num_passages: int = Field(200, ge=0)
    queries_per_passage: int = Field(1, ge=1)
    exclude_judged: bool = False  # leave out passages judged in any non-train split
    temperature: float = Field(0.0, ge=0)  # 0 = greedy; otherwise sampling seeded per passage
    top_p: float = Field(1.0, gt=0, le=1)
    max_new_tokens: int = Field(24, ge=1)
    batch_size: int = Field(16, ge=1)
    max_passage_words: int = Field(120, ge=8)
    # clean-up: queries shorter, longer or more copied from their passage than this are dropped (and counted)
    min_chars: int = Field(3, ge=1)
    max_words: int = Field(32, ge=1)
    max_copy_overlap: float = Field(0.8, gt=0, le=1)
    seed: int = 0
    # An existing augmented set to use instead of generating (augir/published.py): a folder, by convention
    # data/published/<name> (`dvc import` of a registry's set), or hf:<repo>. None: generate.
    source: str | None = Field(None, min_length=1)
    openai: OpenAIParams = OpenAIParams()
    vllm: VllmParams = VllmParams()

    @model_validator(mode="after")
    def _several_queries_need_variety(self) -> AugmentParams:
        if self.queries_per_passage > 1 and self.temperature == 0 and self.strategy != "diverse":
            raise ValueError(
                "augment.queries_per_passage > 1 with greedy decoding writes the same query again: "
                "set augment.temperature > 0 or augment.strategy: diverse"
            )
        return self


class FilterParams(_Strict):
    method: Literal["none", "consistency", "judge"] = "none"
    retriever: str = "bm25"  # consistency: bm25, or an encoder (built-in name, folder or hub id)
    top_k: int = Field(20, ge=1)  # consistency: keep a query if its passage ranks within this
    judge_generator: str = "smollm2-135m"  # judge: run with augment.backend and its settings
    min_grade: int = Field(2, ge=0, le=3)  # judge: keep pairs graded at least this (0-3)
    batch_size: int = Field(16, ge=1)


class InfuseParams(_Strict):
    """Label infusion (SKIM): synthetic queries give the training queries nearest to them new positives."""

    method: Literal["none", "skim"] = "none"
    # Embeds both kinds of query: a built-in name, folder or hub id; train.model's value maps with the retriever
    # as it is before fine-tuning.
    encoder: str = "minilm-l6"
    top_k: int = Field(10, ge=1)  # neighbours per synthetic query (SKIM: 10)
    min_similarity: float = Field(0.6, ge=-1, le=1)  # cosine (SKIM's rescaled 0.8 = cosine 0.6)
    weighting: Literal["ranked", "uniform"] = "ranked"  # ranked: strongest pairs first; uniform: synthetic order
    batch_size: int = Field(64, ge=1)


class TrainParams(_Strict):
    datasets: list[str] = Field(min_length=1)  # their `train` qrels give the real pairs
    model: str = "minilm-l2"
    query_prefix: str | None = None  # None: the model's known prefix (see augir.retrieval.encoders.KNOWN_PREFIXES)
    passage_prefix: str | None = None
    real_pairs: int | None = Field(None, ge=0)  # first N real pairs (query id order); None = all
    augmented_pairs: int = Field(0, ge=0)  # first N synthetic pairs; 0 = no augmentation
    infused_pairs: int = Field(0, ge=0)  # first N infused pairs (infuse stage's order); 0 = none
    epochs: float = Field(1, ge=0)  # 0 = zero-shot: the model is saved untrained
    batch_size: int = Field(32, ge=2)
    learning_rate: float = Field(5e-5, gt=0)
    warmup_ratio: float = Field(0.1, ge=0, le=1)
    max_seq_length: int = Field(128, ge=8)
    seed: int = 0


class EncodeParams(_Strict):
    batch_size: int = Field(64, ge=1)
    max_seq_length: int | None = Field(None, ge=8)  # None: the model's own limit
    index: Literal["flat_ip"] = "flat_ip"


class EvaluateParams(_Strict):
    datasets: list[str] = Field(min_length=1)
    split: str = "test"
    top_k: int = Field(1000, ge=1)
    remove_self_hits: bool = True
    strict: bool = False  # true: refuse to score qrels naming documents or queries the dataset lacks


class Params(_Strict):
    download: DownloadParams
    augment: AugmentParams
    filter: FilterParams = FilterParams()
    infuse: InfuseParams = InfuseParams()
    train: TrainParams
    encode: EncodeParams = EncodeParams()
    evaluate: EvaluateParams

    @model_validator(mode="after")
    def _datasets_are_downloaded(self) -> Params:
        known = set(self.download.sources)
        named = [("augment.dataset", self.augment.dataset)]
        named += [("train.datasets", name) for name in self.train.datasets]
        named += [("evaluate.datasets", name) for name in self.evaluate.datasets]
        for key, name in named:
            if name not in known:
                raise ValueError(f"{key}: dataset {name!r} is not in download.sources ({', '.join(sorted(known))})")
        return self


def load_params(path: Path = Path("params.yaml")) -> Params:
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError as error:
        raise AugirError(f"{path}: no such file") from error
    except yaml.YAMLError as error:
        raise AugirError(f"{path}: not valid YAML ({_one_line(str(error))})") from error
    try:
        return Params.model_validate(raw or {})
    except ValidationError as error:
        raise AugirError(f"{path}: {first_problem(error)}") from error


def validated(model: type[ModelT], values: dict[str, Any], origin: str) -> ModelT:
    """A params model built from command-line values, with the same one-line errors as params.yaml."""
    try:
        return model.model_validate(values)
    except ValidationError as error:
        raise AugirError(f"{origin}: {first_problem(error)}") from error


def first_problem(error: ValidationError) -> str:
    problem = error.errors()[0]
    key = ".".join(str(part) for part in problem["loc"])
    message = problem["msg"].removeprefix("Value error, ")
    if problem["type"] == "extra_forbidden":
        return f"unknown key {key!r}"
    return f"{key}: {message}" if key else message


def _one_line(text: str) -> str:
    return " ".join(text.split())
