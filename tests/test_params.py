from pathlib import Path

import pytest
import yaml

from augir.errors import AugirError
from augir.params import load_params

REPO = Path(__file__).resolve().parents[1]


def _write(tmp_path: Path, params: dict) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


@pytest.fixture
def default_params() -> dict:
    return yaml.safe_load((REPO / "params.yaml").read_text())


def test_the_shipped_params_are_valid():
    params = load_params(REPO / "params.yaml")
    assert params.augment.generator == "smollm2-135m"
    assert params.train.augmented_pairs <= params.augment.num_passages


def test_required_keys_exist(default_params):
    for stage, key in [
        ("augment", "generator"), ("augment", "strategy"), ("augment", "num_passages"), ("augment", "seed"),
        ("train", "model"), ("train", "augmented_pairs"), ("train", "epochs"), ("train", "datasets"),
        ("evaluate", "datasets"),
    ]:
        assert key in default_params[stage], f"{stage}.{key}"


def test_unknown_key_is_an_error_naming_it(tmp_path, default_params):
    default_params["train"]["epoch"] = 3
    with pytest.raises(AugirError, match=r"unknown key 'train\.epoch'"):
        load_params(_write(tmp_path, default_params))


def test_wrong_type_is_an_error_naming_the_key(tmp_path, default_params):
    default_params["augment"]["num_passages"] = "many"
    with pytest.raises(AugirError, match=r"augment\.num_passages"):
        load_params(_write(tmp_path, default_params))


def test_negative_scale_is_refused(tmp_path, default_params):
    default_params["train"]["augmented_pairs"] = -1
    with pytest.raises(AugirError, match=r"train\.augmented_pairs"):
        load_params(_write(tmp_path, default_params))


def test_a_dataset_must_be_downloaded_before_it_is_used(tmp_path, default_params):
    default_params["evaluate"]["datasets"] = ["semanlink", "scifact"]
    with pytest.raises(AugirError, match=r"evaluate\.datasets: dataset 'scifact' is not in download\.sources"):
        load_params(_write(tmp_path, default_params))


def test_error_is_one_line_and_names_the_file(tmp_path, default_params):
    del default_params["train"]["datasets"]
    with pytest.raises(AugirError) as caught:
        load_params(_write(tmp_path, default_params))
    message = str(caught.value)
    assert "\n" not in message and message.startswith(str(tmp_path / "params.yaml"))
    assert "train.datasets" in message


def test_invalid_yaml_is_one_line(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("train: [unclosed\n")
    with pytest.raises(AugirError, match="not valid YAML") as caught:
        load_params(path)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("name", ["x;touch hacked", "/tmp/abs", "../up", "a/b", "..", "a..b", ".hidden", "$(id)",
                                  "with space", "", "x" * 65])
def test_a_dataset_name_is_a_name_never_a_path_nor_shell(tmp_path, default_params, name):
    # dvc.yaml pastes download.sources keys into stage commands and paths (data/raw/<name>)
    default_params["download"]["sources"] = {name: "semanlink"}
    default_params["augment"]["dataset"] = default_params["train"]["datasets"][0] = name
    default_params["evaluate"]["datasets"] = [name]
    with pytest.raises(AugirError, match=r"download\.sources: .* is not a dataset name"):
        load_params(_write(tmp_path, default_params))


@pytest.mark.parametrize("name", ["scifact", "beir-v1.0_cqa", "Cranfield2"])
def test_ordinary_dataset_names_are_accepted(tmp_path, default_params, name):
    default_params["download"]["sources"] = {name: "semanlink"}
    default_params["augment"]["dataset"] = default_params["train"]["datasets"][0] = name
    default_params["evaluate"]["datasets"] = [name]
    assert list(load_params(_write(tmp_path, default_params)).download.sources) == [name]


def test_the_layout_refuses_a_name_that_is_a_path():
    from augir import layout

    assert layout.raw("scifact") == Path("data/raw/scifact")
    for name in ["../../etc", "/abs", "a/b"]:
        with pytest.raises(AugirError, match="is not a dataset name"):
            layout.raw(name)


@pytest.mark.parametrize(("key", "value", "message"), [
    ("num_passages", True, "augment.num_passages: expected a number, got true"),
    ("temperature", False, "augment.temperature: expected a number, got false"),
    ("num_passages", 0, "augment.num_passages: Input should be greater than or equal to 1"),
])
def test_a_count_is_a_number_and_at_least_one_passage_is_asked_for(tmp_path, default_params, key, value, message):
    default_params["augment"][key] = value
    with pytest.raises(AugirError) as caught:
        load_params(_write(tmp_path, default_params))
    assert str(caught.value) == f"{tmp_path / 'params.yaml'}: {message}"


def test_param_defaults_are_the_models_defaults_nested_by_stage():
    from augir.params import EncodeParams, RuntimeParams, TrainParams, param_defaults

    defaults = param_defaults()
    assert defaults["train"]["loss"] == TrainParams.model_fields["loss"].default == "mnrl"
    assert defaults["encode"] == EncodeParams().model_dump()
    assert defaults["runtime"]["ray"]["max_restarts"] == RuntimeParams().ray.max_restarts
    assert "datasets" not in defaults["train"] and "sources" not in defaults["download"]  # required: no default
