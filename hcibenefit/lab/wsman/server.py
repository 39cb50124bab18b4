"""The public face of the lab's WinRM: one server, many node endpoints, faults switchable at runtime."""

from __future__ import annotations

import base64
import logging
import secrets
import shutil
import socket
import ssl
import tempfile
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal, TypeAlias

from hcibenefit.lab import pki
from hcibenefit.lab.wsman import soap
from hcibenefit.lab.wsman.auth import (
    ENCRYPTED_TYPE,
    AuthFailed,
    NegotiateAcceptor,
    check_basic,
    check_certificate,
    write_user_file,
)
from hcibenefit.lab.wsman.executor import ScriptExecutor
from hcibenefit.lab.wsman.http import Connection, HttpRequest, HttpResponse, Listener
from hcibenefit.lab.wsman.shells import Shell

log = logging.getLogger(__name__)

LabAuth: TypeAlias = Literal["basic", "ntlm", "certificate"]
LAB_AUTHS: tuple[LabAuth, ...] = ("basic", "ntlm", "certificate")

PWSH_PREFIX = "http://schemas.microsoft.com/powershell/"
MAX_ENVELOPE_KB = 500  # WinRM's default MaxEnvelopeSizekb since Windows Server 2012
DELEGATING_AUTH = frozenset({"credssp"})
"""Authentication whose credentials a node can present again (remoting.md section 5): CredSSP sends them."""


@dataclass
class NodeFaults:
    """Read on every request. Change `down` through `WSManServer.set_faults`, which also closes or re-opens the listener."""

    latency_ms: int = 0
    connect_latency_ms: int = 0
    """Added to every new connection before its TLS handshake (or its first request over HTTP): what
    TCP's and TLS's round trips cost on a real network, which `latency_ms` (per request) leaves out."""
    down: bool = False
    auth_fail: bool = False
    hang: bool = False
    max_shells: int = 30  # MaxShellsPerUser


@dataclass(frozen=True)
class Endpoint:
    name: str
    address: str
    port: int
    scheme: Literal["http", "https"]

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.address}:{self.port}/wsman"


@dataclass(frozen=True)
class NodeStats:
    open_shells: int
    requests: int  # WS-Man messages processed; authentication round trips are not counted
    shells_created: int
    encrypted_requests: int = 0
    actions: Mapping[str, int] = field(default_factory=dict)  # requests by action, e.g. {"Receive": 3}
    failed_logons: int = 0  # credentials offered and refused (what Windows logs as event 4625)
    connections: int = 0  # TCP connections opened (over HTTPS: the TLS handshake done), requests or not


def _loopback_aliases_work() -> bool:
    # Linux routes all of 127.0.0.0/8 to lo; macOS and some sandboxes only have 127.0.0.1.
    with socket.socket() as probe:
        try:
            probe.bind(("127.77.0.1", 0))
        except OSError:
            return False
    return True


