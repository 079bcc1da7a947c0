"""Pages the documentation build writes from the code (mkdocs-gen-files), so they cannot drift from it:
the CLI reference from the typer app, the run configuration from its pydantic models, the result tables from
``benchmarks/results/*.csv``, and the changelog."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import click
import mkdocs_gen_files
import typer
from typer.testing import CliRunner

from ecgscope.cli import app
from ecgscope.config import RunConfig

ROOT = Path(__file__).resolve().parent.parent


def _cli_page() -> str:
    runner = CliRunner()
    lines = ["# Command line", "", "Every command and option, as `ecgscope COMMAND --help` prints it.", ""]

    def walk(command: click.Command, path: list[str]) -> None:
        shown = runner.invoke(app, [*path[1:], "--help"], terminal_width=100, env={"COLUMNS": "100"})
        lines.extend([f"{'#' * min(len(path) + 1, 4)} `{' '.join(path)}`", "", "```text", shown.output.rstrip(),
                      "```", ""])
        if isinstance(command, click.Group):
            ctx = click.Context(command, info_name=path[-1])
            for name in command.list_commands(ctx):
                walk(command.get_command(ctx, name), [*path, name])

    walk(typer.main.get_command(app), ["ecgscope"])
    return "\n".join(lines)


def _type_of(spec: dict) -> str:
    if "$ref" in spec:
        return spec["$ref"].rsplit("/", 1)[-1]
    if "anyOf" in spec:
        return " or ".join(_type_of(s) for s in spec["anyOf"])
    if "enum" in spec:
        return " / ".join(map(str, spec["enum"]))
    if spec.get("type") == "array":
        return f"list of {_type_of(spec.get('items', {}))}"
    return spec.get("type", "any")


def _config_page() -> str:
    schema = RunConfig.model_json_schema()
    models = {"RunConfig": schema, **schema.get("$defs", {})}
    lines = ["# Run configuration", "",
             "A training run is one YAML file (`ecgscope train CONFIG.yaml`, or `es.train(config=...)`). This page "
             "is generated from the pydantic models that validate it; `ecgscope config schema` prints the same as "
             "JSON Schema. Unknown keys are refused.", ""]
    for name, model in models.items():
        lines += [f"## `{name}`", "", (model.get("description") or "").strip(), "",
                  "| key | type | default | what it does |", "| --- | --- | --- | --- |"]
        required = set(model.get("required", []))
        for key, spec in model.get("properties", {}).items():
            default = "required" if key in required else f"`{json.dumps(spec.get('default'))}`"
            text = (spec.get("description") or "").replace("|", "\\|").replace("\n", " ")
            lines.append(f"| `{key}` | {_type_of(spec)} | {default} | {text} |")
        lines.append("")
    lines += ["## JSON Schema", "", "```json", json.dumps(schema, indent=2), "```", ""]
    return "\n".join(lines)


def _results_page() -> str:
    lines = ["# Result tables", "",
             "Every file in `benchmarks/results/`, as the benchmark that wrote it left it (the script is named in "
             "[Benchmarks](index.md)).", ""]
    for path in sorted((ROOT / "benchmarks" / "results").glob("*.csv")):
        with path.open(newline="") as handle:
            rows = list(csv.reader(handle))
        if not rows:
            continue
        lines += [f"## `{path.name}`", "", "| " + " | ".join(rows[0]) + " |",
                  "| " + " | ".join("---" for _ in rows[0]) + " |"]
        lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows[1:60]]
        if len(rows) > 61:
            lines.append(f"\n{len(rows) - 61} more rows in the file.")
        lines.append("")
    return "\n".join(lines)


for page, text in (("reference/cli.md", _cli_page()), ("reference/config.md", _config_page()),
                   ("benchmarks/results.md", _results_page()),
                   ("changelog.md", (ROOT / "CHANGELOG.md").read_text())):
    with mkdocs_gen_files.open(page, "w") as handle:
        handle.write(text)
