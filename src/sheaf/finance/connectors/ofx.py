"""OFX: Direct Connect to an institution's OFX server (ofxtools' client), and OFX / QFX
statement files (ofxtools' parser). Bank, credit-card and investment statements; an
investment statement's positions become holdings.

Institution config: ``url``, ``org``, ``fid``, ``bank_id`` (bank statements),
``broker_id`` (investment statements), ``version`` (default 102), ``days`` of history
(default 730), and ``accounts``: ``[{"id": ..., "type": "CHECKING" | "SAVINGS" |
"MONEYMRKT" | "CREDITLINE" | "CREDITCARD" | "INVESTMENT"}]``.

Failures map to connection statuses: sign-on refused (OFX 15500) DENIED, locked out
(15502) LOCKED, a server that times out, cannot be reached or answers an HTTP error
DEGRADED, a document that cannot be parsed FAILED.
"""

from __future__ import annotations

import logging
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from io import BytesIO
from typing import Any

from ofxtools.Client import CcStmtRq, InvStmtRq, OFXClient, StmtRq
from ofxtools.Parser import OFXTree

from sheaf.finance.connectors.base import ConnectorError, Login, MemberContext, Snapshot, money

log = logging.getLogger(__name__)

BANK_TYPES = {"CHECKING", "SAVINGS", "MONEYMRKT", "CREDITLINE"}
MX_ACCOUNT_TYPE = {"CHECKING": "CHECKING", "SAVINGS": "SAVINGS", "MONEYMRKT": "SAVINGS",
                   "CREDITLINE": "LINE_OF_CREDIT", "CREDITCARD": "CREDIT_CARD",
                   "INVESTMENT": "INVESTMENT"}
DENIED_CODES = {15500, 15501, 15510}
LOCKED_CODES = {15502}


class MalformedOFX(ConnectorError):
    def __init__(self, detail: str) -> None:
        super().__init__("FAILED", f"The OFX document could not be read: {detail}")


def snapshot_from_ofx(data: bytes) -> Snapshot:
    """Accounts, transactions and holdings of every statement in an OFX document."""
    try:
        tree = OFXTree()
        tree.parse(BytesIO(data))
        ofx = tree.convert()
    except Exception as exc:  # ofxtools raises many kinds for a bad document
        raise MalformedOFX(f"{type(exc).__name__}: {exc}"[:300]) from None
    code = _signon_code(ofx)
    if code in DENIED_CODES:
        raise ConnectorError("DENIED", f"The institution refused the sign-on (OFX {code})")
    if code in LOCKED_CODES:
        raise ConnectorError("LOCKED", f"The institution locked the account (OFX {code})")
    if code not in (None, 0):
        raise ConnectorError("FAILED", f"The institution answered OFX status {code}")
    securities = _securities(ofx)
    accounts: list[dict[str, Any]] = []
    transactions: list[dict[str, Any]] = []
    holdings: list[dict[str, Any]] = []
    try:
        for stmt in ofx.statements:
            kind = type(stmt).__name__
            if kind == "INVSTMTRS":
                _investment(stmt, securities, accounts, transactions, holdings)
            else:
                _banking(stmt, kind, accounts, transactions)
    except (AttributeError, TypeError, ValueError) as exc:
        raise MalformedOFX(f"{type(exc).__name__}: {exc}"[:300]) from None
    return Snapshot(accounts, transactions, holdings)


def _signon_code(ofx: Any) -> int | None:
    try:
        return int(ofx.signonmsgsrsv1.sonrs.status.code)
    except (AttributeError, TypeError, ValueError):
        return None


def _securities(ofx: Any) -> dict[str, tuple[str | None, str | None]]:
    out: dict[str, tuple[str | None, str | None]] = {}
    seclist = getattr(ofx, "seclistmsgsrsv1", None)
    for group in seclist or []:
        for info in group:
            secinfo = info.secinfo
            out[str(secinfo.secid.uniqueid)] = (secinfo.ticker, secinfo.secname)
    return out


