"""Versions go into service without a restart, and every reply records its version."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async
from django.core.cache import cache

from tests.support.chatting import new_conversation, reply_version
from tests.support.tiny_model import build_tiny_adapter
from training import services
from training.models import ModelVersion

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.fixture
def adapter_dir(tiny_model_dir, tmp_path_factory):
    return build_tiny_adapter(tiny_model_dir, tmp_path_factory.mktemp("adapter") / "v1")


@pytest.fixture
def versions(tiny_engine_settings, tiny_model_dir, adapter_dir):
    cache.clear()
    base = ModelVersion.objects.create(name="base", base_model=str(tiny_model_dir))
    v1 = ModelVersion.objects.create(
        name="v1-dpo",
        base_model=str(tiny_model_dir),
        adapter_path=str(adapter_dir),
        parent=base,
        method="dpo",
    )
    services.version_activate(version=base)
    return base, v1


async def test_it_serves_a_promoted_version_and_rolls_back_without_restart(app, alice, versions):
    base, v1 = versions
    conversation = await new_conversation(alice)
    assert await reply_version(app, alice, conversation) == "tiny-random-llama"
    await database_sync_to_async(services.version_activate)(version=v1)
    assert await reply_version(app, alice, conversation) == "v1-dpo"
    await database_sync_to_async(services.version_activate)(version=base)
    assert await reply_version(app, alice, conversation) == "tiny-random-llama"
    statuses = await database_sync_to_async(
        lambda: dict(ModelVersion.objects.values_list("name", "status"))
    )()
    assert statuses == {"base": "active", "v1-dpo": "retired"}


async def test_a_canary_serves_its_share_of_conversations(app, alice, versions):
    """Conversations whose id falls in the canary's share get the candidate."""
    _, v1 = versions
    first, second = await new_conversation(alice), await new_conversation(alice)
    if first.pk % 100 == 99:  # keep both on one side of the 0..99 wheel
        first, second = second, await new_conversation(alice)
    await database_sync_to_async(services.canary_set)(version=v1, percent=first.pk % 100 + 1)
    assert await reply_version(app, alice, first) == "v1-dpo"
    assert await reply_version(app, alice, second) == "tiny-random-llama"


def test_only_one_version_is_active(versions):
    base, v1 = versions
    services.version_activate(version=v1)
    services.version_activate(version=base)
    assert list(ModelVersion.objects.filter(status="active")) == [base]
    with pytest.raises(ValueError):
        services.version_reject(version=base)
