//! PowerShell: the plan of a Windows host as `lowport.ps1 [-Mode check|apply|undo]`. Windows
//! plans are commands (firewall rules, services), so every step is the plan's argv vectors, each
//! run with `&` and every word a single-quoted string (`validate::ps_native_arg`), its exit code
//! checked. A step with a check runs only when the check says its effect is missing, and is
//! undone only while the check says it is there; a step without one is marked in a state
//! directory that only SYSTEM and Administrators may write, so a second apply changes nothing.

use super::{File, provenance};
use crate::error::{Error, Result};
use crate::plan::{Action, Plan};
use crate::validate::{ps_native_arg, ps_quoted};

fn bad(what: String) -> Error {
    Error::Invalid(format!(
        "the plan cannot be exported as a PowerShell script: {what}"
    ))
}

/// One command as a script block: `{ & 'PROGRAM' 'ARG' … }`.
fn command(argv: &[String]) -> Result<String> {
    let words = argv
        .iter()
        .map(|w| ps_native_arg(w).map_err(bad))
        .collect::<Result<Vec<_>>>()?;
    Ok(format!("{{ & {} }}", words.join(" ")))
}

fn text(what: &str, s: &str) -> Result<String> {
    ps_quoted(what, &super::one_line(s)).map_err(bad)
}

