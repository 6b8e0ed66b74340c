"""SKU mapping rules per channel: how a SKU on the channel becomes the POS SKU it is matched by.

A channel SKU maps to a POS SKU key (catalog.models.sku_key: trimmed, letter case ignored):

1. through the channel's alias for it (SkuAlias, looked up by the normalised channel SKU): the
   key of the alias's POS variant;
2. else through the channel's prefixes and suffixes: the first prefix the SKU starts with (the
   longest first) is taken off its start, then the first suffix it ends with (the longest
   first) off its end, letter case ignored, and the spaces this leaves around it. A prefix or
   suffix that would leave nothing is not taken off: "TKP-" alone stays "tkp-".

`Listing.sku_key` holds that mapped key (`Listing.sku` keeps the SKU as the channel has it), so
matching, the Multiple Listed SKU tab, the pushes and the tabs read the mapping without knowing
it exists. Everything that matches a channel SKU goes through `SkuMapper`: scans, uploads, order
lines (synclogs.pipeline.variants_for) and Download to POS. A mapper is built in one query for
the aliases and maps any number of SKUs in memory, so matching stays bulk: a page's SKUs are
mapped, then looked up in the one query they always were.

Editing a rule re-matches the channel's listings without a scan (`sku_rules_rematch`, queued by
`sku_rules_rematch_request` once the edit commits); listings newly mapped or mapped to another
variant have their stock queued for a push.
"""

import logging
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import reduce
from operator import or_
from typing import TextIO

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from catalog.imports import ImportResult, RowError
from catalog.imports.reading import Column, Progress, Record, read_csv
from catalog.models import Variant, sku_key
from catalog.selectors import storable, variant_ids_by_sku_key
from channels.exceptions import ChannelError
from channels.inventory import push_request, sends
from channels.listing_store import listings_mark_duplicates
from channels.models import RULES_CHANGED, Channel, Listing, SkuAlias
from omni.bulk import CHUNK, chunks, copy_update, matching_chunks

logger = logging.getLogger(__name__)

# Listings re-matched per round: one read, one lookup of their POS variants, one write.
REMATCH_CHUNK = 5000
# A re-match for the aliases of at most this many channel SKUs reads only the listings that
# may carry them; more, and it re-matches the whole channel.
NARROW_REMATCH_MAX = 100
# The longest channel SKU and POS SKU an alias holds (SkuAlias.channel_sku, Variant.sku).
CHANNEL_SKU_MAX = SkuAlias._meta.get_field("channel_sku").max_length
POS_SKU_MAX = Variant._meta.get_field("sku").max_length


def split_affixes(text: str) -> tuple[str, ...]:
    """A channel's comma-separated prefixes (or suffixes) as the mapper compares them:
    trimmed, lower-cased, blanks and repeats dropped, the longest first.

    "TKP-, tkp-x ,," → ("tkp-x", "tkp-").
    """
    found = {part.strip().lower() for part in (text or "").split(",")} - {""}
    return tuple(sorted(found, key=lambda affix: (-len(affix), affix)))


@dataclass(frozen=True, slots=True)
class KnownAlias:
    """What a mapper knows of one alias."""

    pk: int
    channel_sku: str
    variant_id: int
    pos_key: str  # its POS variant's normalised SKU


@dataclass(frozen=True, slots=True)
class SkuMapping:
    """How one channel SKU maps: to `key`, by `alias`, or by taking off `prefix` and `suffix`
    (as the rules spell them, lower-cased; "" when none was)."""

    sku: str
    key: str  # the POS SKU key it is matched by; "" for a blank SKU
    alias: KnownAlias | None = None
    prefix: str = ""
    suffix: str = ""
    pos_sku: str = ""  # the SKU with the rules applied, its letter case kept (alias: "")

    @property
    def rule(self) -> str:
        """What mapped it: "alias", "prefix", "suffix", "prefix and suffix", or "none"."""
        if self.alias is not None:
            return "alias"
        taken = [
            name for name, affix in (("prefix", self.prefix), ("suffix", self.suffix)) if affix
        ]
        return " and ".join(taken) or "none"


