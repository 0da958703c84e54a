/* prompt_list.h: the prompts of a batched generation (tnllm generate
 * --prompts FILE), read from one file.
 *
 * Two formats, told apart by the first non-empty line:
 *  - JSON Lines when it starts with '{': every non-empty line must be a
 *    JSON object with a string field "prompt" (or, failing that, "text",
 *    the corpus field of SPEC section 4), which may hold newlines;
 *  - otherwise plain text: each line is one prompt, taken byte for byte
 *    (the "\n" or "\r\n" ending removed).
 * Empty lines are skipped in both (a prompt of nothing is better given as
 * {"prompt": ""}), so a prompt's index counts prompts, not lines; its line
 * number is kept for messages. A malformed JSON line, one that is not an
 * object, lacks a string "prompt"/"text" or holds the escape \u0000 (which
 * would cut the string) fails with "FILE:LINE: what is wrong"; so does a
 * file with no prompt at all.
 *
 * Memory: the list owns its prompts (one allocation each side by side in
 * `storage`); free with tn_prompt_list_free.
 */
#ifndef TN_INFER_PROMPT_LIST_H
#define TN_INFER_PROMPT_LIST_H

#include <stddef.h>

#include "util/error.h"

typedef struct TnPromptList {
    int count;
    char **text;    /* (count) prompt bytes, NUL-terminated (they may hold NULs in plain files) */
    size_t *length; /* (count) */
    int *line;      /* (count) line number in the file, from 1 */
    char *storage;  /* the bytes behind text */
} TnPromptList;

int tn_prompt_list_read(TnPromptList *list, const char *path, TnError *err);
void tn_prompt_list_free(TnPromptList *list);

#endif
