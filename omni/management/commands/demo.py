"""`python manage.py demo`: load the demo data, print a login, run the web server and the worker."""

import os
import secrets
import signal
import subprocess
import sys
import time
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand

from catalog.demo import demo_catalog_load


class Command(BaseCommand):
    help = (
        "Load the demo catalog (once), create or reset the admin login and print it, then run the "
        "web server and the django-q2 worker together until Ctrl-C stops both."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--addr", default="127.0.0.1:8000", help="Where the web server listens."
        )
        parser.add_argument("--products", type=int, default=300, help="Demo catalog size.")
        parser.add_argument(
            "--setup-only",
            action="store_true",
            help="Load data and print the login; serve nothing.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        summary = demo_catalog_load(products=options["products"])
        self.stdout.write(
            f"Demo catalog: {summary.products} products, {summary.variants} variants, "
            f"{summary.outlets} outlets."
        )
        if _has_command("setup_schedules"):
            call_command("setup_schedules", verbosity=0)
        password = self._reset_admin()
        url = f"http://{options['addr']}/admin/"
        self.stdout.write(
            self.style.SUCCESS(f"\nAdmin: {url}\n  username: admin\n  password: {password}\n")
        )
        if options["setup_only"]:
            return
        self._serve(options["addr"])

    def _reset_admin(self) -> str:
        password = os.environ.get("DEMO_PASSWORD") or secrets.token_urlsafe(9)
        user, _ = get_user_model().objects.get_or_create(
            username="admin", defaults={"email": "admin@example.com"}
        )
        user.is_staff = user.is_superuser = True
        user.set_password(password)
        user.save()
        return password

    def _serve(self, addr: str) -> None:
        manage = [sys.executable, "manage.py"]
        processes = [
            subprocess.Popen([*manage, "runserver", addr, "--noreload"]),
            subprocess.Popen([*manage, "qcluster"]),
        ]
        self.stdout.write("Web server and worker running. Ctrl-C stops both.")
        try:
            while all(p.poll() is None for p in processes):
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            for process in processes:
                if process.poll() is None:
                    process.send_signal(signal.SIGINT)
            for process in processes:
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
        self.stdout.write("Stopped.")


def _has_command(name: str) -> bool:
    from django.core.management import get_commands

    return name in get_commands()
