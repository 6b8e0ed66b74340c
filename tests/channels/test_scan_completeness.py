"""A full scan marks listings removed only once it has provably read the whole catalog.

Every marketplace, each over real HTTP against its emulator: a page answered empty or short
mid-catalog, or a connection dropped on the last page, fails the scan with a clear error and
removes nothing; items added and removed while the catalog is read are no such failure; a scan
that would remove more than the safety valve's share of the channel holds the removal until
staff confirm it; a listing found back on the channel has its stock pushed again.
"""

import math

import pytest
from django.test import Client
from django.urls import reverse

from catalog.services import stock_adjust
from channels.adapters import adapter_class
from channels.adapters.base import AdapterError
from channels.adapters.http import RetryPolicy
from channels.emulators import emulator_class
from channels.emulators.shop import ShopMix
from channels.marketplaces import KINDS
from channels.models import Channel, Listing, PendingPush, Scan
from channels.scans import LISTING_RETURNED, RemovalNotHeld, scan_confirm_removal, scan_request
from channels.scans import scan_run as scan_run_service
from omni.auth import token_create
from tests.channels.builders import shop_item
from tests.channels.conftest import FAST_RETRY
from tests.factories import OutletFactory, VariantFactory

pytestmark = pytest.mark.django_db

ITEMS = 250  # three pages or more on every marketplace
REMOVED = Listing.Status.REMOVED


@pytest.fixture(params=KINDS)
def kind(request) -> str:
    return request.param


@pytest.fixture
def catalog(kind):
    """A shop of ITEMS items without variants."""
    with emulator_class(kind)(items=ITEMS, seed=5, mix=ShopMix(variant_share=0.0)) as server:
        yield server


@pytest.fixture
def quick_retries(monkeypatch):
    """Retries without the production back-off: a dropped page is asked for again at once."""
    monkeypatch.setattr(RetryPolicy, "delay", lambda self, attempt, after, rng: 0.001)


def connect(kind: str, emulator, *, outlet=None) -> Channel:
    return Channel.objects.create(
        kind=kind,
        name=f"{kind} shop",
        api_base_url=emulator.base_url,
        credentials=emulator.credentials,
        order_outlet=outlet or OutletFactory(code="jkt"),
    )


def full_scan(channel: Channel) -> Scan:
    return scan_run_service(
        scan_id=scan_request(channel=channel, kind=Scan.Kind.FULL, enqueue=False).pk
    )


def present(channel: Channel) -> set[tuple[str, str]]:
    return set(
        Listing.objects.filter(channel=channel).present().values_list("item_id", "variant_ref")
    )


def last_page(kind: str) -> int:
    return math.ceil(ITEMS / adapter_class(kind).limits.page_size)


# --- an incomplete read ----------------------------------------------------------------------

INCOMPLETE_READS = [
    pytest.param("empty", 2, "empty while saying more follow", id="empty-page-mid-catalog"),
    pytest.param("short", 2, "asked for while saying more follow", id="short-page-mid-catalog"),
    pytest.param("drop", None, "connection", id="dropped-connection-on-the-last-page"),
]


@pytest.mark.parametrize(("fault", "page", "says"), INCOMPLETE_READS)
def test_an_incomplete_read_fails_the_full_scan_and_removes_nothing(
    kind, catalog, fault, page, says, quick_retries
):
    # given: a channel whose catalog was scanned in full
    channel = connect(kind, catalog)
    first = full_scan(channel)
    assert first.status == Scan.Status.SUCCEEDED, first.error
    before = present(channel)
    assert len(before) == ITEMS
    # when: one page of the next full scan comes back incomplete, every time it is asked for
    catalog.set_page_fault(fault, page=page or last_page(kind))
    scan = full_scan(channel)
    # then
    assert catalog.log.faults[f"page_{fault}"] >= 1
    assert scan.status == Scan.Status.FAILED
    assert says in scan.error
    assert "no listing was marked removed" in scan.error
    assert scan.removed == 0
    assert present(channel) == before
    assert not Listing.objects.filter(channel=channel, status=REMOVED).exists()
    channel.refresh_from_db()
    assert channel.last_scan_at == first.started_at  # the watermark stays where it was
    assert says in channel.last_error


