import math

import pytest
import torch

from augir.errors import AugirError
from augir.judging.prompt import grade_token_ids, prompt_ids
from augir.judging.readout import judge_prompts, left_padded, read_grades


def test_expected_and_argmax_grade_from_hand_set_logits():
    logits = torch.full((2, 10), -3.0, dtype=torch.float64)
    logits[:, 9] = 50.0  # a non-grade token: ignored, the softmax is over the grade tokens only
    logits[0, [3, 5, 7]] = torch.tensor([0.0, math.log(2), math.log(5)], dtype=torch.float64)
    logits[1, [3, 5, 7]] = torch.tensor([math.log(6), 0.0, 0.0], dtype=torch.float64)
    first, second = read_grades(logits, [3, 5, 7])
    assert first.probabilities == pytest.approx([1 / 8, 2 / 8, 5 / 8], abs=1e-12)
    assert first.expected == pytest.approx(0 * 1 / 8 + 1 * 2 / 8 + 2 * 5 / 8, abs=1e-12)
    assert first.argmax == 2
    assert second.probabilities == pytest.approx([6 / 8, 1 / 8, 1 / 8], abs=1e-12)
    assert second.expected == pytest.approx(3 / 8, abs=1e-12)
    assert second.argmax == 0


def test_left_padding_positions_count_real_tokens():
    ids, mask, positions = left_padded([[5, 6, 7], [8]], pad_id=0)
    assert ids.tolist() == [[5, 6, 7], [0, 0, 8]]
    assert mask.tolist() == [[1, 1, 1], [0, 0, 1]]
    assert positions.tolist() == [[0, 1, 2], [0, 0, 0]]


def test_grade_tokens_are_single_digits(judge_tokenizer):
    ids = grade_token_ids(judge_tokenizer, 2)
    assert judge_tokenizer.convert_ids_to_tokens(ids) == ["0", "1", "2"]
    with pytest.raises(AugirError, match="judge.max_grade"):
        grade_token_ids(judge_tokenizer, 10)


def test_prompt_cuts_the_document_to_fit(judge_tokenizer):
    long_document = " ".join(["water"] * 100)
    ids = prompt_ids(judge_tokenizer, "iron rust", long_document, max_grade=2, max_length=40)
    assert len(ids) == 39  # one token left for the grade
    text = judge_tokenizer.decode(ids)
    assert text.startswith("Query: iron rust Document: water") and text.endswith("Grade:")
    with pytest.raises(AugirError, match="judge.max_length"):
        prompt_ids(judge_tokenizer, "iron rust", long_document, max_grade=2, max_length=10)


def test_batched_readings_equal_one_by_one(judge_model, judge_tokenizer):
    grade_ids = grade_token_ids(judge_tokenizer, 2)
    prompts = [prompt_ids(judge_tokenizer, q, d, 2, 64) for q, d in
               [("iron rust", "oxygen water iron"), ("tides", "moon gravity tides moon gravity"), ("sugar", "plants")]]
    batched = judge_prompts(judge_model, judge_tokenizer, prompts, grade_ids, batch_size=3)
    single = [judge_prompts(judge_model, judge_tokenizer, [p], grade_ids, batch_size=1)[0] for p in prompts]
    for one, other in zip(batched, single):
        assert one.probabilities == pytest.approx(other.probabilities, abs=1e-5)
        assert sum(one.probabilities) == pytest.approx(1.0)
