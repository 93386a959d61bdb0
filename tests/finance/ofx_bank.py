"""A loopback OFX Direct Connect server for tests: real HTTP, real OFX 1.02 documents.

``/ofx`` answers a bank, a credit-card and an investment statement (sign-on refused, OFX
15500, for the password ``wrong``; locked out, 15502, for ``lock-me-out``);
``/malformed`` a broken document; ``/slow`` waits
``slow_seconds`` before answering; ``/error`` answers HTTP 500.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HEADER = ("OFXHEADER:100\r\nDATA:OFXSGML\r\nVERSION:102\r\nSECURITY:NONE\r\n"
          "ENCODING:USASCII\r\nCHARSET:1252\r\nCOMPRESSION:NONE\r\nOLDFILEUID:NONE\r\n"
          "NEWFILEUID:NONE\r\n\r\n")


def signon(code: int) -> str:
    return (f"<SIGNONMSGSRSV1><SONRS><STATUS><CODE>{code}<SEVERITY>"
            f"{'INFO' if code == 0 else 'ERROR'}</STATUS><DTSERVER>20260101120000"
            "<LANGUAGE>ENG<FI><ORG>FAKE<FID>1234</FI></SONRS></SIGNONMSGSRSV1>")


def stmttrn(fitid: str, amount: str, day: str, name: str) -> str:
    kind = "CREDIT" if not amount.startswith("-") else "DEBIT"
    return (f"<STMTTRN><TRNTYPE>{kind}<DTPOSTED>{day}<TRNAMT>{amount}<FITID>{fitid}"
            f"<NAME>{name}</STMTTRN>")


def document(checking: list[tuple[str, str, str, str]], code: int = 0) -> str:
    if code:
        return HEADER + "<OFX>" + signon(code) + "</OFX>"
    bank = "".join(stmttrn(*t) for t in checking)
    return HEADER + "<OFX>" + signon(0) + (
        "<BANKMSGSRSV1><STMTTRNRS><TRNUID>1<STATUS><CODE>0<SEVERITY>INFO</STATUS><STMTRS>"
        "<CURDEF>USD<BANKACCTFROM><BANKID>121000248<ACCTID>1111<ACCTTYPE>CHECKING"
        "</BANKACCTFROM><BANKTRANLIST><DTSTART>20250101<DTEND>20260101" + bank +
        "</BANKTRANLIST><LEDGERBAL><BALAMT>987.66<DTASOF>20260101</LEDGERBAL>"
        "<AVAILBAL><BALAMT>900.00<DTASOF>20260101</AVAILBAL></STMTRS></STMTTRNRS>"
        "</BANKMSGSRSV1>"
        "<CREDITCARDMSGSRSV1><CCSTMTTRNRS><TRNUID>2<STATUS><CODE>0<SEVERITY>INFO</STATUS>"
        "<CCSTMTRS><CURDEF>USD<CCACCTFROM><ACCTID>4444</CCACCTFROM><BANKTRANLIST>"
        "<DTSTART>20250101<DTEND>20260101"
        + stmttrn("C1", "-50.00", "20251203", "Grocery Mart") +
        "</BANKTRANLIST><LEDGERBAL><BALAMT>-50.00<DTASOF>20260101</LEDGERBAL></CCSTMTRS>"
        "</CCSTMTTRNRS></CREDITCARDMSGSRSV1>"
        "<INVSTMTMSGSRSV1><INVSTMTTRNRS><TRNUID>3<STATUS><CODE>0<SEVERITY>INFO</STATUS>"
        "<INVSTMTRS><DTASOF>20260101<CURDEF>USD<INVACCTFROM><BROKERID>broker.example"
        "<ACCTID>7777</INVACCTFROM><INVTRANLIST><DTSTART>20250101<DTEND>20260101"
        "<INVBANKTRAN>" + stmttrn("I1", "25.00", "20251210", "Dividend") +
        "<SUBACCTFUND>CASH</INVBANKTRAN></INVTRANLIST><INVPOSLIST><POSSTOCK><INVPOS><SECID>"
        "<UNIQUEID>922908769<UNIQUEIDTYPE>CUSIP</SECID><HELDINACCT>CASH<POSTYPE>LONG"
        "<UNITS>10<UNITPRICE>250.00<MKTVAL>2500.00<DTPRICEASOF>20260101</INVPOS></POSSTOCK>"
        "</INVPOSLIST><INVBAL><AVAILCASH>100.00<MARGINBALANCE>0<SHORTBALANCE>0</INVBAL>"
        "</INVSTMTRS></INVSTMTTRNRS></INVSTMTMSGSRSV1>"
        "<SECLISTMSGSRSV1><SECLIST><STOCKINFO><SECINFO><SECID><UNIQUEID>922908769"
        "<UNIQUEIDTYPE>CUSIP</SECID><SECNAME>Vanguard Total Stock Market ETF<TICKER>VTI"
        "</SECINFO></STOCKINFO></SECLIST></SECLISTMSGSRSV1></OFX>")


@dataclass
class Bank:
    url: str
    checking: list[tuple[str, str, str, str]] = field(default_factory=lambda: [
        ("F1", "-12.34", "20251201", "Coffee Corner"),
        ("F2", "1000.00", "20251215", "Payroll")])
    slow_seconds: float = 2.0
    requests: list[str] = field(default_factory=list)


@contextmanager
def ofx_bank() -> Iterator[Bank]:
    bank = Bank(url="")

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
            bank.requests.append(body)
            if self.path == "/error":
                self.send_error(500, "Internal Server Error")
                return
            if self.path == "/slow":
                time.sleep(bank.slow_seconds)
            if self.path == "/malformed":
                answer = HEADER + "<OFX><SIGNONMSGSRSV1><SONRS><STATUS><CODE>0</OFX"
            else:
                password = re.search(r"<USERPASS>([^<\r\n]+)", body)
                given = password.group(1) if password else ""
                code = {"wrong": 15500, "lock-me-out": 15502}.get(given, 0)
                answer = document(bank.checking, code)
            data = answer.encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-ofx")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    bank.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield bank
    finally:
        server.shutdown()
        server.server_close()
