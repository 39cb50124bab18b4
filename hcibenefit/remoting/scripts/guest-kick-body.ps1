# hcibenefit-script: guest-kick-body/1
# Runs INSIDE a guest VM: starts the LicenseImdsIntegration task (fclip.exe fetches the attested
# document, then slui activates), waits for it to finish, reads the activation state, and runs it
# once more while Windows is still not activated (the seed article saw activation take two runs).
# Mutating. A disabled task is left alone unless -EnableTask: turning on a task someone disabled on
# purpose (VDI "debloat" scripts do) is the user's decision. Windows PowerShell 5.1.
[CmdletBinding()]
param(
    [bool]$EnableTask = $false,
    [int]$MaxRuns = 2,
    [int]$WaitSec = 120,
    [int]$SettleSec = 15
)

$ErrorActionPreference = 'Stop'
$WindowsApplicationId = '55c92734-d682-4d71-983e-d6ec3f16059f'
$TaskPath = '\Microsoft\Windows\Clip\'
$TaskName = 'LicenseImdsIntegration'
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

function Get-LicenseStatus {
    # 1 when any Windows product with a key is Licensed, else the first one's status; $null if unknown.
    try {
        $filter = "ApplicationID='" + $WindowsApplicationId + "' AND PartialProductKey IS NOT NULL"
        $products = @(Get-CimInstance SoftwareLicensingProduct -Filter $filter)
        if ($products.Count -eq 0) { return $null }
        foreach ($product in $products) {
            if ([int]$product.LicenseStatus -eq 1) { return 1 }
        }
        return [int]$products[0].LicenseStatus
    }
    catch {
        Add-Problem 'license' $_
        return $null
    }
}

$runs = New-Object System.Collections.ArrayList
$outcome = [ordered]@{
    schema            = 'guest-kick-body/1'
    computer_name     = $env:COMPUTERNAME
    task_present      = $false
    task_state_before = $null
    enabled_task      = $false
    license_before    = $null
    license_after     = $null
    runs              = @()
    error             = $null
    problems          = @()
}
$outcome.license_before = Get-LicenseStatus
$status = $outcome.license_before
try {
    $scheduled = Get-ScheduledTask -TaskPath $TaskPath -TaskName $TaskName
    $outcome.task_present = $true
    $outcome.task_state_before = [string]$scheduled.State
    if ([string]$scheduled.State -eq 'Disabled') {
        if (-not $EnableTask) {
            throw 'The LicenseImdsIntegration task is disabled; it was not started.'
        }
        Enable-ScheduledTask -TaskPath $TaskPath -TaskName $TaskName | Out-Null
        $outcome.enabled_task = $true
    }
    for ($run = 1; $run -le $MaxRuns; $run++) {
        if ($status -eq 1) { break }
        $before = Get-ScheduledTaskInfo -TaskPath $TaskPath -TaskName $TaskName
        $startedAt = (Get-Date).ToUniversalTime().ToString('o')
        Start-ScheduledTask -TaskPath $TaskPath -TaskName $TaskName
        $watch = [System.Diagnostics.Stopwatch]::StartNew()
        $finished = $false
        do {
            Start-Sleep -Seconds 1
            $now = Get-ScheduledTask -TaskPath $TaskPath -TaskName $TaskName
            $info = Get-ScheduledTaskInfo -TaskPath $TaskPath -TaskName $TaskName
            # Finished: a new LastRunTime and no longer running.
            if ([string]$now.State -ne 'Running' -and $info.LastRunTime -ne $before.LastRunTime) { $finished = $true }
        } while (-not $finished -and $watch.Elapsed.TotalMilliseconds -lt ($WaitSec * 1000))
        # slui activates after fclip has fetched the document, so the status may change a moment later.
        $status = Get-LicenseStatus
        $settle = [System.Diagnostics.Stopwatch]::StartNew()
        while ($finished -and $status -ne 1 -and $settle.Elapsed.TotalMilliseconds -lt ($SettleSec * 1000)) {
            Start-Sleep -Seconds 1
            $status = Get-LicenseStatus
        }
        [void]$runs.Add([ordered]@{
                run              = $run
                started_at       = $startedAt
                finished         = $finished
                state_after      = [string]$now.State
                last_run_time    = ConvertTo-IsoDate $info.LastRunTime
                last_task_result = [int64]$info.LastTaskResult
                license_status   = $status
            })
    }
}
catch {
    $outcome.error = [ordered]@{
        message  = [string]$_.Exception.Message
        error_id = [string]$_.FullyQualifiedErrorId
        category = [string]$_.CategoryInfo.Category
    }
}
$outcome.license_after = $status
$outcome.runs = $runs.ToArray()
$outcome.problems = $Problems.ToArray()

ConvertTo-Json -InputObject $outcome -Depth 5 -Compress
