"""Grounding: fitting passages to a budget, the prompt that shows them, finding citations."""

from __future__ import annotations

from llm.retrieval.grounding import (
    MIN_CUT_TOKENS,
    GroundedPrompt,
    cited_numbers,
    fit_passages,
    format_passage,
    ground,
    grounded_prompt,
    key_lines,
    plain_text,
)
from llm.retrieval.passages import Passage


def words(text: str) -> int:
    """A stand-in tokenizer: one token per word."""
    return len(text.split())


def passage(text: str, *, number: int = 0, filename: str = "manual.pdf", page=None) -> Passage:
    return Passage(
        chunk_id=number or 1,
        document_id=7,
        filename=filename,
        text=text,
        page=page,
        number=number,
    )


def sentences(count: int, *, word: str = "word") -> str:
    """``count`` five-word sentences."""
    return " ".join(f"{word} {word} {word} {word} end{index}." for index in range(count))


# -- ground -------------------------------------------------------------------


def grounded(passages: list[Passage], *, window: int, history: list[str] = ()) -> GroundedPrompt:
    return ground(
        system_prompt="Be brief.",
        question="How long does the heating plate warranty last?",
        history=list(history),
        passages=passages,
        context_window=window,
        max_new_tokens=20,
        share=0.5,
        count_tokens=words,
    )


def prompt_words(prompt: GroundedPrompt) -> int:
    return words(f"{prompt.system_prompt}\n{prompt.input}")


def test_it_keeps_the_key_lines_it_copies_inside_the_passages_budget():
    """The lines the layout repeats from the passages are paid for: a passage goes."""
    plate = [passage(f"The heating plate warranty lasts {n} months. " * 4) for n in (27, 28, 29)]
    lavish = grounded(plate, window=400)
    assert len(lavish.passages) == 3
    layout = grounded([passage("x")], window=400)
    spare = prompt_words(lavish) - prompt_words(layout) + words("x") + 2
    # Room for all three passages' lines, but not for the key lines on top.
    window = words("[1] (manual.pdf) x") + spare + 60
    tight = grounded(plate, window=window)
    assert 0 < len(tight.passages) < 3
    assert "Most relevant lines:" in tight.input
    assert prompt_words(tight) <= window - 20


def test_it_gives_passages_their_share_beside_a_long_history():
    history = [sentences(40)] * 6  # far more than the window
    prompt = grounded([passage(sentences(10)), passage(sentences(10))], window=300, history=history)
    assert prompt.passages  # at least half of the room stays theirs
    assert prompt_words(prompt) <= 300 - 20


# -- fit_passages -------------------------------------------------------------


def test_it_numbers_the_passages_it_keeps_from_one():
    """Passages keep their order and get citation numbers 1..n."""
    found = [passage("Alpha text."), passage("Beta text."), passage("Gamma text.")]
    fitted = fit_passages(found, budget_tokens=1000, count_tokens=words)
    assert [p.number for p in fitted] == [1, 2, 3]
    assert [p.text for p in fitted] == ["Alpha text.", "Beta text.", "Gamma text."]


def test_it_counts_each_passage_as_the_prompt_shows_it():
    """The label ("[1] (manual.pdf)") is part of what a passage costs."""
    only = passage("one two three")
    cost = words(format_passage(Passage(**{**only.__dict__, "number": 1})))
    assert fit_passages([only], budget_tokens=cost, count_tokens=words)[0].text == "one two three"
    assert fit_passages([only], budget_tokens=cost - 1, count_tokens=words) == []


def test_it_cuts_the_first_passage_that_does_not_fit_at_a_sentence_end():
    """Whole passages first; the next keeps as many whole sentences as fit, then stop."""
    first = passage(sentences(4))  # 20 words
    second = passage(sentences(12, word="more"))  # 60 words
    third = passage("never reached")
    fitted = fit_passages([first, second, third], budget_tokens=60, count_tokens=words)
    assert len(fitted) == 2
    assert fitted[0].text == first.text
    assert fitted[1].text.endswith(".")
    assert second.text.startswith(fitted[1].text)
    assert len(fitted[1].text) < len(second.text)
    shown = [format_passage(p) for p in fitted]
    assert sum(words(line) for line in shown) <= 60


def test_it_cuts_at_a_word_when_no_sentence_end_fits():
    """A passage with one long sentence is cut at a word boundary."""
    long = passage(" ".join(f"w{index}" for index in range(200)))
    fitted = fit_passages([long], budget_tokens=50, count_tokens=words)
    assert len(fitted) == 1
    assert long.text.startswith(fitted[0].text)
    assert not fitted[0].text.endswith(" ")
    assert fitted[0].text.split()[-1] in long.text.split()
    assert words(format_passage(fitted[0])) <= 50


