"""DVC stage encode@<name>: embed the corpus of one evaluation dataset with the trained retriever."""

import sys

from augir import layout
from augir.beir import load_beir
from augir.cli import run_cli
from augir.encoders import load_encoder
from augir.index import build_index, encode_corpus, save_index
from augir.params import load_params


def main(name: str) -> None:
    params = load_params().encode
    encoder = load_encoder(str(layout.RETRIEVER), max_seq_length=params.max_seq_length)
    doc_ids, embeddings = encode_corpus(encoder, load_beir(layout.raw(name)), params.batch_size)
    save_index(build_index(doc_ids, embeddings, params.index), embeddings, layout.index(name))


if __name__ == "__main__":
    sys.exit(run_cli(lambda: main(sys.argv[1])))
