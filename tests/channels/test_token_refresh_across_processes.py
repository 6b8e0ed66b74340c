"""Workers in different processes meeting a channel's expired access token at the same moment
refresh it once between them. Refresh tokens are single-use, so a second trade is refused, and
the run that made it used to fail asking staff to reconnect a shop that was fine.

Each worker builds its own adapter from the channel's row (`adapter_for`), as a stock push and an
order download in two worker processes do. The refresh holds the row's lock for the whole
exchange: the later worker waits for it, finds the stale token replaced in the row, and adopts
the stored tokens without calling the marketplace. Every marketplace whose tokens refresh, over
real HTTP against its emulator, whose refresh tokens work once.
"""

import threading
import time
from collections.abc import Callable

import pytest
from django.db import connection

from channels.adapters.base import CredentialsError
from channels.credentials_store import credentials_of
from channels.emulators.base import Emulator, Reply, Request
from channels.marketplaces import BY_KIND, KINDS
from channels.models import Channel
from channels.services import adapter_for
from tests.channels.test_contract import connect, token_calls

REFRESHING = [kind for kind in KINDS if BY_KIND[kind].refreshes_tokens]
WAIT_SECONDS = 10.0  # for the second worker to reach the row's lock; generous for slow CI


@pytest.fixture(params=REFRESHING)
def kind(request) -> str:
    return request.param


def tokens(credentials) -> tuple[str, str]:
    return credentials["access_token"], credentials["refresh_token"]


def stored_tokens(channel_id: int) -> tuple[str, str]:
    return tokens(credentials_of(Channel.objects.get(pk=channel_id)))


def hold_token_calls(emulator: Emulator, until: threading.Event, monkeypatch) -> None:
    """Make the token endpoint answer only once `until` is set (WAIT_SECONDS at most). Held
    before the emulator's lock, so its other endpoints answer meanwhile."""
    handle: Callable[[Request], Reply] = emulator.handle

    def held(request: Request) -> Reply:
        if "token" in request.path:
            until.wait(timeout=WAIT_SECONDS)
        return handle(request)

    monkeypatch.setattr(emulator, "handle", held)


def a_session_waits_for_a_lock() -> bool:
    """Whether another session of this database comes to wait for a lock within WAIT_SECONDS
    (here only the workers' locking read of the channel's row can). This session runs in
    autocommit, so every look is fresh."""
    deadline = time.monotonic() + WAIT_SECONDS
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock'"
            )
            if cursor.fetchone()[0]:
                return True
            time.sleep(0.02)
    return False


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_processes_meeting_the_expired_token_at_once_refresh_it_once(
    kind, emulator, monkeypatch
):
    # given: a channel whose access token has expired, and a token endpoint that answers only
    # once a worker waits for the channel's row (or after WAIT_SECONDS: nobody waited)
    channel = connect(kind, emulator)
    emulator.expire_access_tokens()
    answer = threading.Event()
    hold_token_calls(emulator, answer, monkeypatch)
    built = threading.Barrier(2, timeout=WAIT_SECONDS)
    used: list[str] = []
    errors: list[BaseException] = []

    def worker() -> None:  # a process: its own adapter from the row, its own connection
        try:
            adapter = adapter_for(Channel.objects.get(pk=channel.pk))
            built.wait()
            adapter.check_credentials()
            used.append(adapter.credentials.access_token.get_secret_value())
        except BaseException as exc:  # noqa: BLE001 - reported by the test thread
            errors.append(exc)
        finally:
            connection.close()

    # when: both call at once with the expired token
    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    waited = a_session_waits_for_a_lock()
    answer.set()
    for thread in threads:
        thread.join(timeout=60)

    # then: neither failed; one refresh reached the marketplace while the other worker waited
    # for the row, and the row and both workers hold the tokens it issued
    assert errors == []
    assert waited, "no worker waited for the other's refresh"
    assert token_calls(emulator) == 1
    assert stored_tokens(channel.pk) == tokens(emulator.credentials)
    assert used == [emulator.credentials["access_token"]] * 2


@pytest.mark.django_db
def test_a_process_whose_token_another_refreshed_adopts_the_stored_tokens(kind, emulator):
    # given: two workers' adapters built from the channel's row, then the access token expires
    channel = connect(kind, emulator)
    first, second = adapter_for(channel), adapter_for(channel)
    emulator.expire_access_tokens()

    # when: the first refreshes it; the second meets the expired token it still holds, and
    # the refresh token it holds is spent
    first.check_credentials()
    second.check_credentials()

    # then: the second took the tokens the first stored, without a refresh of its own
    assert token_calls(emulator) == 1
    assert stored_tokens(channel.pk) == tokens(emulator.credentials)
    assert tokens(second.credentials.as_dict()) == tokens(emulator.credentials)


@pytest.mark.django_db
def test_a_refused_refresh_stores_nothing_and_still_asks_to_reconnect(kind, emulator):
    # given: the access token expired and the marketplace no longer knows the refresh token
    channel = connect(kind, emulator)
    before = credentials_of(channel)
    emulator.expire_access_tokens()
    emulator.tokens.revoke(before["refresh_token"])

    # when / then: the refresh is refused, as it was before the row took part in it
    with pytest.raises(CredentialsError):
        adapter_for(channel).check_credentials()
    assert credentials_of(Channel.objects.get(pk=channel.pk)) == before
    assert token_calls(emulator) == 1
