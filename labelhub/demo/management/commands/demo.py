"""`python manage.py demo`: a demo organization with a user of each role, a project, images imported and
pre-segmented through the worker path, then the development server. Everything is made through the
apps' services (as the API would); running it twice reuses the demo."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from labelhub.accounts import services as account_services
from labelhub.accounts.auth import token_issue
from labelhub.accounts.models import Organization, Role
from labelhub.core.errors import DomainError
from labelhub.core.queue import send_or_log
from labelhub.demo.photos import sample_photographs
from labelhub.images import services as image_services
from labelhub.images.models import Image
from labelhub.predictions.models import Prediction, PredictionStatus
from labelhub.projects import services as project_services

DEMO_ORGANIZATION = "Demo organization"
DEMO_PROJECT = "Demo project"
DEMO_SCHEMA = [
    {"name": "object", "color": "#e6194b", "kinds": ["polygon", "mask"]},
    {"name": "background-thing", "color": "#3cb44b", "kinds": ["polygon"]},
]


class Command(BaseCommand):
    help = "Create a demo organization, users, project and images, pre-segment them, and serve the API."

    def add_arguments(self, parser):
        parser.add_argument(
            "--images",
            type=Path,
            help="A folder of images to import (default: six photographs shipped with scikit-image).",
        )
        parser.add_argument("--limit", type=int, default=20, help="Import at most this many images.")
        parser.add_argument("--addr", default="127.0.0.1:8000", help="Address for the development server.")
        parser.add_argument("--no-serve", action="store_true", help="Set up and exit without serving.")

    def handle(self, *args, images: Path | None, limit: int, addr: str, no_serve: bool, **options):
        owner, tokens = self._users()
        org = Organization.objects.filter(
            name=DEMO_ORGANIZATION, memberships__user=owner, memberships__role=Role.OWNER
        ).first() or account_services.organization_create(name=DEMO_ORGANIZATION, owner=owner)
        for role in Role.values:
            if role != Role.OWNER and not org.memberships.filter(user__username=f"demo-{role}").exists():
                # everyone else joins the way users do: the owner invites, the invitee accepts
                _, secret = account_services.invitation_create(
                    organization=org,
                    actor_role=Role.OWNER,
                    invited_by=owner,
                    role=role,
                    username=f"demo-{role}",
                )
                account_services.invitation_accept(
                    token=secret, user=get_user_model().objects.get(username=f"demo-{role}")
                )
        project = org.projects.filter(name=DEMO_PROJECT).first() or project_services.project_create(
            organization_id=org.pk, user=owner, name=DEMO_PROJECT, label_schema=DEMO_SCHEMA
        )
        for role in (Role.ANNOTATOR, Role.REVIEWER):  # workers see only the projects they are members of
            project_services.project_member_add(
                project=project, user_id=get_user_model().objects.get(username=f"demo-{role}").id
            )

        files = self._files(images, limit)
        for incoming in tqdm(files, desc="import", unit="image"):
            try:
                # Pre-segmentation is queued below, one image at a time, so the bar shows it.
                image_services.images_add(project=project, files=[incoming], user=owner, presegment=False)
            except DomainError as exc:
                self.stderr.write(f"skipped {incoming.name}: {exc.message}")

        pending = list(
            Image.objects.filter(project=project)
            .exclude(predictions__status=PredictionStatus.OK)
            .values_list("id", flat=True)
        )
        refused = 0
        for image_id in tqdm(pending, desc="pre-segment", unit="image"):
            refused += not send_or_log("labelhub.predictions.gpu.presegment_images", [image_id])
        if refused:
            self.stderr.write(
                f"{refused} images could not be queued for pre-segmentation (broker unreachable; logged); "
                "the periodic pre-segmentation sweep queues them again."
            )
        ok = Prediction.objects.filter(image__project=project, status=PredictionStatus.OK)
        models = sorted(set(ok.values_list("model_name", flat=True)))

        self.stdout.write(self.style.SUCCESS("\nLabelHub demo is ready."))
        self.stdout.write(
            f"  project {project.id}: {project.images.count()} images, {ok.count()} pre-segmented by {models}"
        )
        if not settings.CELERY_TASK_ALWAYS_EAGER:
            self.stdout.write("  (pre-segmentation was queued for the Celery `gpu` workers)")
        self.stdout.write(
            f"  App:      http://{addr}/app/  (users demo-annotator, demo-reviewer, demo-manager; "
            "password demo-<role>-password)"
        )
        self.stdout.write(f"  API:      http://{addr}/api/v1/")
        self.stdout.write(f"  Swagger:  http://{addr}/api/schema/swagger-ui/")
        self.stdout.write(
            f"  Admin:    http://{addr}/admin/  (user demo-owner, password demo-owner-password)"
        )
        self.stdout.write("  API tokens (header 'Authorization: Token <key>'):")
        for role, key in tokens.items():
            self.stdout.write(f"    {role:<10} demo-{role:<10} {key}")
        self.stdout.write(
            f"  Try: curl -H 'Authorization: Token {tokens['annotator']}' http://{addr}/api/v1/tasks/"
        )
        if not no_serve:
            call_command("runserver", addr, use_reloader=False)

    def _users(self):
        """The demo users (demo-<role>, password demo-<role>-password) and their API tokens."""
        User = get_user_model()
        tokens = {}
        for role in Role.values:
            username = f"demo-{role}"
            user = User.objects.filter(username=username).first()
            if user is None:
                user = User.objects.create_user(
                    username=username,
                    password=f"{username}-password",
                    is_staff=role in (Role.OWNER, Role.MANAGER),
                    is_superuser=role == Role.OWNER,
                )
            tokens[role] = token_issue(user=user)[1]
        return User.objects.get(username="demo-owner"), tokens

    def _files(self, folder: Path | None, limit: int) -> list[image_services.IncomingFile]:
        if folder is None:
            return [image_services.IncomingFile(name=n, data=d) for n, d in sample_photographs(min(limit, 6))]
        if not folder.is_dir():
            raise CommandError(f"--images {folder} is not a folder")
        paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in image_services.IMPORT_SUFFIXES)[
            :limit
        ]
        return [image_services.IncomingFile(name=p.name, path=p) for p in paths]
