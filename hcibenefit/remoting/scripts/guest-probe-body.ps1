# hcibenefit-script: guest-probe-body/2
# Runs INSIDE a guest VM: what the guest knows about its activation through Azure Benefits, as one
# JSON document. Read-only. The same text runs two ways: passed by guest-probe.ps1 to
# Invoke-Command -VMName (PowerShell Direct from the owner node), or sent straight to the guest over
# WinRM. Windows PowerShell 5.1. Each section records its own errors under "problems", so one missing
# piece (no event log, no task) never hides the others.
[CmdletBinding()]
param(
    [ValidatePattern('^[0-9]{0,32}$')]
    [string]$Nonce = '',
    [int]$TimeoutSec = 5
)

$ErrorActionPreference = 'Stop'
# 5.1's Invoke-RestMethod writes a progress record for every response it reads (about_Preference_Variables,
# $ProgressPreference). Through PowerShell Direct and WinRM each one is a message streamed to the client,
# which then needs a Receive per batch: a sweep's round trips would grow with the number of guests.
$ProgressPreference = 'SilentlyContinue'
# First, so that the caller can compare the guest's clock with its node's (Kerberos allows 5 minutes).
$StartedAt = (Get-Date).ToUniversalTime().ToString('o')
$WindowsApplicationId = '55c92734-d682-4d71-983e-d6ec3f16059f'
$TaskPath = '\Microsoft\Windows\Clip\'
$TaskName = 'LicenseImdsIntegration'
# The guest tries .254 first, then .253 (docs/platform.md §1); on HCI only .253 is expected to answer.
$ImdsAddresses = @('169.254.169.254', '169.254.169.253')
$ApiVersion = '2018-10-01'
$MaxEvents = 10
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

function Get-FirstLine {
    param($Text)
    if ($null -eq $Text) { return '' }
    return ([string]$Text).Split("`n")[0].Trim()
}

function Add-RecentEvents {
    param($List, [hashtable]$Filter, [string]$Source)
    try {
        foreach ($record in @(Get-WinEvent -FilterHashtable $Filter -MaxEvents $MaxEvents -ErrorAction Stop)) {
            [void]$List.Add([ordered]@{
                    id      = [int]$record.Id
                    time    = ConvertTo-IsoDate $record.TimeCreated
                    level   = [string]$record.LevelDisplayName
                    message = Get-FirstLine $record.Message
                })
        }
    }
    catch {
        # An empty log is an answer, not a problem.
        if ([string]$_.FullyQualifiedErrorId -notlike 'NoMatchingEventsFound*') { Add-Problem $Source $_ }
    }
}

$os = $null
try {
    $system = Get-CimInstance Win32_OperatingSystem
    $currentVersion = Get-ItemProperty 'HKLM:\SOFTWARE\Microsoft\Windows NT\CurrentVersion'
    $os = [ordered]@{
        caption         = [string]$system.Caption
        edition_id      = [string]$currentVersion.EditionID
        build           = [string]$system.BuildNumber
        version         = [string]$system.Version
        # The cumulative update level: build 22631 with UBR 3447 is 22631.3447.
        ubr             = $(if ($null -ne $currentVersion.UBR) { [int]$currentVersion.UBR } else { $null })
        display_version = [string]$currentVersion.DisplayVersion
    }
}
catch { Add-Problem 'os' $_ }

# The Azure Virtual Desktop agent keeps its registration here (IsRegistered 1 once a host pool took it).
$avdAgent = [ordered]@{ installed = $false; is_registered = $null }
try {
    $agent = Get-ItemProperty 'HKLM:\SOFTWARE\Microsoft\RDInfraAgent'
    $avdAgent.installed = $true
    if ($null -ne $agent.IsRegistered) { $avdAgent.is_registered = [int]$agent.IsRegistered }
}
catch {
    # No key: no agent, an answer rather than a problem.
    if ([string]$_.FullyQualifiedErrorId -notlike 'PathNotFound*') { Add-Problem 'avd_agent' $_ }
}

$time = [ordered]@{ w32time_type = $null }
try {
    $time.w32time_type = [string](Get-ItemProperty 'HKLM:\SYSTEM\CurrentControlSet\Services\W32Time\Parameters').Type
}
catch { Add-Problem 'time' $_ }

$licenses = New-Object System.Collections.ArrayList
try {
    $filter = "ApplicationID='" + $WindowsApplicationId + "' AND PartialProductKey IS NOT NULL"
    foreach ($product in @(Get-CimInstance SoftwareLicensingProduct -Filter $filter)) {
        [void]$licenses.Add([ordered]@{
                name                = [string]$product.Name
                description         = [string]$product.Description
                license_status      = [int]$product.LicenseStatus
                license_family      = [string]$product.LicenseFamily
                product_key_channel = [string]$product.ProductKeyChannel
                grace_minutes       = [int]$product.GracePeriodRemaining
            })
    }
}
catch { Add-Problem 'license' $_ }

