"""Sandbox institutions, ``mxbank`` among them: MX Bank's documented test credentials
(reference/mx.md, section 8) and deterministic data.

Username ``mxuser`` (any other is DENIED). Password, case sensitive: ``challenge`` (a
TEXT question), ``options`` (choose among OPTIONS) or ``image`` (an IMAGE_DATA question)
end CHALLENGED, and answering ``correct`` connects while any other answer is REJECTED;
``BAD_REQUEST`` fails as the institution answering 400; ``UNAUTHORIZED`` is DENIED;
anything else connects.

Data, the same for a member on every run: a checking, a savings, a credit card and an
investment account with holdings; two years of transactions before the member's creation
date. The newest few checking transactions are PENDING; on the member's next successful
aggregation they are gone and their POSTED twins (new institution ids, dated a day later)
are there instead, with a new set of pending ones: MX's delete-and-replace.

Config (institution ``config``): ``transactions_per_account``, ``holdings``, ``pending``,
``latency_seconds`` (sleeps before answering, for tests and benchmarks), ``change_every``
(every Nth transaction's amount is a cent higher per generation, from generation
``change_from_generation`` on: a partly changed re-aggregation, for benchmarks).
"""

from __future__ import annotations

import array
import random
import sys
import time
from datetime import timedelta
from typing import Any

import polars as pl

from sheaf.finance.connectors.base import ConnectorError, Login, MemberContext, Snapshot, money

USERNAME = "mxuser"
CORRECT = "correct"
# a 1x1 PNG: the IMAGE_DATA challenge's picture
PIXEL = ("data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk"
         "+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")

_ACCOUNTS = [  # id, name, type, subtype, default transaction count
    ("chk-1", "Checking", "CHECKING", "NONE", 180),
    ("sav-1", "Savings", "SAVINGS", "NONE", 24),
    ("cc-1", "Credit Card", "CREDIT_CARD", "NONE", 120),
    ("inv-1", "Brokerage", "INVESTMENT", "BROKERAGE", 24),
]
_MERCHANTS = ["Coffee Corner", "Grocery Mart", "City Transit", "Fuel Stop", "Book Nook",
              "Pharmacy Plus", "Electric Co", "Streaming Service", "Hardware Hub",
              "Corner Bistro", "Payroll Deposit", "Online Market"]
_CATEGORIES = {"Coffee Corner": "Coffee Shops", "Grocery Mart": "Groceries",
               "City Transit": "Public Transportation", "Fuel Stop": "Gas",
               "Book Nook": "Books", "Pharmacy Plus": "Pharmacy", "Electric Co": "Utilities",
               "Streaming Service": "Entertainment", "Hardware Hub": "Home Improvement",
               "Corner Bistro": "Restaurants", "Payroll Deposit": "Paycheck",
               "Online Market": "Shopping"}
_SYMBOLS = ["VTI", "VXUS", "BND", "AAPL", "MSFT", "GOOG", "AMZN", "VNQ", "TIP", "SCHD"]
HISTORY_DAYS = 730


