"""Which replies are retried, after how long, and which pause the adapter's gate: Shopee and
Shopify throttle inside the body, whatever HTTP status the body comes with.

Shopee's `error` decides over the HTTP status (reference §1.7), so `error_rate_limit` with HTTP
403 is throttling and `error_auth` with HTTP 500 is not worth a retry. Shopify's THROTTLED
(§4.6, usually HTTP 200, some report 429) waits for the bucket to refill, and tells the gate, so
the adapter's other calls stop spending the bucket meanwhile. The classifiers are fed fixed
replies; the scenarios that need a server run against the emulators over real HTTP.
"""

import json
import time
from typing import Any

import pytest
import requests

from channels.adapters.base import AdapterError
from channels.adapters.http import RetryAdvice, RetryPolicy
from channels.adapters.shopee import client as shopee
from channels.adapters.shopify import client as shopify
from channels.adapters.shopify.adapter import ShopifyAdapter
from channels.emulators.base import Reply, Request
from channels.emulators.shopee import ShopeeEmulator
from channels.emulators.shopify import ShopifyEmulator
from tests.channels.conftest import shopee_adapter

GRAPHQL = "/admin/api/2026-04/graphql.json"


def reply(status: int, body: Any, **headers: str) -> requests.Response:
    """A reply as requests hands it to the classifier: status, headers and a JSON body."""
    response = requests.Response()
    response.status_code = status
    response._content = json.dumps(body).encode()
    response.headers.update({"Content-Type": "application/json"})
    response.headers.update({name.replace("_", "-"): value for name, value in headers.items()})
    return response


def shopee_body(error: str) -> dict[str, Any]:
    return {"request_id": "9f8e7d", "error": error, "message": "", "warning": ""}


def throttled_body(*, requested: float, available: float, rate: float) -> dict[str, Any]:
    """Shopify's THROTTLED reply, with the cost figures the wait is worked out from."""
    status = {"maximumAvailable": 2000.0, "currentlyAvailable": available, "restoreRate": rate}
    return {
        "errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED"}}],
        "extensions": {"cost": {"requestedQueryCost": requested, "throttleStatus": status}},
    }


# -- Shopee: the body's `error` decides ----------------------------------------------------------


@pytest.mark.parametrize("status", [400, 403])
def test_shopee_rate_limit_with_a_client_error_status_is_throttling_after_its_retry_after(status):
    advice = shopee.classify_reply(reply(status, shopee_body("error_rate_limit"), Retry_After="2"))

    # then: sent again after the 2 s asked for (not processed, so even a create), gate told
    assert advice == RetryAdvice(
        "error_rate_limit", retry_after=2.0, unprocessed=True, throttled=True
    )


@pytest.mark.parametrize(("status", "error"), [(400, "error_server"), (403, "error_busy")])
def test_shopee_server_error_codes_are_retried_whatever_the_http_status(status, error):
    advice = shopee.classify_reply(reply(status, shopee_body(error)))

    # then: retried on our own back-off; it may have been processed, so not a create
    assert advice == RetryAdvice(error)


@pytest.mark.parametrize(("status", "error"), [(500, "error_auth"), (503, "error_sign")])
def test_shopee_refusal_codes_are_not_retried_even_with_http_5xx(status, error):
    # A wrong token goes to the refresh (or the "reconnect the shop" message) at once, instead
    # of after every attempt's back-off.
    assert shopee.classify_reply(reply(status, shopee_body(error))) is None


def test_shopee_other_codes_are_judged_by_their_http_status():
    # a server error naming a code of its own is still a server error; a refusal is not
    assert shopee.classify_reply(reply(503, shopee_body("error_unknown"))) == RetryAdvice(
        "HTTP 503"
    )
    assert shopee.classify_reply(reply(400, shopee_body("error_param"))) is None


class ShopeeThrottlingWith403(ShopeeEmulator):
    """A Shopee that throttles as its error table allows: `error_rate_limit` with HTTP 403."""

    def throttle_reply(self, request: Request, retry_after: float) -> Reply:
        return Reply.json(shopee_body("error_rate_limit"), status=403)


def test_shopee_throttling_with_http_403_is_retried_and_narrows_the_gate():
    with ShopeeThrottlingWith403(seed=1) as emulator:
        # given: every call throttled
        emulator.set_faults(throttle_rate=1.0)
        adapter = shopee_adapter(
            emulator, retry=RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.01)
        )
        # when
        with pytest.raises(AdapterError) as failed:
            adapter.check_credentials()
    # then: every attempt made, the gate narrowed, and reported as throttling, to try later
    assert (adapter.stats.calls, adapter.stats.retries) == (3, 2)
    assert adapter.gate.narrowest < adapter.gate.limit
    assert (failed.value.code, failed.value.retryable) == ("error_rate_limit", True)


# -- Shopify: THROTTLED waits for the bucket, with HTTP 200 or 429 --------------------------------


def test_shopify_throttled_with_http_429_waits_for_the_bucket_or_a_longer_retry_after():
    # given: 300 points asked for, 50 left, 100 a second back: 2.5 s until the bucket holds them
    body = throttled_body(requested=300, available=50, rate=100)

    sooner = shopify.classify_reply(reply(429, body, Retry_After="1"))
    later = shopify.classify_reply(reply(429, body, Retry_After="4"))

    # then: the longer of the two waits, as a throttle (unprocessed, gate told)
    assert sooner == RetryAdvice("THROTTLED", retry_after=2.5, unprocessed=True, throttled=True)
    assert later == RetryAdvice("THROTTLED", retry_after=4.0, unprocessed=True, throttled=True)


def test_shopify_throttled_with_http_429_and_no_retry_after_waits_the_cost_figures():
    with ShopifyEmulator(seed=1, throttle_style="body", throttle_status=429) as emulator:
        # given: every call throttled with HTTP 429, no Retry-After, a 0.05 s cost wait
        emulator.set_faults(throttle_rate=1.0, retry_after=0.05)
        sample = requests.post(
            emulator.base_url + GRAPHQL, json={"query": "{shop{name}}"}, timeout=5
        )
        assert (sample.status_code, "Retry-After" in sample.headers) == (429, False)
        assert sample.json()["errors"][0]["extensions"]["code"] == "THROTTLED"
        adapter = ShopifyAdapter(
            base_url=emulator.base_url,
            credentials=emulator.credentials,
            retry=RetryPolicy(attempts=3, base_delay=1, max_delay=1),
        )
        # when
        with pytest.raises(AdapterError) as failed:
            adapter.check_credentials()
    # then: tried three times, each time after the 0.05 s wait: our own back-off would have
    # slept at least 0.5 s twice
    assert failed.value.retryable
    assert (adapter.stats.calls, adapter.stats.retries) == (3, 2)
    assert 0.1 <= adapter.stats.seconds < 1.0


def test_shopify_throttled_with_http_200_pauses_every_call_of_the_adapter():
    with ShopifyEmulator(seed=1, throttle_style="body") as emulator:
        # given: a spent bucket that refills in 0.3 s, and an adapter that does not retry
        emulator.set_faults(throttle_rate=1.0, retry_after=0.3)
        adapter = ShopifyAdapter(
            base_url=emulator.base_url,
            credentials=emulator.credentials,
            retry=RetryPolicy(attempts=1),
        )
        # when
        with pytest.raises(AdapterError):
            adapter.check_credentials()
        started = time.monotonic()
        with adapter.gate.place():
            waited = time.monotonic() - started
    # then: the window halved and the adapter's next call, from any thread, waits the refill
    assert adapter.gate.window == adapter.gate.limit // 2
    assert waited >= 0.25
