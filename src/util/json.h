/* json.h: whole JSON texts, parsed and written with cJSON.
 *
 * cJSON stops after the first value. Asked to require the end of the text
 * (require_null_terminated) it skips any byte up to 32 first, control bytes
 * included, and cannot say where the trouble is; so each format says which
 * bytes may follow its value (safetensors pads its header with spaces, a
 * JSON Lines line may end in spaces, tabs and carriage returns) and
 * tn_json_parse_whole says where the first other byte is, for the caller's
 * own message. A NUL byte is never one that may follow.
 */
#ifndef TN_UTIL_JSON_H
#define TN_UTIL_JSON_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "util/error.h"

/* Parses the n bytes at text (NUL-terminated or not) as one JSON value.
 * Returns the value (the caller deletes it), or NULL when the text does not
 * begin with one. *at receives, with a value, the offset of the first byte
 * after it that is not in blanks (n when only blanks follow: the text is
 * whole); without one, where the parse failed (0 when cJSON does not say). */
cJSON *tn_json_parse_whole(const char *text, size_t n, const char *blanks, size_t *at);

/* Writes root, formatted and ended by a newline, to path atomically
 * (tn_write_file), and deletes root whatever happens. */
int tn_json_write_file(const char *path, cJSON *root, TnError *err);

#endif
