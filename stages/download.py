"""DVC stage download@<name>: fetch one dataset of `download.sources` into data/raw/<name>."""

import sys

from augir import layout
from augir.cli import run_cli
from augir.data.sources import fetch_dataset
from augir.errors import AugirError
from augir.params import load_params


def main(name: str) -> None:
    params = load_params().download
    if name not in params.sources:
        raise AugirError(f"params.yaml: download.sources has no dataset {name!r}")
    fetch_dataset(params.sources[name], layout.raw(name), seed=params.seed, test_fraction=params.test_fraction,
                  strict=params.strict)


if __name__ == "__main__":
    sys.exit(run_cli(lambda: main(sys.argv[1])))
