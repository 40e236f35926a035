"""Command line of the simulator: many seeds with a progress bar, or one seed with its trace.

stdout carries only failures (seed, shrunk schedule, trace) and the final summary line
``N seeds, V violations``; the progress bar goes to stderr.
"""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from charter.consensus.sim.faults import SimConfig
from charter.consensus.sim.runner import Result, config_for, run_seed, run_seeds, shrink

app = typer.Typer(add_completion=False, help=__doc__)


def report_failure(res: Result, config: SimConfig, out: Console, *, do_shrink: bool) -> None:
    """Print a failing seed: its violation, the (shrunk) injected events and the trace."""
    out.print(f"seed {res.seed} ({res.nodes} nodes): {res.violation}", markup=False)
    final = shrink(res, config) if do_shrink else run_seed(res.seed, config, verbose=True)
    label = "shrunk schedule" if do_shrink else "schedule"
    out.print(
        f"  {label}: {len(final.schedule)} of {len(res.schedule)} events; "
        f"re-run gives: {final.violation}",
        markup=False,
    )
    for f in final.schedule:
        out.print(f"    {f.describe()}", markup=False)
    out.print("  trace:", markup=False)
    for line in final.trace:
        out.print(f"    {line}", markup=False)


@app.command()
def main_command(
    seeds: Annotated[int, typer.Option(help="number of seeds to run")] = 100,
    start: Annotated[int, typer.Option(help="first seed")] = 0,
    nodes: Annotated[int | None, typer.Option(help="3 or 5 (default: alternate)")] = None,
    steps: Annotated[int | None, typer.Option(help="ticks of the faulty phase")] = None,
    seed: Annotated[int | None, typer.Option(help="run one seed with its full trace")] = None,
    jobs: Annotated[int, typer.Option(help="worker processes (0: one per core)")] = 0,
    no_shrink: Annotated[bool, typer.Option("--no-shrink", help="print unshrunk traces")] = False,
) -> None:
    """Run seeds and report ``N seeds, V violations``; exit status 1 if V > 0."""
    out = Console(file=sys.stdout, highlight=False, soft_wrap=True)
    err = Console(file=sys.stderr)
    if nodes is not None and nodes not in (3, 5):
        raise typer.BadParameter("--nodes must be 3 or 5")
    if seed is not None:
        cfg = config_for(seed, nodes, steps)
        res = run_seed(seed, cfg, verbose=True)
        for line in res.trace:
            out.print(line, markup=False)
        if not res.ok:
            report_failure(res, cfg, out, do_shrink=not no_shrink)
        out.print(f"1 seeds, {0 if res.ok else 1} violations", markup=False)
        raise typer.Exit(0 if res.ok else 1)
    failures: list[Result] = []
    progress = Progress(
        TextColumn("[bold]sim"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[bad]} violations"),
        TimeRemainingColumn(),
        console=err,
        transient=True,
    )
    with progress:
        task = progress.add_task("seeds", total=seeds, bad=0)
        for res in run_seeds(
            range(start, start + seeds), nodes, steps, jobs=jobs or os.cpu_count() or 1
        ):
            if not res.ok:
                failures.append(res)
            progress.update(task, advance=1, bad=len(failures))
    for res in failures:
        report_failure(res, config_for(res.seed, nodes, steps), out, do_shrink=not no_shrink)
    out.print(f"{seeds} seeds, {len(failures)} violations", markup=False)
    raise typer.Exit(1 if failures else 0)


def main() -> None:
    app(prog_name="python -m charter.consensus.sim")
