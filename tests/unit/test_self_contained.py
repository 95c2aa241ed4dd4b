"""The repository documents itself: no tracked file points at the project's workspace outside it
(the contract's old location in a sibling folder, or absolute paths of the machines it was built on).
The reference for users is docs/API.md."""

from __future__ import annotations

import re
import subprocess

import pytest

from local.template import ROOT

# Written so that this file does not match itself: a parent folder's `shared`, or the workspace root.
OUTSIDE = re.compile(r"\.\./shared|/wor[k]/")


def _tracked() -> list[str]:
    done = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True)
    if done.returncode != 0:
        pytest.skip("not a git checkout: no list of tracked files")
    return [name for name in done.stdout.decode().split("\0") if name]


def test_no_tracked_file_points_outside_the_repository():
    found = []
    for name in _tracked():
        path = ROOT / name
        if not path.is_file():
            continue  # deleted in the working tree
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue  # binary
        for number, line in enumerate(text.splitlines(), 1):
            if OUTSIDE.search(line):
                found.append(f"{name}:{number}: {line.strip()[:120]}")
    assert not found, "references outside the repository (point at docs/API.md instead):\n" + "\n".join(found)


def test_the_check_sees_such_a_reference():
    assert OUTSIDE.search("the contract is ../" + "shared/spec/API.md")
    assert OUTSIDE.search("see /" + "work/main/README.md")
    assert not OUTSIDE.search("docs/API.md, ../docs/DESIGN.md, /workspace")


LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)\s]*)?\)")


def _unresolved_links(name: str, text: str) -> list[str]:
    """Relative Markdown links of a file that do not name a file or folder inside the repository."""
    found = []
    for match in LINK.finditer(text):
        target = match.group(1)
        if re.match(r"[a-z][a-z0-9+.-]*:", target):
            continue  # a URL (https:, mailto:)
        resolved = ((ROOT / name).parent / target).resolve()
        if not resolved.is_relative_to(ROOT.resolve()) or not resolved.exists():
            found.append(f"{name}: {target}")
    return found


def test_every_relative_link_of_the_docs_resolves_inside_the_repository():
    found = [problem for name in _tracked() if name.endswith(".md")
             for problem in _unresolved_links(name, (ROOT / name).read_text(encoding="utf-8"))]
    assert not found, "links to nothing inside the repository:\n" + "\n".join(found)


def test_the_link_check_sees_a_broken_or_outside_link():
    assert _unresolved_links("README.md", "see [the contract](../outside/API.md)")
    assert _unresolved_links("docs/DESIGN.md", "see [gone](NOWHERE.md#x)")
    assert not _unresolved_links("docs/DESIGN.md", "[api](API.md#errors), [readme](../README.md), [w](https://x.y/z)")
