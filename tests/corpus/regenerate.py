#!/usr/bin/env python3
"""Writes expected.tsv: for every document under tests/corpus/, the number
of entries Python's feedparser reads from it (the lenient reader SPEC §7
compares veille with). Run it after adding or removing documents:

    pip install feedparser==6.0.14
    python3 tests/corpus/regenerate.py

Never edit expected.tsv by hand. Documents veille refuses on purpose are
listed, with the reason, in refused.tsv (a decision, kept by hand).
"""
import os
import sys

import feedparser

here = os.path.dirname(os.path.abspath(__file__))
rows = []
for folder, _, files in os.walk(here):
    for name in files:
        if not name.endswith((".xml", ".rss", ".atom", ".rdf")):
            continue
        path = os.path.join(folder, name)
        entries = len(feedparser.parse(path).entries)
        rows.append((os.path.relpath(path, here), entries))
rows.sort()
with open(os.path.join(here, "expected.tsv"), "w") as out:
    out.write(f"# written by regenerate.py with feedparser {feedparser.__version__}; do not edit\n")
    for path, entries in rows:
        out.write(f"{path}\t{entries}\n")
print(f"{len(rows)} documents", file=sys.stderr)
