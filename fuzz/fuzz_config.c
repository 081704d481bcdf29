/* fuzz_config: the configuration file reader of src/config/config.h (config_load, through
 * inih and config.c's own line reader and key table).
 *
 * Input: the file. config_load takes a path, so the input is written to one memfd made on
 * the first run and read back through /proc/self/fd/N (no file system writes, nothing left
 * behind). The error buffer is the real size (CONFIG_ERRORS_MAX) for two inputs out of three
 * and a small one otherwise, so that the truncation of long error lists is exercised too.
 * A loaded config must satisfy what config.h and check_whole promise; a failed load must say
 * why; LeakSanitizer checks that no path leaks (a FILE, inih's line buffer). */
#include <sys/mman.h>
#include <unistd.h>

#include "config/config.h"
#include "fuzz.h"

#define SMALL_ERRBUF 48
#define PROC_FD_PATH_MAX 64

static char path[PROC_FD_PATH_MAX];
static int memfd = -1;

static void write_file(const uint8_t *data, size_t size)
{
	if (memfd < 0) {
		memfd = memfd_create("fuzz_config", MFD_CLOEXEC);
		if (memfd < 0)
			abort();
		snprintf(path, sizeof(path), "/proc/self/fd/%d", memfd);
	}
	if (ftruncate(memfd, 0) < 0)
		abort();
	for (size_t off = 0; off < size;) {
		ssize_t n = pwrite(memfd, data + off, size - off, (off_t)off);
		if (n <= 0)
			abort();
		off += (size_t)n;
	}
}

static int str_ok(const char *s, size_t size)
{
	return fuzz_terminated(s, size);
}

/* A [dnsbl NAME] section is the list NAME: the name as written, whole. */
static int section_written(const uint8_t *data, size_t size, const char *name)
{
	char sect[CONFIG_NAME_MAX + 16];
	int n = snprintf(sect, sizeof(sect), "[dnsbl %s]", name);

	return n > 0 && (size_t)n < sizeof(sect) && memmem(data, size, sect, (size_t)n) != NULL;
}

static void check_loaded(const struct config *cfg, const uint8_t *data, size_t size)
{
	FUZZ_CHECK(cfg->nlisten >= 1 && cfg->nlisten <= CONFIG_MAX_LISTEN);
	FUZZ_CHECK(cfg->proxy_from.n <= CONFIG_MAX_CIDRS);
	FUZZ_CHECK(cfg->ndnsbl <= CONFIG_MAX_DNSBL);
	FUZZ_CHECK(str_ok(cfg->source, sizeof(cfg->source)) && !strcmp(cfg->source, path));
	FUZZ_CHECK(str_ok(cfg->hostname, sizeof(cfg->hostname)) && cfg->hostname[0]);
	FUZZ_CHECK(str_ok(cfg->data_dir, sizeof(cfg->data_dir)) && cfg->data_dir[0]);
	FUZZ_CHECK(str_ok(cfg->tls_cert, sizeof(cfg->tls_cert)));
	FUZZ_CHECK(str_ok(cfg->tls_key, sizeof(cfg->tls_key)));
	FUZZ_CHECK(!cfg->tls_cert[0] == !cfg->tls_key[0]);
	FUZZ_CHECK(str_ok(cfg->tls_client_ca, sizeof(cfg->tls_client_ca)));
	FUZZ_CHECK(str_ok(cfg->postmaster, sizeof(cfg->postmaster)));
	FUZZ_CHECK(!cfg->postmaster[0] || strchr(cfg->postmaster, '@'));
	FUZZ_CHECK(str_ok(cfg->resolver, sizeof(cfg->resolver)));
	FUZZ_CHECK(cfg->max_message_size >= 1024);
	FUZZ_CHECK(cfg->retry_first <= cfg->retry_max);
	FUZZ_CHECK(cfg->dnsbl_cache_min_ttl <= cfg->dnsbl_cache_max_ttl);
	for (unsigned i = 0; i < cfg->nlisten; i++) {
		FUZZ_CHECK(str_ok(cfg->listen[i].host, sizeof(cfg->listen[i].host)));
		FUZZ_CHECK(!cfg->listen[i].proxy || cfg->proxy_from.n > 0);
	}
	for (unsigned i = 0; i < cfg->proxy_from.n; i++)
		FUZZ_CHECK(cfg->proxy_from.v[i].prefix <= 128);
	for (unsigned i = 0; i < cfg->ndnsbl; i++) {
		const struct dnsbl_config *d = &cfg->dnsbl[i];
		FUZZ_CHECK(str_ok(d->name, sizeof(d->name)) && d->name[0]);
		FUZZ_CHECK(str_ok(d->display_name, sizeof(d->display_name)) && d->display_name[0]);
		FUZZ_CHECK(str_ok(d->zone, sizeof(d->zone)) && d->zone[0]);
		FUZZ_CHECK(str_ok(d->display_zone, sizeof(d->display_zone)));
		FUZZ_CHECK(str_ok(d->url, sizeof(d->url)));
		FUZZ_CHECK(d->weight != 0 && d->weight >= -1000 && d->weight <= 1000);
		FUZZ_CHECK(d->ncodes >= 1 && d->ncodes <= CONFIG_MAX_DNSBL_CODES);
		for (unsigned k = 0; k < d->ncodes; k++)
			FUZZ_CHECK(d->codes[k].lo <= d->codes[k].hi && d->codes[k].lo >> 24 == 127 &&
				   d->codes[k].hi >> 24 == 127);
		for (unsigned k = 0; k < i; k++)
			FUZZ_CHECK(strcmp(cfg->dnsbl[k].name, d->name) != 0);
		FUZZ_CHECK(section_written(data, size, d->name));
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct config cfg; /* large: off the stack */
	size_t errsz = size % 3 == 2 ? SMALL_ERRBUF : CONFIG_ERRORS_MAX;
	char *errbuf = malloc(errsz);

	if (!errbuf)
		abort();
	write_file(data, size);
	memset(errbuf, 'x', errsz);
	int rc = config_load(path, &cfg, errbuf, errsz);
	FUZZ_CHECK(rc == 0 || rc == -1);
	FUZZ_CHECK(fuzz_terminated(errbuf, errsz));
	if (rc == 0) {
		FUZZ_CHECK(errbuf[0] == '\0');
		check_loaded(&cfg, data, size);
	} else {
		FUZZ_CHECK(errbuf[0] != '\0');
	}
	free(errbuf);
	return 0;
}
