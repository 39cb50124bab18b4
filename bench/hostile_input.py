"""How fast hostile input fails, at the real limits: time and peak memory until the located error.

Run: python bench/hostile_input.py

The inventories are the issue's reproductions (a merge-key bomb, 480 levels of nesting, a long list,
/dev/zero); the attested documents are crafted, self-signed ones. Today's figures are in the output;
before the limits, the merge-key bomb ran for hours and the 50 MB list for ten minutes at 0.9 GB.
"""

from __future__ import annotations

import argparse
import base64
import json
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

from hcibenefit.attestation import TrustStore, verify_document
from hcibenefit.errors import ConfigError
from hcibenefit.inventory import load_inventory, parse_inventory
from hcibenefit.lab import pki
from hcibenefit.lab.signing import sign_without_attributes


def _merge_bomb(depth: int, width: int) -> str:
    lines = ["x-a0: &a0 {k: v, j: w}"]
    lines += [f"x-a{i}: &a{i} {{<<: [{', '.join([f'*a{i - 1}'] * width)}]}}" for i in range(1, depth + 1)]
    return "\n".join(lines) + f"\nclusters:\n  - {{name: c, nodes: [n1], <<: *a{depth}}}\n"


def _measure(name: str, action: Callable[[], str]) -> None:
    started = time.perf_counter()
    outcome = action()
    elapsed = time.perf_counter() - started
    # A second run for memory: tracemalloc slows allocation several times, so it is not timed.
    tracemalloc.start()
    action()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    print(f"{name:<34} {elapsed:7.2f} s  peak {peak / 2**20:7.1f} MiB  {outcome[:110]}")


def _inventory(text: str) -> Callable[[], str]:
    def run() -> str:
        try:
            parse_inventory(text, "hostile.yaml")
        except ConfigError as exc:
            return str(exc).splitlines()[0]
        return "accepted"

    return run


def main() -> None:
    argparse.ArgumentParser(description=__doc__.strip().splitlines()[0]).parse_args()  # --help; no options
    print("inventories (fails with file:line and the limit):")
    _measure("merge-key bomb, depth 7 (613 B)", _inventory(_merge_bomb(7, 9)))
    _measure("merge-key bomb, depth 9", _inventory(_merge_bomb(9, 9)))
    _measure("480 levels of nesting", _inventory("clusters: " + "[" * 480 + "]" * 480 + "\n"))
    many = "clusters:\n  - name: c\n    nodes: [n1]\n    tags: [" + ",".join(["t"] * 150_000) + "]\n"
    _measure("150,000-item list (300 KB)", _inventory(many))

    def dev_zero() -> str:
        try:
            load_inventory("/dev/zero")
        except ConfigError as exc:
            return str(exc)
        return "accepted"

    if Path("/dev/zero").exists():
        _measure("/dev/zero as the inventory", dev_zero)

    print("attested documents (a verdict with the reason):")
    attacker = pki.issue("attest.metadata.azure.com", key_kind="rsa", dns_names=["attest.metadata.azure.com"])
    trust = TrustStore.from_certificates([attacker.cert])
    stamps = '"timeStamp":{"createdOn":"01/01/20 00:00:00 -0000","expiresOn":"01/01/99 00:00:00 -0000"}'
    crafted = {
        "date out of range": '{"timeStamp":{"createdOn":"0001-01-01T00:00:00+01:00","expiresOn":"x"}}',
        "5,000-digit integer": '{"nonce":' + "7" * 5000 + "," + stamps + "}",
        "100,000 levels of nesting": '{"plan":' + "[" * 100_000 + "]" * 100_000 + "," + stamps + "}",
    }
    for name, content in crafted.items():
        pkcs7 = base64.b64encode(sign_without_attributes(content.encode(), attacker)).decode()
        document = json.dumps({"encoding": "pkcs7", "signature": pkcs7})

        def verdict(document: str = document) -> str:
            report = verify_document(document, trust=trust)
            return f"{report.failure_kind}: {report.checks[0].reason}"

        _measure(name, verdict)


if __name__ == "__main__":
    main()
