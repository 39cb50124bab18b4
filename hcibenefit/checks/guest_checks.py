"""Per-VM activation verdicts from inside the guest, combined with what the owner node says. Pure.

Every VM gets one verdict word and one reason code (the most useful thing to fix first); `problems`
lists every code found, in fix-first order. Reasons are a closed set, each with its title and fix
below, so a reader can check them in one screen.

Verdicts:
  activated       Windows is licensed (LicenseStatus 1) and nothing in its Azure Benefits path is broken.
  at-risk         licensed now, but the IMDS path or the task is broken, so the next re-activation
                  fails (ASSUMPTION: IMDS-based activation is renewed; the task runs daily, SEED).
  not-activated   not licensed; the reason says why.
  not-assessable  the guest could not be asked (VM not running, PowerShell Direct unavailable, node
                  unreachable); not a finding about the guest.
  auth-failed     the guest refused the guest credential.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, get_args

from hcibenefit.checks import fixes
from hcibenefit.checks.eligibility import Requirement
from hcibenefit.facts.guest import HOST_IMDS_ADDRESS, GuestError, GuestProbe, license_status_name
from hcibenefit.facts.host import HOST_SWITCH, HostFacts, VMFacts

Verdict = Literal["activated", "at-risk", "not-activated", "not-assessable", "auth-failed"]
VERDICTS: tuple[Verdict, ...] = get_args(Verdict)
FINDING_VERDICTS: frozenset[str] = frozenset({"at-risk", "not-activated"})
INCOMPLETE_VERDICTS: frozenset[str] = frozenset({"not-assessable", "auth-failed"})


@dataclass(frozen=True)
class Reason:
    code: str
    title: str
    fix: str | None
    """A template; {vm}, {cluster} and {node} are filled in."""


_REASONS = (
    Reason("licensed", "Windows is activated", None),
    Reason(
        "other-channel",
        "not activated, and the VM does not use Azure Benefits",
        "activate it the usual way (KMS, AVMA or MAK); Azure Benefits are for multi-session and Azure Edition guests",
    ),
    Reason(
        "benefits-missing",
        "the VM has no Azure Benefits (no V1 guest NIC, no V2 Guest Service Interface)",
        "{enable}; then hcibenefit guest kick --vm {vm_arg}",
    ),
    Reason(
        "node-not-serving",
        "the owner node's IMDS attestation is not active",
        "{node_fix}; then hcibenefit guest kick --vm {vm_arg}",
    ),
    Reason(
        "imds-path-broken",
        "the V1 path on the host is broken (guest NIC, switch, host vNIC or legacy OS support)",
        "{path_fix}; then hcibenefit guest kick --vm {vm_arg}",
    ),
    Reason(
        "imds-unreachable",
        "the guest cannot reach IMDS at 169.254.169.253 although the host side looks right",
        "inside {vm}: Test-NetConnection 169.254.169.253 -Port 80 shows where it stops (the IMDS NIC's "
        "169.254.x.x address, Windows Firewall, a proxy); then hcibenefit guest kick --vm {vm_arg}",
    ),
    Reason(
        "document-unparsable",
        "IMDS answered with something that is not an attested document",
        "check what answers on 169.254.169.253 from inside {vm}",
    ),
    Reason(
        "bad-signature",
        "the attested document's signature does not verify",
        "{sync}; then look for anything on {node} rewriting HTTP on the IMDS switch",
    ),
    Reason(
        "missing-intermediate",
        "the signer's intermediate CA is missing, so the chain cannot be built",
        "{fetch_issuer}; inside {vm}: certutil -addstore CA with that certificate, see docs/attestation.md; "
        "then hcibenefit guest kick --vm {vm_arg}",
    ),
    Reason(
        "untrusted-chain",
        "the document's chain does not end at a trusted root",
        "check attestation.ca_files in the inventory and the root certificates in {vm}",
    ),
    Reason(
        "san-mismatch",
        "the document was not signed by an IMDS certificate",
        "check attestation.san_pattern in the inventory; otherwise something else answers as IMDS",
    ),
    Reason(
        "nonce-mismatch",
        "the document does not carry the nonce we sent (replayed or cached)",
        "look for a proxy or cache between {vm} and 169.254.169.253",
    ),
    Reason(
        "document-expired",
        "IMDS served an expired attested document",
        "{sync}; if that does not help, compare the clocks of {node} and {vm} (w32tm /stripchart)",
    ),
    Reason(
        "document-not-yet-valid",
        "IMDS served a document from the future",
        "check the clocks of {node} and {vm}",
    ),
    Reason(
        "task-missing",
        "the guest has no LicenseImdsIntegration task",
        "inside {vm}: install the latest cumulative update (Windows Update); then hcibenefit guest check --vm {vm_arg}",
    ),
    Reason(
        "task-disabled",
        "the LicenseImdsIntegration task is disabled",
        "hcibenefit guest kick --vm {vm_arg} --enable-task",
    ),
    Reason(
        "task-never-ran",
        "the LicenseImdsIntegration task has never run",
        "hcibenefit guest kick --vm {vm_arg}",
    ),
    Reason(
        "task-failed",
        "the LicenseImdsIntegration task's last run failed",
        "hcibenefit guest kick --vm {vm_arg}",
    ),
    Reason(
        "activation-pending",
        "the task ran successfully but Windows is not activated yet",
        "hcibenefit guest kick --vm {vm_arg}  (activation can take a second run of the task)",
    ),
    Reason("no-product-key", "no Windows product with a key is installed", "check the image in {vm}"),
    Reason("license-unknown", "the guest could not read its licensing state", None),
    Reason("vm-off", "the VM is off", "{start}; then hcibenefit guest check --vm {vm_arg}"),
    Reason("vm-saved", "the VM is saved", "{start}; then hcibenefit guest check --vm {vm_arg}"),
    Reason("vm-paused", "the VM is paused", "{start}; then hcibenefit guest check --vm {vm_arg}"),
    Reason("vm-not-running", "the VM is not running", "{start}; then hcibenefit guest check --vm {vm_arg}"),
    Reason(
        "vm-not-found",
        "the owner node no longer finds the VM (moved or renamed)",
        "hcibenefit guest check --vm {vm_arg}",
    ),
    Reason(
        "powershell-direct-unavailable",
        "PowerShell Direct into the guest failed",
        "PowerShell Direct needs a Windows 10 / Server 2016 or later guest that has finished booting; "
        "or reach it over WinRM (clusters[].guests.vms.{vm}.access: winrm)",
    ),
    Reason(
        "guest-unreachable",
        "the guest's WinRM endpoint could not be reached",
        "check the guest address and WinRM settings under clusters[].guests in the inventory",
    ),
    Reason(
        "node-unreachable",
        "the owner node could not be reached",
        "hcibenefit inventory test --cluster {cluster_arg}",
    ),
    Reason(
        "probe-failed",
        "the probe failed on the owner node",
        "hcibenefit -vv guest check --vm {vm_arg} shows PowerShell's error",
    ),
    Reason(
        "no-answer",
        "the guest sent no answer",
        "hcibenefit -vv guest check --vm {vm_arg} shows what came back",
    ),
    Reason(
        "credential-unavailable",
        "the guest credential could not be resolved, so the guest was not asked",
        "check guest_credentials for cluster {cluster} in the inventory (its password source)",
    ),
    Reason(
        "deadline",
        "the run's deadline passed before the guest was asked",
        "give the sweep a longer --deadline, or sweep fewer clusters per run",
    ),
    Reason(
        "bad-credentials",
        "the guest refused the guest credential",
        "check guest_credentials for cluster {cluster} in the inventory (user and password source)",
    ),
)
REASONS: dict[str, Reason] = {r.code: r for r in _REASONS}

# The verifier's failure kinds (hcibenefit.attestation) as reason codes.
DOCUMENT_REASONS = {
    "unparsable": "document-unparsable",
    "bad-signature": "bad-signature",
    "untrusted-chain": "untrusted-chain",
    "missing-intermediate": "missing-intermediate",
    "san-mismatch": "san-mismatch",
    "nonce-mismatch": "nonce-mismatch",
    "expired": "document-expired",
    "not-yet-valid": "document-not-yet-valid",
}
_NOT_RUNNING = {"Off": "vm-off", "Saved": "vm-saved", "Paused": "vm-paused"}
HOST_CAUSES: frozenset[str] = frozenset({"benefits-missing", "node-not-serving", "imds-path-broken"})
"""Reasons fixed on the owner node: running the guest's task cannot help until they are."""


