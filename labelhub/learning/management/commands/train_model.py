"""Train a new version of a project's model in this process, with a progress bar."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from labelhub.core.errors import DomainError
from labelhub.projects.models import Project

from ...services import training_request, version_train


class Command(BaseCommand):
    help = (
        "Train a model version on a project's accepted tasks here (not on the queue), showing epoch, "
        "loss and held-out metrics; then apply the promotion rule and print the result as JSON."
    )

    def add_arguments(self, parser):
        parser.add_argument("project", type=int, help="project id")
        parser.add_argument("--epochs", type=int)
        parser.add_argument("--steps-per-epoch", type=int)
        parser.add_argument("--minutes", type=float, help="wall-clock budget")
        parser.add_argument("--seed", type=int)
        parser.add_argument("--width", type=int)
        parser.add_argument("--heldout-fraction", type=float)
        parser.add_argument("--stuff", action="append", default=[], help="a stuff class (repeatable)")

    def handle(self, *args, **opts):
        project = Project.objects.filter(pk=opts["project"]).first()
        if project is None:
            raise CommandError(f"No project {opts['project']}.")
        keys = ("epochs", "steps_per_epoch", "minutes", "seed", "width", "heldout_fraction")
        options = {k: opts[k] for k in keys if opts.get(k) is not None}
        if opts["stuff"]:
            options["stuff_classes"] = opts["stuff"]
        try:
            job = training_request(project=project, options=options, enqueue=False)
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        version = job.version
        bar = tqdm(total=version.config.get("epochs", 40), unit="epoch", desc=version.prediction_model_name)

        def on_epoch(row: dict) -> None:
            bar.update(1)
            bar.set_postfix(loss=row["loss"], **{k[:4]: round(v, 3) for k, v in row["metrics"].items()})

        version = version_train(version_id=version.id, on_epoch=on_epoch)
        bar.close()
        out = {
            "id": version.id,
            "status": version.status,
            "metrics": version.metrics,
            "promotion": version.promotion,
        }
        self.stdout.write(json.dumps(out, indent=2))