def _banking(stmt: Any, kind: str, accounts: list[dict[str, Any]],
             transactions: list[dict[str, Any]]) -> None:
    account = stmt.account
    acctid = str(account.acctid)
    ofx_type = "CREDITCARD" if kind == "CCSTMTRS" else str(account.accttype or "CHECKING")
    balance = stmt.ledgerbal.balamt if stmt.ledgerbal is not None else None
    available = stmt.availbal.balamt if getattr(stmt, "availbal", None) is not None else None
    accounts.append(_account(acctid, ofx_type, balance, available, stmt.curdef))
    for trn in stmt.banktranlist or []:
        transactions.append(_transaction(trn, acctid, stmt.curdef))


def _investment(stmt: Any, securities: dict[str, tuple[str | None, str | None]],
                accounts: list[dict[str, Any]], transactions: list[dict[str, Any]],
                holdings: list[dict[str, Any]]) -> None:
    acctid = str(stmt.invacctfrom.acctid)
    cash = stmt.invbal.availcash if stmt.invbal is not None else Decimal(0)
    value = Decimal(cash)
    for position in stmt.invposlist or []:
        pos = position.invpos
        uniqueid = str(pos.secid.uniqueid)
        ticker, name = securities.get(uniqueid, (None, None))
        value += Decimal(pos.mktval)
        holdings.append({
            "id": uniqueid, "account_id": acctid, "symbol": ticker, "description": name,
            "holding_type": type(position).__name__.removeprefix("POS"),
            "quantity": str(pos.units), "current_price": money(pos.unitprice),
            "market_value": money(pos.mktval), "cost_basis": None, "purchase_price": None,
            "currency_code": stmt.curdef, "cusip": uniqueid
            if str(pos.secid.uniqueidtype) == "CUSIP" else None,
        })
    accounts.append(_account(acctid, "INVESTMENT", value, cash, stmt.curdef))
    for trn in stmt.invtranlist or []:
        if hasattr(trn, "stmttrn"):  # cash moving in or out of the account
            transactions.append(_transaction(trn.stmttrn, acctid, stmt.curdef))
        elif hasattr(trn, "invtran"):  # buys, sells, income
            inv = trn.invtran
            total = Decimal(getattr(trn, "total", 0) or 0)
            day = inv.dttrade.date().isoformat()
            transactions.append({
                "id": str(inv.fitid), "account_id": acctid, "date": day, "status": "POSTED",
                "amount": money(abs(total)), "type": "CREDIT" if total > 0 else "DEBIT",
                "description": inv.memo or type(trn).__name__, "currency_code": stmt.curdef,
                "transacted_at": f"{day}T00:00:00Z", "posted_at": f"{day}T00:00:00Z"})


def _account(acctid: str, ofx_type: str, balance: Any, available: Any, currency: Any
             ) -> dict[str, Any]:
    return {"id": acctid, "name": f"{ofx_type.title()} {acctid[-4:]}",
            "type": MX_ACCOUNT_TYPE.get(ofx_type, "ANY"), "subtype": "NONE",
            "balance": money(balance) if balance is not None else None,
            "available_balance": money(available) if available is not None else None,
            "currency_code": str(currency or "USD"), "account_number": acctid,
            "is_closed": False}


def _transaction(trn: Any, acctid: str, currency: Any) -> dict[str, Any]:
    amount = Decimal(trn.trnamt)
    day = trn.dtposted.date().isoformat()
    return {"id": str(trn.fitid), "account_id": acctid, "date": day, "status": "POSTED",
            "amount": money(abs(amount)), "type": "CREDIT" if amount > 0 else "DEBIT",
            "description": trn.name or trn.memo, "memo": trn.memo,
            "original_description": trn.name, "currency_code": str(currency or "USD"),
            "check_number_string": trn.checknum, "transacted_at": f"{day}T00:00:00Z",
            "posted_at": f"{day}T00:00:00Z"}