@dataclass(frozen=True)
class DocumentCheck:
    """The verifier's result for the document the probe fetched, reduced to what verdicts need."""

    ok: bool
    failure_kind: str | None
    reason: str
    issuer_url: str | None = None
    """missing-intermediate: where the missing issuer is published (its child's AIA), for the fix."""


@dataclass(frozen=True)
class NotProbed:
    """The guest was not (or could not be) asked: a reason code and what happened."""

    reason: str
    detail: str


@dataclass(frozen=True)
class GuestContext:
    """Who the VM is and what its owner node says about it (None: not located)."""

    vm: str
    cluster: str
    node: str | None
    vm_facts: VMFacts | None
    host: HostFacts | None
    requirement: Requirement | None


@dataclass(frozen=True)
class GuestVerdict:
    verdict: Verdict
    reason: str
    detail: str
    fix: str | None
    problems: tuple[str, ...] = ()

    @property
    def title(self) -> str:
        return REASONS[self.reason].title


def not_running(state: str) -> str:
    return _NOT_RUNNING.get(state, "vm-not-running")


def fix_for(code: str, ctx: GuestContext, document: DocumentCheck | None = None) -> str | None:
    """The reason's fix for this VM: exact commands, with what its owner node needs first."""
    template = REASONS[code].fix
    if template is None:
        return None
    vm, host = ctx.vm_facts, ctx.host
    node = ctx.node or "the owner node"
    enable = fixes.enable_vm(ctx.vm)
    node_fix = fixes.hcibenefit("status", cluster=ctx.cluster)
    path_fix = enable
    sync = fixes.hcibenefit("host", "sync", cluster=ctx.cluster, node=ctx.node)
    if vm is not None and host is not None:
        transport = ctx.requirement.transport if ctx.requirement else None
        enable = fixes.enable_fix(vm, host, transport or ("V1" if vm.imds_nic is not None else None))
        node_fix = fixes.steps(*fixes.node_serving_steps(host)) or node_fix
        switch = host.switch or host.attestation_switch
        if switch is None:
            path_fix = fixes.steps(
                *fixes.node_enable_steps(host.cluster, host.node, host.module_version),
                fixes.enable_vm(ctx.vm),
            )
        elif (
            switch.switch_type != "Internal"
            or switch.name != HOST_SWITCH
            or (host.host_vnic_addresses is not None and HOST_IMDS_ADDRESS not in host.host_vnic_addresses)
        ):
            path_fix = fixes.rebuild_switch(host.node)
        else:
            path_fix = fixes.enable_fix(vm, host, "V1")
    state = vm.state if vm is not None else "Off"
    return template.format(
        vm=ctx.vm,
        vm_arg=fixes.sh(ctx.vm),
        cluster=ctx.cluster,
        cluster_arg=fixes.sh(ctx.cluster),
        node=node,
        enable=enable,
        node_fix=node_fix,
        path_fix=path_fix,
        sync=sync,
        start=fixes.start_vm(ctx.vm, node, state),
        fetch_issuer=_fetch_issuer(document),
    )


