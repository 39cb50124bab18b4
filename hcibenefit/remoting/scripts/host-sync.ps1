# hcibenefit-script: host-sync/1
# Syncs THIS node with Azure, which renews the certificate behind IMDS attestation (valid 30 days).
# Mutating in the sense that it changes node state; repeating it is harmless, but the caller still
# does not retry it blindly. Sync-AzureStackHCI is an in-box cmdlet: no second hop, no prompt.
[CmdletBinding()]
param()

$ErrorActionPreference = 'Stop'
$outcome = [ordered]@{ schema = 'host-sync/1'; computer_name = $env:COMPUTERNAME; ok = $true; error = $null; status = $null }

function ConvertTo-ErrorRecord {
    param($ErrorRecord)
    return [ordered]@{
        message  = [string]$ErrorRecord.Exception.Message
        error_id = [string]$ErrorRecord.FullyQualifiedErrorId
        category = [string]$ErrorRecord.CategoryInfo.Category
    }
}

try {
    Sync-AzureStackHCI | Out-Null
}
catch {
    $outcome.ok = $false
    $outcome.error = ConvertTo-ErrorRecord $_
}
try {
    $attestation = Get-AzureStackHCIAttestation
    $outcome.status = [ordered]@{
        status     = [string]$attestation.Status
        expiration = $(if ($attestation.Expiration -is [datetime]) { $attestation.Expiration.ToUniversalTime().ToString('o') } else { $null })
        switch_id  = [string]$attestation.AttestationSwitchId
    }
}
catch {
    # The status is then unknown; the caller re-reads the node to verify anyway.
    if ($outcome.ok) { $outcome.ok = $false; $outcome.error = ConvertTo-ErrorRecord $_ }
}
ConvertTo-Json -InputObject $outcome -Depth 5 -Compress
