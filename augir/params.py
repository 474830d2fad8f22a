"""Typed mirror of `params.yaml`: one model per stage. Unknown keys and wrong types are errors naming the key."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator, model_validator

from augir.errors import AugirError
from augir.layout import dataset_name_problem


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _not_a_bool(value: Any) -> Any:
    # pydantic reads `true` as 1 for a number; YAML's true/false for a count is a mistake, not a count.
    if isinstance(value, bool):
        raise ValueError(f"expected a number, got {str(value).lower()}")
    return value


Int = Annotated[int, BeforeValidator(_not_a_bool)]
Number = Annotated[float, BeforeValidator(_not_a_bool)]


ModelT = TypeVar("ModelT", bound=BaseModel)


class DownloadParams(_Strict):
    # dataset name -> source: `semanlink`, `local:<dir>`, `hf:<repo>` or `beir:<name>`
    sources: dict[str, str] = Field(min_length=1)
    seed: Int = 0
    # only for sources without their own split (semanlink): share of queries held out for testing
    test_fraction: Number = Field(0.5, gt=0, lt=1)
    # true: refuse judgments naming documents or queries the dataset lacks (default: keep them, warn, count them)
    strict: bool = False

    @field_validator("sources")
    @classmethod
    def _names_are_names(cls, sources: dict[str, str]) -> dict[str, str]:
        for name in sources:
            if problem := dataset_name_problem(name):
                raise ValueError(problem)
        return sources


class OpenAIParams(_Strict):
    """An OpenAI-compatible endpoint. The API key is read from the variable named here, never stored."""

    base_url: str = "http://127.0.0.1:8000/v1"
    model: str | None = None  # None: augment.generator
    api_key_env: str = "OPENAI_API_KEY"
    timeout_s: Number = Field(60, gt=0)
    max_retries: Int = Field(3, ge=0)


class VllmParams(_Strict):
    dtype: str = "auto"


class CTranslate2Params(_Strict):
    # float32: the transformers model's arithmetic; the int8 and 16-bit types quantize the weights at load (faster,
    # other queries). Part of the augmentation's identity, as is the device (its arithmetic differs).
    compute_type: Literal["float32", "int8", "int8_float32", "int16", "float16", "bfloat16", "int8_float16",
                          "int8_bfloat16"] = "float32"
    device: Literal["cpu", "cuda"] = "cpu"


class AugmentParams(_Strict):
    dataset: str
    generator: str = "smollm2-135m"
    backend: Literal["transformers", "ctranslate2", "vllm", "openai"] = "transformers"
    strategy: Literal["question", "keyword", "claim", "title", "diverse"] = "question"
    prompt_format: Literal["completion", "chat"] = "completion"
    examples: Literal["train", "generic", "none"] = "train"  # where few-shot examples come from
    num_examples: Int = Field(3, ge=0)
    num_passages: Int = Field(200, ge=1)  # 0 would leave the filter and train stages nothing to read
    queries_per_passage: Int = Field(1, ge=1)
    exclude_judged: bool = False  # leave out passages judged in any non-train split
    temperature: Number = Field(0.0, ge=0)  # 0 = greedy; otherwise sampling seeded per passage
    top_p: Number = Field(1.0, gt=0, le=1)
    max_new_tokens: Int = Field(24, ge=1)
    max_passage_words: Int = Field(120, ge=8)
    # clean-up: queries shorter, longer or more copied from their passage than this are dropped (and counted)
    min_chars: Int = Field(3, ge=1)
    max_words: Int = Field(32, ge=1)
    max_copy_overlap: Number = Field(0.8, gt=0, le=1)
    # clean-up across passages: a query (case and punctuation aside) kept for this many passages is dropped after
    # that (`repeated`); None: no cap. Off by default: its effect on the metrics is not measured yet.
    max_repeats: Int | None = Field(None, ge=1)
    seed: Int = 0
    # An existing augmented set to use instead of generating (augir/published.py): a folder, by convention
    # data/published/<name> (`dvc import` of a registry's set), or hf:<repo>. None: generate.
    source: str | None = Field(None, min_length=1)
    openai: OpenAIParams = OpenAIParams()
    vllm: VllmParams = VllmParams()
    ctranslate2: CTranslate2Params = CTranslate2Params()

    @model_validator(mode="after")
    def _several_queries_need_variety(self) -> AugmentParams:
        if self.queries_per_passage > 1 and self.temperature == 0 and self.strategy != "diverse":
            raise ValueError(
                "augment.queries_per_passage > 1 with greedy decoding writes the same query again: "
                "set augment.temperature > 0 or augment.strategy: diverse"
            )
        if self.backend == "ctranslate2" and self.temperature > 0:
            # its random generator lives in its worker threads: set_random_seed cannot seed each passage's draw
            raise ValueError("augment.backend ctranslate2 decodes greedily only (augment.temperature: 0): its "
                             "sampling cannot be seeded per passage")
        return self


class RuntimeOpenAIParams(_Strict):
    concurrency: Int = Field(4, ge=1)  # requests in flight
    cache_prompt: bool = False  # send llama.cpp server's `cache_prompt` (reuse the shared prefix); others may refuse it


class RuntimeVllmParams(_Strict):
    tensor_parallel_size: Int = Field(1, ge=1)
    data_parallel_size: Int = Field(1, ge=1)
    gpu_memory_utilization: Number = Field(0.9, gt=0, le=1)
    enable_prefix_caching: bool = True  # vLLM's automatic prefix caching: the shared few-shot prefix computed once


class RuntimeRayParams(_Strict):
    """runtime.executor: ray. Where and how wide, not what: the shards and their bytes are those of the local executor."""

    address: str | None = None  # None: the RAY_ADDRESS variable, else a local cluster started for the run
    num_actors: Int = Field(2, ge=1)  # CPU: actors, each loading the generator once; vllm backend: engine replicas
    num_cpus_per_actor: Number = Field(1, gt=0)
    # An actor that dies (killed, out of memory, node lost) is restarted this many times, and the shard it held is
    # retried this many times; Ray Data's defaults (-1) would retry a shard that always kills its actor forever.
    max_restarts: Int = Field(3, ge=0)
    max_task_retries: Int = Field(3, ge=0)
    # A shard whose generation raises is tried this many times in its actor before the stage fails naming it.
    max_shard_attempts: Int = Field(2, ge=1)


class RuntimeParams(_Strict):
    """How fast, not what: knobs that change speed only. Stages read them, but no stage lists them as DVC params
    and no shard fingerprint includes them, so changing one (or moving to a bigger machine) regenerates nothing.
    They are recorded in metrics/augment.json. Batch-invariance is the engine's: see the README."""

    # augment: prompts per backend call and per resumable shard; the transformers backend decodes them as one pool
    batch_size: Int = Field(32, ge=1)
    sort_by_length: bool = True  # augment: batches of prompts of similar length (less padding); false: passage order
    threads: Int | None = Field(None, ge=1)  # torch CPU threads; None: torch's default (one per core)
    prefix_cache: bool = True  # transformers: compute each strategy's shared prefix once and reuse its KV cache
    # transformers: prompt tokens (padding included, shared prefix excluded) read per forward pass; a batch's
    # prompts are read in chunks of similar length within it, then decoded together
    prefill_tokens: Int = Field(1024, ge=1)
    # train: data-parallel processes (torchrun, one per GPU; gloo on CPUs). train.batch_size stays the global batch,
    # split across them, with in-batch negatives gathered from all: the model is a single process's, within float
    # tolerance (tests/training/test_distributed.py)
    train_processes: Int = Field(1, ge=1)
    # encode: one process per device for the corpus (sentence-transformers' multi-process pool), e.g. [cuda:0,
    # cuda:1]; null: this process on its default device. The embeddings are one process's (tests/retrieval)
    encode_devices: list[str] | None = None
    # Where the shards are generated: in this process, or on a Ray cluster (the same shards, so the same bytes with
    # greedy decoding on a batch-invariant engine). A runtime knob, not an augment param: moving a run to a cluster
    # must neither re-run the stage nor invalidate the shards a local run left.
    executor: Literal["local", "ray"] = "local"
    openai: RuntimeOpenAIParams = RuntimeOpenAIParams()
    vllm: RuntimeVllmParams = RuntimeVllmParams()
    ray: RuntimeRayParams = RuntimeRayParams()


