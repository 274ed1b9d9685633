"""LoopChat settings. The environment is read here and nowhere else.

Every deployment knob is an environment variable with a working default, so
``make run`` on a fresh machine needs none of them.
"""

import os
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name: str, default: str) -> str:
    return os.environ.get(name, default)


def env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def env_float(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in ("1", "true", "yes", "on")


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in env_str(name, default).split(",") if item.strip()]


def env_knobs(prefix: str) -> dict[str, str]:
    """Variables named ``prefix`` + a knob's name in capitals, as ``{knob: text}``."""
    return {
        name[len(prefix) :].lower(): value
        for name, value in os.environ.items()
        if name.startswith(prefix) and len(name) > len(prefix)
    }


DATA_DIR = Path(env_str("LOOPCHAT_DATA_DIR", str(BASE_DIR / "var")))

SECRET_KEY = env_str("SECRET_KEY", "insecure-development-key-change-me-in-production")
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "django_celery_beat",
    "chat",
    "documents",
    "feedback",
    "training",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # WhiteNoise, async-capable (a streamed completion stays on the event loop).
    "config.static.StaticFiles",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Counts the API's refusals by code for /metrics (loopchat_errors_total).
    "live.metrics.web.ErrorCounting",
]

ROOT_URLCONF = "config.urls"
ASGI_APPLICATION = "config.asgi.application"
WSGI_APPLICATION = None

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# PostgreSQL when DATABASE_URL is set, a SQLite file otherwise.
DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", "") or f"sqlite:///{DATA_DIR / 'loopchat.sqlite3'}",
        # Websocket consumers query often: keep connections instead of one per call.
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web server, workers and beat share one SQLite file.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL;PRAGMA synchronous=NORMAL;",
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env_str("REDIS_URL", "redis://127.0.0.1:6379/0")

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            "hosts": [REDIS_URL],
            "prefix": env_str("CHANNEL_PREFIX", "loopchat"),
            "capacity": 1000,
            "expiry": 120,
        },
    }
}

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": env_str("CACHE_PREFIX", "loopchat"),
        # A Redis that is down refuses at once; one that hangs must not hold a request.
        "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 2},
    }
}
# How long a message waits out a Redis restart before it is refused (service_unavailable).
REDIS_GRACE_SECONDS = env_float("REDIS_GRACE_SECONDS", 2.0)

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "chat:index"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = DATA_DIR / "staticfiles"
WHITENOISE_USE_FINDERS = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    # FAISS tells at INFO which CPU build it tried first, in every process.
    "loggers": {"faiss.loader": {"level": "WARNING"}},
}

# --- Celery -----------------------------------------------------------------
CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# Workers and beat outlive a Redis restart: reconnect for ever, at start-up too.
CELERY_BROKER_CONNECTION_RETRY = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
CELERY_BROKER_TRANSPORT_OPTIONS = {"socket_connect_timeout": 2, "retry_on_timeout": True}

