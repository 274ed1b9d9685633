"""An inference worker: this machine's model behind the OpenAI protocol.

    python -m live.inference_worker [--host 127.0.0.1] [--port 8101]

Web processes with ``INFERENCE_MODE=workers`` stream from the workers at
``INFERENCE_WORKER_URLS`` through the same engine that talks to vLLM
(llm.engine.openai_compat), so the split mode has vLLM's failure handling:
a dead worker fails its replies at once and the next reply goes to a live
one; no Redis sits between web and model. The worker loads trained versions
when the web side registers them (llm.engine.openai_server). Its engine is the one
``INFERENCE_ENGINE`` picks, as in a web process (live.engines). ``GET /metrics``
gives its batch size and waiting replies (no token: bind it to a private address).
"""

from __future__ import annotations

import argparse
import os


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8101)
    options = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import django

    django.setup()
    import uvicorn
    from django.conf import settings
    from prometheus_client.exposition import CONTENT_TYPE_LATEST

    from live.engines import local_engine
    from live.metrics.exposition import metrics_text
    from llm.engine.openai_server import OpenAIServer
    from llm.loading import model_label

    engine = local_engine()

    def metrics() -> tuple[bytes, str]:
        # Its batch and queue; no database figures (the web's /metrics has those).
        return metrics_text(engines=[engine], database=False), CONTENT_TYPE_LATEST

    app = OpenAIServer(engine, model=model_label(settings.CHAT_MODEL), metrics=metrics)
    uvicorn.run(app, host=options.host, port=options.port, lifespan="on", log_level="info")


if __name__ == "__main__":
    main()
