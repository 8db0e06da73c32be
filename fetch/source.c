/* SPDX-License-Identifier: MIT */
/*
 * source.c - what a SOURCE names: s3://bucket/key as an HTTPS URL (AWS's
 * virtual-host style, or path style under -o s3_endpoint), file:// URLs
 * and plain paths as local paths, and the URL of a file beside another
 * (SOURCE.sfidx, SOURCE.asc) with a presigned URL's query kept.
 */
#include "fetch_i.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static bool has_prefix(const char *s, const char *prefix)
{
	return strncasecmp(s, prefix, strlen(prefix)) == 0;
}

/* Percent-encodes every byte of key outside RFC 3986 unreserved and '/'. */
static char *s3_escape_key(const char *key)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = strlen(key);
	char *out = malloc(3 * n + 1), *p = out;

	if (!out)
		return NULL;
	for (; *key; key++) {
		unsigned char c = (unsigned char)*key;

		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		    (c >= '0' && c <= '9') || strchr("-._~/", c)) {
			*p++ = (char)c;
		} else {
			*p++ = '%';
			*p++ = hex[c >> 4];
			*p++ = hex[c & 15];
		}
	}
	*p = '\0';
	return out;
}

/* The bucket's URL: virtual-hosted on AWS, path style on an endpoint. */
static char *s3_bucket_url(const char *bucket, size_t blen,
			   const struct fetch_opts *o)
{
	const char *ep = o ? o->s3_endpoint : NULL;
	size_t elen = ep ? strlen(ep) : 0;
	char *url;

	while (elen && ep[elen - 1] == '/')
		elen--;
	if (ep && elen)
		return asprintf(&url, "%.*s/%.*s", (int)elen, ep, (int)blen,
				bucket) < 0
			   ? NULL
			   : url;
	return asprintf(&url, "https://%.*s.s3.amazonaws.com", (int)blen,
			bucket) < 0
		   ? NULL
		   : url;
}

/* s3://BUCKET/REST: the bucket's URL and REST; need_key refuses an
 * empty REST. */
static int s3_parse(const char *source, const struct fetch_opts *o,
		    bool need_key, char **bucket_url, const char **rest,
		    char *err, size_t errlen)
{
	const char *bucket = source + strlen("s3://");
	const char *slash = strchr(bucket, '/');
	size_t blen = slash ? (size_t)(slash - bucket) : strlen(bucket);

	if (!blen || (need_key && (!slash || !slash[1]))) {
		snprintf(err, errlen, "bad S3 source %s: want s3://BUCKET/%s",
			 source, need_key ? "KEY" : "PREFIX/");
		return -EINVAL;
	}
	if (strcspn(bucket, ":@?#%") < blen) {
		snprintf(err, errlen, "bad S3 bucket name in %s", source);
		return -EINVAL;
	}
	*rest = slash ? slash + 1 : "";
	*bucket_url = s3_bucket_url(bucket, blen, o);
	if (!*bucket_url) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	return 0;
}

static char *s3_to_url(const char *source, const struct fetch_opts *o,
		       char *err, size_t errlen)
{
	char *bucket_url, *key, *url = NULL;
	const char *rest;

	if (s3_parse(source, o, true, &bucket_url, &rest, err, errlen) < 0)
		return NULL;
	key = s3_escape_key(rest);
	if (!key || asprintf(&url, "%s/%s", bucket_url, key) < 0) {
		url = NULL;
		snprintf(err, errlen, "out of memory");
	}
	free(key);
	free(bucket_url);
	return url;
}

