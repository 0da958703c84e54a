/* Malformed inputs fail with a message that names the file and the
 * problem, never a crash or a silent default: truncated or corrupt
 * safetensors, a bad index, wrong shape, wrong dtype, missing or unexpected tensors,
 * bad config.json fields (or a directory named config.json), bad token
 * shards. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/shard.h"
#include "model/transnormer.h"
#include "test.h"
#include "util/fileio.h"

static char dir[512];

static void write_text(const char *name, const char *text) {
    char path[1024];
    TnError err;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (tn_write_file(path, text, strlen(text), &err)) tn_die("%s", err.msg);
}

/* A safetensors file with the given JSON header and data_len bytes of data. */
static void write_safetensors(const char *name, const char *header, size_t data_len) {
    size_t hlen = strlen(header), total = 8 + hlen + data_len;
    unsigned char *buf = calloc(1, total);
    for (int i = 0; i < 8; i++) buf[i] = (unsigned char)((uint64_t)hlen >> (8 * i));
    memcpy(buf + 8, header, hlen);
    char path[1024];
    TnError err;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (tn_write_file(path, buf, total, &err)) tn_die("%s", err.msg);
    free(buf);
}

/* A one-layer model: V=16, D=8, H=2, G=12, LRPE on layer 0. */
static const char *config_json =
    "{\"model_type\": \"transnormer\", \"vocab_size\": 16, \"decoder_embed_dim\": 8, \"hidden_dim\": 8,"
    " \"decoder_layers\": 1, \"decoder_attention_heads\": 2, \"glu_dim\": 12, \"linear_use_lrpe_list\": [1],"
    " \"no_scale_embedding\": false, \"linear_act_fun\": \"silu\", \"norm_type\": \"simplermsnorm\", \"bias\": false}";

/* The required fields of that model, to compose the bad-config cases. */
#define F_CORE "\"vocab_size\": 16, \"decoder_embed_dim\": 8, \"decoder_layers\": 1, \"no_scale_embedding\": false"
#define F_HEADS ", \"decoder_attention_heads\": 2"
#define F_GLU ", \"glu_dim\": 12"
#define F_LRPE ", \"linear_use_lrpe_list\": [1]"

typedef struct Entry {
    const char *name, *dtype, *shape;
    size_t bytes;
} Entry;

static const Entry good[] = {
    {"model.embed_tokens.weight", "F32", "[16,8]", 512},
    {"model.layers.0.token_mixer.qkvu_proj.weight", "F32", "[32,8]", 1024},
    {"model.layers.0.token_mixer.out_proj.weight", "F32", "[8,8]", 256},
    {"model.layers.0.token_mixer.lrpe.theta", "F32", "[2,1,4]", 32},
    {"model.layers.0.channel_mixer.l1.weight", "F32", "[12,8]", 384},
    {"model.layers.0.channel_mixer.l2.weight", "F32", "[12,8]", 384},
    {"model.layers.0.channel_mixer.l3.weight", "F32", "[8,12]", 384},
};
#define N_GOOD (int)(sizeof good / sizeof good[0])

/* Writes model.safetensors from `good`, with entry `replace` swapped for
 * *with (or dropped when with is NULL and replace >= 0). */
static void write_model(int replace, const Entry *with, const Entry *extra) {
    char header[4096];
    size_t n = (size_t)snprintf(header, sizeof header, "{"), offset = 0;
    for (int i = 0; i <= N_GOOD; i++) {
        const Entry *e = i < N_GOOD ? &good[i] : extra;
        if (i == replace) e = with;
        if (!e) continue;
        n += (size_t)snprintf(header + n, sizeof header - n, "%s\"%s\":{\"dtype\":\"%s\",\"shape\":%s,\"data_offsets\":[%zu,%zu]}",
                              offset ? "," : "", e->name, e->dtype, e->shape, offset, offset + e->bytes);
        offset += e->bytes;
    }
    snprintf(header + n, sizeof header - n, "}");
    write_safetensors("model.safetensors", header, offset);
}

/* Loads dir and checks that it fails with a message containing both needles. */
static void expect_failure(const char *what, const char *needle1, const char *needle2) {
    TnModel m;
    TnError err = {{0}};
    int rc = tn_model_load(&m, dir, &err);
    CHECK(rc != 0, "%s: loading should fail", what);
    if (rc == 0) { tn_model_free(&m); return; }
    CHECK(strstr(err.msg, needle1) && strstr(err.msg, needle2), "%s: message '%s' lacks '%s' / '%s'", what, err.msg,
          needle1, needle2);
    printf("%-28s -> %s\n", what, err.msg);
}

