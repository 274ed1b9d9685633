from celery import shared_task
from django.conf import settings

from chat import services


@shared_task(name="chat.fail_stale_replies")
def fail_stale_replies() -> int:
    """Replies left "streaming" by a web process that died are marked failed."""
    return services.stale_replies_fail(older_than_seconds=settings.CHAT_STALE_REPLY_SECONDS)
