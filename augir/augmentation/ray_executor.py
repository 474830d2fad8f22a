"""`runtime.executor: ray`: the augment stage's pending shards generated on a Ray cluster (the optional `ray` extra).

The driver plans the shards exactly as the local executor does (augment.plan_shards: same batches, same
content-addressed names) and writes each finished one with augment.write_shard as results stream back, so a
killed run resumes with only its unfinished shards regenerated, whichever executor ran it before.

- CPU backends (`transformers`, `openai`): one Ray Data row per pending shard, `map_batches` over an actor pool
  (`num_actors` actors, each loading the backend once). A shard is one backend call, as in the local executor, so
  the backend sees the same batches and greedy output is byte-identical.
- `vllm`: one row per query through `ray.data.llm` (vLLM engine replicas, tensor parallel, prefix caching), the
  seed of each query carried in its row's sampling params. Written against Ray's documented API; **not
  exercised here** (vLLM cannot be installed on these CPU machines): only the rows and the config are tested.

Faults: a dead actor is restarted (`runtime.ray.max_restarts`) and the shard it held retried
(`max_task_retries`); a shard whose generation raises is tried `max_shard_attempts` times, then the stage fails
with one line naming the passage, and nothing is written but the shards finished before.
"""

from __future__ import annotations

import json
import os
import time
import warnings
from collections.abc import Iterator
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from augir.augmentation.backends.base import Backend, Completion, Sampling
from augir.augmentation.prompts import Prompt
from augir.errors import AugirError, first_line
from augir.params import AugmentParams, RuntimeParams

if TYPE_CHECKING:
    from augir.augmentation.augment import AugmentStats, BackendLoader, Shard


class ShardFailed(Exception):
    """A shard that kept failing in its actor, with the passage found to fail alone (the actor's one-line report)."""


# ------------------------------------------------------------------------------------------ the cluster
def connect(options: Any) -> bool:
    """Join `runtime.ray.address`, else RAY_ADDRESS, else start a local cluster; True when this call started Ray."""
    import ray

    if ray.is_initialized():  # a caller (a test, a notebook) already chose the cluster
        return False
    address = options.address or os.environ.get("RAY_ADDRESS")
    try:
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            ray.init(include_dashboard=False, log_to_driver=False)
    except ConnectionError as error:
        raise AugirError(f"runtime.ray.address: cannot connect to the Ray cluster at {address} ({first_line(error)})") from None
    return True


def executor_record(runtime: RuntimeParams, params: AugmentParams) -> dict[str, Any]:
    """What metrics/augment.json records about where the shards were generated (not part of the output)."""
    import ray

    return {
        "name": "ray",
        "ray_version": ray.__version__,
        "address": runtime.ray.address or os.environ.get("RAY_ADDRESS") or "local",
        "actors" if params.backend != "vllm" else "replicas": runtime.ray.num_actors,
        "cluster_cpus": ray.cluster_resources().get("CPU", 0),
    }


def actor_remote_args(runtime: RuntimeParams) -> dict[str, Any]:
    """Ray actor options: finite restarts and retries (Ray Data's default, -1, would retry a fatal shard forever)."""
    return {"max_restarts": runtime.ray.max_restarts, "max_task_retries": runtime.ray.max_task_retries}


# ------------------------------------------------------------------------------------------ rows
def prompt_record(prompt: Prompt) -> dict[str, Any]:
    return {"text": prompt.text, "messages": [list(m) for m in prompt.messages] if prompt.messages else None,
            "prefix": prompt.prefix}


def prompt_from(record: dict[str, Any]) -> Prompt:
    messages = tuple(tuple(m) for m in record["messages"]) if record["messages"] is not None else None
    return Prompt(text=record["text"], messages=messages, prefix=record["prefix"])  # type: ignore[arg-type]


def shard_row(shard: Shard) -> dict[str, Any]:
    """One Ray Data row per shard. JSON text, so that Arrow never retypes a prompt, a seed (up to 2**63) or an id."""
    jobs = [{"doc_id": job.doc_id, "seed": job.seed, "prompt": prompt_record(prompt)}
            for job, prompt in zip(shard.jobs, shard.prompts)]
    return {"shard": shard.number, "jobs": json.dumps(jobs)}


def completions_of(row: dict[str, Any]) -> list[Completion]:
    return [Completion(**record) for record in json.loads(row["completions"])]


