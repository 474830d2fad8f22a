"""The pairs stage reads only the texts its pairs name, and builds the pairs reading every text would give."""

import json

from augir.data.beir import load_beir
from augir.fileio import write_jsonl
from augir.training.pairs import load_for_pairs, real_pairs, synthetic_pairs


def _generated(folder, rows):
    (folder / "qrels").mkdir(parents=True)
    write_jsonl(folder / "queries.jsonl", ({"_id": q, "text": f"query {q}"} for q, _ in rows))
    (folder / "qrels" / "train.tsv").write_text("query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{d}\t1\n" for q, d in rows))
    return folder


def test_pairs_from_the_texts_they_name_equal_pairs_from_every_text(tmp_path, tiny_beir_dir):
    generated = _generated(tmp_path / "filtered", [("g1", "d7"), ("g2", "d1"), ("g3", "d2")])
    whole = load_beir(tiny_beir_dir)
    light = load_for_pairs(tiny_beir_dir, generated=[generated])
    assert real_pairs(light, "tiny") == real_pairs(whole, "tiny") != []
    assert synthetic_pairs(generated, light, 3) == synthetic_pairs(generated, whole, 3)
    positives = {doc for docs in whole.positives("train").values() for doc in docs}
    assert set(light.corpus) == positives | {"d7", "d1", "d2"} and len(light.corpus) < len(whole.corpus)
    assert load_for_pairs(tiny_beir_dir, whole=True) == whole


def test_infused_pairs_bring_their_passages(tmp_path, tiny_beir_dir):
    infused = tmp_path / "infused"
    infused.mkdir()
    (infused / "provenance.jsonl").write_text(json.dumps({"query_id": "q1", "doc_id": "d8", "weight": 1.0}) + "\n")
    assert "d8" in load_for_pairs(tiny_beir_dir, infused=infused).corpus
    assert "d8" not in load_for_pairs(tiny_beir_dir).corpus  # not a train positive (judged in test only)