def test_a_page_dropped_once_is_asked_for_again_and_the_scan_completes(
    kind, catalog, quick_retries
):
    channel = connect(kind, catalog)
    clean = full_scan(channel)
    catalog.set_page_fault("drop", page=2, times=1)
    # when
    scan = full_scan(channel)
    # then
    assert catalog.log.faults["page_drop"] == 1
    assert scan.status == Scan.Status.SUCCEEDED, scan.error
    assert (scan.seen, scan.removed) == (clean.seen, 0)


def test_items_added_and_removed_while_the_catalog_is_read_do_not_fail_the_read(kind, catalog):
    # given: a read under way, its first page received
    client = adapter_class(kind)(
        base_url=catalog.base_url, credentials=catalog.credentials, retry=FAST_RETRY
    )
    everything = {item for item, _variant in catalog.listing_quantities()}
    pages = client.iter_listing_pages()
    before = {lst.item_id for lst in next(pages)}
    # when: the seller adds three items, deletes two already read and one not read yet
    added = {str(catalog.put_item(shop_item(f"New Tee {n}", f"NEW-{n}"))) for n in range(3)}
    behind = sorted(before)[:2]
    ahead = max(everything - before, key=int)
    for item_id in [*behind, ahead]:
        catalog.remove_item(item_id)
    after = {lst.item_id for page in pages for lst in page}
    # then: the read completes, with what was added and without what went ahead of it; an
    # offset-paged marketplace may shift one entry behind the read for each deletion behind it
    assert added <= after
    assert ahead not in after
    unread = everything - before - after - {ahead}
    assert len(unread) <= len(behind)


def test_an_item_deleted_behind_a_full_scan_takes_no_other_listing_with_it(
    kind, catalog, monkeypatch
):
    # given: a channel whose first scan saw the whole shop, calling one at a time so the pages
    # are asked for in order
    channel = connect(kind, catalog)
    channel.max_concurrent_calls = 1
    channel.save()
    assert full_scan(channel).status == Scan.Status.SUCCEEDED
    everything = present(channel)
    first = next(iter(catalog.listing_quantities()))[0]
    # when: the next full scan runs and, as the marketplace answers for its second page, the
    # seller deletes the shop's first item, already read: on a list paged by offset, every
    # later item moves up a place, and one slips out of the read
    listing_page = catalog.listing_page

    def deleting_first(page, entries):
        if page == 2 and first not in deleted:
            deleted.append(first)
            catalog.remove_item(first)
        return listing_page(page, entries)

    deleted: list[str] = []
    monkeypatch.setattr(catalog, "listing_page", deleting_first)
    scan = full_scan(channel)
    # then: no other listing is marked removed (the one that slipped out of the read was asked
    # for on its own); the deleted item, read before it went, goes at the next scan if not now
    assert deleted == [first]
    assert scan.status == Scan.Status.SUCCEEDED, scan.error
    others = {ref for ref in everything if ref[0] != first}
    assert {ref for ref in present(channel) if ref[0] != first} == others
    assert full_scan(channel).status == Scan.Status.SUCCEEDED
    assert present(channel) == others == set(catalog.listing_quantities())


def test_asked_item_by_item_a_marketplace_says_which_items_it_still_has(kind, catalog):
    # given: two items of the shop, the second then deleted by the seller
    client = adapter_class(kind)(
        base_url=catalog.base_url, credentials=catalog.credentials, retry=FAST_RETRY
    )
    kept, gone = list(dict.fromkeys(item for item, _variant in catalog.listing_quantities()))[:2]
    catalog.remove_item(gone)
    # when
    confirmed = client.confirm_listings([kept, gone])
    # then: the kept item's listings as the list shows them, none of the deleted one's but as
    # removed; a marketplace read by cursor has nothing to confirm
    if confirmed is None:
        assert kind in ("tiktok_shop", "tokopedia", "shopify")
        return
    live = {(lst.item_id, lst.variant_id) for lst in confirmed if lst.status != REMOVED}
    assert live == {ref for ref in catalog.listing_quantities() if ref[0] == kept}


