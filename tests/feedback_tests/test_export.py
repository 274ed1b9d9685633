"""Exports: TRL's conversational formats from the stored prompts, opt-outs never included."""

from __future__ import annotations

import datetime
import json

import pytest
from django.core.management import call_command
from django.utils import timezone

from chat import services as chat_services
from feedback import services
from feedback.exports import export_rows
from feedback.models import FeedbackProfile, Rating
from tests.support.factories import SYSTEM, exchange

pytestmark = pytest.mark.django_db


@pytest.fixture
def rated(alice, bob):
    """Two conversations of Alice's, each with a good and a bad sibling, approved."""
    replies = []
    for question in ("Capital of France?", "Two plus two?"):
        conversation = chat_services.conversation_create(owner=alice)
        _, (good, bad) = exchange(conversation, question, ["A good answer.", "A bad answer."])
        services.rating_submit(user=alice, message_id=good.pk, value="up", reasons=["accurate"])
        services.rating_submit(user=alice, message_id=bad.pk, value="down", reasons=["wrong"])
        replies += [good, bad]
    services.ratings_review(ratings=Rating.objects.all(), reviewer=bob, status="approved")
    return replies


def test_it_exports_unpaired_thumbs_for_kto(rated):
    rows = list(export_rows(format="kto"))
    assert len(rows) == 4
    assert rows[0] == {
        "prompt": [SYSTEM, {"role": "user", "content": "Capital of France?"}],
        "completion": [{"role": "assistant", "content": "A good answer."}],
        "label": True,
        "conversation_id": str(rated[0].conversation_id),
        "message_id": rated[0].pk,
        "model_version": "base-v0",
    }
    assert [row["label"] for row in rows] == [True, False, True, False]


def test_it_exports_pairs_for_dpo_and_reward(rated):
    rows = list(export_rows(format="dpo"))
    assert rows == list(export_rows(format="reward"))
    assert len(rows) == 2
    assert rows[0]["prompt"][-1] == {"role": "user", "content": "Capital of France?"}
    assert rows[0]["chosen"] == [{"role": "assistant", "content": "A good answer."}]
    assert rows[0]["rejected"] == [{"role": "assistant", "content": "A bad answer."}]


def test_it_exports_thumbs_up_conversations_for_sft(rated):
    rows = list(export_rows(format="sft"))
    assert [row["messages"][-1]["content"] for row in rows] == ["A good answer."] * 2
    assert rows[0]["messages"][:-1] == rated[0].prompt_messages


def test_it_uses_the_stored_prompt_not_a_re_rendered_one(rated, alice):
    """Changing the conversation later does not change what the export says the model saw."""
    conversation = rated[0].conversation
    chat_services.conversation_update(conversation=conversation, changes={"system_prompt": "New"})
    assert list(export_rows(format="kto"))[0]["prompt"][0] == SYSTEM


def test_it_never_exports_feedback_of_users_who_opted_out(rated, alice):
    services.profile_update(user=alice, share_for_training=False)
    for format in ("kto", "dpo", "reward", "sft"):
        assert list(export_rows(format=format, status="any")) == []
    FeedbackProfile.objects.filter(user=alice).update(share_for_training=True)
    assert len(list(export_rows(format="kto"))) == 4


def test_it_filters_by_status_and_date(rated, bob):
    services.ratings_review(
        ratings=Rating.objects.filter(message=rated[1]), reviewer=bob, status="excluded"
    )
    assert len(list(export_rows(format="kto"))) == 3
    assert len(list(export_rows(format="kto", status="excluded"))) == 1
    assert len(list(export_rows(format="dpo"))) == 1  # that rating's pair is excluded too
    tomorrow = timezone.now().date() + datetime.timedelta(days=1)
    assert list(export_rows(format="kto", since=tomorrow)) == []


def test_it_caps_how_many_ratings_per_user_and_day_count(rated, settings):
    settings.FEEDBACK_DAILY_TRAINING_CAP = 3
    rows = list(export_rows(format="kto"))
    assert [row["message_id"] for row in rows] == [reply.pk for reply in rated[:3]]


def test_the_command_writes_jsonl(rated, tmp_path, capsys):
    out = tmp_path / "kto.jsonl"
    call_command("export_feedback", "--format", "kto", "--out", str(out))
    lines = out.read_text().splitlines()
    assert len(lines) == 4 and json.loads(lines[0])["label"] is True
    assert "Exported 4 kto rows" in capsys.readouterr().err


@pytest.mark.parametrize("format", ["kto", "dpo", "reward", "sft"])
def test_each_format_loads_and_is_accepted_by_its_trl_trainer(
    rated, tmp_path, tiny_model_dir, format
):
    """load_dataset("json") reads the file, and the TRL trainer prepares (tokenizes) it."""
    dataset = exported_dataset(format, tmp_path)
    trainer = _trainer_for(format, dataset, tiny_model_dir, tmp_path)
    prepared = trainer.train_dataset
    assert len(prepared) == len(dataset) > 0
    assert any(column.endswith(("input_ids", "_ids")) for column in prepared.column_names), (
        prepared.column_names
    )


def exported_dataset(format: str, tmp_path):
    """``export_feedback --format format`` to a file, read back as TRL reads it."""
    from datasets import load_dataset

    path = tmp_path / f"{format}.jsonl"
    call_command("export_feedback", "--format", format, "--out", str(path))
    return load_dataset("json", data_files=str(path), split="train")


