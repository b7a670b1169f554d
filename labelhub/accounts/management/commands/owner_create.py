"""`manage.py owner_create`: the first owner of a fresh install without a browser (the first-run page
/app/setup/ does the same). The password is read from standard input (a prompt on a terminal), never
from the command line, where other users of the machine could read it."""

from __future__ import annotations

import getpass
import sys

from django.core.management.base import BaseCommand, CommandError

from labelhub.accounts.services import first_owner_create
from labelhub.core.errors import DomainError


class Command(BaseCommand):
    help = "Create the first owner (and their organization) of an install that has no account yet."

    def add_arguments(self, parser):
        parser.add_argument("--username", required=True)
        parser.add_argument("--organization", required=True, help="Name of the owner's organization.")
        parser.add_argument("--email", default="")

    def handle(self, *args, username: str, organization: str, email: str, **options):
        if sys.stdin.isatty():
            password = getpass.getpass("Password: ")
            if getpass.getpass("Password (again): ") != password:
                raise CommandError("The passwords differ.")
        else:
            password = sys.stdin.readline().rstrip("\n")
        try:
            user = first_owner_create(
                username=username, password=password, email=email, organization_name=organization
            )
        except DomainError as exc:
            raise CommandError(f"{exc.message} ({exc.field})" if exc.field else exc.message) from exc
        self.stdout.write(f"Owner {user.username} of {organization} created; sign in at /app/.")
