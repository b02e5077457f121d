/* prom.c: see prom.h. */
#include "prom.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

static void
grow(strbuf *b, size_t need)
{
	size_t cap = b->cap ? b->cap : 256;

	if (b->len + need + 1 <= b->cap)
		return;
	while (cap < b->len + need + 1)
		cap *= 2;
	b->p = xrealloc(b->p, cap);
	b->cap = cap;
}

void
strbuf_printf(strbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n <= 0)
		return;
	grow(b, (size_t) n);
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, (size_t) n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t) n;
}

void
strbuf_put(strbuf *b, const char *s, size_t n)
{
	grow(b, n);
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

void
strbuf_reset(strbuf *b)
{
	b->len = 0;
	if (b->p != NULL)
		b->p[0] = '\0';
}

void
strbuf_fini(strbuf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}

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
