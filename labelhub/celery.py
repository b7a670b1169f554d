"""The Celery app: queue `gpu` for Segment Anything's batch work (encoder, pre-segmentation), queue
`interactive` for clicks (decoding only, so a click never waits behind a batch), queue `cpu` for
geometry, imports and exports.

Workers: `celery -A labelhub worker -Q gpu --pool solo` on GPU machines,
`celery -A labelhub worker -Q interactive --pool threads --concurrency 2` for clicks (CPU cores: the
ONNX decoder) and `celery -A labelhub worker -Q cpu` elsewhere. Without CELERY_BROKER_URL every task
runs in-process.
"""

from __future__ import annotations

import os

from celery import Celery
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "labelhub.settings")

app = Celery("labelhub")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_queues = (Queue("cpu"), Queue("gpu"), Queue("interactive"))
# Routing by task name: a click's decoding is named `*.interactive.*`, every other task that touches
# a model on the accelerator `*.gpu.*`. The first matching pattern wins.
app.conf.task_routes = {
    "labelhub.*.interactive.*": {"queue": "interactive"},
    "labelhub.*.gpu.*": {"queue": "gpu"},
    "labelhub.*": {"queue": "cpu"},
}
# Periodic work (CELERY_BEAT_SCHEDULE in settings) runs under one `celery -A labelhub beat` per deployment.
app.autodiscover_tasks()
