"""Channel credentials are encrypted at rest, keys rotate, and a lost key is a clear, local
failure: the channel named with what to do, every other channel working as before."""

import json
from datetime import timedelta
from io import StringIO

import pytest
from cryptography.fernet import Fernet, MultiFernet
from django.conf import settings
from django.core.exceptions import FieldError
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from catalog.models import Outlet
from channels.credentials_store import (
    CredentialsUnreadable,
    UnreadableCredentials,
    credentials_decrypt,
)
from channels.emulators.shopee import ShopeeEmulator
from channels.inventory import inventory_flush
from channels.models import Channel, Listing, PendingPush
from channels.services import adapter_for
from omni.auth import token_create
from synclogs import tasks as synclog_tasks
from tests.api.conftest import ApiClient
from tests.api.test_end_to_end import ok
from tests.factories import CHANNEL_FORM_RULES, VariantFactory

pytestmark = pytest.mark.django_db
OLD_KEY, NEW_KEY = Fernet.generate_key().decode(), Fernet.generate_key().decode()
SECRETS = ("partner_key", "access_token", "refresh_token")


@pytest.fixture
def api(db) -> ApiClient:
    return ApiClient(token_create(name="ERP", scopes="read,write")[1])


def stored_token(channel_id: int) -> str:
    """The column as the database holds it, past the model field."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT credentials FROM channels_channel WHERE id = %s", [channel_id])
        return cursor.fetchone()[0]


def connect(shop: ShopeeEmulator, name: str) -> Channel:
    outlet, _ = Outlet.objects.get_or_create(code="jkt", defaults={"name": "Jakarta"})
    return Channel.objects.create(
        kind="shopee",
        name=name,
        api_base_url=shop.base_url,
        credentials=shop.credentials,
        order_outlet=outlet,
    )


def scan(api, channel_id: int, capture) -> dict:
    with capture(execute=True):
        queued = ok(api.post(f"/api/channels/{channel_id}/scans", {"kind": "full"}), 202)
    return ok(api.get(f"/api/scans/{queued['id']}"))


def test_credentials_are_stored_encrypted_and_used_decrypted(
    api, django_capture_on_commit_callbacks
):
    with ShopeeEmulator(items=6, seed=11) as shop:
        # given: a channel connected through the API
        ok(api.post("/api/outlets", {"code": "jkt", "name": "Jakarta"}), 201)
        body = {
            "kind": "shopee",
            "name": "Shopee ID",
            "api_base_url": shop.base_url,
            "credentials": shop.credentials,
            "order_outlet": "jkt",
        }
        cid = ok(api.post("/api/channels", body), 201)["id"]

        # then: the database holds a token that only the configured keys open
        token = stored_token(cid)
        assert not any(str(shop.credentials[name]) in token for name in SECRETS)
        keys = MultiFernet([Fernet(k) for k in settings.OMNI_CREDENTIALS_KEYS])
        assert json.loads(keys.decrypt(token.encode())) == shop.credentials

        # when: the access token expires, so the scan refreshes it and stores the new pair
        old_access = shop.credentials["access_token"]
        shop.expire_access_tokens()
        scanned = scan(api, cid, django_capture_on_commit_callbacks)

        # then: the scan read the shop with the decrypted credentials, and the refreshed
        # tokens are stored encrypted too
        assert scanned["status"] == "succeeded", scanned["error"]
        assert scanned["seen"] == len(shop.listing_quantities())
        stored = Channel.objects.get(pk=cid).credentials
        assert stored["access_token"] == shop.credentials["access_token"] != old_access
        assert shop.credentials["access_token"] not in stored_token(cid)


def test_rotation_moves_every_channel_to_the_newest_key(api, django_capture_on_commit_callbacks):
    with ShopeeEmulator(items=3, seed=1) as one, ShopeeEmulator(items=4, seed=2) as two:
        # given: two channels stored under the old key
        with override_settings(OMNI_CREDENTIALS_KEYS=[OLD_KEY]):
            channels = [connect(one, "One"), connect(two, "Two")]
            empty = Channel.objects.create(
                kind="shopee", name="Not set up", order_outlet=channels[0].order_outlet
            )

        # when: the new key goes first, the old one stays to decrypt, and the command runs
        with override_settings(OMNI_CREDENTIALS_KEYS=[NEW_KEY, OLD_KEY]):
            out = StringIO()
            call_command("rotate_credentials_key", stdout=out)
            assert "re-encrypted the credentials of 3 channel(s)" in out.getvalue()
            call_command("rotate_credentials_key", stdout=StringIO())  # safe to re-run

        # then: the new key alone reads every channel, and the channels still work
        with override_settings(OMNI_CREDENTIALS_KEYS=[NEW_KEY]):
            for channel, shop in zip(channels, (one, two), strict=True):
                assert Channel.objects.get(pk=channel.pk).credentials == shop.credentials
                scanned = scan(api, channel.pk, django_capture_on_commit_callbacks)
                assert scanned["status"] == "succeeded", scanned["error"]
            assert Channel.objects.get(pk=empty.pk).credentials == {}
            assert stored_token(empty.pk) == ""


def test_a_channel_no_key_opens_fails_clearly_and_alone(
    api, admin_client, django_capture_on_commit_callbacks
):
    with ShopeeEmulator(items=3, seed=1) as lost_shop, ShopeeEmulator(items=4, seed=2) as shop:
        # given: one channel stored under a key that is no longer configured
        with override_settings(OMNI_CREDENTIALS_KEYS=[OLD_KEY]):
            lost = connect(lost_shop, "Lost Key Shop")
        with override_settings(OMNI_CREDENTIALS_KEYS=[NEW_KEY]):
            fine = connect(shop, "Fine Shop")
            lost.refresh_from_db()
            assert isinstance(lost.credentials, UnreadableCredentials)

            # then: using its credentials says which channel and what to do
            with pytest.raises(CredentialsUnreadable) as raised:
                adapter_for(lost)
            message = str(raised.value)
            assert "Lost Key Shop" in message
            assert "OMNI_CREDENTIALS_KEYS" in message
            assert "enter the channel's credentials again" in message

            # the admin lists it with the error and shows its page; nothing is a 500
            listing = admin_client.get(reverse("admin:channels_channel_changelist"))
            assert listing.status_code == 200
            assert escape(message) in listing.content.decode()
            page = admin_client.get(reverse("admin:channels_channel_change", args=[lost.pk]))
            assert page.status_code == 200
            assert escape(message) in page.content.decode()

            # the API lists and shows it, and answers its marketplace calls with the message
            assert ok(api.get(f"/api/channels/{lost.pk}"))["credentials_set"] is True
            assert len(ok(api.get("/api/channels"))["items"]) == 2
            download = api.post(f"/api/channels/{lost.pk}/orders/download", {"order_number": "1"})
            assert download.status_code == 502
            assert message in download.json()["detail"]
            pushed = api.client.post(
                f"/api/webhooks/{lost.pk}", b"{}", content_type="application/json"
            )
            assert pushed.status_code == 503

            # the worker's order download reports it as its result instead of crashing
            assert message in synclog_tasks.orders_download(lost.pk)

            # the other channel works as before
            scanned = scan(api, fine.pk, django_capture_on_commit_callbacks)
            assert scanned["status"] == "succeeded", scanned["error"]

            # saving the channel's other settings keeps what is stored, for the key's return
            data = {
                "kind": "shopee",
                "name": "Lost Key Shop",
                "api_base_url": lost_shop.base_url,
                "inventory_sync_mode": lost.inventory_sync_mode,
                "duplicate_sku_policy": lost.duplicate_sku_policy,
                "order_outlet": lost.order_outlet_id,
                "buffer": 2,
                "fulfillment_sync_minutes": 60,
                "is_active": "on",
                "new_credentials": "",
                **CHANNEL_FORM_RULES,
            }
            saved = admin_client.post(
                reverse("admin:channels_channel_change", args=[lost.pk]), data
            )
            assert saved.status_code == 302, saved.content.decode()[:2000]
            assert Channel.objects.get(pk=lost.pk).buffer == 2

            # the rotation command re-encrypts the rest and names the one it cannot
            with pytest.raises(CommandError, match="Lost Key Shop"):
                call_command("rotate_credentials_key", stdout=StringIO())

        with override_settings(OMNI_CREDENTIALS_KEYS=[NEW_KEY, OLD_KEY]):
            assert Channel.objects.get(pk=lost.pk).credentials == lost_shop.credentials

        # when: staff enter the credentials again instead
        with override_settings(OMNI_CREDENTIALS_KEYS=[NEW_KEY]):
            body = {"credentials": lost_shop.credentials}
            ok(api.patch(f"/api/channels/{lost.pk}", body))

            # then: the channel works again
            scanned = scan(api, lost.pk, django_capture_on_commit_callbacks)
            assert scanned["status"] == "succeeded", scanned["error"]


def test_a_data_dump_holds_tokens_not_credentials(shopee, tmp_path):
    # given: a channel, dumped
    channel = connect(shopee, "Shopee")
    dump = tmp_path / "channels.json"
    call_command("dumpdata", "channels.channel", output=str(dump))

    # then: the dump has the token, not the secrets
    assert shopee.credentials["partner_key"] not in dump.read_text()
    dumped = json.loads(dump.read_text())[0]["fields"]["credentials"]
    assert credentials_decrypt(dumped) == shopee.credentials

    # and loading it back restores the credentials
    Channel.objects.filter(pk=channel.pk).update(credentials={})
    call_command("loaddata", str(dump), verbosity=0)
    assert Channel.objects.get(pk=channel.pk).credentials == shopee.credentials


def test_credentials_cannot_be_filtered_on():
    with pytest.raises(FieldError, match="encrypted"):
        list(Channel.objects.filter(credentials={}))


@pytest.mark.django_db(transaction=True)
def test_the_migration_encrypts_existing_rows_and_reverses():
    executor = MigrationExecutor(connection)
    before = [("channels", "0005_scan_safety_valve")]
    latest = executor.loader.graph.leaf_nodes()
    plain = {"partner_id": 7, "partner_key": "k" * 32, "shop_id": 9, "access_token": "t" * 32}
    try:
        executor.migrate(before)
        old_apps = executor.loader.project_state(before).apps
        OldOutlet = old_apps.get_model("catalog", "Outlet")
        OldChannel = old_apps.get_model("channels", "Channel")
        outlet = OldOutlet.objects.create(code="jkt", name="Jakarta")
        set_up = OldChannel.objects.create(
            kind="shopee", name="Old", credentials=plain, order_outlet=outlet
        )
        unset = OldChannel.objects.create(kind="shopee", name="Unset", order_outlet=outlet)

        executor = MigrationExecutor(connection)
        executor.migrate([("channels", "0006_credentials_encrypted")])
        assert "k" * 32 not in stored_token(set_up.pk)
        assert stored_token(unset.pk) == ""

        executor = MigrationExecutor(connection)
        executor.migrate(latest)
        assert Channel.objects.get(pk=set_up.pk).credentials == plain
        assert Channel.objects.get(pk=unset.pk).credentials == {}

        executor = MigrationExecutor(connection)
        executor.migrate(before)
        old_apps = executor.loader.project_state(before).apps
        OldChannel = old_apps.get_model("channels", "Channel")
        assert OldChannel.objects.get(pk=set_up.pk).credentials == plain
    finally:
        MigrationExecutor(connection).migrate(latest)


def test_pushes_for_a_channel_no_key_opens_are_marked_failed_with_the_reason(shopee):
    # given: a real-time channel stored under a key no longer configured, with a push queued
    with override_settings(OMNI_CREDENTIALS_KEYS=[OLD_KEY]):
        lost = connect(shopee, "Lost Key Shop")
    listing = Listing.objects.create(
        channel=lost, item_id="1", variant_ref="", sku="TEE-1", variant=VariantFactory(sku="TEE-1")
    )
    now = timezone.now()
    PendingPush.objects.create(
        listing=listing, channel=lost, reason="manual", requested_at=now, next_attempt_at=now
    )
    with override_settings(OMNI_CREDENTIALS_KEYS=[NEW_KEY]):
        # when
        result = inventory_flush(channel_id=lost.pk)
    # then: the outbox row and the channel say why, and the row waits for the slow retry
    assert result.failed == 1
    push = PendingPush.objects.get(listing=listing)
    assert push.failed
    assert "Lost Key Shop" in push.last_error
    assert "OMNI_CREDENTIALS_KEYS" in Channel.objects.get(pk=lost.pk).last_error
    assert push.next_attempt_at > now + timedelta(minutes=30)