@pytest.mark.parametrize(
    ("retryable", "status", "removed"),
    [(False, Scan.Status.SUCCEEDED, True), (True, Scan.Status.FAILED, False)],
    ids=["refused-for-good", "failing-for-now"],
)
def test_a_marketplace_that_cannot_be_asked_for_unseen_items(
    retryable, status, removed, monkeypatch
):
    # given: a channel scanned once, then an item deleted on the marketplace, and the
    # marketplace answering the item-by-item question with an error
    with emulator_class("shopee")(items=30, seed=5) as shop:
        channel = connect("shopee", shop)
        assert full_scan(channel).status == Scan.Status.SUCCEEDED
        gone = next(iter(shop.listing_quantities()))[0]
        shop.remove_item(gone)

        def refused(self, item_ids):
            raise AdapterError("Shopee refused get_item_base_info", retryable=retryable)

        monkeypatch.setattr(adapter_class("shopee"), "confirm_listings", refused)
        # when
        scan = full_scan(channel)
    # then: refused for good, the removal goes ahead unconfirmed, as before the question, so
    # one such item cannot fail every later scan; failing for now, the scan fails and removes
    # nothing
    assert scan.status == status
    gone_listings = Listing.objects.filter(channel=channel, item_id=gone)
    assert gone_listings.exists()
    assert all((listing.status == REMOVED) == removed for listing in gone_listings)


# --- the safety valve ------------------------------------------------------------------------


def test_a_full_scan_that_would_remove_too_many_listings_waits_for_confirmation(
    kind, emulator, admin_client
):
    ids = [emulator.put_item(shop_item(f"Tee {n}", f"TEE-{n}")) for n in range(10)]
    channel = connect(kind, emulator)
    full_scan(channel)
    # when: one item of ten goes, within the valve's 20%
    emulator.remove_item(str(ids[0]))
    within = full_scan(channel)
    # then
    assert (within.status, within.removed) == (Scan.Status.SUCCEEDED, 1)
    # when: three of the remaining nine go (a third)
    for item_id in ids[1:4]:
        emulator.remove_item(str(item_id))
    held = full_scan(channel)
    # then: nothing is removed, the scan says why and waits
    assert held.status == Scan.Status.TO_CONFIRM
    assert (held.removed, held.removal_held) == (0, 3)
    assert "3 of the channel's 9 listings" in held.note
    assert len(present(channel)) == 9
    channel.refresh_from_db()
    assert channel.last_scan_at == held.started_at  # the read itself was complete
    page = admin_client.get(reverse("admin:channels_scan_changelist"))
    assert "Confirm removal of 3 listings" in page.content.decode()
    # when: staff confirm it
    url = reverse("admin:channels_scan_confirm_removal", args=[held.pk])
    assert "Confirm removal of 3 listings" in admin_client.get(url).content.decode()
    admin_client.post(url)
    # then
    held.refresh_from_db()
    assert (held.status, held.removed) == (Scan.Status.SUCCEEDED, 3)
    assert held.removal_confirmed_by == "admin"
    gone = set(
        Listing.objects.filter(channel=channel, status=REMOVED).values_list("item_id", flat=True)
    )
    assert gone == {str(item_id) for item_id in ids[:4]}


@pytest.fixture
def held():
    """A Shopee shop and channel whose last full scan holds the removal of 3 of its 5
    listings: (emulator, channel, item ids, scan)."""
    with emulator_class("shopee")(items=0, seed=4) as server:
        ids = [str(server.put_item(shop_item(f"Cup {n}", f"CUP-{n}"))) for n in range(5)]
        channel = connect("shopee", server)
        full_scan(channel)
        for item_id in ids[:3]:
            server.remove_item(item_id)
        scan = full_scan(channel)
        assert scan.status == Scan.Status.TO_CONFIRM
        yield server, channel, ids, scan


def test_a_held_removal_is_applied_once(held):
    *_, scan = held
    assert scan_confirm_removal(scan_id=scan.pk, confirmed_by="ana").removed == 3
    with pytest.raises(RemovalNotHeld):
        scan_confirm_removal(scan_id=scan.pk, confirmed_by="ana")
    assert Listing.objects.filter(status=REMOVED).count() == 3


def test_a_newer_full_scan_supersedes_a_held_removal(held):
    shop, channel, _ids, scan = held
    # when: the seller restocks the shop before anyone confirmed, and the next scan runs
    for n in range(13):
        shop.put_item(shop_item(f"Cup again {n}", f"CUP-A{n}"))
    newer = full_scan(channel)
    # then: it decides removals afresh; the old one can no longer be confirmed
    assert newer.status == Scan.Status.SUCCEEDED
    assert newer.removed == 3  # 3 of 5 + 13 listings: within the valve
    scan.refresh_from_db()
    assert scan.status == Scan.Status.SUCCEEDED
    assert f"Superseded by scan #{newer.pk}" in scan.note
    with pytest.raises(RemovalNotHeld):
        scan_confirm_removal(scan_id=scan.pk, confirmed_by="ana")


