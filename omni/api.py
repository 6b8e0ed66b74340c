"""The JSON API root. Each app mounts its router here."""

from ninja import NinjaAPI

api = NinjaAPI(
    title="omni",
    version="1",
    description=(
        "The omnichannel back office of a retail POS: catalog, channels, stock and order logs."
    ),
    urls_namespace="api",
)


@api.get("/health", tags=["meta"], summary="Liveness probe")
def health(request) -> dict[str, str]:
    return {"status": "ok"}
