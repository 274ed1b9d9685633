from django.conf import settings
from django.core.management.base import BaseCommand

from llm.loading import EMBEDDED_MODEL, prepare_embedded_model


class Command(BaseCommand):
    help = "Convert the embedded SmolLM2 GGUF into the model cache once (about 40 s)."

    def handle(self, *args, **options) -> None:
        if settings.CHAT_MODEL not in ("", EMBEDDED_MODEL):
            self.stdout.write(f"CHAT_MODEL={settings.CHAT_MODEL}: nothing to prepare.")
            return
        path = prepare_embedded_model(settings.MODEL_CACHE_DIR)
        self.stdout.write(f"Model ready at {path}")
