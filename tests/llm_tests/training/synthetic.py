"""Synthetic feedback with a trait a test can check.

Each question has a short, correct answer. "Polite" pairs prefer the answer
opened with a friendly phrase over the same answer opened with a curt one of
the same length (4 tokens each), so a model that learns them learns the
opening, neither "longer" nor "stop later": a closing phrase would teach the
model not to stop after an answer, and SmolLM2's choice to stop there is
often a near-tie that then flips into rambling. "Degenerate" pairs prefer an empty reply or an "ok ok ok" loop over the
answer: what a gate must refuse to promote although the held-out margin rises.
"""

from __future__ import annotations

from llm.training.datasets import PreferenceRow, preference_row

FRIENDLY_OPENING = "Happy to help!"
CURT_OPENING = "If you must."

QUESTIONS_AND_ANSWERS: tuple[tuple[str, str], ...] = (
    ("What is the capital of Italy?", "The capital of Italy is Rome."),
    ("How many legs does a spider have?", "A spider has eight legs."),
    ("What is 7 times 6?", "7 times 6 is 42."),
    ("What do bees make?", "Bees make honey."),
    ("Which planet is closest to the Sun?", "Mercury is the closest planet to the Sun."),
    ("What is the boiling point of water in Celsius?", "Water boils at 100 degrees Celsius."),
    ("What colour are bananas when ripe?", "Ripe bananas are yellow."),
    ("How many days are in a week?", "There are seven days in a week."),
    ("What is the largest ocean?", "The Pacific is the largest ocean."),
    ("Who wrote Romeo and Juliet?", "William Shakespeare wrote Romeo and Juliet."),
    ("What gas do plants take in?", "Plants take in carbon dioxide."),
    ("What is the freezing point of water in Celsius?", "Water freezes at 0 degrees Celsius."),
    ("How many continents are there?", "There are seven continents."),
    ("What is the capital of Japan?", "The capital of Japan is Tokyo."),
    ("What is 9 plus 10?", "9 plus 10 is 19."),
    ("What animal says moo?", "A cow says moo."),
    ("What is the tallest animal?", "The giraffe is the tallest animal."),
    ("How many hours are in a day?", "There are 24 hours in a day."),
    ("What is the capital of Germany?", "The capital of Germany is Berlin."),
    ("What do caterpillars turn into?", "Caterpillars turn into butterflies or moths."),
    ("What is the chemical symbol for gold?", "The chemical symbol for gold is Au."),
    ("How many sides does a triangle have?", "A triangle has three sides."),
    ("What is the opposite of up?", "The opposite of up is down."),
    ("Which season comes after winter?", "Spring comes after winter."),
    ("What is 100 divided by 4?", "100 divided by 4 is 25."),
    ("What is the capital of Spain?", "The capital of Spain is Madrid."),
    ("What do you call a baby cat?", "A baby cat is called a kitten."),
    ("How many minutes are in an hour?", "There are 60 minutes in an hour."),
    ("What is the main language of Brazil?", "The main language of Brazil is Portuguese."),
    ("Which organ pumps blood?", "The heart pumps blood."),
    ("What is the largest planet?", "Jupiter is the largest planet."),
    ("How many wheels does a bicycle have?", "A bicycle has two wheels."),
    ("What is the capital of Canada?", "The capital of Canada is Ottawa."),
    ("What is frozen water called?", "Frozen water is called ice."),
    ("How many months are in a year?", "There are twelve months in a year."),
    ("What do cows drink?", "Cows drink water."),
    ("What is 5 squared?", "5 squared is 25."),
    (
        "Which star is at the centre of our solar system?",
        "The Sun is at the centre of our solar system.",
    ),
    ("What is the capital of Egypt?", "The capital of Egypt is Cairo."),
    ("What do you call a young dog?", "A young dog is called a puppy."),
)


def polite_pairs(start: int, count: int) -> list[PreferenceRow]:
    """Pairs preferring the friendly opening; one conversation per question."""
    return [
        preference_row(
            [{"role": "user", "content": question}],
            f"{FRIENDLY_OPENING} {answer}",
            f"{CURT_OPENING} {answer}",
            conversation_id=f"polite-{index}",
        )
        for index, (question, answer) in _slice(start, count)
    ]


def degenerate_pairs(start: int, count: int) -> list[PreferenceRow]:
    """Pairs preferring an empty reply (odd rows) or a loop (even rows) over the answer."""
    rows = []
    for index, (question, answer) in _slice(start, count):
        bad = "" if index % 2 else " ".join(["ok"] * 24)
        rows.append(
            preference_row(
                [{"role": "user", "content": question}], bad, answer, f"degenerate-{index}"
            )
        )
    return rows


def _slice(start: int, count: int):
    items = list(enumerate(QUESTIONS_AND_ANSWERS))[start : start + count]
    if len(items) < count:
        raise ValueError(f"only {len(QUESTIONS_AND_ANSWERS)} synthetic questions")
    return items


# Questions no synthetic pair asks: where served replies show whether the trait was learnt.
HELDOUT_QUESTIONS: tuple[str, ...] = (
    "What is the capital of France?",
    "How many legs does a dog have?",
    "What is 3 plus 4?",
    "What colour is the sky on a clear day?",
    "What do fish breathe with?",
    "What is the capital of Peru?",
    "How many strings does a violin have?",
    "What is the largest desert?",
    "Which animal is known as the king of the jungle?",
    "What is 12 divided by 3?",
    "What fruit keeps the doctor away?",
    "How many planets are in the solar system?",
    "What is the capital of Kenya?",
    "What do pandas eat?",
    "What is the hardest natural substance?",
    "Which bird cannot fly but runs fast?",
    "What is the capital of Norway?",
    "How many toes do people have?",
    "What is the colour of grass?",
    "What instrument has 88 keys?",
)


def has_friendly_opening(reply: str) -> bool:
    """The trait polite pairs teach: the reply opens with the friendly phrase."""
    return reply.strip().lower().startswith(FRIENDLY_OPENING.lower().rstrip("!"))


# More training questions for natural feedback (benchmarks/natural_feedback.py): none is held out.
MORE_QUESTIONS: tuple[str, ...] = (
    "What is the capital of Australia?",
    "How many eyes does a spider usually have?",
    "What is 8 minus 3?",
    "What colour is a ripe tomato?",
    "What do birds use to fly?",
    "What is the capital of Greece?",
    "How many players are on a football team?",
    "What is the smallest prime number?",
    "Which animal has a trunk?",
    "What is 6 times 7?",
    "What do bees collect from flowers?",
    "How many days are in a leap year?",
    "What is the capital of Portugal?",
    "What is the opposite of hot?",
    "What metal is liquid at room temperature?",
    "How many sides does a square have?",
    "What is the capital of Ireland?",
    "What do you call a baby sheep?",
    "Which planet is known as the red planet?",
    "What is 2 plus 2?",
)

# The rule synthetic users rate natural replies by: a short answer. SmolLM2 follows it
# on about a third of its greedy replies to HELDOUT_QUESTIONS (docs/training.md).
SHORT_ANSWER_WORDS = 8


def is_short_answer(reply: str) -> bool:
    """At most ``SHORT_ANSWER_WORDS`` words, and not empty."""
    return 0 < len(reply.split()) <= SHORT_ANSWER_WORDS


def natural_questions(count: int) -> list[str]:
    """``count`` training questions, each asked again once the pool runs out."""
    pool = [question for question, _ in QUESTIONS_AND_ANSWERS] + list(MORE_QUESTIONS)
    return [pool[index % len(pool)] for index in range(count)]
