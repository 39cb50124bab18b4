"""`hcibenefit lab serve|state|run`: the simulated fleet, for trying hcibenefit without a cluster."""

from __future__ import annotations

import contextlib
import gc
import os
import signal
from pathlib import Path
from typing import Annotated, Any

import typer

from hcibenefit.cli.common import app_context, choice, global_options
from hcibenefit.errors import HcibenefitError, UsageError
from hcibenefit.exitcodes import ExitCode

app = typer.Typer(
    rich_markup_mode=None, help="The built-in simulated fleet (real WinRM on loopback).", no_args_is_help=True
)

DEFAULT_CONTROL_PORT = 48650
FleetOption = Annotated[
    Path | None, typer.Option("--fleet", metavar="FILE", help="Fleet spec YAML (default: built-in fleet).")
]
ScaleOption = Annotated[
    str | None,
    typer.Option(
        "--scale", metavar="C,N,V", help="Generate a fleet: CLUSTERS,NODES,VMS_PER_NODE, e.g. 10,4,25."
    ),
]
SeedOption = Annotated[int, typer.Option("--seed", metavar="N", help="Seed for --scale.")]
AuthOption = Annotated[
    str,
    typer.Option(
        "--auth",
        metavar="basic|ntlm|certificate",
        help="basic (over HTTPS), ntlm (over HTTP, encrypted) or certificate (a client certificate over HTTPS; "
        "the written inventory names it, and no host password is used).",
    ),
]
ProcessesOption = Annotated[
    str | None,
    typer.Option(
        "--processes",
        metavar="N|auto",
        help="Serve the nodes' WinRM from N processes, whole clusters each, so the lab's PowerShell uses "
        "N cores as real hosts each use their own; auto: one per core, at most one per cluster (Linux; "
        "elsewhere 1). Default: auto with --scale, else 1.",
    ),
]


class LabFailed(HcibenefitError):
    """The lab can no longer serve (one of its processes died): it stopped."""

    exit_code = ExitCode.INCOMPLETE


def _processes(value: str) -> int:
    from hcibenefit.lab.shards import available_cores

    if value.strip().lower() == "auto":
        return available_cores()
    try:
        count = int(value)
    except ValueError:
        count = 0
    if count < 1:
        raise UsageError(f"--processes must be a number of processes (1 or more) or auto, got {value!r}")
    return count


def _spec(fleet: Path | None, scale: str | None, seed: int) -> Any:
    from hcibenefit.lab.spec import default_fleet, generate_fleet, load_fleet, parse_scale

    if fleet is not None and scale is not None:
        raise UsageError("--fleet and --scale exclude each other")
    if fleet is not None:
        return load_fleet(fleet)
    if scale is not None:
        return generate_fleet(*parse_scale(scale), seed=seed)
    return default_fleet()


def _auth(value: str) -> Any:
    return choice(value, ("basic", "ntlm", "certificate"), option="--auth")


SERVE_EXAMPLES = """Examples:

  hcibenefit lab serve --write-inventory lab.yaml          # then, in another shell: hcibenefit -i lab.yaml status

  hcibenefit lab serve --scale 10,4,25 --auth ntlm         # 40 nodes, 1000 VMs, NTLM over HTTP

  hcibenefit lab serve --auth certificate --write-inventory lab.yaml   # client-certificate logons, no host password

  hcibenefit lab serve --scale 10,4,25 --processes auto    # the clusters' PowerShell on every core
"""
STATE_EXAMPLES = """Examples:

  hcibenefit lab state -o json                             # per node: open shells, requests, script invocations
"""
RUN_EXAMPLES = """Examples:

  hcibenefit lab run -- status                             # the built-in fleet, one command, then stop

  hcibenefit lab run -- enable --vm avd-missing-nic --what-if

  hcibenefit lab run --scale 2,3,10 -- guest check --all -o json
"""


@app.command(epilog=SERVE_EXAMPLES)
@global_options
def serve(
    ctx: typer.Context,
    fleet: FleetOption = None,
    scale: ScaleOption = None,
    seed: SeedOption = 1,
    auth: AuthOption = "basic",
    write_inventory: Annotated[
        Path,
        typer.Option("--write-inventory", metavar="FILE", help="Where to write the inventory for this lab."),
    ] = Path("lab-inventory.yaml"),
    control_port: Annotated[
        int,
        typer.Option("--control-port", metavar="PORT", help="Port of the control endpoint (GET /lab/state)."),
    ] = DEFAULT_CONTROL_PORT,
    processes: ProcessesOption = None,
) -> int:
    """Start the fleet and serve until Ctrl-C / SIGTERM."""
    from hcibenefit.lab.fleet import Lab, tune_for_serving
    from hcibenefit.lab.shards import can_fork

    appctx = app_context(ctx)
    if not 0 <= control_port <= 65535:
        raise UsageError(
            f"--control-port must be a port number 0-65535 (0: any free port), got {control_port}"
        )
    _check_writable(write_inventory)
    spec = _spec(fleet, scale, seed)
    chosen_auth = _auth(auth)
    if processes is None:  # a generated fleet is the large one: as many cores as a fleet would have
        processes = "auto" if scale is not None else "1"
    process_count = _processes(processes)
    if process_count > 1 and not can_fork() and processes != "auto":
        appctx.say(
            f"--processes {processes}: this platform serves the lab from one process (forking is Linux only)"
        )

    def terminate(*_: object) -> None:
        # SIGTERM ends the lab like Ctrl-C, also while it starts: its private directory (TLS keys) goes.
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        lab = Lab(spec, auth=chosen_auth, control_port=control_port, processes=process_count)
        # This process only serves the lab: tuned before the lab forks its workers, so they are too, and
        # put back if the lab does not start (tests run a failing `lab serve` inside their own process).
        untuned = gc.get_threshold()
        tune_for_serving()
        try:
            lab.start()  # a failed start stops what it started
        except BaseException as exc:
            gc.set_threshold(*untuned)
            if not isinstance(exc, OSError):
                raise
            raise UsageError(
                f"cannot start the lab: {exc.strerror or exc}",
                hint="another lab may be running: stop it, or pass --control-port N (0 picks a free port)",
            ) from None
        try:
            _serve(appctx, lab, spec, chosen_auth, write_inventory)
        finally:
            lab.stop()
    finally:
        signal.signal(signal.SIGTERM, previous)
    print("lab stopped", file=appctx.stderr)
    return int(ExitCode.OK)


