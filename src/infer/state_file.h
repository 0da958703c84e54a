/* state_file.h: saving and restoring one sequence of a session.
 *
 * Because the recurrent state (Alg. 4) summarises the whole context in a
 * fixed size, a prompt prefilled once can be stored and continued later at
 * no cost: the file holds the state of every layer, the next-token logits,
 * the position (LRPE offset) and the last tokens consumed.
 *
 * Layout (little-endian, the byte order of every machine tnllm builds on):
 * a TnStateHeader, then V float logits, then each layer's (H, dk, d) float
 * state in layer order. The header carries the model's identity (its shape
 * and a fingerprint of its weights), the payload size and an FNV-1a
 * checksum of the payload, so a truncated, corrupted or foreign file is
 * refused with a message saying which.
 */
#ifndef TN_INFER_STATE_FILE_H
#define TN_INFER_STATE_FILE_H

#include <stdint.h>

#include "infer/session.h"

/* Not the training state's "TNSTATE": the two files must not be mistaken. */
#define TN_STATE_MAGIC "TNINFER"
#define TN_STATE_VERSION 1

typedef struct TnStateHeader {
    char magic[8];          /* TN_STATE_MAGIC, NUL-padded */
    uint32_t version;       /* TN_STATE_VERSION */
    uint32_t header_bytes;  /* sizeof(TnStateHeader) */
    uint64_t fingerprint;   /* tn_model_fingerprint of the model that wrote it */
    uint64_t payload_floats;/* V + the state floats of all layers */
    uint64_t checksum;      /* FNV-1a 64 of the payload bytes */
    int32_t vocab_size, dim, n_layers, n_heads, glu_dim;
    int32_t position;       /* tokens consumed */
    int32_t n_recent;       /* valid entries of recent */
    int32_t recent[TN_SESSION_RECENT]; /* last tokens consumed, oldest first */
    int32_t reserved;       /* 0; keeps the size a multiple of 8 */
} TnStateHeader;

/* Identity of a model's weights: FNV-1a 64 of its configuration and of
 * 65536 evenly spaced parameters (so it costs nothing even at 175B), any
 * retraining or other checkpoint changes it. */
uint64_t tn_model_fingerprint(const TnModel *m);

/* Writes sequence seq of s to path (atomically). Both refuse a session
 * whose layers run on a device (its states are not in host memory). */
int tn_state_save(const TnSession *s, int seq, const char *path, TnError *err);
/* Replaces sequence seq of s with the state in path. On any failure (file
 * missing, not a state file, another version, another model, truncated or
 * corrupted) the sequence is left as it was and err says why. */
int tn_state_load(TnSession *s, int seq, const char *path, TnError *err);

#endif
