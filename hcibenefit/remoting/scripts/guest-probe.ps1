# hcibenefit-script: guest-probe/3
# Runs on the node that owns the VMs: one PowerShell Direct fan-out over every VM named by id, carrying
# the guest probe body (hcibenefit's own guest-probe-body.ps1, passed as text because it must run inside
# the guests, not here). Read-only. One call per node however many VMs it owns.
# VMs are found with Get-VM -Id first and only the running ones are handed to Invoke-Command -VMId:
# names would be wildcard patterns, and PowerShell Direct reports a VM that is not running or not
# found with no TargetObject and no origin, so its error could not be told apart from another VM's.
# Those VMs are reported here ("skipped"), with their id. Per VM the result is either the body's JSON
# text (results[]) or the error (failures[]): one VM never stops the others.
# This node's clock before and after the fan-out lets the caller judge each guest's clock against it.
[CmdletBinding()]
param(
    [Parameter(Mandatory)]
    [string[]]$VMId,
    [Parameter(Mandatory)]
    [pscredential]$Credential,
    [Parameter(Mandatory)]
    [string]$ProbeScript,
    [string]$Nonce = '',
    [int]$TimeoutSec = 5,
    [int]$ThrottleLimit = 32
)

$ErrorActionPreference = 'Stop'
$results = New-Object System.Collections.ArrayList
$failureRecords = New-Object System.Collections.ArrayList
$targets = New-Object System.Collections.ArrayList
$idByName = @{}
$failures = @()

function Add-Failure {
    param($VMId, $VMName, [string]$Message, [string]$ErrorId, [string]$Category, [bool]$Skipped)
    [void]$failureRecords.Add([ordered]@{
            vm_id    = $VMId
            vm       = $VMName
            skipped  = $Skipped
            message  = $Message
            error_id = $ErrorId
            category = $Category
        })
}

foreach ($id in $VMId) {
    try {
        $vm = Get-VM -Id $id
    }
    catch {
        Add-Failure $id $null ([string]$_.Exception.Message) ([string]$_.FullyQualifiedErrorId) ([string]$_.CategoryInfo.Category) $true
        continue
    }
    if ([string]$vm.State -ne 'Running') {
        Add-Failure $id ([string]$vm.Name) ('The virtual machine is ' + [string]$vm.State + ', not Running.') 'VMNotRunning' 'InvalidOperation' $true
        continue
    }
    [void]$targets.Add($vm.Id)
    $idByName[[string]$vm.Name] = ([string]$vm.Id).ToLowerInvariant()
}

$answers = @()
$nodeStartedAt = (Get-Date).ToUniversalTime().ToString('o')
if ($targets.Count -gt 0) {
    $answers = @(Invoke-Command -VMId $targets.ToArray() -Credential $Credential -ScriptBlock ([scriptblock]::Create($ProbeScript)) -ArgumentList $Nonce, $TimeoutSec -ThrottleLimit $ThrottleLimit -ErrorAction SilentlyContinue -ErrorVariable failures)
}
$nodeFinishedAt = (Get-Date).ToUniversalTime().ToString('o')

foreach ($answer in $answers) {
    # Remote output carries the VM it came from as PSComputerName: the VM's name as Get-VM returns it.
    $name = [string]$answer.PSComputerName
    [void]$results.Add([ordered]@{ vm_id = $idByName[$name]; vm = $name; output = [string]$answer })
}

foreach ($failure in @($failures)) {
    $vm = $null
    $target = $failure.TargetObject
    if ($null -ne $failure.OriginInfo -and $failure.OriginInfo.PSComputerName) {
        $vm = [string]$failure.OriginInfo.PSComputerName
    }
    elseif ($null -ne $target -and $target.PSObject.Properties['Name']) {
        $vm = [string]$target.Name
    }
    elseif ($null -ne $target) {
        $vm = [string]$target
    }
    $vmId = $null
    if ($null -ne $vm) { $vmId = $idByName[$vm] }
    Add-Failure $vmId $vm ([string]$failure.Exception.Message) ([string]$failure.FullyQualifiedErrorId) ([string]$failure.CategoryInfo.Category) $false
}

ConvertTo-Json -InputObject ([ordered]@{
        schema        = 'guest-probe/3'
        computer_name = $env:COMPUTERNAME
        node_started_at = $nodeStartedAt
        node_finished_at = $nodeFinishedAt
        results       = $results.ToArray()
        failures      = $failureRecords.ToArray()
    }) -Depth 4 -Compress
