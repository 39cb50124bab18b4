# hcibenefit-script: host-sync/1
# Syncs THIS node with Azure, which renews the certificate behind IMDS attestation (valid 30 days).
# Mutating in the sense that it changes node state; repeating it is harmless, but the caller still
# does not retry it blindly.
param()

$ErrorActionPreference = 'Stop'
$outcome = [ordered]@{ schema = 'host-sync/1'; computer_name = $env:COMPUTERNAME; ok = $true; error = $null; status = $null }
try {
    Sync-AzureStackHCI | Out-Null
}
catch {
    $outcome.ok = $false
    $outcome.error = [ordered]@{
        message  = [string]$_.Exception.Message
        error_id = [string]$_.FullyQualifiedErrorId
        category = [string]$_.CategoryInfo.Category
    }
}
$attestation = Get-AzureStackHCIAttestation
$outcome.status = [ordered]@{
    status     = [string]$attestation.Status
    expiration = $(if ($attestation.Expiration -is [datetime]) { $attestation.Expiration.ToUniversalTime().ToString('o') } else { $null })
    switch_id  = [string]$attestation.AttestationSwitchId
}
ConvertTo-Json -InputObject $outcome -Depth 5 -Compress
