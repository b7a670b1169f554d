"""Compute the quality samples of projects again from their stored history (after upgrading to the
release that introduced them, or after changing a project's quality bound)."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from labelhub.projects.models import Project
from labelhub.qa.samples import samples_rebuild


class Command(BaseCommand):
    help = "Rebuild the quality samples (metrics and quality report figures) of one or every project."

    def add_arguments(self, parser) -> None:
        parser.add_argument("project", nargs="*", type=int, help="Project ids (default: every project).")

    def handle(self, *args, project: list[int], **options) -> None:
        projects = Project.objects.filter(pk__in=project) if project else Project.objects.all()
        for p in projects.order_by("id"):
            written = samples_rebuild(project=p)
            self.stdout.write(f"project {p.pk}: {written} samples")