class FilterParams(_Strict):
    method: Literal["none", "consistency", "judge"] = "none"
    retriever: str = "bm25"  # consistency: bm25, or an encoder (built-in name, folder or hub id)
    top_k: Int = Field(20, ge=1)  # consistency: keep a query if its passage ranks within this
    judge_generator: str = "smollm2-135m"  # judge: run with augment.backend and its settings
    min_grade: Int = Field(2, ge=0, le=3)  # judge: keep pairs graded at least this (0-3)
    judge_model: str | None = None  # judge: a trained judge's folder (models/judge: the judge stage) instead of the prompt
    min_expected_grade: Number = Field(0.5, ge=0)  # judge_model: keep pairs whose expected grade is at least this
    batch_size: Int = Field(16, ge=1)


class JudgeParams(_Strict):
    """A LoRA-tuned LLM judge trained on a dataset's judgments (augir.judging); off by default."""

    enabled: bool = False  # false: the judge stage writes an empty judge in a second
    dataset: str = "semanlink"  # a download source whose judgments train and test the judge
    source_split: str = "train"  # whose queries are split into judge-train/judge-test (Cranfield: test, see README)
    test_fraction: float = Field(0.2, gt=0, lt=1)  # share of the source split's queries held out as judge-test
    max_grade: int = Field(1, ge=1, le=9)  # grades 0..max_grade; 0 = not relevant (BM25 candidates not judged relevant)
    candidates_top_k: int = Field(20, ge=1)  # BM25 candidates per query for the grade-0 examples
    max_examples: int | None = Field(1000, ge=2)  # judge-train examples, balanced over grades
    max_test_examples: int | None = Field(400, ge=2)
    base_model: str = "smollm2-135m"  # a built-in generator name, a local folder or a hub id (Qwen2.5, Gemma, ...)
    lora_r: int = Field(8, ge=1)
    lora_alpha: int = Field(16, ge=1)
    lora_dropout: float = Field(0.05, ge=0, lt=1)
    lora_target_modules: list[str] = Field(default_factory=lambda: ["q_proj", "v_proj"], min_length=1)
    epochs: float = Field(1, gt=0)
    learning_rate: float = Field(2e-4, gt=0)
    batch_size: int = Field(8, ge=1)
    eval_batch_size: int = Field(8, ge=1)
    max_length: int = Field(256, ge=16)
    merged: bool = False  # also save base + adapter merged into one model
    cosine_encoder: str = "minilm-l6"  # the retriever whose cosine is compared as a judge
    seed: int = 0


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
    real_pairs: Int | None = Field(None, ge=0)  # first N real pairs (query id order); None = all
    augmented_pairs: Int = Field(0, ge=0)  # first N synthetic pairs; 0 = no augmentation
    infused_pairs: Int = Field(0, ge=0)  # first N infused pairs (infuse stage's order); 0 = none
    epochs: Number = Field(1, ge=0)  # 0 = zero-shot: the model is saved untrained
    batch_size: Int = Field(32, ge=2)
    learning_rate: Number = Field(5e-5, gt=0)
    warmup_ratio: Number = Field(0.1, ge=0, le=1)
    max_seq_length: Int = Field(128, ge=8)
    # mnrl: MultipleNegativesRankingLoss | cached_mnrl: its GradCache form, the same loss at the memory of
    # mini_batch_size, for large batches
    loss: Literal["mnrl", "cached_mnrl"] = "mnrl"
    mini_batch_size: Int = Field(32, ge=1)  # cached_mnrl: texts per forward pass
    seed: Int = 0


