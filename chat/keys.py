"""API keys: other apps talk to LoopChat as a user (/v1/, live.api.openai).

A key is ``lc-`` and 43 random URL-safe characters, shown once; only its
SHA-256 is stored. A key that random needs no slow hash: nobody can guess
one from its digest, and checking it is one indexed lookup per request.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.utils import timezone

from chat.models import ApiKey
from chat.refusals import Refusal

KEY_PREFIX = "lc-"
MAX_NAME_CHARS = 100


@dataclass(frozen=True)
class NewApiKey:
    """A key just created: ``secret`` is shown to its owner this once and never again."""

    key: ApiKey
    secret: str


def api_key_create(*, owner: AbstractBaseUser, name: str = "") -> NewApiKey:
    if not isinstance(name, str) or len(name.strip()) > MAX_NAME_CHARS:
        raise Refusal(
            "invalid", f"The name must be text of at most {MAX_NAME_CHARS} characters.", "name"
        )
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey.objects.create(
        owner=owner, name=name.strip(), prefix=secret[:8], key_hash=_digest(secret)
    )
    return NewApiKey(key=key, secret=secret)


def api_key_list(*, owner: AbstractBaseUser) -> list[ApiKey]:
    """The owner's keys, newest first, revoked ones included (marked)."""
    return list(ApiKey.objects.filter(owner=owner))


def api_key_revoke(*, owner: AbstractBaseUser, key_id: object) -> ApiKey:
    """Revoke one of the owner's keys; someone else's answers like a missing one."""
    key = ApiKey.objects.filter(owner=owner, pk=_as_id(key_id)).first()
    if key is None:
        raise Refusal("not_found", "No such key (or it is not yours).", "key")
    if key.revoked_at is None:
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at"])
    return key


def api_key_owner(*, secret: str) -> AbstractBaseUser:
    """The active user a usable key belongs to; ``Refusal("invalid_api_key")`` otherwise."""
    key = (
        ApiKey.objects.select_related("owner").filter(key_hash=_digest(secret)).first()
        if secret.startswith(KEY_PREFIX)
        else None
    )
    if key is None or not key.owner.is_active:
        raise Refusal("invalid_api_key", "Incorrect API key provided.")
    if not key.usable:
        state = "revoked" if key.revoked_at else "disabled by staff"
        raise Refusal("invalid_api_key", f"This API key was {state}.")
    # One write per request at most once a minute: a busy key is not a hot row.
    now = timezone.now()
    if key.last_used_at is None or (now - key.last_used_at).total_seconds() > 60:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
    return key.owner


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _as_id(value: object) -> int:
    try:
        return int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 0
