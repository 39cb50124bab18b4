"""WS-Management envelopes: parse requests, render responses and faults the way Windows shapes them.

Responses are rendered from text templates rather than an XML tree so the server knows their exact
size, which Receive needs to fill an envelope up to the client's MaxEnvelopeSize.
"""

from __future__ import annotations

import re
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from xml.sax.saxutils import escape, quoteattr

S = "http://www.w3.org/2003/05/soap-envelope"
WSA = "http://schemas.xmlsoap.org/ws/2004/08/addressing"
WSMAN = "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd"
RSP = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell"
PWSH = "http://schemas.microsoft.com/powershell"
TRANSFER = "http://schemas.xmlsoap.org/ws/2004/09/transfer"

ACTION_CREATE = f"{TRANSFER}/Create"
ACTION_DELETE = f"{TRANSFER}/Delete"
ACTION_GET = f"{TRANSFER}/Get"
ACTION_COMMAND = f"{RSP}/Command"
ACTION_SEND = f"{RSP}/Send"
ACTION_RECEIVE = f"{RSP}/Receive"
ACTION_SIGNAL = f"{RSP}/Signal"
SHELL_RESOURCE = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell"
CONFIG_RESOURCE = "http://schemas.microsoft.com/wbem/wsman/1/config"
SIGNAL_TERMINATE = f"{RSP}/signal/Terminate"
STATE_DONE = f"{RSP}/CommandState/Done"
STATE_RUNNING = f"{RSP}/CommandState/Running"

_ENVELOPE_OPEN = (
    f'<s:Envelope xml:lang="en-US" xmlns:s="{S}" xmlns:a="{WSA}" xmlns:x="{TRANSFER}" xmlns:w="{WSMAN}" '
    f'xmlns:rsp="{RSP}" xmlns:p="http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd">'
)
_FAULT_ACTION = "http://schemas.dmtf.org/wbem/wsman/1/wsman/fault"
_DURATION = re.compile(r"^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d*)?)S)?)?$")


def duration_seconds(text: str) -> float:
    """An xs:duration such as PT20S or PT7200.000S, as seconds."""
    match = _DURATION.match(text.strip())
    if match is None:
        raise ValueError(f"not an xs:duration: {text!r}")
    days, hours, minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
    return ((days * 24 + hours) * 60 + minutes) * 60 + seconds


@dataclass(frozen=True)
class Request:
    action: str
    message_id: str
    resource_uri: str
    max_envelope: int
    timeout_s: float
    selectors: dict[str, str] = field(default_factory=dict)
    options: dict[str, str] = field(default_factory=dict)
    body: ET.Element | None = None


class Fault(Exception):
    """A WS-Management fault; `code` is the WSManFault Code (an HRESULT as unsigned int)."""

    def __init__(
        self,
        subcode: str,
        code: int,
        reason: str,
        *,
        receiver: bool = False,
        detail: str = "",
        provider: bool = False,
    ) -> None:
        super().__init__(reason)
        self.subcode = subcode
        self.code = code
        self.reason = reason
        self.receiver = receiver
        self.detail = detail
        self.provider = provider
        """Raised by the PowerShell plugin rather than by WinRM itself: Windows then nests the text in a
        ProviderFault inside the WSManFault's Message (f:Message has no text of its own)."""


# The plugin that serves the Microsoft.PowerShell configuration (WSMan:\localhost\Plugin\microsoft.powershell).
PLUGIN = "microsoft.powershell"
PLUGIN_PATH = "C:\\Windows\\system32\\pwrshplugin.dll"


# Texts and codes are Windows': pypsrp's recorded responses (tests/tests_pypsrp/responses/*.yml),
# wsmerror.h (Win32 metadata) for the numbers, and the issue threads named on each.
def timed_out() -> Fault:
    return Fault(
        "w:TimedOut",
        2150858793,  # ERROR_WSMAN_OPERATION_TIMEDOUT
        "The WS-Management service cannot complete the operation within the time specified in OperationTimeout.  ",
        receiver=True,
    )