def test_it_stops_when_too_little_of_the_next_passage_would_fit():
    """A cut passage must keep a useful amount of text, else it is left out."""
    first = passage(sentences(4))
    second = passage(sentences(20))
    room = words(format_passage(Passage(**{**first.__dict__, "number": 1}))) + MIN_CUT_TOKENS - 1
    fitted = fit_passages([first, second], budget_tokens=room, count_tokens=words)
    assert [p.text for p in fitted] == [first.text]


def test_it_keeps_nothing_with_no_budget_or_no_passages():
    assert fit_passages([passage("text")], budget_tokens=0, count_tokens=words) == []
    assert fit_passages([], budget_tokens=100, count_tokens=words) == []


# -- grounded_prompt ----------------------------------------------------------


def test_it_returns_the_inputs_unchanged_without_passages():
    prompt = grounded_prompt(system_prompt="Be brief.", question="Hi?", passages=[])
    assert prompt == GroundedPrompt(system_prompt="Be brief.", input="Hi?", passages=[])


def test_it_shows_numbered_passages_with_their_file_and_page():
    """Each passage appears as "[n] (file, page p) text"; the question is in the input."""
    found = [
        passage("Error E47 means a clogged filter.", number=1, filename="x2.pdf", page=2),
        passage("Descale every 340 shots.", number=2, filename="x2.md"),
    ]
    prompt = grounded_prompt(
        system_prompt="Be brief.", question="What does E47 mean?", passages=found
    )
    shown = prompt.system_prompt + "\n" + prompt.input
    assert "[1] (x2.pdf, page 2) Error E47 means a clogged filter." in shown
    assert "[2] (x2.md) Descale every 340 shots." in shown
    assert "What does E47 mean?" in prompt.input
    assert "Be brief." in prompt.system_prompt
    assert prompt.passages == found


def test_it_asks_for_the_exact_value_from_the_sources_with_the_question_last():
    """No request to cite: SmolLM2 then answered with a source number instead of the fact."""
    prompt = grounded_prompt(
        system_prompt="", question="Why?", passages=[passage("A reason.", number=1)]
    )
    assert "sources" in prompt.system_prompt.lower()
    assert "exact name or number from the sources" in prompt.input
    assert prompt.input.endswith("Question: Why?")
    assert "cite" not in (prompt.system_prompt + prompt.input).lower()


def test_it_shows_the_lines_that_match_the_question_after_the_passages():
    found = [
        passage("Rinse the tank daily. The tank holds 1.85 litres.", number=1),
        passage("Descale every 340 shots. Use Calvex tablets.", number=2),
    ]
    prompt = grounded_prompt(
        system_prompt="", question="After how many shots should I descale?", passages=found
    )
    sources, lines, question = prompt.input.split("\n\n")
    assert sources.startswith("Sources:\n[1] ")
    assert lines == "Most relevant lines:\n[2] Descale every 340 shots."
    assert question.endswith("Question: After how many shots should I descale?")


def test_it_leaves_out_the_lines_section_when_no_line_shares_a_word():
    prompt = grounded_prompt(
        system_prompt="", question="Why?", passages=[passage("Descale often.", number=1)]
    )
    assert "Most relevant lines" not in prompt.input


# -- format_passage and key_lines ----------------------------------------------


def test_it_shows_a_passage_on_one_line_without_drawing_lines():
    """Heading underlines and table rules are left out; runs of spaces squeezed."""
    text = "2. Alarms\n---------\n\n| Code | Meaning |\n| --- | --- |\n| AL-3 |  Frost |"
    assert plain_text(text) == "2. Alarms | Code | Meaning | | AL-3 | Frost |"
    shown = format_passage(passage(text, number=3, filename="gc40.txt"))
    assert shown == "[3] (gc40.txt) 2. Alarms | Code | Meaning | | AL-3 | Frost |"


def test_it_picks_lines_by_their_rarest_shared_words_in_passage_order():
    """A word in many lines counts little; lines keep the order they have in the passages."""
    found = [
        passage("The pump is quiet. The pump runs at 17 W of power.", number=1),
        passage("The pump hums at 29 dB when the noise filter is on.", number=2),
    ]
    assert key_lines("How much noise does the pump make?", found, count=1) == [
        "[2] The pump hums at 29 dB when the noise filter is on."
    ]
    assert key_lines("How much power does the quiet pump use?", found) == [
        "[1] The pump is quiet.",
        "[1] The pump runs at 17 W of power.",
    ]


def test_it_does_not_pick_a_line_for_the_words_of_its_file_name():
    """The product name in the question picks the manual; it says nothing about the line."""
    found = [
        passage(
            "Skylark V7 Pilot Guide for owners. The battery holds 4,750 mAh.",
            number=1,
            filename="skylark-v7-guide.md",
        )
    ]
    assert key_lines("What battery does the Skylark V7 have?", found, count=1) == [
        "[1] The battery holds 4,750 mAh."
    ]


