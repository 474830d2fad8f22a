from augir.augmentation.prompts import STRATEGIES, build_prompt, choose_examples, generic_examples, template


def test_every_strategy_has_a_template_and_generic_examples():
    for strategy in STRATEGIES:
        chosen = template(strategy)
        assert chosen.instruction and chosen.label
        assert len(generic_examples(strategy, 3, max_words=200)) == 3


def test_completion_prompt_layout(tiny_dataset):
    examples, source = choose_examples(tiny_dataset, source="train", strategy="claim", num_examples=1, seed=0, max_words=50)
    prompt = build_prompt("The moon raises tides.", examples, "claim", "completion")
    assert source == "train" and prompt.messages is None
    assert prompt.text.startswith(template("claim").instruction + "\n\nDocument: ")
    assert f"\nClaim: {examples[0].query}\n\n" in prompt.text
    assert prompt.text.endswith("Document: The moon raises tides.\nClaim:")


def test_chat_prompt_has_one_turn_per_example(tiny_dataset):
    examples, _ = choose_examples(tiny_dataset, source="train", strategy="question", num_examples=2, seed=0, max_words=50)
    prompt = build_prompt("The moon raises tides.", examples, "question", "chat")
    roles = [role for role, _ in prompt.messages]
    assert roles == ["system", "user", "assistant", "user", "assistant", "user"]
    assert prompt.messages[2][1] == examples[0].query
    assert prompt.as_record()[-1] == {"role": "user", "content": "Document: The moon raises tides."}


def test_example_choice_is_seeded_and_from_train_only(tiny_dataset):
    first, _ = choose_examples(tiny_dataset, source="train", strategy="question", num_examples=2, seed=1, max_words=50)
    again, _ = choose_examples(tiny_dataset, source="train", strategy="question", num_examples=2, seed=1, max_words=50)
    assert first == again
    assert {e.query_id for e in first} <= set(tiny_dataset.qrels["train"])


def test_example_sources(tiny_dataset):
    assert choose_examples(tiny_dataset, source="none", strategy="title", num_examples=3, seed=0, max_words=50) == ([], "none")
    generic, source = choose_examples(tiny_dataset, source="generic", strategy="title", num_examples=2, seed=0, max_words=50)
    assert source == "generic" and generic[0].query == "How the waggle dance encodes the location of food"


def test_examples_never_use_judgments_naming_unknown_ids(tiny_dataset):
    """Released qrels may judge documents the corpus lacks (ArguAna): such a judgment has no passage to show."""
    tiny_dataset.qrels["train"] = {"q1": {"ghost": 1, "d1": 1}, "q2": {"ghost": 1}, "q9": {"d3": 1}}
    examples, _ = choose_examples(tiny_dataset, source="train", strategy="question", num_examples=3, seed=0, max_words=50)
    assert [(e.query_id, e.doc_id) for e in examples] == [("q1", "d1")]