# ------------------------------------------------------------------------------------------ CPU: an actor pool
class ShardGenerator:
    """A Ray Data UDF class: each actor loads the backend once and turns one shard row into its completions."""

    def __init__(self, params: AugmentParams, runtime: RuntimeParams, load_backend: BackendLoader) -> None:
        # runtime.threads None: torch follows OMP_NUM_THREADS, which Ray sets to the actor's CPUs
        self.backend: Backend = load_backend(params, runtime)
        self.sampling: Sampling = _sampling(params)
        self.attempts = runtime.ray.max_shard_attempts

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        shards, outputs, seconds = [], [], []
        for number, jobs_json in zip(batch["shard"], batch["jobs"]):
            started = time.perf_counter()
            completions = self.generate(int(number), json.loads(jobs_json))
            seconds.append(time.perf_counter() - started)
            shards.append(int(number))
            outputs.append(json.dumps([asdict(c) for c in completions]))
        return {"shard": shards, "completions": outputs, "seconds": seconds}

    def generate(self, number: int, jobs: list[dict[str, Any]]) -> list[Completion]:
        prompts = [prompt_from(job["prompt"]) for job in jobs]
        seeds = [job["seed"] for job in jobs]
        for attempt in range(1, self.attempts + 1):
            try:
                return self.backend.complete(prompts, seeds, self.sampling)
            except Exception as error:  # noqa: BLE001 - reported below with the passage, as one line
                if attempt == self.attempts:
                    raise ShardFailed(self.culprit(number, jobs, prompts, seeds, error)) from None
        raise AssertionError("unreachable")

    def culprit(self, number: int, jobs: list[dict[str, Any]], prompts: list[Prompt], seeds: list[int],
                error: Exception) -> str:
        """The one-line report: the first passage whose prompt fails alone (else the shard's passages)."""
        for job, prompt, seed in zip(jobs, prompts, seeds):
            try:
                self.backend.complete([prompt], [seed], self.sampling)
            except Exception as alone:  # noqa: BLE001
                return f"passage {job['doc_id']} (shard {number}) failed {self.attempts} times: {_described(alone)}"
        passages = ", ".join(job["doc_id"] for job in jobs)
        return f"shard {number} (passages {passages}) failed {self.attempts} times: {_described(error)}"


def _described(error: BaseException) -> str:
    return f"{type(error).__name__}: {first_line(error)}"


def _sampling(params: AugmentParams) -> Sampling:
    from augir.augmentation.augment import sampling_of

    return sampling_of(params)


def generate_shards_on_actors(pending: list[Shard], params: AugmentParams, runtime: RuntimeParams,
                              load_backend: BackendLoader) -> Iterator[tuple[int, list[Completion], float]]:
    """(shard number, completions, seconds in the actor) as each shard finishes, in any order."""
    import ray

    from ray.util.annotations import RayDeprecationWarning

    dataset = ray.data.from_items([shard_row(shard) for shard in pending], override_num_blocks=len(pending))
    with warnings.catch_warnings():
        # Ray 2.60 takes max_restarts / max_task_retries only as `**ray_remote_args`, deprecated for removal in
        # 2.64 without a named replacement yet (hence the extra's `<2.64`).
        warnings.simplefilter("ignore", RayDeprecationWarning)
        generated = dataset.map_batches(
            ShardGenerator,
            batch_size=1,  # one shard, one backend call: the batches the local executor makes
            batch_format="numpy",
            fn_constructor_args=(params, runtime, load_backend),
            concurrency=runtime.ray.num_actors,
            num_cpus=runtime.ray.num_cpus_per_actor,
            **actor_remote_args(runtime),
        )
    for row in generated.iter_rows():
        yield int(row["shard"]), completions_of(row), float(row["seconds"])


# ------------------------------------------------------------------------------------------ GPU: ray.data.llm + vLLM
def llm_rows(pending: list[Shard], params: AugmentParams) -> list[dict[str, Any]]:
    """One row per query: its prompt (text, or chat messages) and sampling params carrying its own seed."""
    from augir.augmentation.backends.base import chat_messages
    from augir.augmentation.backends.vllm_backend import sampling_params_for

    sampling = _sampling(params)
    rows = []
    for shard in pending:
        for position, (job, prompt) in enumerate(zip(shard.jobs, shard.prompts)):
            row: dict[str, Any] = {"shard": shard.number, "position": position, "doc_id": job.doc_id,
                                   "sampling_params": {k: v for k, v in sampling_params_for(sampling, job.seed).items()
                                                       if v is not None}}
            if prompt.messages is None:
                row["prompt"] = prompt.text or ""
            else:
                row["messages"] = chat_messages(prompt)
            rows.append(row)
    return rows


