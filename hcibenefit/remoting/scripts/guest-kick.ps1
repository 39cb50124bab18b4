# hcibenefit-script: guest-kick/1
# Runs on the node that owns the VMs: one PowerShell Direct fan-out that runs the kick body
# (hcibenefit's own guest-kick-body.ps1, passed as text because it must run inside the guests) in
# every named VM. Mutating: starts, and with -EnableTask enables, the guests' LicenseImdsIntegration
# task. One call per node however many VMs it owns; per VM the body's JSON text or the error
# PowerShell Direct gave.
param(
    [Parameter(Mandatory)]
    [string[]]$VMName,
    [Parameter(Mandatory)]
    [pscredential]$Credential,
    [Parameter(Mandatory)]
    [string]$KickScript,
    [bool]$EnableTask = $false,
    [int]$MaxRuns = 2,
    [int]$WaitSec = 120,
    [int]$ThrottleLimit = 32
)

$ErrorActionPreference = 'Stop'
$results = New-Object System.Collections.ArrayList
$failureRecords = New-Object System.Collections.ArrayList
$failures = @()

$answers = @(Invoke-Command -VMName $VMName -Credential $Credential -ScriptBlock ([scriptblock]::Create($KickScript)) -ArgumentList $EnableTask, $MaxRuns, $WaitSec -ThrottleLimit $ThrottleLimit -ErrorAction SilentlyContinue -ErrorVariable failures)

foreach ($answer in $answers) {
    # Remote output carries the VM it came from as PSComputerName (ASSUMPTION: the VM name, for -VMName).
    [void]$results.Add([ordered]@{ vm = [string]$answer.PSComputerName; output = [string]$answer })
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
    [void]$failureRecords.Add([ordered]@{
            vm       = $vm
            message  = [string]$failure.Exception.Message
            error_id = [string]$failure.FullyQualifiedErrorId
            category = [string]$failure.CategoryInfo.Category
        })
}

ConvertTo-Json -InputObject ([ordered]@{
        schema        = 'guest-kick/1'
        computer_name = $env:COMPUTERNAME
        results       = $results.ToArray()
        failures      = $failureRecords.ToArray()
    }) -Depth 4 -Compress
