# hcibenefit-script: vm-benefits-disable/1
# Turns off Azure Benefits for VMs owned by THIS node. Mutating: the caller never retries it.
#   -NicVMName: removes the V1 guest NIC (Remove-AzStackHCIVMAttestation).
#   -GsiVMName: turns off the Guest Service Interface (V2, 23H2+). Note: this also stops Copy-VMFile.
param(
    [string[]]$NicVMName = @(),
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
        Remove-AzStackHCIVMAttestation -VMName $name -Force -Confirm:$false | Out-Null
        Add-Result $name 'remove-guest-nic' $null
    }
    catch { Add-Result $name 'remove-guest-nic' $_ }
}

foreach ($name in $GsiVMName) {
    try {
        Disable-VMIntegrationService -VMName $name -Name 'Guest Service Interface'
        Add-Result $name 'disable-guest-service-interface' $null
    }
    catch { Add-Result $name 'disable-guest-service-interface' $_ }
}

ConvertTo-Json -InputObject ([ordered]@{ schema = 'vm-benefits-disable/1'; computer_name = $env:COMPUTERNAME; results = $results.ToArray() }) -Depth 5 -Compress