pub fn export(plan: &Plan) -> Result<Vec<File>> {
    if plan.family != "windows" {
        return Err(bad(format!(
            "it is a plan for a {} host; PowerShell exports are for Windows plans (use --format \
             sh)",
            plan.family
        )));
    }
    let fp = plan
        .fingerprint
        .strip_prefix("sha256:")
        .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or_else(|| bad(format!("'{}' is not a plan fingerprint", plan.fingerprint)))?;
    let mut steps = String::new();
    for (i, st) in plan.steps.iter().enumerate() {
        let n = i + 1;
        let Action::RunCommands {
            what,
            run,
            undo,
            check,
        } = &st.action
        else {
            return Err(bad(format!(
                "step {n} ({}) is not a command: a Windows plan's steps are commands",
                st.action.target()
            )));
        };
        let list = |argvs: &[Vec<String>]| -> Result<String> {
            let blocks = argvs
                .iter()
                .map(|a| command(a))
                .collect::<Result<Vec<_>>>()?;
            Ok(if blocks.is_empty() {
                "@()".to_string()
            } else {
                format!("@(\n        {}\n    )", blocks.join(",\n        "))
            })
        };
        steps.push_str(&format!(
            "    @{{\n    N = {n}\n    What = {}\n    Check = {}\n    Run = {}\n    Undo = {}\n    }}",
            text("summary", what)?,
            match check {
                Some(c) => command(c)?,
                None => "$null".into(),
            },
            list(run)?,
            list(undo)?,
        ));
        steps.push_str(if n == plan.steps.len() { "\n" } else { ",\n" });
    }
    let mut header = String::new();
    for l in provenance(plan, "").lines() {
        header.push_str(&format!("# {}\n", super::one_line(l)));
    }
    // A UTF-8 byte order mark first: Windows PowerShell 5.1 reads a script without one in the
    // ANSI code page, where the bytes of a character such as U+0451 (D1 91) read as `Ñ‘`, and
    // PowerShell takes `‘` for a quote: it would end the single-quoted string the value is in.
    let script = format!(
        r#"{header}# {title}
#
# Usage: powershell -ExecutionPolicy Bypass -File lowport.ps1 [-Mode check|apply|undo]
#   check  (the default) read only: each step's state; exit 0 when every step is in place, else 1
#   apply  as Administrator: run each step whose effect is missing; a step that fails undoes what
#          this run did (exit 4)
#   undo   as Administrator: undo each step, last first, while its effect is there
# Exit codes: 0 done or in place; 1 check: a step is not in place; 3 refused (not Administrator);
# 4 a step failed.
param(
    [ValidateSet('check', 'apply', 'undo')]
    [string]$Mode = 'check'
)
$ErrorActionPreference = 'Stop'
Set-StrictMode -Version 2.0

$Fingerprint = '{fp}'
# Steps without a check are marked here when they ran: SYSTEM and Administrators only.
$State = Join-Path $env:ProgramData "lowport-export\$Fingerprint"

$Steps = @(
{steps})

# A native program's exit code is its verdict. Windows PowerShell 5.1 turns the lines a program
# writes to stderr into errors, which 'Stop' would make fatal, so programs run under 'Continue'
# and $LASTEXITCODE is checked after each; it starts at -1 so that a program that did not start
# is not taken for one that succeeded.
function Invoke-Native([scriptblock]$Command, [switch]$Quiet) {{
    $saved = $ErrorActionPreference
    $ErrorActionPreference = 'Continue'
    $global:LASTEXITCODE = -1
    try {{
        if ($Quiet) {{ & $Command *> $null }} else {{ & $Command | Out-Host }}
    }} finally {{
        $ErrorActionPreference = $saved
    }}
    return $LASTEXITCODE
}}

function Test-InPlace($Step) {{
    if ($null -ne $Step.Check) {{ return ((Invoke-Native $Step.Check -Quiet) -eq 0) }}
    return (Test-Path -LiteralPath (Join-Path $State "$($Step.N).done"))
}}

function Invoke-Commands($Step, $List) {{
    foreach ($c in $List) {{
        $code = Invoke-Native $c
        if ($code -ne 0) {{ throw "step $($Step.N) ($($Step.What)): $c exited with $code" }}
    }}
}}

function Assert-Administrator {{
    $me = [Security.Principal.WindowsPrincipal][Security.Principal.WindowsIdentity]::GetCurrent()
    if (-not $me.IsInRole([Security.Principal.WindowsBuiltInRole]::Administrator)) {{
        Write-Error -ErrorAction Continue "lowport.ps1: $Mode changes the host: run it as Administrator. Nothing was changed."
        exit 3
    }}
}}

function Initialize-State {{
    if (-not (Test-Path -LiteralPath $State)) {{
        New-Item -ItemType Directory -Path $State -Force | Out-Null
        # Inheritance off; full control for SYSTEM (S-1-5-18) and Administrators (S-1-5-32-544).
        $code = Invoke-Native {{ & 'icacls.exe' $State '/inheritance:r' '/grant:r' '*S-1-5-18:(OI)(CI)F' '*S-1-5-32-544:(OI)(CI)F' }} -Quiet
        if ($code -ne 0) {{ throw "icacls could not restrict $State (exit $code)" }}
    }}
}}

# A step is undone while its effect is there (its check passes, or its mark says it ran); -Ran
# undoes a step without a check that this run started, even half done.
function Undo-Step($Step, [switch]$Ran) {{
    $there = if ($Ran -and $null -eq $Step.Check) {{ $true }} else {{ Test-InPlace $Step }}
    if (-not $there) {{
        Write-Output "step $($Step.N): not in place, nothing to undo: $($Step.What)"
    }} else {{
        Invoke-Commands $Step $Step.Undo
        Write-Output "step $($Step.N): undone: $($Step.What)"
    }}
    Remove-Item -LiteralPath (Join-Path $State "$($Step.N).done") -Force -ErrorAction SilentlyContinue
}}

switch ($Mode) {{
    'check' {{
        $pending = 0
        foreach ($s in $Steps) {{
            if (Test-InPlace $s) {{ Write-Output "step $($s.N): in place: $($s.What)" }}
            else {{ $pending++; Write-Output "step $($s.N): to do: $($s.What)" }}
        }}
        if ($pending -eq 0) {{ Write-Output 'Every step is in place.'; exit 0 }}
        Write-Output "$pending of $($Steps.Count) steps are not in place."
        exit 1
    }}
    'apply' {{
        Assert-Administrator
        Initialize-State
        $ran = @()
        try {{
            foreach ($s in $Steps) {{
                if (Test-InPlace $s) {{ Write-Output "step $($s.N): in place, skipped: $($s.What)"; continue }}
                $ran = @($s) + $ran
                Invoke-Commands $s $s.Run
                if ($null -eq $s.Check) {{ New-Item -ItemType File -Path (Join-Path $State "$($s.N).done") -Force | Out-Null }}
                Write-Output "step $($s.N): done: $($s.What)"
            }}
        }} catch {{
            Write-Warning "$_; undoing what this run changed"
            foreach ($s in $ran) {{
                try {{ Undo-Step $s -Ran }} catch {{ Write-Warning "$_" }}
            }}
            exit 4
        }}
        Write-Output 'Applied. Undo with: lowport.ps1 -Mode undo'
    }}
    'undo' {{
        Assert-Administrator
        [array]::Reverse($Steps)
        foreach ($s in $Steps) {{ Undo-Step $s }}
        Remove-Item -LiteralPath $State -Recurse -Force -ErrorAction SilentlyContinue
        Write-Output 'Undone.'
    }}
}}
"#,
        title = super::one_line(&plan.title),
    );
    Ok(vec![File::new("lowport.ps1", format!("\u{feff}{script}"))])
}