class SkuMapper:
    """A channel's SKU rules, read once, mapping any number of channel SKUs in memory."""

    def __init__(
        self,
        *,
        prefixes: Iterable[str] = (),
        suffixes: Iterable[str] = (),
        aliases: Mapping[str, KnownAlias] | None = None,
    ) -> None:
        self.prefixes = tuple(prefixes)
        self.suffixes = tuple(suffixes)
        self.aliases: Mapping[str, KnownAlias] = aliases or {}

    @classmethod
    def for_channel(cls, channel: Channel, *, skus: Iterable[str] | None = None) -> "SkuMapper":
        """The mapper of `channel`'s rules as they are on `channel` (its prefixes and
        suffixes) and in the database (its aliases).

        With `skus`, only the aliases of those channel SKUs are read (what a page of listings
        or orders needs); without, all of the channel's. Cost: one query (none for no SKUs).
        """
        return cls(
            prefixes=split_affixes(channel.sku_strip_prefixes),
            suffixes=split_affixes(channel.sku_strip_suffixes),
            aliases=_aliases(channel.pk, skus),
        )

    def map(self, sku: str | None) -> SkuMapping:
        sku = sku or ""
        alias = self.aliases.get(sku_key(sku)) if self.aliases else None
        if alias is not None:
            return SkuMapping(sku, alias.pos_key, alias=alias)
        text = sku.strip()
        prefix = next((p for p in self.prefixes if _starts(text, p)), "")
        if prefix:
            text = text[len(prefix) :].strip()
        suffix = next((s for s in self.suffixes if _ends(text, s)), "")
        if suffix:
            text = text[: -len(suffix)].strip()
        return SkuMapping(sku, text.lower(), prefix=prefix, suffix=suffix, pos_sku=text)

    def key(self, sku: str | None) -> str:
        """The POS SKU key `sku` is matched by (see the module's docstring)."""
        if not (self.prefixes or self.suffixes or self.aliases):
            return sku_key(sku)
        return self.map(sku).key

    def keys(self, skus: Iterable[str | None]) -> dict[str, str]:
        """{channel SKU: the POS SKU key it is matched by} for `skus`."""
        return {sku or "": self.key(sku) for sku in skus}


def _starts(text: str, prefix: str) -> bool:
    """`text` starts with `prefix` (letter case ignored) and has more than blanks after it."""
    return text[: len(prefix)].lower() == prefix and bool(text[len(prefix) :].strip())


def _ends(text: str, suffix: str) -> bool:
    return (
        len(text) > len(suffix)
        and text[-len(suffix) :].lower() == suffix
        and bool(text[: -len(suffix)].strip())
    )


def _aliases(channel_id: int, skus: Iterable[str] | None) -> dict[str, KnownAlias]:
    rows = SkuAlias.objects.filter(channel_id=channel_id).values_list(
        "channel_sku_key", "pk", "channel_sku", "variant_id", "variant__sku_key"
    )
    if skus is not None:
        keys = sorted({key for key in map(sku_key, skus) if key and storable(key)})
        if not keys:
            return {}
        if len(keys) <= CHUNK:  # else every alias of the channel, still in one query
            rows = next(matching_chunks(rows, "channel_sku_key", keys))
    return {row[0]: KnownAlias(*row[1:]) for row in rows}


def channel_sku_search(term: str, channels: Iterable[Channel]) -> Q | None:
    """What else a search for `term` (a SKU, or part of one, as a channel shows it) should find
    among listings, which are searched by their mapped key: on each channel whose rules map
    `term` to another key (its alias of that SKU, a prefix or suffix taken off), the listings
    whose key contains that one. None when no channel's rules change `term`.
    Cost: one query, for the channels' aliases of `term`."""
    channels = list(channels)
    key = sku_key(term)
    if not key or not channels:
        return None
    aliased = dict(
        SkuAlias.objects.filter(channel__in=channels, channel_sku_key=key).values_list(
            "channel_id", "variant__sku_key"
        )
    )
    wanted = []
    for channel in channels:
        rules = SkuMapper.for_channel(channel, skus=())  # its affixes; aliases read above
        mapped = aliased.get(channel.pk) or rules.key(term)
        if mapped and mapped != key:
            wanted.append(Q(channel_id=channel.pk, sku_key__icontains=mapped))
    return reduce(or_, wanted) if wanted else None


