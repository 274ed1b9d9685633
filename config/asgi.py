import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

from django.core.asgi import get_asgi_application  # noqa: E402

django_application = get_asgi_application()

from channels.routing import ChannelNameRouter, ProtocolTypeRouter  # noqa: E402
from django.conf import settings  # noqa: E402

from live import engines  # noqa: E402
from live.routing import websocket_application  # noqa: E402
from live.workers import InferenceWorkerConsumer  # noqa: E402

# One engine per process, handed to the consumers. The local one loads its
# model only when started: a web process in workers mode never does.
worker_engine = engines.local_engine()
chat_engine = engines.chat_engine(worker_engine)

application = ProtocolTypeRouter(
    {
        "http": django_application,
        "websocket": websocket_application(chat_engine),
        # python manage.py runworker inference: the split inference mode.
        "channel": ChannelNameRouter(
            {settings.INFERENCE_CHANNEL: InferenceWorkerConsumer.as_asgi(engine=worker_engine)}
        ),
    }
)

engines.preload(chat_engine)
