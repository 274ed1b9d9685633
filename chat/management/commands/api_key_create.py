from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from chat.keys import api_key_create
from chat.refusals import Refusal


class Command(BaseCommand):
    help = "Create an API key for USERNAME and print it (the one time it can be read)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("username")
        parser.add_argument(
            "--name", default="", help="What the key is for, as listed in Settings."
        )

    def handle(self, *args, username: str, name: str, **options) -> None:
        owner = get_user_model().objects.filter(username=username).first()
        if owner is None:
            raise CommandError(f"No user {username!r}.")
        try:
            created = api_key_create(owner=owner, name=name)
        except Refusal as refusal:
            raise CommandError(refusal.message) from None
        # Only the key on stdout: scripts read it with $(python manage.py api_key_create …).
        self.stdout.write(created.secret)