# --- re-matching a channel's listings ----------------------------------------------------------


@dataclass
class RematchResult:
    """What a re-match changed among the channel's listings."""

    listings: int = 0  # listings read (every one of the channel, or those an alias may concern)
    rekeyed: int = 0  # whose mapped SKU key changed
    newly_mapped: int = 0  # had no POS variant, now have one
    remapped: int = 0  # mapped to another POS variant
    unmapped: int = 0  # lost their POS variant: now in Not in POS
    kept_manual: int = 0  # linked by hand: their link kept whatever their key now says
    queued: int = 0  # pushes queued for the newly mapped and remapped ones
    skipped_duplicates: int = 0  # of those, left alone by the duplicate-SKU policy
    duplicates: int | None = None  # listings sharing a SKU after it; None: no key changed
    seconds: float = 0.0

    def __str__(self) -> str:
        return (
            f"{self.listings} listing(s) re-matched: {self.rekeyed} re-keyed, "
            f"{self.newly_mapped} newly mapped, {self.remapped} mapped to another variant, "
            f"{self.unmapped} unmapped, {self.kept_manual} kept as linked by hand; "
            f"{self.queued} push(es) queued"
            + (
                f", {self.skipped_duplicates} skipped (shared SKU)"
                if self.skipped_duplicates
                else ""
            )
            + (f"; {self.duplicates} listing(s) share a SKU" if self.duplicates is not None else "")
            + f"; {self.seconds:.1f} s."
        )


def sku_rules_rematch(
    *, channel: Channel, channel_skus: Collection[str] | None = None
) -> RematchResult:
    """Map every listing of `channel` again under its current rules, without a scan.

    Each listing's `sku_key` becomes what its SKU maps to now, and its POS variant the one of
    that key, except for listings linked by hand (`is_manual_link`), which keep their link.
    With `channel_skus` (the channel SKUs whose aliases changed), only the listings that may
    carry one of them are read, when they are few (NARROW_REMATCH_MAX). Then the duplicate
    flags are refreshed (Multiple Listed SKU), and the stock of present listings newly mapped
    or mapped to another variant is queued for a push, in the modes the trigger table sends
    RULES_CHANGED in. One transaction.

    Cost, per REMATCH_CHUNK listings: one read, one lookup of POS variants, one write of the
    changed ones; then one query for the aliases, the duplicate marking (when a key changed)
    and push_request's queries per REMATCH_CHUNK listings queued.
    """
    started = timezone.now()
    result = RematchResult()
    keys = {k for k in map(sku_key, channel_skus or ()) if k}
    # Narrowed by a case-insensitive substring test, which SQLite applies to ASCII letters only.
    narrow = (
        channel_skus is not None
        and len(keys) <= NARROW_REMATCH_MAX
        and all(key.isascii() for key in keys)
    )
    if narrow and not keys:
        return result
    mapper = SkuMapper.for_channel(channel)
    listings = Listing.objects.filter(channel_id=channel.pk)
    if narrow:  # a superset (any case, any spaces), mapped exactly below
        listings = listings.filter(reduce(or_, (Q(sku__icontains=key) for key in sorted(keys))))
    to_push: list[int] = []
    with transaction.atomic():
        last = 0
        while rows := list(
            listings.filter(pk__gt=last)
            .order_by("pk")
            .values_list("pk", "sku", "sku_key", "variant_id", "is_manual_link", "status")[
                :REMATCH_CHUNK
            ]
        ):
            last = rows[-1][0]
            to_push += _rematch_rows(mapper, rows, result)
        if result.rekeyed:  # the flags follow the keys alone
            result.duplicates = listings_mark_duplicates(channel_id=channel.pk)
        _push(channel, to_push, result)
    result.seconds = (timezone.now() - started).total_seconds()
    logger.info("channel %s: %s", channel.pk, result)
    return result


