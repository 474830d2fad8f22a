import numpy as np
import pytest

from augir.errors import AugirError
from augir.retrieval.encoders import Prefixes, default_prefixes, load_encoder


def test_minilm_l2_keeps_two_layers_of_the_pretrained_model():
    full = load_encoder("minilm-l6")
    cut = load_encoder("minilm-l2")
    assert len(cut[0].model.encoder.layer) == 2
    assert cut[0].model.config.num_hidden_layers == 2
    # the first layers are the pre-trained ones, not a fresh initialisation
    full_weight = full[0].model.encoder.layer[1].attention.self.query.weight
    cut_weight = cut[0].model.encoder.layer[1].attention.self.query.weight
    assert np.allclose(full_weight.detach().numpy(), cut_weight.detach().numpy())


def test_minilm_random_is_not_pretrained_and_is_seeded():
    pretrained = load_encoder("minilm-l6")[0].model.encoder.layer[0].attention.self.query.weight
    first = load_encoder("minilm-random", seed=1)[0].model.encoder.layer[0].attention.self.query.weight
    again = load_encoder("minilm-random", seed=1)[0].model.encoder.layer[0].attention.self.query.weight
    other = load_encoder("minilm-random", seed=2)[0].model.encoder.layer[0].attention.self.query.weight
    assert not np.allclose(pretrained.detach().numpy(), first.detach().numpy())
    assert np.array_equal(first.detach().numpy(), again.detach().numpy())
    assert not np.array_equal(first.detach().numpy(), other.detach().numpy())


def test_prefixes_are_applied_to_queries_and_passages(tiny_encoder_dir):
    encoder = load_encoder(str(tiny_encoder_dir), prefixes=Prefixes(query="query: ", passage="passage: "))
    assert np.allclose(encoder.encode_query(["tides"]), encoder.encode(["query: tides"]), atol=1e-6)
    assert np.allclose(encoder.encode_document(["tides"]), encoder.encode(["passage: tides"]), atol=1e-6)
    assert not np.allclose(encoder.encode_query(["tides"]), encoder.encode(["tides"]), atol=1e-6)


def test_known_models_get_their_prefixes_by_default():
    assert default_prefixes("intfloat/e5-base-v2") == Prefixes("query: ", "passage: ")
    assert default_prefixes("minilm-l6") == Prefixes("", "")


def test_unknown_name_is_a_clear_error():
    with pytest.raises(AugirError, match="unknown model 'bert-tiny'"):
        load_encoder("bert-tiny")


def test_hub_id_offline_fails_with_one_line(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(AugirError, match="could not be loaded from the hub") as caught:
        load_encoder("someone/no-such-model-here")
    assert "\n" not in str(caught.value)
