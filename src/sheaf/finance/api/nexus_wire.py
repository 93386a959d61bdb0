"""MX Nexus shapes: integer type codes beside their names, ``X`` / ``X_set_by`` /
``X_set_by_name`` triples with the institution's raw ``feed_X`` (everything sheaf holds
came from the feed, so ``_set_by`` is 1, FEED), timestamps as ``...+00:00``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sheaf.finance.models import FinAccount, FinHolding, FinTransaction, Institution, Member
from sheaf.finance.statuses import STATUS_IDS

ACCOUNT_TYPES = ["ANY", "CHECKING", "SAVINGS", "LOAN", "CREDIT_CARD", "INVESTMENT",
                 "LINE_OF_CREDIT", "MORTGAGE", "PROPERTY", "CASH", "INSURANCE", "PREPAID",
                 "CHECKING_LINE_OF_CREDIT"]
TRANSACTION_TYPES = {"CREDIT": 1, "DEBIT": 2}
TRANSACTION_STATUSES = {"POSTED": 1, "PENDING": 2}
FEED = 1


def ts(value: datetime | None) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%S+00:00") if value is not None else None


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


def _triple(out: dict[str, Any], name: str, value: Any) -> None:
    out[name] = value
    out[f"{name}_set_by"] = FEED
    out[f"{name}_set_by_name"] = "FEED"
    out[f"feed_{name}"] = value


def member_json(member: Member, institution: Institution, *, being_aggregated: bool,
                job_id: str | None, status: str | None) -> dict[str, Any]:
    """``job_id``: the member's queued or running job, else its last one."""
    return {
        "aggregated_at": ts(member.aggregated_at),
        "background_aggregation_is_disabled": member.background_aggregation_is_disabled,
        "connection_status": status,
        "connection_status_id": STATUS_IDS.get(status) if status else None,
        "connection_status_message": member.connection_status_message,
        "external_guid": member.id, "guid": member.guid,
        "institution_code": member.institution_code, "institution_guid": institution.guid,
        "is_being_aggregated": being_aggregated, "is_managed_by_user": True,
        "is_manual": member.is_manual, "is_oauth": member.is_oauth, "is_user_created": True,
        "metadata": member.metadata_,
        "most_recent_job_guid": f"JOB-{job_id}" if job_id else None,
        "name": member.name,
        "needs_updated_credentials": status in {"DENIED", "PREVENTED", "IMPAIRED"},
        "revision": member.revision,
        "successfully_aggregated_at": ts(member.successfully_aggregated_at),
        "use_cases": member.use_cases, "user_guid": member.user_guid,
    }


def account_json(a: FinAccount) -> dict[str, Any]:
    d = a.data
    kind = str(d.get("type") or "ANY")
    out: dict[str, Any] = {
        "account_holder_name": None, "account_type": ACCOUNT_TYPES.index(kind)
        if kind in ACCOUNT_TYPES else 0, "account_type_name": kind,
        "account_subtype": 0, "account_subtype_name": d.get("subtype"),
        "created_at": ts(a.created_at), "updated_at": ts(a.updated_at),
        "external_guid": a.id, "guid": a.guid, "is_hidden": False,
        "member_guid": a.member_guid, "user_guid": a.user_guid, "nickname": None,
    }
    for name in ("balance", "available_balance", "credit_limit", "available_credit"):
        _triple(out, name, _number(d.get(name)))
    for name in ("account_number", "currency_code", "name", "is_closed"):
        _triple(out, name, d.get(name))
    out["apr"], out["apy"] = _number(d.get("apr")), _number(d.get("apy"))
    return out


def transaction_json(t: FinTransaction) -> dict[str, Any]:
    d = t.data
    kind = str(d.get("type") or "DEBIT")
    status = str(d.get("status") or "POSTED")
    out: dict[str, Any] = {
        "account_guid": t.account_guid, "member_guid": t.member_guid,
        "user_guid": t.user_guid, "guid": t.guid, "external_guid": t.id, "date": t.date,
        "category_guid": None, "category_name": d.get("category"),
        "created_at": ts(t.created_at), "updated_at": ts(t.updated_at),
        "feed_status": TRANSACTION_STATUSES.get(status, 1), "status": status,
        "feed_transaction_type": TRANSACTION_TYPES.get(kind, 2),
        "feed_transaction_type_name": kind, "transaction_type": TRANSACTION_TYPES.get(kind, 2),
        "transaction_type_name": kind,
        "feed_posted_at": d.get("posted_at"), "feed_transacted_at": d.get("transacted_at"),
        "posted_at": d.get("posted_at"), "transacted_at": d.get("transacted_at"),
        "has_been_split": False, "is_business": False, "is_flagged": False,
        "is_hidden": False, "latitude": None, "longitude": None,
    }
    _triple(out, "amount", _number(d.get("amount")))
    _triple(out, "description", d.get("description"))
    for flag in ("is_bill_pay", "is_direct_deposit", "is_expense", "is_fee", "is_income",
                 "is_international", "is_overdraft_fee", "is_payroll_advance", "is_recurring",
                 "is_subscription"):
        out[flag] = bool(d.get(flag) or False)
    return out


def holding_json(h: FinHolding) -> dict[str, Any]:
    d = h.data
    out: dict[str, Any] = {
        "account_guid": h.account_guid, "member_guid": h.member_guid,
        "user_guid": h.user_guid, "guid": h.guid, "external_guid": h.id,
        "created_at": ts(h.created_at), "updated_at": ts(h.updated_at), "deleted_at": None,
        "holding_type": d.get("holding_type"), "equity_classification": None,
        "bond_coupon_rate": None, "bond_maturity_date": None,
    }
    for name in ("cost_basis", "market_value", "purchase_price", "daily_change"):
        _triple(out, name, _number(d.get(name)))
    _triple(out, "shares", _number(d.get("quantity")))
    for name in ("symbol", "description", "currency_code"):
        _triple(out, name, d.get(name))
    return out
