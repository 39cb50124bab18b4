"""The lab's evaluator gives Windows PowerShell 5.1's answers where they differ from intuition (docs/lab.md).

Each expectation is what powershell.exe 5.1 prints for the same text; the sources are named in the
evaluator's modules (Learn's about_* pages and the 5.1 source of the behaviour).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import CollectingOutput, EngineDriver


def ps(driver: EngineDriver, text: str, node: str = "lab01-n1") -> CollectingOutput:
    return driver.call_text(node, text)


def out(driver: EngineDriver, text: str) -> list[Any]:
    result = ps(driver, text)
    assert not result.errors, result.errors
    return result.output


# --- ConvertTo-Json ------------------------------------------------------------------------------


def test_convertto_json_cuts_below_depth_2_to_type_names(default_driver: EngineDriver) -> None:
    # The root is level 0; a container at level 3 and below is written as its type name (scalars never).
    nested = "([ordered]@{ a = [ordered]@{ b = [ordered]@{ c = [ordered]@{ d = 1 } } } })"
    text = "ConvertTo-Json -Compress -InputObject " + nested
    assert out(default_driver, text) == [
        '{"a":{"b":{"c":"System.Collections.Specialized.OrderedDictionary"}}}'
    ]
    assert out(default_driver, "ConvertTo-Json -Compress -Depth 3 -InputObject " + nested) == [
        '{"a":{"b":{"c":{"d":1}}}}'
    ]
    # An array counts as a level: its objects' own containers are cut at depth 2.
    array = "ConvertTo-Json -Compress -InputObject ([ordered]@{ list = @([ordered]@{ x = @(1) }) })"
    assert out(default_driver, array) == ['{"list":[{"x":"1"}]}']


def test_convertto_json_escapes_like_51(default_driver: EngineDriver) -> None:
    text = """ConvertTo-Json -Compress -InputObject "<a href='x'>&</a>" """
    assert out(default_driver, text) == ['"\\u003ca href=\\u0027x\\u0027\\u003e\\u0026\\u003c/a\\u003e"']


def test_convertto_json_writes_enums_as_numbers_and_strings_them_as_names(
    default_driver: EngineDriver,
) -> None:
    text = (
        "$vm = Get-VM | Select-Object -First 1\n"
        "[string]$vm.State\n"
        "ConvertTo-Json -Compress -InputObject ([ordered]@{ state = $vm.State })"
    )
    name, document = out(default_driver, text)
    assert name == "Running"
    assert isinstance(json.loads(document)["state"], int)


def test_convertto_json_of_null_writes_nothing(default_driver: EngineDriver) -> None:
    assert out(default_driver, "$null | ConvertTo-Json") == []


# --- values ----------------------------------------------------------------------------------------


def test_string_of_an_array_is_joined_by_spaces(default_driver: EngineDriver) -> None:
    assert out(default_driver, "[string]@('V1', 'V2'); \"$(@(1, 2, 3))\"") == ["V1 V2", "1 2 3"]


def test_a_one_element_array_unrolls_and_dollar_paren_unrolls_empty_to_null(
    default_driver: EngineDriver,
) -> None:
    text = (
        "$one = @('x') | ForEach-Object { $_ }; $one.GetType().Name\n"
        "$none = $(@()); $null -eq $none\n"
        "(@(@('a')) | Measure-Object).Count"
    )
    result = ps(default_driver, text)
    assert result.output[:2] == ["String", True]


def test_member_access_on_null(default_driver: EngineDriver) -> None:
    text = "$x = $null; $null -eq $x.Name; $x.Count; @($x.Name).Count"
    assert out(default_driver, text) == [True, 0, 1]
    failed = ps(default_driver, "$x = $null; $x.Trim()")
    assert failed.errors[0]["error_id"] == "InvokeMethodOnNull"


def test_member_enumeration_over_an_array(default_driver: EngineDriver) -> None:
    assert out(default_driver, "@([pscustomobject]@{ n = 'a' }, [pscustomobject]@{ n = 'b' }).n") == [
        "a",
        "b",
    ]


# --- binding -----------------------------------------------------------------------------------------


def test_a_script_blocks_param_binds_from_argument_list_by_position(default_driver: EngineDriver) -> None:
    text = "Invoke-Command -ScriptBlock { param([string]$Nonce, [int]$TimeoutSec) \"$Nonce/$TimeoutSec\" } -ArgumentList '0123456789', 5"
    assert out(default_driver, text) == ["0123456789/5"]
    swapped = ps(
        default_driver,
        "Invoke-Command -ScriptBlock { param([string]$Nonce, [int]$TimeoutSec) $TimeoutSec } -ArgumentList 5, '9876543210'",
    )
    assert swapped.errors and "ParameterArgumentTransformationError" in swapped.errors[0]["error_id"]


def test_named_positional_switch_and_prefix_binding(default_driver: EngineDriver) -> None:
    text = (
        "function f { [CmdletBinding()] param([Parameter(Position = 0)][string]$Name, [switch]$Force, [int]$Count = 1)\n"
        '  "$Name|$Force|$Count" }\n'
        "f x; f -Na y -Force; f z -Count '3'; f -Force:$false w"
    )
    assert out(default_driver, text) == ["x|False|1", "y|True|1", "z|False|3", "w|False|1"]
    ambiguous = ps(default_driver, "Get-VM -N 'x'")  # -Name and -N..? unique prefixes only
    assert not ambiguous.output or ambiguous.errors


def test_int_conversion_failure_names_the_parameter(default_driver: EngineDriver) -> None:
    result = ps(default_driver, "function f { param([int]$N) $N }; f -N 'abc'")
    assert result.errors[0]["error_id"].startswith("ParameterArgumentTransformationError")
    assert "N" in result.errors[0]["message"]


# --- errors ------------------------------------------------------------------------------------------


def test_non_terminating_errors_continue_and_stop_makes_them_terminating(
    default_driver: EngineDriver,
) -> None:
    text = "Get-VM -Name 'no-such-vm'; 'after'"
    result = ps(default_driver, text)
    assert result.output == ["after"] and result.errors[0]["error_id"].startswith("InvalidParameter")
    stop = "try { Get-VM -Name 'no-such-vm' -ErrorAction Stop; 'not here' } catch { 'caught ' + $_.FullyQualifiedErrorId }"
    assert out(default_driver, stop)[0].startswith("caught InvalidParameter")
    preference = "$ErrorActionPreference = 'Stop'; try { Get-VM -Name 'no-such-vm'; 'no' } catch { 'yes' }"
    assert out(default_driver, preference) == ["yes"]


def test_error_variable_and_silently_continue(default_driver: EngineDriver) -> None:
    text = (
        "Get-VM -Name 'nope' -ErrorAction SilentlyContinue -ErrorVariable bad\n"
        "$bad.Count; [string]$bad[0].FullyQualifiedErrorId"
    )
    result = ps(default_driver, text)
    assert not result.errors
    assert result.output[0] == 1 and result.output[1].startswith("InvalidParameter")


def test_throw_is_script_terminating_and_finally_runs(default_driver: EngineDriver) -> None:
    text = "try { throw 'boom' } catch { \"caught $($_.Exception.Message)\" } finally { 'finally' }"
    assert out(default_driver, text) == ["caught boom", "finally"]


def test_a_method_that_throws_is_a_method_invocation_exception(default_driver: EngineDriver) -> None:
    text = (
        "try { [guid]::Parse('not a guid') } catch { $_.FullyQualifiedErrorId; $_.Exception.GetType().Name }"
    )
    first, kind = out(default_driver, text)
    assert kind == "MethodInvocationException" and first == "FormatException"


# --- scope (global-scope dot-sourcing of add_script) ------------------------------------------------


def test_scripts_share_the_pools_global_scope(default_driver: EngineDriver) -> None:
    from hcibenefit.lab.wsman.executor import CommandSpec, PipelineCall

    pool: dict[str, Any] = {}
    results = []
    for text in ("$shared = 'from the first'; function Get-Shared { $shared }", "Get-Shared"):
        collected = CollectingOutput()
        call = PipelineCall(
            "lab01-n1", "u", "Microsoft.PowerShell", (CommandSpec(text, True, ()),), (), runspace=pool
        )
        collected.output += default_driver.engine.execute(call, collected)
        results.append(collected.output)
    assert results[1] == ["from the first"]


# --- constructs outside the subset -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "construct"),
    [
        ("$a = @{}; f @a", "splat"),
        ("switch (1) { 1 { 'x' } }", "switch"),
        ("'{0}' -f 1", "-f"),
        ("1..3", ".."),
    ],
)
def test_outside_the_subset_names_construct_and_line(
    default_driver: EngineDriver, text: str, construct: str
) -> None:
    from hcibenefit.lab.wsman.executor import TerminatingError

    with pytest.raises(TerminatingError) as caught:
        ps(default_driver, "'first line'\n" + text)
    assert caught.value.error_id == "LabUnsupportedConstruct"
    assert "line 2" in caught.value.message
