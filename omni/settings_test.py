"""Settings for the test suite: the real settings with fast hashing and tasks run inline."""

import os

os.environ.setdefault("DEBUG", "true")
os.environ.setdefault("SECRET_KEY", "test-only")

from .settings import *  # noqa: E402,F403
from .settings import Q_CLUSTER

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
Q_CLUSTER = {**Q_CLUSTER, "sync": True}  # async_task runs inline, in the caller's process
LOGGING = {"version": 1, "disable_existing_loggers": False}
OMNI_PUSH_BACKOFF_SECONDS = 0.0  # retry failed pushes on the next flush round
