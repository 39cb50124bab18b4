"""Locating guest VMs and reaching them: one call per owner node (PowerShell Direct) or per guest (WinRM)."""

from __future__ import annotations

import dataclasses
import logging
import secrets
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias

from hcibenefit.checks.eligibility import Requirement, requirement
from hcibenefit.checks.guest_checks import (
    GuestContext,
    NotProbed,
    not_running,
)
from hcibenefit.checks.unassessed import UnassessedVM, vms_named_on_unreachable_nodes
from hcibenefit.errors import UsageError
from hcibenefit.facts.guest import (
    FanOut,
    GuestError,
    GuestProbe,
    KickResult,
    body_document,
    parse_fan_out,
)
from hcibenefit.facts.host import FactsError, HostFacts, VMFacts
from hcibenefit.inventory import Cluster, CredentialResolver, GuestVM, Inventory, Node, ResolvedCredential
from hcibenefit.inventory.model import AzureSettings
from hcibenefit.operations.gather import connections, gather_clusters
from hcibenefit.operations.selection import Selection
from hcibenefit.operations.tlswarn import warn_unvalidated
from hcibenefit.remoting.catalog import Script
from hcibenefit.remoting.errors import (
    AuthenticationFailed,
    MalformedOutputError,
    ModuleMissingError,
    RemotingError,
    ScriptError,
)
from hcibenefit.remoting.runner import DEFAULT_WORKERS, SessionHolder, run_per_host
from hcibenefit.remoting.session import CredentialParameter, Endpoint, run_script
from hcibenefit.remoting.transport import Session

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)

NONCE_DIGITS = 10
IMDS_TIMEOUT_S = 3
"""Per IMDS address inside the guest: .254 never answers on HCI, so this is paid once per guest."""
THROTTLE_LIMIT = 32
PROBE_TIMEOUT_S = 600.0
KICK_MAX_RUNS = 2
KICK_WAIT_S = 120
KICK_TIMEOUT_S = 1200.0

GuestAnswer: TypeAlias = "GuestProbe | KickResult"
Answer: TypeAlias = "GuestProbe | KickResult | tuple[GuestError, ...] | NotProbed"
"""Per VM: what its body returned, the errors PowerShell gave instead, or why it was not asked."""


def new_nonce() -> str:
    """IMDS nonces are 10 digits (docs/platform.md §8); fresh and unpredictable for every call."""
    return "".join(secrets.choice("0123456789") for _ in range(NONCE_DIGITS))


# --- locating the VMs -----------------------------------------------------------------------------


@dataclass(frozen=True)
class GuestTarget:
    """One VM asked about: where it lives, how to reach it, and why it will not be sent (if so)."""

    name: str
    cluster: Cluster | None
    """None only for a VM found nowhere while some nodes were unreachable (it may live on one of them)."""
    node: Node | None
    vm: VMFacts | None
    host: HostFacts | None
    requirement: Requirement | None
    access: GuestVM | None
    not_probed: NotProbed | None = None

    @property
    def cluster_name(self) -> str | None:
        return self.cluster.name if self.cluster else None

    @property
    def access_mode(self) -> str | None:
        return self.access.access if self.access else None

    def context(self) -> GuestContext:
        return GuestContext(
            vm=self.name,
            cluster=self.cluster.name if self.cluster else "?",
            node=self.node.name if self.node else None,
            vm_facts=self.vm,
            host=self.host,
            requirement=self.requirement,
        )


def locate(
    inventory: Inventory,
    resolver: CredentialResolver,
    selection: Selection,
    *,
    workers: int = DEFAULT_WORKERS,
    cancel: threading.Event | None = None,
    holder: SessionHolder | None = None,
) -> tuple[list[GuestTarget], dict[str, str]]:
    """Each selected VM with its owner node's facts (one host-facts call per node); unreachable nodes.

    With `holder`, the session of every node that runs a VM the selection may pick stays open for the
    guest call that follows, so such a node is asked everything through one session.
    """
    nothing = "nothing was sent to any guest"
    clusters = selection.select_clusters(inventory, nothing_done=nothing)

    def runs_a_selected_vm(host: HostFacts) -> bool:
        running = [vm for vm in host.vms if vm.running]
        return bool(running) and bool(selection.match_vms(running, name_of=lambda vm: vm.name).selected)

    gathered, _ = gather_clusters(
        inventory, clusters, resolver, workers=workers, cancel=cancel, holder=holder, hold=runs_a_selected_vm
    )
    unreachable = {name: why for facts in gathered for name, why in facts.unreachable.items()}
    # What the nodes reported, and the VMs a node of the same cluster names on a node that did not answer
    # (as status lists them): a name or glob picks both, so such a VM is reported by name, not assessed.
    cluster_of = {cluster.name: cluster for cluster in clusters}
    candidates: list[Candidate] = [
        (vm, host, cluster)
        for facts, cluster in zip(gathered, clusters, strict=True)
        for host in facts.hosts
        for vm in host.vms
    ]
    candidates += [(u, None, cluster_of[u.cluster]) for u in vms_named_on_unreachable_nodes(gathered)]
    match = selection.match_vms(candidates, name_of=lambda c: c[0].name, exclusion=inventory.policy.exclusion)
    if match.ambiguous:
        places = {
            name: ", ".join(_node_of(c) for c in candidates if c[0].name.casefold() == name.casefold())
            for name in match.ambiguous
        }
        raise UsageError(
            "VM name on more than one node: "
            + "; ".join(f"{name} ({nodes})" for name, nodes in places.items())
            + f"; {nothing}"
        )
    targets = [_target(inventory, *candidate) for candidate in match.selected]
    if match.unmatched:
        if not unreachable:
            match.raise_unmatched(
                [c[0].name for c in candidates],
                where="on any node of the selected clusters",
                nothing_done=nothing,
            )
        why = f"not found on the nodes that answered; unreachable: {', '.join(unreachable)}"
        only = clusters[0] if len(clusters) == 1 else None
        for name in match.unmatched:
            access = only.guests.vm(name) if only else None
            targets.append(
                GuestTarget(name, only, None, None, None, None, access, NotProbed("node-unreachable", why))
            )
    return targets, unreachable


