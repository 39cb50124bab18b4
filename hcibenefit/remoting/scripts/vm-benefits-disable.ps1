# hcibenefit-script: vm-benefits-disable/2
# Turns off Azure Benefits for VMs owned by THIS node. Mutating: the caller never retries it.
#   -NicVMId: removes the V1 guest NIC(s) named AZSHCI_GUEST-IMDS_DO_NOT_MODIFY, half-configured ones too.
#   -GsiVMId: turns off the Guest Service Interface (V2, 23H2+). Note: this also stops Copy-VMFile.
# VMs are passed by id (Get-VM -Id): names would be wildcard patterns. The Hyper-V cmdlets are used
# directly: Remove-AzStackHCIVMAttestation opens a PSSession back to this node (a second hop), prompts
# on 22H2 builds and fails on a VM that has no guest NIC, which is "already done" here.
[CmdletBinding()]
param(
    [string[]]$NicVMId = @(),
    [string[]]$GsiVMId = @()
)

$ErrorActionPreference = 'Stop'
$GuestNicName = 'AZSHCI_GUEST-IMDS_DO_NOT_MODIFY'
$results = New-Object System.Collections.ArrayList

function Add-Result {
    param([string]$VMId, $VM, [string]$Action, $ErrorRecord)
    $failure = $null
    if ($null -ne $ErrorRecord) {
        $failure = [ordered]@{
            message  = [string]$ErrorRecord.Exception.Message
            error_id = [string]$ErrorRecord.FullyQualifiedErrorId
            category = [string]$ErrorRecord.CategoryInfo.Category
        }
    }
    $name = $null
    if ($null -ne $VM) { $name = [string]$VM.Name }
    [void]$results.Add([ordered]@{ vm_id = $VMId; vm = $name; action = $Action; ok = ($null -eq $failure); error = $failure })
}

foreach ($id in $NicVMId) {
    $vm = $null
    try {
        $vm = Get-VM -Id $id
        $nics = @(Get-VMNetworkAdapter -VM $vm -Name $GuestNicName -ErrorAction SilentlyContinue)
        if ($nics.Count -gt 0) { Remove-VMNetworkAdapter -VMNetworkAdapter $nics }
        Add-Result $id $vm 'remove-guest-nic' $null
    }
    catch { Add-Result $id $vm 'remove-guest-nic' $_ }
}

foreach ($id in $GsiVMId) {
    $vm = $null
    try {
        $vm = Get-VM -Id $id
        Disable-VMIntegrationService -VM $vm -Name 'Guest Service Interface'
        Add-Result $id $vm 'disable-guest-service-interface' $null
    }
    catch { Add-Result $id $vm 'disable-guest-service-interface' $_ }
}

ConvertTo-Json -InputObject ([ordered]@{ schema = 'vm-benefits-disable/2'; computer_name = $env:COMPUTERNAME; results = $results.ToArray() }) -Depth 5 -Compress
