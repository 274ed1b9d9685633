import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

from django.core.asgi import get_asgi_application  # noqa: E402

django_application = get_asgi_application()

from channels.routing import ProtocolTypeRouter  # noqa: E402

from live import engines  # noqa: E402
from live.routing import websocket_application  # noqa: E402

# One engine per process, handed to the consumers: this process's model, or a
# client of inference workers or vLLM servers (INFERENCE_MODE, INFERENCE_BACKEND).
chat_engine = engines.chat_engine()

application = ProtocolTypeRouter(
    {
        "http": django_application,
        "websocket": websocket_application(chat_engine),
    }
)

engines.preload(chat_engine)
