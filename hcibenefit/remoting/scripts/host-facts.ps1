# hcibenefit-script: host-facts/3
# Everything this node knows about Azure Benefits, in one round trip, as one JSON document.
# Read-only. Runs in Windows PowerShell 5.1 on the node itself, from a WinRM session that usually
# cannot delegate credentials. So it reads Hyper-V and the in-box AzureStackHCI cmdlets only: every
# Az.StackHCI attestation function opens a PSSession back to this node first (a second hop that fails
# without CredSSP or Kerberos delegation) and, on 22H2 builds, asks for a confirmation that a session
# without a host cannot answer. What Get-AzStackHCIVMAttestation would list is derived in Python from
# the same facts (guest NIC, Guest Service Interface, node status).
[CmdletBinding()]
param(
    [bool]$IncludeGuestOs = $true
)

$ErrorActionPreference = 'Stop'
$SwitchName = 'AZSHCI_HOST-IMDS_DO_NOT_MODIFY'
$FirewallRuleNames = @(
    'AzsHci-ImdsAttestation-Allow-In',
    'AzsHci-ImdsAttestation-Block-TCP-In',
    'AzsHci-ImdsAttestation-Block-TCP-Out',
    'AzsHci-ImdsAttestation-Block-UDP-In',
    'AzsHci-ImdsAttestation-Block-UDP-Out'
)
$Problems = New-Object System.Collections.ArrayList

function Add-Problem {
    param([string]$Source, $ErrorRecord)
    [void]$Problems.Add([ordered]@{
            source   = $Source
            message  = [string]$ErrorRecord.Exception.Message
            error_id = [string]$ErrorRecord.FullyQualifiedErrorId
        })
}

function ConvertTo-IsoDate {
    param($Value)
    if ($Value -is [datetime] -and $Value -ne [datetime]::MinValue) {
        return $Value.ToUniversalTime().ToString('o')
    }
    return $null
}

function Get-OptionalProperty {
    param($InputObject, [string]$Name)
    if ($null -ne $InputObject -and $InputObject.PSObject.Properties[$Name]) {
        return $InputObject.$Name
    }
    return $null
}

function ConvertTo-SwitchRecord {
    param($Switch)
    if ($null -eq $Switch) { return $null }
    return [ordered]@{
        name        = [string]$Switch.Name
        id          = [string]$Switch.Id
        switch_type = [string]$Switch.SwitchType
        notes       = [string]$Switch.Notes
    }
}

$facts = [ordered]@{
    schema        = 'host-facts/3'
    computer_name = $env:COMPUTERNAME
    collected_at  = (Get-Date).ToUniversalTime().ToString('o')
}

try {
    $os = Get-CimInstance -ClassName Win32_OperatingSystem
    $facts.os = [ordered]@{ caption = [string]$os.Caption; build = [string]$os.BuildNumber; version = [string]$os.Version }
}
catch { Add-Problem 'Win32_OperatingSystem' $_ }

# Reported, not used: the module is needed only to turn attestation on (host enable).
$module = Get-Module -ListAvailable -Name Az.StackHCI | Sort-Object -Property Version -Descending | Select-Object -First 1
$facts.module = $null
if ($module) { $facts.module = [ordered]@{ name = 'Az.StackHCI'; version = [string]$module.Version } }

$facts.registration = $null
try {
    $registration = Get-AzureStackHCI
    $facts.registration = [ordered]@{
        cluster_status      = [string]$registration.ClusterStatus
        registration_status = [string]$registration.RegistrationStatus
        connection_status   = [string]$registration.ConnectionStatus
        imds_attestation    = [string]$registration.IMDSAttestation
        last_connected      = ConvertTo-IsoDate $registration.LastConnected
        next_sync           = ConvertTo-IsoDate $registration.NextSync
        azure_resource_name = [string]$registration.AzureResourceName
        azure_resource_uri  = [string]$registration.AzureResourceUri
    }
}
catch { Add-Problem 'Get-AzureStackHCI' $_ }

