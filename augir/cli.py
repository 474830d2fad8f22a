"""The `augir` command: one subcommand per pipeline stage, for use with or without DVC."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from augir.errors import AugirError


def _download(args: argparse.Namespace) -> None:
    from augir.sources import fetch_dataset

    dataset = fetch_dataset(args.source, args.out, seed=args.seed, test_fraction=args.test_fraction)
    print(f"{args.out}: {len(dataset.corpus)} documents, {len(dataset.queries)} queries, splits {sorted(dataset.qrels)}")


def _augment(args: argparse.Namespace) -> None:
    from augir.augment import AugmentConfig, run_augmentation
    from augir.beir import load_beir
    from augir.fileio import write_json_atomic

    config = AugmentConfig(
        generator=args.generator,
        strategy=args.strategy,
        num_passages=args.num_passages,
        num_examples=args.num_examples,
        max_new_tokens=args.max_new_tokens,
        batch_size=args.batch_size,
        seed=args.seed,
    )
    work_dir = args.work_dir or args.out.parent / f".{args.out.name}.work"
    stats = run_augmentation(load_beir(args.dataset), config, args.out, work_dir)
    if args.metrics:
        write_json_atomic(args.metrics, stats.to_json_dict())
    print(f"{args.out}: kept {stats.kept} of {stats.generated} generated queries")


def _train(args: argparse.Namespace) -> None:
    from augir.beir import load_beir
    from augir.train import TrainConfig, real_pairs, synthetic_pairs, train_encoder

    config = TrainConfig(
        model=args.model,
        query_prefix=args.query_prefix,
        passage_prefix=args.passage_prefix,
        augmented_pairs=args.augmented_pairs,
        epochs=args.epochs,
        batch_size=args.batch_size,
        max_seq_length=args.max_seq_length,
        seed=args.seed,
    )
    datasets = {folder: load_beir(folder) for folder in args.dataset}
    pairs = [pair for folder, data in datasets.items() for pair in real_pairs(data, str(folder))]
    if args.augmented_pairs:
        if args.augmented is None:
            raise AugirError("--augmented-pairs needs --augmented <folder of generated queries>")
        pairs += synthetic_pairs(args.augmented, datasets[args.dataset[0]], args.augmented_pairs)
    stats = train_encoder(pairs, config, args.out)
    print(f"{args.out}: trained on {stats['pairs']} pairs in {stats['steps']} steps")


def _encode(args: argparse.Namespace) -> None:
    from augir.beir import load_beir
    from augir.encoders import load_encoder
    from augir.index import build_index, encode_corpus, save_index

    encoder = load_encoder(args.model, max_seq_length=args.max_seq_length)
    doc_ids, embeddings = encode_corpus(encoder, load_beir(args.dataset), args.batch_size)
    save_index(build_index(doc_ids, embeddings), embeddings, args.out)
    print(f"{args.out}: {len(doc_ids)} documents indexed")


def _evaluate(args: argparse.Namespace) -> None:
    from augir.beir import load_beir
    from augir.encoders import Prefixes, load_encoder
    from augir.evaluate import evaluate_model, evaluate_split, metrics_record, write_run_outputs
    from augir.fileio import write_json_atomic
    from augir.index import load_index

    prefixes = None
    if args.query_prefix is not None or args.passage_prefix is not None:
        prefixes = Prefixes(query=args.query_prefix or "", passage=args.passage_prefix or "")
    encoder = load_encoder(args.model, prefixes=prefixes, max_seq_length=args.max_seq_length)
    dataset = load_beir(args.dataset)
    options = dict(split=args.split, top_k=args.top_k, remove_self_hits=not args.keep_self_hits, batch_size=args.batch_size)
    if args.index:
        run, evaluation = evaluate_split(encoder, load_index(args.index), dataset, **options)
    else:
        run, evaluation = evaluate_model(encoder, dataset, **options)
    record = metrics_record(evaluation, split=args.split, top_k=args.top_k)
    if args.run_dir:
        write_run_outputs(run, evaluation, args.run_dir, tag=f"augir-{Path(args.model).name}")
    write_json_atomic(args.out, record)
    print(" ".join(f"{key}={value}" for key, value in record.items()))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="augir", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    download = commands.add_parser("download", help="fetch a dataset into BEIR layout")
    download.add_argument("--source", required=True, help="semanlink | local:<dir> | hf:<repo> | beir:<name>")
    download.add_argument("--out", type=Path, required=True)
    download.add_argument("--seed", type=int, default=0)
    download.add_argument("--test-fraction", type=float, default=0.5)
    download.set_defaults(handler=_download)

    augment = commands.add_parser("augment", help="write synthetic queries for corpus passages")
    augment.add_argument("--dataset", type=Path, required=True, help="a BEIR folder")
    augment.add_argument("--out", type=Path, required=True)
    augment.add_argument("--generator", default="smollm2-135m")
    augment.add_argument("--strategy", default="question", choices=["question"])
    augment.add_argument("--num-passages", type=int, default=200)
    augment.add_argument("--num-examples", type=int, default=3)
    augment.add_argument("--max-new-tokens", type=int, default=24)
    augment.add_argument("--batch-size", type=int, default=16)
    augment.add_argument("--seed", type=int, default=0)
    augment.add_argument("--work-dir", type=Path, help="where finished shards are kept for resuming")
    augment.add_argument("--metrics", type=Path, help="write statistics as JSON here")
    augment.set_defaults(handler=_augment)

    train = commands.add_parser("train", help="fine-tune a retriever on real plus synthetic pairs")
    train.add_argument("--dataset", type=Path, action="append", required=True, help="BEIR folder (repeatable)")
    train.add_argument("--augmented", type=Path, help="folder of generated queries (for the first --dataset)")
    train.add_argument("--augmented-pairs", type=int, default=0)
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
    evaluate.set_defaults(handler=_evaluate)
    return parser


def run_cli(handler: Callable[[], None]) -> int:
    """Run a command, turning input problems into one line on stderr and exit status 1."""
    try:
        handler()
    except AugirError as error:
        print(f"augir: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("augir: interrupted", file=sys.stderr)
        return 130
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_cli(lambda: args.handler(args))


if __name__ == "__main__":
    sys.exit(main())