class _Node:
    def __init__(
        self, server: WSManServer, name: str, address: str, faults: NodeFaults, tls: ssl.SSLContext | None
    ):
        self.server = server
        self.name = name
        self.faults = faults
        self.listener = Listener(
            name,
            address,
            tls,
            self.handle,
            connect_delay_s=lambda: self.faults.connect_latency_ms / 1000,
            answer_delay_s=lambda: self.faults.latency_ms / 1000,
        )
        self.lock = threading.Lock()
        self.shells: dict[str, Shell] = {}
        self.shells_created = 0
        self.encrypted_requests = 0
        self.failed_logons = 0
        self.actions: Counter[str] = Counter()
        self._handlers: dict[str, Callable[[soap.Request, str, str], str]] = {
            soap.ACTION_CREATE: self._create,
            soap.ACTION_COMMAND: self._command,
            soap.ACTION_SEND: self._send,
            soap.ACTION_RECEIVE: self._receive,
            soap.ACTION_SIGNAL: self._signal,
            soap.ACTION_DELETE: self._delete,
            soap.ACTION_GET: self._get,
        }

    @property
    def endpoint(self) -> Endpoint:
        scheme: Literal["http", "https"] = "http" if self.server.auth == "ntlm" else "https"
        return Endpoint(self.name, self.listener.address, self.listener.port, scheme)

    def stats(self) -> NodeStats:
        with self.lock:
            self._reap_idle()
            return NodeStats(
                open_shells=len(self.shells),
                requests=sum(self.actions.values()),
                shells_created=self.shells_created,
                encrypted_requests=self.encrypted_requests,
                actions=MappingProxyType(dict(self.actions)),
                failed_logons=self.failed_logons,
                connections=self.listener.connections_opened,
            )

    def close_shells(self) -> None:
        with self.lock:
            shells, self.shells = list(self.shells.values()), {}
        for shell in shells:
            shell.close()

    def _reap_idle(self) -> None:
        # Lazily, on the node's next request or stats(): nothing observes a shell in between.
        now = time.monotonic()
        for shell_id in [i for i, s in self.shells.items() if s.idle(now)]:
            log.info("%s: reaping idle shell %s", self.name, shell_id)
            self.shells.pop(shell_id).close()

    # --- HTTP ------------------------------------------------------------------------------------

    def handle(self, conn: Connection, request: HttpRequest) -> HttpResponse | None:
        faults = self.faults  # latency_ms: the listener has waited it out before calling this
        if faults.hang:
            return None
        if request.method != "POST" or request.path.rstrip("/").lower() != "/wsman":
            return HttpResponse(404)
        if faults.auth_fail:
            conn.negotiate = None
            return self._challenge()
        if self.server.auth == "basic":
            try:
                user = check_basic(
                    request.headers.get("Authorization", ""), self.server.username, self.server.password
                )
            except AuthFailed:
                if request.headers.get("Authorization"):
                    with self.lock:
                        self.failed_logons += 1
                return self._challenge()
            return self._soap(request.body, user, conn.peer)
        if self.server.auth == "certificate":
            try:
                user = self.server.map_certificate(request.headers.get("Authorization", ""), conn.certificate)
            except AuthFailed as exc:
                # A certificate is not a password: a refused one is not a failed logon that counts
                # towards an account lockout.
                log.info("%s: certificate logon from %s refused: %s", self.name, conn.peer, exc)
                return self._challenge()
            return self._soap(request.body, user, conn.peer)
        return self._negotiate(conn, request)

    def _challenge(self, header: str | None = None) -> HttpResponse:
        if header is None:
            # WinRM lists the schemes its service allows; certificate authentication is not one a
            # client negotiates in a header (guess: the header WinRM sends with such a 401 is not observed).
            header = 'Basic realm="WSMAN"' if self.server.auth == "basic" else "Negotiate"
        return HttpResponse(401, headers=[("WWW-Authenticate", header)])

    def _negotiate(self, conn: Connection, request: HttpRequest) -> HttpResponse:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        final: list[tuple[str, str]] = []
        if scheme.lower() in ("negotiate", "ntlm") and token:
            conn.negotiate = conn.negotiate or NegotiateAcceptor(self.server.user_file)
            try:
                reply = conn.negotiate.step(token.strip())
            except AuthFailed as exc:
                log.info("%s: authentication from %s failed: %s", self.name, conn.peer, exc)
                with self.lock:
                    self.failed_logons += 1
                conn.negotiate = None
                return self._challenge()
            if conn.negotiate.user is None:
                return self._challenge(f"{scheme} {reply}")
            if reply:
                final.append(("WWW-Authenticate", f"{scheme} {reply}"))
        acceptor = conn.negotiate
        if acceptor is None or acceptor.user is None:
            return self._challenge()
        if not request.body:
            return HttpResponse(200, headers=final)  # pypsrp's priming request that sets up the context
        if not request.headers.get("Content-Type", "").startswith("multipart/encrypted"):
            # WinRM's default AllowUnencrypted=false refuses plain SOAP over HTTP; after Negotiate/Kerberos
            # it answers 500 (diyan/pywinrm#129). The body is an assumption: none was recorded.
            return HttpResponse(500, headers=final)
        try:
            plain = acceptor.unwrap(request.body)
        except AuthFailed as exc:
            log.info("%s: %s", self.name, exc)
            return self._challenge()
        with self.lock:
            self.encrypted_requests += 1
        response = self._soap(plain, acceptor.user, conn.peer)
        return HttpResponse(response.status, acceptor.wrap(response.body), ENCRYPTED_TYPE, final)

    def _soap(self, data: bytes, user: str, peer: str) -> HttpResponse:
        try:
            request = soap.parse_request(data)
        except (ET.ParseError, ValueError) as exc:
            log.info("%s: malformed WS-Man request: %s", self.name, exc)
            return HttpResponse(400)
        with self.lock:
            self.actions[request.action.rsplit("/", 1)[-1]] += 1
            self._reap_idle()
        try:
            handler = self._handlers.get(request.action)
            if handler is None:
                raise soap.action_not_supported(request.action)
            text = soap.envelope(
                request.action + "Response", request.message_id, handler(request, user, peer)
            )
            status = 200
        except soap.Fault as fault:
            text, status = soap.fault_envelope(fault, request.message_id, self.listener.address), 500
        except Exception as exc:
            log.exception("%s: %s failed", self.name, request.action)
            internal = soap.Fault(
                "w:InternalError", 2147500037, f"{type(exc).__name__}: {exc}", receiver=True
            )
            text, status = soap.fault_envelope(internal, request.message_id, self.listener.address), 500
        return HttpResponse(status, text.encode("utf-8"), "application/soap+xml;charset=UTF-8")

    # --- WS-Man actions --------------------------------------------------------------------------

    def _shell(self, request: soap.Request) -> Shell:
        with self.lock:
            shell = self.shells.get(request.selectors.get("ShellId", "").upper())
        if shell is None:
            raise soap.invalid_selectors()
        return shell

    def _body(self, request: soap.Request, tag: str) -> ET.Element:
        if request.body is None or request.body.tag != f"{{{soap.RSP}}}{tag}":
            raise soap.Fault("w:InvalidBody", 2150858791, f"The request has no rsp:{tag} body.")
        return request.body

    def _create(self, request: soap.Request, user: str, peer: str) -> str:
        name = (
            request.resource_uri[len(PWSH_PREFIX) :] if request.resource_uri.startswith(PWSH_PREFIX) else ""
        )
        if name.lower() not in self.server.configurations:
            raise soap.invalid_resource_uri(request.resource_uri)
        body = self._body(request, "Shell")
        creation = body.findtext(f"{{{soap.PWSH}}}creationXml") or ""
        idle = body.findtext(f"{{{soap.RSP}}}IdleTimeOut")
        shell_id = (body.get("ShellId") or str(uuid.uuid4())).upper()
        shell = Shell(
            shell_id,
            node=self.name,
            owner=user,
            client_ip=peer,
            configuration_name=name,
            resource_uri=request.resource_uri,
            idle_timeout_s=soap.duration_seconds(idle) if idle else self.server.idle_timeout_s,
            executor=self.server.executor,
            max_commands=self.server.max_commands_per_shell,
            # The executor learns how the session authenticated: a further hop from it needs delegation.
            auth=self.server.auth,
            can_delegate=self.server.auth in DELEGATING_AUTH,
        )
        with self.lock:
            owned = sum(1 for s in self.shells.values() if s.owner.lower() == user.lower())
            if owned >= self.faults.max_shells:
                raise soap.quota_shells(self.faults.max_shells)
            self.shells[shell_id] = shell
            self.shells_created += 1
        try:
            shell.feed(base64.b64decode(creation))
        except Exception:
            with self.lock:
                self.shells.pop(shell_id, None)
            shell.close()
            raise
        info = soap.shell_xml(shell_id, request.resource_uri, user, peer, shell.idle_timeout_s)
        return soap.created_xml(self.endpoint.url, request.resource_uri, info, shell_id)

    def _command(self, request: soap.Request, user: str, peer: str) -> str:
        shell = self._shell(request)
        line = self._body(request, "CommandLine")
        command_id = (line.get("CommandId") or str(uuid.uuid4())).upper()
        shell.create_pipeline(command_id, base64.b64decode(line.findtext(f"{{{soap.RSP}}}Arguments") or ""))
        return f"<rsp:CommandResponse><rsp:CommandId>{command_id}</rsp:CommandId></rsp:CommandResponse>"

    def _send(self, request: soap.Request, user: str, peer: str) -> str:
        shell = self._shell(request)
        for stream in self._body(request, "Send").iterfind(f"{{{soap.RSP}}}Stream"):
            shell.feed(base64.b64decode(stream.text or ""), stream.get("CommandId"))
        return "<rsp:SendResponse/>"

    def _receive(self, request: soap.Request, user: str, peer: str) -> str:
        shell = self._shell(request)
        desired = self._body(request, "Receive").find(f"{{{soap.RSP}}}DesiredStream")
        cid = (desired.get("CommandId", "") if desired is not None else "").upper() or None
        skeleton = soap.envelope(
            request.action + "Response", request.message_id, soap.receive_xml("", cid, True)
        )
        stream_open = soap.stream_open(cid)
        fragments, done = shell.receive(
            cid,
            room=request.max_envelope - len(skeleton.encode()),
            stream_overhead=len(stream_open) + len(soap.STREAM_CLOSE),
            timeout_s=request.timeout_s,
        )
        streams = "".join(
            f"{stream_open}{base64.b64encode(f).decode()}{soap.STREAM_CLOSE}" for f in fragments
        )
        return soap.receive_xml(streams, cid, done)

    def _signal(self, request: soap.Request, user: str, peer: str) -> str:
        signal = self._body(request, "Signal")
        self._shell(request).signal(signal.get("CommandId", ""), signal.findtext(f"{{{soap.RSP}}}Code") or "")
        return "<rsp:SignalResponse/>"

    def _delete(self, request: soap.Request, user: str, peer: str) -> str:
        shell = self._shell(request)
        with self.lock:
            self.shells.pop(shell.id, None)
        shell.close()
        return ""

    def _get(self, request: soap.Request, user: str, peer: str) -> str:
        if request.resource_uri == soap.CONFIG_RESOURCE:
            return soap.config_xml(MAX_ENVELOPE_KB)
        if request.resource_uri != soap.SHELL_RESOURCE:
            raise soap.invalid_resource_uri(request.resource_uri)
        shell = self._shell(request)
        return soap.shell_xml(
            shell.id, shell.resource_uri, shell.owner, shell.client_ip, shell.idle_timeout_s
        )


