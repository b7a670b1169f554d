#!/bin/sh
# api | worker-cpu | worker-gpu | worker-interactive | beat | fetch-checkpoints | any manage.py command (`migrate --noinput`:
# the one-shot migrate service / Job that every other role waits for; the API does not migrate itself,
# so that several API replicas never race on a migration)
set -e
case "$1" in
  api)
    exec gunicorn labelhub.wsgi --bind 0.0.0.0:8000 --workers "${GUNICORN_WORKERS:-4}" --timeout 120
    ;;
  worker-cpu)
    exec celery -A labelhub worker -Q cpu --concurrency "${CELERY_CONCURRENCY:-4}" -n "cpu@%h" -l INFO
    ;;
  worker-gpu)
    # One process per GPU: the model is loaded once and the encoder batches across images.
    exec celery -A labelhub worker -Q gpu --pool solo -n "gpu@%h" -l INFO
    ;;
  worker-interactive)
    # Click decoding from cached embeddings (SAM's decoder under ONNX Runtime): never behind batch work.
    exec celery -A labelhub worker -Q interactive --pool threads --concurrency "${CELERY_CONCURRENCY:-2}" -n "interactive@%h" -l INFO
    ;;
  beat)
    # Exactly one per deployment: lease expiry and the pre-segmentation sweep.
    exec celery -A labelhub beat -l INFO --schedule /var/labelhub/celerybeat-schedule
    ;;
  fetch-checkpoints)
    exec python manage.py sam_checkpoints --download "${LABELHUB_SAM_MODEL:-vit_h}"
    ;;
  *)
    exec python manage.py "$@"
    ;;
esac
