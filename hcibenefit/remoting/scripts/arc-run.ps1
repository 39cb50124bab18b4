# hcibenefit-script: arc-run/1
# Runs one of hcibenefit's scripts on this node for an Azure Arc run command, the way WinRM runs it:
# in a runspace of its own, the script added as a script and its parameters bound as parameters (never
# as text), its output objects and error records collected.
#
# Why a wrapper (docs/arc.md): the Connected Machine agent hands run-command parameters to the script as
# strings on a command line ("script.ps1 -Name value"), so a [bool], a [string[]], a [pscredential] or a
# script text with quotes and line breaks would not arrive as WinRM delivers them. Everything therefore
# travels base64-encoded (letters, digits, + / =: nothing a command line or a code page can change):
#   -Script       the script's text (UTF-8), one of hcibenefit's constant scripts
#   -Parameters   a JSON object of its parameters (UTF-8): strings, numbers, booleans, arrays
#   -Credentials  a JSON object name -> {username, password}, sent as a protected parameter (Azure keeps it
#                 out of every read of the run command) and bound as a PSCredential
# The answer is one JSON document, base64-encoded in lines of 76 characters between a begin line (with
# the encoded length) and an end line, so that a truncated or re-wrapped output is detected, and output
# redirected in the console's code page cannot garble a non-ASCII name.
param(
    [Parameter(Mandatory)]
    [string]$Script,
    [string]$Parameters = '',
    [string]$Credentials = ''
)

$ErrorActionPreference = 'Stop'

function ConvertFrom-Base64Text {
    param([string]$Text)
    return [System.Text.Encoding]::UTF8.GetString([System.Convert]::FromBase64String($Text))
}

function ConvertTo-ErrorEntry {
    param($ErrorRecord)
    $target = $null
    if ($null -ne $ErrorRecord.TargetObject) { $target = [string]$ErrorRecord.TargetObject }
    return [ordered]@{
        message  = [string]$ErrorRecord.Exception.Message
        error_id = [string]$ErrorRecord.FullyQualifiedErrorId
        category = [string]$ErrorRecord.CategoryInfo.Category
        target   = $target
    }
}

$output = New-Object System.Collections.ArrayList
$errors = New-Object System.Collections.ArrayList
$warnings = New-Object System.Collections.ArrayList
$ps = [System.Management.Automation.PowerShell]::Create()
try {
    [void]$ps.AddScript((ConvertFrom-Base64Text $Script))
    if ($Parameters) {
        $values = ConvertFrom-Json -InputObject (ConvertFrom-Base64Text $Parameters)
        foreach ($property in $values.PSObject.Properties) {
            [void]$ps.AddParameter($property.Name, $property.Value)
        }
    }
    if ($Credentials) {
        $secrets = ConvertFrom-Json -InputObject (ConvertFrom-Base64Text $Credentials)
        foreach ($property in $secrets.PSObject.Properties) {
            $password = ConvertTo-SecureString -String ([string]$property.Value.password) -AsPlainText -Force
            $credential = New-Object -TypeName System.Management.Automation.PSCredential -ArgumentList ([string]$property.Value.username), $password
            [void]$ps.AddParameter($property.Name, $credential)
        }
    }
    try {
        foreach ($item in $ps.Invoke()) {
            [void]$output.Add([string]$item)
        }
    }
    catch {
        # A terminating error: Invoke() throws, the script's own record is the inner exception's.
        $inner = $_.Exception.InnerException
        if ($null -ne $inner -and $null -ne $inner.ErrorRecord) {
            [void]$errors.Add((ConvertTo-ErrorEntry $inner.ErrorRecord))
        }
        else {
            [void]$errors.Add((ConvertTo-ErrorEntry $_))
        }
    }
    foreach ($record in $ps.Streams.Error) {
        [void]$errors.Add((ConvertTo-ErrorEntry $record))
    }
    foreach ($record in $ps.Streams.Warning) {
        [void]$warnings.Add([string]$record.Message)
    }
}
finally {
    $ps.Dispose()
}

$answer = [ordered]@{
    schema   = 'arc-run/1'
    output   = $output.ToArray()
    errors   = $errors.ToArray()
    warnings = $warnings.ToArray()
}
$json = ConvertTo-Json -InputObject $answer -Depth 4 -Compress
$encoded = [System.Convert]::ToBase64String([System.Text.Encoding]::UTF8.GetBytes($json))
Write-Output ('hcibenefit-arc-run/1 begin ' + $encoded.Length)
for ($offset = 0; $offset -lt $encoded.Length; $offset += 76) {
    Write-Output $encoded.Substring($offset, [System.Math]::Min(76, $encoded.Length - $offset))
}
Write-Output 'hcibenefit-arc-run/1 end'
