from django.apps import AppConfig


class ProjectsConfig(AppConfig):
    name = "labelhub.projects"
    label = "projects"

    def ready(self) -> None:
        from labelhub.core.events import ORGANIZATION_DELETING, subscribe

        from .services import on_organization_deleting

        subscribe(ORGANIZATION_DELETING, on_organization_deleting, in_transaction=True)
