"""Client CPU per VM for what a sweep does with the nodes' answers: parse, verify, judge, remember, render.

A sweep's client CPU per VM (issue 14's target: 0.3 ms) is spent in a few places: the remoting layer
(requests, PSRP), the Azure reads, and this path, which runs once per node and once per probed guest
after the answers have arrived:

- per node: the host-facts document into typed facts (``parse_host_facts``), the guest probe's fan-out
  document into per-VM outputs (``parse_fan_out``);
- per probed guest: its probe body into a GuestProbe (``body_document``, ``parse_probe_body``), its
  attested document verified (envelope, CMS, signature, chain to a trusted root, signer SAN, nonce,
  validity) and turned into evidence (``probe_evidence``);
- once the evidence is in: the checks judge it and the results become the run document
  (``_conclude``), stored in the sweep history (sqlite; the fleet's run before is read for comparison)
  unless ``--no-history``, and rendered as JSON.

The answers are real: a lab fleet (in this process) is swept once through the real CLI and the documents
the nodes returned are recorded. Then only the client's part is timed, over and over, as process CPU
time: no network, no lab, no other engineer's work on the machine in the figure. The trust store is the
one a sweep builds (certifi, the system store and the lab's CA file), so the documents are judged against
some 150 roots as at a customer. Each node's guests are judged at one moment, as in a sweep.

Run:
    python bench/verify_scale.py                       # 1 cluster x 4 nodes x 25 VMs
    python bench/verify_scale.py --fleet 2x4x50 --repeat 5
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import io
import os
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hcibenefit.attestation.trust import TrustStore
from hcibenefit.cli.app import run
from hcibenefit.facts.guest import body_document, parse_fan_out, parse_probe_body
from hcibenefit.facts.host import parse_host_facts
from hcibenefit.inventory import Inventory
from hcibenefit.inventory.loader import load_inventory
from hcibenefit.lab.fleet import Lab
from hcibenefit.lab.spec import generate_fleet
from hcibenefit.operations.guests.check import trust_for
from hcibenefit.operations.sweep import run as sweep_run
from hcibenefit.operations.sweep.collect import probe_evidence
from hcibenefit.remoting import session as remoting_session
from hcibenefit.remoting.catalog import GUEST_PROBE, GUEST_PROBE_BODY, HOST_FACTS
from hcibenefit.report.sweep import render
from hcibenefit.sweep.history import History

Answers = list[tuple[str, Mapping[str, Any], Mapping[str, Any]]]
"""(script key, parameters sent, document returned) in the order the nodes answered."""


@dataclass
class Recorded:
    answers: Answers
    inventory: Inventory
    trust: TrustStore
    trust_s: float
    """CPU seconds building the trust store."""
    vm_count: int
    conclude: tuple[Any, ...]
    """The arguments the sweep concluded with (the collected evidence among them)."""


def record_sweep(clusters: int, nodes: int, vms: int, workdir: Path) -> Recorded:
    """Sweep a lab fleet through the real CLI: what every node answered, what the run concluded from, the
    inventory and the trust store a sweep builds."""
    captured: Answers = []
    concluded: list[tuple[Any, ...]] = []
    original = remoting_session.HostSession.run
    original_conclude = sweep_run._conclude

    def recording(self: Any, script: Any, parameters: Any = None, **kwargs: Any) -> Any:
        document = original(self, script, parameters, **kwargs)
        captured.append((script.key, dict(parameters or {}), document))
        return document

    def concluding(*args: Any) -> Any:
        concluded.append((*args[:2], list(args[2]), *args[3:]))  # the evidence list, before it is emptied
        return original_conclude(*args)

    spec = generate_fleet(clusters, nodes, vms, seed=1)
    with Lab(spec) as lab:
        inventory_path = lab.write_inventory(workdir / "inventory.yaml")
        os.environ.update(lab.environment())
        remoting_session.HostSession.run = recording  # type: ignore[method-assign]
        sweep_run._conclude = concluding  # type: ignore[assignment]
        try:
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                code = run(
                    ["-i", str(inventory_path), "sweep", "-o", "json", "--no-history", "--fail-on", "none"]
                )
        finally:
            remoting_session.HostSession.run = original  # type: ignore[method-assign]
            sweep_run._conclude = original_conclude
        if code not in (0, 1):
            raise SystemExit(f"the recording sweep exited {code}")
        inventory = load_inventory(inventory_path)
        # The inventory names the lab's CA file, which goes with the lab: the trust store is read now.
        started = time.process_time()
        trust = trust_for(inventory)
        trust_s = time.process_time() - started
    return Recorded(captured, inventory, trust, trust_s, spec.vm_count(), concluded[0])


def client_pass(answers: Answers, inventory: Inventory, trust: TrustStore) -> tuple[int, int, int]:
    """Everything the client does with the answers; (nodes, guests judged, documents verified)."""
    nodes = guests = documents = 0
    for key, parameters, document in answers:
        if key == HOST_FACTS.key:
            parse_host_facts(document, node="node", cluster="cluster")
            nodes += 1
        elif key == GUEST_PROBE.key:
            at = dt.datetime.now(dt.timezone.utc)  # one moment per node, as the sweep judges them
            nonce = str(parameters.get("Nonce") or "")
            fan = parse_fan_out(document, schema=GUEST_PROBE.key)
            for outputs in fan.outputs.values():
                probe = parse_probe_body(body_document(tuple(outputs), schema=GUEST_PROBE_BODY.key))
                # Counted before: the evidence keeps the verdict, not the document's text.
                documents += probe.document_raw is not None
                probe_evidence(probe, inventory, trust, at, nonce)
                guests += 1
    return nodes, guests, documents


def cpu_of(action: Callable[[], object], repeat: int) -> float:
    """Best process CPU seconds of `repeat` runs (the least disturbed by the rest of the machine)."""
    best = float("inf")
    for _ in range(repeat):
        started = time.process_time()
        action()
        best = min(best, time.process_time() - started)
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fleet", default="1x4x25", help="CLUSTERSxNODESxVMS_PER_NODE (default 1x4x25)")
    parser.add_argument("--repeat", type=int, default=5, help="timed passes; the best is reported")
    args = parser.parse_args(argv)
    clusters, nodes, vms = (int(p) for p in args.fleet.split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        rec = record_sweep(clusters, nodes, vms, Path(tmp))
        answers, inventory, trust, vm_count = rec.answers, rec.inventory, rec.trust, rec.vm_count
        hosts = [a for a in answers if a[0] == HOST_FACTS.key]
        probes = [a for a in answers if a[0] == GUEST_PROBE.key]
        # The first pass warms what a run warms once (imports, the trust store's anchor store), as in a sweep.
        node_count, guests, documents = client_pass(answers, inventory, trust)
        host_s = cpu_of(lambda: client_pass(hosts, inventory, trust), args.repeat)
        probe_s = cpu_of(lambda: client_pass(probes, inventory, trust), args.repeat)
        inv, request, collected, deadline_reached, waivers, _, started, finished, azure = rec.conclude

        def conclude(history: History | None) -> Any:
            # A sweep lets go of each cluster's evidence once judged (it pops them off the list), so
            # every pass gets the list afresh; the evidence itself is only read.
            return sweep_run._conclude(
                inv, request, list(collected), deadline_reached, waivers, history, started, finished, azure
            )

        judge_s = cpu_of(lambda: conclude(None), args.repeat)
        with History(Path(tmp) / "history.sqlite") as history:
            conclude(history)  # the run before, which every later run is compared with
            history_s = cpu_of(lambda: conclude(history), args.repeat) - judge_s
        document = conclude(None).document
        render_s = cpu_of(lambda: render(document, "json", io.StringIO(), None), args.repeat)
    results = len(document["findings"])

    def per(seconds: float, what: str = "VM", count: int = vm_count) -> str:
        return f"{seconds * 1000:7.1f} ms = {seconds * 1000 / max(count, 1):.3f} ms per {what}"

    print(
        f"fleet {args.fleet}: {node_count} nodes, {vm_count} VMs, {guests} guests probed, {documents} "
        f"documents, {results} results"
    )
    print(f"  trust store (certifi, system, CA files), once per run: {rec.trust_s * 1000:.1f} ms")
    print(
        f"  host facts parse:                      {per(host_s)} ({host_s * 1000 / max(node_count, 1):.2f} ms per node)"
    )
    print(
        f"  guest answers parse + verification:    {per(probe_s)} ({probe_s * 1000 / max(guests, 1):.3f} ms per probed guest)"
    )
    print(f"  checks and the run document:           {per(judge_s)}")
    print(f"  sweep history (store, compare):        {per(history_s)}")
    print(f"  JSON rendering:                        {per(render_s)}")
    total = host_s + probe_s + judge_s + history_s + render_s
    print(
        f"  in all:                                {per(total)} (issue 14's budget for everything: 0.3 ms per VM)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
