#!/usr/bin/env python3
"""Every relative link in the Markdown files (English and Japanese)
resolves to a file, and to a heading when it names one; every Japanese page
names the English page it translates and a commit of this repository it was
last synchronised with. Exit 1 with the list of problems."""
import re
import subprocess
import sys
import unicodedata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^(```|~~~)")


def markdown_files():
    for p in sorted(ROOT.rglob("*.md")):
        rel = p.relative_to(ROOT)
        if rel.parts[0] in {"target", ".venv-moto", ".venv-ci", "fuzz"} or rel.parts[0].startswith("."):
            continue
        yield p


def slug(heading):
    """GitHub's anchor for a heading: lower case, punctuation dropped
    (letters of any script kept), spaces to hyphens."""
    text = heading.strip().lower()
    out = []
    for ch in text:
        cat = unicodedata.category(ch)
        if ch in " -":
            out.append("-")
        elif ch == "_" or cat[0] in "LN" or cat == "Mn":
            out.append(ch)
    return "".join(out)


def anchors(path):
    found, in_code = set(), False
    for line in path.read_text(encoding="utf-8").splitlines():
        if FENCE.match(line):
            in_code = not in_code
        elif not in_code and line.startswith("#"):
            found.add(slug(line.lstrip("#").replace("`", "")))
    return found


def links(path):
    in_code = False
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if FENCE.match(line):
            in_code = not in_code
            continue
        if in_code:
            continue
        for target in LINK.findall(line):
            yield n, target


def main():
    problems = []
    for md in markdown_files():
        for n, target in links(md):
            if re.match(r"^[a-z]+:", target):
                continue  # http:, https:, mailto:
            file_part, _, anchor = target.partition("#")
            dest = md if not file_part else (md.parent / file_part).resolve()
            where = f"{md.relative_to(ROOT)}:{n}"
            if not dest.exists():
                problems.append(f"{where}: {target}: no such file")
            elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
                problems.append(f"{where}: {target}: no heading #{anchor}")
    japanese = [ROOT / "README.ja.md", *sorted((ROOT / "docs" / "ja").glob("*.md"))]
    for page in japanese:
        head = "\n".join(page.read_text(encoding="utf-8").splitlines()[:5])
        m = re.search(r"英語版: \[[^\]]+\]\(([^)]+)\)（最後に同期したコミット: ([0-9a-f]{7,40})）", head)
        rel = page.relative_to(ROOT)
        if not m:
            problems.append(f"{rel}: does not name its English page and the commit it was synchronised with")
            continue
        if not (page.parent / m.group(1)).exists():
            problems.append(f"{rel}: English page {m.group(1)} does not exist")
        ok = subprocess.run(["git", "-C", str(ROOT), "cat-file", "-e", m.group(2) + "^{commit}"],
                            capture_output=True).returncode == 0
        if not ok:
            problems.append(f"{rel}: commit {m.group(2)} is not in this repository")
    for p in problems:
        print(f"link-check: {p}")
    print(f"link-check: {len(problems)} problem(s) in {sum(1 for _ in markdown_files())} Markdown files, {len(japanese)} Japanese pages")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