$facts.attestation = $null
$attestationSwitchId = $null
try {
    $attestation = Get-AzureStackHCIAttestation
    $attestationSwitchId = [string]$attestation.AttestationSwitchId
    $legacy = Get-OptionalProperty $attestation 'LegacyOsSupport'
    $facts.attestation = [ordered]@{
        status            = [string]$attestation.Status
        expiration        = ConvertTo-IsoDate $attestation.Expiration
        switch_id         = $attestationSwitchId
        # Absent on 22H2 hosts; its presence is how Az.StackHCI itself tells V2-capable hosts apart.
        legacy_os_support = $(if ($null -eq $legacy) { $null } else { [string]$legacy })
    }
}
catch { Add-Problem 'Get-AzureStackHCIAttestation' $_ }

$facts.switch = ConvertTo-SwitchRecord (Get-VMSwitch -Name $SwitchName -ErrorAction SilentlyContinue | Select-Object -First 1)
$facts.attestation_switch = $null
if ($attestationSwitchId -and $attestationSwitchId -ne [guid]::Empty.ToString()) {
    # Found by id too, so a renamed switch is reported as renamed rather than as missing.
    $facts.attestation_switch = ConvertTo-SwitchRecord (Get-VMSwitch -Id $attestationSwitchId -ErrorAction SilentlyContinue)
}

$facts.host_vnic = $null
$hostAdapter = Get-VMNetworkAdapter -ManagementOS -SwitchName $SwitchName -ErrorAction SilentlyContinue | Select-Object -First 1
if ($hostAdapter) {
    # The vNIC's NetAdapter is found by MAC address, not by name: Az.StackHCI renames it to the switch
    # name, and where that rename failed it is still "vEthernet (<switch name>)".
    $mac = ([string]$hostAdapter.MacAddress) -replace '[^0-9A-Fa-f]', ''
    $netAdapter = Get-NetAdapter -ErrorAction SilentlyContinue |
        Where-Object { (([string]$_.MacAddress) -replace '[^0-9A-Fa-f]', '') -eq $mac } |
        Select-Object -First 1
    $alias = $null
    $description = $null
    $addresses = @()
    if ($netAdapter) {
        $alias = [string]$netAdapter.Name
        $description = [string]$netAdapter.InterfaceDescription
        $addresses = @(Get-NetIPAddress -InterfaceIndex $netAdapter.ifIndex -AddressFamily IPv4 -ErrorAction SilentlyContinue |
                ForEach-Object { [ordered]@{ address = [string]$_.IPAddress; prefix_length = [int]$_.PrefixLength } })
    }
    $facts.host_vnic = [ordered]@{ name = [string]$hostAdapter.Name; interface_alias = $alias; interface_description = $description; mac_address = $mac; addresses = $addresses }
}

$facts.firewall = @(Get-NetFirewallRule -Name $FirewallRuleNames -ErrorAction SilentlyContinue | ForEach-Object {
        [ordered]@{
            name      = [string]$_.Name
            enabled   = ([string]$_.Enabled -eq 'True')
            direction = [string]$_.Direction
            action    = [string]$_.Action
        }
    })

$facts.cluster = $null
try {
    $facts.cluster = [ordered]@{
        nodes = @(Get-ClusterNode | ForEach-Object { [ordered]@{ name = [string]$_.Name; state = [string]$_.State } })
    }
}
catch { Add-Problem 'Get-ClusterNode' $_ }

# The cluster's networks and this node's interfaces on them: the host IMDS adapter must not be one of them
# (after a 22H2 to 23H2 upgrade it can show up as a Partitioned cluster network). A node that is not
# clustered, or lacks the FailoverClusters module, records why and goes on.
$facts.cluster_networks = $null
try {
    $facts.cluster_networks = @(Get-ClusterNetwork | ForEach-Object {
            [ordered]@{
                name         = [string]$_.Name
                role         = [int]$_.Role
                state        = [string]$_.State
                address      = [string]$_.Address
                address_mask = [string]$_.AddressMask
            }
        })
}
catch { Add-Problem 'Get-ClusterNetwork' $_ }

$facts.cluster_interfaces = $null
try {
    # Adapter is the NetAdapter's InterfaceDescription; Network prints as the network's name.
    $facts.cluster_interfaces = @(Get-ClusterNetworkInterface -Node $env:COMPUTERNAME | ForEach-Object {
            [ordered]@{ name = [string]$_.Name; network = [string]$_.Network; adapter = [string]$_.Adapter; state = [string]$_.State }
        })
}
catch { Add-Problem 'Get-ClusterNetworkInterface' $_ }

