"""Where a status run's client CPU goes, per node: thread CPU time by phase, measured, not sampled.

`sweep_scale.py` says how much CPU the client uses per node; this says where. It starts a lab fleet,
then runs the real `status` command in a child process in which a few dozen functions (pypsrp's
serialiser, ElementTree, requests' adapter, TLS handshakes, the facts parser, ...) are wrapped to add
up the CPU time of the calling thread (`time.thread_time`) spent inside them. Each phase is reported
inclusive and exclusive (minus the wrapped phases called from inside it), per node, and the rest of
the process CPU as "(not in a wrapped phase)". Two fleet sizes give the per-node cost of each phase
free of start-up.

The wrappers cost CPU themselves (about a microsecond a call); compare phases with each other and runs
with each other, not with `sweep_scale.py`'s figures.

Run:
    python bench/client_cpu_phases.py                       # fleets 4x4x1 and 40x4x1
    python bench/client_cpu_phases.py --fleet 10x4x25 --fleet 40x4x25 --runs 3
    python bench/client_cpu_phases.py --fleet 10x4x1 --fleet 100x4x1 --latency 200   # many nodes in flight
"""

from __future__ import annotations

import argparse
import functools
import gc
import importlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent

# (module, attribute path, phase name). Order matters only for reading the output.
PHASES: list[tuple[str, str, str]] = [
    ("hcibenefit.inventory.loader", "load_inventory", "inventory: load and validate"),
    ("hcibenefit.operations.gather", "fetch_host_facts", "node: the whole host-facts fetch"),
    ("hcibenefit.remoting.session", "HostSession._open_once", "session: open (ours)"),
    ("hcibenefit.remoting.session", "HostSession._run_once", "session: run the script (ours)"),
    ("hcibenefit.remoting.session", "HostSession.close", "session: close (ours)"),
    ("pypsrp.powershell", "RunspacePool.open", "pypsrp: RunspacePool.open"),
    ("pypsrp.powershell", "PowerShell.begin_invoke", "pypsrp: PowerShell.begin_invoke"),
    ("pypsrp.powershell", "PowerShell.poll_invoke", "pypsrp: PowerShell.poll_invoke"),
    ("pypsrp.powershell", "RunspacePool.close", "pypsrp: RunspacePool.close"),
    ("pypsrp.wsman", "WSMan.invoke", "pypsrp: WSMan.invoke (envelope, send, parse)"),
    ("pypsrp.wsman", "_TransportHTTP.send", "pypsrp: transport send (request, response)"),
    ("pypsrp.wsman", "WSMan.__init__", "pypsrp: WSMan() (incl. envelope-size calculation)"),
    ("pypsrp.wsman", "WSMan._calc_envelope_size", "pypsrp: envelope-size calculation"),
    ("pypsrp.wsman", "_TransportHTTP._build_session", "pypsrp: requests session build"),
    ("pypsrp.wsman", "WSMan._create_header", "pypsrp: SOAP header build"),
    ("pypsrp.wsman", "WSMan._parse_response", "pypsrp: SOAP response parse"),
    ("pypsrp.powershell", "Fragmenter.fragment", "pypsrp: PSRP fragmenting (incl. message pack)"),
    ("pypsrp.powershell", "Fragmenter.defragment", "pypsrp: PSRP defragmenting (incl. unpack)"),
    ("pypsrp.serializer", "Serializer.serialize", "pypsrp: CLIXML serialise"),
    ("pypsrp.serializer", "Serializer.deserialize", "pypsrp: CLIXML deserialise"),
    ("pypsrp.complex_objects", "deepcopy", "pypsrp: deepcopy of pipeline commands"),
    ("xml.etree.ElementTree", "tostring", "ElementTree.tostring"),
    ("xml.etree.ElementTree", "fromstring", "ElementTree.fromstring (XML)"),
    ("requests.sessions", "Session.request", "requests: Session.request (all of one request)"),
    ("requests.sessions", "Session.prepare_request", "requests: prepare request"),
    ("requests.adapters", "HTTPAdapter.send", "requests: adapter send (urllib3, TLS, socket)"),
    ("ssl", "SSLSocket.do_handshake", "TLS handshake"),
    ("ssl", "SSLSocket.sendall", "TLS write"),
    ("ssl", "SSLSocket.recv_into", "TLS read"),
    ("http.client", "HTTPResponse.begin", "http.client: response status and headers"),
    ("uuid", "uuid4", "uuid4"),
    ("hcibenefit.facts.host", "parse_host_facts", "facts: parse host facts"),
    ("hcibenefit.checks.assess", "assess_cluster", "checks: assess a cluster"),
    ("hcibenefit.operations.status_report", "status_report", "report: build"),
    ("hcibenefit.report.render", "render", "report: render"),
]


