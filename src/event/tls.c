/* tls: see tls.h. TLS 1.2 is the floor: what still offers less is not worth a downgrade. */
#include "event/tls.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>

static void tls_error(char *errbuf, size_t errsz, const char *what, const char *file)
{
	char reason[256];

	ERR_error_string_n(ERR_get_error(), reason, sizeof(reason));
	snprintf(errbuf, errsz, "%s %s: %s", what, file, reason);
}

/* Client certificates are asked for but never required: the handshake goes on whatever the
 * chain, and conn_tls_peer_names() reports names only for a chain that verified. Partner and
 * onprem connectors can then be matched by a name nobody can forge. */
static int accept_any_chain(int preverify_ok, X509_STORE_CTX *ctx)
{
	(void)preverify_ok;
	(void)ctx;
	return 1;
}

SSL_CTX *tls_server_ctx_new(const char *cert_file, const char *key_file, char *errbuf,
			    size_t errsz)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	if (!ctx) {
		tls_error(errbuf, errsz, "cannot create TLS context", "");
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_CLIENT_ONCE, accept_any_chain);
	SSL_CTX_set_default_verify_paths(ctx);
	/* a session id context is required once client certificates are requested */
	SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"mxgate", 6);
	if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1) {
		tls_error(errbuf, errsz, "cannot load certificate", cert_file);
		SSL_CTX_free(ctx);
		return NULL;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		tls_error(errbuf, errsz, "cannot load private key", key_file);
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

int tls_ctx_add_client_ca(SSL_CTX *ctx, const char *ca_file, char *errbuf, size_t errsz)
{
	if (SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1) {
		tls_error(errbuf, errsz, "cannot load client CA file", ca_file);
		return -1;
	}
	return 0;
}

void tls_ctx_free(SSL_CTX **ctx)
{
	if (*ctx)
		SSL_CTX_free(*ctx);
	*ctx = NULL;
}