Candidate: TypeAlias = "tuple[VMFacts, HostFacts, Cluster] | tuple[UnassessedVM, None, Cluster]"
"""A VM a node reported (with that node's facts), or one named on a node that did not answer."""


def _node_of(candidate: Candidate) -> str:
    item, host, _ = candidate
    return item.node if isinstance(item, UnassessedVM) else host.node if host else "?"


def _target(
    inventory: Inventory, vm: VMFacts | UnassessedVM, host: HostFacts | None, cluster: Cluster
) -> GuestTarget:
    access = cluster.guests.vm(vm.name)
    if isinstance(vm, UnassessedVM):
        # Nothing is sent for it: its owner node, the only way to its guest or its facts, did not answer.
        owner = next((n for n in cluster.nodes if n.name == vm.node), None)
        return GuestTarget(
            vm.name, cluster, owner, None, None, None, access, NotProbed("node-unreachable", vm.reason)
        )
    assert host is not None
    node = next(n for n in cluster.nodes if n.name.casefold() == host.node.casefold())
    reason = None
    if not vm.running:
        reason = NotProbed(not_running(vm.state), f"the VM is {vm.state}; only a running guest can be asked")
    return GuestTarget(
        vm.name, cluster, node, vm, host, requirement(vm, host, inventory.policy), access, reason
    )


# --- batches: one call per owner node (PowerShell Direct) or per guest (WinRM) -----------------------


@dataclass(frozen=True)
class Batch:
    name: str
    """The node's name, or the guest's for WinRM: for log lines."""
    endpoint: Endpoint
    targets: tuple[GuestTarget, ...]
    direct: bool
    """True: PowerShell Direct from the owner node; False: WinRM straight to the guest."""
    credential: CredentialParameter | None


def _guest_credential(target: GuestTarget, resolver: CredentialResolver) -> ResolvedCredential:
    assert target.cluster is not None
    cluster = target.cluster
    # The node carries the effective guest credentials (the inventory merges them like host ones).
    spec = target.node.guest_credentials if target.node is not None else cluster.guest_credentials
    if spec is None:
        raise UsageError(
            f'cluster "{cluster.name}" has no guest_credentials; nothing was sent to any guest',
            hint="add guest_credentials (username plus password_env, password_cmd or keyring) under "
            "defaults or the cluster in the inventory",
        )
    resolved = resolver.resolve(spec)
    if resolved.username is None or resolved.password is None:
        raise UsageError(f'guest_credentials of cluster "{cluster.name}" give no user name and password')
    return resolved


def plan_batches(
    targets: Sequence[GuestTarget], resolver: CredentialResolver, *, azure: AzureSettings | None = None
) -> list[Batch]:
    """Group the sendable targets; every credential is resolved before the first connection."""
    sendable = [
        t
        for t in targets
        if t.not_probed is None and t.node is not None and t.cluster is not None and t.access is not None
    ]
    guest_creds = {t.name.casefold(): _guest_credential(t, resolver) for t in sendable}
    winrm_guests = [
        (t.access.address, t.access.winrm) for t in sendable if t.access and t.access.access == "winrm"
    ]
    warn_unvalidated(winrm_guests, what="guest")
    batches: list[Batch] = []
    by_node: dict[str, list[GuestTarget]] = {}
    for target in sendable:
        assert target.access is not None
        if target.access.access == "winrm":
            cred = guest_creds[target.name.casefold()]
            endpoint = Endpoint(target.name, target.access.address, target.access.winrm, cred)
            batches.append(Batch(target.name, endpoint, (target,), False, None))
        else:
            assert target.node is not None
            by_node.setdefault(target.node.name, []).append(target)
    for node_name, mine in by_node.items():
        node = mine[0].node
        assert node is not None
        cred = guest_creds[mine[0].name.casefold()]
        assert cred.username is not None and cred.password is not None
        endpoint = connections([node], resolver, azure=azure)[0].endpoint
        batches.append(
            Batch(node_name, endpoint, tuple(mine), True, CredentialParameter(cred.username, cred.password))
        )
    return batches


