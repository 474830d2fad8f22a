"""Typed mirror of `params.yaml`: one model per stage. Unknown keys and wrong types are errors naming the key."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from augir.errors import AugirError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DownloadParams(_Strict):
    # dataset name -> source: `semanlink`, `local:<dir>`, `hf:<repo>` or `beir:<name>`
    sources: dict[str, str] = Field(min_length=1)
    seed: int = 0
    # only for sources without their own split (semanlink): share of queries held out for testing
    test_fraction: float = Field(0.5, gt=0, lt=1)


class AugmentParams(_Strict):
    dataset: str
    generator: str = "smollm2-135m"
    backend: Literal["transformers"] = "transformers"
    strategy: Literal["question"] = "question"
    num_passages: int = Field(200, ge=0)
    num_examples: int = Field(3, ge=0)  # few-shot examples, drawn from the dataset's training queries
    max_new_tokens: int = Field(24, ge=1)
    batch_size: int = Field(16, ge=1)
    max_passage_words: int = Field(120, ge=8)
    seed: int = 0


class TrainParams(_Strict):
    datasets: list[str] = Field(min_length=1)  # their `train` qrels give the real pairs
    model: str = "minilm-l2"
    query_prefix: str | None = None  # None: the model's known prefix (see augir.encoders.KNOWN_PREFIXES)
    passage_prefix: str | None = None
    augmented_pairs: int = Field(0, ge=0)  # first N synthetic pairs; 0 = no augmentation
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


class Params(_Strict):
    download: DownloadParams
    augment: AugmentParams
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
        raise AugirError(f"{path}: {_first_problem(error)}") from error


def _first_problem(error: ValidationError) -> str:
    problem = error.errors()[0]
    key = ".".join(str(part) for part in problem["loc"])
    message = problem["msg"].removeprefix("Value error, ")
    if problem["type"] == "extra_forbidden":
        return f"unknown key {key!r}"
    return f"{key}: {message}" if key else message


def _one_line(text: str) -> str:
    return " ".join(text.split())
