#!/usr/bin/env python3
"""Rebuilds data/corpus.jsonl, the bilingual corpus `make demo` trains on:
- English: the Python documentation's topic pages that Debian ships in
  libpython3.11-stdlib (/usr/lib/python3.11/pydoc_data/topics.py, the text
  behind `help('topic')`; Python Software Foundation License 2);
- Chinese: the Tang and Song poems of Debian's fortunes-zh package
  (/usr/share/games/fortunes/tang300 and song100, GPL-3.0+ as packaged; the
  poems themselves are centuries old), with the package's ANSI colour codes
  removed.
Documents are interleaved (each topic followed by a few poems) so that the
validation split, the stream's last 5%, holds both languages.
One JSON line per document: {"text", "source" (python-docs, tang300, song100), "lang"
(en, zh), and "topic" for the English pages}.
Usage: make_corpus.py [OUT] [FORTUNES_DIR]  (apt-get download fortunes-zh and
dpkg -x it if the package is not installed)."""
import json
import re
import sys

sys.path.insert(0, "/usr/lib/python3.11")
from pydoc_data import topics  # noqa: E402

# -h/--help prints this file's description; another --option is refused (not taken for a path)
if any(a in ("-h", "--help") for a in sys.argv[1:]):
    sys.exit(print(__doc__))
for option in (a for a in sys.argv[1:] if a.startswith("--")):
    sys.exit(f"{sys.argv[0]}: unknown option {option} (--help)")

out_path = sys.argv[1] if len(sys.argv) > 1 else "data/corpus.jsonl"
fortunes = sys.argv[2] if len(sys.argv) > 2 else "/usr/share/games/fortunes"
ansi = re.compile(r"\x1b\[[0-9;]*m")

english = [{"text": topics.topics[name], "source": "python-docs", "lang": "en", "topic": name}
           for name in sorted(topics.topics)]
chinese = []
for book in ("tang300", "song100"):
    with open(f"{fortunes}/{book}", encoding="utf-8") as f:
        for poem in f.read().split("\n%\n"):
            text = ansi.sub("", poem).strip()
            if text:
                chinese.append({"text": text + "\n", "source": book, "lang": "zh"})

# Poem i follows topic i * len(english) // len(chinese): spread evenly to the end.
after = [[] for _ in english]
for i, poem in enumerate(chinese):
    after[i * len(english) // len(chinese)].append(poem)
with open(out_path, "w", encoding="utf-8") as out:
    for doc, poems in zip(english, after):
        for d in [doc] + poems:
            out.write(json.dumps(d, ensure_ascii=False) + "\n")
