"""A scripted executor and a client factory for the WS-Man/PSRP transport tests.

The executor is a test fixture, not the lab's script engine: the first word of each script picks a
behaviour, so a test reads as "the host does X" and the transport is what is under test.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from pypsrp.wsman import WSMan

from hcibenefit.lab.wsman import Endpoint, PipelineCall, PipelineOutput, TerminatingError, WSManServer

USER = "labadmin"
PASSWORD = "Corr3ct-Horse!"
EXTRA_CONFIGURATION = "HciBenefit.Diagnostics"  # a JEA-style endpoint the shared servers accept


class ScriptedExecutor:
    def __init__(self) -> None:
        self.calls: list[PipelineCall] = []
        self.stopped = threading.Event()  # a `sleep` pipeline saw out.stopping
        self.release = threading.Event()  # lets `block` pipelines, which ignore stopping, finish
        self._lock = threading.Lock()

    @property
    def last(self) -> PipelineCall:
        with self._lock:
            return self.calls[-1]

    def execute(self, call: PipelineCall, out: PipelineOutput) -> None:
        with self._lock:
            self.calls.append(call)
        command = call.commands[0]
        verb, *_ = command.text.split(maxsplit=1) or [""]
        params: dict[str | None, Any] = dict(command.parameters)
        getattr(self, f"_{verb}")(params, call, out)

    def _echo(self, params: dict[str | None, Any], call: PipelineCall, out: PipelineOutput) -> None:
        out.write_output({"node": call.node, "user": call.username, "configuration": call.configuration_name})
        out.write_output({str(k): v for k, v in params.items()})
        for item in call.input:
            out.write_output(item)

    def _big(self, params: dict[str | None, Any], call: PipelineCall, out: PipelineOutput) -> None:
        for i in range(int(params.get("Count", 1))):
            out.write_output(f"{i:08d}" + "x" * (int(params["Size"]) - 8))

    def _sleep(self, params: dict[str | None, Any], call: PipelineCall, out: PipelineOutput) -> None:
        if out.stopping.wait(float(params["Seconds"])):
            self.stopped.set()
            out.write_output("written after stop")  # must be dropped
            return
        out.write_output("slept")

    def _block(self, params: dict[str | None, Any], call: PipelineCall, out: PipelineOutput) -> None:
        self.release.wait(30)  # a misbehaving executor that never looks at out.stopping

    def _errors(self, params: dict[str | None, Any], call: PipelineCall, out: PipelineOutput) -> None:
        out.write_warning("careful")
        out.write_verbose("chatty")
        out.write_error(
            "VM 'vm1' was not found.", error_id="VmNotFound", category="ObjectNotFound", target="vm1"
        )
        out.write_output("carried on")

    def _fail(self, params: dict[str | None, Any], call: PipelineCall, out: PipelineOutput) -> None:
        out.write_output("before")
        raise TerminatingError(
            "The cluster is not registered with Azure.",
            error_id="ClusterNotRegistered",
            category="InvalidOperation",
            exception_type="System.InvalidOperationException",
        )

    def _crash(self, params: dict[str | None, Any], call: PipelineCall, out: PipelineOutput) -> None:
        raise ZeroDivisionError("division by zero")

    def _credential(self, params: dict[str | None, Any], call: PipelineCall, out: PipelineOutput) -> None:
        credential = params["Credential"]
        out.write_output({"user": str(credential.UserName), "password": str(credential.Password.decrypt())})


@dataclass
class TransportLab:
    """A running server and how to reach its nodes with pypsrp."""

    server: WSManServer
    executor: ScriptedExecutor
    endpoints: list[Endpoint]
    client_auth: str = "basic"
    extra: dict[str, Any] = field(default_factory=dict)

    def wsman(self, node: int = 0, *, password: str = PASSWORD, **overrides: Any) -> WSMan:
        endpoint = self.endpoints[node]
        kwargs: dict[str, Any] = {
            "port": endpoint.port,
            "username": USER,
            "password": password,
            "auth": self.client_auth,
            "ssl": endpoint.scheme == "https",
            "connection_timeout": 5,
            "read_timeout": 10,
            "operation_timeout": 5,
            "no_proxy": True,
        }
        if endpoint.scheme == "https":
            kwargs["cert_validation"] = self.server.ca_bundle_path  # validated against the lab CA, never off
        kwargs.update(overrides)
        return WSMan(endpoint.address, **kwargs)

    def receives(self, node: int = 0) -> int:
        return self.server.stats(self.endpoints[node].name).actions.get("Receive", 0)


def wait_for(predicate: Any, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return bool(predicate())
