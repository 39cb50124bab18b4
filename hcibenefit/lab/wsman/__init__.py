"""Simulated WinRM endpoints for the lab: real WS-Management and PowerShell Remoting on loopback.

The real pypsrp client talks to these over real HTTP(S) with real authentication; what the PowerShell
does is up to a `ScriptExecutor` (see `executor`).

    server = WSManServer(executor, auth="basic", username="labadmin", password=pw)  # or auth="ntlm"
    endpoint = server.add_node("node1", NodeFaults())   # Endpoint(name, address, port, scheme)
    server.start()
    WSMan(endpoint.address, port=endpoint.port, ssl=True, auth="basic", username="labadmin",
          password=pw, cert_validation=server.ca_bundle_path)
    server.set_faults("node1", down=True)                # faults apply from the next request
    server.stats("node1")                                # NodeStats(open_shells, requests, shells_created, ...)
    server.stop()

- `auth="basic"`: HTTPS only. Each node gets a certificate from `ca` (a CA of the server's own when
  None) with its address and name as SANs; `ca_bundle_path` is that CA as a PEM file.
- `auth="ntlm"`: HTTP with NTLM/Negotiate and WinRM message encryption; `ca_bundle_path` is None.
- Each node has its own loopback address (127.77.x.y; 127.0.0.1 where the platform only has that) and
  port. `NodeFaults`: `latency_ms` delays every answer, `connect_latency_ms` every new connection, `down` refuses connections, `auth_fail` answers
  401, `hang` never answers, `max_shells` is MaxShellsPerUser.
- Other WinRM settings as Windows defaults them: IdleTimeout 7200 s, MaxConcurrentCommandsPerShell
  1000, MaxEnvelopeSizekb 500, configuration `Microsoft.PowerShell` plus `accepted_configurations`.

Deliberately not Windows: no WinRS cmd shell, Connect/Disconnect/Reconnect, Kerberos, CredSSP, host
calls, chunked requests, Negotiate over HTTPS or Basic over HTTP; error records carry no
InvocationInfo; a shell is reaped for idleness only when its node is next used or asked for stats;
ctrl_c reports the pipeline Stopped at once, whether or not the executor has noticed `stopping`.
"""

from hcibenefit.lab.wsman.executor import (
    CommandSpec,
    PipelineCall,
    PipelineOutput,
    ScriptExecutor,
    TerminatingError,
)
from hcibenefit.lab.wsman.server import Endpoint, NodeFaults, NodeStats, WSManServer

__all__ = [
    "CommandSpec",
    "Endpoint",
    "NodeFaults",
    "NodeStats",
    "PipelineCall",
    "PipelineOutput",
    "ScriptExecutor",
    "TerminatingError",
    "WSManServer",
]