def _rematch_rows(mapper: SkuMapper, rows: Sequence[tuple], result: RematchResult) -> list[int]:
    """Write the new key and variant of those of `rows` whose mapping changed; the present
    ones now mapped to a variant they were not, to push."""
    keys = [mapper.key(row[1]) for row in rows]
    variants = variant_ids_by_sku_key(set(keys))
    changed: list[tuple[int, dict[str, object]]] = []
    to_push: list[int] = []
    for (pk, _sku, old_key, old_variant, manual, status), key in zip(rows, keys, strict=True):
        variant = old_variant if manual else variants.get(key)
        result.listings += 1
        if manual and variants.get(key) != old_variant:
            result.kept_manual += 1
        if key == old_key and variant == old_variant:
            continue
        changed.append((pk, {"sku_key": key, "variant_id": variant}))
        result.rekeyed += key != old_key
        if variant == old_variant:
            continue
        if variant is None:
            result.unmapped += 1
            continue
        if old_variant is None:
            result.newly_mapped += 1
        else:
            result.remapped += 1
        if status != Listing.Status.REMOVED:
            to_push.append(pk)
    copy_update(Listing, ["sku_key", "variant_id"], changed, tick=lambda _written: None)
    return to_push


def _push(channel: Channel, listing_ids: list[int], result: RematchResult) -> None:
    """Queue the stock of listings that now sell another POS variant (or one at last): the
    channel shows what it had for them, which says nothing of the POS's stock."""
    if not listing_ids or not channel.is_active:
        return
    if not sends(RULES_CHANGED, channel.inventory_sync_mode):
        return
    for ids in chunks(listing_ids, REMATCH_CHUNK):
        queued, skipped = push_request(
            channel=channel, listings=Listing.objects.filter(pk__in=list(ids)), reason=RULES_CHANGED
        )
        result.queued += queued
        result.skipped_duplicates += len(skipped)


def sku_rules_rematch_request(
    *, channel_id: int, channel_skus: Iterable[str] | None = None
) -> None:
    """Queue a re-match of the channel's listings (`sku_rules_rematch`) once the current
    transaction commits: call it from whatever changes a channel's prefixes, suffixes or
    aliases. `channel_skus` narrows it to the listings of those channel SKUs (aliases changed);
    None re-matches every listing (prefixes or suffixes changed)."""
    skus = None if channel_skus is None else sorted(set(channel_skus))

    def enqueue() -> None:
        from django_q.tasks import async_task

        async_task(
            "channels.tasks.sku_rules_rematch",
            channel_id,
            skus,
            group=f"sku-rules-{channel_id}",
            task_name=f"sku-rules-rematch-{channel_id}",
        )

    transaction.on_commit(enqueue)


# --- aliases -------------------------------------------------------------------------------------


class AliasError(ChannelError):
    """An alias that cannot be written as asked."""


class AliasExists(AliasError):
    def __init__(self, channel: Channel, alias: SkuAlias) -> None:
        self.alias = alias
        super().__init__(
            f"The channel SKU “{alias.channel_sku}” already has an alias on {channel} "
            f"(#{alias.pk}, to the POS SKU “{alias.variant.sku}”): delete it first, or import "
            "a CSV row to change it. Channel SKUs are compared ignoring letter case and "
            "surrounding spaces."
        )


class UnknownPosSku(AliasError):
    def __init__(self, sku: str) -> None:
        self.sku = sku
        super().__init__(
            f"No POS variant has the SKU “{sku}” (SKUs are compared ignoring letter case and "
            "surrounding spaces): an alias must name a POS SKU."
        )


class BlankChannelSku(AliasError):
    def __init__(self) -> None:
        super().__init__("The channel SKU is blank: a blank SKU cannot be matched.")