def invalid_selectors() -> Fault:
    return Fault(
        "w:InvalidSelectors",
        2150858843,  # ERROR_WSMAN_INVALID_SELECTORS
        "The WS-Management service cannot process the request because the request contained invalid selectors "
        "for the resource. ",
        detail="http://schemas.dmtf.org/wbem/wsman/1/wsman/faultDetail/UnexpectedSelectors",
    )


def unknown_command() -> Fault:
    return Fault(
        "w:InvalidSelectors",
        2150858843,
        "The Windows Remote Shell received a request to perform an operation on a command identifier that does "
        "not exist. Either the command has completed execution or the client specified an invalid command "
        "identifier. ",
    )


def quota_shells(limit: int) -> Fault:
    # Text as recorded from Windows in test-kitchen/test-kitchen#656; ERROR_WSMAN_QUOTA_MAX_SHELLS.
    return Fault(
        "w:QuotaLimit",
        2150859173,
        f"The WS-Management service cannot process the request. This user is allowed a maximum number of {limit} "
        "concurrent shells, which has been exceeded. Close existing shells or raise the quota for this user. ",
    )


def quota_commands() -> Fault:
    # Text and subcode as Windows sent them in jborean93/pypsrp#148. The number is
    # ERROR_WSMAN_QUOTA_MAX_COMMANDS_PER_SHELL_PPQ (0x803381E9, wsmerror.h): the per-plugin quota
    # Plugin\microsoft.powershell\Quotas\MaxConcurrentCommandsPerShell. In #148 pypsrp showed the subcode
    # rather than a number, so callers should recognise either.
    return Fault(
        "w:InternalError",
        2150859241,
        "The WS-Management service cannot process the request. The maximum number of concurrent commands per "
        "shell has been exceeded. Retry the request later or raise the Maximum Commands per Shell quota.",
        receiver=True,
        provider=True,
    )


def invalid_resource_uri(uri: str) -> Fault:
    # Text and code as reported from Windows in jborean93/pypsrp#192 and diyan/pywinrm#273;
    # subcode per wsmerror.h's annotation of ERROR_WSMAN_INVALID_RESOURCE_URI.
    return Fault(
        "w:InvalidResourceURI",
        2150858811,
        f"The WS-Management service cannot process the request. The resource URI ({uri}) was not found in the "
        "WS-Management catalog. The catalog contains the metadata that describes resources, or logical endpoints.",
        detail="http://schemas.dmtf.org/wbem/wsman/1/wsman/faultDetail/InvalidResourceURI",
    )


def action_not_supported(action: str) -> Fault:
    return Fault(
        "a:ActionNotSupported",
        2150858771,  # ERROR_WSMAN_ACTION_NOT_SUPPORTED
        f"The WS-Management service does not support the action specified in the request ({action}).",
    )


def _text(parent: ET.Element, path: str) -> str:
    node = parent.find(path)
    return (node.text or "").strip() if node is not None else ""


def parse_request(data: bytes) -> Request:
    root = ET.fromstring(data)
    header = root.find(f"{{{S}}}Header")
    body = root.find(f"{{{S}}}Body")
    if header is None or body is None:
        raise ValueError("not a SOAP envelope")
    timeout = _text(header, f"{{{WSMAN}}}OperationTimeout")
    size = _text(header, f"{{{WSMAN}}}MaxEnvelopeSize")
    return Request(
        action=_text(header, f"{{{WSA}}}Action"),
        message_id=_text(header, f"{{{WSA}}}MessageID"),
        resource_uri=_text(header, f"{{{WSMAN}}}ResourceURI"),
        # Defaults are WinRM's own when a client omits the header.
        max_envelope=int(size) if size else 153600,
        timeout_s=duration_seconds(timeout) if timeout else 60.0,
        selectors={
            s.get("Name", ""): (s.text or "").strip()
            for s in header.iterfind(f"{{{WSMAN}}}SelectorSet/{{{WSMAN}}}Selector")
        },
        options={
            o.get("Name", ""): (o.text or "").strip()
            for o in header.iterfind(f"{{{WSMAN}}}OptionSet/{{{WSMAN}}}Option")
        },
        body=next(iter(body), None),
    )