def answers_from_fan_out(
    targets: Sequence[GuestTarget],
    fan: FanOut,
    body_schema: str | tuple[str, ...],
    parse: Callable[[Mapping[str, Any]], GuestAnswer],
) -> dict[str, Answer]:
    """Per target VM: its body's answer, the errors PowerShell Direct gave for it, or why there is none."""
    answers: dict[str, Answer] = {}
    for target in targets:
        vm_id = target.vm.id if target.vm is not None else None
        outputs = fan.output_of(target.name, vm_id)
        failures = fan.failures_of(target.name, vm_id)
        if outputs:
            try:
                answer = parse(body_document(outputs, schema=body_schema))
                if isinstance(answer, GuestProbe) and fan.node_clock is not None:
                    answer = dataclasses.replace(answer, node_clock=fan.node_clock)
                answers[target.name.casefold()] = answer
            except FactsError as exc:
                shown = body_schema if isinstance(body_schema, str) else body_schema[-1]
                answers[target.name.casefold()] = NotProbed("probe-failed", f"{shown}: {exc}")
        elif failures:
            answers[target.name.casefold()] = failures
        elif fan.unattributed and len(targets) == 1:
            answers[target.name.casefold()] = fan.unattributed
        else:
            extra = "; ".join(f"{f.message} [{f.error_id}]" for f in fan.unattributed)
            answers[target.name.casefold()] = NotProbed(
                "no-answer",
                "PowerShell Direct returned nothing for this VM" + (f" ({extra})" if extra else ""),
            )
    return answers


def run_batch(
    batch: Batch,
    cancel: threading.Event,
    *,
    host_script: Script,
    body_script: Script,
    parameters: Mapping[str, Any],
    body_text_parameter: str,
    parse: Callable[[Mapping[str, Any]], GuestAnswer],
    timeout_s: float,
    session: Session | None = None,
    holder: SessionHolder | None = None,
) -> dict[str, Answer]:
    """`session`: an open session on the batch's node to run a PowerShell Direct fan-out in (the sweep's
    one session per node); `holder`: where the host-facts pass left this node's session open (guest
    check); without either the call opens and closes its own."""
    if batch.direct:
        params = {
            # By id: Hyper-V treats a name as a wildcard pattern (a VM named "*" would select every VM).
            "VMId": [t.vm.id for t in batch.targets if t.vm is not None],
            "Credential": batch.credential,
            body_text_parameter: body_script.text(),
            **parameters,
            "ThrottleLimit": THROTTLE_LIMIT,
        }
        log.info("%s: %s for %d guest(s)", batch.name, host_script.key, len(batch.targets))
        held = holder.take(batch.name) if holder is not None and session is None else None
        if session is not None:
            document = session.run(host_script, params, timeout_s=timeout_s)
        elif held is not None:
            try:
                document = held.run(host_script, params, timeout_s=timeout_s)
            finally:
                held.close()
        else:
            document = run_script(batch.endpoint, host_script, params, cancel=cancel, timeout_s=timeout_s)
        try:
            fan = parse_fan_out(document, schema=host_script.key)
        except FactsError as exc:
            raise MalformedOutputError(batch.name, f"{host_script.key}: {exc}") from None
        return answers_from_fan_out(batch.targets, fan, body_script.key, parse)
    log.info("%s: %s over WinRM", batch.name, body_script.key)
    document = run_script(batch.endpoint, body_script, dict(parameters), cancel=cancel, timeout_s=timeout_s)
    try:
        return {batch.targets[0].name.casefold(): parse(document)}
    except FactsError as exc:
        raise MalformedOutputError(batch.name, f"{body_script.key}: {exc}") from None


def batch_error(batch: Batch, error: RemotingError) -> Answer:
    text = f"{error.kind}: {error.detail}"
    if batch.direct:
        if isinstance(error, ScriptError | MalformedOutputError | ModuleMissingError):
            return NotProbed("probe-failed", f"on {batch.name}: {text}")
        return NotProbed("node-unreachable", f"{batch.name}: {text}")
    if isinstance(error, AuthenticationFailed):
        return (GuestError(error.detail, "AuthenticationFailed", "AuthenticationError", batch.name),)
    if isinstance(error, ScriptError | MalformedOutputError):
        return NotProbed("probe-failed", text)
    return NotProbed("guest-unreachable", text)


def run_batches(
    batches: Sequence[Batch],
    work: Callable[[Batch, threading.Event], dict[str, Answer]],
    *,
    workers: int,
    cancel: threading.Event | None,
) -> dict[str, Answer]:
    answers: dict[str, Answer] = {}
    outcomes = run_per_host(
        batches, work, name_of=lambda b: b.name, workers=workers, cancel=cancel, activity="guest calls"
    )
    for outcome in outcomes:
        if outcome.value is not None:
            answers.update(outcome.value)
            continue
        assert outcome.error is not None
        log.warning("%s: %s", outcome.target.name, outcome.error.detail)
        failed = batch_error(outcome.target, outcome.error)
        for target in outcome.target.targets:
            answers[target.name.casefold()] = failed
    return answers
