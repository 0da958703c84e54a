#!/bin/sh
# Assembles the tokenizer benchmark corpus from text found on a Debian
# machine (nothing is downloaded): bench/data/en.txt, English (the Vim
# manual, package vim-runtime) and bench/data/zh.txt, Chinese (the Simplified
# and Traditional Chinese test pages of the chardet library, converted to
# UTF-8 with HTML/XML tags removed, plus the zh_CN/zh_TW manual pages).
# Pass other directories to use instead as EN_DIR / ZH_DIR (UTF-8 *.txt).
set -eu
cd "$(dirname "$0")"
mkdir -p data
EN_DIR=${EN_DIR:-/usr/share/vim/vim90/doc}
CHARDET=${CHARDET:-$(find / -xdev -type d -path '*chardet/tests' 2>/dev/null | head -n 1)}
if [ -n "${ZH_DIR:-}" ]; then
    cat "$ZH_DIR"/*.txt > data/zh.txt
else
    : > data/zh.txt
    if [ -n "$CHARDET" ]; then
        for f in "$CHARDET"/GB2312/*; do iconv -f GB18030 -t UTF-8 "$f" 2>/dev/null || true; done >> data/zh.txt
        for f in "$CHARDET"/Big5/*; do iconv -f BIG5-HKSCS -t UTF-8 "$f" 2>/dev/null || true; done >> data/zh.txt
    fi
    for f in /usr/share/man/zh_CN/*/* /usr/share/man/zh_TW/*/*; do [ -f "$f" ] && zcat -f "$f"; done >> data/zh.txt 2>/dev/null || true
    sed -i -e 's/<[^>]*>//g' -e 's/&[a-z#0-9]*;//g' data/zh.txt
    grep -P '\p{Han}.*\p{Han}.*\p{Han}' data/zh.txt > data/zh.lines && mv data/zh.lines data/zh.txt  # lines with 3+ Han characters
fi
cat "$EN_DIR"/*.txt > data/en.txt
ls -l data/en.txt data/zh.txt
