import pytest

from augir.augmentation.cleanup import CleanupRules, clean_query, copy_overlap, first_line

RULES = CleanupRules(min_chars=3, max_words=8, max_copy_overlap=0.8)
PASSAGE = "The gravitational pull of the moon raises the tides of the oceans twice a day."


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (" why do tides happen\nDocument: more text", "why do tides happen"),
        ("\n\n  second line wins when the first is blank", "second line wins when the first is blank"),
        ("Relevant query: moon and tides", "moon and tides"),
        ("Query: 1. moon tides", "moon tides"),
        ('  "moon gravity"  ', "moon gravity"),
        ("- ocean tides", "ocean tides"),
        ("2) lunar pull", "lunar pull"),
        ("  spaced    out\tquery ", "spaced out query"),
    ],
)
def test_first_line_strips_echoes_numbering_and_quotes(raw, expected):
    assert first_line(raw) == expected


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("\n", "empty"),
        ("Relevant query:", "empty"),
        ("ok", "too_short"),
        ("one two three four five six seven eight nine", "too_long"),
        ("the moon raises the tides of the oceans", "copied"),
    ],
)
def test_drop_reasons(raw, reason):
    assert clean_query(raw, PASSAGE, set(), RULES) == (None, reason)


def test_duplicates_within_a_passage_are_dropped_case_insensitively():
    assert clean_query("Moon Tides", PASSAGE, {"moon tides"}, RULES) == (None, "duplicate")
    assert clean_query("moon tides", PASSAGE, set(), RULES) == ("moon tides", None)


def test_copy_overlap_counts_word_trigrams():
    # "raises the tides" and "the tides of" occur in the passage, "tides of mars" does not
    assert copy_overlap("raises the tides of mars", PASSAGE, 3) == pytest.approx(2 / 3)
    assert copy_overlap("tides", PASSAGE, 3) == 0.0  # too short to judge


def test_a_few_shot_example_repeated_word_for_word_is_dropped():
    examples = frozenset({"how do honey bees find food"})
    assert clean_query("How do honey bees find food", PASSAGE, set(), RULES, examples) == (
        None, "copied_example")
    assert clean_query("why are there tides", PASSAGE, set(), RULES, examples) == ("why are there tides", None)


def test_repeat_key_ignores_case_punctuation_and_spacing():
    from augir.augmentation.cleanup import repeat_key

    assert repeat_key("What  is a Neuron?") == repeat_key("what is a neuron") == "what is a neuron"
    assert repeat_key("what is a neuron") != repeat_key("what is a neutron")


def test_repeats_are_capped_only_when_asked():
    from augir.augmentation.cleanup import is_repeated

    counts = {"what is a neuron": 2}
    assert is_repeated("What is a neuron?", counts, CleanupRules(max_repeats=2))
    assert not is_repeated("What is a neuron?", counts, CleanupRules(max_repeats=3))
    assert not is_repeated("What is a neuron?", counts, CleanupRules())  # default: no cap
