/* prom.c: see prom.h. */
#include "prom.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

void
prom_head(strbuf *b, const char *name, const char *type, const char *help)
{
	strbuf_printf(
	    b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* label_value writes value escaped as a label value. */
static void
label_value(strbuf *b, const char *value)
{
	for (const char *s = value ? value : ""; *s != '\0'; s++) {
		if (*s == '\\')
			strbuf_put(b, "\\\\", 2);
		else if (*s == '"')
			strbuf_put(b, "\\\"", 2);
		else if (*s == '\n')
			strbuf_put(b, "\\n", 2);
		else
			strbuf_put(b, s, 1);
	}
}

static void
labels(strbuf *b, const char *name, const char *label, const char *value)
{
	strbuf_printf(b, "%s", name);
	if (label == NULL)
		return;
	strbuf_printf(b, "{%s=\"", label);
	label_value(b, value);
	strbuf_put(b, "\"}", 2);
}

void
prom_sample2_i(strbuf *b, const char *name, const char *label1,
    const char *value1, const char *label2, const char *value2, int64_t v)
{
	strbuf_printf(b, "%s{%s=\"", name, label1);
	label_value(b, value1);
	strbuf_printf(b, "\",%s=\"", label2);
	label_value(b, value2);
	strbuf_printf(b, "\"} %" PRId64 "\n", v);
}

void
prom_sample(strbuf *b, const char *name, const char *label, const char *value,
    double v)
{
	labels(b, name, label, value);
	if (isnan(v))
		strbuf_printf(b, " NaN\n");
	else if (isinf(v))
		strbuf_printf(b, " %s\n", v > 0 ? "+Inf" : "-Inf");
	else
		strbuf_printf(b, " %.17g\n", v);
}

void
prom_sample_i(strbuf *b, const char *name, const char *label,
    const char *value, int64_t v)
{
	labels(b, name, label, value);
	strbuf_printf(b, " %" PRId64 "\n", v);
}
