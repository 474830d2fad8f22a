"""runtime.executor: ray on a real local Ray cluster (2 CPUs), with the tiny generator saved to a folder.

Actors load the generator themselves (augir's own CPU backend, from the folder), so these tests cover what a
cluster run does: same shards, same bytes as the local executor, resume, a dead actor replaced, a failing
passage reported in one line. The vLLM path is covered only by the rows and config it builds (no vLLM here).
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

from augir.augmentation import ray_executor  # noqa: E402
from augir.augmentation.augment import choose_passages, run_augmentation  # noqa: E402
from augir.data.beir import load_beir  # noqa: E402
from augir.errors import AugirError  # noqa: E402
from augir.params import AugmentParams, RuntimeParams, RuntimeRayParams  # noqa: E402

OUTPUT = ["queries.jsonl", "qrels/train.tsv", "provenance.jsonl"]


@pytest.fixture(scope="module")
def ray_cluster():
    # The fault-injecting loaders below live in this test module, which workers cannot import: send them by value.
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    for attempt in range(3):
        try:
            ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
            break
        except Exception as error:  # noqa: BLE001
            # On a loaded machine the raylet can miss Ray's fixed 30 s start deadline; a second start usually makes it.
            ray.shutdown()
            if attempt == 2 or "timed out during startup" not in str(error):
                raise
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def generator_dir(tmp_path_factory, tiny_generator) -> Path:
    folder = tmp_path_factory.mktemp("generator") / "tiny-llama"
    tiny_generator.model.save_pretrained(folder)
    tiny_generator.tokenizer.save_pretrained(folder)
    return folder


def _params(generator_dir: Path, **overrides) -> AugmentParams:
    values = dict(dataset="tiny", generator=str(generator_dir), num_passages=8, num_examples=2, max_new_tokens=6,
                  seed=3)
    return AugmentParams(**{**values, **overrides})


def _runtime(executor: str = "ray", **ray_options) -> RuntimeParams:
    return RuntimeParams(batch_size=2, threads=1, executor=executor, ray=RuntimeRayParams(**ray_options))


def _read(folder: Path) -> dict[str, bytes]:
    return {name: (folder / name).read_bytes() for name in OUTPUT}


@pytest.fixture(scope="module")
def local_output(tmp_path_factory, tiny_beir_session_dir, generator_dir) -> dict[str, bytes]:
    """The local executor's output for the default test params (loaded from the same folder)."""
    # Read through a fixture, not `from conftest import ...`: with the whole suite collected, the module named
    # `conftest` can be another folder's (it was tests/judging/conftest.py in CI).
    dataset = load_beir(tiny_beir_session_dir)
    out = tmp_path_factory.mktemp("local")
    run_augmentation(dataset, _params(generator_dir), out / "out", out / "work", runtime=_runtime("local"))
    return _read(out / "out")


# ------------------------------------------------------------------------------------------ fault injection
class Wrapped:
    """A backend that defers to augir's own, with a fault before some calls."""

    name = "transformers"

    def __init__(self, inner, before) -> None:
        self.inner, self.before = inner, before

    def complete(self, prompts, seeds, sampling):
        self.before(prompts)
        return self.inner.complete(prompts, seeds, sampling)


@dataclass
class FailOnPassage:
    """Every call whose prompts hold `text` raises, a little late so that other shards finish first."""

    text: str

    def __call__(self, params, runtime):
        from augir.augmentation.backends import make_backend

        def before(prompts):
            if any(self.text in (p.text or "") for p in prompts):
                time.sleep(1.5)
                raise RuntimeError("the engine choked")

        return Wrapped(make_backend(params, runtime), before)


@dataclass
class DieOnce:
    """The first call on the cluster kills its actor's process (os._exit), once: the marker file says it happened.
    Without a marker, every call does."""

    marker: str | None

    def __call__(self, params, runtime):
        from augir.augmentation.backends import make_backend

        def before(prompts):
            if self.marker is None:
                os._exit(1)
            if not os.path.exists(self.marker):
                Path(self.marker).write_text(str(os.getpid()))
                os._exit(1)

        return Wrapped(make_backend(params, runtime), before)


# ------------------------------------------------------------------------------------------ tests
def test_ray_output_is_byte_identical_to_the_local_executor(ray_cluster, tmp_path, tiny_dataset, generator_dir,
                                                            local_output):
    stats = run_augmentation(tiny_dataset, _params(generator_dir), tmp_path / "out", tmp_path / "work",
                             runtime=_runtime())
    assert _read(tmp_path / "out") == local_output
    assert not (tmp_path / "work").exists()
    summary = stats.to_json_dict()
    assert summary["executor"]["name"] == "ray" and summary["executor"]["ray_version"] == ray.__version__
    assert summary["executor"]["actors"] == 2
    assert summary["runtime"]["executor"] == "ray" and summary["generated"] == 8