def envelope(action: str, relates_to: str, body: str) -> str:
    return (
        f"{_ENVELOPE_OPEN}<s:Header><a:Action>{escape(action)}</a:Action>"
        f"<a:MessageID>uuid:{str(uuid.uuid4()).upper()}</a:MessageID>"
        "<a:To>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</a:To>"
        f"<a:RelatesTo>{escape(relates_to)}</a:RelatesTo></s:Header><s:Body>{body}</s:Body></s:Envelope>"
    )


def fault_envelope(fault: Fault, relates_to: str, machine: str) -> str:
    detail = f"<w:FaultDetail>{escape(fault.detail)}</w:FaultDetail>" if fault.detail else ""
    message = escape(fault.reason)
    if fault.provider:
        message = f"<f:ProviderFault provider={quoteattr(PLUGIN)} path={quoteattr(PLUGIN_PATH)}>{message}</f:ProviderFault>"
    body = (
        f"<s:Fault><s:Code><s:Value>{'s:Receiver' if fault.receiver else 's:Sender'}</s:Value>"
        f"<s:Subcode><s:Value>{escape(fault.subcode)}</s:Value></s:Subcode></s:Code>"
        f'<s:Reason><s:Text xml:lang="en-US">{escape(fault.reason)}</s:Text></s:Reason>'
        f'<s:Detail>{detail}<f:WSManFault xmlns:f="http://schemas.microsoft.com/wbem/wsman/1/wsmanfault" '
        f"Code={quoteattr(str(fault.code))} Machine={quoteattr(machine)}>"
        f"<f:Message>{message}</f:Message></f:WSManFault></s:Detail></s:Fault>"
    )
    return envelope(_FAULT_ACTION, relates_to, body)


def shell_xml(shell_id: str, resource_uri: str, owner: str, client_ip: str, idle_timeout_s: float) -> str:
    """The rsp:Shell a Create or Get answers with (the fields pypsrp reads, as Windows words them)."""
    return (
        f"<rsp:Shell><rsp:ShellId>{shell_id}</rsp:ShellId><rsp:ResourceUri>{escape(resource_uri)}</rsp:ResourceUri>"
        f"<rsp:Owner>{escape(owner)}</rsp:Owner><rsp:ClientIP>{escape(client_ip)}</rsp:ClientIP>"
        f"<rsp:IdleTimeOut>PT{idle_timeout_s:.3f}S</rsp:IdleTimeOut><rsp:InputStreams>stdin pr</rsp:InputStreams>"
        "<rsp:OutputStreams>stdout</rsp:OutputStreams><rsp:State>Connected</rsp:State></rsp:Shell>"
    )


def created_xml(address: str, resource_uri: str, shell: str, shell_id: str) -> str:
    return (
        f"<x:ResourceCreated><a:Address>{escape(address)}</a:Address><a:ReferenceParameters>"
        f"<w:ResourceURI>{escape(resource_uri)}</w:ResourceURI><w:SelectorSet>"
        f'<w:Selector Name="ShellId">{shell_id}</w:Selector></w:SelectorSet></a:ReferenceParameters>'
        f"</x:ResourceCreated>{shell}"
    )


def config_xml(max_envelope_kb: int) -> str:
    return (
        '<cfg:Config xmlns:cfg="http://schemas.microsoft.com/wbem/wsman/1/config">'
        f"<cfg:MaxEnvelopeSizekb>{max_envelope_kb}</cfg:MaxEnvelopeSizekb></cfg:Config>"
    )


def stream_open(command_id: str | None) -> str:
    return '<rsp:Stream Name="stdout"' + (f' CommandId="{command_id}">' if command_id else ">")


STREAM_CLOSE = "</rsp:Stream>"


def receive_xml(streams: str, command_id: str | None, done: bool) -> str:
    state = ""
    if command_id:
        state = f'<rsp:CommandState CommandId="{command_id}" State="{STATE_DONE if done else STATE_RUNNING}">'
        state += "<rsp:ExitCode>0</rsp:ExitCode></rsp:CommandState>" if done else "</rsp:CommandState>"
    return f"<rsp:ReceiveResponse>{streams}{state}</rsp:ReceiveResponse>"
