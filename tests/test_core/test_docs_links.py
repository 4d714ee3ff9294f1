"""The documentation stays true to the repository: every relative link in README.md and
docs/*.md names a file of the checkout, never one outside it, and every ``#anchor`` a heading
of its target."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

FENCE = re.compile(r"^ {0,3}(```|~~~).*?^ {0,3}\1", re.MULTILINE | re.DOTALL)
INLINE_CODE = re.compile(r"`[^`\n]*`")
INLINE_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_DEFINITION = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)", re.MULTILINE)
HEADING = re.compile(r"^ {0,3}#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)
SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def prose(markdown: str) -> str:
    """``markdown`` without code blocks and code spans, where brackets are not links."""
    return INLINE_CODE.sub("", FENCE.sub("", markdown))


def link_targets(markdown: str) -> list[str]:
    text = prose(markdown)
    return [*INLINE_LINK.findall(text), *REFERENCE_DEFINITION.findall(text)]


def heading_anchors(markdown: str) -> set[str]:
    """The anchors GitHub gives the headings: lower case, punctuation dropped, spaces as
    hyphens, ``-1``, ``-2``... after repeats."""
    seen: Counter[str] = Counter()
    anchors = set()
    for title in HEADING.findall(FENCE.sub("", markdown)):
        plain = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", title).replace("`", "")
        slug = re.sub(r"[^\w\- ]", "", plain.lower()).replace(" ", "-")
        anchors.add(f"{slug}-{seen[slug]}" if seen[slug] else slug)
        seen[slug] += 1
    return anchors


def broken_links(document: Path, root: Path = ROOT) -> list[str]:
    """One sentence per relative link of ``document`` that does not hold."""
    markdown = document.read_text(encoding="utf-8")
    problems = []
    for target in link_targets(markdown):
        if SCHEME.match(target):
            continue  # a web address, not a file of the repository
        path_part, _, anchor = target.partition("#")
        resolved = (document.parent / path_part).resolve() if path_part else document
        if not resolved.is_relative_to(root.resolve()):
            problems.append(f"{target}: outside the repository")
            continue
        if not resolved.exists():
            problems.append(f"{target}: no such file")
            continue
        if anchor and resolved.suffix == ".md":
            anchors = heading_anchors(resolved.read_text(encoding="utf-8"))
            if anchor not in anchors:
                problems.append(f"{target}: no heading with that anchor")
    return problems


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: path.name)
def test_every_relative_link_names_a_file_and_heading_of_the_repository(document: Path) -> None:
    assert broken_links(document) == []


def test_the_readme_links_to_the_contract() -> None:
    targets = link_targets((ROOT / "README.md").read_text(encoding="utf-8"))
    assert "docs/contract.md" in targets
    assert "docs/contract.md#merge-rules" in targets


def test_the_checker_finds_missing_files_anchors_and_links_out_of_the_repository(
    tmp_path: Path,
) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text(
        "# Merge rules\n\n## HTTP: `streams serve`\n\n## Merge rules\n", encoding="utf-8"
    )
    readme = tmp_path / "README.md"
    readme.write_text(
        "[ok](docs/a.md#merge-rules) [repeat](docs/a.md#merge-rules-1) "
        "[code](docs/a.md#http-streams-serve) [web](https://example.com/x.md) [self](#top)\n"
        "[gone](docs/b.md) [anchor](docs/a.md#nothing) [out](../elsewhere/DESIGN.md)\n"
        "`[not a link](nowhere.md)`\n\n# Top\n\n```\n[in a block](nowhere.md)\n```\n",
        encoding="utf-8",
    )
    assert broken_links(readme, root=tmp_path) == [
        "docs/b.md: no such file",
        "docs/a.md#nothing: no heading with that anchor",
        "../elsewhere/DESIGN.md: outside the repository",
    ]
