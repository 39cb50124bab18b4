"""A running lab: the fleet model, one WinRM endpoint per node, and the control endpoint.

Importable for tests and benchmarks (`with Lab(spec) as lab: ...`), and what `hcibenefit lab serve`
runs. Everything binds to loopback.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import secrets
import shutil
import tempfile
import threading
from collections.abc import Collection
from dataclasses import asdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from hcibenefit.lab import pki, shards
from hcibenefit.lab.arm.blobs import ACCOUNT as BLOB_ACCOUNT
from hcibenefit.lab.arm.server import ArmServer
from hcibenefit.lab.engine import LabEngine
from hcibenefit.lab.signing import (
    INTERMEDIATE_NAME,
    LAB_SAN_PATTERN,
    PUBLISHED_INTERMEDIATE,
    LabSigningChain,
)
from hcibenefit.lab.spec import FleetSpec
from hcibenefit.lab.state import FleetState
from hcibenefit.lab.wsman import Endpoint, NodeFaults, NodeStats, WSManServer
from hcibenefit.lab.wsman.server import LabAuth

log = logging.getLogger(__name__)

PASSWORD_ENV = "HCIBENEFIT_LAB_PASSWORD"
GUEST_PASSWORD_ENV = "HCIBENEFIT_LAB_GUEST_PASSWORD"
AZURE_TOKEN_ENV = "HCIBENEFIT_LAB_AZURE_TOKEN"
LAB_USER = "labadmin"
LAB_GUEST_USER = "Administrator"
PKI_PATH = "/lab/pki"
"""Under the control endpoint: the attestation root and intermediate, as AIA caIssuers URLs name them."""


SERVING_GC_THRESHOLDS = (10_000, 20, 20)


def tune_for_serving() -> None:
    """Garbage collection for a process that only serves a lab (`hcibenefit lab serve`).

    Evaluating PowerShell allocates many short-lived objects, nearly all freed by reference counting; at
    CPython's default thresholds (700, 10, 10) a 400-node status ran some 2,900 collections, the older
    generations scanning every shell and connection object each time: 6.4 ms of the lab's CPU per node.
    At these thresholds it ran 76 (1.5 ms per node). Not applied by `Lab` itself, which also runs inside
    other processes (tests, `lab run`) whose collection it should not change."""
    gc.set_threshold(*SERVING_GC_THRESHOLDS)


class Lab:
    def __init__(
        self,
        spec: FleetSpec,
        *,
        auth: LabAuth = "basic",
        password: str | None = None,
        guest_password: str | None = None,
        azure_token: str | None = None,
        control_port: int = 0,
        read_timeout: float = 15.0,
        processes: int = 1,
    ) -> None:
        self.spec = spec
        # More than one: the clusters' WinRM endpoints are served by that many processes (lab/shards.py),
        # never more than there are clusters; where processes cannot be forked, one.
        self.processes = max(1, min(processes, len(spec.clusters))) if shards.can_fork() else 1
        self.shards: list[shards.Shard] = []
        self._shard_of: dict[str, shards.Shard] = {}
        self._remote_nodes: dict[str, dict[str, Any]] = {}
        self._cluster_shard: dict[str, shards.Shard] = {}
        self._azure_marks: shards.AzureMarks | None = None
        self._azure_seen: dict[str, int] = {}
        self._refresh_lock = threading.Lock()
        self.failure: str | None = None
        """Why the lab can no longer serve (a worker process died); `failed` is set with it."""
        self.failed = threading.Event()
        self.auth = auth
        self.username = LAB_USER
        self.password = password or secrets.token_urlsafe(18)
        self.guest_username = LAB_GUEST_USER
        self.guest_password = guest_password or secrets.token_urlsafe(18)
        # The bearer token the lab's ARM accepts (the inventory's access-token credential).
        self.azure_token = azure_token or secrets.token_urlsafe(24)
        self.read_timeout = read_timeout
        self.state = FleetState(spec)
        self.engine = LabEngine(self.state)
        self._requested_control_port = control_port
        # Created by start(), removed by stop(): it holds TLS keys, so it exists only while the lab runs.
        self._workdir: Path | None = None
        self.signing: LabSigningChain | None = None
        self.server: WSManServer | None = None
        self.arm: ArmServer | None = None
        self.endpoints: dict[str, Endpoint] = {}
        # The server mutates these in place on set_faults; kept to show them in /lab/state.
        self.faults: dict[str, NodeFaults] = {}
        self._control: ThreadingHTTPServer | None = None
        self._control_thread: threading.Thread | None = None

    # --- lifecycle ---------------------------------------------------------------------------------

    def __enter__(self) -> Lab:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        """Start everything; if any part fails (a port in use, Ctrl-C), stop what did start and re-raise,
        so no listener, thread or private directory outlives a failed start."""
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> None:
        # TLS private keys go in it: 0700, as mkdtemp makes it. Named before it is made: a SIGTERM that lands
        # between mkdtemp's mkdir and this assignment (a test sends it as soon as the directory appears)
        # left a directory stop() did not know of. 128 random bits: the name is no one else's.
        self._workdir = Path(tempfile.gettempdir()) / f"hcibenefit-lab-{secrets.token_hex(16)}"
        self._workdir.mkdir(mode=0o700)
        # Bound first (served last): its address is where the signing chain says its issuers are published.
        self._bind_control()
        self.signing = self._signing_chain()
        self.engine.signing = self.signing
        self.engine.guest_password = self.guest_password
        trusted = self.signing.root_pem() if self.intermediate_via_aia else self.signing.ca_bundle_pem()
        (self._workdir / "attestation-ca.pem").write_bytes(trusted)
        # One lab CA: WinRM over HTTPS (basic and certificate auth) and the ARM endpoint (always HTTPS).
        ca = pki.issue("hcibenefit lab CA", ca=True, path_length=0)
        self.server = WSManServer(
            self.engine,
            auth=self.auth,
            username=self.username,
            password=self.password,
            ca=None if self.auth == "ntlm" else ca,
        )
        for cluster in self.spec.clusters:
            for node in cluster.nodes:
                faults = NodeFaults(**asdict(node.faults))
                self.faults[node.name.lower()] = faults
                self.endpoints[node.name.lower()] = self.server.add_node(node.name, faults)
        executor: Any = self.engine
        if self.processes > 1:
            # Forked before this process starts any thread: a worker gets no lock some thread held.
            self.state.share_clock()
            names = [c.name for c in self.spec.clusters]
            self._azure_marks = shards.AzureMarks(names)
            self._azure_seen = dict.fromkeys(names, 0)  # the workers start from this very state
            self.shards = shards.fork(self, shards.plan(self.spec, self.processes), self._azure_marks)
            self._shard_of = {node: shard for shard in self.shards for node in shard.nodes}
            self._cluster_shard = {name: shard for shard in self.shards for name in shard.clusters}
            self.server.release()  # every node is a worker's now; this server only keeps the faults shown
            for shard in self.shards:
                shard.start_reader(self._shard_died)
            executor = shards.RemoteExecutor(self._owner)
        else:
            self.server.start()
        self.arm = ArmServer(
            self.state, token=self.azure_token, workdir=self._workdir, ca=ca, executor=executor
        )
        if self.shards:
            self.arm.refresh = self._refresh_azure
        self.arm.start()
        self._serve_control()

    @property
    def intermediate_via_aia(self) -> bool:
        """The fleet spec's attestation.publish_intermediate_only_via_aia."""
        return self.spec.attestation.publish_intermediate_only_via_aia

    def _signing_chain(self) -> LabSigningChain:
        # As Azure's: the leaf (the only certificate a document embeds) names where its issuer is published,
        # here the control endpoint. When only AIA provides the intermediate, its name is unique to this
        # lab: each lab has new keys, and an earlier lab's intermediate that a user fetched into the
        # per-user store must not stand in for (and read as an impostor of) this one.
        name = INTERMEDIATE_NAME
        if self.intermediate_via_aia:
            name = f"{INTERMEDIATE_NAME} (lab {secrets.token_hex(4)})"
        return LabSigningChain.generate(publish_at=self.pki_url, intermediate_name=name)

    def stop(self) -> None:
        if self._control is not None:
            if self._control_thread is not None:
                # shutdown() waits for serve_forever to end: it would wait forever on a server bound by a
                # start that failed before serving.
                self._control.shutdown()
                self._control_thread = None
            self._control.server_close()
            self._control = None
        for shard in self.shards:
            shard.stop()
        self.shards, self._shard_of = [], {}
        if self.server is not None:
            self.server.stop()
            self.server = None
        if self.arm is not None:
            self.arm.stop()
            self.arm = None
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None

    def reset(self) -> None:
        """Back to the spec: model, invocation counters and node faults."""
        self.state.reset()
        self.engine.reset_counters()
        if self.arm is not None:
            self.arm.reset()
        if self.server is not None:
            for cluster in self.spec.clusters:
                for node in cluster.nodes:
                    self.server.set_faults(node.name, **asdict(node.faults))
        for future in [shard.submit("reset") for shard in self.shards]:
            future.result(timeout=shards.CALL_TIMEOUT_S)
        if self.shards:
            self.refresh()

    def set_faults(self, node: str, **changes: Any) -> None:
        if self.server is None:
            raise RuntimeError("lab is not running")
        name = self.state.node(node).name
        self.server.set_faults(name, **changes)  # checks the names; with workers, only what is shown
        if self.shards:
            self._owner(name).call("faults", name, changes)

    # --- several processes -----------------------------------------------------------------------

    def _owner(self, node: str) -> shards.Shard:
        return self._shard_of[node.lower()]

    def _shard_died(self, shard: shards.Shard) -> None:
        self.failure = f"{shard.describe()} {shard.exit_status}: its nodes no longer answer; the lab stops"
        log.error("%s", self.failure)
        self.failed.set()

    def refresh(self, *, counters: bool = True) -> None:
        """With workers: this process's copy of every cluster whose state changed, and (`counters`) every
        node's WinRM and script counters, from the workers, in parallel; a no-op in a one-process lab."""
        if not self.shards:
            return
        with self._refresh_lock:
            asked = [(shard, shard.submit("pull", dict(shard.known), counters)) for shard in self.shards]
            for shard, future in asked:
                answer = future.result(timeout=shards.CALL_TIMEOUT_S)
                self._remote_nodes.update(answer["nodes"])
                for name, (generation, data) in answer["clusters"].items():
                    self.state.install_cluster(data)
                    shard.known[name] = generation

    def _refresh_azure(self) -> None:
        """Before an ARM request: a copy of each cluster whose part of the Azure view changed (the workers
        mark it in shared memory), and no question to any worker when none did."""
        marks = self._azure_marks
        assert marks is not None
        moved = {
            name: mark for name in self.state.clusters if (mark := marks.read(name)) != self._azure_seen[name]
        }
        if not moved:
            return
        with self._refresh_lock:
            owners: dict[int, list[str]] = {}
            for name in moved:
                owners.setdefault(self._cluster_shard[name].index, []).append(name)
            asked = [(self.shards[i], self.shards[i].submit("export", names)) for i, names in owners.items()]
            for shard, future in asked:
                for name, (generation, data) in future.result(timeout=shards.CALL_TIMEOUT_S).items():
                    self.state.install_cluster(data)
                    shard.known[name] = generation
            self._azure_seen.update(moved)

    def close_inherited(self) -> None:
        """In a worker process: close what only the first process serves (the control endpoint)."""
        if self._control is not None:
            self._control.server_close()
            self._control = None

    def node_stats(self, node: str) -> NodeStats:
        """A node's WinRM counters (with workers: as of the last `refresh`)."""
        if not self.shards:
            assert self.server is not None
            return self.server.stats(node)
        found = dict(self._remote_nodes.get(node.lower()) or {})
        found.pop("invocations", None)
        return NodeStats(**found) if found else NodeStats(0, 0, 0)

    def invocations(self, node: str) -> dict[str, int]:
        if not self.shards:
            return self.engine.counts(node)
        return dict((self._remote_nodes.get(node.lower()) or {}).get("invocations") or {})

    def process_ids(self) -> list[dict[str, Any]]:
        """The lab's processes: this one (control, ARM) and the workers serving WinRM, with their clusters."""
        first: dict[str, Any] = {
            "pid": os.getpid(),
            "serves": "control, azure" + ("" if self.shards else ", winrm"),
        }
        return [first] + [
            {"pid": s.pid, "serves": "winrm", "clusters": list(s.clusters)} for s in self.shards
        ]

    # --- observability -----------------------------------------------------------------------------

    @property
    def control_url(self) -> str:
        if self._control is None:
            raise RuntimeError("lab is not running")
        host, port = self._control.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def pki_url(self) -> str:
        """Where the lab publishes its attestation root and intermediate (DER), as AIA caIssuers names them."""
        return f"{self.control_url}{PKI_PATH}"

    @property
    def issuer_url(self) -> str:
        """The URL the signing leaf's AIA names: the intermediate, DER."""
        return f"{self.pki_url}/{PUBLISHED_INTERMEDIATE}"

    @property
    def ca_bundle(self) -> Path | None:
        return Path(self.server.ca_bundle_path) if self.server and self.server.ca_bundle_path else None

    @property
    def workdir(self) -> Path:
        """A private directory that lives as long as the lab (CA bundles, generated inventories)."""
        if self._workdir is None:
            raise RuntimeError("lab is not running")
        return self._workdir

    @property
    def attestation_ca(self) -> Path:
        return self.workdir / "attestation-ca.pem"

    def snapshot(self) -> dict[str, Any]:
        """The JSON `GET /lab/state` returns."""
        self.refresh()
        with self.state.lock:
            nodes = []
            for cluster in self.spec.clusters:
                for node_spec in cluster.nodes:
                    endpoint = self.endpoints[node_spec.name.lower()]
                    stats = self.node_stats(node_spec.name) if self.server else None
                    node = self.state.node(node_spec.name)
                    nodes.append(
                        {
                            "name": node.name,
                            "cluster": node.cluster,
                            "address": endpoint.address,
                            "port": endpoint.port,
                            "open_shells": stats.open_shells if stats else 0,
                            "shells_created": stats.shells_created if stats else 0,
                            "requests": stats.requests if stats else 0,
                            "failed_logons": stats.failed_logons if stats else 0,
                            "connections": stats.connections if stats else 0,
                            "faults": asdict(self.faults[node_spec.name.lower()]),
                            "invocations": self.invocations(node.name),
                            "attestation": node.attestation,
                            "expiration": node.expiration.isoformat() if node.expiration else None,
                            "switch": None
                            if node.switch is None
                            else {"name": node.switch.name, "type": node.switch.switch_type},
                            "legacy_os_support": node.legacy_os_support,
                            "module": node.module,
                            "build": self.state.clusters[node.cluster].build,
                            "host_vnic_alias": node.host_vnic_alias if node.switch is not None else None,
                            # PSSessions Az.StackHCI opened back to the node and never removed.
                            "leaked_sessions": len(node.sessions),
                        }
                    )
            vms = [
                {
                    "name": vm.name,
                    "id": vm.id,
                    "cluster": vm.cluster,
                    "node": vm.node,
                    "generation": vm.generation,
                    "state": vm.state,
                    "edition": vm.edition,
                    "os": vm.os,
                    "benefits": _benefits(self.state, vm),
                    "gsi": vm.gsi,
                    "kvp": vm.kvp,
                    "nics": [
                        {"name": n.name, "switch": n.switch_name, "connected": n.connected, "vlan": n.vlan}
                        for n in vm.nics
                    ],
                    "guest": {
                        "license_status": vm.guest.license_status,
                        "task": vm.guest.task,
                        "imds": vm.guest.imds,
                        "document": vm.guest.document,
                        "powershell_direct": vm.guest.powershell_direct,
                        "runs_needed": vm.guest.runs_needed,
                        "runs": vm.guest.runs,
                        "imds_status": vm.guest.imds_status,
                        "clip_log": vm.guest.clip_log,
                        "task_run_seconds": vm.guest.task_run_seconds,
                        "system_proxy": vm.guest.system_proxy,
                    },
                }
                for vm in self.state.vms.values()
            ]
        azure = self.arm.snapshot() if self.arm is not None else None
        attestation = {
            "publish_intermediate_only_via_aia": self.intermediate_via_aia,
            "issuer_url": self.issuer_url if self._control is not None else None,
        }
        return {
            "source": self.spec.source,
            "auth": self.auth,
            "nodes": nodes,
            "vms": vms,
            "azure": azure,
            "attestation": attestation,
            "processes": self.process_ids(),
        }

    def open_shells(self) -> int:
        if self.server is None:
            return 0
        self.refresh()
        return sum(self.node_stats(n.name).open_shells for c in self.spec.clusters for n in c.nodes)

    # --- inventory ---------------------------------------------------------------------------------

    def inventory_text(self, *, arc_clusters: Collection[str] = ()) -> str:
        """An inventory every command accepts, pointing at this lab (passwords through environment variables)."""
        https = self.auth != "ntlm"
        client = self.server.client_certificate if self.server is not None else None
        lines = [
            "# Written by hcibenefit's lab. Valid while that lab runs (its ports change on every start).",
            f"# Host password: environment variable {PASSWORD_ENV}; guest password: {GUEST_PASSWORD_ENV}."
            if client is None
            else f"# Host credential: the client certificate below; guest password: {GUEST_PASSWORD_ENV}.",
            "defaults:",
            "  winrm:",
            f"    transport: {'https' if https else 'http'}",
            f"    auth: {self.auth}",
        ]
        if https and self.ca_bundle is not None:
            lines.append(f"    cert_validation: {json.dumps(str(self.ca_bundle))}")
        if client is not None:
            # Certificate authentication: the client certificate is the credential, no host password.
            lines += [
                f"    certificate_pem: {json.dumps(str(client[0]))}",
                f"    certificate_key_pem: {json.dumps(str(client[1]))}",
            ]
        lines += [
            "    connection_timeout: 5",
            f"    read_timeout: {self.read_timeout:g}",
            f"    operation_timeout: {max(1.0, self.read_timeout - 5):g}",
        ]
        if client is None:
            lines += ["  credentials:", f"    username: {self.username}", f"    password_env: {PASSWORD_ENV}"]
        lines += [
            "  guest_credentials:",
            f"    username: {self.guest_username}",
            f"    password_env: {GUEST_PASSWORD_ENV}",
            "clusters:",
        ]
        for cluster in self.spec.clusters:
            lines += [f"  - name: {cluster.name}", "    site: lab"]
            if cluster.name in arc_clusters and self.arm is not None:
                # Reached through the lab's ARM: Arc run commands, outputs in the lab's blob storage.
                lines += [
                    "    transport: arc",
                    f"    arc: {{output_container: {self.arm.url}/{BLOB_ACCOUNT}/hcibenefit-output, poll_interval: 0.05}}",
                ]
            lines.append("    nodes:")
            for node in cluster.nodes:
                endpoint = self.endpoints[node.name.lower()]
                lines.append(
                    f"      - {{name: {node.name}, address: {endpoint.address}, port: {endpoint.port}}}"
                )
        if self.arm is not None:
            from hcibenefit.lab.arm.model import subscriptions as lab_subscriptions

            subscriptions = sorted(lab_subscriptions(self.state))
            lines += [
                "azure:",
                "  # The lab's ARM and Resource Graph; a real fleet keeps the default endpoint and az login.",
                f"  endpoint: {self.arm.url}",
                "  credential: access-token",
                f"  token_env: {AZURE_TOKEN_ENV}",
                f"  cert_validation: {json.dumps(str(self.arm.ca_bundle))}",
                f"  subscriptions: [{', '.join(subscriptions)}]",
                "azure_monitor:",
                "  # The lab's Logs Ingestion API (sweep --publish azure-monitor); GET /lab/state shows what arrived.",
                f"  endpoint: {self.arm.url}",
                f"  rule_id: {self.arm.ingestion.rule_id}",
                f"  stream: {self.arm.ingestion.stream}",
                f"  cert_validation: {json.dumps(str(self.arm.ca_bundle))}",
            ]
        trusts = (
            "its root only: as with Azure, the intermediate comes from the URL the signer names (AIA)"
            if self.intermediate_via_aia
            else "its root and intermediate"
        )
        lines += [
            "attestation:",
            "  # The lab signs attested documents with its own chain; real fleets keep the Azure default.",
            f"  # The CA file holds {trusts}.",
            f"  ca_files: [{json.dumps(str(self.attestation_ca))}]",
            f"  san_pattern: {json.dumps(LAB_SAN_PATTERN)}",
        ]
        return "\n".join(lines) + "\n"

    def write_inventory(self, path: Path, *, arc_clusters: Collection[str] = ()) -> Path:
        path.write_text(self.inventory_text(arc_clusters=arc_clusters), encoding="utf-8")
        return path

    def environment(self) -> dict[str, str]:
        return {
            PASSWORD_ENV: self.password,
            GUEST_PASSWORD_ENV: self.guest_password,
            AZURE_TOKEN_ENV: self.azure_token,
        }

    # --- control endpoint --------------------------------------------------------------------------

    def _bind_control(self) -> None:
        lab = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                log.debug("control: " + format, *args)

            def _reply(self, status: int, body: Any) -> None:
                data = json.dumps(body, indent=2).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                if self.path.rstrip("/") == "/lab/state":
                    self._guarded(lambda: self._reply(200, lab.snapshot()))
                elif self.path.startswith(f"{PKI_PATH}/"):
                    self._guarded(lambda: self._certificate(self.path[len(PKI_PATH) + 1 :]))
                else:
                    self._reply(404, {"error": f"no such endpoint {self.path}"})

            def _certificate(self, file_name: str) -> None:
                # DER with the type publishers use for a single certificate (RFC 2585), as AIA expects.
                data = lab.signing.published(file_name) if lab.signing is not None else None
                if data is None:
                    self._reply(404, {"error": f"no such certificate {self.path}"})
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/pkix-cert")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _guarded(self, action: Any) -> None:
                try:
                    action()
                except Exception as exc:  # a bug in the lab must answer, not drop the connection
                    log.exception("control endpoint failed")
                    self._reply(500, {"error": f"{type(exc).__name__}: {exc}"})

            def do_POST(self) -> None:
                self._guarded(self._post)

            def _post(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                if self.path.rstrip("/") == "/lab/reset":
                    lab.reset()
                    self._reply(200, {"reset": True})
                elif self.path.rstrip("/") == "/lab/faults":
                    try:
                        request = json.loads(body or b"{}")
                        node = request.pop("node")
                        lab.set_faults(node, **request)
                    except (KeyError, TypeError, ValueError) as exc:
                        self._reply(400, {"error": f"expected {{node, <fault>: value}}: {exc}"})
                        return
                    self._reply(200, {"node": node, "changed": request})
                elif self.path.rstrip("/") == "/lab/azure" and lab.arm is not None:
                    try:
                        changed = lab.arm.control(json.loads(body or b"{}"))
                    except (AttributeError, TypeError, ValueError) as exc:
                        self._reply(
                            400,
                            {
                                "error": "expected {throttle: {...}}, {revoke_token: true} or "
                                f"{{ingestion_fail: {{...}}}}: {exc}"
                            },
                        )
                        return
                    self._reply(200, {"changed": changed})
                else:
                    self._reply(404, {"error": f"no such endpoint {self.path}"})

        port = self._requested_control_port
        try:
            self._control = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        except OSError as exc:
            raise OSError(exc.errno, f"control endpoint 127.0.0.1:{port}: {exc.strerror or exc}") from None
        self._control.daemon_threads = True

    def _serve_control(self) -> None:
        assert self._control is not None
        self._control_thread = threading.Thread(
            target=self._control.serve_forever, name="hcibenefit-lab-control", daemon=True
        )
        self._control_thread.start()


def _benefits(state: FleetState, vm: Any) -> str:
    parts = []
    if vm.imds_nic() is not None:
        parts.append("v1")
    if vm.gsi and state.clusters[vm.cluster].supports_v2:
        parts.append("v2")
    return "+".join(parts) or "none"
