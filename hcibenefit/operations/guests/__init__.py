"""`hcibenefit guest check|kick`: ask the guests themselves whether Windows activated through Azure Benefits.

Round trips: one host-facts call per node of the selected clusters (to find each VM's owner node and
state), then ONE guest-probe call per owner node carrying all its VMs (PowerShell Direct fans out on the
node), or one call per guest reached over WinRM. `guest check` runs the probe through the session its
host facts came through (the session is held between the two passes): one shell and 9 requests per
owner node. VMs that are not running are never sent. A kick adds one guest-kick call per owner node and
one more guest-probe call per owner node to re-check.

Every guest probe carries a fresh nonce (10 digits from `secrets`); the document the guest fetched is
verified here, offline, with the inventory's attestation trust material. The guest password travels
only as a PSCredential parameter (SecureString) or as WinRM authentication; never in text.

Modules: `targets` (finding each VM's owner node and reaching it in batches), `check` (probe and verdict
per VM) and `kick` (run the activation task, then re-check).
"""
