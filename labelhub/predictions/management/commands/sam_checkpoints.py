"""`python manage.py sam_checkpoints`: list, download and verify the official Segment Anything
checkpoints. Downloads go to LABELHUB_SAM_CHECKPOINT_DIR and are kept only when their SHA-256 matches."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "List, download (--download vit_h ...) or verify (--verify PATH) official SAM checkpoints."

    def add_arguments(self, parser):
        parser.add_argument("--download", nargs="+", metavar="MODEL", help="vit_h, vit_l and/or vit_b")
        parser.add_argument(
            "--verify", metavar="PATH", help="Check a checkpoint file against the official hash."
        )
        parser.add_argument(
            "--model", default=None, help="Model type of --verify (default LABELHUB_SAM_MODEL)."
        )
        parser.add_argument(
            "--dir", default=None, help="Target folder (default LABELHUB_SAM_CHECKPOINT_DIR)."
        )
        parser.add_argument(
            "--url", default=None, help="Download from this mirror instead of the official URL."
        )

    def handle(self, *args, download, verify, model, dir, url, **options):
        from workers.sam import MODEL_SPECS, CheckpointError, download_checkpoint
        from workers.sam.registry import verify_checkpoint

        target = Path(dir or settings.LABELHUB_SAM_CHECKPOINT_DIR)
        if verify:
            model_type = model or settings.LABELHUB_SAM_MODEL
            try:
                sha = verify_checkpoint(model_type, verify)
            except (CheckpointError, ValueError) as exc:
                raise CommandError(str(exc)) from exc
            self.stdout.write(self.style.SUCCESS(f"{verify}: official {model_type} checkpoint, sha256 {sha}"))
            return
        if download:
            for model_type in download:
                if model_type not in MODEL_SPECS:
                    raise CommandError(f"unknown model {model_type!r}; choose from {sorted(MODEL_SPECS)}")
                self.stdout.write(f"downloading {model_type} to {target} ...")
                try:
                    path = download_checkpoint(model_type, target, url=url)
                except (CheckpointError, OSError) as exc:
                    raise CommandError(str(exc)) from exc
                self.stdout.write(self.style.SUCCESS(f"{path} verified"))
                self.stdout.write(f"  set LABELHUB_SAM_MODEL={model_type} LABELHUB_SAM_CHECKPOINT={path}")
            return
        for spec in MODEL_SPECS.values():
            here = target / spec.filename
            state = "present (run --verify to check it)" if here.is_file() else "not downloaded"
            self.stdout.write(f"{spec.model_type}: {spec.filename} sha256 {spec.sha256} - {state}")
