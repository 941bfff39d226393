"""The documentation against the code: make targets, links, config keys, commands.

Fast and offline: reads README.md, docs/*.md, config/README.md and
CHANGELOG.md, the Makefile and the config schemas (`bpnet_core.config`).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from bpnet_core import config as cfg
from bpnet_core.cli import build_parser

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
CONFIGURATION = REPO / "docs" / "configuration.md"
PAGES = sorted([README, REPO / "config" / "README.md", REPO / "CHANGELOG.md",
                *(REPO / "docs").glob("*.md")])


def text(path: Path) -> str:
    return path.read_text()


def code_spans(markdown: str) -> list[str]:
    """Inline code spans (which may run over a line break) and the lines of fenced code blocks."""
    spans, prose, fenced = [], [], False
    for line in markdown.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
            prose.append("")
        elif fenced:
            spans.append(line)
        else:
            prose.append(line)
    for paragraph in "\n".join(prose).split("\n\n"):
        spans.extend(" ".join(span.split()) for span in re.findall(r"`([^`]+)`", paragraph))
    return spans


def makefile_targets() -> set[str]:
    targets = set()
    for line in text(REPO / "Makefile").splitlines():
        match = re.match(r"^([A-Za-z][\w.-]*(?:\s+[A-Za-z][\w.-]*)*)\s*:(?!=)", line)
        if match and not line.startswith((".PHONY", "\t")):
            targets.update(match.group(1).split())
    return targets


# --------------------------------------------------------------------------
# Pages


def test_every_docs_page_exists_and_starts_with_one_line_saying_what_it_covers():
    pages = sorted((REPO / "docs").glob("*.md"))
    assert len(pages) >= 8
    for page in [*pages, REPO / "config" / "README.md", REPO / "CHANGELOG.md"]:
        lines = text(page).splitlines()
        assert lines[0].startswith("# "), page
        assert lines[1] == "" and lines[2].strip() and lines[3] == "", \
            f"{page.name}: the title is followed by one line saying what the page covers"


def test_readme_is_a_front_door():
    lines = text(README).splitlines()
    assert len(lines) <= 250, f"README.md has {len(lines)} lines"
    linked = set(re.findall(r"\]\((docs/[\w.-]+\.md)", text(README)))
    pages = {f"docs/{page.name}" for page in (REPO / "docs").glob("*.md")}
    assert pages <= linked, f"docs pages the README does not link: {sorted(pages - linked)}"


# --------------------------------------------------------------------------
# make targets


def test_make_targets_named_in_the_docs_exist():
    targets = makefile_targets()
    assert {"demo", "demo-atac", "test", "install"} <= targets  # the parser reads the Makefile
    named = {}
    for page in PAGES:
        for span in code_spans(text(page)):
            for target in re.findall(r"(?:^|[\s;(&|])make\s+([a-z][\w-]*)", span):
                named.setdefault(target, page.name)
    assert {"demo", "test", "demo-atac"} <= named.keys()
    missing = {target: page for target, page in named.items() if target not in targets}
    assert not missing, f"make targets named in the docs but not in the Makefile: {missing}"


def test_make_test_runs_pytest_quietly_as_the_readme_says():
    recipe = re.search(r"^test:.*\n((?:\t.*\n)+)", text(REPO / "Makefile"), re.M)
    assert recipe and "pytest -q" in recipe.group(1)
    assert "`make test` runs `pytest -q`" in text(README)


# --------------------------------------------------------------------------
# Links


def github_anchor(heading: str) -> str:
    anchor = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return anchor.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    found, fenced = set(), False
    for line in text(path).splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and line.startswith("#"):
            found.add(github_anchor(line.lstrip("#")))
    return found


def links(path: Path) -> list[str]:
    markdown = re.sub(r"```.*?```", "", text(path), flags=re.S)
    return re.findall(r"\]\(([^)\s]+)\)", markdown)


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(REPO)))
def test_relative_links_point_to_existing_files_and_headings(page):
    checked, broken = 0, []
    for link in links(page):
        if re.match(r"[a-z]+:", link):
            continue  # https:, mailto:
        target, _, anchor = link.partition("#")
        path = (page.parent / target).resolve() if target else page
        checked += 1
        if not path.exists():
            broken.append(f"{link}: no file {path}")
        elif anchor and path.suffix == ".md" and anchor not in anchors(path):
            broken.append(f"{link}: no heading '#{anchor}' in {path.name}")
    assert not broken, f"{page.name}: " + "; ".join(broken)
    if page in (README, CONFIGURATION):
        assert checked >= 5


def test_config_files_named_in_the_docs_exist():
    named = set()
    for page in PAGES:
        for span in code_spans(text(page)):
            named.update(re.findall(r"\bconfig/[\w./-]+\.(?:json|yaml|tsv)\b", span))
    named = {path for path in named if not Path(path).name.startswith("my")}  # placeholders
    assert "config/demo.json" in named and "config/ENCSR000BGQ.json" in named
    missing = sorted(path for path in named if not (REPO / path).is_file())
    assert not missing, f"config files named in the docs that do not exist: {missing}"


def test_profiles_named_in_the_docs_exist():
    named = set()
    for page in PAGES:
        for span in code_spans(text(page)):
            named.update(re.findall(r"--profile\s+([\w./-]+)", span))
    assert "profiles/slurm" in named
    for profile in named - {"/path/to/repo/profiles/slurm"}:
        assert (REPO / profile / "config.yaml").is_file(), profile


def test_bpnet_core_commands_in_the_docs_exist():
    parser = build_parser()
    commands = set(next(action for action in parser._actions if action.dest == "command").choices)
    named = set()
    for page in PAGES:
        for span in code_spans(text(page)):
            named.update(re.findall(r"\bbpnet-core\s+([a-z][\w-]*)", span))
    assert {"validate", "fit", "negatives"} <= named
    assert named <= commands, f"bpnet-core commands named in the docs that do not exist: {named - commands}"


# --------------------------------------------------------------------------
# Config keys


def schema_keys() -> set[str]:
    """Every key a user may write in a config: the fields of every config model and their blocks."""
    keys, todo, seen = set(), [*cfg.STEP_MODELS.values(), *cfg.PIPELINE_MODELS.values()], set()
    while todo:
        model = todo.pop()
        if model in seen:
            continue
        seen.add(model)
        for key, info in model.model_fields.items():
            keys.add(key)
            for inner in getattr(info.annotation, "__args__", (info.annotation,)):
                if isinstance(inner, type) and issubclass(inner, BaseModel):
                    todo.append(inner)
    return keys


def key_table_rows() -> list[tuple[list[str], list[str]]]:
    """(keys, cells) of each row of the tables headed `| key |` in docs/configuration.md."""
    rows, in_table = [], False
    for line in text(CONFIGURATION).splitlines():
        if not line.startswith("|"):
            in_table = False
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if cells[0] == "key":
            in_table = True
        elif in_table and not set(cells[0]) <= set("-: "):
            rows.append((re.findall(r"`([a-z_]+)`", cells[0]), cells))
    return rows


def test_the_key_tables_exist_and_are_read():
    rows = key_table_rows()
    assert len(rows) >= 50
    assert all(keys for keys, _ in rows), [cells[0] for keys, cells in rows if not keys]


def test_every_documented_key_is_a_config_key():
    documented = {key for keys, _ in key_table_rows() for key in keys}
    unknown = documented - schema_keys()
    assert not unknown, f"keys in docs/configuration.md that no config accepts: {sorted(unknown)}"


def test_every_config_key_is_documented():
    documented = {key for keys, _ in key_table_rows() for key in keys}
    undocumented = schema_keys() - documented
    assert not undocumented, f"config keys missing from docs/configuration.md: {sorted(undocumented)}"


def _defaults() -> dict[str, list]:
    """Key -> the defaults it has in the config models (`"required"` where it has none)."""
    defaults: dict[str, list] = {}
    models = [value for value in vars(cfg).values()
              if isinstance(value, type) and issubclass(value, cfg.StepConfig)
              and value.__module__.startswith(cfg.__name__) and value not in cfg.PIPELINE_MODELS.values()
              # not the blocks' models, whose every key defaults to null (inherit)
              and any(info.default is not None for info in value.model_fields.values())]
    for model in models:
        for key, info in model.model_fields.items():
            default = "required" if info.default is PydanticUndefined else info.default
            defaults.setdefault(key, []).append(default)
    return defaults


def _literal(cell: str):
    cell = cell.strip()
    if cell == "required":
        return "required"
    if re.fullmatch(r"`[^`]*`", cell):
        return cell.strip("`")
    try:
        return json.loads(cell.replace(",", "") if re.fullmatch(r"\d{1,3}(,\d{3})+", cell) else cell)
    except json.JSONDecodeError:
        raise ValueError(cell) from None


def test_documented_defaults_are_the_code_defaults():
    """Each plain default in the key tables is the key's default in some config model."""
    defaults, checked, wrong = _defaults(), 0, []
    for keys, cells in key_table_rows():
        main = re.sub(r"\([^)]*\)", "", cells[1].split(";")[0]).strip()
        parts = [part.strip() for part in main.split(",")] if len(keys) > 1 else [main]
        if len(parts) != len(keys):
            continue
        for key, part in zip(keys, parts):
            try:
                value = _literal(part)
            except ValueError:
                continue  # prose, e.g. "from `profile_filename`"
            checked += 1
            if value not in defaults.get(key, []):
                wrong.append(f"{key}: documented {part}, code {defaults.get(key)}")
    assert checked >= 50
    assert not wrong, "; ".join(wrong)


def test_the_keys_that_rerun_nothing_are_the_runtime_keys():
    """The keys documented as "reruns nothing" are those Snakemake's rerun check leaves out."""
    documented = {key for keys, cells in key_table_rows() if "reruns nothing" in cells[-1] for key in keys}
    assert documented == set(cfg.RUNTIME_KEYS)
    page = text(CONFIGURATION)
    for key in cfg.RUNTIME_KEYS:
        assert f"`{key}`" in page.split("### What reruns", 1)[1].split("##", 1)[0], key


# --------------------------------------------------------------------------
# Statements found untrue before


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(REPO)))
def test_no_statement_known_to_be_untrue(page):
    flat = " ".join(text(page).split())
    for pattern in (
        r"\bnot yet\b",                                    # negatives, BAM conversion, peak calling all exist
        r"make test`?[^.]{0,80}under 10 min",              # measured up to 11 min 26 s under load
        r"only `verbose` or `device`",                     # fast_path reruns nothing too
        r"`verbose` or `device` reruns nothing",
        r"same outputs to float rounding, so changing it", # fast_path changes training trajectories
    ):
        assert not re.search(pattern, flat, re.I), f"{page.name}: {pattern}"
