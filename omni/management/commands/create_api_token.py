"""`python manage.py create_api_token NAME --scopes read,write`: print a new API token once."""

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from omni.auth import token_create


class Command(BaseCommand):
    help = (
        "Create an API token for an integration and print it. The token is shown this once "
        "(only its hash is kept), alone on the last line, so scripts can capture it with "
        "`tail -n 1`."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", help="Who uses the token, e.g. 'ERP nightly sync'.")
        parser.add_argument(
            "--scopes",
            default="read",
            help="Comma-separated: read (GET), write (POST, PATCH, DELETE). Default: read.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            token, plain = token_create(name=options["name"], scopes=options["scopes"])
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from None
        self.stderr.write(
            f"Created API token {token.prefix}… “{token.name}” with scopes "
            f"{', '.join(token.scopes)}. Store it now: it cannot be shown again."
        )
        self.stdout.write(plain)
