from django.apps import AppConfig


class DatasetsConfig(AppConfig):
    """Exports and imports. The app label stays `exports` (the package was `labelhub.exports`): its
    tables (`exports_export`, `exports_exportitem`) and migration history keep their names, so existing
    databases need no rename and a fresh database migrates from the same 0001."""

    name = "labelhub.datasets"
    label = "exports"
