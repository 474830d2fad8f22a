"""DVC stage pairs: the first `train.real_pairs` real pairs of `train.datasets`, `train.augmented_pairs` synthetic
and `train.infused_pairs` infused ones; the judge's labels where `labels.judge` names one; hard negatives where
`negatives.count` (mined) or `labels.negatives` (the judge's) asks for them."""

import sys
from pathlib import Path

from augir import layout
from augir.cli import run_cli
from augir.fileio import write_json_atomic
from augir.params import load_params
from augir.training.pairs import (first_pairs, infused_pairs, load_for_pairs, real_pairs, synthetic_pairs,
                                  write_pairs)


def main() -> None:
    params = load_params()
    augment_name = params.augment.dataset
    whole = bool(params.labels.judge or params.negatives.count)  # labelling and mining search every passage
    generated = [layout.FILTERED] if params.train.augmented_pairs else []
    infused = layout.INFUSED if params.train.infused_pairs else None

    def load(name: str):
        mine = name == augment_name
        return load_for_pairs(layout.raw(name), generated=generated if mine else [], infused=infused if mine else None,
                              whole=whole)

    train_sets = {name: load(name) for name in params.train.datasets}
    real = [pair for name, dataset in train_sets.items() for pair in real_pairs(dataset, name)]
    pairs = first_pairs(real, params.train.real_pairs, "train.real_pairs")
    augmented_corpus = train_sets[augment_name] if augment_name in train_sets else load(augment_name)
    pairs += synthetic_pairs(layout.FILTERED, augmented_corpus, params.train.augmented_pairs)
    pairs += infused_pairs(layout.INFUSED, augmented_corpus, params.train.infused_pairs)
    stats = {}
    if params.labels.judge:
        from augir.judging.labels import label_pairs
        from augir.judging.run import load_trained_judge

        corpus = {f"{name}/{doc_id}": doc for name, dataset in train_sets.items()
                  for doc_id, doc in dataset.corpus.items()}
        pairs, stats["labels"] = label_pairs(pairs, corpus, load_trained_judge(Path(params.labels.judge)),
                                             params.labels)
    if params.negatives.count:
        from augir.data.beir import document_text
        from augir.judging.run import load_trained_judge
        from augir.training.negatives import mine_negatives

        judge = load_trained_judge(Path(params.negatives.judge)) if params.negatives.judge else None
        corpus = sorted({document_text(doc) for dataset in train_sets.values()
                         for doc in dataset.corpus.values()} | {p.document for p in pairs})
        pairs, mining = mine_negatives(pairs, corpus, params.negatives, judge)
        stats["negatives"] = mining
    write_json_atomic(layout.metrics("pairs"), {**write_pairs(pairs, layout.PAIRS), **stats})


if __name__ == "__main__":
    sys.exit(run_cli(main))