def sku_alias_create(*, channel: Channel, channel_sku: str, pos_sku: str) -> SkuAlias:
    """Map `channel_sku` (as on the channel) to the POS variant whose SKU is `pos_sku`, and
    queue the re-match of the listings carrying it.

    Raises BlankChannelSku, AliasError for a channel SKU too long to keep, UnknownPosSku, or
    AliasExists when the channel SKU already has an alias on the channel (compared
    normalised).
    """
    channel_sku = channel_sku.strip()
    key = sku_key(channel_sku)
    if not key:
        raise BlankChannelSku()
    if len(channel_sku) > CHANNEL_SKU_MAX:
        raise AliasError(
            f"The channel SKU is too long ({len(channel_sku)} characters; at most "
            f"{CHANNEL_SKU_MAX})."
        )
    variant = Variant.objects.by_sku(pos_sku).select_related("product").first()
    if variant is None:
        raise UnknownPosSku(pos_sku.strip())
    existing = (
        SkuAlias.objects.filter(channel=channel, channel_sku_key=key)
        .select_related("variant")
        .first()
    )
    if existing is not None:
        raise AliasExists(channel, existing)
    alias = SkuAlias(channel=channel, channel_sku=channel_sku, channel_sku_key=key, variant=variant)
    with transaction.atomic():
        alias.save()
        sku_rules_rematch_request(channel_id=channel.pk, channel_skus=[key])
    return alias


def sku_alias_delete(*, alias: SkuAlias) -> None:
    """Delete an alias; its listings go back to the channel's prefix and suffix rules."""
    with transaction.atomic():
        sku_rules_rematch_request(channel_id=alias.channel_id, channel_skus=[alias.channel_sku_key])
        alias.delete()


@dataclass(frozen=True, slots=True)
class MappedVariant:
    pk: int
    sku: str
    product_id: int
    product_name: str


@dataclass(frozen=True, slots=True)
class MappingAnswer:
    """What a channel SKU maps to on a channel, and the POS variant of that key if any."""

    mapping: SkuMapping
    variant: MappedVariant | None


def sku_mapping_explain(*, channel: Channel, sku: str) -> MappingAnswer:
    """How `sku` maps on `channel` and the POS variant it matches. Two queries."""
    mapping = SkuMapper.for_channel(channel, skus=[sku]).map(sku)
    found = (
        Variant.objects.filter(sku_key=mapping.key)
        .values_list("pk", "sku", "product_id", "product__name")
        .first()
        if mapping.key and storable(mapping.key)
        else None
    )
    return MappingAnswer(mapping, MappedVariant(*found) if found else None)


# --- importing aliases from CSV ------------------------------------------------------------------

ALIAS_COLUMNS: tuple[Column, ...] = (
    Column(
        "channel_sku",
        f"The SKU as the channel has it (at most {CHANNEL_SKU_MAX} characters); compared "
        "ignoring letter case and surrounding spaces. Once per file.",
        required=True,
    ),
    Column(
        "pos_sku",
        "The SKU of the POS variant it stands for; compared ignoring letter case and "
        "surrounding spaces.",
        required=True,
    ),
)
ALIAS_EXAMPLE = "channel_sku,pos_sku\r\nTKP-BUNDLE-7,TEE-BLK-M\r\nOLD-CODE-12,MUG-01\r\n"


@dataclass(slots=True)
class _AliasRow:
    line: int
    channel_sku: str
    key: str
    pos_sku: str
    variant_id: int | None = None
    errors: list[str] = field(default_factory=list)