int main(int argc, char **argv) {
    (void)argc;
    make_temp_dir(dir, sizeof dir, "malformed");
    write_text("config.json", config_json);
    write_model(-1, NULL, NULL);
    TnModel m;
    TnError err;
    CHECK(tn_model_load(&m, dir, &err) == 0, "the well-formed model loads: %s", err.msg);
    tn_model_free(&m);

    /* safetensors structure */
    char path[1024];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    struct { uint64_t len; char json[2]; } past_end = {1u << 20, "{}"};
    CHECK(tn_write_file(path, &past_end, sizeof past_end, &err) == 0, "%s", err.msg);
    expect_failure("header length past EOF", "model.safetensors", "exceeds the file size");
    write_model(-1, NULL, NULL);
    FILE *fp = fopen(path, "rb");
    fseek(fp, 0, SEEK_END);
    long size = ftell(fp);
    fclose(fp);
    CHECK(truncate(path, size - 100) == 0, "truncate");
    expect_failure("truncated data", "model.safetensors", "file truncated?");
    write_safetensors("model.safetensors", "{\"model.embed_tokens.weight\": {\"dtype\": ", 0);
    expect_failure("bad JSON header", "model.safetensors", "not a valid JSON");
    write_safetensors("model.safetensors", "{}garbage!", 0);
    expect_failure("bytes after the header", "model.safetensors", "not a valid JSON");
    write_safetensors("model.safetensors", "", 0);
    expect_failure("empty header", "model.safetensors", "not a valid JSON");
    write_text("model.safetensors", "abc");
    expect_failure("3-byte file", "model.safetensors", "too short");
    remove(path);
    CHECK(mkdir(path, 0700) == 0, "mkdir %s", path);
    expect_failure("weights: a directory", "model.safetensors", "is a directory");
    CHECK(rmdir(path) == 0, "rmdir %s", path);
    write_safetensors("model.safetensors",
                      "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                      "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12);
    expect_failure("overlapping tensors", "model.safetensors", "overlap or gap");
    /* Offsets a double does not hold as a whole byte count, and shapes whose
     * element or byte counts overflow 64 bits (to a span of 0 bytes). */
    static const struct { const char *what, *header, *needle; size_t data_len; } bad_entries[] = {
        {"fractional offset", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8.5]}}",
         "tensor 'a' has invalid data_offsets", 8},
        {"offset beyond 2^53", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,1e30]}}",
         "tensor 'a' has invalid data_offsets", 8},
        {"element count overflow",
         "{\"a\":{\"dtype\":\"F32\",\"shape\":[1099511627776,16777216],\"data_offsets\":[0,0]}}",
         "tensor 'a' is larger than", 0},
        {"byte count overflow",
         "{\"a\":{\"dtype\":\"F32\",\"shape\":[2147483648,2147483648],\"data_offsets\":[0,0]}}",
         "tensor 'a' is larger than", 0},
    };
    for (size_t i = 0; i < sizeof bad_entries / sizeof bad_entries[0]; i++) {
        write_safetensors("model.safetensors", bad_entries[i].header, bad_entries[i].data_len);
        expect_failure(bad_entries[i].what, "model.safetensors", bad_entries[i].needle);
    }

    /* A sharded directory's index naming no file of this directory. */
    write_text("model.safetensors.index.json", "{\"weight_map\": {\"model.embed_tokens.weight\": 5}}");
    expect_failure("index: non-string file", "index.json", "entry 'model.embed_tokens.weight' must name a file");
    write_text("model.safetensors.index.json", "{\"weight_map\": {\"model.norm.weight\": \"../model.safetensors\"}}");
    expect_failure("index: file in another dir", "index.json", "entry 'model.norm.weight' must name a file");
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    remove(path);
    /* One tensor of the good model replaced (or dropped, or one added). */
    static const struct {
        const char *what;
        int replace;
        Entry with;
        const char *needle1, *needle2;
    } bad_tensors[] = {
        {"span != dtype x shape", 2, {"model.layers.0.token_mixer.out_proj.weight", "F32", "[8,8]", 200},
         "out_proj", "spans 200 bytes"},
        {"unknown dtype", 2, {"model.layers.0.token_mixer.out_proj.weight", "F8_E4M3", "[8,8]", 64},
         "model.safetensors", "unsupported dtype 'F8_E4M3'"},
        {"wrong shape", 1, {"model.layers.0.token_mixer.qkvu_proj.weight", "F32", "[8,32]", 1024},
         "qkvu_proj", "shape [8, 32], expected [32, 8]"},
        {"integer dtype", 2, {"model.layers.0.token_mixer.out_proj.weight", "I32", "[8,8]", 256},
         "out_proj", "dtype I32, expected a floating type"},
        {"missing tensor", 4, {NULL, NULL, NULL, 0}, "missing tensor", "channel_mixer.l1.weight"},
        {"unexpected tensor", -1, {"model.layers.0.token_mixer.extra.weight", "F32", "[2]", 8},
         "model.safetensors", "unexpected tensor 'model.layers.0.token_mixer.extra.weight'"},
    };
    for (size_t i = 0; i < sizeof bad_tensors / sizeof bad_tensors[0]; i++) {
        const Entry *with = bad_tensors[i].with.name ? &bad_tensors[i].with : NULL;
        if (bad_tensors[i].replace >= 0) write_model(bad_tensors[i].replace, with, NULL);
        else write_model(-1, NULL, with);
        expect_failure(bad_tensors[i].what, bad_tensors[i].needle1, bad_tensors[i].needle2);
    }

    /* config.json */
    write_model(-1, NULL, NULL);
    /* Each bad config is the good one with one field replaced or added. */
    static const struct { const char *what, *fields, *needle; } bad_configs[] = {
        {"config: missing field", F_CORE F_HEADS F_LRPE, "missing required field 'glu_dim'"},
        {"config: unknown field", F_CORE F_HEADS F_GLU F_LRPE ", \"rope_theta\": 1e4", "unknown field 'rope_theta'"},
        {"config: LRPE list length", F_CORE F_HEADS F_GLU ", \"linear_use_lrpe_list\": [1, 0]", "has 2 entries"},
        {"config: bias true", F_CORE F_HEADS F_GLU F_LRPE ", \"bias\": true", "'bias' = true is not supported"},
        {"config: string for int", F_CORE F_HEADS F_LRPE ", \"glu_dim\": \"12\"", "'glu_dim' must be an integer"},
        {"config: D % H != 0", F_CORE F_GLU F_LRPE ", \"decoder_attention_heads\": 3", "not divisible"},
        /* sizes whose stack arrays or int products would overflow */
        {"config: D = H = 1e8",
         "\"vocab_size\": 16, \"decoder_embed_dim\": 100000000, \"decoder_layers\": 1, \"no_scale_embedding\": false,"
         " \"decoder_attention_heads\": 100000000" F_GLU F_LRPE,
         "decoder_embed_dim (D) 100000000 out of range 1..1048576"},
        {"config: H too large",
         "\"vocab_size\": 16, \"decoder_embed_dim\": 8192, \"decoder_layers\": 1, \"no_scale_embedding\": false,"
         " \"decoder_attention_heads\": 8192" F_GLU F_LRPE,
         "decoder_attention_heads (H) 8192 out of range 1..4096"},
        {"config: G too large", F_CORE F_HEADS F_LRPE ", \"glu_dim\": 4194305", "glu_dim (G) 4194305 out of range"},
        {"config: V too large",
         "\"vocab_size\": 67108865, \"decoder_embed_dim\": 8, \"decoder_layers\": 1, \"no_scale_embedding\": false"
         F_HEADS F_GLU F_LRPE, "vocab_size (V) 67108865 out of range"},
        {"config: int out of range", F_CORE F_HEADS F_LRPE ", \"glu_dim\": 1e10", "'glu_dim' = 1e+10 is out of range"},
    };
    write_text("config.json", "{\"vocab_size\": 16,");
    expect_failure("config: invalid JSON", "config.json", "invalid JSON");
    for (size_t i = 0; i < sizeof bad_configs / sizeof bad_configs[0]; i++) {
        char json[1024];
        snprintf(json, sizeof json, "{%s}", bad_configs[i].fields);
        write_text("config.json", json);
        expect_failure(bad_configs[i].what, "config.json", bad_configs[i].needle);
    }
    snprintf(path, sizeof path, "%s/config.json", dir);
    remove(path);
    expect_failure("config: absent", "config.json", "cannot open");
    CHECK(mkdir(path, 0700) == 0, "mkdir %s", path);
    expect_failure("config: a directory", "config.json", "is a directory");
    CHECK(rmdir(path) == 0, "rmdir %s", path);

    /* token shards */
    TnShard shard;
    snprintf(path, sizeof path, "%s/bad.bin", dir);
    int32_t header[256] = {12345, 7, 3};
    CHECK(tn_write_file(path, header, sizeof header, &err) == 0, "%s", err.msg);
    CHECK(tn_shard_open(&shard, path, &err) != 0 && strstr(err.msg, "bad.bin") && strstr(err.msg, "bad magic"),
          "shard bad magic: %s", err.msg);
    header[0] = TN_SHARD_MAGIC;
    CHECK(tn_write_file(path, header, sizeof header, &err) == 0, "%s", err.msg);
    CHECK(tn_shard_open(&shard, path, &err) != 0 && strstr(err.msg, "announces 3 tokens"), "shard truncated: %s", err.msg);
    uint32_t tokens[3] = {1, 2, 99};
    CHECK(tn_shard_write(path, tokens, 3, &err) == 0, "%s", err.msg);
    CHECK(tn_shard_open(&shard, path, &err) == 0, "shard reopen: %s", err.msg);
    CHECK(tn_shard_check_vocab(&shard, 16, &err) != 0 && strstr(err.msg, "id 99"), "shard vocab: %s", err.msg);
    tn_shard_close(&shard);
    printf("shard errors: bad magic, truncated, out-of-vocabulary ids: ok\n");

    remove_tree(dir);
    return TEST_DONE(argv[0]);
}
