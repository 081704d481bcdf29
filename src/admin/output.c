/* output: how admin commands print -- errors, aligned text tables, JSON, times. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "admin/admin_private.h"
#include "util/xmalloc.h"

#define TABLE_GAP 2 /* spaces between columns */

int admin_store_result(int rc, const char *err)
{
	if (rc == STORE_OK)
		return ADMIN_EXIT_OK;
	fprintf(stderr, "mxgate: %s\n", err);
	return rc == STORE_REFUSED ? ADMIN_EXIT_USAGE : ADMIN_EXIT_FAIL;
}

const char *admin_time_iso(int64_t t, char out[ADMIN_TIME_MAX])
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (!gmtime_r(&tt, &tm) || strftime(out, ADMIN_TIME_MAX, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(out, ADMIN_TIME_MAX, "%lld", (long long)t);
	return out;
}

const char *admin_count(unsigned n, const char *one, const char *many, char *out, size_t outsz)
{
	snprintf(out, outsz, "%u %s", n, n == 1 ? one : many);
	return out;
}

int admin_json_print(json_t *v)
{
	int rc = json_dumpf(v, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);

	json_decref(v);
	if (rc < 0) {
		fprintf(stderr, "mxgate: cannot write JSON output\n");
		return ADMIN_EXIT_FAIL;
	}
	putchar('\n');
	return ADMIN_EXIT_OK;
}

/* ---- text tables ---------------------------------------------------------------------- */

struct admin_table {
	size_t ncols, nrows, cap;
	char **cells; /* row-major, header first */
	size_t *width;
};

struct admin_table *admin_table_new(const char *const *headers, size_t ncols)
{
	struct admin_table *t = xcalloc(1, sizeof(*t));

	t->ncols = ncols;
	t->width = xcalloc(ncols, sizeof(*t->width));
	admin_table_row(t, headers);
	return t;
}

void admin_table_row(struct admin_table *t, const char *const *cells)
{
	if (t->nrows == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 16;
		t->cells = xrealloc(t->cells, t->cap * t->ncols * sizeof(*t->cells));
	}
	for (size_t c = 0; c < t->ncols; c++) {
		char *cell = xstrdup(cells[c] ? cells[c] : "");
		size_t len = strlen(cell);
		t->cells[t->nrows * t->ncols + c] = cell;
		if (len > t->width[c])
			t->width[c] = len;
	}
	t->nrows++;
}

void admin_table_print(const struct admin_table *t)
{
	for (size_t r = 0; r < t->nrows; r++) {
		for (size_t c = 0; c < t->ncols; c++) {
			const char *cell = t->cells[r * t->ncols + c];
			if (c + 1 == t->ncols)
				printf("%s\n", cell);
			else
				printf("%-*s%*s", (int)t->width[c], cell, TABLE_GAP, "");
		}
	}
}

void admin_table_free(struct admin_table **tp)
{
	struct admin_table *t = *tp;

	if (!t)
		return;
	for (size_t i = 0; i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	free(t->width);
	free(t);
	*tp = NULL;
}
