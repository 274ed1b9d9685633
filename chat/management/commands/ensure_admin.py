import os
import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = (
        "Make sure a staff account exists. ADMIN_USERNAME / ADMIN_PASSWORD set it; "
        "otherwise an 'admin' account is created once with a printed random password."
    )

    def handle(self, *args, **options) -> None:
        users = get_user_model().objects
        username = os.environ.get("ADMIN_USERNAME", "admin")
        password = os.environ.get("ADMIN_PASSWORD")
        password_file = settings.DATA_DIR / "admin-password.txt"
        user = users.filter(username=username).first()
        if user is None:
            password = password or secrets.token_urlsafe(12)
            users.create_superuser(username, email="", password=password)
            if "ADMIN_PASSWORD" not in os.environ:
                password_file.write_text(password + "\n")
                password_file.chmod(0o600)
            self.stdout.write(f"Log in as {username!r} with password {password!r}")
        elif password:
            user.set_password(password)
            user.save(update_fields=["password"])
            self.stdout.write(f"Log in as {username!r} with the password from ADMIN_PASSWORD")
        elif password_file.exists():
            self.stdout.write(
                f"Log in as {username!r} with password {password_file.read_text().strip()!r}"
            )
        else:
            self.stdout.write(f"Log in as {username!r} (password as set before)")
