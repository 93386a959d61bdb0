"""A load generator that times every request: the benchmarks' latency percentiles.

Why not wrk's: Debian's wrk 4.1.0 misreports latency when a few answers are slow. Against
a bare uvicorn app that answers 0.5% of requests after 500 ms and the rest at once, with
50 connections, it printed 20,000 requests/s with a mean latency of 119 ms and a p90 of
398 ms; Little's law allows a mean of 2.5 ms at that rate over 50 connections, and this
client, against the same app, timed a p99 of 3 ms. wrk's request counts are right; its
percentiles overweight the slow answers by orders of magnitude. (With no slow answers the
two agree.)

Each of ``processes`` processes runs ``connections / processes`` keep-alive HTTP/1.1
connections on one asyncio loop (uvloop when installed), each sending its next request as
soon as the answer to the last has arrived (as wrk does), and keeps every request's
latency. Percentiles are exact, over every request answered within the run. It costs more
CPU than wrk, and that CPU comes from the two cores the server has, so its figures are
conservative.

    python bench/serving/timed.py SPEC.json   # (what ``run`` starts: prints a JSON result)
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import random
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

TIMEOUT_S = 10.0  # a slower answer counts as an error ("timeout"), as with wrk


@dataclass
class Load:
    """What each request is: ``method`` on one of ``paths`` (at random), plus
    ``&offset=`` a random number below ``offset_below`` when it is set."""

    name: str
    method: str
    paths: list[str]
    headers: dict[str, str]
    connections: int
    offset_below: int = 0
    ok_below: int = 400  # an answer with this status or above counts as an error


@dataclass
class Timed:
    name: str
    connections: int
    seconds: float
    requests: int
    errors: dict[str, int] = field(default_factory=dict)
    percentiles_ms: dict[str, float] = field(default_factory=dict)
    mean_ms: float | None = None
    max_ms: float | None = None

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    def ms(self, p: float) -> float | None:
        return self.percentiles_ms.get(_key(p))

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "rps": round(self.rps, 1), "tool": "timed"}


PERCENTILES = (50, 90, 95, 99, 99.9)


def _key(p: float) -> str:
    return f"p{p:g}"


def run(base_url: str, loads: list[Load], seconds: float, processes: int = 2) -> list[Timed]:
    """Every load at once for ``seconds``, its connections spread over ``processes``."""
    url = urlsplit(base_url)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    shares: list[list[dict[str, Any]]] = [[] for _ in range(processes)]
    for index, load in enumerate(loads):
        for slot in range(processes):
            count = load.connections // processes + (slot < load.connections % processes)
            if count:
                shares[slot].append({**asdict(load), "connections": count, "index": index})
    with tempfile.TemporaryDirectory(prefix="bench-timed-") as tmp:
        children = []
        for slot, share in enumerate(shares):
            if not share:
                continue
            spec = Path(tmp) / f"spec-{slot}.json"
            spec.write_text(json.dumps({"host": host, "port": port, "seconds": seconds,
                                        "seed": slot, "loads": share}))
            children.append(subprocess.Popen([sys.executable, __file__, str(spec)],
                                             stdout=subprocess.PIPE, text=True))
        parts = []
        for child in children:
            out, _ = child.communicate()
            if child.returncode != 0:
                raise RuntimeError(f"the load process failed (exit {child.returncode})")
            parts.append(json.loads(out))
    results = []
    for index, load in enumerate(loads):
        mine = [p for part in parts for p in part if p["index"] == index]
        latencies = sorted(x for p in mine for x in p["latencies"])
        errors: dict[str, int] = {}
        for p in mine:
            for kind, n in p["errors"].items():
                errors[kind] = errors.get(kind, 0) + n
        elapsed = max((p["seconds"] for p in mine), default=seconds)
        result = Timed(name=load.name, connections=load.connections, seconds=elapsed,
                       requests=len(latencies) + sum(errors.values()) - errors.get("status", 0),
                       errors=errors)
        if latencies:
            result.percentiles_ms = {_key(p): _percentile(latencies, p) * 1000
                                     for p in PERCENTILES}
            result.mean_ms = sum(latencies) / len(latencies) * 1000
            result.max_ms = latencies[-1] * 1000
        results.append(result)
    return results


def _percentile(ordered: list[float], p: float) -> float:
    """The nearest-rank percentile: the smallest value with p% of them at or below it."""
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


# -- the load process -------------------------------------------------------------------

async def _connection(host: str, port: int, load: dict[str, Any], deadline: float,
                      rng: random.Random, latencies: list[float],
                      errors: dict[str, int]) -> None:
    head = "".join(f"{k}: {v}\r\n" for k, v in load["headers"].items())
    head += f"Host: {host}:{port}\r\nContent-Length: 0\r\n\r\n"
    reader = writer = None
    while time.perf_counter() < deadline:
        if writer is None:
            try:
                reader, writer = await asyncio.open_connection(host, port)
            except OSError:
                errors["connect"] = errors.get("connect", 0) + 1
                await asyncio.sleep(0.01)
                continue
        assert reader is not None
        path = rng.choice(load["paths"])
        if load["offset_below"]:
            path += f"&offset={rng.randrange(load['offset_below'])}"
        sent = time.perf_counter()
        try:
            writer.write(f"{load['method']} {path} HTTP/1.1\r\n{head}".encode())
            status, keep = await asyncio.wait_for(_answer(reader), TIMEOUT_S)
        except (TimeoutError, OSError, ValueError, asyncio.IncompleteReadError) as exc:
            kind = "timeout" if isinstance(exc, TimeoutError) else "read"
            errors[kind] = errors.get(kind, 0) + 1
            writer.close()
            reader = writer = None
            continue
        if time.perf_counter() > deadline:
            break  # (answered after the run: not counted, as wrk does not)
        latencies.append(time.perf_counter() - sent)
        if status >= load["ok_below"]:
            errors["status"] = errors.get("status", 0) + 1
        if not keep:
            writer.close()
            reader = writer = None
    if writer is not None:
        writer.close()


async def _answer(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """Read one response; (status, whether the connection stays open)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length, chunked, keep = 0, False, True
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
        elif name == b"connection" and b"close" in value.lower():
            keep = False
    if not chunked:
        await reader.readexactly(length)
        return status, keep
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        await reader.readexactly(size + 2)
        if size == 0:
            return status, keep


async def _main(spec: dict[str, Any]) -> list[dict[str, Any]]:
    deadline = time.perf_counter() + float(spec["seconds"])
    started = time.perf_counter()
    rng = random.Random(spec["seed"] * 7919 + os.getpid())
    out, tasks = [], []
    for load in spec["loads"]:
        latencies: list[float] = []
        errors: dict[str, int] = {}
        out.append({"index": load["index"], "latencies": latencies, "errors": errors})
        tasks += [_connection(spec["host"], spec["port"], load, deadline, rng, latencies,
                              errors) for _ in range(load["connections"])]
    await asyncio.gather(*tasks)
    for part in out:  # (answers after the deadline are not counted)
        part["seconds"] = min(time.perf_counter() - started, float(spec["seconds"]))
    return out


if __name__ == "__main__":
    spec = json.loads(Path(sys.argv[1]).read_text())
    try:
        import uvloop  # (a faster loop, where it is installed)

        result = uvloop.run(_main(spec))
    except ImportError:
        result = asyncio.run(_main(spec))
    json.dump(result, sys.stdout)
