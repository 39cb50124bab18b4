# hcibenefit-script: vm-benefits-enable/2
# Turns on Azure Benefits for VMs owned by THIS node. Mutating: the caller never retries it.
#   -NicVMId: V1, the guest NIC on the IMDS switch with Az.StackHCI's guest template (see below).
#   -ReconnectVMId: V1 VMs that have the guest NIC but not connected (moved from a node without the
#                   switch, or left half-configured by a failed Add-AzStackHCIVMAttestation): the same
#                   template is applied to the NIC they have.
#   -GsiVMId: V2 (23H2+), the Guest Service Interface integration service.
# VMs are passed by id and found with Get-VM -Id: Hyper-V's -Name/-VMName take wildcard patterns, so a
# VM named "avd-[ab]" or "*" passed by name could select other VMs.
# The guest NIC is configured with the Hyper-V cmdlets, as Az.StackHCI's Add-VMDevicesForImds does,
# rather than through Add-AzStackHCIVMAttestation: the module opens a PSSession back to this node (a
# second hop that fails from an ordinary WinRM session), prompts on 22H2 builds, throws on 23H2+ with
# legacy OS support off, and its failure cleanup cannot remove the NIC it added. A NIC this script
# could not finish is removed when it added it, and reported as left over when it could not be.
# Each VM is handled on its own so one failure does not hide the others; the result lists every VM.
[CmdletBinding()]
param(
    [string[]]$NicVMId = @(),
    [string[]]$ReconnectVMId = @(),
    [string[]]$GsiVMId = @()
)

$ErrorActionPreference = 'Stop'
$SwitchName = 'AZSHCI_HOST-IMDS_DO_NOT_MODIFY'
$GuestNicName = 'AZSHCI_GUEST-IMDS_DO_NOT_MODIFY'
$results = New-Object System.Collections.ArrayList

function Add-Result {
    param([string]$VMId, $VM, [string]$Action, $ErrorRecord, [bool]$Leftover)
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
    [void]$results.Add([ordered]@{
            vm_id        = $VMId
            vm           = $name
            action       = $Action
            ok           = ($null -eq $failure)
            leftover_nic = $Leftover
            error        = $failure
        })
}

function Set-GuestNic {
    # Az.StackHCI's guest template ($TemplateVmImdsParams): no MAC spoofing, DHCP and router guards,
    # not monitored by the cluster, on the IMDS switch, in isolated private VLAN 10/200.
    param($Nic)
    Set-VMNetworkAdapter -VMNetworkAdapter $Nic -MacAddressSpoofing Off -DhcpGuard On -RouterGuard On -NotMonitoredInCluster $true
    Connect-VMNetworkAdapter -VMNetworkAdapter $Nic -SwitchName $SwitchName
    Set-VMNetworkAdapterVlan -VMNetworkAdapter $Nic -Isolated -PrimaryVlanId 10 -SecondaryVlanId 200
}

function Test-Leftover {
    # A guest NIC that is not on the IMDS switch after a failure: debris to report.
    param($VM)
    if ($null -eq $VM) { return $false }
    $loose = @(Get-VMNetworkAdapter -VM $VM -Name $GuestNicName -ErrorAction SilentlyContinue |
            Where-Object { -not $_.Connected -or [string]$_.SwitchName -ne $SwitchName })
    return ($loose.Count -gt 0)
}

foreach ($id in $NicVMId) {
    $vm = $null
    try {
        $vm = Get-VM -Id $id
        $nic = Get-VMNetworkAdapter -VM $vm -Name $GuestNicName -ErrorAction SilentlyContinue | Select-Object -First 1
        $added = $false
        if ($null -eq $nic) {
            $nic = Add-VMNetworkAdapter -VM $vm -Name $GuestNicName -Passthru
            $added = $true
        }
        try { Set-GuestNic $nic }
        catch {
            if ($added) { Remove-VMNetworkAdapter -VMNetworkAdapter $nic -ErrorAction SilentlyContinue }
            throw
        }
        Add-Result $id $vm 'add-guest-nic' $null $false
    }
    catch { Add-Result $id $vm 'add-guest-nic' $_ (Test-Leftover $vm) }
}

foreach ($id in $ReconnectVMId) {
    $vm = $null
    try {
        $vm = Get-VM -Id $id
        $nic = Get-VMNetworkAdapter -VM $vm -Name $GuestNicName | Select-Object -First 1
        if ($null -eq $nic) { throw "The virtual machine has no $GuestNicName network adapter to connect." }
        Set-GuestNic $nic
        Add-Result $id $vm 'connect-guest-nic' $null $false
    }
    catch { Add-Result $id $vm 'connect-guest-nic' $_ (Test-Leftover $vm) }
}

foreach ($id in $GsiVMId) {
    $vm = $null
    try {
        $vm = Get-VM -Id $id
        Enable-VMIntegrationService -VM $vm -Name 'Guest Service Interface'
        Add-Result $id $vm 'enable-guest-service-interface' $null $false
    }
    catch { Add-Result $id $vm 'enable-guest-service-interface' $_ $false }
}

ConvertTo-Json -InputObject ([ordered]@{ schema = 'vm-benefits-enable/2'; computer_name = $env:COMPUTERNAME; results = $results.ToArray() }) -Depth 5 -Compress