def _fetch_issuer(document: DocumentCheck | None) -> str:
    # The command fetches from the URL the signer's chain names and keeps the certificate only if it chains
    # to a root already trusted; guest check and sweep load what it stores from then on.
    if document is not None and document.issuer_url:
        return f"hcibenefit attest fetch-intermediates --url {fixes.sh(document.issuer_url)}"
    return "add the issuer's certificate (named in the detail) to attestation.ca_files"


def _verdict(
    verdict: Verdict,
    code: str,
    detail: str,
    ctx: GuestContext,
    problems: Sequence[str] = (),
    document: DocumentCheck | None = None,
) -> GuestVerdict:
    return GuestVerdict(verdict, code, detail, fix_for(code, ctx, document), tuple(problems) or (code,))


# --- failures before any guest answer ------------------------------------------------------------

# ASSUMPTION: the ids PowerShell Direct gives (RemotingErrorIdStrings); the messages are matched too,
# since the ids are not documented in docs/platform.md.
_AUTH_IDS = ("InvalidCredential", "AuthenticationFailed")
_AUTH_WORDS = ("credential is invalid", "user name or password is incorrect", "logon failure")


def classify_failure(failure: GuestError) -> tuple[Verdict, str]:
    error_id = failure.error_id
    message = failure.message.lower()
    if error_id.startswith(_AUTH_IDS) or any(w in message for w in _AUTH_WORDS):
        return "auth-failed", "bad-credentials"
    # guest-probe/2 and guest-kick/2 report VMs they skipped themselves (VMNotRunning, Get-VM -Id not
    # finding it); PowerShell Direct's own ids remain for a VM that changed state in between.
    if error_id.startswith(("InvalidVMState", "VMNotRunning")) or "not in running state" in message:
        return "not-assessable", "vm-not-running"
    if (
        error_id.startswith(("InvalidVMNameNotSingle", "InvalidVMIdNotSingle"))
        or "does not resolve to a single virtual machine" in message
        or "unable to find a virtual machine" in message
    ):
        return "not-assessable", "vm-not-found"
    return "not-assessable", "powershell-direct-unavailable"


