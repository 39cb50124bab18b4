# hcibenefit-script: host-attestation-enable/1
# Turns on IMDS attestation on THIS node (a new node, or one left Inactive). Mutating.
# Enable-AzStackHCIAttestation without -ComputerName acts on the local node: no second hop.
# -Force skips the 23H2 "only required for legacy OS support" prompt and installs the Hyper-V RSAT
# tools if needed, as Windows Admin Center does.
param()

$ErrorActionPreference = 'Stop'
$outcome = [ordered]@{ schema = 'host-attestation-enable/1'; computer_name = $env:COMPUTERNAME; ok = $true; error = $null; status = $null }
try {
    Enable-AzStackHCIAttestation -Force -Confirm:$false | Out-Null
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