# --- The model --------------------------------------------------------------
# "smollm2" is the embedded SmolLM2-135M-Instruct; any local folder or hub id
# (already in the local Hugging Face cache) works too.
CHAT_MODEL = env_str("CHAT_MODEL", "smollm2")
MODEL_CACHE_DIR = Path(env_str("MODEL_CACHE_DIR", str(BASE_DIR / ".cache" / "models")))
# "cpu", "cuda" or empty for CUDA when present.
MODEL_DEVICE = env_str("MODEL_DEVICE", "")
# CPU threads for the model in this process; 0 keeps torch's default (all cores),
# and gives llama.cpp one thread per core.
MODEL_THREADS = env_int("MODEL_THREADS", 0)
# What runs the chat model in this process and in inference workers: "llamacpp"
# serves a GGUF file directly (llama-cpp-python), "transformers" a Hugging Face
# folder or hub id; "auto" takes llama.cpp when CHAT_MODEL has a GGUF file (the
# embedded smollm2, or a path ending in .gguf) and transformers otherwise.
INFERENCE_ENGINE = env_str("INFERENCE_ENGINE", "auto")
# What llama.cpp computes with: "f16" (default: an F16 copy of the GGUF, made once
# in MODEL_CACHE_DIR; its replies are the transformers model's, so a trained
# version shows users what training taught), "q8_0" (a Q8_0 copy: the most tokens
# a second from 8 conversations up) or "file" (the GGUF as it is: the embedded
# Q4_1, the fastest for one conversation). docs/operating.md has the measured table.
LLAMACPP_WEIGHTS = env_str("LLAMACPP_WEIGHTS", "f16")
# Where replies are generated: "local" runs the engine inside each web process;
# "workers" streams from LoopChat's inference workers (python -m live.inference_worker)
# at INFERENCE_WORKER_URLS, over the OpenAI protocol.
INFERENCE_MODE = env_str("INFERENCE_MODE", "local")
INFERENCE_WORKER_URLS = env_list("INFERENCE_WORKER_URLS", "http://127.0.0.1:8101")
# "local": the embedded engine (INFERENCE_MODE says in-process or workers);
# "vllm": OpenAI-compatible servers at VLLM_URLS (vLLM for trained versions).
INFERENCE_BACKEND = env_str("INFERENCE_BACKEND", "local")
VLLM_URLS = env_list("VLLM_URLS", "http://127.0.0.1:8001")
# The base model's name on those servers (vLLM's --served-model-name).
VLLM_MODEL = env_str("VLLM_MODEL", "smollm2")
VLLM_API_KEY = env_str("VLLM_API_KEY", "EMPTY")
VLLM_MAX_ADAPTERS = env_int("VLLM_MAX_ADAPTERS", 2)
# A reply whose server (vLLM or a worker) sends nothing for this long fails.
INFERENCE_READ_TIMEOUT = env_float("INFERENCE_READ_TIMEOUT", 30.0)
ENGINE_MAX_BATCH_SIZE = env_int("ENGINE_MAX_BATCH_SIZE", 16)
# Load the model when the web process starts rather than on the first message.
ENGINE_PRELOAD = env_bool("ENGINE_PRELOAD", True)

# --- Chat limits --------------------------------------------------------------
CHAT_MAX_MESSAGE_CHARS = env_int("CHAT_MAX_MESSAGE_CHARS", 8000)
CHAT_MAX_SYSTEM_PROMPT_CHARS = env_int("CHAT_MAX_SYSTEM_PROMPT_CHARS", 4000)
CHAT_MAX_FRAME_BYTES = env_int("CHAT_MAX_FRAME_BYTES", 64 * 1024)
# The largest /v1/ request body: a client resends the whole conversation each turn.
API_MAX_BODY_BYTES = env_int("API_MAX_BODY_BYTES", 1024 * 1024)
CHAT_RATE_LIMIT_MESSAGES = env_int("CHAT_RATE_LIMIT_MESSAGES", 20)
CHAT_RATE_LIMIT_WINDOW_SECONDS = env_int("CHAT_RATE_LIMIT_WINDOW_SECONDS", 60)
CHAT_DEFAULT_SYSTEM_PROMPT = env_str(
    "CHAT_DEFAULT_SYSTEM_PROMPT", "You are a helpful, concise assistant."
)
CHAT_DEFAULT_TEMPERATURE = env_float("CHAT_DEFAULT_TEMPERATURE", 0.7)
CHAT_DEFAULT_TOP_P = env_float("CHAT_DEFAULT_TOP_P", 0.95)
CHAT_DEFAULT_MAX_NEW_TOKENS = env_int("CHAT_DEFAULT_MAX_NEW_TOKENS", 512)
# A streaming reply saves its text so far this often, so a process that dies
# (killed, out of memory) loses at most these seconds of it...
CHAT_REPLY_CHECKPOINT_SECONDS = env_float("CHAT_REPLY_CHECKPOINT_SECONDS", 10.0)
# ...and one not saved for this long was orphaned: the beat task marks it failed.
CHAT_STALE_REPLY_SECONDS = env_int("CHAT_STALE_REPLY_SECONDS", 60)
# Each web process says it is alive (Redis) and looks for replies left streaming by
# web processes that are gone this often, and once as it starts (live/liveness.py).
CHAT_LIVENESS_SECONDS = env_float("CHAT_LIVENESS_SECONDS", 5.0)

