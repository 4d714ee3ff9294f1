"""The results table (rich on the terminal, markdown for the README) and the targets."""

from __future__ import annotations

from dataclasses import dataclass, field

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from benchmarks.common import Result
from benchmarks.contenders import FAUST_NAIVE, PASSTHROUGH, PROCESSOR, QUIX, Contender

# (baseline, least ratio of the processor to it, what the target is)
TARGETS = (
    (FAUST_NAIVE, 10.0, "target: processor >= 10x naive Faust"),
    (QUIX, 1.0, "target: processor ahead of Quix Streams"),
    (PASSTHROUGH, 0.3, "target: processor >= 0.3x raw passthrough"),
    (PASSTHROUGH, 0.5, "product goal: processor >= 0.5x raw passthrough"),
)
HEADERS = (
    "scenario",
    "contender",
    "events measured",
    "seconds",
    "events/s",
    "x naive Faust",
    "x raw passthrough",
)


@dataclass(slots=True)
class Row:
    scenario: str
    contender: Contender
    result: Result
    note: str = ""


@dataclass(slots=True)
class Report:
    rows: list[Row] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def find(self, scenario: str, contender: Contender) -> Result | None:
        for row in self.rows:
            if row.scenario == scenario and row.contender is contender:
                return None if row.result.error else row.result
        return None

    def cells(self, row: Row) -> list[str]:
        result = row.result
        label = f"{row.contender.label}{f' [{row.note}]' if row.note else ''}"
        if result.error is not None:
            return [row.scenario, label, f"{result.events:,}", "-", "FAILED", "-", "-"]
        naive = self.find(row.scenario, FAUST_NAIVE)
        raw = self.find(row.scenario, PASSTHROUGH)
        return [
            row.scenario,
            label,
            f"{result.events:,}",
            f"{result.seconds:.2f}",
            f"{result.rate:,.0f}",
            _ratio(result, naive),
            _ratio(result, raw),
        ]

    def targets(self) -> list[tuple[str, bool | None]]:
        """One line per scenario and target; ``None`` when it could not be measured."""
        lines: list[tuple[str, bool | None]] = []
        for scenario in dict.fromkeys(row.scenario for row in self.rows):
            processor = self.find(scenario, PROCESSOR)
            for baseline, target, name in TARGETS:
                other = self.find(scenario, baseline)
                if processor is None or other is None or other.rate == 0:
                    lines.append((f"{scenario}: {name}: not measured", None))
                    continue
                ratio = processor.rate / other.rate
                met = ratio >= target
                verdict = "met" if met else "MISSED"
                lines.append((f"{scenario}: {name}: {ratio:.2f}x -> {verdict}", met))
        return lines

    def print(self, console: Console) -> None:
        table = Table(title="Profile Streams benchmark (events/s; ratios are of events/s)")
        for header in HEADERS:
            table.add_column(header, justify="left" if header in HEADERS[:2] else "right")
        for row in self.rows:
            style = "red" if row.result.error else None
            # Escaped: a note in brackets ("[best of 3]") would be read as a markup tag and dropped.
            table.add_row(*map(escape, self.cells(row)), style=style)
        console.print(table)
        for line, met in self.targets():
            colour = "green" if met else "bold red" if met is False else "yellow"
            console.print(f"[{colour}]{line}[/{colour}]")
        for check in self.checks:
            console.print(f"[cyan]check:[/cyan] {check}")
        for problem in self.problems:
            console.print(f"[bold red]PROBLEM:[/bold red] {problem}")

    def markdown(self, preamble: list[str]) -> str:
        lines = [*preamble, ""]
        lines.append("| " + " | ".join(HEADERS) + " |")
        lines.append("|" + "|".join(":--" if i < 2 else "--:" for i in range(len(HEADERS))) + "|")
        for row in self.rows:
            lines.append("| " + " | ".join(self.cells(row)) + " |")
        lines.append("")
        lines.extend(f"- {line}" for line, _ in self.targets())
        lines.extend(f"- check: {check}" for check in self.checks)
        lines.extend(f"- PROBLEM: {problem}" for problem in self.problems)
        return "\n".join(lines) + "\n"


def _ratio(result: Result, baseline: Result | None) -> str:
    if baseline is None or baseline.rate == 0:
        return "-"
    return f"{result.rate / baseline.rate:.2f}x"
