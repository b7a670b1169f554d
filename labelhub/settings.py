"""LabelHub settings: every value comes from an environment variable, read here and nowhere else.

With nothing set, LabelHub runs embedded: SQLite in ./var, media files in ./var/media and Celery tasks
executed in-process. Every variable is documented in the README's configuration table.
"""

from __future__ import annotations

import contextlib
import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else default


def env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    return float(value) if value not in (None, "") else default


def env_list(name: str, default: str = "", sep: str = ",") -> list[str]:
    return [item.strip() for item in env_str(name, default).split(sep) if item.strip()]


VAR_DIR = Path(env_str("LABELHUB_VAR_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("LABELHUB_DEBUG", False)
SECRET_KEY = env_str("LABELHUB_SECRET_KEY", "insecure-dev-key-set-LABELHUB_SECRET_KEY-in-production")
ALLOWED_HOSTS = env_list("LABELHUB_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver")
CSRF_TRUSTED_ORIGINS = env_list("LABELHUB_CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "knox",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "labelhub.core",
    "labelhub.accounts",
    "labelhub.projects",
    "labelhub.images",
    "labelhub.videos",
    "labelhub.labeling",
    "labelhub.tracking",
    "labelhub.predictions",
    "labelhub.qa",
    "labelhub.webhooks",
    "labelhub.learning",
    "labelhub.datasets",
    "labelhub.demo",
    "labelhub.app",
]

MIDDLEWARE = [
    # First, so that its `Server-Timing: app;dur=...` covers the whole stack (labelhub/core/timing.py).
    "labelhub.core.timing.ServerTimingMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Static files (the admin's, Swagger UI's, ReDoc's) from the application itself in every mode.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "labelhub.urls"
WSGI_APPLICATION = "labelhub.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'labelhub.sqlite3'}"),
        conn_max_age=env_int("LABELHUB_DB_CONN_MAX_AGE", 0),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    # Django's backend with connections kept open between requests (labelhub/core/sqlite/base.py).
    DATABASES["default"]["ENGINE"] = "labelhub.core.sqlite"
    # Concurrent writers (threaded dev server, in-process tasks) wait for the lock instead of failing:
    # IMMEDIATE transactions take the write lock up front, WAL lets readers go on meanwhile. In WAL mode
    # synchronous=NORMAL syncs at checkpoints, not at every commit (SQLite's advice for WAL): the
    # database stays consistent after a power cut, and the last commits before it may be lost.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": env_int("LABELHUB_PASSWORD_MIN_LENGTH", 10)},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# --- HTTPS deployment (behind a TLS-terminating proxy: set all of these; `check --deploy` is clean) ---
# The proxy's header that says the original request was HTTPS, e.g. "HTTP_X_FORWARDED_PROTO,https".
_proxy_ssl_header = env_list("LABELHUB_SECURE_PROXY_SSL_HEADER")
SECURE_PROXY_SSL_HEADER = tuple(_proxy_ssl_header) if len(_proxy_ssl_header) == 2 else None
SECURE_SSL_REDIRECT = env_bool("LABELHUB_SECURE_SSL_REDIRECT", False)
SECURE_HSTS_SECONDS = env_int("LABELHUB_SECURE_HSTS_SECONDS", 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("LABELHUB_SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("LABELHUB_SECURE_HSTS_PRELOAD", False)
SESSION_COOKIE_SECURE = env_bool("LABELHUB_SECURE_COOKIES", False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"

# The labeling app's page is cross-origin isolated (COOP `same-origin` plus this
# Cross-Origin-Embedder-Policy on the page; the decoder's thread workers start from a blob of their
# script, so static files need no headers of their own, wherever they are served from), so the
# browser's SAM decoder may run WebAssembly threads (SharedArrayBuffer). "credentialless" (default):
# cross-origin images such as S3 presigned URLs still load, sent without cookies; "require-corp": only
# resources that opt in with CORP or CORS; "" (off): no isolation, one decoder thread. Browsers without
# `credentialless` (Safari) ignore it and decode on one thread.
LABELHUB_APP_COEP = env_str("LABELHUB_APP_COEP", "credentialless")
if LABELHUB_APP_COEP not in ("", "credentialless", "require-corp"):
    raise ImproperlyConfigured("LABELHUB_APP_COEP is credentialless, require-corp or empty (off).")
# Threads of the browser's SAM decoder on an isolated page; 0: the browser's cores, at most 4. A page
# that is not isolated decodes on one.
LABELHUB_BROWSER_DECODE_THREADS = env_int("LABELHUB_BROWSER_DECODE_THREADS", 0)


STATIC_ROOT = Path(env_str("LABELHUB_STATIC_ROOT", str(VAR_DIR / "static")))
# Also serve straight from the apps' static folders, so the embedded demo needs no collectstatic.
WHITENOISE_USE_FINDERS = env_bool("LABELHUB_STATIC_USE_FINDERS", True)
with contextlib.suppress(OSError):  # WhiteNoise warns about a missing STATIC_ROOT on every start
    STATIC_ROOT.mkdir(parents=True, exist_ok=True)
LOGIN_URL = "/app/login/"

# --- storage -------------------------------------------------------------------------------------
MEDIA_URL = "media/"
MEDIA_ROOT = Path(env_str("LABELHUB_MEDIA_ROOT", str(VAR_DIR / "media")))
LABELHUB_STORAGE = env_str("LABELHUB_STORAGE", "filesystem")
if LABELHUB_STORAGE == "s3":
    _default_storage = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": env_str("LABELHUB_S3_BUCKET"),
            "endpoint_url": env_str("LABELHUB_S3_ENDPOINT_URL") or None,
            "region_name": env_str("LABELHUB_S3_REGION") or None,
            "access_key": env_str("LABELHUB_S3_ACCESS_KEY") or None,
            "secret_key": env_str("LABELHUB_S3_SECRET_KEY") or None,
            "file_overwrite": False,
        },
    }
else:
    _default_storage = {"BACKEND": "django.core.files.storage.FileSystemStorage"}
# How exports and image files stored on S3 reach the client: "redirect" (302 to a presigned URL, the
# bytes never pass through the API) or "proxy" (the API streams them, forwarding Range/If-Range to S3).
LABELHUB_S3_DOWNLOAD = env_str("LABELHUB_S3_DOWNLOAD", "redirect")
if LABELHUB_S3_DOWNLOAD not in {"redirect", "proxy"}:
    raise ImproperlyConfigured(f"LABELHUB_S3_DOWNLOAD is {LABELHUB_S3_DOWNLOAD!r}: use redirect or proxy.")
LABELHUB_S3_PRESIGN_SECONDS = env_int("LABELHUB_S3_PRESIGN_SECONDS", 300)
# The S3 endpoint as clients see it, when the API reaches S3 by an internal name (http://minio:9000):
# presigned URLs are signed for this host. Empty: LABELHUB_S3_ENDPOINT_URL.
LABELHUB_S3_PUBLIC_ENDPOINT_URL = env_str("LABELHUB_S3_PUBLIC_ENDPOINT_URL")
STORAGES = {
    "default": _default_storage,
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# --- media limits --------------------------------------------------------------------------------
LABELHUB_MAX_UPLOAD_BYTES = env_int("LABELHUB_MAX_UPLOAD_BYTES", 50 * 1024 * 1024)
LABELHUB_MAX_IMAGE_PIXELS = env_int("LABELHUB_MAX_IMAGE_PIXELS", 100_000_000)
LABELHUB_MAX_FILES_PER_UPLOAD = env_int("LABELHUB_MAX_FILES_PER_UPLOAD", 100)
# Gigapixel images (slides, aerial scenes): an image over LABELHUB_MAX_IMAGE_PIXELS imported from a
# server folder is stored with a tile pyramid (libvips) when it is within these limits; checked from the
# file's size and header before any pixel is decoded. Uploads keep the ordinary limits.
LABELHUB_MAX_PYRAMID_PIXELS = env_int("LABELHUB_MAX_PYRAMID_PIXELS", 20_000_000_000)
LABELHUB_MAX_PYRAMID_BYTES = env_int("LABELHUB_MAX_PYRAMID_BYTES", 8 * 1024**3)
# Tile side of built pyramids and of the Deep Zoom tiles served (pixels).
LABELHUB_PYRAMID_TILE = env_int("LABELHUB_PYRAMID_TILE", 256)
# Everything mode on a pyramid runs tile by tile at a level whose long side is at most this.
LABELHUB_PYRAMID_PRESEGMENT_MAX_SIDE = env_int("LABELHUB_PYRAMID_PRESEGMENT_MAX_SIDE", 8192)
# Side of the tiles (with their overlap) that everything mode runs on for pyramids.
LABELHUB_PYRAMID_PRESEGMENT_TILE = env_int("LABELHUB_PYRAMID_PRESEGMENT_TILE", 1024)
LABELHUB_PYRAMID_PRESEGMENT_OVERLAP = env_int("LABELHUB_PYRAMID_PRESEGMENT_OVERLAP", 128)
# Pre-labels of a pyramid by a project model: the network runs at full resolution in tiles of this side
# (plus context around each, see workers/train/tiled.py), neighbours sharing this overlap; the image's
# mean and deviation are read from its level with a long side of at most the stats side.
LABELHUB_PYRAMID_PRELABEL_TILE = env_int("LABELHUB_PYRAMID_PRELABEL_TILE", 1024)
LABELHUB_PYRAMID_PRELABEL_OVERLAP = env_int("LABELHUB_PYRAMID_PRELABEL_OVERLAP", 64)
LABELHUB_PYRAMID_PRELABEL_STATS_SIDE = env_int("LABELHUB_PYRAMID_PRELABEL_STATS_SIDE", 2048)
# A click on a pyramid segments the view window read at most this many pixels on its long side.
LABELHUB_PYRAMID_WINDOW_MAX_SIDE = env_int("LABELHUB_PYRAMID_WINDOW_MAX_SIDE", 1024)
LABELHUB_MAX_IMPORT_FILES = env_int("LABELHUB_MAX_IMPORT_FILES", 10_000)
LABELHUB_IMPORT_ROOTS = [Path(p).resolve() for p in env_list("LABELHUB_IMPORT_ROOTS", sep=os.pathsep)]
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("LABELHUB_MAX_REQUEST_BYTES", 20 * 1024 * 1024)
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
DATA_UPLOAD_MAX_NUMBER_FILES = LABELHUB_MAX_FILES_PER_UPLOAD + 1
# Deepest nesting of arrays/objects accepted in a JSON body or an imported JSON file.
LABELHUB_MAX_JSON_DEPTH = env_int("LABELHUB_MAX_JSON_DEPTH", 64)
# Points per interactive segmentation prompt.
LABELHUB_MAX_PROMPT_POINTS = env_int("LABELHUB_MAX_PROMPT_POINTS", 100)

# --- labeling workflow ---------------------------------------------------------------------------
# A member's saves of one task within this many seconds of their previous save fold into one revision
# (labelhub/labeling/annotations.py); 0 makes every save a revision.
LABELHUB_REVISION_BURST_SECONDS = env_int("LABELHUB_REVISION_BURST_SECONDS", 60)
LABELHUB_LEASE_SECONDS = env_int("LABELHUB_LEASE_SECONDS", 30 * 60)
# A gap between two heartbeats (or the last heartbeat and submit) counts as active time up to this long.
LABELHUB_ACTIVE_GAP_SECONDS = env_int("LABELHUB_ACTIVE_GAP_SECONDS", 120)
# How often the periodic cleanup returns expired leases to the queue (Celery beat), in seconds.
LABELHUB_LEASE_SWEEP_SECONDS = env_int("LABELHUB_LEASE_SWEEP_SECONDS", 60)
# Webhooks: attempts per delivery, first retry delay (doubling each time), request timeout.
LABELHUB_WEBHOOK_MAX_ATTEMPTS = env_int("LABELHUB_WEBHOOK_MAX_ATTEMPTS", 5)
LABELHUB_WEBHOOK_RETRY_SECONDS = env_int("LABELHUB_WEBHOOK_RETRY_SECONDS", 30)
LABELHUB_WEBHOOK_TIMEOUT_SECONDS = env_float("LABELHUB_WEBHOOK_TIMEOUT_SECONDS", 10.0)
# How often `celery beat` queues again the pending deliveries that are due (their message lost with a
# broker restart or a killed worker). A delivery being attempted is claimed for this long (a few
# request timeouts): an attempt whose worker died is taken up again once the claim is older than that.
LABELHUB_WEBHOOK_SWEEP_SECONDS = env_int("LABELHUB_WEBHOOK_SWEEP_SECONDS", 60)
LABELHUB_WEBHOOK_CLAIM_SECONDS = env_int(
    "LABELHUB_WEBHOOK_CLAIM_SECONDS", int(3 * LABELHUB_WEBHOOK_TIMEOUT_SECONDS) + 30
)
# Webhook URLs that resolve to loopback, private, link-local or otherwise non-public addresses are
# refused (at creation and again before each delivery) unless this is on: a webhook must not turn
# the server into a proxy into its own network (SSRF).
LABELHUB_WEBHOOK_ALLOW_PRIVATE = env_bool("LABELHUB_WEBHOOK_ALLOW_PRIVATE", False)

# --- model services: Label Studio ML backends (issue 26) ----------------------------------------------
# Model service URLs on non-public addresses (a GPU box on the LAN, a sidecar) need the operator's yes,
# as webhooks do; off by default like LABELHUB_WEBHOOK_ALLOW_PRIVATE, whose value it takes when unset.
LABELHUB_MODEL_SERVICE_ALLOW_PRIVATE = env_bool(
    "LABELHUB_MODEL_SERVICE_ALLOW_PRIVATE", LABELHUB_WEBHOOK_ALLOW_PRIVATE
)
# How model services reach LabelHub: the base of the signed image URLs in their tasks (and the
# `hostname` sent to /setup, which a backend's LABEL_STUDIO_URL stands for).
LABELHUB_PUBLIC_URL = env_str("LABELHUB_PUBLIC_URL", "http://127.0.0.1:8000").rstrip("/")
LABELHUB_MODEL_SERVICE_URL_SECONDS = env_int("LABELHUB_MODEL_SERVICE_URL_SECONDS", 900)  # signed image URLs
LABELHUB_MODEL_SERVICE_BATCH = env_int("LABELHUB_MODEL_SERVICE_BATCH", 8)  # tasks per /predict call
LABELHUB_MODEL_SERVICE_MAX_RESPONSE_BYTES = env_int("LABELHUB_MODEL_SERVICE_MAX_RESPONSE_BYTES", 64 * 1024 * 1024)
LABELHUB_MODEL_SERVICE_MAX_RESULTS = env_int("LABELHUB_MODEL_SERVICE_MAX_RESULTS", 500)  # per image
LABELHUB_MODEL_SERVICE_MAX_VERTICES = env_int("LABELHUB_MODEL_SERVICE_MAX_VERTICES", 20000)  # per image
LABELHUB_MODEL_SERVICE_MAX_MASK_BYTES = env_int("LABELHUB_MODEL_SERVICE_MAX_MASK_BYTES", 16 * 1024 * 1024)
LABELHUB_MODEL_SERVICE_MAX_ATTEMPTS = env_int("LABELHUB_MODEL_SERVICE_MAX_ATTEMPTS", 3)  # per image
LABELHUB_MODEL_SERVICE_RETRY_SECONDS = env_int("LABELHUB_MODEL_SERVICE_RETRY_SECONDS", 10)  # doubling
LABELHUB_MODEL_SERVICE_PAUSE_AFTER = env_int("LABELHUB_MODEL_SERVICE_PAUSE_AFTER", 5)  # failed calls in a row

# --- dataset export and import (issue 6) -------------------------------------------------------------
LABELHUB_EXPORT_CHUNK_SIZE = env_int("LABELHUB_EXPORT_CHUNK_SIZE", 500)  # rows read per database round trip
LABELHUB_EXPORT_TMP_DIR = env_str("LABELHUB_EXPORT_TMP_DIR")  # where archives are built; empty: system temp
LABELHUB_IMPORT_MAX_BYTES = env_int("LABELHUB_IMPORT_MAX_BYTES", 200 * 1024 * 1024)  # uploaded import file
LABELHUB_IMPORT_MAX_UNCOMPRESSED_BYTES = env_int("LABELHUB_IMPORT_MAX_UNCOMPRESSED_BYTES", 1024 * 1024 * 1024)

# --- video (issue 28) -------------------------------------------------------------------------------
# Refused before decoding (from the headers) and again while decoding (the real frame count).
LABELHUB_VIDEO_MAX_BYTES = env_int("LABELHUB_VIDEO_MAX_BYTES", 500 * 1024 * 1024)
LABELHUB_VIDEO_MAX_SECONDS = env_float("LABELHUB_VIDEO_MAX_SECONDS", 600.0)
LABELHUB_VIDEO_MAX_FRAMES = env_int("LABELHUB_VIDEO_MAX_FRAMES", 18_000)
LABELHUB_VIDEO_MAX_WIDTH = env_int("LABELHUB_VIDEO_MAX_WIDTH", 3840)
LABELHUB_VIDEO_MAX_HEIGHT = env_int("LABELHUB_VIDEO_MAX_HEIGHT", 2160)
LABELHUB_VIDEO_FRAME_QUALITY = env_int("LABELHUB_VIDEO_FRAME_QUALITY", 90)  # JPEG quality of stored frames
# A video is split into tasks of this many frames, consecutive tasks sharing LABELHUB_VIDEO_TASK_OVERLAP.
LABELHUB_VIDEO_TASK_FRAMES = env_int("LABELHUB_VIDEO_TASK_FRAMES", 300)
LABELHUB_VIDEO_TASK_OVERLAP = env_int("LABELHUB_VIDEO_TASK_OVERLAP", 5)
# Propagation: the most frames one request may carry a track, and how many frames are written per revision.
LABELHUB_VIDEO_PROPAGATE_MAX_FRAMES = env_int("LABELHUB_VIDEO_PROPAGATE_MAX_FRAMES", 300)
LABELHUB_VIDEO_PROPAGATE_CHUNK = env_int("LABELHUB_VIDEO_PROPAGATE_CHUNK", 10)
# SAM 2 for propagation: variant, official checkpoint and its SHA-256 (empty checkpoint: the optical-flow
# fallback serves, unless LABELHUB_SAM2_RANDOM_SEED builds random weights for tests and latency benchmarks).
LABELHUB_SAM2_VARIANT = env_str("LABELHUB_SAM2_VARIANT", "hiera_t")
LABELHUB_SAM2_CHECKPOINT = env_str("LABELHUB_SAM2_CHECKPOINT")
LABELHUB_SAM2_CHECKPOINT_SHA256 = env_str("LABELHUB_SAM2_CHECKPOINT_SHA256")
LABELHUB_SAM2_DEVICE = env_str("LABELHUB_SAM2_DEVICE", "cpu")
LABELHUB_SAM2_RANDOM_SEED = env_str("LABELHUB_SAM2_RANDOM_SEED")
LABELHUB_SAM2_IMAGE_SIZE = env_int("LABELHUB_SAM2_IMAGE_SIZE", 0)  # 0: the model's own (1024); tests use less

# --- Segment Anything ----------------------------------------------------------------------------
LABELHUB_SAM_MODEL = env_str("LABELHUB_SAM_MODEL", "vit_h")
LABELHUB_SAM_CHECKPOINT = env_str("LABELHUB_SAM_CHECKPOINT")  # empty: the classical backend serves
LABELHUB_SAM_CHECKPOINT_DIR = env_str("LABELHUB_SAM_CHECKPOINT_DIR", str(VAR_DIR / "checkpoints"))
LABELHUB_SAM_DEVICE = env_str("LABELHUB_SAM_DEVICE")  # empty: CUDA when present, else CPU
LABELHUB_SAM_COMPILE = env_bool("LABELHUB_SAM_COMPILE", False)
LABELHUB_SAM_BATCH_SIZE = env_int("LABELHUB_SAM_BATCH_SIZE", 8)
LABELHUB_SAM_RANDOM_SEED = env_str("LABELHUB_SAM_RANDOM_SEED")  # tests/benchmarks only: random weights
# What decodes SAM clicks: "onnx" (ONNX Runtime on CPU cores, ~2x faster than PyTorch there),
# "torch" (PyTorch on the model's device) or "auto": torch on a GPU, onnx on a CPU.
LABELHUB_SAM_DECODER = env_str("LABELHUB_SAM_DECODER", "auto")
LABELHUB_SAM_ONNX_THREADS = env_int("LABELHUB_SAM_ONNX_THREADS", 1)  # ONNX Runtime threads per click
LABELHUB_SAM_ONNX_DIR = env_str("LABELHUB_SAM_ONNX_DIR", str(VAR_DIR / "onnx"))  # exported decoders
LABELHUB_SAM_CROP_LAYERS = env_int("LABELHUB_SAM_CROP_LAYERS", 0)  # everything mode crop layers (SAM)
LABELHUB_SAM_CROP_POINTS_DOWNSCALE = env_int("LABELHUB_SAM_CROP_POINTS_DOWNSCALE", 1)
LABELHUB_PRESEGMENT_ON_UPLOAD = env_bool("LABELHUB_PRESEGMENT_ON_UPLOAD", True)
# The classical backend's everything mode on new images (off: labelers deleted 99.5% of its regions).
LABELHUB_CLASSICAL_EVERYTHING = env_bool("LABELHUB_CLASSICAL_EVERYTHING", False)
# Where interactive prompts are decoded: "api" (in the API process, from the cached embedding),
# "worker" (a round trip to a worker of the `interactive` queue, never behind batch work; needs
# CELERY_RESULT_BACKEND) or "auto": worker for SAM with a broker and a result backend, else api.
LABELHUB_INTERACTIVE_DECODER = env_str("LABELHUB_INTERACTIVE_DECODER", "auto")
LABELHUB_INTERACTIVE_TIMEOUT = env_float("LABELHUB_INTERACTIVE_TIMEOUT", 10.0)
LABELHUB_EMBEDDING_CACHE_SECONDS = env_int("LABELHUB_EMBEDDING_CACHE_SECONDS", 7 * 24 * 3600)
LABELHUB_EMBEDDING_PROCESS_LRU = env_int("LABELHUB_EMBEDDING_PROCESS_LRU", 16)
# A pending pre-segmentation older than this is taken as lost (worker killed) and queued again.
LABELHUB_PRESEGMENT_STALE_SECONDS = env_int("LABELHUB_PRESEGMENT_STALE_SECONDS", 15 * 60)
# pre-segmentation of an image whose long side is larger runs on a copy downscaled to this long side
LABELHUB_PRESEGMENT_MAX_SIDE = env_int("LABELHUB_PRESEGMENT_MAX_SIDE", 2048)

# --- Project models (labelhub/learning) ----------------------------------------------------------
LABELHUB_TRAIN_DEVICE = env_str("LABELHUB_TRAIN_DEVICE")  # empty: CUDA when present, else CPU
LABELHUB_TRAIN_THREADS = env_int("LABELHUB_TRAIN_THREADS", 0)  # torch CPU threads; 0: torch's default
LABELHUB_RETRAIN_SWEEP_SECONDS = env_int("LABELHUB_RETRAIN_SWEEP_SECONDS", 300)

# --- cache (embedding LRU) -----------------------------------------------------------------------
REDIS_URL = env_str("REDIS_URL")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- health -------------------------------------------------------------------------------------
# Seconds each readiness check (database, broker, storage) may take before it counts as failed.
LABELHUB_HEALTH_TIMEOUT_SECONDS = env_float("LABELHUB_HEALTH_TIMEOUT_SECONDS", 3.0)

# --- idempotent requests (labelhub.core.idempotency) ----------------------------------------
# Answers to requests sent with an Idempotency-Key header are kept this long (a resend within it gets the
# stored answer); `celery beat` deletes older ones every LABELHUB_IDEMPOTENCY_PURGE_SECONDS.
LABELHUB_IDEMPOTENCY_SECONDS = env_int("LABELHUB_IDEMPOTENCY_SECONDS", 24 * 3600)
LABELHUB_IDEMPOTENCY_PURGE_SECONDS = env_int("LABELHUB_IDEMPOTENCY_PURGE_SECONDS", 3600)

# --- Celery --------------------------------------------------------------------------------------
# No broker configured: the embedded default runs every task in-process, right after its commit.
CELERY_TASK_ALWAYS_EAGER = env_bool("LABELHUB_TASKS_EAGER", not env_str("CELERY_BROKER_URL"))
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL") or "memory://"
CELERY_TASK_EAGER_PROPAGATES = False
CELERY_RESULT_BACKEND = env_str("CELERY_RESULT_BACKEND") or None
CELERY_TASK_ACKS_LATE = True
# With acks_late a message is redelivered when its worker dies, once the broker's visibility timeout
# passes: longer than the longest task (an export or an import), or a running task would run twice.
LABELHUB_BROKER_VISIBILITY_SECONDS = env_int("LABELHUB_BROKER_VISIBILITY_SECONDS", 7200)
# max_retries 0: a publish on a connection that is down fails at once (kombu's default retries for ~2 s);
# the worker's own reconnecting is set apart (broker_connection_retry) and unaffected.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": LABELHUB_BROKER_VISIBILITY_SECONDS, "max_retries": 0}
# kombu's Redis transport with the closed-channel failure that stopped prefork workers when the broker
# went away turned into a connection error (labelhub/core/broker.py).
if CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    CELERY_BROKER_TRANSPORT = "labelhub.core.broker:Transport"
# Sends after a commit (core/queue.send_or_log) give up fast when the broker is down: the stored row is the
# record of the work and the sweeps queue it again. One connection attempt, bounded by this many seconds.
LABELHUB_BROKER_SEND_TIMEOUT_SECONDS = env_float("LABELHUB_BROKER_SEND_TIMEOUT_SECONDS", 0.5)
CELERY_BROKER_CONNECTION_TIMEOUT = LABELHUB_BROKER_SEND_TIMEOUT_SECONDS
# A running export or import stamps a heartbeat this often (a thread of its worker, through every phase);
# one with no heartbeat for LABELHUB_JOB_STALE_SECONDS is taken as lost (its worker died) and run again
# by the next sweep, however long a live run takes (see labelhub/core/jobs.py).
LABELHUB_JOB_HEARTBEAT_SECONDS = env_float("LABELHUB_JOB_HEARTBEAT_SECONDS", 10.0)
LABELHUB_JOB_STALE_SECONDS = env_int("LABELHUB_JOB_STALE_SECONDS", 120)
LABELHUB_JOB_SWEEP_SECONDS = env_int("LABELHUB_JOB_SWEEP_SECONDS", 300)
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "cpu"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
# How often celery beat runs the pre-segmentation sweep (images whose prediction was lost or failed).
LABELHUB_PRESEGMENT_SWEEP_SECONDS = env_int("LABELHUB_PRESEGMENT_SWEEP_SECONDS", 300)
CELERY_BEAT_SCHEDULE = {
    "labelhub-leases-expire": {
        "task": "labelhub.labeling.leases_expire",
        "schedule": float(LABELHUB_LEASE_SWEEP_SECONDS),
    },
    "labelhub-jobs-sweep": {
        "task": "labelhub.datasets.jobs_sweep",
        "schedule": float(LABELHUB_JOB_SWEEP_SECONDS),
    },
    "labelhub-presegment-sweep": {
        "task": "labelhub.predictions.presegment_sweep",
        "schedule": float(LABELHUB_PRESEGMENT_SWEEP_SECONDS),
    },
    "labelhub-retrain-sweep": {
        "task": "labelhub.learning.retrain_sweep",
        "schedule": float(LABELHUB_RETRAIN_SWEEP_SECONDS),
    },
    "labelhub-webhook-deliveries-sweep": {
        "task": "labelhub.webhooks.deliveries_sweep",
        "schedule": float(LABELHUB_WEBHOOK_SWEEP_SECONDS),
    },
    "labelhub-idempotency-purge": {
        "task": "labelhub.core.idempotency_purge",
        "schedule": float(LABELHUB_IDEMPOTENCY_PURGE_SECONDS),
    },
}

# --- accounts -------------------------------------------------------------------------------------
# Self-service sign-up (`POST auth/signup/`): off by default; accounts come from accepted invitations.
LABELHUB_SIGNUP_OPEN = env_bool("LABELHUB_SIGNUP_OPEN", False)
LABELHUB_INVITATION_DAYS = env_int("LABELHUB_INVITATION_DAYS", 7)
# Invitations go out by e-mail through Django's e-mail framework: SMTP when LABELHUB_EMAIL_HOST is set,
# otherwise the console backend (the message, with its accept link, is written to the server's log).
LABELHUB_EMAIL_HOST = env_str("LABELHUB_EMAIL_HOST")
EMAIL_BACKEND = env_str(
    "LABELHUB_EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend"
    if LABELHUB_EMAIL_HOST
    else "django.core.mail.backends.console.EmailBackend",
)
EMAIL_HOST = LABELHUB_EMAIL_HOST or "localhost"
EMAIL_PORT = env_int("LABELHUB_EMAIL_PORT", 587)
EMAIL_HOST_USER = env_str("LABELHUB_EMAIL_USER")
EMAIL_HOST_PASSWORD = env_str("LABELHUB_EMAIL_PASSWORD")
EMAIL_USE_TLS = env_bool("LABELHUB_EMAIL_USE_TLS", True)
EMAIL_USE_SSL = env_bool("LABELHUB_EMAIL_USE_SSL", False)
if EMAIL_USE_SSL:
    EMAIL_USE_TLS = False  # Django refuses both; implicit TLS (port 465) wins when asked for
EMAIL_TIMEOUT = env_int("LABELHUB_EMAIL_TIMEOUT", 10)
DEFAULT_FROM_EMAIL = env_str("LABELHUB_EMAIL_FROM", "LabelHub <labelhub@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
# The server's address as invitees reach it ("https://label.example.org"), for links in e-mails; empty:
# taken from the request that sends the invitation.
LABELHUB_PUBLIC_URL = env_str("LABELHUB_PUBLIC_URL").rstrip("/")
# API tokens (django-rest-knox): stored as SHA-512 digests, expiring this many hours after issue.
REST_KNOX = {
    "TOKEN_TTL": timedelta(hours=env_int("LABELHUB_TOKEN_TTL_HOURS", 24 * 7)),
    "AUTH_HEADER_PREFIX": "Token",
    "TOKEN_LIMIT_PER_USER": None,
    "AUTO_REFRESH": False,
}


def _rate(name: str, default: str) -> str | None:
    return env_str(name, default) or None  # empty: that throttle is off


# Request rates ("N/second|minute|hour|day"), counted in the shared cache (Redis in production):
# anonymous calls per client IP, writes per user, and tighter scopes for login, segment, upload, import.
LABELHUB_THROTTLE_RATES = {
    "anon": _rate("LABELHUB_THROTTLE_ANON", "60/minute"),
    "write": _rate("LABELHUB_THROTTLE_WRITE", "600/minute"),
    "login": _rate("LABELHUB_THROTTLE_LOGIN", "10/minute"),
    "segment": _rate("LABELHUB_THROTTLE_SEGMENT", "300/minute"),
    "upload": _rate("LABELHUB_THROTTLE_UPLOAD", "60/minute"),
    "import": _rate("LABELHUB_THROTTLE_IMPORT", "10/minute"),
}

# --- REST API ------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "labelhub.accounts.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": [
        "labelhub.core.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_THROTTLE_CLASSES": [
        "labelhub.core.throttles.AnonThrottle",
        "labelhub.core.throttles.WriteThrottle",
        "labelhub.core.throttles.ScopeThrottle",
    ],
    # Proxies in front of the API that append to X-Forwarded-For (0: the client is REMOTE_ADDR, and a
    # client-sent X-Forwarded-For cannot pick its own throttle bucket).
    "NUM_PROXIES": env_int("LABELHUB_NUM_PROXIES", 0),
    "DEFAULT_PAGINATION_CLASS": "labelhub.core.api.Pagination",
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_SCHEMA_CLASS": "labelhub.core.schema.AutoSchema",
    "EXCEPTION_HANDLER": "labelhub.core.errors.exception_handler",
    "PAGE_SIZE": 50,
    # NaN and Infinity parse, so that region validation can name the field that holds them.
    "STRICT_JSON": False,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "LabelHub API",
    "DESCRIPTION": "AI-assisted image-segmentation labeling: projects, images, tasks, annotations, "
    "reviews, predictions and dataset export.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI and ReDoc from the installed sidecar package: no page loads anything from another host.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "RoleEnum": "labelhub.accounts.models.Role",
        "RegionKindEnum": ["polygon", "mask"],
        "TaskStatusEnum": "labelhub.labeling.models.TaskStatus",
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LABELHUB_LOG_LEVEL", "INFO")},
    # In-process (eager) tasks would log a line per task over the demo's progress bars.
    "loggers": {
        "celery.app.trace": {"level": "WARNING" if CELERY_TASK_ALWAYS_EAGER else "INFO"},
        # libvips reports every thread pool it finishes at INFO
        "pyvips": {"level": "WARNING"},
    },
}