def test_listings_seen_again_since_the_held_scan_are_not_removed_on_confirmation(held):
    _shop, channel, ids, scan = held
    # given: one of the three missing listings was seen again by a later scan
    Listing.objects.filter(channel=channel, item_id=ids[0]).update(last_seen_at=scan.finished_at)
    # when
    done = scan_confirm_removal(scan_id=scan.pk, confirmed_by="ana")
    # then
    assert done.removed == 2
    assert Listing.objects.get(channel=channel, item_id=ids[0]).status != REMOVED


def test_the_channel_page_shows_the_held_removal(held, admin_client):
    _shop, channel, _ids, scan = held
    page = admin_client.get(reverse("admin:channels_channel_change", args=[channel.pk]))
    assert "did not see 3 of the channel&#x27;s 5 listings" in page.content.decode()
    assert "Confirm removal of 3 listings" in page.content.decode()


def test_staff_without_the_right_to_change_listings_cannot_confirm(held, django_user_model):
    *_, scan = held
    clerk = django_user_model.objects.create_user("clerk", password="x", is_staff=True)
    client = Client()
    client.force_login(clerk)
    client.post(reverse("admin:channels_scan_confirm_removal", args=[scan.pk]))
    scan.refresh_from_db()
    assert scan.status == Scan.Status.TO_CONFIRM
    assert not Listing.objects.filter(status=REMOVED).exists()


def test_the_api_confirms_a_held_removal(held):
    *_, scan = held
    token = token_create(name="ERP", scopes="read,write")[1]
    client = Client(headers={"Authorization": f"Bearer {token}"})
    # when
    answer = client.get(f"/api/scans/{scan.pk}")
    # then
    assert (answer.json()["status"], answer.json()["removal_held"]) == ("to_confirm", 3)
    confirmed = client.post(f"/api/scans/{scan.pk}/confirm-removal")
    assert confirmed.status_code == 200, confirmed.content
    assert (confirmed.json()["status"], confirmed.json()["removed"]) == ("succeeded", 3)
    assert client.post(f"/api/scans/{scan.pk}/confirm-removal").status_code == 409


# --- a listing that comes back ---------------------------------------------------------------


def test_a_listing_back_on_the_channel_gets_its_stock_pushed_again(
    kind, emulator, django_capture_on_commit_callbacks
):
    # given: two POS variants with 9 in stock, listed on the channel with 4
    outlet = OutletFactory(code="jkt")
    for sku in ("TEE-BLK-M", "TEE-WHT-M"):
        stock_adjust(variant_id=VariantFactory(sku=sku).pk, outlet_id=outlet.pk, delta=9)
    black = str(emulator.put_item(shop_item("Black Tee", "TEE-BLK-M")))
    white = str(emulator.put_item(shop_item("White Tee", "TEE-WHT-M")))
    channel = connect(kind, emulator, outlet=outlet)
    full_scan(channel)
    # ...and the black one was marked removed by an earlier, incomplete read
    Listing.objects.filter(channel=channel, item_id=black).update(status=REMOVED)
    # when: a clean full scan finds it back
    with django_capture_on_commit_callbacks(execute=True):
        scan = full_scan(channel)
    # then: its stock is pushed again; the listing that never left is not pushed for nothing
    assert scan.status == Scan.Status.SUCCEEDED, scan.error
    listing = Listing.objects.get(channel=channel, item_id=black)
    assert listing.status == Listing.Status.LIVE
    quantities = {item: qty for (item, _variant), qty in emulator.listing_quantities().items()}
    assert quantities == {black: 9, white: 4}


def test_a_returned_listing_is_queued_with_its_reason(kind, emulator):
    VariantFactory(sku="CUP-GRN")
    item = str(emulator.put_item(shop_item("Green Cup", "CUP-GRN")))
    channel = connect(kind, emulator)
    full_scan(channel)
    Listing.objects.filter(channel=channel).update(status=REMOVED)
    # when
    full_scan(channel)
    # then
    push = PendingPush.objects.get(listing__channel=channel)
    assert (push.listing.item_id, push.reason) == (item, LISTING_RETURNED)
