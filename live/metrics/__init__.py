"""Prometheus metrics: the web process's own (``web``), what is read when scraped
(``collectors``: the engine's replicas and batch, training runs, feedback), the
``/metrics`` view (``exposition``) and each Celery worker's port (``workers``).

docs/operating.md lists every metric and how to scrape them.
"""
