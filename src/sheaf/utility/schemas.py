"""Request bodies of the EnergyCAP dialect, with the SDK's names and limits
(``../shared/specs/energycap-chargeback-subset.json``). Unknown fields are ignored, as
ASP.NET does."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
# EnergyCAP's integers are 32-bit: a larger one is a bad field, not a database overflow
Int32 = Annotated[int, Field(ge=INT32_MIN, le=INT32_MAX)]


class Wire(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore")


class PlaceCreate(Wire):
    place_code: str = Field(alias="placeCode", max_length=32)
    place_info: str = Field(alias="placeInfo", max_length=50)
    parent_place_id: Int32 = Field(alias="parentPlaceId")
    place_type_id: Int32 = Field(alias="placeTypeId")
    place_description: str | None = Field(None, alias="placeDescription", max_length=4000)
    floor_area: Int32 | None = Field(None, alias="floorArea", ge=0)


class MeterCreate(Wire):
    meter_code: str = Field(alias="meterCode", max_length=32)
    meter_info: str = Field(alias="meterInfo", max_length=50)
    commodity_id: Int32 = Field(alias="commodityId")
    place_id: Int32 = Field(alias="placeId")
    meter_type_id: Int32 = Field(alias="meterTypeId")
    use_unit_id: Int32 | None = Field(None, alias="useUnitId")
    meter_description: str | None = Field(None, alias="meterDescription", max_length=4000)


class AccountCreate(Wire):
    account_code: str = Field(alias="accountCode", max_length=50)
    account_info: str = Field(alias="accountInfo", max_length=50)
    account_type_id: Int32 = Field(alias="accountTypeId")
    cost_center_id: Int32 = Field(alias="costCenterId")
    vendor_id: Int32 = Field(alias="vendorId")
    active: bool | None = None
    meters: list[Int32] | None = None
    account_description: str | None = Field(None, alias="accountDescription", max_length=4000)


class AccountMeterCreate(Wire):
    """``AccountMeterRequest``."""

    account_id: Int32 = Field(alias="accountId")
    meter_id: Int32 = Field(alias="meterId")
    begin_date: datetime | None = Field(None, alias="beginDate")
    end_date: datetime | None = Field(None, alias="endDate")


class BodyLine(Wire):
    observation_type_id: Int32 = Field(alias="observationTypeId")
    value: Decimal | None = Field(None, allow_inf_nan=False)
    value_unit_id: Int32 | None = Field(None, alias="valueUnitId")
    cost: Decimal | None = Field(None, allow_inf_nan=False)
    cost_unit_id: Int32 | None = Field(None, alias="costUnitId")
    caption: str | None = Field(None, max_length=32)


class BillMeter(Wire):
    meter_id: Int32 = Field(alias="meterId")
    body_lines: list[BodyLine] = Field(default_factory=list, alias="bodyLines")


class AccountBodyLine(Wire):
    observation_type_id: Int32 = Field(alias="observationTypeId")
    cost: Decimal | None = Field(None, allow_inf_nan=False)
    caption: str = Field(alias="caption", max_length=32)


class BillCreate(Wire):
    account_id: Int32 = Field(alias="accountId")
    begin_date: datetime = Field(alias="beginDate")
    end_date: datetime = Field(alias="endDate")
    billing_period: Int32 = Field(alias="billingPeriod", ge=190001, le=209912)
    account_period: Int32 | None = Field(None, alias="accountPeriod", ge=190001, le=209913)
    estimated: bool | None = None
    manual_entry: bool = Field(alias="manualEntry")
    statement_date: datetime | None = Field(None, alias="statementDate")
    due_date: datetime | None = Field(None, alias="dueDate")
    next_reading: datetime | None = Field(None, alias="nextReading")
    control_code: str | None = Field(None, alias="controlCode", max_length=255)
    invoice_number: str | None = Field(None, alias="invoiceNumber", max_length=32)
    note: str | None = None
    meters: list[BillMeter] = Field(default_factory=list)
    account_body_lines: list[AccountBodyLine] = Field(default_factory=list,
                                                      alias="accountBodyLines")


class BatchCreate(Wire):
    batch_code: str = Field(alias="batchCode", max_length=255)
    close_existing_batch: bool = Field(False, alias="closeExistingBatch")
    statement_date: datetime | None = Field(None, alias="statementDate")
    due_date: datetime | None = Field(None, alias="dueDate")
    next_reading: datetime | None = Field(None, alias="nextReading")
    control_code: str | None = Field(None, alias="controlCode", max_length=255)
    invoice_number: str | None = Field(None, alias="invoiceNumber", max_length=255)
    account_period_number: Int32 | None = Field(None, alias="accountPeriodNumber", ge=1, le=13)
    account_period_year: Int32 | None = Field(None, alias="accountPeriodYear", ge=1900, le=2099)
    note: str | None = Field(None, alias="note", max_length=255)


class UpdateBatchStatus(Wire):
    batch_status: str = Field(alias="batchStatus")
    note: str | None = Field(None, alias="note", max_length=255)


class UpsertAggregateMeter(Wire):
    aggregate_meter_id: Int32 | None = Field(None, alias="aggregateMeterId")
    begin_period: Int32 = Field(alias="beginPeriod", ge=190001, le=300001)
    source_meter_ids: list[Int32] = Field(..., alias="sourceMeterIds", min_length=1)
    commodity_id: Int32 = Field(alias="commodityId")
    aggregate_meter_info: str = Field(alias="aggregateMeterInfo", max_length=50)


class AggregationSettings(Wire):
    """``ChargebackProcessorSettingsForAggregations``."""

    billing_period: Int32 | None = Field(None, alias="billingPeriod", ge=190001, le=300001)
    note: str | None = Field(None, alias="note", max_length=4000)
    batch_settings: BatchCreate | None = Field(None, alias="batchSettings")


class ChargebackTaskEdit(Wire):
    comment: str = Field(alias="comment", max_length=4000)