def _check_writable(path: Path) -> None:
    """The inventory path must be a file we can write, checked before anything starts."""
    if path.is_dir():
        raise UsageError(
            f"--write-inventory {path} is a directory; give a file name such as {path / 'lab.yaml'}"
        )
    if not path.parent.is_dir():
        raise UsageError(f"--write-inventory {path}: the directory {path.parent} does not exist")
    if not os.access(path.parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise UsageError(f"--write-inventory {path}: permission denied")


def _serve(appctx: Any, lab: Any, spec: Any, auth: str, write_inventory: Path) -> None:
    try:
        lab.write_inventory(write_inventory)
    except OSError as exc:
        raise UsageError(f"cannot write --write-inventory {write_inventory}: {exc.strerror or exc}") from None
    for name, value in lab.environment().items():
        print(f"export {name}={value}", file=appctx.stderr)
    print(
        f"lab ready: {spec.node_count()} nodes, {spec.vm_count()} VMs ({spec.source}), auth {auth} over "
        f"{'http' if auth == 'ntlm' else 'https'}; inventory {write_inventory}; "
        f"azure {lab.arm.url if lab.arm else '-'}; {_processes_text(lab)}; control {lab.control_url}/lab/state",
        file=appctx.stdout,
        flush=True,
    )
    # Until Ctrl-C or SIGTERM (which raises KeyboardInterrupt here), or one of the lab's processes dies;
    # short waits stay interruptible.
    with contextlib.suppress(KeyboardInterrupt):
        while not lab.failed.wait(0.5):
            pass
    if lab.failure:
        raise LabFailed(lab.failure, hint="the lab's log lines above say why; start it again")


def _processes_text(lab: Any) -> str:
    if not lab.shards:
        return "WinRM in 1 process"
    return f"WinRM in {len(lab.shards)} processes by cluster"


@app.command(epilog=STATE_EXAMPLES)
@global_options
def state(
    ctx: typer.Context,
    control_port: Annotated[
        int, typer.Option("--control-port", metavar="PORT", help="The lab's control port.")
    ] = DEFAULT_CONTROL_PORT,
) -> int:
    """Print the running lab's state (GET /lab/state) as JSON."""
    import json
    import urllib.error
    import urllib.request

    appctx = app_context(ctx)
    url = f"http://127.0.0.1:{control_port}/lab/state"
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            document = json.load(response)
    except (urllib.error.URLError, OSError) as exc:
        raise UsageError(
            f"no lab answers at {url}: {exc}", hint="start one with `hcibenefit lab serve`"
        ) from None
    with appctx.open_output() as stream:
        stream.write(json.dumps(document, indent=2) + "\n")
    return int(ExitCode.OK)


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True}, epilog=RUN_EXAMPLES)
def run(
    ctx: typer.Context,
    fleet: FleetOption = None,
    scale: ScaleOption = None,
    seed: SeedOption = 1,
    auth: AuthOption = "basic",
) -> int:
    """Start a lab, run one hcibenefit command against it, stop: `hcibenefit lab run -- status`."""
    from hcibenefit.cli.app import run as run_cli
    from hcibenefit.lab.fleet import Lab

    args = list(ctx.args)
    if not args:
        raise UsageError("nothing to run", hint="for example: hcibenefit lab run -- status")
    spec = _spec(fleet, scale, seed)
    appctx = app_context(ctx)
    args = _global_arguments(appctx) + args
    with Lab(spec, auth=_auth(auth)) as lab:
        inventory = lab.write_inventory(lab.workdir / "inventory.yaml")
        saved = {k: os.environ.get(k) for k in [*lab.environment(), "HCIBENEFIT_INVENTORY"]}
        os.environ.update(lab.environment())
        os.environ["HCIBENEFIT_INVENTORY"] = str(inventory)
        appctx.say(f"lab: {spec.node_count()} nodes, {spec.vm_count()} VMs ({spec.source})")
        try:
            return run_cli(args)
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


def _global_arguments(appctx: Any) -> list[str]:
    """The global options given to `lab run` itself, passed on to the command it runs."""
    args: list[str] = []
    if appctx.format:
        args += ["--output", appctx.format]
    if appctx.output_file:
        args += ["--output-file", str(appctx.output_file)]
    args += ["-v"] * appctx.verbosity
    args += ["--quiet"] if appctx.quiet else []
    args += ["--wide"] if appctx.wide else []
    return args
