"""The Azure side: what Azure Resource Manager and Resource Graph believe about the fleet.

``query`` holds the one Resource Graph query, ``parse`` the one parser (live pages and saved
``az graph query`` output alike) into the frozen records of ``records``; ``join`` maps Azure's
resources onto the inventory's clusters and the hosts' VMs. None of these import an Azure SDK.
``credentials``, ``graph`` and ``arm`` talk to Azure and import azure-identity and the mgmt SDKs
inside their functions only, so ``hcibenefit --help`` stays fast.
"""
