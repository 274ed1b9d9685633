"""Putting retrieved passages into a prompt, and finding which ones a reply used.

The chain retrieves passages best first, keeps as many as the token budget
allows (:func:`fit_passages`), lays them out numbered for the model
(:func:`grounded_prompt`), both through :func:`ground`, and, once the reply is
written, records which passages it drew on (:func:`cited_numbers`).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace

from llm.retrieval.bm25 import terms
from llm.retrieval.budget import passage_budget
from llm.retrieval.passages import Passage
from llm.retrieval.splitting import HEADING_JOIN

# A passage cut to fit must keep at least this many tokens to be worth showing.
MIN_CUT_TOKENS = 24

# SmolLM2-135M answers better from a short, plain prompt. Asked to cite ("like
# [1]"), it answered some questions with a source number ("The answer is: 1")
# instead of the fact, so it is not asked: cited_numbers finds what a reply
# copied instead. The question comes last, after the lines of the passages
# that share the most of its words.
INSTRUCTION = "Answer from the sources the user gives."
ANSWER_INSTRUCTION = "Answer with the exact name or number from the sources."
# When the user's documents were searched and no passage matched, the model is
# told so and may say it does not know, rather than answer as if from them.
NO_MATCH_INSTRUCTION = (
    "The user's documents were searched and no passage matched this message. "
    "If you do not know the answer, say that you do not know."
)
KEY_LINES = 2
# Lines of a passage: sentences, and rows of a table laid out on one line.
_LINE_BREAK = re.compile(r"(?<=[.!?;])\s+|\s*\|\s*\|\s*")
# Text lines that only draw: heading underlines, table rules.
_RULE = re.compile(r"[-=_|:*#\s]+")


@dataclass(frozen=True)
class GroundedPrompt:
    """What the model sees: the system prompt, the human message, the passages in it."""

    system_prompt: str
    input: str
    passages: list[Passage]


def format_passage(passage: Passage) -> str:
    """``[2] (manual.pdf, page 3) text``: a passage as the prompt shows it, on one line."""
    where = passage.filename if passage.page is None else f"{passage.filename}, page {passage.page}"
    return f"[{passage.number}] ({where}) {plain_text(passage.text)}"


def plain_text(text: str) -> str:
    """``text`` on one line: runs of spaces squeezed, lines that only draw left out."""
    lines = (" ".join(line.split()) for line in text.splitlines())
    return " ".join(line for line in lines if line and not _RULE.fullmatch(line))


def fit_passages(
    passages: list[Passage], *, budget_tokens: int, count_tokens: Callable[[str], int]
) -> list[Passage]:
    """Keep the best passages that fit ``budget_tokens``, numbered 1..n.

    A passage costs its :func:`format_passage` line (label included). Passages
    are kept whole while they fit; the first that does not is cut at a
    sentence (else a word) boundary if at least ``MIN_CUT_TOKENS`` of its text
    fit, and nothing after it is kept.
    """
    kept: list[Passage] = []
    left = budget_tokens
    for passage in passages:
        numbered = replace(passage, number=len(kept) + 1, text=passage.text.strip())
        cost = count_tokens(format_passage(numbered) + "\n")
        if cost <= left:
            kept.append(numbered)
            left -= cost
            continue
        cut = _cut_to_fit(numbered, left, count_tokens)
        if cut is not None:
            kept.append(cut)
        break
    return kept


def _cut_to_fit(
    passage: Passage, budget: int, count_tokens: Callable[[str], int]
) -> Passage | None:
    """The longest start of ``passage`` ending a sentence (else a word) that fits."""

    def fits(end: int) -> bool:
        return count_tokens(format_passage(replace(passage, text=text[:end])) + "\n") <= budget

    text = passage.text
    sentence_ends = [match.end() for match in re.finditer(r"[.!?:;](?=\s)", text)]
    word_ends = [match.end() for match in re.finditer(r"\S+", text)]
    for ends in (sentence_ends, word_ends):
        end = _last_true(ends, fits)
        if end is not None and count_tokens(text[:end]) >= MIN_CUT_TOKENS:
            return replace(passage, text=text[:end])
    return None


def _last_true(ends: list[int], fits: Callable[[int], bool]) -> int | None:
    """The largest ``end`` for which ``fits`` holds (it holds for a prefix of ``ends``)."""
    low, high, best = 0, len(ends) - 1, None
    while low <= high:
        middle = (low + high) // 2
        if fits(ends[middle]):
            best, low = ends[middle], middle + 1
        else:
            high = middle - 1
    return best


def grounded_prompt(
    *, system_prompt: str, question: str, passages: list[Passage]
) -> GroundedPrompt:
    """The system prompt and human message for ``question`` answered from ``passages``.

    ``passages`` come numbered from :func:`fit_passages`. The human message
    holds them best first, then the ``KEY_LINES`` lines that match the
    question best (see :func:`key_lines`), then the question. Without
    passages the inputs come back unchanged.
    """
    if not passages:
        return GroundedPrompt(system_prompt=system_prompt, input=question, passages=[])
    parts = ["Sources:\n" + "\n".join(format_passage(passage) for passage in passages)]
    lines = key_lines(question, passages)
    if lines:
        parts.append("Most relevant lines:\n" + "\n".join(lines))
    parts.append(f"{ANSWER_INSTRUCTION}\nQuestion: {question.strip()}")
    system = f"{system_prompt.strip()}\n\n{INSTRUCTION}".strip()
    return GroundedPrompt(system_prompt=system, input="\n\n".join(parts), passages=list(passages))


def unmatched_system_prompt(system_prompt: str) -> str:
    """The system prompt for a message the documents hold nothing on."""
    return f"{system_prompt.strip()}\n\n{NO_MATCH_INSTRUCTION}".strip()


def ground(
    *,
    system_prompt: str,
    question: str,
    history: list[str],
    passages: list[Passage],
    context_window: int,
    max_new_tokens: int,
    share: float,
    count_tokens: Callable[[str], int],
) -> GroundedPrompt:
    """The grounded prompt for ``question``, its passages within their share of the
    context window beside ``history`` (the earlier turns' texts): see
    ``llm.retrieval.budget``. The chat chain and the retrieval benchmark both
    build prompts here.

    The layout's own lines (instructions, labels) are measured around an empty
    passage; lines it copies from the passages (the key lines) count against
    the passages' budget, and the last passage goes while they overflow it.
    """
    empty = Passage(chunk_id=0, document_id=0, filename="", text="", number=1)
    layout = grounded_prompt(system_prompt=system_prompt, question=question, passages=[empty])
    fixed = count_tokens(f"{layout.system_prompt}\n{layout.input}")
    budget = passage_budget(
        context_window=context_window,
        max_new_tokens=max_new_tokens,
        fixed_tokens=fixed,
        history_tokens=sum(count_tokens(text) for text in history),
        history_messages=len(history),
        share=share,
    )
    kept = fit_passages(passages, budget_tokens=budget, count_tokens=count_tokens)
    while True:
        prompt = grounded_prompt(system_prompt=system_prompt, question=question, passages=kept)
        if not kept or count_tokens(f"{prompt.system_prompt}\n{prompt.input}") <= fixed + budget:
            return prompt
        kept = kept[:-1]


def key_lines(question: str, passages: list[Passage], count: int = KEY_LINES) -> list[str]:
    """The ``count`` lines of ``passages`` that best match ``question``, as "[n] line".

    A line scores the inverse line frequency of each question term it holds
    (BM25's stemmed terms), leaving out terms of its file's name: "Skylark V7"
    in the question picks the manual, not the line. Lines keep passage order.
    """
    lines = [
        (passage.number, line, set(terms([passage.filename.replace("-", " ")])[0]))
        for passage in passages
        for line in _LINE_BREAK.split(plain_text(passage.text))
        if len(line.split()) >= 3
    ]
    wanted = set(terms([question])[0])
    found = [set(line_terms) & wanted for line_terms in terms([line for _, line, _ in lines])]
    counts = Counter(term for shared in found for term in shared)
    scores = [
        sum(math.log(1 + len(lines) / counts[term]) for term in shared - named)
        for shared, (_, _, named) in zip(found, lines, strict=True)
    ]
    best = sorted((-score, index) for index, score in enumerate(scores) if score > 0)[:count]
    return [
        f"[{lines[index][0]}] {lines[index][1].strip(' |')}"
        for _, index in sorted(best, key=lambda pair: pair[1])
    ]


_MARKER = re.compile(r"\[(\d+(?:\s*,\s*\d+)*)\]")
_WORD = re.compile(r"\w+")
# A run of copied words counts only if it holds a word outside this list.
_COMMON = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "can",
        "do",
        "for",
        "from",
        "has",
        "have",
        "if",
        "in",
        "is",
        "it",
        "its",
        "of",
        "on",
        "or",
        "that",
        "the",
        "this",
        "to",
        "was",
        "were",
        "will",
        "with",
        "you",
        "your",
    ]
)
COPIED_RUN_WORDS = 4


def cited_numbers(reply: str, passages: list[Passage], *, question: str = "") -> list[int]:
    """Numbers of the passages ``reply`` used, sorted: only on evidence.

    A passage counts when the reply names it ([2], [1, 3], [1][3]), shares a run
    of ``COPIED_RUN_WORDS`` consecutive words with it that holds a word
    distinctive of it, or repeats a token with a digit in it ("E47", "4,750")
    that occurs in that passage alone: a small model seldom writes markers but
    copies freely. What the reply could have from elsewhere proves nothing: the
    question's own words and codes, common words, the names of the passages'
    files and their top headings (the document's title), and with several
    passages the words all of them hold. A reply repeating "the Isle of
    Carrowmere" from the question cites no passage by that.
    """
    numbers = {passage.number for passage in passages}
    named = {int(n) for group in _MARKER.findall(reply) for n in group.split(",")} & numbers
    prose = _MARKER.sub(" ", reply)
    given = _words(question) | _names(passages)
    copied = _copied_from(prose, passages, given=given)
    coded = _coded_from(prose, passages, given=_codes(question))
    return sorted(named | copied | coded)


def _words(text: str) -> set[str]:
    return {word.lower() for word in _WORD.findall(text)}


def _names(passages: list[Passage]) -> set[str]:
    """Words every passage of a file shares by where it comes from: the file's name
    and the top of its heading path."""
    names = set()
    for passage in passages:
        top = passage.heading.split(HEADING_JOIN)[0] if passage.heading else ""
        names |= _words(passage.filename.replace("_", " ")) | _words(top)
    return names


def _copied_from(reply: str, passages: list[Passage], *, given: set[str]) -> set[int]:
    runs = _word_runs(reply)
    vocabularies = [_words(passage.text) for passage in passages]
    shared = set.intersection(*vocabularies) if len(vocabularies) > 1 else set()
    cited = set()
    for passage, vocabulary in zip(passages, vocabularies, strict=True):
        distinctive = vocabulary - _COMMON - given - shared
        if any(set(run) & distinctive for run in runs & _word_runs(passage.text)):
            cited.add(passage.number)
    return cited


def _word_runs(text: str) -> set[tuple[str, ...]]:
    words = [word.lower() for word in _WORD.findall(text)]
    runs = zip(*(words[start:] for start in range(COPIED_RUN_WORDS)), strict=False)
    return {run for run in runs if not set(run) <= _COMMON}


def _coded_from(reply: str, passages: list[Passage], *, given: set[str]) -> set[int]:
    holders: dict[str, set[int]] = {}
    for passage in passages:
        for token in _codes(passage.text):
            holders.setdefault(token, set()).add(passage.number)
    return {
        next(iter(holders[token]))
        for token in _codes(reply) - given
        if len(holders.get(token, ())) == 1
    }


def _codes(text: str) -> set[str]:
    """Tokens with a digit in them, lower-cased, thousands separators dropped."""
    tokens = re.findall(r"[\w.,/-]*\d[\w.,/-]*", text)
    cleaned = {token.strip(".,/-").replace(",", "").lower() for token in tokens}
    return {token for token in cleaned if len(token) >= 2}