class WSManServer:
    """Simulated WinRM endpoints, one per node, answering PowerShell through a `ScriptExecutor`.

    `auth="basic"` serves HTTPS with certificates from `ca` (or a CA of its own), `auth="ntlm"` serves
    HTTP with NTLM/Negotiate and WinRM message encryption, `auth="certificate"` serves HTTPS and accepts a
    client certificate the same CA issued for `username` (`client_certificate` holds it, mapped as WinRM's
    certificate mappings map one to a local account).
    """

    def __init__(
        self,
        executor: ScriptExecutor,
        *,
        auth: LabAuth,
        username: str,
        password: str,
        ca: pki.Issued | None = None,
        idle_timeout_s: float = 7200.0,
        accepted_configurations: Iterable[str] = ("Microsoft.PowerShell",),
        max_commands_per_shell: int = 1000,
    ) -> None:
        if auth not in LAB_AUTHS:
            raise ValueError(f"auth must be one of {', '.join(LAB_AUTHS)}, not {auth!r}")
        self.executor = executor
        self.auth = auth
        self.username = username
        self.password = password
        self.idle_timeout_s = idle_timeout_s
        self.max_commands_per_shell = max_commands_per_shell
        self.configurations = {"microsoft.powershell"} | {c.lower() for c in accepted_configurations}
        self.stopping = threading.Event()
        # Named before it is made, so that an interrupt right after the mkdir still finds it to remove
        # (lab/fleet.py's workdir has the same reason); 0700, as mkdtemp makes it: node keys go in it.
        self._dir = Path(tempfile.gettempdir()) / f"hcibenefit-wsman-{secrets.token_hex(16)}"
        self._nodes: dict[str, _Node] = {}
        self._started = False
        self._aliases = _loopback_aliases_work()
        self.user_file = self._dir / "ntlm-users"
        self.ca_bundle_path: str | None = None
        self._ca: pki.Issued | None = None
        self.client_certificate: tuple[Path, Path] | None = None
        """(certificate PEM, key PEM) for `auth="certificate"`: what a client presents."""
        self._certificate_mappings: dict[str, str] = {}
        try:
            self._dir.mkdir(mode=0o700)
            if auth == "ntlm":
                write_user_file(self.user_file, username, password)
            else:
                self._ca = ca or pki.issue("hcibenefit lab WinRM CA", ca=True, path_length=0)
                bundle = self._dir / "ca.pem"
                bundle.write_bytes(self._ca.cert_pem)
                self.ca_bundle_path = str(bundle)
                if auth == "certificate":
                    self._issue_client_certificate(username)
        except BaseException:  # Ctrl-C or SIGTERM mid-way: the caller never gets a server to stop
            shutil.rmtree(self._dir, ignore_errors=True)
            raise

    def add_node(self, name: str, faults: NodeFaults | None = None) -> Endpoint:
        """A new endpoint with its own loopback address (127.77.x.y where the platform allows) and port."""
        if name.lower() in self._nodes:
            raise ValueError(f"node {name!r} already exists")
        index = len(self._nodes)
        address = f"127.77.{index // 254}.{index % 254 + 1}" if self._aliases else "127.0.0.1"
        node = _Node(self, name, address, faults or NodeFaults(), self._tls(index, name, address))
        # Bound even when the node starts down, to fix its port; `up` binds that port again.
        node.listener.bind()
        if node.faults.down:
            node.listener.close()
        elif self._started:
            node.listener.open()
        self._nodes[name.lower()] = node
        return node.endpoint

    def _issue_client_certificate(self, username: str) -> None:
        # As an admin maps one for WinRM: a UPN of user@localhost, for a local account.
        upn = f"{username.rpartition(chr(92))[2]}@localhost"
        issued = pki.tls_client(self._ca_or_fail(), user_principal_name=upn)
        cert, key = self._dir / "client.pem", self._dir / "client-key.pem"
        cert.write_bytes(issued.cert_pem)
        key.write_bytes(issued.key_pem)
        key.chmod(0o600)
        self.client_certificate = (cert, key)
        self._certificate_mappings[upn.lower()] = username

    @property
    def ca(self) -> pki.Issued | None:
        """The CA of the HTTPS endpoints (and of client certificates), None over HTTP."""
        return self._ca

    def _ca_or_fail(self) -> pki.Issued:
        if self._ca is None:
            raise RuntimeError("this server has no CA")
        return self._ca

    def map_certificate(self, header: str, certificate_der: bytes | None) -> str:
        """The local user a request's client certificate maps to; AuthFailed when none does."""
        from cryptography.hazmat.primitives.serialization import Encoding

        issuer = self._ca_or_fail().cert.public_bytes(Encoding.DER)
        return check_certificate(header, certificate_der, self._certificate_mappings, issuer)

    def _tls(self, index: int, name: str, address: str) -> ssl.SSLContext | None:
        if self._ca is None:
            return None
        issued = pki.tls_server(self._ca, dns_names=[name, "localhost"], ip_addresses=[address])
        pem = self._dir / f"node{index}.pem"
        pem.write_bytes(issued.cert_pem + issued.key_pem)
        pem.chmod(0o600)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(pem)
        if self.auth == "certificate":
            # Asked for, not required: a client without one gets WinRM's refusal (401), not a failed
            # handshake. Guess: how HTTP.sys asks for it (in the handshake or by renegotiating) is not modelled.
            context.verify_mode = ssl.CERT_OPTIONAL
            context.load_verify_locations(cadata=self._ca_or_fail().cert_pem.decode("ascii"))
        return context

    def _node(self, name: str) -> _Node:
        try:
            return self._nodes[name.lower()]
        except KeyError:
            raise KeyError(f"no node named {name!r}") from None

    def start(self, only: Collection[str] | None = None) -> None:
        """Serve every node, or `only` those (lower-case names): the listening sockets of the others are
        closed here, for another process of the lab that serves them (a listening socket open in two
        processes would still accept connections for a node that one of them took down)."""
        if self.stopping.is_set():
            raise RuntimeError("a stopped WSManServer cannot be started again")
        self._started = True
        for name, node in self._nodes.items():
            if only is not None and name not in only:
                node.listener.close()
            elif not node.faults.down:
                node.listener.open()

    def release(self) -> None:
        """Close every node's listening socket without serving: another process serves them all."""
        for node in self._nodes.values():
            node.listener.close()

    def stop(self, *, keep_files: bool = False) -> None:
        """Close every listener, connection and shell; executors still running are left to their daemon threads.
        `keep_files`: leave the server's directory (another process of the same lab removes it)."""
        self.stopping.set()
        nodes = list(self._nodes.values())
        for node in nodes:
            node.listener.begin_close()
        for node in nodes:
            node.listener.close()
            node.close_shells()
        if not keep_files:
            shutil.rmtree(self._dir, ignore_errors=True)

    def set_faults(self, name: str, **changes: Any) -> None:
        node = self._node(name)
        known = {f.name for f in fields(NodeFaults)}
        if unknown := set(changes) - known:
            raise TypeError(f"unknown node faults: {', '.join(sorted(unknown))}")
        for key, value in changes.items():
            setattr(node.faults, key, value)
        if "down" in changes and self._started and not self.stopping.is_set():
            if node.faults.down:
                node.listener.close()
                node.close_shells()  # a host that goes down loses its sessions
            else:
                node.listener.open()

    def endpoint(self, name: str) -> Endpoint:
        return self._node(name).endpoint

    def stats(self, name: str) -> NodeStats:
        return self._node(name).stats()

    def node_names(self) -> list[str]:
        return [node.endpoint.name for node in self._nodes.values()]
