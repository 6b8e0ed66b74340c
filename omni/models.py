"""Abstract bases shared by the apps, and the API tokens integrations authenticate with."""

from django.db import models
from django.utils import timezone


class TimeStampedModel(models.Model):
    created_at = models.DateTimeField(default=timezone.now, db_index=True, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


def created_at_unindexed() -> models.DateTimeField:
    """TimeStampedModel's created_at without its index, for the tables bulk writes fill (imports,
    scans): nothing lists or filters their rows by creation time, and each index costs every
    insert."""
    return models.DateTimeField(default=timezone.now, editable=False)


class ApiToken(TimeStampedModel):
    """A bearer token for the JSON API. Only a hash of the secret is kept.

    The plain token is shown once, when it is created (omni.auth.token_create); it cannot be
    recovered afterwards, only revoked and replaced. `prefix` is its first characters, enough for
    a person to tell tokens apart in the admin and in logs without revealing them.
    """

    class Scope(models.TextChoices):
        READ = "read", "Read (GET)"
        WRITE = "write", "Write (POST, PATCH, DELETE)"

    name = models.CharField(max_length=100, help_text="Who uses it, e.g. “ERP nightly sync”.")
    prefix = models.CharField(max_length=16, unique=True, editable=False)
    # sha256 of the whole token. The token carries 256 bits of randomness, so a fast hash is
    # enough: there is nothing to brute-force, unlike a password.
    secret_hash = models.CharField(max_length=64, unique=True, editable=False)
    scopes = models.JSONField(
        default=list, help_text="“read” allows GET; “write” allows everything else."
    )
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)
    # Refreshed at most once a minute (omni.auth), so authenticating is one read, not a write.
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["name", "pk"]
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    def allows(self, scope: str) -> bool:
        return scope in (self.scopes or [])


class IdempotentRequest(models.Model):
    """A write sent with an `Idempotency-Key` header, and the answer it got (omni.idempotency).

    A retry with the same key and the same request is answered again from here instead of being
    applied twice; keys belong to one token and are forgotten after KEEP_HOURS.
    """

    token = models.ForeignKey(ApiToken, models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    # sha256 of the method, path and body: the same key with another request is refused.
    fingerprint = models.CharField(max_length=64)
    status = models.PositiveSmallIntegerField()
    response = models.JSONField()
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["token", "key"], name="omni_idempotency_key_once")
        ]
        indexes = [models.Index(fields=["token", "created_at"], name="omni_idempotency_age")]

    def __str__(self) -> str:
        return self.key
