/* tls: the server's OpenSSL context for STARTTLS. */
#ifndef MXG_TLS_H
#define MXG_TLS_H

#include <stddef.h>

typedef struct ssl_ctx_st SSL_CTX;

/* Loads the certificate chain and key; returns NULL with a reason in errbuf on failure. */
SSL_CTX *tls_server_ctx_new(const char *cert_file, const char *key_file, char *errbuf,
			    size_t errsz);
/* Adds CA certificates (PEM file) trusted for client certificates, besides the system store. */
int tls_ctx_add_client_ca(SSL_CTX *ctx, const char *ca_file, char *errbuf, size_t errsz);
void tls_ctx_free(SSL_CTX **ctx);

#endif
