"""MX wire shapes, as mx-platform-python 1.12.0 deserialises them.

Timestamps are ISO-8601 strings, money JSON numbers, holding ``quantity`` a string,
absent values null. ``most_recent_job_guid`` and ``most_recent_job_detail_text`` are
always null: the SDK types them as booleans (a spec bug), so a real job guid would make
every member-returning call fail to parse.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sheaf.finance.models import (
    Challenge,
    FinAccount,
    FinHolding,
    FinTransaction,
    FinUser,
    Institution,
    Member,
)
from sheaf.finance.statuses import STATUS_IDS


def ts(value: datetime | None) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value is not None else None


def number(value: Any) -> float | None:
    return None if value is None else float(value)


def user_json(user: FinUser) -> dict[str, Any]:
    return {"email": user.email, "guid": user.guid, "id": user.id,
            "is_disabled": user.is_disabled, "metadata": user.metadata_}


def institution_json(institution: Institution) -> dict[str, Any]:
    return {
        "code": institution.code, "name": institution.name, "url": institution.url,
        "forgot_password_url": None, "forgot_username_url": None,
        "instructional_text": None, "instructional_text_steps": None,
        "is_disabled_by_client": False, "iso_country_code": "US",
        "medium_logo_url": None, "small_logo_url": None,
        "supports_account_identification": False, "supports_account_statement": False,
        "supports_account_verification": False, "supports_oauth": False,
        "supports_tax_document": False, "supports_transaction_history": True,
        "trouble_signing_in_url": None,
    }


def credential_json(field: dict[str, Any]) -> dict[str, Any]:
    return {k: field.get(k) for k in ("display_order", "field_name", "field_type", "guid",
                                      "label", "type")}


def member_json(member: Member, user: FinUser, institution: Institution, *,
                being_aggregated: bool, status: str | None) -> dict[str, Any]:
    return {
        "aggregated_at": ts(member.aggregated_at),
        "background_aggregation_is_disabled": member.background_aggregation_is_disabled,
        "connection_status": status,
        "connection_status_message": member.connection_status_message,
        "guid": member.guid, "id": member.id, "institution_code": member.institution_code,
        "institution_guid": institution.guid,
        "is_being_aggregated": being_aggregated, "is_managed_by_user": False,
        "is_manual": member.is_manual, "is_oauth": member.is_oauth,
        "metadata": member.metadata_,
        "most_recent_job_detail_code": None, "most_recent_job_detail_text": None,
        "most_recent_job_guid": None,
        "name": member.name,
        "needs_updated_credentials": status in {"DENIED", "PREVENTED", "IMPAIRED"},
        "oauth_window_uri": None,
        "successfully_aggregated_at": ts(member.successfully_aggregated_at),
        "use_cases": member.use_cases if member.use_cases is not None else [],
        "user_guid": user.guid, "user_id": user.id,
    }


def challenge_json(c: Challenge) -> dict[str, Any]:
    return {"field_name": c.field_name, "guid": c.guid, "image_data": c.image_data,
            "image_options": [{"data_uri": o.get("data_uri"), "guid": o.get("guid"),
                               "label": o.get("label"), "value": o.get("value")}
                              for o in c.image_options],
            "label": c.label,
            "options": [{"guid": o.get("guid"), "label": o.get("label"),
                         "value": o.get("value")} for o in c.options],
            "type": c.type}


def status_json(member: Member, *, being_aggregated: bool, status: str | None,
                challenges: list[Challenge]) -> dict[str, Any]:
    return {
        "aggregated_at": ts(member.aggregated_at),
        "challenges": [challenge_json(c) for c in challenges] if status == "CHALLENGED"
        else [],
        "connection_status": status, "guid": member.guid,
        "has_processed_account_numbers": member.has_processed_account_numbers,
        "has_processed_accounts": member.has_processed_accounts,
        "has_processed_transactions": member.has_processed_transactions,
        "is_authenticated": member.is_authenticated,
        "is_being_aggregated": being_aggregated,
        "successfully_aggregated_at": ts(member.successfully_aggregated_at),
    }


_ACCOUNT_MONEY = ("balance", "available_balance", "available_credit", "credit_limit",
                  "statement_balance", "cash_balance", "holdings_value", "total_account_value",
                  "minimum_payment", "original_balance", "payoff_balance", "last_payment")
_ACCOUNT_TEXT = ("account_number", "routing_number", "name", "nickname", "type", "subtype",
                 "currency_code", "payment_due_at", "matures_on", "started_on",
                 "account_ownership", "federal_insurance_status")


def account_json(a: FinAccount, member: Member, institution: Institution,
                 user_id: str | None) -> dict[str, Any]:
    d = a.data
    out: dict[str, Any] = {k: number(d.get(k)) for k in _ACCOUNT_MONEY}
    out.update({k: d.get(k) for k in _ACCOUNT_TEXT})
    out.update({
        "apr": number(d.get("apr")), "apy": number(d.get("apy")),
        "interest_rate": number(d.get("interest_rate")),
        "day_payment_is_due": d.get("day_payment_is_due"),
        "created_at": ts(a.created_at), "updated_at": ts(a.updated_at), "imported_at": None,
        "guid": a.guid, "id": a.id, "institution_code": institution.code,
        "institution_guid": institution.guid,
        "is_closed": bool(d.get("is_closed", False)), "is_hidden": False, "is_manual": False,
        "member_guid": a.member_guid, "member_id": member.id,
        "member_is_managed_by_user": False, "metadata": None,
        "user_guid": a.user_guid, "user_id": user_id,
    })
    return out


_TXN_FLAGS = ("is_bill_pay", "is_direct_deposit", "is_expense", "is_fee", "is_income",
              "is_international", "is_overdraft_fee", "is_payroll_advance", "is_recurring",
              "is_subscription")
_TXN_TEXT = ("category", "check_number_string", "currency_code", "description",
             "extended_transaction_type", "memo", "original_description", "posted_at",
             "status", "top_level_category", "transacted_at", "type")


def transaction_json(t: FinTransaction, account_id: str | None, user_id: str | None
                     ) -> dict[str, Any]:
    d = t.data
    out: dict[str, Any] = {k: d.get(k) for k in _TXN_TEXT}
    out.update({k: bool(d[k]) if d.get(k) is not None else False for k in _TXN_FLAGS})
    out.update({
        "account_guid": t.account_guid, "account_id": account_id,
        "amount": number(d.get("amount")), "category_guid": None,
        "created_at": ts(t.created_at), "updated_at": ts(t.updated_at),
        "date": t.date, "guid": t.guid, "id": t.id, "is_manual": False,
        "latitude": None, "longitude": None, "localized_description": None,
        "localized_memo": None, "member_guid": t.member_guid,
        "member_is_managed_by_user": False,
        "merchant_category_code": d.get("merchant_category_code"),
        "merchant_guid": None, "merchant_location_guid": None, "metadata": None,
        "user_guid": t.user_guid, "user_id": user_id,
        "classification": None, "geolocation": None, "merchant": None,
        "repeating_transaction": None,
    })
    return out


_HOLDING_MONEY = ("cost_basis", "current_price", "daily_change", "face_value", "market_value",
                  "percentage_change", "purchase_price", "rate", "strike_price",
                  "today_ugl_amount", "today_ugl_percentage", "total_ugl_amount",
                  "total_ugl_percentage", "unvested_quantity", "unvested_value",
                  "vested_quantity", "vested_value")
_HOLDING_TEXT = ("coupon_yield", "currency_code", "description", "expiration", "frequency",
                 "maturity_date", "symbol", "term", "current_price_as_of", "issue_date",
                 "vesting_start_date", "vesting_end_date", "put_or_call", "holding_type",
                 "term_unit")


def holding_json(h: FinHolding) -> dict[str, Any]:
    """InvestmentHoldingResponse (1.12.0): ``quantity`` a string, no member_guid."""
    d = h.data
    out: dict[str, Any] = {k: number(d.get(k)) for k in _HOLDING_MONEY}
    out.update({k: d.get(k) for k in _HOLDING_TEXT})
    quantity = d.get("quantity")
    out.update({"account_guid": h.account_guid, "guid": h.guid, "user_guid": h.user_guid,
                "quantity": None if quantity is None else str(quantity),
                "created_at": ts(h.created_at)})
    return out


def legacy_holding_json(h: FinHolding) -> dict[str, Any]:
    """HoldingResponse of SDKs up to 1.9.0 (``/holdings``): ``shares`` a number."""
    d = h.data
    quantity = d.get("quantity")
    return {"account_guid": h.account_guid, "cost_basis": number(d.get("cost_basis")),
            "created_at": ts(h.created_at), "currency_code": d.get("currency_code"),
            "cusip": d.get("cusip"), "daily_change": number(d.get("daily_change")),
            "description": d.get("description"), "guid": h.guid,
            "holding_type": d.get("holding_type"), "holding_type_id": None, "id": h.id,
            "market_value": number(d.get("market_value")), "member_guid": h.member_guid,
            "metadata": None, "purchase_price": number(d.get("purchase_price")),
            "shares": number(quantity), "symbol": d.get("symbol"),
            "updated_at": ts(h.updated_at), "user_guid": h.user_guid}


def pagination(page: int, per_page: int, total: int) -> dict[str, int]:
    return {"current_page": page, "per_page": per_page, "total_entries": total,
            "total_pages": (total + per_page - 1) // per_page}


STATUS_ID = STATUS_IDS
