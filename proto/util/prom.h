/*
 * prom.h: the Prometheus text exposition format (version 0.0.4), for the
 * agent's and the hub's /metrics, written into a strbuf (strbuf.h).
 *
 *   strbuf b = {0};
 *   prom_head(&b, "branchsync_x_total", "counter", "What it counts.");
 *   prom_sample(&b, "branchsync_x_total", "branch", code, 42);
 *   ... b.p, b.len ...
 *   strbuf_fini(&b);
 *
 * Memory follows util.h's policy: running out aborts.
 */
#ifndef BS_PROM_H
#define BS_PROM_H

#include <stddef.h>
#include <stdint.h>

#include "strbuf.h"

/* # HELP and # TYPE lines; type is "counter", "gauge" or "histogram". */
void prom_head(
    strbuf *b, const char *name, const char *type, const char *help);
/*
 * One sample line: name{label="value"} v, or name v when label is NULL.
 * value is escaped as the format requires (backslash, quote, newline).
 */
void prom_sample(strbuf *b, const char *name, const char *label,
    const char *value, double v);
/* The same with an integer value, printed exactly. */
void prom_sample_i(strbuf *b, const char *name, const char *label,
    const char *value, int64_t v);
/* An integer sample with two labels: name{l1="v1",l2="v2"} v. */
void prom_sample2_i(strbuf *b, const char *name, const char *label1,
    const char *value1, const char *label2, const char *value2, int64_t v);

#endif /* BS_PROM_H */