# --- Metrics (Prometheus) -------------------------------------------------------
# /metrics answers staff, and requests with "Authorization: Bearer <METRICS_TOKEN>".
METRICS_TOKEN = env_str("METRICS_TOKEN", "")
# Set: processes sharing this folder are counted together (several Uvicorn workers,
# a Celery worker's pool); prometheus_client reads the variable itself too.
PROMETHEUS_MULTIPROC_DIR = env_str("PROMETHEUS_MULTIPROC_DIR", "")
# A Celery worker serves its own metrics on this port (0: none), at this address.
WORKER_METRICS_PORT = env_int("WORKER_METRICS_PORT", 0)
WORKER_METRICS_HOST = env_str("WORKER_METRICS_HOST", "127.0.0.1")

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file, not memory, so a test ASGI server in another process shares it.
    DATABASES["default"]["TEST"] = {"NAME": str(DATA_DIR / "test.sqlite3")}

# django-celery-beat copies these into its tables at start; edit them in the admin.
CELERY_BEAT_SCHEDULE = {
    "fail-stale-replies": {"task": "chat.fail_stale_replies", "schedule": 60.0},
}

# --- Feedback -------------------------------------------------------------------
# Ratings from users that staff marked trusted skip the review queue.
FEEDBACK_AUTO_APPROVE_TRUSTED = env_bool("FEEDBACK_AUTO_APPROVE_TRUSTED", True)
# At most this many ratings per user per day count toward training (by time rated).
FEEDBACK_DAILY_TRAINING_CAP = env_int("FEEDBACK_DAILY_TRAINING_CAP", 50)

# --- Arena ---------------------------------------------------------------------
# With N > 0, a run's candidate that passes the gate is not promoted at once: it
# stays a candidate, the arena sets it against its parent, and once N votes
# between the two exist the tick promotes it, unless it loses (its win share's
# 95% interval below one half), when it is rejected. 0: promote at once.
ARENA_GATE_VOTES = env_int("ARENA_GATE_VOTES", 0)
# Resamples behind the leaderboard's bootstrap 95% intervals.
ARENA_BOOTSTRAP_SAMPLES = env_int("ARENA_BOOTSTRAP_SAMPLES", 1000)

# --- Retraining -----------------------------------------------------------------
# Documents (chat with your files): uploads, their passages and each owner's index.
DOCUMENTS_DIR = Path(env_str("DOCUMENTS_DIR", str(DATA_DIR / "documents")))
DOCUMENTS_MAX_UPLOAD_BYTES = env_int("DOCUMENTS_MAX_UPLOAD_BYTES", 10 * 1024 * 1024)
# A local sentence-transformers folder (or a hub id cached here) makes retrieval
# hybrid: BM25 plus vectors, fused by reciprocal rank. Empty: BM25 alone.
DOCUMENTS_EMBEDDING_MODEL = env_str("DOCUMENTS_EMBEDDING_MODEL", "")
DOCUMENTS_CHUNK_CHARS = env_int("DOCUMENTS_CHUNK_CHARS", 800)
DOCUMENTS_CHUNK_OVERLAP = env_int("DOCUMENTS_CHUNK_OVERLAP", 120)
# Passages retrieved per message, and the most of the prompt they may take
# when the history needs the rest.
DOCUMENTS_TOP_K = env_int("DOCUMENTS_TOP_K", 5)
DOCUMENTS_CONTEXT_SHARE = env_float("DOCUMENTS_CONTEXT_SHARE", 0.5)
DOCUMENTS_INDEX_TIME_LIMIT = env_int("DOCUMENTS_INDEX_TIME_LIMIT", 15 * 60)
# A document silent this long while indexing lost its task (the hard time limit has
# passed): beat queues it again, and a document that stopped this many times fails.
DOCUMENTS_STALE_SECONDS = env_int("DOCUMENTS_STALE_SECONDS", DOCUMENTS_INDEX_TIME_LIMIT + 120)
DOCUMENTS_MAX_ATTEMPTS = env_int("DOCUMENTS_MAX_ATTEMPTS", 3)

