"""Invoke-RestMethod in Windows PowerShell 5.1, inside a guest, against the IMDS addresses.

Sources: powershell51.md section 9 and cmdlets.md 7.1: HttpWebRequest underneath;
every failure (HTTP 4xx/5xx, timeout, refused connection) is the statement-terminating
`WebCmdletWebResponseException,Microsoft.PowerShell.Commands.InvokeRestMethodCommand`, category
InvalidOperation, Exception a System.Net.WebException whose Response is the HttpWebResponse (or $null
when nothing came back) and Status says why; a JSON body becomes PSCustomObjects; without -Proxy the
request uses the machine-wide proxy unless the script set [System.Net.WebRequest]::DefaultWebProxy to
$null. -TimeoutSec 0 means the .NET default of 100 seconds.

What the host's IMDS answers (Assumptions; platform.md section 8 and IMDSDOC for Azure's IMDS):
only GET /metadata/attested/document with an api-version and the `Metadata: true` header answers 200;
a missing header is 400, another path 404; 169.254.169.254 does not exist on HCI and times out.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

from hcibenefit.lab.machines import GuestMachine
from hcibenefit.lab.powershell import convert as cv
from hcibenefit.lab.powershell.cmdlets.base import Call, P, cmdlet
from hcibenefit.lab.powershell.errors import PSError, exception
from hcibenefit.lab.powershell.values import EnumType, PSObject
from hcibenefit.lab.state import HOST_IMDS_ADDRESS

COMMAND = "Microsoft.PowerShell.Commands.InvokeRestMethodCommand"
HTTP_STATUS = EnumType(
    "System.Net.HttpStatusCode",
    {
        "OK": 200,
        "BadRequest": 400,
        "NotFound": 404,
        "TooManyRequests": 429,
        "InternalServerError": 500,
        "ServiceUnavailable": 503,
    },
)
WEB_STATUS = EnumType(
    "System.Net.WebExceptionStatus", {"Success": 0, "ConnectFailure": 2, "ProtocolError": 7, "Timeout": 14}
)
REASONS = {
    400: "Bad Request",
    404: "Not Found",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Server Unavailable",
}
DEFAULT_TIMEOUT_S = 100


def from_json(text: str) -> Any:
    """ConvertFrom-Json in 5.1 (JavaScriptSerializer): objects become PSCustomObjects in document order."""

    def convert(value: Any) -> Any:
        if isinstance(value, dict):
            return PSObject(props=[(k, convert(v)) for k, v in value.items()])
        if isinstance(value, list):
            return [convert(v) for v in value]
        return value

    return convert(json.loads(text))


def _web_error(
    call: Call, message: str, status: str, response: PSObject | None, details: str | None = None
) -> PSError:
    record = call.record(
        message,
        "WebCmdletWebResponseException",
        "InvalidOperation",
        exception_object=exception(
            "System.Net.WebException", message, Response=response, Status=WEB_STATUS(status)
        ),
        target="System.Net.HttpWebRequest",
        details=details,
    )
    return PSError(record)


def _http_error(call: Call, code: int, body: str) -> PSError:
    reason = REASONS.get(code, "Error")
    response = PSObject(
        "System.Net.HttpWebResponse",
        {
            "StatusCode": HTTP_STATUS.from_value(code),
            "StatusDescription": reason,
            "ContentType": "application/json; charset=utf-8",
        },
        string="System.Net.HttpWebResponse",
    )
    return _web_error(
        call,
        f"The remote server returned an error: ({code}) {reason}.",
        "ProtocolError",
        response,
        body or None,
    )


@cmdlet(
    "Invoke-RestMethod",
    module="Microsoft.PowerShell.Utility",
    source="https://learn.microsoft.com/powershell/module/microsoft.powershell.utility/invoke-restmethod?view=powershell-5.1",
    type_name=COMMAND,
    params=[
        P("Uri", "string", 0, mandatory=("*",)),
        P(
            "Method",
            "string",
            choices=("Default", "Get", "Head", "Post", "Put", "Delete", "Trace", "Options", "Merge", "Patch"),
        ),
        P("Headers", "dictionary"),
        P("TimeoutSec", "int"),
        P("UseBasicParsing", "switch"),
        P("Proxy", "string"),
    ],
)
def invoke_rest_method(call: Call) -> None:
    machine = call.machine
    if not isinstance(machine, GuestMachine):
        from hcibenefit.lab.powershell.errors import NotEmulated

        raise NotEmulated("Invoke-RestMethod on a node")
    uri = urlsplit(call.params["Uri"])
    timeout = call.params["TimeoutSec"] or DEFAULT_TIMEOUT_S
    clock = machine.clock
    vm, state = machine.vm, machine.state
    headers = call.params["Headers"]
    metadata = headers is not None and any(
        cv.to_string(k).casefold() == "metadata" and cv.to_string(v).casefold() == "true"
        for k, v in headers.items()
    )
    if (call.params["Method"] or "Get") not in ("Get", "Default"):
        raise _http_error(call, 405, "")
    with state.lock:
        through_proxy = (
            vm.guest.system_proxy
            and call.runspace.default_web_proxy is not None
            and call.params["Proxy"] is None
        )
        if through_proxy or uri.hostname != HOST_IMDS_ADDRESS:
            # Nothing answers 169.254.169.254 on HCI, and a proxy cannot reach a link-local address: the
            # request goes nowhere until it times out.
            clock.sleep(timeout)
            raise _web_error(call, "The operation has timed out.", "Timeout", None)
        if vm.guest.imds == "unreachable" and state.v1_path_works(vm):
            clock.sleep(timeout)  # blocked inside the guest (a firewall, a filter driver)
            raise _web_error(call, "The operation has timed out.", "Timeout", None)
        if not state.guest_reaches_imds(vm, HOST_IMDS_ADDRESS):
            # No NIC on the IMDS switch, a broken host side, or a node whose HciSvc does not serve:
            # Assumption: refused at once rather than timing out.
            clock.sleep(0.001)
            raise _web_error(call, "Unable to connect to the remote server", "ConnectFailure", None)
        clock.sleep((2 + int(vm.id[:2], 16) % 10) / 1000)
        query = parse_qs(uri.query)
        if uri.path.rstrip("/") != "/metadata/attested/document":
            raise _http_error(call, 404, "")
        if not metadata:
            raise _http_error(call, 400, '{"error":"Bad request. Required metadata header not specified"}')
        if "api-version" not in query:
            raise _http_error(
                call, 400, '{"error":"Bad request. api-version was not specified in the request"}'
            )
        if vm.guest.imds_status != 200:
            raise _http_error(call, vm.guest.imds_status, '{"error":"Internal error"}')
        secrets = machine.secrets
        signing = getattr(secrets, "signing", None)
        if signing is None:
            raise RuntimeError("the lab engine has no signing chain (Lab.start sets it)")
        nonce = query.get("nonce", [None])[0]
        document = signing.make_document(
            vm_id=vm.id,
            subscription_id=state.subscription_id,
            nonce=nonce,
            fault=vm.guest.document,
            shape="hci",
        )  # signed on real time: the node's clock, which the lab's script clock does not move
    body = json.dumps(document, separators=(",", ":"))
    # 5.1's web cmdlets report reading the response as progress (Assumption: one record).
    call.progress("Reading web response", f"Reading response stream... (Number of bytes read: {len(body)})")
    call.emit(from_json(body))


__all__ = ["from_json"]
