"""The API's operations, read from its own OpenAPI document, so generated tests cover every
endpoint there is, including ones added later."""

import json
import re
from functools import cache
from typing import Any

from omni.api import api

# Operations anyone may call: the liveness probe, and the marketplace webhooks, which are
# authenticated by the marketplace's signature instead of a token.
PUBLIC = {("get", "/api/health"), ("post", "/api/webhooks/{channel_id}")}
READ_METHODS = {"get", "head", "options"}


@cache
def openapi() -> dict[str, Any]:
    # Through JSON, as clients read it: response codes become strings, and so on.
    return json.loads(json.dumps(api.get_openapi_schema(path_prefix="/api"), default=str))


def operations() -> list[tuple[str, str]]:
    """(method, path template) of every operation, in document order."""
    return [
        (method, path)
        for path, ops in openapi()["paths"].items()
        for method in ops
        if method in {"get", "post", "put", "patch", "delete"}
    ]


def is_public(operation: dict[str, Any]) -> bool:
    return not operation.get("security")


def fill(path: str, ids: dict[str, int] | None = None, default: int = 1) -> str:
    """The path with each `{name}` replaced by ids[name] (or `default`)."""
    ids = ids or {}
    return re.sub(r"\{(\w+)\}", lambda m: str(ids.get(m.group(1), default)), path)
