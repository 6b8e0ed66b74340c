"""Local marketplace emulators: HTTP servers on 127.0.0.1 that speak each marketplace's API.

`base.py` is the framework (server, call log, fault knobs), `shop.py` generates the shops they
serve, and each marketplace has one module. Which module serves a channel kind, and on which
fixed demo port, is read from `channels.marketplaces.MARKETPLACES`; emulators are loaded lazily
like the adapters.
"""

from typing import TYPE_CHECKING

from channels.marketplaces import BY_KIND, load_listed

if TYPE_CHECKING:
    from channels.emulators.base import Emulator


def emulator_class(kind: str) -> type["Emulator"]:
    """The emulator class for a channel kind; LookupError when there is none yet."""
    if kind not in BY_KIND:
        raise LookupError(f"no emulator for {kind} yet (available: {', '.join(sorted(BY_KIND))})")
    cls: type[Emulator] | None = load_listed(BY_KIND[kind].emulator)
    if cls is None:
        raise LookupError(f"no emulator for {kind} yet")
    return cls
