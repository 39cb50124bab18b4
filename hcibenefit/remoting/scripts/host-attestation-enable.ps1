# hcibenefit-script: host-attestation-enable/2
# Turns on IMDS attestation for the WHOLE CLUSTER this node belongs to. Mutating.
# Enable-AzStackHCIAttestation configures every cluster node, not only this one: it opens a PSSession
# back to this node, runs Get-ClusterNode, then Invoke-Command -ComputerName for every other node, and
# ends with Sync-AzureStackHCI. From a WinRM session those are second hops: they work only when the
# session's credentials can be delegated (CredSSP, or Kerberos with delegation), which the caller checks
# in the inventory before sending this. -Force skips the "only required for legacy OS support" question
# and installs the Hyper-V RSAT tools if needed, as Windows Admin Center does; -Confirm:$false and
# $ConfirmPreference = 'None' keep the 22H2 end-of-support confirmation from prompting, which a session
# without a host cannot answer.
[CmdletBinding()]
param()

$ErrorActionPreference = 'Stop'
$ConfirmPreference = 'None'
$outcome = [ordered]@{
    schema        = 'host-attestation-enable/2'
    computer_name = $env:COMPUTERNAME
    ok            = $true
    error         = $null
    nodes         = @()
    status        = $null
}

function ConvertTo-ErrorRecord {
    param($ErrorRecord)
    return [ordered]@{
        message  = [string]$ErrorRecord.Exception.Message
        error_id = [string]$ErrorRecord.FullyQualifiedErrorId
        category = [string]$ErrorRecord.CategoryInfo.Category
    }
}

function ConvertTo-IsoDate {
    param($Value)
    if ($Value -is [datetime]) { return $Value.ToUniversalTime().ToString('o') }
    return $null
}

try {
    # One object per node; none at all when any node failed (the module's End block does not run).
    $outcome.nodes = @(Enable-AzStackHCIAttestation -Force -Confirm:$false | ForEach-Object {
            [ordered]@{
                computer_name     = [string]$_.ComputerName
                status            = [string]$_.Status
                expiration        = ConvertTo-IsoDate $_.Expiration
                legacy_os_support = [string]$_.LegacyOsSupport
            }
        })
}
catch {
    $outcome.ok = $false
    $outcome.error = ConvertTo-ErrorRecord $_
}
try {
    $attestation = Get-AzureStackHCIAttestation
    $outcome.status = [ordered]@{
        status     = [string]$attestation.Status
        expiration = ConvertTo-IsoDate $attestation.Expiration
        switch_id  = [string]$attestation.AttestationSwitchId
    }
}
catch {
    if ($outcome.ok) { $outcome.ok = $false; $outcome.error = ConvertTo-ErrorRecord $_ }
}
ConvertTo-Json -InputObject $outcome -Depth 5 -Compress
