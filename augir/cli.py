"""The `augir` command: one subcommand per pipeline stage, for use with or without DVC."""

from __future__ import annotations

import argparse
import logging
import sys
import traceback
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

from augir.errors import AugirError, redacted
from augir.fileio import DISK_ERRORS
from augir.versions import with_versions


def _download(args: argparse.Namespace) -> None:
    from augir.data.sources import fetch_dataset

    dataset = fetch_dataset(args.source, args.out, seed=args.seed, test_fraction=args.test_fraction, strict=args.strict)
    print(f"{args.out}: {len(dataset.document_ids)} documents, {len(dataset.queries)} queries, splits {sorted(dataset.qrels)}")


def _params_section(args: argparse.Namespace, stage: str) -> dict[str, Any]:
    """The `stage` section of `--params FILE` (every param of the stage); flags given on the command line win."""
    if args.params is None:
        return {}
    import yaml

    try:
        raw = yaml.safe_load(args.params.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise AugirError(f"--params {args.params}: no such file") from None
    except yaml.YAMLError as error:
        raise AugirError(f"--params {args.params}: not valid YAML ({' '.join(str(error).split())})") from None
    section = raw.get(stage, {}) if isinstance(raw, dict) else None
    if not isinstance(section, dict):
        raise AugirError(f"--params {args.params}: {stage}: expected a mapping of parameters")
    return section


def _flags(args: argparse.Namespace, keys: tuple[str, ...], prefix: str = "") -> dict[str, Any]:
    """The given flags' values, without those left unset (their default comes from augir.params)."""
    return {key: getattr(args, prefix + key) for key in keys if getattr(args, prefix + key) is not None}


def _nested(section: dict[str, Any], key: str, flags: dict[str, Any]) -> dict[str, Any]:
    inner = section.get(key, {})
    return {**inner, **flags} if isinstance(inner, dict) else inner  # a non-mapping is left for validation to name


def _augment(args: argparse.Namespace) -> None:
    from augir.augmentation.augment import SIGNATURE, run_augmentation
    from augir.data.beir import load_beir
    from augir.fileio import check_replaceable, write_json_atomic
    from augir.params import AugmentParams, RuntimeParams, validated

    section = _params_section(args, "augment")
    runtime_section = _params_section(args, "runtime")
    runtime = validated(RuntimeParams, {
        **runtime_section, **_flags(args, RUNTIME_FLAGS),
        "openai": _nested(runtime_section, "openai", _flags(args, RUNTIME_OPENAI_FLAGS, "openai_")),
        "vllm": _nested(runtime_section, "vllm", _flags(args, RUNTIME_VLLM_FLAGS, "vllm_")),
        "ray": _nested(runtime_section, "ray", _flags(args, RUNTIME_RAY_FLAGS, "ray_")),
    }, "augir augment")
    values = {
        **section, "dataset": str(args.dataset), **_flags(args, AUGMENT_FLAGS),
        "openai": _nested(section, "openai", _flags(args, OPENAI_FLAGS, "openai_")),
        "vllm": _nested(section, "vllm", _flags(args, VLLM_FLAGS, "vllm_")),
        "ctranslate2": _nested(section, "ctranslate2", _flags(args, CTRANSLATE2_FLAGS, "ctranslate2_")),
    }
    params = validated(AugmentParams, values, "augir augment")
    dataset = load_beir(args.dataset)
    if params.source:  # an existing set instead of generating, as the DVC stage does
        from augir.sharing.published import import_augmented

        check_replaceable(args.out, SIGNATURE, overwrite=args.overwrite)
        counts = import_augmented(params.source, dataset.corpus, args.out)
        if args.metrics:
            write_json_atomic(args.metrics, with_versions(counts))
        print(f"{args.out}: imported {params.source}")
        return
    work_dir = args.work_dir or args.out.parent / f".{args.out.name}.work"
    stats = run_augmentation(dataset, params, args.out, work_dir, runtime=runtime, overwrite=args.overwrite)
    if args.metrics:
        write_json_atomic(args.metrics, with_versions(stats.to_json_dict()))
    print(f"{args.out}: kept {stats.kept} of {stats.generated} generated queries")


def _filter(args: argparse.Namespace) -> None:
    from augir.data.beir import load_beir
    from augir.fileio import write_json_atomic
    from augir.filtering.filter import run_filter
    from augir.params import AugmentParams, FilterParams, validated

    params = validated(FilterParams, {**_params_section(args, "filter"), **_flags(args, FILTER_FLAGS)}, "augir filter")
    backend = trained_judge = None
    if params.method == "judge" and params.judge_model is not None:
        from augir.judging.run import load_trained_judge

        trained_judge = load_trained_judge(Path(params.judge_model), params.batch_size)
    elif params.method == "judge":
        from augir.augmentation.backends import make_backend

        judge = validated(AugmentParams, {"dataset": "-", "generator": params.judge_generator}, "augir filter")
        backend = make_backend(judge)
    stats = run_filter(load_beir(args.dataset), args.augmented, params, args.out, backend, trained_judge=trained_judge,
                       overwrite=args.overwrite)
    if args.metrics:
        write_json_atomic(args.metrics, with_versions(stats))
    print(f"{args.out}: kept {stats['kept']} of {stats['input']} synthetic queries")


def _infuse(args: argparse.Namespace) -> None:
    from augir.data.beir import load_beir
    from augir.fileio import write_json_atomic
    from augir.infusion.infuse import run_infusion
    from augir.params import InfuseParams, validated

    values = {key: getattr(args, key) for key in INFUSE_FLAGS if getattr(args, key) is not None}
    params = validated(InfuseParams, {"method": "skim", **values}, "augir infuse")
    stats = run_infusion(load_beir(args.dataset), args.synthetic, params, args.out)
    if args.metrics:
        write_json_atomic(args.metrics, with_versions(stats))
    print(f"{args.out}: {stats['new_pairs']} new pairs for {stats['training_queries_gained']} training queries "
          f"from {stats['synthetic_queries']} synthetic queries")


def _train(args: argparse.Namespace) -> None:
    from augir.data.beir import load_beir
    from augir.params import TrainParams, validated
    from augir.training.pairs import first_pairs, infused_pairs, real_pairs, synthetic_pairs
    from augir.training.launch import inside_launcher, run_distributed
    from augir.training.train import is_main_process, train_encoder

    if args.processes > 1 and not inside_launcher():
        run_distributed(args.processes, ["-m", "augir.cli", *args.argv])
        return
    values = {**_params_section(args, "train"), "datasets": [str(folder) for folder in args.dataset],
              **_flags(args, TRAIN_FLAGS)}
    params = validated(TrainParams, values, "augir train")
    datasets = {folder: load_beir(folder) for folder in args.dataset}
    real = [pair for folder, data in datasets.items() for pair in real_pairs(data, str(folder))]
    pairs = first_pairs(real, params.real_pairs, "--real-pairs")
    if params.augmented_pairs:
        if args.augmented is None:
            raise AugirError("--augmented-pairs needs --augmented <folder of generated queries>")
        pairs += synthetic_pairs(args.augmented, datasets[args.dataset[0]], params.augmented_pairs)
    if params.infused_pairs:
        if args.infused is None:
            raise AugirError("--infused-pairs needs --infused <output of augir infuse>")
        pairs += infused_pairs(args.infused, datasets[args.dataset[0]], params.infused_pairs)
    stats = train_encoder(pairs, params, args.out, overwrite=args.overwrite)
    if is_main_process():
        print(f"{args.out}: trained on {stats['pairs']} pairs in {stats['steps']} steps ({stats['processes']} "
              f"process{'es' if stats['processes'] > 1 else ''})")


def _judge(args: argparse.Namespace) -> None:
    from augir.data.beir import load_beir
    from augir.fileio import write_json_atomic
    from augir.judging.run import train_and_measure
    from augir.params import JudgeParams, validated

    values = {key: getattr(args, key) for key in JUDGE_FLAGS if getattr(args, key) is not None}
    params = validated(JudgeParams, {"enabled": True, "dataset": str(args.dataset), **values}, "augir judge")
    metrics = with_versions(train_and_measure(load_beir(args.dataset), params, args.out))
    if args.metrics:
        write_json_atomic(args.metrics, metrics)
    for judge, values in metrics["agreement"].items():
        print(f"{judge}: accuracy {values['accuracy']:.3f}, kappa {values['kappa']:.3f}, tau {values['kendall_tau']:.3f}")


def _encode(args: argparse.Namespace) -> None:
    from augir.params import EncodeParams, validated
    from augir.retrieval.index import index_corpus, index_options

    keys = ("index", "train_sample", "seed", "chunk_size", "nprobe", "ef_search")
    params = validated(EncodeParams, {key: getattr(args, key) for key in keys}, "augir encode")
    dense = index_corpus(args.model, args.dataset, args.out, batch_size=args.batch_size,
                         max_seq_length=args.max_seq_length, options=index_options(params), backend=args.backend,
                         devices=args.devices, overwrite=args.overwrite)
    exact = "exact" if dense.info["exact"] else "approximate"
    print(f"{args.out}: {len(dense.doc_ids)} documents indexed ({dense.info['index']}, {exact})")


def _evaluate(args: argparse.Namespace) -> None:
    from augir.data.beir import load_beir
    from augir.fileio import check_replaceable, write_json_atomic
    from augir.retrieval.encoders import Prefixes, load_encoder
    from augir.retrieval.evaluate import RUN_FILE, evaluate_model, evaluate_split, metrics_record, write_run_outputs
    from augir.retrieval.index import load_index

    # What can be checked is checked before the corpus is encoded.
    if args.out.is_dir():
        raise AugirError(f"--out {args.out}: is a folder; give the path of the metrics JSON file to write")
    if args.run_dir:
        check_replaceable(args.run_dir, RUN_FILE, overwrite=args.overwrite, option="--run-dir")
    dense = load_index(args.index, nprobe=args.nprobe, ef_search=args.ef_search) if args.index else None
    # Against an index, its ids stand in for the corpus, whose texts are then never read.
    dataset = load_beir(args.dataset, strict=args.strict, doc_ids=dense.doc_ids if dense else None)
    dataset.split_queries(args.split)  # an unknown split is an error now, not after encoding the corpus
    prefixes = None
    if args.query_prefix is not None or args.passage_prefix is not None:
        prefixes = Prefixes(query=args.query_prefix or "", passage=args.passage_prefix or "")
    encoder = load_encoder(args.model, prefixes=prefixes, max_seq_length=args.max_seq_length, backend=args.backend)
    options = dict(split=args.split, top_k=args.top_k, remove_self_hits=not args.keep_self_hits, batch_size=args.batch_size)
    if dense:
        run, evaluation = evaluate_split(encoder, dense, dataset, **options)
        search = dense.search_record()
    else:
        run, evaluation = evaluate_model(encoder, dataset, **options)
        search = {"index": "Flat", "exact": True}  # encoded now into an in-memory exact index
    record = metrics_record(evaluation, dataset, split=args.split, top_k=args.top_k, search=search)
    if args.run_dir:
        write_run_outputs(run, evaluation, args.run_dir, tag=f"augir-{Path(args.model).name}", overwrite=args.overwrite)
    write_json_atomic(args.out, with_versions(record))
    print(" ".join(f"{key}={value}" for key, value in record.items()))


def _publish(args: argparse.Namespace) -> None:
    from augir.sharing.publish import PublishOptions, publish

    options = PublishOptions(
        params_path=args.params, corpus_name=args.corpus_name, corpus_license=args.corpus_license, to_hub=args.to_hub
    )
    counts = publish(args.augmented, args.out, options)
    where = f" and https://huggingface.co/datasets/{args.to_hub}" if args.to_hub else ""
    print(f"{args.out}{where}: {counts['queries']} queries, {counts['pairs']} pairs, with provenance")


def _grid(args: argparse.Namespace) -> None:
    import yaml

    from augir.study.grid import find_grid, load_grid, parse_shard, push_results, queue_grid

    root = Path(".")
    grid = load_grid(find_grid(args.name, root), args.params)
    if args.shard:
        grid = grid.part(*parse_shard(args.shard))
    if args.skip_finished:
        from augir.study.experiments import experiments_from_folder, unfinished_cells

        finished = [exp for folder in args.skip_finished for exp in experiments_from_folder(folder)]
        params_data = yaml.safe_load(args.params.read_text(encoding="utf-8")) or {}
        left = unfinished_cells(grid, finished, params_data, root)
        print(f"# {len(grid.cells) - len(left.cells)} of {len(grid.cells)} cells skipped: finished in "
              f"{', '.join(map(str, args.skip_finished))}")
        grid = left
    if args.push and not args.run:
        raise AugirError("--push needs --run (queued experiments are pushed after `dvc exp run --run-all`)")
    queue_grid(grid, yaml.safe_load(args.params.read_text(encoding="utf-8")) or {}, root, dry_run=args.dry_run,
               run=args.run, pull=args.pull)
    if args.push:
        push_results(args.push, root)


def _report(args: argparse.Namespace) -> None:
    from augir.study.experiments import experiments_from_dvc, experiments_from_folder, save_experiments, select_grid
    from augir.study.matrix import build_matrix
    from augir.study.report import write_report

    root = Path(".")
    if args.pull:
        from augir.study.grid import pull_results

        pull_results(args.pull, root, args.all_commits)
    experiments = [exp for folder in args.source or [] for exp in experiments_from_folder(folder)]
    if not args.source or args.dvc:
        experiments += experiments_from_dvc(root, args.all_commits)
    title, description = "experiments", ""
    if args.grid:
        from augir.study.grid import find_grid, load_grid

        grid = load_grid(find_grid(args.grid, root), args.params)
        experiments = select_grid(experiments, grid, root)
        title, description = grid.name, grid.description
    matrix = build_matrix(experiments, metric=args.metric, test=args.test, interval=args.interval,
                          correction=args.correction, title=args.title or title, description=description)
    out = args.out or Path("reports") / (args.title or title)
    written = write_report(matrix, out)
    if args.save_experiments:
        reported = {exp.rev for row in matrix.rows if row.kind != "bm25" for exp in row.experiments}
        # unfinished ones and duplicates are not saved, nor the second copy of one read both from DVC and a folder
        saved = list({exp.rev: exp for exp in reversed(experiments) if exp.rev in reported}.values())[::-1]
        save_experiments(saved, args.save_experiments)
        print(f"{args.save_experiments}: {len(saved)} experiments (read back with --from)")
    print(f"{out}: {len(matrix.rows)} rows ({', '.join(sorted(written))})")
    for note in matrix.notes:
        print(f"note: {note}")


# Each stage's params (augir.params) as flags of its subcommand; their defaults live only in augir.params.
TRAIN_FLAGS = ("model", "query_prefix", "passage_prefix", "real_pairs", "augmented_pairs", "infused_pairs", "epochs",
               "batch_size", "learning_rate", "warmup_ratio", "max_seq_length", "loss", "mini_batch_size", "seed")
JUDGE_FLAGS = (
    "source_split", "test_fraction", "max_grade", "candidates_top_k", "max_examples", "max_test_examples", "base_model",
    "lora_r", "lora_alpha", "lora_dropout", "epochs", "learning_rate", "batch_size", "max_length", "merged",
    "cosine_encoder", "seed",
)
INFUSE_FLAGS = ("encoder", "top_k", "min_similarity", "weighting", "batch_size")
FILTER_FLAGS = ("method", "retriever", "top_k", "judge_generator", "min_grade", "judge_model", "min_expected_grade",
                "batch_size")
AUGMENT_FLAGS = (
    "generator", "backend", "strategy", "prompt_format", "examples", "num_examples", "num_passages",
    "queries_per_passage", "exclude_judged", "temperature", "top_p", "max_new_tokens",
    "max_passage_words", "min_chars", "max_words", "max_copy_overlap", "max_repeats", "seed", "source",
)
OPENAI_FLAGS = ("base_url", "model", "api_key_env", "timeout_s", "max_retries")
VLLM_FLAGS = ("dtype",)
CTRANSLATE2_FLAGS = ("compute_type", "device")
# augir.params.RuntimeParams: speed, not identity
RUNTIME_FLAGS = ("batch_size", "sort_by_length", "threads", "prefix_cache", "prefill_tokens", "executor")
RUNTIME_OPENAI_FLAGS = ("concurrency", "cache_prompt")
RUNTIME_VLLM_FLAGS = ("tensor_parallel_size", "data_parallel_size", "gpu_memory_utilization", "enable_prefix_caching")
RUNTIME_RAY_FLAGS = ("address", "num_actors", "num_cpus_per_actor", "max_restarts", "max_task_retries",
                     "max_shard_attempts")
PARAMS_HELP = "read this stage's section of a params file (e.g. params.yaml); flags given here override it"


def _default(model: type, key: str) -> Any:
    """A param's default, from augir.params: the one place defaults are written."""
    return model.model_fields[key].default


def _choices(model: type, key: str) -> tuple[str, ...]:
    """A Literal param's allowed values, from augir.params."""
    return typing.get_args(model.model_fields[key].annotation)


def build_parser() -> argparse.ArgumentParser:
    from augir.params import DownloadParams, EncodeParams, EvaluateParams

    parser = argparse.ArgumentParser(prog="augir", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    download = commands.add_parser("download", help="fetch a dataset into BEIR layout")
    download.add_argument("--source", required=True, help="semanlink | local:<dir> | hf:<repo> | beir:<name>")
    download.add_argument("--out", type=Path, required=True)
    download.add_argument("--seed", type=int, default=_default(DownloadParams, "seed"))
    download.add_argument("--test-fraction", type=float, default=_default(DownloadParams, "test_fraction"))
    download.add_argument("--strict", action="store_true", help="refuse judgments naming unknown documents or queries")
    download.set_defaults(handler=_download)

    augment = commands.add_parser("augment", help="write synthetic queries for corpus passages")
    augment.add_argument("--dataset", type=Path, required=True, help="a BEIR folder")
    augment.add_argument("--out", type=Path, required=True)
    augment.add_argument("--generator", help="built-in name (smollm2-135m), folder or hub id")
    augment.add_argument("--backend", choices=["transformers", "ctranslate2", "vllm", "openai"])
    augment.add_argument("--strategy", choices=["question", "keyword", "claim", "title", "diverse"])
    augment.add_argument("--prompt-format", choices=["completion", "chat"])
    augment.add_argument("--examples", choices=["train", "generic", "none"], help="where few-shot examples come from")
    augment.add_argument("--num-examples", type=int)
    augment.add_argument("--num-passages", type=int)
    augment.add_argument("--queries-per-passage", type=int)
    augment.add_argument("--exclude-judged", action="store_true", default=None)
    augment.add_argument("--temperature", type=float, help="0 = greedy")
    augment.add_argument("--top-p", type=float)
    augment.add_argument("--max-new-tokens", type=int)
    augment.add_argument("--batch-size", type=int, help="runtime: prompts per backend call (speed, not output)")
    augment.add_argument("--sort-by-length", action=argparse.BooleanOptionalAction, default=None,
                         help="runtime: batches of prompts of similar length (less padding; the output keeps its order)")
    augment.add_argument("--threads", type=int, help="runtime: torch CPU threads")
    augment.add_argument("--prefix-cache", action=argparse.BooleanOptionalAction, default=None,
                         help="runtime: compute each strategy's shared prompt prefix once (transformers)")
    augment.add_argument("--prefill-tokens", type=int,
                         help="runtime: prompt tokens read per forward pass (transformers; speed, not output)")
    augment.add_argument("--max-repeats", type=int, help="clean-up: a query kept for this many passages is dropped after")
    augment.add_argument("--max-passage-words", type=int, help="passages are cut to this many words in prompts")
    augment.add_argument("--min-chars", type=int, help="clean-up: shorter queries are dropped")
    augment.add_argument("--max-words", type=int, help="clean-up: longer queries are dropped")
    augment.add_argument("--max-copy-overlap", type=float, help="clean-up: share of trigrams copied from the passage")
    augment.add_argument("--seed", type=int)
    augment.add_argument("--source", help="an existing augmented set (folder or hf:<repo>) instead of generating")
    augment.add_argument("--openai-base-url", help="with --backend openai")
    augment.add_argument("--openai-model", help="with --backend openai (default: --generator)")
    augment.add_argument("--openai-api-key-env", help="the variable holding the API key (never the key itself)")
    augment.add_argument("--openai-concurrency", type=int, help="runtime: requests in flight")
    augment.add_argument("--openai-cache-prompt", action=argparse.BooleanOptionalAction, default=None,
                         help="runtime: send the server's cache_prompt option (llama.cpp server)")
    augment.add_argument("--openai-timeout-s", type=float)
    augment.add_argument("--openai-max-retries", type=int)
    augment.add_argument("--vllm-tensor-parallel-size", type=int)
    augment.add_argument("--vllm-data-parallel-size", type=int)
    augment.add_argument("--vllm-gpu-memory-utilization", type=float)
    augment.add_argument("--vllm-dtype")
    augment.add_argument("--ctranslate2-compute-type", help="with --backend ctranslate2 (default float32)")
    augment.add_argument("--ctranslate2-device", help="with --backend ctranslate2: cpu or cuda")
    augment.add_argument("--vllm-enable-prefix-caching", action=argparse.BooleanOptionalAction, default=None)
    augment.add_argument("--executor", choices=["local", "ray"],
                         help="runtime: generate the shards here or on a Ray cluster (extra `ray`; same output)")
    augment.add_argument("--ray-address", help="runtime: a Ray cluster (default: RAY_ADDRESS, else a local one)")
    augment.add_argument("--ray-num-actors", type=int, help="runtime: generation actors (vllm: engine replicas)")
    augment.add_argument("--ray-num-cpus-per-actor", type=float)
    augment.add_argument("--ray-max-restarts", type=int, help="runtime: times a dead actor is replaced")
    augment.add_argument("--ray-max-task-retries", type=int, help="runtime: times a dead actor's shard is retried")
    augment.add_argument("--ray-max-shard-attempts", type=int, help="runtime: tries of a shard that raises")
    augment.add_argument("--params", type=Path, metavar="FILE", help=PARAMS_HELP)
    augment.add_argument("--work-dir", type=Path, help="where finished shards are kept for resuming")
    augment.add_argument("--metrics", type=Path, help="write statistics as JSON here")
    augment.add_argument("--overwrite", action="store_true", help="replace an existing --out that augir did not write")
    augment.set_defaults(handler=_augment)

    filtering = commands.add_parser("filter", help="keep the synthetic queries a retriever or an LLM judge accepts")
    filtering.add_argument("--dataset", type=Path, required=True, help="the BEIR folder the queries were written for")
    filtering.add_argument("--augmented", type=Path, required=True, help="output of `augir augment`")
    filtering.add_argument("--out", type=Path, required=True)
    filtering.add_argument("--method", choices=["none", "consistency", "judge"], help="default: filter.method's default (none)")
    filtering.add_argument("--retriever", help="consistency: bm25 (default) or an encoder")
    filtering.add_argument("--top-k", type=int)
    filtering.add_argument("--judge-generator")
    filtering.add_argument("--min-grade", type=int)
    filtering.add_argument("--judge-model", help="judge: a trained judge's folder (`augir judge --out`)")
    filtering.add_argument("--min-expected-grade", type=float, help="--judge-model: keep pairs graded at least this")
    filtering.add_argument("--batch-size", type=int)
    filtering.add_argument("--params", type=Path, metavar="FILE", help=PARAMS_HELP)
    filtering.add_argument("--metrics", type=Path, help="write statistics as JSON here")
    filtering.add_argument("--overwrite", action="store_true", help="replace an existing --out that augir did not write")
    filtering.set_defaults(handler=_filter)

    infuse = commands.add_parser("infuse", help="give training queries the passages of synthetic queries near them (SKIM)")
    infuse.add_argument("--dataset", type=Path, required=True, help="BEIR folder whose train queries gain labels")
    infuse.add_argument("--synthetic", type=Path, required=True, help="output of `augir augment` or `augir filter`")
    infuse.add_argument("--out", type=Path, required=True)
    infuse.add_argument("--encoder", help="built-in name (default minilm-l6), folder or hub id")
    infuse.add_argument("--top-k", type=int, help="neighbours per synthetic query (default 10)")
    infuse.add_argument("--min-similarity", type=float, help="cosine (default 0.6)")
    infuse.add_argument("--weighting", choices=["ranked", "uniform"])
    infuse.add_argument("--batch-size", type=int)
    infuse.add_argument("--metrics", type=Path, help="write the counts as JSON here")
    infuse.set_defaults(handler=_infuse)

    train = commands.add_parser("train", help="fine-tune a retriever on real plus synthetic pairs")
    train.add_argument("--dataset", type=Path, action="append", required=True, help="BEIR folder (repeatable)")
    train.add_argument("--augmented", type=Path, help="folder of generated queries (for the first --dataset)")
    train.add_argument("--augmented-pairs", type=int, help="the first N synthetic pairs (default 0: none)")
    train.add_argument("--real-pairs", type=int, help="first N real pairs (default: all)")
    train.add_argument("--infused", type=Path, help="output of `augir infuse` (for the first --dataset)")
    train.add_argument("--infused-pairs", type=int, help="the first N infused pairs (default 0: none)")
    train.add_argument("--model", help="default: minilm-l2")
    train.add_argument("--query-prefix")
    train.add_argument("--passage-prefix")
    train.add_argument("--epochs", type=float)
    train.add_argument("--batch-size", type=int)
    train.add_argument("--learning-rate", type=float)
    train.add_argument("--warmup-ratio", type=float)
    train.add_argument("--max-seq-length", type=int)
    train.add_argument("--seed", type=int)
    train.add_argument("--loss", choices=["mnrl", "cached_mnrl"], help="default: mnrl")
    train.add_argument("--mini-batch-size", type=int, help="cached_mnrl: texts per forward pass (default 32)")
    train.add_argument("--processes", type=int, default=1,
                       help="data-parallel processes under torchrun (one per GPU); --batch-size stays the global batch")
    train.add_argument("--params", type=Path, metavar="FILE", help=PARAMS_HELP)
    train.add_argument("--out", type=Path, required=True)
    train.add_argument("--overwrite", action="store_true", help="replace an existing --out that augir did not write")
    train.set_defaults(handler=_train)

    judge = commands.add_parser("judge", help="LoRA-tune an LLM relevance judge on a dataset's judgments")
    judge.add_argument("--dataset", type=Path, required=True, help="BEIR folder whose judgments train and test it")
    judge.add_argument("--out", type=Path, required=True, help="folder for the adapter, examples and judge.json")
    judge.add_argument("--source-split", help="split whose queries are divided into judge-train/judge-test")
    for flag in ("max-grade", "candidates-top-k", "max-examples", "max-test-examples", "lora-r", "lora-alpha",
                 "batch-size", "max-length", "seed"):
        judge.add_argument(f"--{flag}", type=int)
    for flag in ("test-fraction", "lora-dropout", "epochs", "learning-rate"):
        judge.add_argument(f"--{flag}", type=float)
    judge.add_argument("--base-model", help="built-in generator name (smollm2-135m), folder or hub id")
    judge.add_argument("--cosine-encoder", help="the retriever compared as a judge")
    judge.add_argument("--merged", action="store_true", default=None, help="also save base + adapter merged")
    judge.add_argument("--metrics", type=Path, help="write the agreement as JSON here")
    judge.set_defaults(handler=_judge)

    encode = commands.add_parser("encode", help="embed a corpus and build a faiss index")
    encode.add_argument("--model", required=True, help="built-in name, folder or hub id")
    encode.add_argument("--dataset", type=Path, required=True)
    encode.add_argument("--out", type=Path, required=True)
    encode.add_argument("--batch-size", type=int, default=_default(EncodeParams, "batch_size"))
    encode.add_argument("--max-seq-length", type=int)
    encode.add_argument("--index", default=_default(EncodeParams, "index"),
                        help="faiss index-factory string: Flat (exact), HNSW32, IVF256,Flat, IVF256,PQ16, ...")
    encode.add_argument("--train-sample", type=int, default=_default(EncodeParams, "train_sample"),
                        help="IVF/PQ: vectors to train on (a seeded sample)")
    encode.add_argument("--seed", type=int, default=_default(EncodeParams, "seed"), help="seeds the training sample")
    encode.add_argument("--chunk-size", type=int, default=_default(EncodeParams, "chunk_size"),
                        help="passages encoded per resumable chunk")
    encode.add_argument("--nprobe", type=int, default=_default(EncodeParams, "nprobe"),
                        help="IVF: lists visited per query (recorded; evaluate --nprobe overrides)")
    encode.add_argument("--ef-search", type=int, default=_default(EncodeParams, "ef_search"),
                        help="HNSW: search depth (recorded; evaluate --ef-search overrides)")
    encode.add_argument("--backend", choices=_choices(EncodeParams, "backend"), default=_default(EncodeParams, "backend"),
                        help="openvino, onnx, onnx-int8: the transformer run by OpenVINO or ONNX Runtime (CPU inference)")
    encode.add_argument("--devices", nargs="+", metavar="DEVICE",
                        help="encode across one process per device, e.g. cuda:0 cuda:1 (runtime.encode_devices)")
    encode.add_argument("--overwrite", action="store_true", help="replace an existing --out that augir did not write")
    encode.set_defaults(handler=_encode)

    evaluate = commands.add_parser("evaluate", help="retrieve and score with trec_eval semantics")
    evaluate.add_argument("--model", required=True, help="built-in name, folder or hub id")
    evaluate.add_argument("--dataset", type=Path, required=True)
    evaluate.add_argument("--split", default=_default(EvaluateParams, "split"))
    evaluate.add_argument("--out", type=Path, required=True, help="metrics JSON")
    evaluate.add_argument("--index", type=Path, help="a folder written by `augir encode` (else encode now)")
    evaluate.add_argument("--backend", choices=_choices(EncodeParams, "backend"), default=_default(EncodeParams, "backend"),
                          help="openvino, onnx, onnx-int8: the transformer run by OpenVINO or ONNX Runtime (CPU inference)")
    evaluate.add_argument("--run-dir", type=Path, help="also write the TREC run and per-query scores here")
    evaluate.add_argument("--nprobe", type=int, help="with --index IVF: lists visited per query (default: as encoded)")
    evaluate.add_argument("--ef-search", type=int, help="with --index HNSW: search depth (default: as encoded)")
    evaluate.add_argument("--top-k", type=int, default=_default(EvaluateParams, "top_k"))
    evaluate.add_argument("--batch-size", type=int, default=_default(EncodeParams, "batch_size"))
    evaluate.add_argument("--max-seq-length", type=int)
    evaluate.add_argument("--query-prefix")
    evaluate.add_argument("--passage-prefix")
    evaluate.add_argument("--keep-self-hits", action="store_true", help="do not drop results whose id is the query's")
    evaluate.add_argument("--strict", action="store_true", help="refuse qrels naming unknown documents or queries")
    evaluate.add_argument("--overwrite", action="store_true", help="replace an existing --run-dir that augir did not write")
    evaluate.set_defaults(handler=_evaluate)

    publish = commands.add_parser("publish", help="write an augmented set as a Hugging Face dataset with a card")
    publish.add_argument("augmented", type=Path, help="an augmented folder (queries.jsonl, qrels/, provenance.jsonl)")
    publish.add_argument("--out", type=Path, required=True, help="the dataset folder to write")
    publish.add_argument("--params", type=Path, default=Path("params.yaml"), help="the params that made the set")
    publish.add_argument("--corpus-name", help="default: augment.dataset")
    publish.add_argument("--corpus-license", help="hub licence id of the corpus (needed unless augir knows it)")
    publish.add_argument("--to-hub", metavar="REPO", help="also upload to this Hugging Face dataset repo")
    publish.set_defaults(handler=_publish)

    grid = commands.add_parser("grid", help="queue the DVC experiments of a grid file (grids/<name>.yaml)")
    grid.add_argument("name", help="a grid in grids/ (cpu-study, paper) or the path of a grid file")
    grid.add_argument("--dry-run", action="store_true", help="print the `dvc exp run --queue` lines, queue nothing")
    grid.add_argument("--run", action="store_true",
                      help="run the cells now, one at a time (`dvc exp run --temp` each; blocks), instead of queueing")
    grid.add_argument("--shard", metavar="I/N",
                      help="only the I-th of N disjoint parts (one per machine; each augmentation in one part)")
    grid.add_argument("--pull", action="store_true",
                      help="reuse what other machines ran: `dvc fetch --run-cache` first, each cell with --pull")
    grid.add_argument("--push", metavar="GIT_REMOTE",
                      help="with --run: then push the experiments and the run-cache (`dvc exp push --run-cache`)")
    grid.add_argument("--skip-finished", type=Path, action="append", metavar="DIR",
                      help="leave out the cells a finished experiment saved in DIR covers (`augir report "
                           "--save-experiments DIR`): resume a grid run across machines or sessions (repeatable)")
    grid.add_argument("--params", type=Path, default=Path("params.yaml"), help="the params the grid applies to")
    grid.set_defaults(handler=_grid)

    report = commands.add_parser("report", help="the experiment matrix (Markdown, CSV), plots, dvc plots definitions")
    report.add_argument("--grid", help="only the experiments that are cells of this grid (name or file)")
    report.add_argument("--from", dest="source", type=Path, action="append",
                        help="a folder of experiment folders (params.yaml, metrics/) instead of `dvc exp show` "
                             "(repeatable)")
    report.add_argument("--dvc", action="store_true",
                        help="with --from: also this repository's DVC experiments (a grid run in parts)")
    report.add_argument("--all-commits", action="store_true", help="experiments of every commit, not only HEAD's")
    report.add_argument("--pull", metavar="GIT_REMOTE",
                        help="first pull every machine's experiments and their outputs (`dvc exp pull`)")
    report.add_argument("--out", type=Path, help="default: reports/<grid name>, or reports/experiments")
    report.add_argument("--metric", default="ndcg_at_10", choices=["ndcg_at_10", "recall_at_100", "mrr_at_10"])
    report.add_argument("--test", default="t-test", choices=["t-test", "wilcoxon"], help="paired test over queries")
    report.add_argument("--interval", default="t", choices=["t", "bootstrap"],
                        help="95%% interval of a cell: t over seeds, or a bootstrap over queries")
    report.add_argument("--correction", default="holm", choices=["none", "holm", "bh"],
                        help="multiple-comparison correction over the report's p-values (bh: Benjamini-Hochberg)")
    report.add_argument("--title", help="default: the grid's name")
    report.add_argument("--params", type=Path, default=Path("params.yaml"), help="with --grid: the params it applies to")
    report.add_argument("--save-experiments", type=Path, metavar="DIR",
                        help="also write the reported experiments as folders that --from reads back")
    report.set_defaults(handler=_report)
    return parser


def run_cli(handler: Callable[[], None]) -> int:
    """Run a command, turning input problems into one line on stderr and exit status 1.

    augir's own warnings (a released dataset's oddities, say) go to stderr as one `augir: warning:` line each.
    """
    warnings = logging.StreamHandler(sys.stderr)
    warnings.setFormatter(_RedactingFormatter("augir: warning: %(message)s"))
    logger = logging.getLogger("augir")
    logger.addHandler(warnings)
    try:
        handler()
    except AugirError as error:
        print(redacted(f"augir: error: {error}"), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("augir: interrupted", file=sys.stderr)
        return 130
    except OSError as error:  # a full or read-only disk is the user's to fix: one line naming the path
        if error.errno not in DISK_ERRORS:
            print(redacted(traceback.format_exc()), file=sys.stderr, end="")
            return 1
        where = f"{error.filename}: " if error.filename else ""
        print(redacted(f"augir: error: {where}{error.strerror or error}"), file=sys.stderr)
        return 1
    except Exception:  # a bug: keep the traceback, but never with a secret in it
        print(redacted(traceback.format_exc()), file=sys.stderr, end="")
        return 1
    finally:
        logger.removeHandler(warnings)
    return 0


class _RedactingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redacted(super().format(record))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # to start the same command again under torchrun
    return run_cli(lambda: args.handler(args))


if __name__ == "__main__":
    sys.exit(main())