def test_it_reads_table_rows_as_lines():
    found = [passage("| Code | Meaning |\n| --- | --- |\n| F31 | Water flow too low |", number=1)]
    assert key_lines("Which code means the water flow is too low?", found, count=1) == [
        "[1] F31 | Water flow too low"
    ]


# -- cited_numbers ------------------------------------------------------------


def numbered(*texts: str) -> list[Passage]:
    return [passage(text, number=index) for index, text in enumerate(texts, 1)]


def test_it_finds_explicit_markers_in_every_shape():
    """[n], [1, 2] and [1][3] all count; numbers with no passage do not."""
    found = numbered("alpha", "beta", "gamma")
    assert cited_numbers("As said in [2].", found) == [2]
    assert cited_numbers("See [1, 3] and [1][3].", found) == [1, 3]
    assert cited_numbers("See [4] and [0].", found) == []


def test_it_finds_a_passage_the_reply_copies_four_words_from():
    found = numbered(
        "The descaling program takes 27 minutes and ends with two rinse cycles.",
        "Press the single-cup key for a short shot.",
    )
    reply = "It ends with two rinse cycles, so be patient."
    assert cited_numbers(reply, found) == [1]


def test_it_ignores_runs_of_common_words_only():
    """Four shared words that are all common ("it is in the") prove nothing."""
    found = numbered("Put it in the tank.", "Nothing alike here.")
    assert cited_numbers("Yes, it is in the box and it is in the bag.", found) == []


def test_it_finds_a_code_or_number_only_one_passage_holds():
    found = numbered(
        "Error E47 means the filter is clogged.",
        "The battery holds 4,750 mAh.",
        "Both mention 12 volts. Version 12 volts.",
        "Also 12 volts here.",
    )
    assert cited_numbers("That is e47.", found) == [1]
    assert cited_numbers("About 4750 mAh.", found) == [2]
    assert cited_numbers("It uses 12 volts.", found) == []  # in two passages


def test_it_returns_sorted_unique_numbers_from_all_signals():
    found = numbered("Code Q-112 is thermal runaway.", "The belt rings at 96 Hz when tight.")
    reply = "Q-112 [1]; the belt rings at 96 Hz [2] [1]."
    assert cited_numbers(reply, found) == [1, 2]


def test_it_finds_nothing_in_a_reply_that_uses_no_passage():
    found = numbered("Error E47 means the filter is clogged.")
    assert cited_numbers("I do not know.", found) == []
    assert cited_numbers("", []) == []


def ferry_passages() -> list[Passage]:
    """Two sections of one guide: the answer is in [1]; [2] repeats the island's name."""
    where = {"document_id": 3, "filename": "carrowmere-ferry.md"}
    return [
        Passage(
            chunk_id=1,
            number=1,
            heading="Isle of Carrowmere > Winter sailings",
            text="## Winter sailings\nFrom November to March the ferry leaves Port Ellan "
            "at 07:40 and 15:10, weather permitting.",
            **where,
        ),
        Passage(
            chunk_id=2,
            number=2,
            heading="Isle of Carrowmere > Fares",
            text="# Isle of Carrowmere\n## Fares\nA return ticket to the Isle of Carrowmere "
            "costs 18 pounds; children travel free.",
            **where,
        ),
    ]


QUESTION = "When does the winter ferry leave for the Isle of Carrowmere?"


def test_a_reply_sharing_only_common_and_question_words_with_a_passage_cites_nothing():
    """ "the Isle of Carrowmere" is four words [2] holds, but they come from the
    question and the guide's title: no evidence the reply used [2]."""
    reply = "The ferry to the Isle of Carrowmere is a lovely trip in any season."
    assert cited_numbers(reply, ferry_passages(), question=QUESTION) == []
    common = "It is the one that is on the way to the sea, and it is to the left."
    assert cited_numbers(common, ferry_passages(), question=QUESTION) == []


def test_the_passage_whose_distinctive_terms_or_numbers_the_reply_repeats_is_cited():
    found = ferry_passages()
    assert cited_numbers("It leaves at 07:40.", found, question=QUESTION) == [1]
    reply = "In winter the ferry leaves Port Ellan twice a day."
    assert cited_numbers(reply, found, question=QUESTION) == [1]
    assert cited_numbers("See [2].", found, question=QUESTION) == [2]  # a marker always counts


def test_a_code_the_question_already_holds_is_no_evidence():
    found = numbered("Error E47 means the filter is clogged.", "Error E12 is a leak.")
    assert cited_numbers("E47 is an error.", found, question="What is E47?") == []
    assert cited_numbers("E47: the filter is clogged.", found, question="What is E47?") == [1]
