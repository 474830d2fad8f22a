"""DVC stage judge: LoRA-tune an LLM judge on judge.dataset's judgments, write held-out agreement (off by default)."""

import sys

from augir import layout
from augir.cli import run_cli
from augir.data.beir import load_beir
from augir.fileio import write_json_atomic
from augir.judging.run import train_and_measure, write_disabled
from augir.params import load_params
from augir.versions import with_versions


def main() -> None:
    params = load_params().judge
    if params.enabled:
        metrics = train_and_measure(load_beir(layout.raw(params.dataset)), params, layout.JUDGE)
    else:
        metrics = write_disabled(layout.JUDGE)
    write_json_atomic(layout.metrics("judge"), with_versions(metrics))


if __name__ == "__main__":
    sys.exit(run_cli(main))
