"""Training rows: hashing, held-out splits, pairs as thumbs."""

from __future__ import annotations

from llm.training import dataset_hash, pairs_to_unpaired, split_by_conversation
from tests.llm_tests.training.conftest import make_pairs


def test_it_hashes_the_same_rows_the_same_way_in_any_order():
    """The hash ignores row order and key order but sees any change of content."""
    rows = make_pairs(6)
    shuffled = [dict(reversed(list(row.items()))) for row in reversed(rows)]
    assert dataset_hash(rows) == dataset_hash(shuffled)
    assert len(dataset_hash(rows)) == 64
    changed = make_pairs(6)
    changed[3]["chosen"][0]["content"] += "!"
    assert dataset_hash(changed) != dataset_hash(rows)


def test_it_never_splits_a_conversation_across_train_and_heldout():
    """Every conversation lands wholly on one side, for many seeds."""
    rows = make_pairs(40, conversations=9)
    for seed in range(20):
        train, heldout = split_by_conversation(rows, eval_fraction=0.25, seed=seed)
        train_ids = {row["conversation_id"] for row in train}
        heldout_ids = {row["conversation_id"] for row in heldout}
        assert not train_ids & heldout_ids
        assert len(train) + len(heldout) == len(rows)
        assert len(heldout) >= 0.25 * len(rows)
        assert train


def test_it_splits_the_same_way_for_the_same_seed():
    """A seed fixes the split, whatever order the rows came in."""
    rows = make_pairs(30, conversations=7)
    first = split_by_conversation(rows, 0.3, seed=4)[1]
    again = split_by_conversation(list(reversed(rows)), 0.3, seed=4)[1]
    assert dataset_hash(first) == dataset_hash(again)


def test_it_keeps_a_lone_conversation_for_training():
    """With one conversation there is nothing to hold out; with no fraction, nothing either."""
    rows = make_pairs(5, conversations=1)
    assert split_by_conversation(rows, 0.5, seed=0) == (rows, [])
    assert split_by_conversation(make_pairs(8), 0.0, seed=0)[1] == []


def test_it_turns_each_pair_into_a_thumbs_up_and_a_thumbs_down():
    """Unpaired rows keep the prompt and conversation; the labels follow chosen/rejected."""
    pair = make_pairs(1)[0]
    up, down = pairs_to_unpaired([pair])
    assert (up["completion"], up["label"]) == (pair["chosen"], True)
    assert (down["completion"], down["label"]) == (pair["rejected"], False)
    assert up["prompt"] == down["prompt"] == pair["prompt"]
    assert up["conversation_id"] == pair["conversation_id"]
