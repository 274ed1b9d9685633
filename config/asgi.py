import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

from django.core.asgi import get_asgi_application  # noqa: E402

django_application = get_asgi_application()

from channels.routing import ProtocolTypeRouter  # noqa: E402
from django.conf import settings  # noqa: E402

from live import engines, liveness  # noqa: E402
from live.metrics import web as web_metrics  # noqa: E402
from live.metrics.exposition import engine_watch  # noqa: E402
from live.routing import http_application, websocket_application  # noqa: E402

# One engine per process, handed to the consumers: this process's model, or a
# client of inference workers or vLLM servers (INFERENCE_MODE, INFERENCE_BACKEND).
chat_engine = engines.chat_engine()
engine_watch(engine=chat_engine)

application = ProtocolTypeRouter(
    {
        "http": http_application(django_application, chat_engine),
        "websocket": web_metrics.counting_websockets(websocket_application(chat_engine)),
    }
)

engines.preload(chat_engine)
if settings.PROMETHEUS_MULTIPROC_DIR:
    web_metrics.forget_dead_processes(settings.PROMETHEUS_MULTIPROC_DIR)
# Replies a killed web process left streaming are failed now, not a minute later.
liveness.liveness_start()
