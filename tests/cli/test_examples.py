"""Every example in every --help page, and every command in the README's shell blocks, runs against the lab.

Real-world names in the examples (sea-hci01, fleet.yaml, avd-sh01) are mapped to the lab's; the output
of `| jq ...` and `> file` tails is not needed to prove the hcibenefit part runs. What must hold: the
command is accepted (never a usage error, exit 2) and never ends in an internal error.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from pathlib import Path

import pytest

from hcibenefit.cli.app import _walk, cli_command, run
from hcibenefit.exitcodes import ExitCode
from hcibenefit.lab.arm.spec import LAB_SUBSCRIPTION
from hcibenefit.lab.signing import LAB_SAN_PATTERN, LabSigningChain
from tests.integration.conftest import LabClient

ROOT = Path(__file__).resolve().parents[2]
# `lab serve` runs until stopped: tests/integration/test_lab_serve.py starts it as a process, runs
# status against the inventory it writes and reads /lab/state, exactly as the README shows.
SERVES_FOREVER = ("lab", "serve")

NAMES = {
    "sea-hci01": "hci-lab-01",
    "sea-hci01-n2": "lab01-n2",
    "sea-hci01-n4": "lab01-n3",
    "fra-hci01-n1": "lab02-n1",
    "seattle": "lab",
    "avd-sh01": "avd-twice",
    "old-avd-01": "avd-ok-01",
    "10,4,25": "2,2,5",  # the same code path at a scale a unit test can afford
    "/subscriptions/SUB/resourceGroups/rg-avd/providers/Microsoft.DesktopVirtualization/hostPools/pool01": (
        f"/subscriptions/{LAB_SUBSCRIPTION}/resourceGroups/rg-avd/providers/Microsoft.DesktopVirtualization"
        "/hostPools/avd-pool-01"
    ),
}
OUTPUT_FILES = (
    "status.json",
    "guests.json",
    "sweep.xml",
    "checks.md",
    "arm.json.out",
    "CHG0012345.md",
    "go-nogo.html",
)


def _example_lines(text: str) -> Iterator[str]:
    lines = text.splitlines()
    for index, line in enumerate(lines):
        if line.strip().startswith("Examples:"):
            for example in lines[index + 1 :]:
                stripped = example.strip().strip("\b")  # click's "keep these lines" marker
                if stripped and not stripped.startswith("hcibenefit") and not stripped.startswith("az "):
                    break
                if stripped.startswith("hcibenefit"):
                    yield stripped


def help_examples() -> list[tuple[str, str]]:
    found = []
    for command in _walk(cli_command()):
        for text in (command.help or "", command.epilog or ""):
            found += [(command.name or "hcibenefit", line) for line in _example_lines(text)]
    return found


def readme_examples() -> list[tuple[str, str]]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    found = []
    for block in re.findall(r"```sh\n(.*?)```", text, flags=re.S):
        for line in block.splitlines():
            command = re.search(r"(?:^|&&\s*)(hcibenefit\s.*)", line.strip())
            if command:
                found.append(("README", command.group(1)))
    return found


def _argv(line: str, lab: LabClient, tmp_path: Path, files: dict[str, Path]) -> list[str]:
    words = shlex.split(line, comments=True)[1:]  # without the program name
    for stop in ("|", ">", "&&"):
        if stop in words:
            words = words[: words.index(stop)]
    argv = []
    for word in words:
        word = NAMES.get(word, word)
        if word in ("fleet.yaml", "lab.yaml"):
            word = str(lab.inventory)
        elif word in files:
            word = str(files[word])
        elif word in OUTPUT_FILES or word.startswith("/srv/"):
            word = str(tmp_path / word.strip("/").replace("/", "-"))
        argv.append(word)
    return argv


@pytest.fixture(scope="module")
def example_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp_path = tmp_path_factory.mktemp("examples")
    chain = LabSigningChain.generate()
    document = tmp_path / "doc.json"
    import json

    document.write_text(
        json.dumps(chain.make_document(vm_id="vm-1", subscription_id="s", nonce="1234567890"))
    )
    intermediates = tmp_path / "intermediates.pem"
    intermediates.write_bytes(chain.ca_bundle_pem())
    snapshot = tmp_path / "arm.json"
    snapshot.write_text('{"count": 0, "data": [], "skip_token": null, "total_records": 0}')
    hosts = tmp_path / "session-hosts.txt"
    hosts.write_text("# the pool's session hosts\nw11ms-*\n")
    return {
        "doc.json": document,
        "intermediates.pem": intermediates,
        "arm.json": snapshot,
        "session-hosts.txt": hosts,
    }


def _unique(examples: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Each distinct command once (the README and a help page may show the same one)."""
    seen: dict[str, tuple[str, str]] = {}
    for source, line in examples:
        seen.setdefault(" ".join(shlex.split(line, comments=True)), (source, line))
    return list(seen.values())


EXAMPLES = _unique(help_examples() + readme_examples())


def test_there_are_examples_for_every_command() -> None:
    sources = {source for source, _ in help_examples()}
    for name in ("status", "enable", "disable", "check", "kick", "sync", "verify", "validate", "test", "run"):
        assert name in sources, name


@pytest.mark.parametrize(("source", "line"), EXAMPLES, ids=[f"{s}: {line}" for s, line in EXAMPLES])
def test_example_runs(
    source: str,
    line: str,
    lab: LabClient,
    tmp_path: Path,
    example_files: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = _argv(line, lab, tmp_path, example_files)
    if tuple(argv[:2]) == SERVES_FOREVER:
        pytest.skip("lab serve runs until stopped: covered by tests/integration/test_lab_serve.py")
    monkeypatch.setenv("HCIBENEFIT_INVENTORY", str(lab.inventory))
    # Never the user's own sweep history (another checkout may have written a newer format there).
    monkeypatch.setenv("HCIBENEFIT_HISTORY", str(tmp_path / "history.sqlite"))
    if argv[:2] == ["lab", "state"]:
        argv += ["--control-port", lab.lab.control_url.rsplit(":", 1)[1]]
    if argv[:2] == ["attest", "verify"]:
        argv += ["--san-pattern", LAB_SAN_PATTERN, "--ca", str(example_files["intermediates.pem"])]
    capsys.readouterr()
    code = run(argv)
    err = capsys.readouterr().err
    if code == ExitCode.USAGE and "without confirmation" in err:
        # Understood, and asked first as it should; without a terminal --yes says it.
        code = run([*argv, "--yes"])
        err = capsys.readouterr().err
    assert code != ExitCode.USAGE, f"{line!r} -> {argv}: {err}"
    assert "internal error" not in err and "Traceback" not in err, err
    assert lab.lab.open_shells() == 0
