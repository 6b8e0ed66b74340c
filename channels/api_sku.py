"""The channels' API: SKU aliases per channel, their CSV import, and what a channel SKU maps to.

A channel's prefixes and suffixes to strip are channel settings (`sku_strip_prefixes`,
`sku_strip_suffixes`: PATCH /api/channels/{id}). Interfaces only: parse, call channels.sku_rules,
render.
"""

import io
from datetime import datetime
from typing import Any, Literal

from django.db.models import QuerySet
from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from ninja import Field, Query, Router, Schema, Status
from ninja.errors import ValidationError as NinjaValidationError
from ninja.pagination import paginate

from catalog.imports import ImportFileError
from channels.models import Channel, SkuAlias
from channels.sku_rules import (
    CHANNEL_SKU_MAX,
    POS_SKU_MAX,
    UnknownPosSku,
    sku_alias_create,
    sku_alias_delete,
    sku_aliases_import,
    sku_mapping_explain,
)
from omni.api_base import Id, InSchema, Page, Text, responses

router = Router(tags=["SKU mapping"])

# The largest CSV text the import takes: what fits the API's body limit (1 MiB by default).
CSV_MAX = 1_000_000


class SkuAliasIn(InSchema):
    channel_sku: Text(CHANNEL_SKU_MAX, min_length=1) = Field(
        description="The SKU as the channel has it; compared ignoring letter case and "
        "surrounding spaces.",
        examples=["TKP-BUNDLE-7"],
    )
    pos_sku: Text(POS_SKU_MAX, min_length=1) = Field(
        description="The SKU of the POS variant it stands for.", examples=["TEE-BLK-M"]
    )


class SkuAliasOut(Schema):
    id: int
    channel_id: int
    channel_sku: str
    pos_sku: str = Field(description="The SKU of the POS variant the channel SKU maps to.")
    variant_id: int
    product_id: int
    product_name: str
    created_at: datetime

    @staticmethod
    def resolve_pos_sku(alias: SkuAlias) -> str:
        return alias.variant.sku

    @staticmethod
    def resolve_product_id(alias: SkuAlias) -> int:
        return alias.variant.product_id

    @staticmethod
    def resolve_product_name(alias: SkuAlias) -> str:
        return alias.variant.product.name


class SkuAliasImportIn(InSchema):
    csv: Text(CSV_MAX, min_length=1, strip=False) = Field(
        description="The CSV text: a header line naming the columns channel_sku and pos_sku, "
        "then one alias per line (comma, semicolon or tab separated).",
        examples=["channel_sku,pos_sku\nTKP-BUNDLE-7,TEE-BLK-M\n"],
    )
    partial: bool = Field(
        False,
        description="Import the good rows even if some rows are bad; otherwise one bad row "
        "stops the whole file and nothing is written.",
    )
    dry_run: bool = Field(
        False, description="Only check the file: nothing is written, the counts say what would be."
    )


class ImportLineOut(Schema):
    line: int = Field(description="The line in the file, the header being line 1.")
    problem: str


class SkuAliasImportOut(Schema):
    written: bool = Field(description="Whether the good rows were written.")
    rows: int = Field(description="Rows read, the header left out.")
    created: int
    updated: int = Field(description="Rows that changed the POS SKU of an existing alias.")
    unchanged: int
    errors: list[ImportLineOut] = Field(description="The bad rows, by line.")
    message: str


class SkuMappingQuery(Schema):
    sku: Text(CHANNEL_SKU_MAX, min_length=1) = Field(
        description="A SKU as the channel has it.", examples=["TKP-TEE-BLK-M-PROMO"]
    )


class AliasRefOut(Schema):
    id: int
    channel_sku: str


class VariantRefOut(Schema):
    id: int
    sku: str
    product_id: int
    product_name: str


class SkuMappingOut(Schema):
    sku: str = Field(description="The channel SKU asked about, as sent.")
    key: str = Field(description="The POS SKU key it is matched by (trimmed, lower-case).")
    rule: Literal["alias", "prefix", "suffix", "prefix and suffix", "none"] = Field(
        description="What mapped it: the channel's alias for it, the prefix and/or suffix "
        "taken off, or none (matched as it is)."
    )
    prefix: str = Field(description="The prefix taken off (lower-case), or empty.")
    suffix: str = Field(description="The suffix taken off (lower-case), or empty.")
    alias: AliasRefOut | None = Field(description="The alias used, if one was.")
    variant: VariantRefOut | None = Field(description="The POS variant of `key`, if any.")


def _channel(channel_id: int) -> Channel:
    return get_object_or_404(Channel, pk=channel_id)


def _aliases() -> QuerySet[SkuAlias]:
    return SkuAlias.objects.select_related("variant__product")


@router.get(
    "/channels/{channel_id}/sku-aliases",
    response=responses({200: list[SkuAliasOut]}, 404),
    summary="A channel's SKU aliases",
)
@paginate(Page)
def sku_alias_list(request: HttpRequest, channel_id: Id) -> QuerySet[SkuAlias]:
    """By channel SKU (normalised), each with the POS SKU and product it stands for."""
    return _aliases().filter(channel=_channel(channel_id)).order_by("channel_sku_key", "pk")


