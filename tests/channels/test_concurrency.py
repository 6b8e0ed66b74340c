"""Calls in flight: as many as the marketplace allows, never more, fewer when it throttles.

The emulators count the calls they are handling (their latency included, so calls overlap as on
a real server) and answer one beyond their `max_in_flight`, or beyond their `max_per_second` in
any one second, with the marketplace's own throttle answer, as marketplaces do. Every scenario
runs over real HTTP: a full scan within the limit is never refused and really does overlap its
calls; an adapter told a higher limit than the marketplace's is throttled, narrows its window
and still reads every listing; one given the app's calls a second is never refused by a
marketplace counting them; the channel's own settings reach the adapter; the gate's window
halves on a throttle and grows back, and a throttle pauses every call for the wait it came with.
"""

import threading
import time
from threading import current_thread

import pytest
import requests

from channels.adapters import adapter_class
from channels.adapters.base import CallStats, QuantityUpdate
from channels.adapters.http import Gate, HttpCaller, OutgoingRequest, RetryPolicy, build_session
from channels.emulators import emulator_class
from channels.emulators.base import Faults
from channels.emulators.woocommerce import WooCommerceEmulator
from channels.models import Channel, Scan
from channels.scans import scan_request, scan_run
from tests.channels.conftest import FAST_RETRY
from tests.factories import OutletFactory

# The marketplaces whose adapters keep several calls in flight (Shopify's limit is its cost
# budget, paced by its own client).
KINDS = ("shopee", "lazada", "tiktok_shop", "tokopedia", "woocommerce")
ITEMS = 500  # several list pages everywhere, and a detail call for each item with variants


def quota(kind: str) -> tuple[int, int, int]:
    """A shop read in 15-25 calls (Lazada, whose page of 50 items is one call: 4), the calls a
    second the marketplace handles (fewer than reading it takes) and fewer for the app."""
    return (150, 2, 1) if kind == "lazada" else (60, 10, 7)


LATENCY = 0.02  # long enough for calls to overlap on the emulator


@pytest.fixture(params=KINDS)
def kind(request) -> str:
    return request.param


def serve(
    kind: str, *, max_in_flight: int = 0, max_per_second: int = 0, latency=LATENCY, items=ITEMS
):
    faults = Faults(latency=latency, max_in_flight=max_in_flight, max_per_second=max_per_second)
    return emulator_class(kind)(items=items, seed=11, faults=faults)


def adapter(kind: str, emulator, **options):
    options = {"retry": FAST_RETRY, **options}
    return adapter_class(kind)(
        base_url=emulator.base_url, credentials=emulator.credentials, **options
    )