def assess_failure(ctx: GuestContext, failures: Sequence[GuestError]) -> GuestVerdict:
    """The verdict for a guest that answered only with errors: the first classified one decides."""
    classified = [(classify_failure(f), f) for f in failures]
    # An authentication failure is the most actionable; report it even when other errors came too.
    classified.sort(key=lambda item: item[0][0] != "auth-failed")
    (verdict, code), first = classified[0]
    detail = f"{first.message} [{first.error_id}]" if first.error_id else first.message
    return _verdict(verdict, code, detail, ctx)


def assess_not_probed(ctx: GuestContext, outcome: NotProbed) -> GuestVerdict:
    return _verdict("not-assessable", outcome.reason, outcome.detail, ctx)


# --- the guest answered ---------------------------------------------------------------------------


def transports(vm: VMFacts, host: HostFacts) -> tuple[str, ...]:
    """The Azure Benefits transports configured for the VM on its owner node."""
    found = []
    if vm.imds_nic is not None:
        found.append("V1")
    if host.supports_v2 and vm.gsi_enabled:
        found.append("V2")
    return tuple(found)


def _uses_imds(ctx: GuestContext) -> bool:
    if ctx.vm_facts is None or ctx.host is None:
        return True  # no host view: judge the guest on its own
    return bool(transports(ctx.vm_facts, ctx.host)) or (
        ctx.requirement is not None and ctx.requirement.needed is True
    )


def _host_problems(ctx: GuestContext) -> list[tuple[str, str]]:
    """(code, detail) for what the owner node shows broken in this VM's path to IMDS."""
    vm, host = ctx.vm_facts, ctx.host
    if vm is None or host is None:
        return []
    found: list[tuple[str, str]] = []
    configured = transports(vm, host)
    if not configured:
        why = ctx.requirement.reason if ctx.requirement is not None else "the guest uses IMDS"
        found.append(
            (
                "benefits-missing",
                f"{why}; no guest NIC on the IMDS switch (V1) or Guest Service Interface (V2)",
            )
        )
        return found
    registration = host.registration.registration_status if host.registration else "unknown"
    status = host.attestation.status if host.attestation else "unknown"
    if registration != "Registered":
        found.append(("node-not-serving", f"cluster registration is {registration}"))
    elif status != "Active":
        found.append(("node-not-serving", f"owner node {host.node} attestation is {status}"))
    if configured == ("V1",):
        nic = vm.imds_nic
        broken = []
        if nic is not None and (not nic.connected or nic.switch_name != HOST_SWITCH):
            broken.append(
                "guest NIC " + (f"connected to {nic.switch_name}" if nic.connected else "not connected")
            )
        if host.switch is None or host.switch.switch_type != "Internal":
            broken.append(f"{host.node} has no usable {HOST_SWITCH}")
        elif host.host_vnic_addresses is not None and HOST_IMDS_ADDRESS not in host.host_vnic_addresses:
            broken.append(f"{host.node}'s IMDS vNIC lacks {HOST_IMDS_ADDRESS}")
        if not host.legacy_os_support:
            broken.append(f"{host.node} has legacy OS support (V1) off")
        if broken:
            found.append(("imds-path-broken", "; ".join(broken)))
    return found


