"""Model versions in service: activation, rejection, rollback, canary."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from chat.refusals import Refusal
from llm.loading import model_label
from training.models import ModelVersion, ServingConfig


@dataclass(frozen=True)
class Serving:
    """Which version writes a reply: ``None`` means the engine's base model."""

    version: str | None
    adapter_path: str | None


BASE = Serving(version=None, adapter_path=None)


def serving_for(*, conversation_id: int) -> Serving:
    """The canary for its share of conversations, else the active version.

    A conversation keeps its side of the canary for its whole life (by id).
    """
    config = ServingConfig.objects.select_related("canary_version").first()
    if config and config.canary_version and conversation_id % 100 < config.canary_percent:
        return serving_of(config.canary_version)
    active = ModelVersion.objects.filter(status=ModelVersion.Status.ACTIVE).first()
    return serving_of(active) if active else BASE


def serving_of(version: ModelVersion) -> Serving:
    if version.is_base:
        return BASE
    return Serving(version=version.name, adapter_path=version.adapter_path)


@transaction.atomic
def base_version_ensure() -> ModelVersion:
    """The version that is the base model itself, so staff can always go back to it.

    Created once, named as the base model's replies record it; it is the
    version in service when no other is (a fresh install).
    """
    base = ModelVersion.objects.filter(adapter_path="").order_by("created_at").first()
    if base is None:
        base, _ = ModelVersion.objects.get_or_create(
            name=model_label(settings.CHAT_MODEL),
            defaults={
                "base_model": str(settings.CHAT_MODEL),
                "method": "base",
                # It served before any trained version did.
                "status": ModelVersion.Status.RETIRED,
            },
        )
    if not ModelVersion.objects.filter(status=ModelVersion.Status.ACTIVE).exists():
        base = version_activate(version=base)
    return base


@transaction.atomic
def version_activate(*, version: ModelVersion, by: AbstractBaseUser | None = None) -> ModelVersion:
    """Put ``version`` into service (promotion, or rollback to an earlier one).

    Every process picks it up with its next reply: the engine loads the
    adapter on first use, no restart.
    """
    ModelVersion.objects.select_for_update().filter(status=ModelVersion.Status.ACTIVE).exclude(
        pk=version.pk
    ).update(status=ModelVersion.Status.RETIRED)
    version.status = ModelVersion.Status.ACTIVE
    version.activated_at = timezone.now()
    version.activated_by = by
    version.save(update_fields=["status", "activated_at", "activated_by"])
    ServingConfig.objects.filter(canary_version=version).update(canary_version=None)
    return version


def version_reject(*, version: ModelVersion) -> ModelVersion:
    if version.status == ModelVersion.Status.ACTIVE:
        raise Refusal(
            "active_version", "Activate another version before rejecting the one in service."
        )
    version.status = ModelVersion.Status.REJECTED
    version.save(update_fields=["status"])
    ServingConfig.objects.filter(canary_version=version).update(canary_version=None)
    return version


def canary_set(*, version: ModelVersion | None, percent: int) -> ServingConfig:
    if not 0 <= percent <= 100:
        raise Refusal("invalid", "The canary share must be between 0 and 100 percent.", "percent")
    config = ServingConfig.objects.first() or ServingConfig()
    config.canary_version, config.canary_percent = version, percent
    config.save()
    return config