def at_once(call, count: int) -> None:
    """Run `call` in `count` threads at the same time; return once every one has ended."""
    threads = [threading.Thread(target=call) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def scanned(client) -> set[tuple[str, str]]:
    return {(lst.item_id, lst.variant_id) for page in client.iter_listing_pages() for lst in page}


# -- scans against the marketplace's limit ------------------------------------------------------


def test_a_full_scan_within_the_marketplaces_limit_is_never_refused_and_overlaps_calls(kind):
    # given: a marketplace handling as many calls at once as the adapter's default
    limit = adapter_class(kind).limits.max_in_flight
    with serve(kind, max_in_flight=limit) as emulator:
        client = adapter(kind, emulator)
        # when
        listings = scanned(client)
        # then: every listing, no call refused, and several calls really were in flight at once
        assert listings == set(emulator.listing_quantities())
        assert emulator.log.faults["in_flight"] == 0
        assert client.stats.retries == 0
        assert 1 < emulator.peak_in_flight <= limit
        assert client.gate.peak <= limit


def test_an_adapter_told_more_than_the_marketplace_allows_backs_off_and_reads_everything(kind):
    # given: the marketplace handles 2 calls at once; the adapter was told 8
    with serve(kind, max_in_flight=2) as emulator:
        client = adapter(kind, emulator, max_in_flight=8)
        # when
        listings = scanned(client)
        # then: it was throttled, each refused call was sent again once it had backed off, its
        # window narrowed, and no listing was missed
        refused = emulator.log.faults["in_flight"]
        assert refused > 0
        assert client.stats.retries == refused
        assert client.gate.narrowest < 8
        assert listings == set(emulator.listing_quantities())


def test_every_call_of_the_adapter_shares_one_gate_across_threads():
    # given: a marketplace and an adapter both allowing one call at a time
    kind = "shopee"
    with serve(kind, max_in_flight=1) as emulator:
        client = adapter(kind, emulator, max_in_flight=1)
        listing = next(iter(emulator.listing_quantities()))
        pushed: list = []
        # when: a scan and a stock push run at the same time from two threads
        pusher = threading.Thread(
            target=lambda: pushed.extend(
                client.update_quantities([QuantityUpdate(listing[0], listing[1], 5)])
            )
        )
        pusher.start()
        listings = scanned(client)
        pusher.join()
        # then: neither was ever refused, because each waited for the other's call
        assert emulator.log.faults["in_flight"] == 0
        assert emulator.peak_in_flight == 1
        assert [result.ok for result in pushed] == [True]
        assert listings == set(emulator.listing_quantities())


def test_a_push_of_one_call_is_sent_from_the_callers_thread_and_a_larger_one_overlaps():
    # given: a marketplace taking one item per stock call, 8 calls allowed at once, and a
    # session noting the thread each call is sent from
    kind = "shopee"
    senders: list[str] = []
    session = build_session(pool_size=8)
    send = session.send
    session.send = lambda *args, **kwargs: (
        senders.append(current_thread().name) or send(*args, **kwargs)
    )
    with serve(kind, max_in_flight=8) as emulator:
        client = adapter(kind, emulator, session=session)
        one_per_item = {item: (item, ref) for item, ref in emulator.listing_quantities()}
        first, *others = one_per_item.values()
        # when: one listing's stock is pushed (most real-time pushes)
        single = client.update_quantities([QuantityUpdate(*first, 3)])
        # then: it is sent from the caller's thread: no pool was started for it
        assert [result.ok for result in single] == [True]
        assert senders == [current_thread().name]
        # when: eight items' stock is pushed at once
        senders.clear()
        many = client.update_quantities([QuantityUpdate(*ref, 4) for ref in others[:8]])
        # then: the pool's threads send them, several at once
        assert all(result.ok for result in many)
        assert len(senders) == 8
        assert current_thread().name not in senders
        assert emulator.peak_in_flight > 1


def test_an_adapter_given_the_apps_calls_a_second_is_never_refused_for_going_faster(kind):
    # given: a marketplace answering at once but handling a few calls a second, and an adapter
    # told its app may make fewer
    items, handled, told = quota(kind)
    with serve(kind, max_per_second=handled, latency=0, items=items) as emulator:
        paced = adapter(kind, emulator, max_per_second=told)
        # when
        listings = scanned(paced)
        # then: every listing, and no call refused
        assert listings == set(emulator.listing_quantities())
        assert emulator.log.faults["rate"] == 0
        assert paced.stats.retries == 0


def test_an_adapter_not_told_the_calls_a_second_is_refused_waits_and_reads_everything(kind):
    # given: the same marketplace, and an adapter knowing nothing of its quota
    items, handled, _told = quota(kind)
    with serve(kind, max_per_second=handled, latency=0, items=items) as emulator:
        client = adapter(kind, emulator, retry=RetryPolicy())  # waits as long as asked
        # when
        listings = scanned(client)
        # then: it went too fast, each refused call was sent again once it had waited, and
        # nothing was missed
        assert emulator.log.faults["rate"] > 0
        assert client.stats.retries == emulator.log.faults["rate"]
        assert listings == set(emulator.listing_quantities())


def full_scan_by_channel(emulator, **settings) -> Scan:
    """A full scan of the emulated Shopee shop by a channel with `settings`."""
    channel = Channel.objects.create(
        kind="shopee",
        name="Shopee shop",
        api_base_url=emulator.base_url,
        credentials=emulator.credentials,
        order_outlet=OutletFactory(code="jkt"),
        **settings,
    )
    return scan_run(scan_id=scan_request(channel=channel, kind=Scan.Kind.FULL, enqueue=False).pk)


@pytest.mark.django_db
def test_the_channels_own_limit_is_the_adapters():
    # given: a channel whose plan allows 3 calls at once, on a marketplace allowing 3
    with serve("shopee", max_in_flight=3) as emulator:
        # when
        scan = full_scan_by_channel(emulator, max_concurrent_calls=3)
        # then
        assert scan.status == Scan.Status.SUCCEEDED, scan.error
        assert scan.seen == len(emulator.listing_quantities())
        assert emulator.log.faults["in_flight"] == 0
        assert emulator.peak_in_flight == 3


@pytest.mark.django_db
def test_the_channels_calls_a_second_space_the_adapters_calls():
    # given: a channel whose app may make 20 calls a second
    with serve("shopee", latency=0, items=60) as emulator:
        started = time.monotonic()
        # when
        scan = full_scan_by_channel(emulator, max_calls_per_second=20)
        # then: its calls were at least 1/20 s apart, however fast the marketplace answered
        assert scan.status == Scan.Status.SUCCEEDED, scan.error
        assert scan.http_calls > 10
        assert time.monotonic() - started >= (scan.http_calls - 1) / 20


# -- the emulators' limit ----------------------------------------------------------------------


def test_the_emulator_refuses_a_call_beyond_its_limit_as_the_marketplace_throttles():
    with WooCommerceEmulator(items=0, faults=Faults(latency=0.3, max_in_flight=2)) as woo:
        start = threading.Barrier(3)
        statuses: list[int] = []

        def call() -> None:
            start.wait()
            answer = requests.get(woo.base_url + "/wp-json/wc/v3/products", timeout=5)
            statuses.append(answer.status_code)

        at_once(call, 3)

        # two handled (refused for want of credentials), one throttled as the host does
        assert sorted(statuses) == [401, 401, 429]
        assert woo.log.faults["in_flight"] == 1
        assert woo.peak_in_flight == 2
        assert woo.in_flight == 0


def test_the_emulator_refuses_a_call_beyond_its_calls_a_second_as_the_marketplace_throttles():
    with WooCommerceEmulator(items=0, faults=Faults(max_per_second=2)) as woo:
        url = woo.base_url + "/wp-json/wc/v3/products"
        answers = [requests.get(url, timeout=5) for _ in range(3)]

        # two handled (refused for want of credentials), the third throttled, told to wait
        # until the first is a second old
        assert [answer.status_code for answer in answers] == [401, 401, 429]
        wait = float(answers[2].headers["Retry-After"])
        assert 0 < wait <= 1
        assert woo.log.faults["rate"] == 1
        time.sleep(wait)
        assert requests.get(url, timeout=5).status_code == 401


# -- the gate ------------------------------------------------------------------------------------


def test_a_throttle_pauses_every_call_through_the_gate_for_the_wait_it_came_with():
    gate = Gate(4)
    with gate.place() as first:
        pass
    started = time.monotonic()
    gate.throttled(first, pause=0.3)
    assert gate.window == 2
    waited: list[float] = []

    def call() -> None:
        with gate.place():
            waited.append(time.monotonic() - started)

    at_once(call, 3)
    # no call started before the pause was over, however many places were free
    assert len(waited) == 3
    assert min(waited) >= 0.3


def test_a_throttled_reply_pauses_the_callers_gate_for_its_retry_after():
    # given: a marketplace throttling every call, asking for 0.3 s, and a caller that does not
    # retry
    with WooCommerceEmulator(items=0, faults=Faults(throttle_rate=1.0, retry_after=0.3)) as woo:
        gate = Gate(4)
        caller = HttpCaller(
            stats=CallStats(), service="WooCommerce", policy=RetryPolicy(attempts=1), gate=gate
        )
        # when
        answer = caller.send(lambda: OutgoingRequest("GET", woo.base_url + "/wp-json/wc/v3"))
        started = time.monotonic()
        with gate.place():
            waited = time.monotonic() - started
        # then: the next call through the gate, from any thread, waits out the Retry-After
        assert answer.status_code == 429
        assert waited >= 0.25


def test_a_wait_asked_for_longer_than_a_call_waits_is_not_retried_sooner():
    # given: a marketplace throttling every call, asking for 30 s, and a caller that waits at
    # most 20 s for a retry (sleeping at most 1 s here)
    with WooCommerceEmulator(items=0, faults=Faults(throttle_rate=1.0, retry_after=30)) as woo:
        caller = HttpCaller(
            stats=CallStats(),
            service="WooCommerce",
            policy=RetryPolicy(attempts=5, base_delay=0.5, max_delay=1, longest_wait=20),
            gate=Gate(4),
        )
        # when
        answer = caller.send(lambda: OutgoingRequest("GET", woo.base_url + "/wp-json/wc/v3"))
    # then: the throttled reply comes back at once, for the run to be tried again later,
    # rather than four more calls refused in turn
    assert answer.status_code == 429
    assert (caller.stats.calls, caller.stats.retries) == (1, 0)


def test_calls_through_a_gate_with_calls_a_second_start_that_far_apart():
    gate = Gate(8, per_second=20)
    started = time.monotonic()
    starts: list[float] = []

    def call() -> None:
        with gate.place():
            starts.append(time.monotonic())

    at_once(call, 10)
    # ten calls, eight places: still one start every 1/20 s at most
    assert len(starts) == 10
    assert max(starts) - started >= 9 / 20


def test_the_window_halves_on_a_throttle_once_per_burst_and_not_below_one():
    gate = Gate(8)
    with gate.place() as first, gate.place() as second:
        pass  # a burst of two calls, both throttled
    gate.throttled(first)
    gate.throttled(second)
    assert gate.window == 4  # one burst, one halving
    for expected in (2, 1, 1):
        with gate.place() as ticket:
            pass
        gate.throttled(ticket)
        assert gate.window == expected
    assert gate.narrowest == 1


def test_the_window_grows_back_by_one_per_window_of_successes_up_to_the_limit():
    gate = Gate(4)
    with gate.place() as ticket:
        pass
    gate.throttled(ticket)
    gate.throttled(ticket)  # the same call again: no second halving
    assert gate.window == 2
    widths = []
    for _ in range(12):
        gate.succeeded()
        widths.append(gate.window)
    # two successes make it 3, three more make it 4; never past the limit
    assert widths == [2, 3, 3, 3, 4, 4, 4, 4, 4, 4, 4, 4]


def test_no_more_calls_pass_the_gate_at_once_than_its_window():
    gate = Gate(6)
    with gate.place() as ticket:
        pass
    gate.throttled(ticket)  # window 3
    inside, most = 0, 0
    lock = threading.Lock()

    def call() -> None:
        nonlocal inside, most
        with gate.place():
            with lock:
                inside += 1
                most = max(most, inside)
            time.sleep(0.01)
            with lock:
                inside -= 1

    at_once(call, 20)
    assert most == 3
    assert gate.in_flight == 0
