"""DVC stage pairs: the first `train.real_pairs` real pairs of `train.datasets`, `train.augmented_pairs` synthetic
and `train.infused_pairs` infused ones; the judge's labels where `labels.judge` names one; hard negatives where
`negatives.count` (mined) or `labels.negatives` (the judge's) asks for them."""

import sys

from augir import layout
from augir.cli import run_cli
from augir.data.beir import load_beir
from augir.fileio import write_json_atomic
from augir.params import load_params
from augir.training.pairs import first_pairs, infused_pairs, real_pairs, synthetic_pairs, write_pairs


def main() -> None:
    params = load_params()
    real = [pair for name in params.train.datasets for pair in real_pairs(load_beir(layout.raw(name)), name)]
    pairs = first_pairs(real, params.train.real_pairs, "train.real_pairs")
    augmented_corpus = load_beir(layout.raw(params.augment.dataset))
    pairs += synthetic_pairs(layout.FILTERED, augmented_corpus, params.train.augmented_pairs)
    pairs += infused_pairs(layout.INFUSED, augmented_corpus, params.train.infused_pairs)
    stats = {}
    if params.labels.judge:
        from pathlib import Path

        from augir.judging.labels import label_pairs
        from augir.judging.run import load_trained_judge

        corpus = {f"{name}/{doc_id}": doc for name in params.train.datasets
                  for doc_id, doc in load_beir(layout.raw(name)).corpus.items()}
        pairs, stats["labels"] = label_pairs(pairs, corpus, load_trained_judge(Path(params.labels.judge)),
                                             params.labels)
    if params.negatives.count:
        from pathlib import Path

        from augir.data.beir import document_text
        from augir.judging.run import load_trained_judge
        from augir.training.negatives import mine_negatives

        judge = load_trained_judge(Path(params.negatives.judge)) if params.negatives.judge else None
        corpus = sorted({document_text(doc) for name in params.train.datasets
                         for doc in load_beir(layout.raw(name)).corpus.values()} | {p.document for p in pairs})
        pairs, mining = mine_negatives(pairs, corpus, params.negatives, judge)
        stats["negatives"] = mining
    write_json_atomic(layout.metrics("pairs"), {**write_pairs(pairs, layout.PAIRS), **stats})


if __name__ == "__main__":
    sys.exit(run_cli(main))