def _trainer_for(format, dataset, model_dir, tmp_path):
    import trl
    from transformers import (
        AutoModelForCausalLM,
        AutoModelForSequenceClassification,
        AutoTokenizer,
    )

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    common = {
        "output_dir": str(tmp_path / "out"),
        "report_to": "none",
        "bf16": False,
        "use_cpu": True,
        "per_device_train_batch_size": 2,
        "max_steps": 1,
    }
    if format == "reward":
        model = AutoModelForSequenceClassification.from_pretrained(model_dir, num_labels=1)
        model.config.pad_token_id = tokenizer.pad_token_id
        return trl.RewardTrainer(
            model=model,
            args=trl.RewardConfig(**common),
            train_dataset=dataset,
            processing_class=tokenizer,
        )
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    trainer_class, config_class = {
        "kto": (trl.KTOTrainer, trl.KTOConfig),
        "dpo": (trl.DPOTrainer, trl.DPOConfig),
        "sft": (trl.SFTTrainer, trl.SFTConfig),
    }[format]
    return trainer_class(
        model=model, args=config_class(**common), train_dataset=dataset, processing_class=tokenizer
    )


# -- written replies ----------------------------------------------------------------


@pytest.fixture
def written(alice, bob):
    """Alice disliked one reply in each of two conversations and wrote what she wanted;
    Bob approved both pairs."""
    from feedback.models import PreferencePair
    from feedback.written import written_reply_submit

    pairs = []
    for question, wanted in (("Capital of France?", "Paris."), ("Two plus two?", "Four.")):
        conversation = chat_services.conversation_create(owner=alice)
        _, (bad,) = exchange(conversation, question, ["A bad answer."])
        services.rating_submit(user=alice, message_id=bad.pk, value="down", reasons=["wrong"])
        pairs.append(written_reply_submit(user=alice, message_id=bad.pk, content=wanted).pair)
    services.pairs_review(pairs=PreferencePair.objects.all(), reviewer=bob, status="approved")
    return pairs


def test_it_exports_written_replies_for_sft_under_the_rated_replys_prompt(written):
    rows = list(export_rows(format="sft"))
    assert [row["messages"][-1] for row in rows] == [
        {"role": "assistant", "content": "Paris."},
        {"role": "assistant", "content": "Four."},
    ]
    assert rows[0]["messages"][:-1] == [SYSTEM, {"role": "user", "content": "Capital of France?"}]
    assert (rows[0]["message_id"], rows[0]["origin"]) == (written[0].chosen_id, "written")


def test_sft_interleaves_thumbs_up_and_written_replies_oldest_first(rated, written):
    origins = [row["origin"] for row in export_rows(format="sft")]
    assert origins == ["thumbs_up", "thumbs_up", "written", "written"]


def test_it_exports_written_pairs_for_dpo_and_reward(written):
    rows = list(export_rows(format="dpo"))
    assert rows == list(export_rows(format="reward"))
    assert [(row["chosen"], row["rejected"], row["source"]) for row in rows] == [
        (
            [{"role": "assistant", "content": "Paris."}],
            [{"role": "assistant", "content": "A bad answer."}],
            "written",
        ),
        (
            [{"role": "assistant", "content": "Four."}],
            [{"role": "assistant", "content": "A bad answer."}],
            "written",
        ),
    ]
    assert rows[0]["prompt"][-1] == {"role": "user", "content": "Capital of France?"}
    # The thumbs-down stays an unpaired row; the written reply has no rating of its own.
    assert [row["label"] for row in export_rows(format="kto", status="any")] == [False, False]


def test_written_replies_of_users_who_opted_out_are_never_exported(written, alice):
    services.profile_update(user=alice, share_for_training=False)
    for format in ("dpo", "reward", "sft"):
        assert list(export_rows(format=format, status="any")) == []


def test_pending_written_pairs_wait_for_review(alice, written):
    from feedback.written import written_reply_submit

    written_reply_submit(user=alice, message_id=written[0].rejected_id, content="Paris, France.")
    assert [row["messages"][-1]["content"] for row in export_rows(format="sft")] == ["Four."]
    assert len(list(export_rows(format="dpo", status="pending"))) == 1


def test_written_pairs_count_against_the_daily_cap(rated, written, settings):
    """Two derived pairs came first that day: a cap of three keeps one written reply."""
    settings.FEEDBACK_DAILY_TRAINING_CAP = 3
    assert [row["source"] for row in export_rows(format="dpo")] == [
        "derived",
        "derived",
        "written",
    ]
    assert [row["origin"] for row in export_rows(format="sft")] == [
        "thumbs_up",
        "thumbs_up",
        "written",
    ]


@pytest.mark.parametrize("format", ["dpo", "reward", "sft"])
def test_written_replies_load_into_their_trl_trainer(written, tmp_path, tiny_model_dir, format):
    dataset = exported_dataset(format, tmp_path)
    assert len(dataset) == 2
    trainer = _trainer_for(format, dataset, tiny_model_dir, tmp_path)
    prepared = trainer.train_dataset
    assert len(prepared) == len(dataset)
    assert any(column.endswith(("input_ids", "_ids")) for column in prepared.column_names)