def test_a_failing_passage_is_one_line_then_a_resume_regenerates_only_unfinished_shards(
        ray_cluster, tmp_path, tiny_dataset, generator_dir, local_output):
    params = _params(generator_dir)
    last = choose_passages(tiny_dataset, 8, params.seed)[-1]  # in the last of the four shards
    text = tiny_dataset.corpus[last].text
    with pytest.raises(AugirError) as failure:
        run_augmentation(tiny_dataset, params, tmp_path / "out", tmp_path / "work", runtime=_runtime(),
                         load_backend=FailOnPassage(text))
    message = str(failure.value)
    assert "\n" not in message and f"passage {last}" in message and "RuntimeError: the engine choked" in message
    assert not (tmp_path / "out").exists()  # no partial set
    finished = sorted(p.name for p in (tmp_path / "work").glob("*.jsonl"))
    assert 1 <= len(finished) < 4 and not any(name.startswith("000003-") for name in finished)

    stats = run_augmentation(tiny_dataset, params, tmp_path / "out", tmp_path / "work", runtime=_runtime())
    assert stats.generated_now == 2 * (4 - len(finished))  # only the unfinished shards, two queries each
    assert _read(tmp_path / "out") == local_output


def test_a_local_run_resumes_from_shards_ray_wrote(ray_cluster, tmp_path, tiny_dataset, generator_dir, local_output):
    params = _params(generator_dir)
    text = tiny_dataset.corpus[choose_passages(tiny_dataset, 8, params.seed)[-1]].text
    with pytest.raises(AugirError):
        run_augmentation(tiny_dataset, params, tmp_path / "out", tmp_path / "work", runtime=_runtime(),
                         load_backend=FailOnPassage(text))
    finished = len(list((tmp_path / "work").glob("*.jsonl")))
    stats = run_augmentation(tiny_dataset, params, tmp_path / "out", tmp_path / "work", runtime=_runtime("local"))
    assert stats.generated_now == 2 * (4 - finished)
    assert _read(tmp_path / "out") == local_output


def test_an_actor_that_dies_is_replaced_and_the_output_is_complete(ray_cluster, tmp_path, tiny_dataset,
                                                                   generator_dir, local_output):
    marker = tmp_path / "died"
    stats = run_augmentation(tiny_dataset, _params(generator_dir), tmp_path / "out", tmp_path / "work",
                             runtime=_runtime(), load_backend=DieOnce(str(marker)))
    assert marker.exists()  # an actor did die
    assert _read(tmp_path / "out") == local_output
    assert stats.generated == 8


def test_actors_that_keep_dying_fail_in_one_line_naming_the_param(ray_cluster, tmp_path, tiny_dataset, generator_dir):
    with pytest.raises(AugirError) as failure:
        run_augmentation(tiny_dataset, _params(generator_dir), tmp_path / "out", tmp_path / "work",
                         runtime=_runtime(max_restarts=1, max_task_retries=1), load_backend=DieOnce(None))
    assert "\n" not in str(failure.value) and "runtime.ray.max_restarts" in str(failure.value)
    assert not (tmp_path / "out").exists()


def test_a_backend_object_cannot_go_to_ray(tmp_path, tiny_dataset, tiny_backend, generator_dir):
    with pytest.raises(ValueError, match="load_backend"):
        run_augmentation(tiny_dataset, _params(generator_dir), tmp_path / "out", tmp_path / "work", tiny_backend,
                         runtime=_runtime())


# ------------------------------------------------------------------------------------------ vLLM rows and config
def test_vllm_rows_carry_each_query_seed_and_the_config_follows_the_runtime(tmp_path, tiny_dataset, generator_dir):
    from augir.augmentation.augment import PromptBuilder, plan_jobs, plan_shards

    params = _params(generator_dir, backend="vllm", temperature=0.7)
    jobs = plan_jobs(choose_passages(tiny_dataset, 4, params.seed), params)
    shards = plan_shards([jobs[:2], jobs[2:]], PromptBuilder(tiny_dataset, params), params, tmp_path)
    rows = ray_executor.llm_rows(shards, params)
    assert [(r["shard"], r["position"], r["doc_id"]) for r in rows] == [
        (0, 0, jobs[0].doc_id), (0, 1, jobs[1].doc_id), (1, 0, jobs[2].doc_id), (1, 1, jobs[3].doc_id)]
    assert [r["sampling_params"]["seed"] for r in rows] == [job.seed for job in jobs]
    assert all(r["sampling_params"]["stop"] == ["\n"] and r["sampling_params"]["temperature"] == 0.7 for r in rows)
    assert rows[0]["prompt"] == shards[0].prompts[0].text

    runtime = RuntimeParams(batch_size=32, vllm={"tensor_parallel_size": 2, "enable_prefix_caching": False},
                            ray={"num_actors": 4})
    config = ray_executor.vllm_processor_config(params, runtime)
    assert config["concurrency"] == 4 and config["batch_size"] == 32 and not config["chat_template_stage"]
    assert config["engine_kwargs"]["tensor_parallel_size"] == 2
    assert config["engine_kwargs"]["enable_prefix_caching"] is False
    from ray.data.llm import vLLMEngineProcessorConfig

    vLLMEngineProcessorConfig(**config)  # the installed Ray accepts every key


