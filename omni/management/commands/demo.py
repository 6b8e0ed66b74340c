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
from channels.demo import demo_channels_start
from omni.workers import MANAGE, STOP_GRACE_SECONDS, STOP_SIGNALS, StopRequest
from synclogs.demo import demo_orders_start


class Command(BaseCommand):
    help = (
        "Load the demo catalog (once), start an emulated shop for each marketplace and connect "
        "it as a channel, create or reset the admin login and print it, then run the web server "
        "and the django-q2 worker together until Ctrl-C stops both."
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
        parser.add_argument(
            "--no-channels", action="store_true", help="Skip the emulated marketplace shops."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            self._run(options)
        except KeyboardInterrupt:  # Ctrl-C while loading, before anything runs in the background
            self.stdout.write("\nInterrupted.")

    def _run(self, options: dict[str, Any]) -> None:
        summary = demo_catalog_load(products=options["products"])
        self.stdout.write(
            f"Demo catalog: {summary.products} products, {summary.variants} variants, "
            f"{summary.outlets} outlets."
        )
        call_command("setup_schedules", verbosity=0)
        shops = [] if options["no_channels"] else self._start_channels()
        password = self._reset_admin()
        url = f"http://{options['addr']}/admin/"
        self.stdout.write(
            self.style.SUCCESS(f"\nAdmin: {url}\n  username: admin\n  password: {password}\n")
        )
        try:
            if not options["setup_only"]:
                self._serve(options["addr"])
        finally:
            for stop in reversed(shops):
                stop()

    def _start_channels(self) -> list:
        """Start the emulated shops in this process; the callables that stop them."""
        stops = []
        for demo in demo_channels_start():
            scan = demo.scan
            self.stdout.write(
                f"{demo.channel.name}: {demo.emulator.base_url} — {scan.seen} listings, "
                f"{scan.matched} matched, {scan.not_in_pos} not in POS, "
                f"{scan.duplicates} duplicates"
            )
            stops.append(demo.emulator.stop)
            if demo.channel.kind == "shopee":
                orders = demo_orders_start(demo.emulator, demo.channel)
                logged = ", ".join(f"{n} × {status}" for status, n in orders.logged.items())
                self.stdout.write(
                    f"  streaming orders; {orders.backfilled} past orders loaded "
                    f"(sync log rows: {logged})"
                )
                stops.append(orders.stop)
        return stops

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
        """Run the web server and the worker until Ctrl-C or SIGTERM, then stop both.

        Each runs in a process group of its own, so a Ctrl-C reaches only this process, which
        then stops them with SIGTERM: the worker lets running tasks finish (at most
        STOP_GRACE_SECONDS), and neither prints a traceback for a signal caught mid-start.
        """
        request = StopRequest()
        for signum in STOP_SIGNALS:
            signal.signal(signum, request)
        web = _start("runserver", addr, "--noreload")
        worker = _start("worker")
        self.stdout.write("Web server and worker running. Ctrl-C stops both.")
        while not request.signum and web.poll() is None and worker.poll() is None:
            time.sleep(0.2)
        for name, process in (("web server", web), ("worker", worker)):
            if process.poll() is not None and not request.signum:
                self.stderr.write(f"The {name} exited with status {process.returncode}.")
        self.stdout.write("Stopping the web server and the worker…")
        for process in (web, worker):
            if process.poll() is None:
                process.terminate()
        _wait(web, timeout=5)
        _wait(worker, timeout=STOP_GRACE_SECONDS + 5)
        self.stdout.write("Stopped.")


def _start(*command: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(MANAGE), *command], process_group=0)  # noqa: S603


def _wait(process: subprocess.Popen, *, timeout: float) -> None:
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
