// tokenizer_js_bench.mjs: single-thread encode throughput of the npm
// tokenizers that run here, on the same chunks as tokenizer_bench.c (at
// most 64 KiB, ending at a line break):
// tokenizers.js (@huggingface/tokenizers) with tnllm's tokenizer.json, and
// the WASM build of tiktoken (cl100k_base, a different vocabulary: its
// speed is the reference, not its ids). Times are CPU seconds of this
// process. Prints tab-separated rows: implementation, input, MB, MB/s, ids.
// usage: node tokenizer_js_bench.mjs NODE_MODULES TOKENIZER_DIR FILE...
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { basename, join, resolve } from "node:path";

const [modules, dir, ...files] = process.argv.slice(2);
const require = createRequire(join(resolve(modules), "package.json"));
const { Tokenizer } = require("@huggingface/tokenizers");
const { get_encoding } = require("tiktoken");
const tokenizer = new Tokenizer(
  JSON.parse(readFileSync(join(dir, "tokenizer.json"), "utf8")),
  JSON.parse(readFileSync(join(dir, "tokenizer_config.json"), "utf8")),
);
const tiktoken = get_encoding("cl100k_base");

function cpuSeconds() {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

function time(name, file, bytes, lines, encode) {
  const start = cpuSeconds();
  let ids = 0;
  for (const line of lines) ids += encode(line).length;
  const seconds = cpuSeconds() - start;
  console.log(`${name}\t${basename(file)}\t${(bytes / 1e6).toFixed(2)}\t${(bytes / 1e6 / seconds).toPrecision(4)}\t${ids}`);
}

function chunks(data) {
  const out = [];
  for (let at = 0; at < data.length; ) {
    let end = Math.min(at + 65536, data.length);
    if (end < data.length) {
      const nl = data.lastIndexOf(10, end - 1);
      if (nl >= at) end = nl + 1;
    }
    out.push(data.subarray(at, end).toString("utf8"));
    at = end;
  }
  return out;
}

for (const file of files) {
  const data = readFileSync(file);
  const lines = chunks(data);
  time("tokenizers.js", file, data.length, lines, (s) => tokenizer.encode(s, { add_special_tokens: false }).ids);
  time("tiktoken (WASM)", file, data.length, lines, (s) => tiktoken.encode(s));
}
tiktoken.free();