def _guest_path_problems(
    ctx: GuestContext, probe: GuestProbe, document: DocumentCheck | None
) -> list[tuple[str, str]]:
    """(code, detail) for what the guest itself saw of IMDS and the document."""
    found: list[tuple[str, str]] = []
    uses_v2 = ctx.vm_facts is not None and ctx.host is not None and "V2" in transports(ctx.vm_facts, ctx.host)
    attempt = probe.attempt(HOST_IMDS_ADDRESS)
    # V2 documents travel over VMBus (ASSUMPTION, lab/state.py): no HTTP answer is expected there.
    if not uses_v2 and (attempt is None or not attempt.ok):
        if attempt is None:
            detail = f"the probe did not try {HOST_IMDS_ADDRESS}"
        else:
            status = f"HTTP {attempt.status_code}: " if attempt.status_code else ""
            detail = f"{HOST_IMDS_ADDRESS}: {status}{attempt.error or 'no answer'}"
        if not probe.imds_addresses:
            detail += "; the guest has no 169.254.x.x address"
        found.append(("imds-unreachable", detail))
    if document is not None and not document.ok and document.failure_kind is not None:
        code = DOCUMENT_REASONS.get(document.failure_kind, "document-unparsable")
        found.append((code, document.reason))
    elif document is None and attempt is not None and attempt.ok and probe.document_raw is None:
        found.append(("document-unparsable", f"{HOST_IMDS_ADDRESS} answered, but with no document"))
    return found


def _task_problems(probe: GuestProbe, *, licensed: bool) -> list[tuple[str, str]]:
    task = probe.task
    if not probe.task_known:
        return []
    if not task.present:
        return [
            ("task-missing", "Get-ScheduledTask finds no \\Microsoft\\Windows\\Clip\\LicenseImdsIntegration")
        ]
    if task.state == "Disabled":
        return [("task-disabled", "task state is Disabled")]
    if licensed:
        return []  # an activated guest's task history is not a risk
    if task.never_ran:
        return [("task-never-ran", f"task state {task.state}, never run")]
    if task.last_task_result not in (0, None):
        latest = next((e for e in probe.spp_events if e.id == 8198), None)
        extra = f"; Security-SPP {latest.id}: {latest.message}" if latest else ""
        return [("task-failed", f"last run result {task.last_result_hex}{extra}")]
    return []


def assess_probe(ctx: GuestContext, probe: GuestProbe, document: DocumentCheck | None) -> GuestVerdict:
    licensed = probe.licensed
    product = probe.license
    if licensed is None:
        problem = probe.problem("license")
        return _verdict("not-assessable", "license-unknown", problem.message if problem else "unknown", ctx)
    uses_imds = _uses_imds(ctx)
    if licensed:
        channel = product.product_key_channel if product is not None else ""
        status = "LicenseStatus 1 (Licensed)" + (f", {channel}" if channel else "")
        if not uses_imds:
            return _verdict("activated", "licensed", f"{status}; the VM does not use Azure Benefits", ctx)
        risks = _host_problems(ctx)
        if not risks:
            risks = _guest_path_problems(ctx, probe, document)
        risks += _task_problems(probe, licensed=True)
        if risks:
            return _verdict(
                "at-risk", risks[0][0], f"{status}, but {risks[0][1]}", ctx, [c for c, _ in risks], document
            )
        how = (
            "the document travels over VMBus (V2), the probe cannot fetch it"
            if document is None
            else "the attested document verifies"
        )
        return _verdict("activated", "licensed", f"{status}; {how}", ctx)
    if product is None:
        return _verdict(
            "not-activated",
            "no-product-key",
            "SoftwareLicensingProduct lists no Windows product with a key",
            ctx,
        )
    status = f"LicenseStatus {product.license_status} ({license_status_name(product.license_status)})"
    if not uses_imds:
        return _verdict("not-activated", "other-channel", status, ctx)
    causes = _host_problems(ctx)
    if not causes:
        causes = _guest_path_problems(ctx, probe, document)
    causes += _task_problems(probe, licensed=False)
    if not causes:
        causes = [
            (
                "activation-pending",
                f"task last ran {probe.task.last_run_time or 'at an unknown time'} with result 0",
            )
        ]
    return _verdict(
        "not-activated", causes[0][0], f"{status}: {causes[0][1]}", ctx, [c for c, _ in causes], document
    )
