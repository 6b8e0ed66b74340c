"""`python manage.py rotate_credentials_key`: re-encrypt every channel's credentials with the
newest key in OMNI_CREDENTIALS_KEYS."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from channels.credentials_store import credentials_reencrypt_all


class Command(BaseCommand):
    help = (
        "Re-encrypt every channel's stored credentials with the first (newest) key in "
        "OMNI_CREDENTIALS_KEYS. Put the new key first, keep the old ones after it, run this, "
        "then drop the old keys. Safe to re-run; fails, naming them, if some channel's "
        "credentials open with none of the keys."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        report = credentials_reencrypt_all()
        self.stdout.write(f"re-encrypted the credentials of {report.rewritten} channel(s)")
        if report.unreadable:
            raise CommandError(
                f"{len(report.unreadable)} channel(s) have credentials that no key in "
                f"OMNI_CREDENTIALS_KEYS decrypts, left as they are: "
                f"{', '.join(report.unreadable)}. Add the key they were encrypted with and run "
                "this again, or enter those channels' credentials again."
            )