def vllm_processor_config(params: AugmentParams, runtime: RuntimeParams) -> dict[str, Any]:
    """Keyword arguments of `ray.data.llm.vLLMEngineProcessorConfig` (a plain dict, tested without vLLM)."""
    return {
        "model_source": params.generator,
        "engine_kwargs": {
            "tensor_parallel_size": runtime.vllm.tensor_parallel_size,
            "enable_prefix_caching": runtime.vllm.enable_prefix_caching,  # the few-shot prefix computed once
            "gpu_memory_utilization": runtime.vllm.gpu_memory_utilization,
            "dtype": params.vllm.dtype,
            "seed": params.seed,
        },
        "concurrency": runtime.ray.num_actors,  # engine replicas, each tensor_parallel_size GPUs
        "batch_size": runtime.batch_size,
        "chat_template_stage": params.prompt_format == "chat",  # completion prompts go to the engine as they are
        "should_continue_on_error": False,  # a failing request fails the stage; no partial set is written
    }


def _llm_postprocess(row: dict[str, Any]) -> dict[str, Any]:
    return {"shard": row["shard"], "position": row["position"], "text": row["generated_text"],
            "new_tokens": int(row.get("num_generated_tokens") or len(row.get("generated_tokens") or [])),
            "prompt_tokens": int(row["num_input_tokens"]) if row.get("num_input_tokens") is not None else None}


def build_vllm_processor(params: AugmentParams, runtime: RuntimeParams) -> Any:
    from ray.data import llm

    # Ray renamed the builder (build_llm_processor, then build_processor around Ray 2.53): use what is installed.
    build = getattr(llm, "build_processor", None) or llm.build_llm_processor
    config = llm.vLLMEngineProcessorConfig(**vllm_processor_config(params, runtime))
    return build(config, postprocess=_llm_postprocess)


def generate_shards_with_vllm(pending: list[Shard], params: AugmentParams,
                              runtime: RuntimeParams) -> Iterator[tuple[int, list[Completion], float]]:
    """Queries stream through vLLM replicas; a shard is yielded once all its queries are back."""
    import ray

    processor = build_vllm_processor(params, runtime)
    sizes = {shard.number: len(shard.jobs) for shard in pending}
    waiting: dict[int, dict[int, Completion]] = {}
    for row in processor(ray.data.from_items(llm_rows(pending, params))).iter_rows():
        number = int(row["shard"])
        waiting.setdefault(number, {})[int(row["position"])] = Completion(
            row["text"], row["new_tokens"], prompt_tokens=row["prompt_tokens"])
        if len(waiting[number]) == sizes[number]:
            done = waiting.pop(number)
            yield number, [done[i] for i in range(sizes[number])], 0.0


# ------------------------------------------------------------------------------------------ the executor
def generate_on_ray(pending: list[Shard], params: AugmentParams, runtime: RuntimeParams, stats: AugmentStats,
                    load_backend: BackendLoader) -> dict[str, Any]:
    """Generate and write the pending shards on Ray; the executor record for the metrics."""
    from augir.augmentation.augment import count_generated, write_shard

    try:
        import ray
    except ImportError:
        raise AugirError('runtime.executor: ray is not installed; pip install -e ".[ray]"') from None
    if not pending:  # every shard is there: nothing to start a cluster for
        return {"name": "ray", "ray_version": ray.__version__, "generated_now": 0}
    started_here = connect(runtime.ray)
    try:
        record = executor_record(runtime, params)
        by_number = {shard.number: shard for shard in pending}
        stream = (generate_shards_with_vllm(pending, params, runtime) if params.backend == "vllm"
                  else generate_shards_on_actors(pending, params, runtime, load_backend))
        started = time.perf_counter()
        try:
            for number, completions, _ in stream:
                write_shard(by_number[number], completions)
                count_generated(stats, completions)
        except AugirError:
            raise
        except Exception as error:  # noqa: BLE001 - Ray wraps a worker's error in its own types: one line of ours
            raise AugirError(failure_line(error, runtime)) from None
        finally:
            # wall clock of the whole pool, actor start and model loading included (they overlap generation)
            stats.generation_seconds += time.perf_counter() - started
        return record
    finally:
        if started_here:
            import ray

            ray.shutdown()


def failure_line(error: BaseException, runtime: RuntimeParams) -> str:
    """One line for the stage's failure: the actor's report when a shard kept failing, else Ray's first line."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ShardFailed):
            return f"runtime.executor: ray: {first_line(current)}"
        for line in str(current).splitlines():  # a cause Ray could not re-raise as its type keeps its text
            if "ShardFailed: " in line:
                return f"runtime.executor: ray: {line.split('ShardFailed: ', 1)[1].strip()}"
        current = current.__cause__ or current.__context__
    import ray.exceptions

    if _caused_by(error, ray.exceptions.RayActorError):
        return (f"runtime.ray.max_restarts: generation actors kept dying ({runtime.ray.max_restarts} restarts, "
                f"{runtime.ray.max_task_retries} retries per shard): {first_line(error)}")
    return f"runtime.executor: ray: generation failed ({type(error).__name__}: {first_line(error)})"


def _caused_by(error: BaseException, kind: type[BaseException]) -> bool:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, kind):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False
