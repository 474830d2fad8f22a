"""DVC stage filter: keep the synthetic queries that `filter.method` accepts; train reads the result."""

import sys

from augir import layout
from augir.cli import run_cli
from augir.data.beir import load_beir
from augir.fileio import write_json_atomic
from augir.filtering.filter import run_filter
from augir.params import load_params
from augir.versions import with_versions


def main() -> None:
    params = load_params()
    backend = trained_judge = None
    if params.filter.method == "judge" and params.filter.judge_model is not None:
        from pathlib import Path

        from augir.judging.run import load_trained_judge

        trained_judge = load_trained_judge(Path(params.filter.judge_model), params.filter.batch_size)
    elif params.filter.method == "judge":
        from augir.augmentation.backends import make_backend

        judge = params.augment.model_copy(update={"generator": params.filter.judge_generator})
        backend = make_backend(judge, params.runtime)
    dataset = load_beir(layout.raw(params.augment.dataset))
    stats = run_filter(dataset, layout.AUGMENTED, params.filter, layout.FILTERED, backend,
                       max_passage_words=params.augment.max_passage_words, trained_judge=trained_judge)
    write_json_atomic(layout.metrics("filter"), with_versions(stats))


if __name__ == "__main__":
    sys.exit(run_cli(main))