class NegativesParams(_Strict):
    """Hard negatives mined for every training pair by the pairs stage (augir.training.negatives); none by default."""

    count: Int = Field(0, ge=0)  # negatives per pair; 0 = none (in-batch negatives only)
    miner: str = "minilm-l6"  # the dense encoder whose ranking gives the candidates
    range_min: Int = Field(0, ge=0)  # skip the miner's top range_min candidates (likely unjudged positives)
    range_max: Int = Field(50, ge=1)  # consider candidates ranked below this only
    margin: Number | None = None  # absolute: a negative scores at least this much below the positive
    judge: str | None = None  # a trained judge's folder (models/judge): drop negatives it grades relevant
    judge_max_grade: Number = Field(0.5, ge=0)  # judge: keep negatives whose expected grade is under this

    @model_validator(mode="after")
    def _window(self) -> NegativesParams:
        if self.range_min >= self.range_max:
            raise ValueError(f"negatives.range_min ({self.range_min}) must be below negatives.range_max ({self.range_max})")
        return self


class LabelsParams(_Strict):
    """The trained judge as labeller of the training pairs (augir.judging.labels); off without a judge."""

    judge: str | None = None  # a trained judge's folder (models/judge, from the judge stage); None: off
    top_k: Int = Field(10, ge=1)  # BM25 candidates graded per training query
    min_grade: Number = Field(0.75, ge=0)  # expected grade at least this: a new positive pair
    max_negative_grade: Number = Field(0.25, ge=0)  # expected grade under this: a hard negative of the query
    negatives: Int = Field(0, ge=0)  # the judge's hard negatives per pair; 0: none (pairs only)

    @model_validator(mode="after")
    def _grades(self) -> LabelsParams:
        if self.max_negative_grade > self.min_grade:
            raise ValueError(f"labels.max_negative_grade ({self.max_negative_grade}) must not exceed labels.min_grade "
                             f"({self.min_grade}): a passage would be both a positive and a negative")
        return self


