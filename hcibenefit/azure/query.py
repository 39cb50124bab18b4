"""The one Resource Graph query: every resource reconciliation reads, one whole resource per row.

Rows are whole resources (the same columns for every type), so the parser that reads a live page
also reads the saved output of ``az graph query -q "<this query>" -o json``, and a row can be
compared with what ARM returns for the same id.

Paging rules (Resource Graph's "work with large data sets"): typed columns besides the dynamic
ones (an all-dynamic projection gets no skip token), a stable ``order by id``, no ``take``/``limit``
(they disable paging), and the same text on every page.

Which table holds what (Microsoft's Azure Local LENS workbook and the Resource Graph table
reference): clusters, Arc machines, custom locations and resource bridges are in ``resources``;
Azure Local VM instances only in ``extensibilityresources`` (``resources`` returns no rows for
them); AVD session hosts in ``desktopvirtualizationresources``. Arc machines: the cluster's nodes
carry ``cloudMetadata.provider == "AzSHCI"``, Azure Local VMs have ``kind == "HCI"``. Session hosts
are limited to those on an Arc machine, which is what an Azure Local session host is.

The documented limits allow ``union`` "within a single table or between Resources and
ResourceContainers", while Microsoft's own support queries union other tables; so the one query is
tried first and, if Resource Graph refuses it, the three parts run as separate queries (``PARTS``).
"""

from __future__ import annotations

QUERY_ID = "hcibenefit azure-inventory/1"
COLUMNS = (
    "id",
    "name",
    "type",
    "kind",
    "location",
    "subscriptionId",
    "resourceGroup",
    "tags",
    "properties",
    "extendedLocation",
)
_PROJECT = "| project " + ", ".join(COLUMNS)
_ORDER = "| order by id asc"

_RESOURCES = """resources
| where type in~ ('microsoft.azurestackhci/clusters', 'microsoft.extendedlocation/customlocations',
    'microsoft.resourceconnector/appliances')
    or (type =~ 'microsoft.hybridcompute/machines'
        and (kind =~ 'HCI' or tostring(properties.cloudMetadata.provider) =~ 'AzSHCI'))"""
_INSTANCES = """extensibilityresources
| where type =~ 'microsoft.azurestackhci/virtualmachineinstances'"""
_SESSION_HOSTS = """desktopvirtualizationresources
| where type =~ 'microsoft.desktopvirtualization/hostpools/sessionhosts'
    and tolower(tostring(properties.resourceId)) contains '/providers/microsoft.hybridcompute/machines/'"""


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines())


def _query(body: str, part: str | None = None) -> str:
    header = f"// {QUERY_ID}" + (f" part {part}" if part else "")
    return "\n".join([header, body, _PROJECT, _ORDER])


INVENTORY_QUERY = _query(
    "\n".join(
        [
            _RESOURCES,
            f"| union (\n{_indent(_INSTANCES)}\n)",
            f"| union (\n{_indent(_SESSION_HOSTS)}\n)",
        ]
    )
)
"""The query `hcibenefit arm query --print` prints and every live run sends."""

PARTS = (
    _query(_RESOURCES, "resources"),
    _query(_INSTANCES, "extensibilityresources"),
    _query(_SESSION_HOSTS, "desktopvirtualizationresources"),
)
"""The same rows as three queries, for when Resource Graph refuses the cross-table union."""
