/* SPDX-License-Identifier: MIT */
/*
 * http_i.h - internals of the libcurl backend shared by its files:
 * http_pool.c (the process's HTTP client: easy handles, the share handle,
 * each fetch object's TLS trust settings) and http.c (transfers).
 */
#ifndef SFFS_HTTP_I_H
#define SFFS_HTTP_I_H

#include "fetch_i.h"

#include <curl/curl.h>

/* One easy handle, its error buffer and the trust it was set up with. */
struct conn {
	struct conn *next; /* idle list; guarded by the client's lock */
	CURL *c;
	char *trust; /* pool key: "insecure|CAINFO|CAPATH" */
	char errbuf[CURL_ERROR_SIZE];
};

/* f->priv of an HTTP fetch object. */
struct http_priv {
	char *cainfo;	    /* CURLOPT_CAINFO, or NULL; read only */
	char *capath;	    /* CURLOPT_CAPATH, or NULL; read only */
	char *trust;	    /* the pool key of these settings; read only */
	enum fetch_pin pin; /* set by the probe */
};

/* Makes f->priv: sets the client up if needed and takes f's trust
 * settings (f->cafile, else the environment). 0, or -errno with a
 * message in err; f->priv may then be half-built (http_priv_free). */
int http_priv_new(struct fetch *f, char *err, size_t errlen);
/* Frees f->priv (NULL or half-built included). */
void http_priv_free(struct fetch *f);

/* An idle handle made with f's trust settings, or a new one; NULL on
 * ENOMEM (logged). Give it back with http_pool_put. */
struct conn *http_pool_get(struct fetch *f);
/* Keeps cn for the next caller, or closes it when enough are idle. */
void http_pool_put(struct conn *cn);
/* The "Cache-Control: no-cache" header list (read only, valid while the
 * client is set up). */
struct curl_slist *http_pool_nocache(void);

#endif