$task = [ordered]@{
    present          = $false
    state            = $null
    execute          = @()
    last_run_time    = $null
    last_task_result = $null
    next_run_time    = $null
    missed_runs      = $null
}
try {
    $scheduled = Get-ScheduledTask -TaskPath $TaskPath -TaskName $TaskName
    $task.present = $true
    $task.state = [string]$scheduled.State
    $task.execute = @($scheduled.Actions | ForEach-Object { [string]$_.Execute })
    $info = Get-ScheduledTaskInfo -TaskPath $TaskPath -TaskName $TaskName
    $task.last_run_time = ConvertTo-IsoDate $info.LastRunTime
    $task.last_task_result = [int64]$info.LastTaskResult
    $task.next_run_time = ConvertTo-IsoDate $info.NextRunTime
    $task.missed_runs = [int]$info.NumberOfMissedRuns
}
catch {
    # "Not found" is the answer "task missing"; anything else leaves the task state unknown.
    # ASSUMPTION: the CIM cmdlets' not-found id (CmdletizationQuery_NotFound_TaskName) is not in docs/platform.md.
    if ([string]$_.FullyQualifiedErrorId -notlike 'CmdletizationQuery_NotFound*') { Add-Problem 'task' $_ }
}

# 5.1 may send even 169.254.x.x through a machine-wide proxy; IMDS must be asked directly.
[System.Net.WebRequest]::DefaultWebProxy = $null
$imds = New-Object System.Collections.ArrayList
$document = [ordered]@{ fetched_from = $null; raw = $null }
foreach ($address in $ImdsAddresses) {
    $uri = 'http://' + $address + '/metadata/attested/document?api-version=' + $ApiVersion
    if ($Nonce) { $uri = $uri + '&nonce=' + $Nonce }
    $entry = [ordered]@{ address = $address; ok = $false; status_code = $null; latency_ms = $null; error = $null }
    $watch = [System.Diagnostics.Stopwatch]::StartNew()
    try {
        $answer = Invoke-RestMethod -Headers @{ Metadata = 'true' } -Method GET -Uri $uri -TimeoutSec $TimeoutSec -UseBasicParsing
        $watch.Stop()
        $entry.ok = $true
        # Invoke-RestMethod returns only on a 2xx answer and 5.1 does not say which one.
        $entry.status_code = 200
        if ($null -eq $document.raw) {
            $document.fetched_from = $address
            if ($answer -is [string]) { $document.raw = $answer }
            else { $document.raw = ConvertTo-Json -InputObject $answer -Depth 10 -Compress }
        }
    }
    catch {
        $watch.Stop()
        $entry.error = [string]$_.Exception.Message
        $httpResponse = $_.Exception.Response
        if ($null -ne $httpResponse) { $entry.status_code = [int]$httpResponse.StatusCode }
    }
    $entry.latency_ms = [int]$watch.Elapsed.TotalMilliseconds
    [void]$imds.Add($entry)
}

$addresses = New-Object System.Collections.ArrayList
try {
    foreach ($ip in @(Get-NetIPAddress -AddressFamily IPv4)) {
        [void]$addresses.Add([ordered]@{ address = [string]$ip.IPAddress; prefix_length = [int]$ip.PrefixLength })
    }
}
catch { Add-Problem 'addresses' $_ }

$sppEvents = New-Object System.Collections.ArrayList
Add-RecentEvents $sppEvents @{ LogName = 'Application'; ProviderName = 'Microsoft-Windows-Security-SPP' } 'events.security_spp'
$clipEvents = New-Object System.Collections.ArrayList
Add-RecentEvents $clipEvents @{ LogName = 'Microsoft-Client-License-Flexible-Platform/Admin' } 'events.clip'

ConvertTo-Json -InputObject ([ordered]@{
        schema        = 'guest-probe-body/2'
        computer_name = $env:COMPUTERNAME
        started_at    = $StartedAt
        collected_at  = (Get-Date).ToUniversalTime().ToString('o')
        nonce         = $Nonce
        os            = $os
        licenses      = $licenses.ToArray()
        task          = $task
        imds          = $imds.ToArray()
        document      = $document
        addresses     = $addresses.ToArray()
        events        = [ordered]@{ security_spp = $sppEvents.ToArray(); clip = $clipEvents.ToArray() }
        avd_agent     = $avdAgent
        time          = $time
        problems      = $Problems.ToArray()
    }) -Depth 6 -Compress
