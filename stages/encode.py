"""DVC stage encode@<name>: embed the corpus of one evaluation dataset with the trained retriever."""

import sys

from augir import layout
from augir.cli import run_cli
from augir.data.beir import load_beir
from augir.params import load_params
from augir.retrieval.index import index_corpus


def main(name: str) -> None:
    params = load_params().encode
    index_corpus(str(layout.RETRIEVER), load_beir(layout.raw(name)), layout.index(name), batch_size=params.batch_size,
                 max_seq_length=params.max_seq_length, kind=params.index)


if __name__ == "__main__":
    sys.exit(run_cli(lambda: main(sys.argv[1])))
