# hcibenefit-script: guest-probe/1
# Runs on the node that owns the VMs: one PowerShell Direct fan-out over every named VM, carrying the
# guest probe body (hcibenefit's own guest-probe-body.ps1, passed as text because it must run inside
# the guests, not here). Read-only. One call per node however many VMs it owns.
# Per VM the result is either the body's JSON text (results[]) or the error PowerShell Direct gave
# (failures[]): a VM that is not running, refuses the credential or has no PowerShell for us never
# stops the others.
param(
    [Parameter(Mandatory)]
    [string[]]$VMName,
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
$failures = @()

$answers = @(Invoke-Command -VMName $VMName -Credential $Credential -ScriptBlock ([scriptblock]::Create($ProbeScript)) -ArgumentList $Nonce, $TimeoutSec -ThrottleLimit $ThrottleLimit -ErrorAction SilentlyContinue -ErrorVariable failures)

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
        schema        = 'guest-probe/1'
        computer_name = $env:COMPUTERNAME
        results       = $results.ToArray()
        failures      = $failureRecords.ToArray()
    }) -Depth 4 -Compress
