#!/usr/bin/env python3
"""Builds the larger English corpus of the GPU quality tables
(results/gpu/, scripts/device_experiments.sh): about 19 MB of documentation
prose from two Debian packages, both freely redistributable:
- python3.11-doc: the reStructuredText sources of the Python 3.11
  documentation (html/_sources/**/*.rst.txt: tutorial, library and language
  reference, HOWTOs, FAQs, What's New), one document per page, as written
  (reST markup kept). PSF License Agreement version 2, as LICENSE-PSF.txt.
- perl-doc: Perl 5.36's manual pages (pod/*.pod) rendered to plain text by
  pod2text, one document per page; perltoc and perluniprops left out (a table
  of contents and Unicode property tables, not prose). GPL-1+ or Artistic.
Plus the Tang and Song poems of the bundled corpus (data/corpus.jsonl,
source tang300/song100), so the corpus keeps some Chinese: ten poems a
document, since most poems alone are shorter than the cleaner's 100
characters.

The documents are shuffled with a fixed seed, so the validation split that
`tnllm train` holds out (the last 5% of the token stream) samples every
source; then `tnllm data clean` (§4.1 rules and quality filters) and
`tnllm data dedup` run over them. One JSON line per document: {"text",
"source" (python-docs | perl-docs | tang300 | song100), "lang", "page"}.

usage: data/make_large_corpus.py OUT [PACKAGE_ROOT]
  PACKAGE_ROOT: a folder holding the two packages unpacked (dpkg -x) into
  python3.11-doc/ and perl-doc/; without it they are fetched with
  `apt-get download` into a temporary folder. Needs ./tnllm (make) and
  pod2text (perl)."""
import glob
import json
import os
import random
import subprocess
import sys
import tempfile

# -h/--help prints this file's description; another --option is refused (not taken for a path)
if any(a in ("-h", "--help") for a in sys.argv[1:]):
    sys.exit(print(__doc__))
for option in (a for a in sys.argv[1:] if a.startswith("--")):
    sys.exit(f"{sys.argv[0]}: unknown option {option} (--help)")

PACKAGES = ("python3.11-doc", "perl-doc")
SKIPPED_PODS = ("perltoc.pod", "perluniprops.pod")


def unpack(root):
    """Fetches and unpacks the packages into root."""
    for package in PACKAGES:
        subprocess.run(["apt-get", "download", package], cwd=root, check=True)
        (deb,) = glob.glob(os.path.join(root, f"{package}_*.deb"))
        subprocess.run(["dpkg", "-x", deb, os.path.join(root, package)], check=True)


def python_pages(root):
    sources = os.path.join(root, "python3.11-doc/usr/share/doc/python3.11/html/_sources")
    paths = sorted(glob.glob(os.path.join(sources, "**/*.rst.txt"), recursive=True))
    if not paths:
        sys.exit(f"make_large_corpus.py: no *.rst.txt under {sources} (python3.11-doc unpacked there?)")
    for path in paths:
        with open(path, encoding="utf-8") as f:
            yield {"text": f.read(), "source": "python-docs", "lang": "en",
                   "page": os.path.relpath(path, sources)[:-len(".rst.txt")]}


def perl_pages(root):
    folders = glob.glob(os.path.join(root, "perl-doc/usr/share/perl/5.*/pod"))
    if len(folders) != 1:
        sys.exit(f"make_large_corpus.py: {len(folders)} folders perl-doc/usr/share/perl/5.*/pod under {root}, "
                 "expected one (perl-doc unpacked there?)")
    (pods,) = folders
    for path in sorted(glob.glob(os.path.join(pods, "*.pod"))):
        if os.path.basename(path) in SKIPPED_PODS:
            continue
        text = subprocess.run(["pod2text", path], check=True, capture_output=True).stdout
        yield {"text": text.decode("utf-8", errors="replace"), "source": "perl-docs", "lang": "en",
               "page": os.path.basename(path)[:-len(".pod")]}


def poems(bundled, per_document=10):
    books = {}
    with open(bundled, encoding="utf-8") as f:
        for line in f:
            document = json.loads(line)
            if document["lang"] == "zh":
                books.setdefault(document["source"], []).append(document["text"])
    for book, texts in books.items():
        for first in range(0, len(texts), per_document):
            yield {"text": "\n".join(texts[first:first + per_document]), "source": book, "lang": "zh",
                   "page": f"{book} {first + 1}-{min(first + per_document, len(texts))}"}


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__.split("\n\n")[-1])
    out = sys.argv[1]
    with tempfile.TemporaryDirectory() as work:
        root = sys.argv[2] if len(sys.argv) == 3 else work
        if len(sys.argv) == 2:
            unpack(root)
        documents = list(python_pages(root)) + list(perl_pages(root)) + list(poems("data/corpus.jsonl"))
        random.Random(1234).shuffle(documents)
        raw = os.path.join(work, "raw.jsonl")
        with open(raw, "w", encoding="utf-8") as f:
            for document in documents:
                f.write(json.dumps(document, ensure_ascii=False) + "\n")
        cleaned = os.path.join(work, "clean.jsonl")
        subprocess.run(["./tnllm", "data", "clean", raw, "-o", cleaned], check=True)
        subprocess.run(["./tnllm", "data", "dedup", cleaned, "-o", out], check=True)


if __name__ == "__main__":
    main()
