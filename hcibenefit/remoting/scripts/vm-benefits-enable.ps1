# hcibenefit-script: vm-benefits-enable/1
# Turns on Azure Benefits for VMs owned by THIS node. Mutating: the caller never retries it.
#   -NicVMName: V1, the guest NIC on the IMDS switch, added the way Windows Admin Center does it.
#   -ReconnectVMName: V1 VMs that have the guest NIC but not connected (moved from a node without the
#                     switch); the NIC is connected back to the IMDS switch.
#   -GsiVMName: V2 (23H2+), the Guest Service Interface integration service.
# Each VM is handled on its own so one failure does not hide the others; the result lists every VM.
param(
    [string[]]$NicVMName = @(),
    [string[]]$ReconnectVMName = @(),
    [string[]]$GsiVMName = @()
)

$ErrorActionPreference = 'Stop'
$results = New-Object System.Collections.ArrayList

function Add-Result {
    param([string]$VMName, [string]$Action, $ErrorRecord)
    $failure = $null
    if ($null -ne $ErrorRecord) {
        $failure = [ordered]@{
            message  = [string]$ErrorRecord.Exception.Message
            error_id = [string]$ErrorRecord.FullyQualifiedErrorId
            category = [string]$ErrorRecord.CategoryInfo.Category
        }
    }
    [void]$results.Add([ordered]@{ vm = $VMName; action = $Action; ok = ($null -eq $failure); error = $failure })
}

foreach ($name in $NicVMName) {
    try {
        Add-AzStackHCIVMAttestation -VMName $name -Force -Confirm:$false | Out-Null
        Add-Result $name 'add-guest-nic' $null
    }
    catch { Add-Result $name 'add-guest-nic' $_ }
}

foreach ($name in $ReconnectVMName) {
    try {
        Connect-VMNetworkAdapter -VMName $name -Name 'AZSHCI_GUEST-IMDS_DO_NOT_MODIFY' -SwitchName 'AZSHCI_HOST-IMDS_DO_NOT_MODIFY'
        Add-Result $name 'connect-guest-nic' $null
    }
    catch { Add-Result $name 'connect-guest-nic' $_ }
}

foreach ($name in $GsiVMName) {
    try {
        Enable-VMIntegrationService -VMName $name -Name 'Guest Service Interface'
        Add-Result $name 'enable-guest-service-interface' $null
    }
    catch { Add-Result $name 'enable-guest-service-interface' $_ }
}

ConvertTo-Json -InputObject ([ordered]@{ schema = 'vm-benefits-enable/1'; computer_name = $env:COMPUTERNAME; results = $results.ToArray() }) -Depth 5 -Compress
