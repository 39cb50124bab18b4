"""The lab's Windows PowerShell 5.1: it runs the script text a client sends, against the fleet model.

Nothing here is keyed by script: a script is parsed (tree-sitter-powershell, `syntax`), evaluated with
5.1's semantics (`evaluator`, `binding`, `convert`, `json51`), and every command it calls is an
emulated cmdlet (`cmdlets/`) acting on the fleet model with the parameter sets, output objects and
errors the real one has.

The language subset (anything else is `Unsupported`, naming the construct and its line):
- a `param()` block with [CmdletBinding()], [Parameter(Mandatory[=$true], Position=n)],
  [ValidatePattern()], [ValidateSet()] and the types string, string[], int, long, bool, switch,
  pscredential, hashtable, guid, datetime, scriptblock, object; defaults are expressions;
- statements: pipelines, assignment (=, +=, -=) to variables, members and indexes, if/elseif/else,
  foreach, for, while, do-while/until, try/catch [type]/finally, throw, return, break, continue,
  function definitions with a param() block;
- expressions: variables ($x, $global:x, $script:x, $env:X, $_), literals (integers, hex, reals,
  single- and double-quoted strings with `$x`/`$( )` expansion and backtick escapes), arrays (`a, b`,
  `,a`, `@( )`), `$( )`, `( )`, hash literals with [ordered] and [pscustomobject], script blocks, casts,
  type literals, member access (instance and static), method calls, indexing, `$x++`;
- operators: -not ! - + (unary), -and -or -xor, -eq -ne -gt -ge -lt -le (with i/c prefixes), -like
  -notlike -match -notmatch -in -notin -contains -notcontains -is -isnot -replace, + - * / %.
Not supported: pipelines of scripts, splatting, redirection, the `&`/`.` operators, switch, trap,
here-strings, -f, ranges, begin/process/end blocks, classes, workflows.
"""

from __future__ import annotations

from hcibenefit.lab.powershell.errors import ErrorRecord, NotEmulated, PSError, Unsupported

__all__ = ["ErrorRecord", "NotEmulated", "PSError", "Unsupported"]