def sku_aliases_import(
    *, channel: Channel, stream: TextIO, partial: bool = False, dry_run: bool = False
) -> ImportResult:
    """Create and update the channel's aliases from a CSV of channel_sku,pos_sku rows
    (ALIAS_COLUMNS); a row for a channel SKU that already has an alias changes its POS SKU.

    Every row is checked first: both cells filled in and not too long, the channel SKU once in
    the file, the POS SKU known. With a bad row and not `partial`, nothing is written; with
    `dry_run`, nothing either, but the counts say what would be. The written aliases' listings
    are re-matched once the import commits. `created`, `updated`
    and `unchanged` count rows. Raises ImportFileError for a file that cannot be read
    (listing, when some row cannot be read as CSV, that row and every other bad row).

    Cost: one query for the POS SKUs, one for the channel's aliases of the file's channel SKUs
    (per omni.bulk.CHUNK of them), and one upsert per few thousand rows written.
    """
    table = read_csv(stream, columns=ALIAS_COLUMNS, aliases={}, progress=Progress(None))
    rows = _alias_rows(table.records, table.index())
    _check_repeats(rows)
    variants = variant_ids_by_sku_key({sku_key(row.pos_sku) for row in rows if row.pos_sku})
    for row in rows:
        if row.pos_sku and not row.errors:
            row.variant_id = variants.get(sku_key(row.pos_sku))
            if row.variant_id is None:
                row.errors.append(f"pos_sku {row.pos_sku!r} is not the SKU of any POS variant")
    result = ImportResult(rows=len(rows), dry_run=dry_run)
    result.errors = [RowError(row.line, "; ".join(row.errors)) for row in rows if row.errors]
    table.refuse_if_unreadable(result.errors)
    good = [row for row in rows if not row.errors]
    if (result.errors and not partial) or not good:
        return result
    _write_aliases(channel, good, result, dry_run=dry_run)
    return result


def _alias_rows(records: list[Record], index: Mapping[str, int]) -> list[_AliasRow]:
    channel_at, pos_at = index["channel_sku"], index["pos_sku"]
    rows = []
    for record in records:
        channel_sku, pos_sku = record.values[channel_at], record.values[pos_at]
        row = _AliasRow(record.line, channel_sku, sku_key(channel_sku), pos_sku)
        if record.problem:
            row.errors.append(record.problem)
        for column, value, most in (
            ("channel_sku", channel_sku, CHANNEL_SKU_MAX),
            ("pos_sku", pos_sku, POS_SKU_MAX),
        ):
            if not value:
                row.errors.append(f"{column} is required")
            elif len(value) > most:
                row.errors.append(f"{column} is too long ({len(value)} characters; at most {most})")
            elif not storable(value):
                row.errors.append(f"{column} holds a character no SKU can hold (NUL)")
        rows.append(row)
    return rows


def _check_repeats(rows: list[_AliasRow]) -> None:
    """Refuse every row whose channel SKU (normalised) is on another row too: which one is
    meant cannot be told."""
    by_key: dict[str, list[_AliasRow]] = {}
    for row in rows:
        if row.key:
            by_key.setdefault(row.key, []).append(row)
    for same in by_key.values():
        if len(same) < 2:
            continue
        for row in same:
            others = ", ".join(str(other.line) for other in same if other is not row)
            row.errors.append(
                f"channel_sku {row.channel_sku!r} is also on line {others} (channel SKUs are "
                "compared ignoring letter case and surrounding spaces)"
            )


def _write_aliases(
    channel: Channel, rows: list[_AliasRow], result: ImportResult, *, dry_run: bool
) -> None:
    keys = [row.key for row in rows]
    current: dict[str, tuple[str, int]] = {}
    existing = SkuAlias.objects.filter(channel=channel).values_list(
        "channel_sku_key", "channel_sku", "variant_id"
    )
    for chunk in matching_chunks(existing, "channel_sku_key", keys):
        current.update({key: (sku, variant) for key, sku, variant in chunk})
    writes = []
    for row in rows:
        before = current.get(row.key)
        if before == (row.channel_sku, row.variant_id):
            result.unchanged += 1
            continue
        result.created += before is None
        result.updated += before is not None
        writes.append(
            SkuAlias(
                channel=channel,
                channel_sku=row.channel_sku,
                channel_sku_key=row.key,
                variant_id=row.variant_id,
            )
        )
    if dry_run:
        return
    with transaction.atomic():
        SkuAlias.objects.bulk_create(
            writes,
            update_conflicts=True,
            unique_fields=["channel", "channel_sku_key"],
            update_fields=["channel_sku", "variant"],
            batch_size=1000,
        )
        if writes:
            sku_rules_rematch_request(
                channel_id=channel.pk, channel_skus=[alias.channel_sku_key for alias in writes]
            )
    result.written = True