@router.post(
    "/channels/{channel_id}/sku-aliases",
    response=responses({201: SkuAliasOut}, 404, 409),
    summary="Map a channel SKU to a POS SKU",
)
def sku_alias_create_api(request: HttpRequest, channel_id: Id, payload: SkuAliasIn) -> Status:
    """For a channel SKU the channel's prefixes and suffixes cannot turn into the POS SKU. The
    channel's listings carrying it are re-matched in the background (no scan needed), and
    order lines with it find the POS variant from now on. 422 when no POS variant has
    `pos_sku`; 409 when the channel SKU already has an alias on the channel (delete it first,
    or import a CSV row to change it)."""
    channel = _channel(channel_id)
    try:
        alias = sku_alias_create(
            channel=channel, channel_sku=payload.channel_sku, pos_sku=payload.pos_sku
        )
    except UnknownPosSku as exc:
        raise NinjaValidationError(
            [{"loc": ["body", "payload", "pos_sku"], "msg": str(exc), "type": "unknown_sku"}]
        ) from None
    return Status(201, _aliases().get(pk=alias.pk))


# Before DELETE …/sku-aliases/{alias_id}, whose pattern would otherwise take "import" as an id.
@router.post(
    "/channels/{channel_id}/sku-aliases/import",
    response=responses({200: SkuAliasImportOut}, 404, 409),
    summary="Import SKU aliases from CSV",
)
def sku_alias_import_api(
    request: HttpRequest, channel_id: Id, payload: SkuAliasImportIn
) -> dict[str, Any]:
    """Creates an alias per row, or changes the POS SKU of the alias a channel SKU already has.
    Every row is checked first (both cells filled in, not too long, the channel SKU once in the
    file, the POS SKU known); with a bad row nothing is written unless `partial`. The answer
    gives the counts and each bad row by line, with `written` saying whether anything was
    written. A file that cannot be read at all (no header, unknown columns, a quote never
    closed) is a 422 naming the problem and, for unreadable rows, their lines."""
    channel = _channel(channel_id)
    try:
        result = sku_aliases_import(
            channel=channel,
            stream=io.StringIO(payload.csv, newline=""),
            partial=payload.partial,
            dry_run=payload.dry_run,
        )
    except ImportFileError as exc:
        raise NinjaValidationError(
            [
                {"loc": ["body", "payload", "csv"], "msg": str(exc), "type": "csv_file"},
                *(
                    {"loc": ["body", "payload", "csv", line], "msg": reason, "type": "csv_line"}
                    for line, reason in exc.errors
                ),
            ]
        ) from None
    bad = len(result.errors)
    if result.dry_run:
        message = (
            f"Checked only, nothing was written: {result.created} would be created, "
            f"{result.updated} changed; {bad} bad row(s)."
        )
    elif result.written:
        message = f"Imported {result.created} new and {result.updated} changed alias(es)" + (
            f"; {bad} bad row(s) left out." if bad else "."
        )
    elif bad:
        message = f"Nothing was written: {bad} bad row(s). Fix them" + (
            "." if payload.partial else ", or send partial: true to write the good rows."
        )
    else:
        message = "Nothing to import: the file has no rows."
    return {
        "written": result.written,
        "rows": result.rows,
        "created": result.created,
        "updated": result.updated,
        "unchanged": result.unchanged,
        "errors": [{"line": line, "problem": reason} for line, reason in result.errors],
        "message": message,
    }


@router.delete(
    "/channels/{channel_id}/sku-aliases/{alias_id}",
    response=responses({204: None}, 404, 409),
    summary="Remove a SKU alias",
)
def sku_alias_delete_api(request: HttpRequest, channel_id: Id, alias_id: Id) -> Status:
    """The channel's listings carrying the channel SKU are re-matched by its prefix and suffix
    rules alone. A second DELETE answers 404."""
    alias = get_object_or_404(SkuAlias, pk=alias_id, channel_id=channel_id)
    sku_alias_delete(alias=alias)
    return Status(204, None)


@router.get(
    "/channels/{channel_id}/sku-mapping",
    response=responses({200: SkuMappingOut}, 404),
    summary="What a channel SKU maps to",
)
def sku_mapping_api(
    request: HttpRequest, channel_id: Id, query: Query[SkuMappingQuery]
) -> dict[str, Any]:
    """The POS SKU key a SKU on this channel is matched by under the channel's rules (its alias
    for the SKU, else the SKU less the first matching prefix and suffix), which rule decided
    it, and the POS variant of that key, if the POS has one."""
    answer = sku_mapping_explain(channel=_channel(channel_id), sku=query.sku)
    mapping, variant = answer.mapping, answer.variant
    return {
        "sku": mapping.sku,
        "key": mapping.key,
        "rule": mapping.rule,
        "prefix": mapping.prefix,
        "suffix": mapping.suffix,
        "alias": (
            {"id": mapping.alias.pk, "channel_sku": mapping.alias.channel_sku}
            if mapping.alias
            else None
        ),
        "variant": (
            {
                "id": variant.pk,
                "sku": variant.sku,
                "product_id": variant.product_id,
                "product_name": variant.product_name,
            }
            if variant
            else None
        ),
    }
