from django.apps import AppConfig


class DemoConfig(AppConfig):
    """The `demo` management command (make demo): a demo organization, project and images, built
    through the services of the apps below it."""

    name = "labelhub.demo"
    label = "demo"
