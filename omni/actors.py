"""The actor of a change: on the foundation floor, so the API layer names it without importing
an app, and every app records it the same way."""

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Actor:
    """Who or what caused a change, as the ledger records it."""

    label: str = ""
    user_id: int | None = None

    @classmethod
    def of_user(cls, user) -> "Actor":
        if user is None or not getattr(user, "is_authenticated", False):
            return cls(label="anonymous")
        return cls(label=f"user:{user.get_username()}", user_id=user.pk)


# The actor of a change whose caller names none: the ledger records an empty label. One shared
# instance, as a default argument value (Actor is frozen).
NO_ACTOR = Actor()