class _Client(OFXClient):
    """ofxtools' client, posting with urllib whatever is installed: ofxtools switches to
    ``requests`` when it is importable, which hands back an HTTP 500's error page as if it
    were the OFX answer. Here an HTTP error raises."""

    def post_request(self, url: str, serialized_request: bytes, timeout: float | None
                     ) -> bytes:
        request = urllib.request.Request(url, method="POST", data=serialized_request,
                                         headers=self.http_headers)
        with urllib.request.urlopen(request, timeout=timeout or 30.0) as response:
            return bytes(response.read())


class OfxConnector:
    """OFX Direct Connect: one statement request for every configured account."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.timeout = float(config.get("timeout_seconds", 30))
        self._snapshot: Snapshot | None = None

    def login(self, credentials: dict[str, str], answers: list[str] | None) -> Login:
        # OFX has no separate sign-on: the statement request carries it.
        self._snapshot = self._request(credentials)
        return Login("CONNECTED")

    def fetch(self, member: MemberContext, credentials: dict[str, str], *,
              transactions: bool, holdings: bool) -> Snapshot:
        snap = self._snapshot or self._request(credentials)
        return Snapshot(snap.accounts, snap.transactions if transactions else None,
                        snap.holdings if holdings else None)

    def _request(self, credentials: dict[str, str]) -> Snapshot:
        cfg = self.config
        if not cfg.get("url") or not cfg.get("accounts"):
            raise ConnectorError("FAILED", "The institution has no OFX url or accounts set")
        if not str(cfg["url"]).lower().startswith(("https://", "http://")):
            raise ConnectorError("FAILED", "The institution's OFX url must be http(s)")
        client = _Client(str(cfg["url"]), userid=credentials.get("username"),
                           org=cfg.get("org"), fid=cfg.get("fid"),
                           version=int(cfg.get("version", 102)), bankid=cfg.get("bank_id"),
                           brokerid=cfg.get("broker_id"))
        end = datetime.now(UTC)
        start = end - timedelta(days=int(cfg.get("days", 730)))
        requests: list[Any] = []
        for account in cfg["accounts"]:
            kind = str(account.get("type", "CHECKING")).upper()
            if kind in BANK_TYPES:
                requests.append(StmtRq(acctid=str(account["id"]), accttype=kind,
                                       dtstart=start, dtend=end))
            elif kind == "CREDITCARD":
                requests.append(CcStmtRq(acctid=str(account["id"]), dtstart=start, dtend=end))
            elif kind == "INVESTMENT":
                requests.append(InvStmtRq(acctid=str(account["id"]), dtstart=start,
                                          dtend=end, dtasof=end))
        try:
            answer = client.request_statements(credentials.get("password", ""), *requests,
                                               timeout=self.timeout, skip_profile=True)
        except urllib.error.HTTPError as exc:
            raise ConnectorError("DEGRADED",
                                 f"The institution's OFX server answered HTTP {exc.code}") \
                from None
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ConnectorError("DEGRADED", "The institution's OFX server did not answer "
                                             f"in time or could not be reached ({reason})") \
                from None
        return snapshot_from_ofx(answer.read())


class StatementFileConnector:
    """A manual member's uploaded OFX / QFX file (``config["statement"]``: its path).
    The file is the member's whole current view, as any snapshot is."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config

    def _read(self) -> Snapshot:
        path = self.config.get("statement")
        if not path:
            raise ConnectorError("FAILED", "No statement file was uploaded for this member")
        try:
            with open(str(path), "rb") as handle:
                return snapshot_from_ofx(handle.read())
        except OSError as exc:
            raise ConnectorError("FAILED", f"The uploaded file is unreadable: {exc}") from None

    def login(self, credentials: dict[str, str], answers: list[str] | None) -> Login:
        self._snapshot = self._read()
        return Login("CONNECTED")

    def fetch(self, member: MemberContext, credentials: dict[str, str], *,
              transactions: bool, holdings: bool) -> Snapshot:
        snap = getattr(self, "_snapshot", None) or self._read()
        return Snapshot(snap.accounts, snap.transactions if transactions else None,
                        snap.holdings if holdings else None)
