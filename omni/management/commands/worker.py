"""`python manage.py worker`: the django-q2 worker cluster, stopped cleanly by SIGTERM or Ctrl-C."""

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from omni.workers import RUNNING, STOP_GRACE_SECONDS, cluster_run


class Command(BaseCommand):
    help = (
        "Run the django-q2 worker cluster (use this instead of qcluster). SIGTERM or Ctrl-C "
        "stops it: it takes no new task, lets running tasks finish for up to --grace seconds, "
        "then kills what is still running; a signal to every process of the worker at once, as "
        "systemd sends it, stops it the same way."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--grace",
            type=float,
            default=STOP_GRACE_SECONDS,
            help="Seconds running tasks get to finish once a stop is asked for "
            f"(default {STOP_GRACE_SECONDS:g}); a stop never takes longer.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        settings.SECRET_KEY  # noqa: B018 - tasks are signed with it: fail now, not per task
        grace = max(0.0, options["grace"])

        def running(name: str) -> None:
            self.stdout.write(f"{RUNNING}: {name}. SIGTERM or Ctrl-C stops it within {grace:g} s.")
            self.stdout.flush()

        status = cluster_run(grace=grace, on_running=running)
        if status:
            raise SystemExit(status)