int fetch_s3_split(const char *source, const struct fetch_opts *o,
		   char **bucket_url, char **prefix, char *err, size_t errlen)
{
	const char *rest;
	int rc;

	if (!source || !has_prefix(source, "s3://")) {
		snprintf(err, errlen, "not an s3:// source: %s",
			 source ? source : "(none)");
		return -EINVAL;
	}
	rc = s3_parse(source, o, false, bucket_url, &rest, err, errlen);
	if (rc < 0)
		return rc;
	*prefix = strdup(rest);
	if (!*prefix) {
		free(*bucket_url);
		*bucket_url = NULL;
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	return 0;
}

/* file://[localhost]/path, percent-decoded by libcurl's URL parser. */
static char *file_url_to_path(const char *source, char *err, size_t errlen)
{
	CURLU *u = curl_url();
	char *path = NULL, *out = NULL;

	if (!u) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (curl_url_set(u, CURLUPART_URL, source, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_PATH, &path, CURLU_URLDECODE) !=
		CURLUE_OK ||
	    !path[0] || strlen(path) != strcspn(path, "\n")) {
		snprintf(err, errlen, "bad file URL %s", source);
		goto out_free_url;
	}
	out = strdup(path);
	if (!out)
		snprintf(err, errlen, "out of memory");
out_free_url:
	curl_free(path);
	curl_url_cleanup(u);
	return out;
}

char *fetch_resolve_source(const char *source, const struct fetch_opts *o,
			   enum fetch_kind *kind, char *err, size_t errlen)
{
	char shown[UTIL_URL_SHOWN_MAX];
	char *s;

	*kind = FETCH_KIND_HTTP;
	if (!source || !source[0]) {
		snprintf(err, errlen, "empty source");
		return NULL;
	}
	if (has_prefix(source, "http://") || has_prefix(source, "https://")) {
		s = strdup(source);
	} else if (has_prefix(source, "s3://")) {
		return s3_to_url(source, o, err, errlen);
	} else if (has_prefix(source, "file://")) {
		*kind = FETCH_KIND_FILE;
		return file_url_to_path(source, err, errlen);
	} else if (strstr(source, "://")) {
		snprintf(err, errlen,
			 "unsupported source %s: want http(s)://, s3://, "
			 "file:// or a path",
			 util_url_redact(source, shown, sizeof(shown)));
		return NULL;
	} else {
		*kind = FETCH_KIND_FILE;
		s = strdup(source);
	}
	if (!s)
		snprintf(err, errlen, "out of memory");
	return s;
}

static char *append(const char *s, const char *suffix)
{
	char *out = NULL;

	if (asprintf(&out, "%s%s", s, suffix) < 0) {
		errno = ENOMEM;
		return NULL;
	}
	return out;
}

/* errno for a failed libcurl URL call */
static int curlu_errno(CURLUcode rc)
{
	return rc == CURLUE_OUT_OF_MEMORY ? ENOMEM : EINVAL;
}

/* u's URL with suffix appended to its path; NULL with errno set. */
static char *url_with_path_suffix(CURLU *u, const char *suffix)
{
	char *path = NULL, *npath = NULL, *s = NULL, *out = NULL;
	CURLUcode rc = curl_url_get(u, CURLUPART_PATH, &path, 0);

	if (rc != CURLUE_OK || !path[0] || path[strlen(path) - 1] == '/') {
		errno = rc != CURLUE_OK ? curlu_errno(rc) : EINVAL;
		goto out_free;
	}
	npath = append(path, suffix);
	if (!npath)
		goto out_free;
	rc = curl_url_set(u, CURLUPART_PATH, npath, 0);
	if (rc == CURLUE_OK)
		rc = curl_url_get(u, CURLUPART_URL, &s, 0);
	if (rc != CURLUE_OK)
		errno = curlu_errno(rc);
	else
		out = strdup(s);
out_free:
	curl_free(s);
	free(npath);
	curl_free(path);
	return out;
}

char *fetch_sibling_url(const char *url, const char *suffix)
{
	CURLU *u;
	CURLUcode rc;
	char *out = NULL;

	if (!url || !url[0] || !suffix) {
		errno = EINVAL;
		return NULL;
	}
	if (!strstr(url, "://") || has_prefix(url, "file://"))
		return append(url, suffix);
	u = curl_url();
	if (!u) {
		errno = ENOMEM;
		return NULL;
	}
	rc = curl_url_set(u, CURLUPART_URL, url,
			  CURLU_NON_SUPPORT_SCHEME | CURLU_ALLOW_SPACE);
	if (rc == CURLUE_OK)
		out = url_with_path_suffix(u, suffix);
	else
		errno = curlu_errno(rc);
	curl_url_cleanup(u);
	return out;
}