MODEL_VERSIONS_DIR = Path(env_str("MODEL_VERSIONS_DIR", str(DATA_DIR / "versions")))
# Beat's tick starts a run once this much new approved feedback (ratings + pairs) arrived.
# A failed run's feedback is retried by the next ticks, at most this many times in a row.
TRAINING_MAX_RETRIES = env_int("TRAINING_MAX_RETRIES", 2)
TRAINING_MIN_NEW_FEEDBACK = env_int("TRAINING_MIN_NEW_FEEDBACK", 20)
TRAINING_MIN_EXAMPLES = env_int("TRAINING_MIN_EXAMPLES", 8)
# With this many pairs a reward model is trained; if it passes its own held-out
# evaluation, runs add an online RL stage (RLOO) against it.
TRAINING_MIN_REWARD_PAIRS = env_int("TRAINING_MIN_REWARD_PAIRS", 32)
# "" lets the data choose (pairs -> DPO, mostly thumbs -> KTO); or dpo / kto / online_rl.
TRAINING_METHOD = env_str("TRAINING_METHOD", "")
TRAINING_EVAL_FRACTION = env_float("TRAINING_EVAL_FRACTION", 0.25)
TRAINING_TICK_SECONDS = env_float("TRAINING_TICK_SECONDS", 300.0)
# A run whose heartbeat is older than this is taken as dead (worker killed).
TRAINING_HEARTBEAT_TIMEOUT = env_int("TRAINING_HEARTBEAT_TIMEOUT", 120)
TRAINING_TIME_LIMIT = env_int("TRAINING_TIME_LIMIT", 3 * 3600)
# Knobs of the training jobs and the gate. Their defaults live once, in their
# dataclasses (llm/training/config.py, llm/evaluation/thresholds.py); any field
# is set as PREFIX + its name in capitals: TRAINING_MAX_STEPS=32,
# TRAINING_LEARNING_RATE=5e-5, TRAINING_RL_MAX_STEPS=4 (online RL), GATE_MAX_LENGTH_RATIO=1.8,
# GATE_MIN_REWARD_ACCURACY=0.8. training/knobs.py builds the dataclasses.
TRAINING_KNOBS = env_knobs("TRAINING_")
TRAINING_RL_KNOBS = env_knobs("TRAINING_RL_")
GATE_KNOBS = env_knobs("GATE_")

CELERY_TASK_ROUTES = {"training.run": {"queue": "training"}}
CELERY_TASK_ANNOTATIONS = {
    "training.run": {
        "soft_time_limit": TRAINING_TIME_LIMIT,
        "time_limit": TRAINING_TIME_LIMIT + 300,
    },
    "documents.index": {
        "soft_time_limit": DOCUMENTS_INDEX_TIME_LIMIT,
        "time_limit": DOCUMENTS_INDEX_TIME_LIMIT + 60,
    },
}
CELERY_BEAT_SCHEDULE["documents-requeue-stale"] = {
    "task": "documents.requeue_stale",
    "schedule": 60.0,
}
CELERY_BEAT_SCHEDULE["training-tick"] = {
    "task": "training.tick",
    "schedule": TRAINING_TICK_SECONDS,
}
