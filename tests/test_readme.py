"""Every shell and Python block of the README runs as written, against a live server.

The setup is what `make run` does (the demo, then `sheaf serve`), in a fresh directory
that holds a link to the project's virtualenv, so `.venv/bin/sheaf` and `./var` mean there
what they mean in a checkout. The shell blocks run in order in one bash session, as if
pasted one after the other into a terminal (bash + curl + jq; scripts/services.sh installs
jq); Python blocks run in the SailPoint SDK's own virtualenv with what the shell blocks
exported. Blocks that are not meant to run are fenced ```sh title="not run"; the test
counts both kinds, so a block cannot drop out of the run unnoticed.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.sdk import venvs

pytestmark = pytest.mark.sdk  # (drives the vendor SDK; runs once, in the SQLite run)

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
NOT_RUN = 'title="not run"'
FENCE = re.compile(r"^```(\w+)([^\n]*)\n(.*?)^```", re.MULTILINE | re.DOTALL)
# The README's runnable blocks; change these with the README.
EXPECTED = {"sh": 3, "python": 1}
EXPECTED_NOT_RUN = 5


@dataclass
class Block:
    lang: str
    info: str
    code: str
    line: int


def readme_blocks() -> list[Block]:
    text = README.read_text()
    return [Block(m[1], m[2].strip(), m[3], text.count("\n", 0, m.start()) + 1)
            for m in FENCE.finditer(text)]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_healthy(url: str, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"sheaf serve exited {server.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    pytest.fail(f"sheaf serve did not become healthy:\n{log.read_text()[-3000:]}")


def test_the_readme_blocks_are_counted() -> None:
    blocks = readme_blocks()
    runnable = [b for b in blocks if b.lang in EXPECTED and NOT_RUN not in b.info]
    assert {lang: sum(b.lang == lang for b in runnable) for lang in EXPECTED} == EXPECTED
    assert sum(NOT_RUN in b.info for b in blocks) == EXPECTED_NOT_RUN
    # (a block in another language, or marked some other way, would be neither run nor
    # counted: there is none)
    assert all(b.lang in EXPECTED for b in blocks), [(b.lang, b.line) for b in blocks]


def test_readme_runs_as_written(tmp_path: Path) -> None:
    for tool in ("bash", "curl", "jq"):
        assert shutil.which(tool), f"{tool} is missing: scripts/services.sh installs it"
    blocks = [b for b in readme_blocks() if NOT_RUN not in b.info]
    sdk_python = venvs.ensure_venv("sailpoint2", venvs.SDK_SPECS["sailpoint2"])

    (tmp_path / ".venv").symlink_to(Path(sys.executable).parents[1])
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SHEAF_", "SAIL_"))}
    env["SHEAF_URL"] = url

    # `make run`, less the install: the demo (after its port check), then the server
    demo = subprocess.run([".venv/bin/sheaf", "demo", "--check-port", str(port)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert (tmp_path / "var" / "demo-credential.json").stat().st_mode & 0o077 == 0
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        server = subprocess.Popen([".venv/bin/sheaf", "serve", "--port", str(port)],
                                  cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait_healthy(url, server, log)
        state = tmp_path / "exported.json"
        script = ["set -euo pipefail"]
        for block in (b for b in blocks if b.lang == "sh"):
            script += [f"echo '=== README.md line {block.line}' >&2", block.code]
        # what the blocks exported, for the Python blocks
        script.append(f"{shlex.quote(sys.executable)} -c 'import json, os; "
                      f"print(json.dumps(dict(os.environ)))' > {shlex.quote(str(state))}")
        shell = subprocess.run(["bash", "-c", "\n".join(script)], cwd=tmp_path, env=env,
                               capture_output=True, text=True, timeout=300)
        assert shell.returncode == 0, (f"a shell block failed (the last '===' line names it):"
                                       f"\n{shell.stderr[-4000:]}\n{shell.stdout[-2000:]}"
                                       f"\nserver:\n{log.read_text()[-2000:]}")
        # what the blocks promise: the load succeeded; the CLI handed its load to the server
        assert '"completionStatus": "SUCCESS"' in shell.stdout, shell.stdout
        assert "c1 Ada Lovelace" in shell.stdout and "c2 Alan Turing" in shell.stdout
        assert "event: end" in shell.stdout
        assert "handing the job to the server" in shell.stderr, shell.stderr
        exported = json.loads(state.read_text())
        for key in ("ID", "SECRET", "SOURCE", "SHEAF_URL"):
            assert exported.get(key), key

        py_env = {k: v for k, v in exported.items() if not k.startswith("SAIL_")}
        ran = 0
        for block in (b for b in blocks if b.lang == "python"):
            result = subprocess.run([str(sdk_python), "-c", block.code], cwd=tmp_path,
                                    env=py_env, capture_output=True, text=True, timeout=180)
            assert result.returncode == 0, (f"README.md line {block.line}:\n"
                                            f"{result.stderr[-4000:]}")
            assert "SUCCESS" in result.stdout, result.stdout
            ran += 1
        assert ran == EXPECTED["python"]
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
