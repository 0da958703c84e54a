// hf_encode.mjs: encodes every document of a JSONL file with tokenizers.js
// (@huggingface/tokenizers, an independent implementation of HF
// tokenizer.json) and writes one line of space-separated ids per document.
// Used by tests/test_tokenizer_hf.c and bench/tokenizer_bench.sh.
// usage: node hf_encode.mjs NODE_MODULES TOKENIZER_DIR INPUT.jsonl OUTPUT.txt
import { readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join, resolve } from "node:path";

const [modules, dir, input, output] = process.argv.slice(2);
const require = createRequire(join(resolve(modules), "package.json"));
const { Tokenizer } = require("@huggingface/tokenizers");
const json = JSON.parse(readFileSync(join(dir, "tokenizer.json"), "utf8"));
const config = JSON.parse(readFileSync(join(dir, "tokenizer_config.json"), "utf8"));
const tokenizer = new Tokenizer(json, config);
const lines = [];
for (const line of readFileSync(input, "utf8").split("\n")) {
  if (!line.trim()) continue;
  const { ids } = tokenizer.encode(JSON.parse(line).text, { add_special_tokens: false });
  lines.push(ids.join(" "));
}
writeFileSync(output, lines.join("\n") + "\n");
