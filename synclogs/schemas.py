"""The order pipeline's API shapes: sync log rows, the report, Manual Download Order."""

from datetime import date, datetime
from typing import Annotated, Any

from ninja import Field, Schema
from pydantic import ConfigDict, model_validator

from omni.api_base import Choice, Id, InSchema, Text, exactly_one_of
from synclogs.models import SyncLog

OrderNumber = Text(64, min_length=1)
Action = Choice(SyncLog.Action)
LogStatus = Choice(SyncLog.Status)


class SyncLogOut(Schema):
    id: int
    channel_id: int
    channel: str = Field(description="The channel's name.")
    order_number: str
    action: str = Field(description="The step: " + ", ".join(SyncLog.Action.values) + ".")
    status: int = Field(description="200 done, 409 already done, 400 wrong status, 404 missing.")
    origin: str
    sales_order_id: int | None
    documents: dict[str, Any] = Field(description="The POS documents this step wrote or found.")
    message: str = Field(description="Why it was (not) done.")
    actor: str
    created_at: datetime

    @staticmethod
    def resolve_channel(obj: SyncLog) -> str:
        return obj.channel.name


class SyncLogDetailOut(SyncLogOut):
    request: dict[str, Any] = Field(description="What the step was based on (the order).")
    response: dict[str, Any] = Field(description="What the step did.")


class SyncLogFilterIn(Schema):
    action: Action | None = None
    status: LogStatus | None = None
    channel: Id | None = Field(None, description="A channel id.")
    order_number: OrderNumber | None = None
    since: datetime | None = Field(None, description="Rows logged at or after this time.")
    until: datetime | None = Field(None, description="Rows logged before this time.")


class ReportDayOut(Schema):
    day: date
    transactions: int = Field(description="Orders logged in this step that day, each once")


class ReportRowOut(Schema):
    channel_id: int
    channel_name: str
    action: str
    action_label: str
    transactions: int = Field(
        description="Orders logged in this step, each counted once however often it was retried"
    )
    successful: int = Field(description="Orders with a 200 OK row")
    conflict: int = Field(description="Orders with a 409 Conflict row: already done")
    wrong_status: int = Field(
        description="Orders with a 400 row: the marketplace status does not allow the step"
    )
    missing: int = Field(description="Orders with a 404 row: missing in the POS, to download")
    days: list[ReportDayOut]

    @staticmethod
    def resolve_days(obj: Any) -> list[dict[str, Any]]:
        return [{"day": day, "transactions": n} for day, n in obj.days]


class ReportOut(Schema):
    since: datetime
    until: datetime
    rows: list[ReportRowOut]


class ReportIn(Schema):
    days: Annotated[int, Field(ge=1, le=90)] = 7


class DownloadOrdersIn(InSchema):
    """One order number, or a list of them (at most 200)."""

    model_config = ConfigDict(json_schema_extra=exactly_one_of("order_number", "order_numbers"))

    order_number: OrderNumber | None = None
    order_numbers: Annotated[list[OrderNumber], Field(min_length=1, max_length=200)] | None = None

    @model_validator(mode="after")
    def _one_of(self) -> "DownloadOrdersIn":
        if (self.order_number is None) == (self.order_numbers is None):
            raise ValueError("give exactly one of order_number and order_numbers")
        return self

    @property
    def numbers(self) -> list[str]:
        return [self.order_number] if self.order_number else list(self.order_numbers or [])


class DownloadOrdersOut(Schema):
    logs: list[SyncLogOut] = Field(description="The sync log rows written, in order.")
    not_found: list[str] = Field(description="Numbers the marketplace does not know.")