# The VM roles the other nodes own, by name: a VM on a node that cannot be reached is still named.
$facts.cluster_groups = $null
try {
    $facts.cluster_groups = @(Get-ClusterGroup |
            Where-Object { [string]$_.GroupType -eq 'VirtualMachine' -and [string]$_.OwnerNode.Name -ne $env:COMPUTERNAME } |
            ForEach-Object { [ordered]@{ name = [string]$_.Name; owner_node = [string]$_.OwnerNode.Name; state = [string]$_.State } })
}
catch { Add-Problem 'Get-ClusterGroup' $_ }

$vms = @()
try { $vms = @(Get-VM) }
catch { Add-Problem 'Get-VM' $_ }

$adaptersByVm = @{}
$servicesByVm = @{}
if ($vms.Count -gt 0) {
    # One call each for all VMs on the node: per-VM calls cost seconds on a busy host.
    foreach ($adapter in @(Get-VMNetworkAdapter -VM $vms -ErrorAction SilentlyContinue)) {
        $key = [string]$adapter.VMId
        if (-not $adaptersByVm.ContainsKey($key)) { $adaptersByVm[$key] = New-Object System.Collections.ArrayList }
        [void]$adaptersByVm[$key].Add([ordered]@{
                name         = [string]$adapter.Name
                switch_name  = $(if ($adapter.SwitchName) { [string]$adapter.SwitchName } else { $null })
                connected    = [bool]$adapter.Connected
                mac_address  = [string]$adapter.MacAddress
                ip_addresses = @(foreach ($address in @($adapter.IPAddresses)) { [string]$address })
            })
    }
    foreach ($service in @(Get-VMIntegrationService -VM $vms -ErrorAction SilentlyContinue)) {
        $key = [string]$service.VMId
        if (-not $servicesByVm.ContainsKey($key)) { $servicesByVm[$key] = New-Object System.Collections.ArrayList }
        [void]$servicesByVm[$key].Add([ordered]@{
                name           = [string]$service.Name
                enabled        = [bool]$service.Enabled
                primary_status = [string]$service.PrimaryStatusDescription
            })
    }
}

$kvpByVm = @{}
if ($IncludeGuestOs -and $vms.Count -gt 0) {
    try {
        # Guest OS name and edition from Hyper-V data exchange: no guest credentials needed.
        foreach ($component in @(Get-CimInstance -Namespace 'root\virtualization\v2' -ClassName Msvm_KvpExchangeComponent)) {
            $items = [ordered]@{}
            foreach ($xmlText in @($component.GuestIntrinsicExchangeItems)) {
                # One loop over an item's properties, not a Where-Object pipeline per property wanted:
                # Windows PowerShell starts a pipeline for each, some 300 per node at 25 VMs.
                $name = $null
                $data = $null
                foreach ($property in @(([xml]$xmlText).INSTANCE.PROPERTY)) {
                    if ($property.NAME -eq 'Name') { $name = $property.VALUE }
                    elseif ($property.NAME -eq 'Data') { $data = $property.VALUE }
                }
                if ($name -in @('OSName', 'OSVersion', 'OSBuildNumber', 'OSEditionId', 'ProductType', 'FullyQualifiedDomainName')) {
                    $items[$name] = [string]$data
                }
            }
            $kvpByVm[([string]$component.SystemName).ToLowerInvariant()] = $items
        }
    }
    catch { Add-Problem 'Msvm_KvpExchangeComponent' $_ }
}

$vmRecords = New-Object System.Collections.ArrayList
foreach ($vm in $vms) {
    $id = ([string]$vm.Id).ToLowerInvariant()
    # Assigned before the literal: @() inside $( ) would be unrolled to $null by PowerShell.
    $nics = @()
    if ($adaptersByVm.ContainsKey($id)) { $nics = $adaptersByVm[$id].ToArray() }
    $services = @()
    if ($servicesByVm.ContainsKey($id)) { $services = $servicesByVm[$id].ToArray() }
    [void]$vmRecords.Add([ordered]@{
            id                   = $id
            name                 = [string]$vm.Name
            generation           = [int]$vm.Generation
            state                = [string]$vm.State
            is_clustered         = [bool]$vm.IsClustered
            network_adapters     = $nics
            integration_services = $services
            kvp                  = $kvpByVm[$id]
        })
}
$facts.vms = $vmRecords.ToArray()
$facts.problems = $Problems.ToArray()
ConvertTo-Json -InputObject $facts -Depth 8 -Compress
