"""The `augir` command: one subcommand per pipeline stage, for use with or without DVC."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from pathlib import Path

from augir.errors import AugirError
from augir.versions import with_versions


def _download(args: argparse.Namespace) -> None:
    from augir.data.sources import fetch_dataset

    dataset = fetch_dataset(args.source, args.out, seed=args.seed, test_fraction=args.test_fraction, strict=args.strict)
    print(f"{args.out}: {len(dataset.corpus)} documents, {len(dataset.queries)} queries, splits {sorted(dataset.qrels)}")


def _augment(args: argparse.Namespace) -> None:
    from augir.augmentation.augment import run_augmentation
    from augir.data.beir import load_beir
    from augir.fileio import write_json_atomic
    from augir.params import AugmentParams, validated

    values = {key: getattr(args, key) for key in AUGMENT_FLAGS if getattr(args, key) is not None}
    openai = {key: getattr(args, f"openai_{key}") for key in ("base_url", "model") if getattr(args, f"openai_{key}")}
    params = validated(AugmentParams, {"dataset": str(args.dataset), **values, "openai": openai}, "augir augment")
    work_dir = args.work_dir or args.out.parent / f".{args.out.name}.work"
    stats = run_augmentation(load_beir(args.dataset), params, args.out, work_dir)
    if args.metrics:
        write_json_atomic(args.metrics, with_versions(stats.to_json_dict()))
    print(f"{args.out}: kept {stats.kept} of {stats.generated} generated queries")


def _filter(args: argparse.Namespace) -> None:
    from augir.data.beir import load_beir
    from augir.fileio import write_json_atomic
    from augir.filtering.filter import run_filter
    from augir.params import AugmentParams, FilterParams, validated

    values = {key: getattr(args, key) for key in FILTER_FLAGS if getattr(args, key) is not None}
    params = validated(FilterParams, values, "augir filter")
    backend = None
    if params.method == "judge":
        from augir.augmentation.backends import make_backend

        judge = validated(AugmentParams, {"dataset": "-", "generator": params.judge_generator}, "augir filter")
        backend = make_backend(judge)
    stats = run_filter(load_beir(args.dataset), args.augmented, params, args.out, backend)
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
    from augir.training.train import train_encoder

    values = {key: getattr(args, key) for key in TRAIN_FLAGS}
    params = validated(TrainParams, {"datasets": [str(folder) for folder in args.dataset], **values}, "augir train")
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
    stats = train_encoder(pairs, params, args.out)
    print(f"{args.out}: trained on {stats['pairs']} pairs in {stats['steps']} steps")


def _encode(args: argparse.Namespace) -> None:
    from augir.data.beir import load_beir
    from augir.retrieval.index import index_corpus

    dense = index_corpus(args.model, load_beir(args.dataset), args.out, batch_size=args.batch_size,
                         max_seq_length=args.max_seq_length)
    print(f"{args.out}: {len(dense.doc_ids)} documents indexed")


def _evaluate(args: argparse.Namespace) -> None:
    from augir.data.beir import load_beir
    from augir.fileio import write_json_atomic
    from augir.retrieval.encoders import Prefixes, load_encoder
    from augir.retrieval.evaluate import evaluate_model, evaluate_split, metrics_record, write_run_outputs
    from augir.retrieval.index import load_index

    prefixes = None
    if args.query_prefix is not None or args.passage_prefix is not None:
        prefixes = Prefixes(query=args.query_prefix or "", passage=args.passage_prefix or "")
    encoder = load_encoder(args.model, prefixes=prefixes, max_seq_length=args.max_seq_length)
    dataset = load_beir(args.dataset, strict=args.strict)
    options = dict(split=args.split, top_k=args.top_k, remove_self_hits=not args.keep_self_hits, batch_size=args.batch_size)
    if args.index:
        run, evaluation = evaluate_split(encoder, load_index(args.index), dataset, **options)
    else:
        run, evaluation = evaluate_model(encoder, dataset, **options)
    record = metrics_record(evaluation, dataset, split=args.split, top_k=args.top_k)
    if args.run_dir:
        write_run_outputs(run, evaluation, args.run_dir, tag=f"augir-{Path(args.model).name}")
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

    from augir.study.grid import find_grid, load_grid, queue_grid

    root = Path(".")
    grid = load_grid(find_grid(args.name, root), args.params)
    queue_grid(grid, yaml.safe_load(args.params.read_text(encoding="utf-8")) or {}, root, dry_run=args.dry_run, run=args.run)


def _report(args: argparse.Namespace) -> None:
    from augir.study.report import (
        build_matrix,
        experiments_from_dvc,
        experiments_from_folder,
        save_experiments,
        select_grid,
        write_report,
    )

    root = Path(".")
    experiments = experiments_from_folder(args.source) if args.source else experiments_from_dvc(root, args.all_commits)
    title, description = "experiments", ""
    if args.grid:
        from augir.study.grid import find_grid, load_grid

        grid = load_grid(find_grid(args.grid, root), args.params)
        experiments = select_grid(experiments, grid, root)
        title, description = grid.name, grid.description
    matrix = build_matrix(experiments, metric=args.metric, test=args.test, title=args.title or title,
                          description=description)
    out = args.out or Path("reports") / (args.title or title)
    written = write_report(matrix, out)
    if args.save_experiments:
        reported = {row.rev for row in matrix.rows}
        saved = [exp for exp in experiments if exp.rev in reported]  # duplicates and unfinished ones are not
        save_experiments(saved, args.save_experiments)
        print(f"{args.save_experiments}: {len(saved)} experiments (read back with --from)")
    print(f"{out}: {len(matrix.rows)} rows ({', '.join(sorted(written))})")
    for note in matrix.notes:
        print(f"note: {note}")


TRAIN_FLAGS = ("model", "query_prefix", "passage_prefix", "real_pairs", "augmented_pairs", "infused_pairs", "epochs", "batch_size", "max_seq_length", "seed")
INFUSE_FLAGS = ("encoder", "top_k", "min_similarity", "weighting", "batch_size")
FILTER_FLAGS = ("method", "retriever", "top_k", "judge_generator", "min_grade", "batch_size")
AUGMENT_FLAGS = (
    "generator", "backend", "strategy", "prompt_format", "examples", "num_examples", "num_passages",
    "queries_per_passage", "exclude_judged", "temperature", "top_p", "max_new_tokens", "batch_size", "seed",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="augir", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    download = commands.add_parser("download", help="fetch a dataset into BEIR layout")
    download.add_argument("--source", required=True, help="semanlink | local:<dir> | hf:<repo> | beir:<name>")
    download.add_argument("--out", type=Path, required=True)
    download.add_argument("--seed", type=int, default=0)
    download.add_argument("--test-fraction", type=float, default=0.5)
    download.add_argument("--strict", action="store_true", help="refuse judgments naming unknown documents or queries")
    download.set_defaults(handler=_download)

    augment = commands.add_parser("augment", help="write synthetic queries for corpus passages")
    augment.add_argument("--dataset", type=Path, required=True, help="a BEIR folder")
    augment.add_argument("--out", type=Path, required=True)
    augment.add_argument("--generator", help="built-in name (smollm2-135m), folder or hub id")
    augment.add_argument("--backend", choices=["transformers", "vllm", "openai"])
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
    augment.add_argument("--batch-size", type=int)
    augment.add_argument("--seed", type=int)
    augment.add_argument("--openai-base-url", help="with --backend openai")
    augment.add_argument("--openai-model", help="with --backend openai (default: --generator)")
    augment.add_argument("--work-dir", type=Path, help="where finished shards are kept for resuming")
    augment.add_argument("--metrics", type=Path, help="write statistics as JSON here")
    augment.set_defaults(handler=_augment)

    filtering = commands.add_parser("filter", help="keep the synthetic queries a retriever or an LLM judge accepts")
    filtering.add_argument("--dataset", type=Path, required=True, help="the BEIR folder the queries were written for")
    filtering.add_argument("--augmented", type=Path, required=True, help="output of `augir augment`")
    filtering.add_argument("--out", type=Path, required=True)
    filtering.add_argument("--method", choices=["none", "consistency", "judge"], default="consistency")
    filtering.add_argument("--retriever", help="consistency: bm25 (default) or an encoder")
    filtering.add_argument("--top-k", type=int)
    filtering.add_argument("--judge-generator")
    filtering.add_argument("--min-grade", type=int)
    filtering.add_argument("--batch-size", type=int)
    filtering.add_argument("--metrics", type=Path, help="write statistics as JSON here")
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
    train.add_argument("--augmented-pairs", type=int, default=0)
    train.add_argument("--real-pairs", type=int, help="first N real pairs (default: all)")
    train.add_argument("--infused", type=Path, help="output of `augir infuse` (for the first --dataset)")
    train.add_argument("--infused-pairs", type=int, default=0)
    train.add_argument("--model", default="minilm-l2")
    train.add_argument("--query-prefix")
    train.add_argument("--passage-prefix")
    train.add_argument("--epochs", type=float, default=1)
    train.add_argument("--batch-size", type=int, default=32)
    train.add_argument("--max-seq-length", type=int, default=128)
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--out", type=Path, required=True)
    train.set_defaults(handler=_train)

    encode = commands.add_parser("encode", help="embed a corpus and build a faiss index")
    encode.add_argument("--model", required=True, help="built-in name, folder or hub id")
    encode.add_argument("--dataset", type=Path, required=True)
    encode.add_argument("--out", type=Path, required=True)
    encode.add_argument("--batch-size", type=int, default=64)
    encode.add_argument("--max-seq-length", type=int)
    encode.set_defaults(handler=_encode)

    evaluate = commands.add_parser("evaluate", help="retrieve and score with trec_eval semantics")
    evaluate.add_argument("--model", required=True, help="built-in name, folder or hub id")
    evaluate.add_argument("--dataset", type=Path, required=True)
    evaluate.add_argument("--split", default="test")
    evaluate.add_argument("--out", type=Path, required=True, help="metrics JSON")
    evaluate.add_argument("--index", type=Path, help="a folder written by `augir encode` (else encode now)")
    evaluate.add_argument("--run-dir", type=Path, help="also write the TREC run and per-query scores here")
    evaluate.add_argument("--top-k", type=int, default=1000)
    evaluate.add_argument("--batch-size", type=int, default=64)
    evaluate.add_argument("--max-seq-length", type=int)
    evaluate.add_argument("--query-prefix")
    evaluate.add_argument("--passage-prefix")
    evaluate.add_argument("--keep-self-hits", action="store_true", help="do not drop results whose id is the query's")
    evaluate.add_argument("--strict", action="store_true", help="refuse qrels naming unknown documents or queries")
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
    grid.add_argument("--params", type=Path, default=Path("params.yaml"), help="the params the grid applies to")
    grid.set_defaults(handler=_grid)

    report = commands.add_parser("report", help="the experiment matrix (Markdown, CSV), plots, dvc plots definitions")
    report.add_argument("--grid", help="only the experiments that are cells of this grid (name or file)")
    report.add_argument("--from", dest="source", type=Path,
                        help="a folder of experiment folders (params.yaml, metrics/) instead of `dvc exp show`")
    report.add_argument("--all-commits", action="store_true", help="experiments of every commit, not only HEAD's")
    report.add_argument("--out", type=Path, help="default: reports/<grid name>, or reports/experiments")
    report.add_argument("--metric", default="ndcg_at_10", choices=["ndcg_at_10", "recall_at_100", "mrr_at_10"])
    report.add_argument("--test", default="t-test", choices=["t-test", "wilcoxon"], help="paired test over queries")
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
    warnings.setFormatter(logging.Formatter("augir: warning: %(message)s"))
    logger = logging.getLogger("augir")
    logger.addHandler(warnings)
    try:
        handler()
    except AugirError as error:
        print(f"augir: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("augir: interrupted", file=sys.stderr)
        return 130
    finally:
        logger.removeHandler(warnings)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_cli(lambda: args.handler(args))


if __name__ == "__main__":
    sys.exit(main())