def test_vllm_results_are_regrouped_into_their_shards_in_order(tmp_path, tiny_dataset, generator_dir, monkeypatch):
    from augir.augmentation.augment import PromptBuilder, plan_jobs, plan_shards

    params = _params(generator_dir, backend="vllm")
    jobs = plan_jobs(choose_passages(tiny_dataset, 4, params.seed), params)
    shards = plan_shards([jobs[:2], jobs[2:]], PromptBuilder(tiny_dataset, params), params, tmp_path)

    class FakeDataset:  # what processor(dataset) returns: rows back in any order
        def __init__(self, rows):
            self.rows = rows

        def iter_rows(self):
            for row in reversed(self.rows):
                yield ray_executor._llm_postprocess({**row, "generated_text": f"q{row['shard']}{row['position']}",
                                                     "num_generated_tokens": 3, "num_input_tokens": 9})

    monkeypatch.setattr(ray.data, "from_items", FakeDataset)
    monkeypatch.setattr(ray_executor, "build_vllm_processor", lambda params, runtime: lambda dataset: dataset)
    done = list(ray_executor.generate_shards_with_vllm(shards, params, RuntimeParams()))
    assert [(number, [c.text for c in completions]) for number, completions, _ in done] == [
        (1, ["q10", "q11"]), (0, ["q00", "q01"])]
    assert done[0][1][0].new_tokens == 3 and done[0][1][0].prompt_tokens == 9


def test_executor_and_ray_options_are_runtime_params():
    assert RuntimeParams().executor == "local"
    with pytest.raises(ValueError, match="executor"):
        RuntimeParams(executor="dask")
    with pytest.raises(ValueError, match="num_actors"):
        RuntimeParams(ray={"num_actors": 0})
    assert "executor" not in AugmentParams.model_fields  # a runtime knob: never part of augment's identity


DRIVER = '''
import sys, time
from dataclasses import dataclass
from pathlib import Path

import ray

from augir.augmentation.augment import run_augmentation
from augir.data.beir import load_beir
from augir.params import AugmentParams, RuntimeParams, RuntimeRayParams

address, beir, generator, out, work = sys.argv[1:]


@dataclass
class Slow:
    """Each call waits, so that the driver can be killed between shards."""

    seconds: float

    def __call__(self, params, runtime):
        from augir.augmentation.backends import make_backend

        inner, seconds = make_backend(params, runtime), self.seconds

        class Slowed:
            name = inner.name

            def complete(self, prompts, seeds, sampling):
                time.sleep(seconds)
                return inner.complete(prompts, seeds, sampling)

        return Slowed()


ray.init(address=address, log_to_driver=False)
params = AugmentParams(dataset="tiny", generator=generator, num_passages=8, num_examples=2, max_new_tokens=6, seed=3)
runtime = RuntimeParams(batch_size=2, threads=1, executor="ray", ray=RuntimeRayParams())
run_augmentation(load_beir(Path(beir)), params, Path(out), Path(work), runtime=runtime, load_backend=Slow(4.0))
'''


def test_a_driver_killed_mid_run_resumes_with_only_its_unfinished_shards(ray_cluster, tmp_path, tiny_dataset,
                                                                         tiny_beir_session_dir, generator_dir,
                                                                         local_output):
    """The augment stage's process (Ray's driver) is SIGKILLed once a shard is written: the cluster keeps running,
    and the stage started again regenerates only the shards the dead driver had not written."""
    import signal
    import subprocess

    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    address = ray.get_runtime_context().gcs_address
    work = tmp_path / "work"
    driver = subprocess.Popen([sys.executable, str(script), address, str(tiny_beir_session_dir), str(generator_dir),
                               str(tmp_path / "out"), str(work)], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while not list(work.glob("*.jsonl")):
        assert driver.poll() is None, f"the driver ended before writing a shard: {driver.stderr.read()[-2000:]}"
        assert time.monotonic() < deadline, "no shard written in 240 s"
        time.sleep(0.2)
    driver.send_signal(signal.SIGKILL)
    driver.wait(timeout=30)
    finished = len(list(work.glob("*.jsonl")))
    assert not (tmp_path / "out").exists() and 1 <= finished < 4

    stats = run_augmentation(tiny_dataset, _params(generator_dir), tmp_path / "out", work, runtime=_runtime())
    assert stats.generated_now == 2 * (4 - finished)  # only the shards the killed driver had not written
    assert _read(tmp_path / "out") == local_output
