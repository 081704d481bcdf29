/* ndr_cmd: see ndr_cmd.h. The text comes from the catalog as it is; this file only lays it
 * out, wrapped for a terminal, in the same order as the human part of a report. */
#include "admin/ndr_cmd.h"

#include <string.h>

#include "dsn/catalog.h"

#define WRAP_WIDTH 76
#define LABEL_COL 14 /* "How to fix:  " */

static const char usage[] =
	"usage: mxgate ndr CODE\n"
	"Explains an RFC 3463 enhanced status code (for example 5.7.1 or 4.4.7): what\n"
	"it means, who has to act, how to fix it, and a note for email administrators.\n"
	"The same text appears in mxgate's non-delivery reports.\n"
	"Exit 0: the code is in the catalog; 1: it is not, its generic entry is shown;\n"
	"2: usage error or malformed code.\n";

/* Writes "label" padded to LABEL_COL and text wrapped at WRAP_WIDTH (at spaces; the catalog
 * is ASCII), continuation lines indented to LABEL_COL. */
static void put_wrapped(FILE *out, const char *label, const char *text)
{
	size_t col = (size_t)fprintf(out, "%-*s", LABEL_COL, label);
	int first = 1;

	for (const char *p = text; *p;) {
		size_t n;

		while (*p == ' ')
			p++;
		if (!(n = strcspn(p, " ")))
			break;
		if (!first && col + 1 + n > WRAP_WIDTH) {
			fprintf(out, "\n%*s", LABEL_COL, "");
			col = LABEL_COL;
		} else if (!first) {
			fputc(' ', out);
			col++;
		}
		fprintf(out, "%.*s", (int)n, p);
		col += n;
		first = 0;
		p += n;
	}
	fputc('\n', out);
}

static void print_entry(FILE *out, const struct dsn_entry *e)
{
	fprintf(out, "%s  %s\n\n", e->code, e->title);
	put_wrapped(out, "Cause:", e->cause);
	put_wrapped(out, "Who acts:", e->code[0] == '2' ? "nobody." : dsn_actor_text(e->actor));
	put_wrapped(out, "How to fix:", e->fix);
	put_wrapped(out, "For admins:", e->admin);
}

int ndr_cmd_run(int argc, char **argv, FILE *out, FILE *err)
{
	char canon[DSN_CODE_MAX + 1];
	const struct dsn_entry *e;

	if (argc == 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
		fputs(usage, out);
		return NDR_CMD_EXIT_OK;
	}
	if (argc != 2) {
		fprintf(err, "mxgate ndr: %s\n%s", argc < 2 ? "missing CODE" : "too many arguments",
			usage);
		return NDR_CMD_EXIT_USAGE;
	}
	if (dsn_code_canon(argv[1], canon) < 0) {
		fprintf(err,
			"mxgate ndr: '%s' is not an enhanced status code (CLASS.SUBJECT.DETAIL, "
			"class 2, 4 or 5, e.g. 5.1.1)\n%s",
			argv[1], usage);
		return NDR_CMD_EXIT_USAGE;
	}
	e = dsn_lookup(canon);
	if (strcmp(e->code, canon) != 0) {
		fprintf(out, "%s: unknown code; the generic entry for its %s follows.\n\n", canon,
			strcmp(e->code + 1, ".0.0") == 0 ? "class" : "subject");
		print_entry(out, e);
		return NDR_CMD_EXIT_FALLBACK;
	}
	print_entry(out, e);
	return NDR_CMD_EXIT_OK;
}

int ndr_cmd_main(int argc, char **argv)
{
	return ndr_cmd_run(argc, argv, stdout, stderr);
}