class EncodeParams(_Strict):
    batch_size: Int = Field(64, ge=1)
    max_seq_length: Int | None = Field(None, ge=8)  # None: the model's own limit
    # A faiss index-factory string, searched by inner product: Flat (exact; `flat_ip` is its old name), HNSW32,
    # IVF<lists>,Flat, IVF<lists>,PQ<m>, ... Anything but Flat is approximate and the metrics say so (exact: false).
    index: str = "Flat"
    # torch | openvino | onnx | onnx-int8: the transformer run by OpenVINO or ONNX Runtime (int8: dynamically
    # quantized) on CPUs, for encode and evaluate's queries (speed and agreement with torch: README); training is
    # always torch
    backend: Literal["torch", "onnx", "onnx-int8", "openvino"] = "torch"
    train_sample: Int = Field(100_000, ge=1)  # IVF/PQ: vectors the index trains on (a seeded sample of the corpus)
    seed: Int = 0  # the training sample and IVF k-means initialisation
    chunk_size: Int = Field(4096, ge=1)  # passages encoded (and checkpointed) together; the unit of resuming
    # search depth, read by evaluate (listed in its DVC params, not encode's: changing it re-runs only the search)
    nprobe: Int = Field(16, ge=1)  # IVF: inverted lists visited per query
    ef_search: Int = Field(128, ge=1)  # HNSW: candidate list size (faiss uses at least top_k)

    @field_validator("index")
    @classmethod
    def _factory_string(cls, value: str) -> str:
        from augir.retrieval.factory import canonical_factory

        try:
            return canonical_factory(value)
        except AugirError as error:
            raise ValueError(str(error).removeprefix("encode.index: ")) from None


class EvaluateParams(_Strict):
    datasets: list[str] = Field(min_length=1)
    split: str = "test"
    top_k: Int = Field(1000, ge=1)
    remove_self_hits: bool = True
    strict: bool = False  # true: refuse to score qrels naming documents or queries the dataset lacks


class Params(_Strict):
    download: DownloadParams
    augment: AugmentParams
    filter: FilterParams = FilterParams()
    judge: JudgeParams = JudgeParams()
    negatives: NegativesParams = NegativesParams()
    labels: LabelsParams = LabelsParams()
    infuse: InfuseParams = InfuseParams()
    train: TrainParams
    encode: EncodeParams = EncodeParams()
    evaluate: EvaluateParams
    runtime: RuntimeParams = RuntimeParams()

    @model_validator(mode="after")
    def _datasets_are_downloaded(self) -> Params:
        known = set(self.download.sources)
        named = [("augment.dataset", self.augment.dataset)]
        named += [("train.datasets", name) for name in self.train.datasets]
        if self.judge.enabled:
            named += [("judge.dataset", self.judge.dataset)]
        named += [("evaluate.datasets", name) for name in self.evaluate.datasets]
        if self.labels.negatives and self.negatives.count:
            raise ValueError("labels.negatives and negatives.count: hard negatives come from one of them (set the "
                             "other to 0)")
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


def param_defaults(model: type[BaseModel] = Params) -> dict[str, Any]:
    """Every param that has a default, at that default, nested as in params.yaml (required ones are left out).

    A param is added with the default that keeps what augir did before it existed, so this is also how to read an
    experiment saved before a param was added (augir.study.matrix)."""
    defaults: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            defaults[name] = param_defaults(annotation)  # a section: its own defaults, even where it is required
        elif not info.is_required():
            value = info.get_default(call_default_factory=True)
            defaults[name] = value.model_dump() if isinstance(value, BaseModel) else value
    return defaults


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