class SandboxConnector:
    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config

    def _pause(self) -> None:
        latency = float(self.config.get("latency_seconds") or 0)
        if latency > 0:
            time.sleep(latency)

    def login(self, credentials: dict[str, str], answers: list[str] | None) -> Login:
        self._pause()
        username, password = credentials.get("username"), credentials.get("password")
        if not username or not password:
            raise ConnectorError("FAILED", "You must fill out the username and password")
        if password == "BAD_REQUEST":
            raise ConnectorError("FAILED", "You must fill out the username and password")
        if username != USERNAME or password == "UNAUTHORIZED":
            raise ConnectorError("DENIED", "The username or password is incorrect")
        challenge = _CHALLENGES.get(password)
        if challenge is None:
            return Login("CONNECTED")
        if answers is None:
            return Login("CHALLENGED", [challenge])
        if answers != [CORRECT]:
            raise ConnectorError("REJECTED", "The answer to the security question is incorrect")
        return Login("CONNECTED")

    def fetch(self, member: MemberContext, credentials: dict[str, str], *,
              transactions: bool, holdings: bool) -> Snapshot:
        self._pause()
        per_account = self.config.get("transactions_per_account")
        accounts = [_account(member, spec) for spec in _ACCOUNTS]
        rows = None
        if transactions:
            frames = []
            for spec in _ACCOUNTS:
                count = int(per_account) if per_account is not None else spec[4]
                frames.append(self._transactions(member, spec[0], count))
            rows = pl.concat([*frames, pl.DataFrame(self._pending_and_posted(member),
                                                     schema=frames[0].schema)])
        held = _holdings(member, int(self.config.get("holdings", 5))) if holdings else None
        return Snapshot(accounts, rows, held)

    def _transactions(self, member: MemberContext, account: str, count: int) -> pl.DataFrame:
        """An account's posted transactions, built by polars from one seeded stream of
        random numbers (three a transaction: merchant, amount, category code)."""
        change_every = int(self.config.get("change_every") or 0)
        change_from = int(self.config.get("change_from_generation") or 0)
        moved = member.generation if member.generation >= change_from else 0
        draws = _draws(f"{member.guid}:{account}", 3 * count)
        k = pl.col("k")
        cents = 100 + pl.col("r2") % 24901 + (
            pl.when(k % change_every == 0).then(moved).otherwise(0) if change_every else 0)
        start = member.created_on - timedelta(days=HISTORY_DAYS)
        day = (pl.lit(start) + pl.duration(days=(k * HISTORY_DAYS) // max(count, 1))
               ).dt.strftime("%Y-%m-%d")
        merchant = (pl.col("r1") % len(_MERCHANTS)).replace_strict(
            dict(enumerate(_MERCHANTS)), return_dtype=pl.String)
        frame = pl.DataFrame({"k": range(count), "r1": draws[0::3], "r2": draws[1::3],
                              "r3": draws[2::3]}, schema=dict.fromkeys(("k", "r1", "r2", "r3"),
                                                                        pl.Int64))
        frame = frame.with_columns(day=day, merchant=merchant, cents=cents)
        credit = pl.col("merchant") == "Payroll Deposit"
        at = pl.col("day") + "T12:00:00Z"
        return frame.select(
            id=pl.format(f"{account}-t{{}}", k), account_id=pl.lit(account), date="day",
            status=pl.lit("POSTED"),
            amount=pl.format("{}.{}", pl.col("cents") // 100,
                             (pl.col("cents") % 100).cast(pl.String).str.zfill(2)),
            type=pl.when(credit).then(pl.lit("CREDIT")).otherwise(pl.lit("DEBIT")),
            description="merchant", original_description=pl.col("merchant").str.to_uppercase(),
            category=pl.col("merchant").replace_strict(_CATEGORIES, return_dtype=pl.String),
            currency_code=pl.lit("USD"), transacted_at=at, posted_at=at,
            is_income=credit, is_expense=~credit,
            merchant_category_code=1000 + pl.col("r3") % 9000)

    def _pending_and_posted(self, member: MemberContext) -> list[dict[str, Any]]:
        pending = int(self.config.get("pending", 3))
        out = []
        for g in range(member.generation + 1):
            day = member.created_on + timedelta(days=g)
            for i in range(pending):
                twin = random.Random(f"{member.guid}:pending:{g}:{i}")
                merchant = twin.choice(_MERCHANTS)
                cents = twin.randint(100, 9000)
                if g < member.generation:  # posted since
                    out.append(_transaction(f"posted-{g}-{i}", "chk-1",
                                            (day + timedelta(days=1)).isoformat(), merchant,
                                            cents, "POSTED", twin))
                else:
                    out.append(_transaction(f"pending-{g}-{i}", "chk-1", day.isoformat(),
                                            merchant, cents, "PENDING", twin))
        return out


_CHALLENGES: dict[str, dict[str, Any]] = {
    "challenge": {"type": "TEXT", "field_name": "What city were you born in?",
                  "label": "What city were you born in?"},
    "options": {"type": "OPTIONS", "field_name": "Which of these is correct?",
                "label": "Which of these is correct?",
                "options": [{"label": "correct", "value": "correct"},
                            {"label": "incorrect", "value": "incorrect"}]},
    "image": {"type": "IMAGE_DATA", "field_name": "What is in this picture?",
              "label": "What is in this picture?", "image_data": PIXEL},
}


def _draws(seed: str, count: int) -> array.array[int]:
    """``count`` 32-bit random numbers, the same for a seed on every platform."""
    values = array.array("I", random.Random(seed).randbytes(4 * count))
    if sys.byteorder == "big":
        values.byteswap()
    return values


def _account(member: MemberContext, spec: tuple[str, str, str, str, int]) -> dict[str, Any]:
    ident, name, kind, subtype, _ = spec
    rng = random.Random(f"{member.guid}:{ident}:account")
    balance = rng.randint(10000, 2000000) / 100
    record: dict[str, Any] = {
        "id": ident, "name": f"MX Bank {name}", "type": kind, "subtype": subtype,
        "balance": money(balance), "available_balance": money(balance),
        "currency_code": "USD", "account_number": f"{rng.randint(10**9, 10**10 - 1)}",
        "routing_number": "091000019", "is_closed": False, "credit_limit": None,
        "available_credit": None, "apr": None, "apy": None,
    }
    if kind == "CREDIT_CARD":
        limit = 10000
        record.update(credit_limit=money(limit), available_credit=money(limit - balance % limit),
                      available_balance=None, apr=18.99)
    if kind == "SAVINGS":
        record["apy"] = 4.1
    return record


def _transaction(ident: str, account: str, day: str, merchant: str, cents: int,
                 status: str, rng: random.Random) -> dict[str, Any]:
    credit = merchant == "Payroll Deposit"
    at = f"{day}T12:00:00Z"
    return {
        "id": ident, "account_id": account, "date": day, "status": status,
        "amount": f"{cents // 100}.{cents % 100:02d}", "type": "CREDIT" if credit else "DEBIT",
        "description": merchant, "original_description": merchant.upper(),
        "category": _CATEGORIES[merchant], "currency_code": "USD",
        "transacted_at": at, "posted_at": None if status == "PENDING" else at,
        "is_income": credit, "is_expense": not credit,
        "merchant_category_code": 1000 + int(rng.random() * 9000),
    }


def _holdings(member: MemberContext, count: int) -> list[dict[str, Any]]:
    rng = random.Random(f"{member.guid}:holdings")
    out = []
    for i in range(count):
        symbol = _SYMBOLS[i % len(_SYMBOLS)] + ("" if i < len(_SYMBOLS) else str(i))
        quantity = rng.randint(1, 500)
        price = rng.randint(1000, 50000) / 100
        cost = price * rng.uniform(0.6, 1.2)
        out.append({
            "id": f"hold-{i}", "account_id": "inv-1", "symbol": symbol,
            "description": f"{symbol} shares", "holding_type": "EQUITY",
            "quantity": f"{quantity}.0", "current_price": money(price),
            "market_value": money(quantity * price), "cost_basis": money(quantity * cost),
            "purchase_price": money(cost), "currency_code": "USD",
        })
    return out
