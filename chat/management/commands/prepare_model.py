from django.conf import settings
from django.core.management.base import BaseCommand

from llm.engine.choice import engine_kind
from llm.engine.llamacpp_model import served_gguf
from llm.loading import EMBEDDED_MODEL, prepare_embedded_model


class Command(BaseCommand):
    help = (
        "Convert the embedded SmolLM2 GGUF into the model cache once (about 40 s), and"
        " write the copy llama.cpp serves (LLAMACPP_WEIGHTS) beside it."
    )

    def handle(self, *args, **options) -> None:
        if settings.CHAT_MODEL not in ("", EMBEDDED_MODEL):
            self.stdout.write(f"CHAT_MODEL={settings.CHAT_MODEL}: nothing to prepare.")
            return
        path = prepare_embedded_model(settings.MODEL_CACHE_DIR)
        self.stdout.write(f"Model ready at {path}")
        if engine_kind(settings.INFERENCE_ENGINE, settings.CHAT_MODEL) == "llamacpp":
            served = served_gguf(
                settings.CHAT_MODEL, settings.MODEL_CACHE_DIR, settings.LLAMACPP_WEIGHTS
            )
            self.stdout.write(f"llama.cpp serves {served}")