class Ledger:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.inclusive: dict[str, float] = {}
        self.exclusive: dict[str, float] = {}
        self.calls: dict[str, int] = {}
        self.local = threading.local()

    def wrap(self, name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        ledger = self

        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            stack: list[list[float]] = ledger.local.__dict__.setdefault("stack", [])
            if any(frame[2] == id(name) for frame in stack):  # recursion: count the outermost call only
                return function(*args, **kwargs)
            frame = [time.thread_time(), 0.0, id(name)]
            stack.append(frame)
            try:
                return function(*args, **kwargs)
            finally:
                stack.pop()
                spent = time.thread_time() - frame[0]
                if stack:
                    stack[-1][1] += spent
                with ledger.lock:
                    ledger.inclusive[name] = ledger.inclusive.get(name, 0.0) + spent
                    ledger.exclusive[name] = ledger.exclusive.get(name, 0.0) + spent - frame[1]
                    ledger.calls[name] = ledger.calls.get(name, 0) + 1

        return wrapper

    def watch_collections(self) -> None:
        """Count the garbage collector's passes as a phase of their own, by generation.

        A collection runs on whichever thread allocated past a threshold, inside whatever phase that
        thread was in; its CPU is moved out of that phase's exclusive time into this one."""
        ledger = self

        def on_collection(event: str, info: dict[str, int]) -> None:
            if event == "start":
                ledger.local.__dict__["collection_started"] = time.thread_time()
                return
            started = ledger.local.__dict__.pop("collection_started", None)
            if started is None:
                return
            spent = time.thread_time() - started
            stack: list[list[float]] = ledger.local.__dict__.setdefault("stack", [])
            if stack:
                stack[-1][1] += spent
            name = f"garbage collection, generation {info.get('generation', '?')}"
            with ledger.lock:
                ledger.inclusive[name] = ledger.inclusive.get(name, 0.0) + spent
                ledger.exclusive[name] = ledger.exclusive.get(name, 0.0) + spent
                ledger.calls[name] = ledger.calls.get(name, 0) + 1

        gc.callbacks.append(on_collection)


def _child(inventory: str, out: str) -> None:
    """Run `status` in this process with the phases wrapped; write the ledger as JSON."""
    from hcibenefit.remoting import pypsrp_fixes

    pypsrp_fixes.load()
    ledger = Ledger()
    ledger.watch_collections()
    names = {name for *_, name in PHASES}
    interned = {name: name for name in names}
    for module_name, path, name in PHASES:
        try:
            owner: Any = importlib.import_module(module_name)
        except ImportError:
            continue
        *parents, attribute = path.split(".")
        for parent in parents:
            owner = getattr(owner, parent, None)
        if owner is None or not hasattr(owner, attribute):
            continue
        setattr(owner, attribute, ledger.wrap(interned[name], getattr(owner, attribute)))
    element_tree = sys.modules["xml.etree.ElementTree"]
    for module in ("pypsrp.wsman", "pypsrp.serializer", "pypsrp.messages"):
        proxy = sys.modules[module].ET  # pypsrp_fixes may give pypsrp its own ElementTree
        if proxy is not element_tree and not hasattr(proxy.tostring, "__wrapped__"):
            proxy.tostring = ledger.wrap(interned["ElementTree.tostring"], proxy.tostring)
            proxy.fromstring = ledger.wrap(interned["ElementTree.fromstring (XML)"], proxy.fromstring)

    from hcibenefit.cli.app import main

    started = time.process_time()
    sys.argv = ["hcibenefit", "-i", inventory, "status", "-o", "json", "--fail-on", "none"]
    stdout = sys.stdout
    sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - the report is not what is measured
    try:
        main()
    except SystemExit:
        pass
    finally:
        sys.stdout = stdout
    total = time.process_time() - started
    Path(out).write_text(
        json.dumps(
            {
                "process_cpu_s": total,
                "inclusive": ledger.inclusive,
                "exclusive": ledger.exclusive,
                "calls": ledger.calls,
            }
        )
    )


def measure(fleet: str, runs: int, workdir: Path, latency_ms: int = 0) -> dict[str, Any]:
    sys.path.insert(0, str(HERE))
    from sweep_scale import Fleet, LabProcess, client_environment

    lab = LabProcess(Fleet.parse(fleet), workdir, seed=1)
    try:
        if latency_ms:
            lab.set_latency(latency_ms)
        env = client_environment(lab.environment)
        results = []
        for index in range(runs):
            out = workdir / f"phases-{fleet}-{index}.json"
            argv = [sys.executable, __file__, "--child", str(lab.inventory), str(out)]
            subprocess.run(argv, env=env, check=True)
            results.append(json.loads(out.read_text()))
        best = min(results, key=lambda r: r["process_cpu_s"])  # least disturbed by the rest of the machine
        vms = len(lab.node_names) * Fleet.parse(fleet).vms_per_node
        return {"fleet": fleet, "nodes": len(lab.node_names), "vms": vms, **best}
    finally:
        lab.stop()


def main() -> int:
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        _child(sys.argv[2], sys.argv[3])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--fleet",
        action="append",
        help="CxNxV, two or more (default 1x4x1 and 40x4x1); the same nodes with more VMs gives CPU per VM",
    )
    parser.add_argument("--runs", type=int, default=3, help="runs per fleet; the one with least CPU is kept")
    parser.add_argument(
        "--latency",
        type=int,
        default=0,
        help="ms the lab waits before each answer (more nodes in flight at once)",
    )
    args = parser.parse_args()
    fleets = args.fleet or ["1x4x1", "40x4x1"]
    with tempfile.TemporaryDirectory(prefix="hcibenefit-phases-") as tmp:
        measured = [measure(fleet, args.runs, Path(tmp), args.latency) for fleet in fleets]
    small, large = measured[0], measured[-1]
    # Per additional node; with the same nodes and more VMs on each, per additional VM.
    unit = "node" if large["nodes"] != small["nodes"] else "VM"
    extra = large["nodes"] - small["nodes"] if unit == "node" else large["vms"] - small["vms"]
    at = f" at {args.latency} ms a request" if args.latency else ""
    print(f"client CPU per {unit} by phase, {small['fleet']} -> {large['fleet']} ({extra} more {unit}s){at}:")
    print(f"{'ms/' + unit:>8} {'incl':>7} {'calls':>7}  phase (exclusive: minus the wrapped phases inside)")
    names = sorted(set(large["exclusive"]), key=lambda n: -large["exclusive"][n])
    accounted = 0.0
    for name in names:
        per_node = (large["exclusive"][name] - small["exclusive"].get(name, 0.0)) * 1000 / extra
        inclusive = (large["inclusive"][name] - small["inclusive"].get(name, 0.0)) * 1000 / extra
        calls = (large["calls"][name] - small["calls"].get(name, 0)) / extra
        accounted += per_node
        print(f"{per_node:8.3f} {inclusive:7.3f} {calls:7.1f}  {name}")
    total = (large["process_cpu_s"] - small["process_cpu_s"]) * 1000 / extra
    print(f"{total - accounted:8.3f} {'':7} {'':7}  (not in a wrapped phase)")
    print(f"{total:8.3f} {'':7} {'':7}  process CPU per additional {unit}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
