/* SPDX-License-Identifier: MIT */
/*
 * s3list.c - one S3 ListObjectsV2 response body into a struct s3_listing,
 * with expat, and the URL of a listing request.
 *
 * The parser keeps a stack of the elements it is inside (only the few the
 * listing needs are told apart) and collects the text of a leaf element
 * (Key, Size, ...) into one bounded buffer, since expat may hand it over
 * in several pieces. Any error stops the parser at once; handlers called
 * after that return without doing anything. A DOCTYPE stops it too: S3
 * never sends one, and refusing it rules out entity expansion.
 */
#include "catalog_i.h"

#include <errno.h>
#include <expat.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S3_NS "http://s3.amazonaws.com/doc/2006-03-01/"
/* Separates a namespace URI from the local name in expat's names; '|' is
 * not a name character, so the last one is the separator. */
#define NS_SEP '|'
/* S3 nests 4 deep (ListBucketResult/Contents/Owner/ID). */
#define MAX_DEPTH 32
#define SIZE_TEXT_MAX 32

enum elem {
	E_OTHER,
	E_ROOT,
	E_CONTENTS,
	E_PREFIXES,
	E_KEY,
	E_SIZE,
	E_ETAG,
	E_PREFIX,
	E_TRUNCATED,
	E_TOKEN,
	E_CODE,
	E_MESSAGE,
};

struct state {
	XML_Parser parser;
	struct s3_listing *out;
	char *err;
	size_t errlen;
	int rc;	       /* the first error, 0 so far */
	bool is_error; /* the root is <Error> */
	bool root_s3;  /* the root is in the S3 namespace */
	enum elem stack[MAX_DEPTH];
	unsigned depth;
	/* the text of the leaf element being read, when capturing */
	bool capturing;
	char text[S3_KEY_MAX + 1];
	size_t textlen;
	/* the <Contents> being read */
	struct s3_object cur;
	bool have_key, have_size;
	size_t cur_prefixes; /* Prefix elements in this CommonPrefixes */
	size_t cap_objects, cap_prefixes;
	bool have_truncated;
	char code[S3_KEY_MAX + 1];
	char message[S3_KEY_MAX + 1];
};

static void fail(struct state *st, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Records the first error and stops the parser. */
static void fail(struct state *st, int rc, const char *fmt, ...)
{
	va_list ap;

	if (st->rc)
		return;
	st->rc = rc;
	va_start(ap, fmt);
	if (st->err && st->errlen)
		vsnprintf(st->err, st->errlen, fmt, ap);
	va_end(ap);
	XML_StopParser(st->parser, XML_FALSE);
}

static const char *elem_name(enum elem e)
{
	static const char *const names[] = {
	    [E_OTHER] = "?",
	    [E_ROOT] = "root",
	    [E_CONTENTS] = "Contents",
	    [E_PREFIXES] = "CommonPrefixes",
	    [E_KEY] = "Key",
	    [E_SIZE] = "Size",
	    [E_ETAG] = "ETag",
	    [E_PREFIX] = "Prefix",
	    [E_TRUNCATED] = "IsTruncated",
	    [E_TOKEN] = "NextContinuationToken",
	    [E_CODE] = "Code",
	    [E_MESSAGE] = "Message",
	};

	return names[e];
}

/* The longest text a leaf may hold (keys, prefixes, tokens and ETags:
 * S3_KEY_MAX); past it the text is refused, except an Error's Code and
 * Message, which are cut. */
static size_t text_max(enum elem e)
{
	switch (e) {
	case E_SIZE:
		return SIZE_TEXT_MAX;
	case E_TRUNCATED:
		return 8;
	default:
		return S3_KEY_MAX;
	}
}

static bool is_leaf(enum elem e)
{
	return e >= E_KEY;
}

/* Splits an expat name into namespace and local name; true when the
 * namespace is the S3 one (false: none, or another; *other says which). */
static const char *local_name(const char *name, bool *s3, bool *other)
{
	const char *sep = strrchr(name, NS_SEP);

	*s3 = false;
	*other = false;
	if (!sep)
		return name;
	if ((size_t)(sep - name) == strlen(S3_NS) &&
	    !strncmp(name, S3_NS, strlen(S3_NS)))
		*s3 = true;
	else
		*other = true;
	return sep + 1;
}

static enum elem classify_root(struct state *st, const char *local, bool s3,
			       bool other)
{
	if (other) {
		fail(st, -EINVAL,
		     "not an S3 listing: root <%.64s> in another "
		     "namespace",
		     local);
		return E_OTHER;
	}
	st->root_s3 = s3;
	if (!strcmp(local, "Error")) {
		st->is_error = true;
		return E_ROOT;
	}
	if (strcmp(local, "ListBucketResult") != 0)
		fail(st, -EINVAL, "not an S3 listing: root <%.64s>", local);
	return E_ROOT;
}

/* What the element local under parent is; E_OTHER for what is ignored. */
static enum elem classify(const struct state *st, enum elem parent,
			  const char *local)
{
	static const struct {
		enum elem parent;
		bool error_doc;
		const char *name;
		enum elem e;
	} table[] = {
	    {E_ROOT, false, "Contents", E_CONTENTS},
	    {E_ROOT, false, "CommonPrefixes", E_PREFIXES},
	    {E_ROOT, false, "IsTruncated", E_TRUNCATED},
	    {E_ROOT, false, "NextContinuationToken", E_TOKEN},
	    {E_ROOT, true, "Code", E_CODE},
	    {E_ROOT, true, "Message", E_MESSAGE},
	    {E_CONTENTS, false, "Key", E_KEY},
	    {E_CONTENTS, false, "Size", E_SIZE},
	    {E_CONTENTS, false, "ETag", E_ETAG},
	    {E_PREFIXES, false, "Prefix", E_PREFIX},
	};
	size_t i;

	for (i = 0; i < sizeof(table) / sizeof(table[0]); i++)
		if (table[i].parent == parent &&
		    table[i].error_doc == st->is_error &&
		    !strcmp(table[i].name, local))
			return table[i].e;
	return E_OTHER;
}

static void XMLCALL on_start(void *arg, const XML_Char *name,
			     const XML_Char **attrs)
{
	struct state *st = arg;
	enum elem parent, e = E_OTHER;
	bool s3, other;
	const char *local = local_name(name, &s3, &other);

	(void)attrs;
	if (st->rc)
		return;
	if (st->depth == MAX_DEPTH) {
		fail(st, -EINVAL, "S3 listing nested deeper than %d elements",
		     MAX_DEPTH);
		return;
	}
	if (st->depth == 0) {
		e = classify_root(st, local, s3, other);
	} else {
		parent = st->stack[st->depth - 1];
		if (is_leaf(parent)) {
			fail(st, -EINVAL, "S3 listing has <%.64s> inside <%s>",
			     local, elem_name(parent));
			return;
		}
		if (!other && s3 == st->root_s3)
			e = classify(st, parent, local);
	}
	if (st->rc)
		return;
	st->stack[st->depth++] = e;
	if (e == E_CONTENTS) {
		memset(&st->cur, 0, sizeof(st->cur));
		st->have_key = st->have_size = false;
	} else if (e == E_PREFIXES) {
		st->cur_prefixes = 0;
	}
	st->capturing = is_leaf(e);
	st->textlen = 0;
}

static void XMLCALL on_text(void *arg, const XML_Char *s, int len)
{
	struct state *st = arg;
	enum elem e;
	size_t n, max;

	if (st->rc || !st->capturing || len <= 0)
		return;
	e = st->stack[st->depth - 1];
	n = (size_t)len;
	if (memchr(s, '\0', n)) {
		fail(st, -EINVAL, "S3 listing: <%s> holds a NUL", elem_name(e));
		return;
	}
	max = text_max(e);
	if (n > max - st->textlen) {
		if (e != E_CODE && e != E_MESSAGE) {
			fail(st, -EINVAL,
			     "S3 listing: <%s> longer than %zu bytes",
			     elem_name(e), max);
			return;
		}
		n = max - st->textlen;
	}
	memcpy(st->text + st->textlen, s, n);
	st->textlen += n;
	st->text[st->textlen] = '\0';
}

/* Grows an array of elements of size sz to hold one more, up to
 * S3_LIST_MAX_ENTRIES. */
static int grow(void **arr, size_t *cap, size_t count, size_t sz)
{
	size_t ncap;
	void *p;

	if (count < *cap)
		return 0;
	ncap = *cap ? *cap * 2 : 16;
	if (ncap > S3_LIST_MAX_ENTRIES)
		ncap = S3_LIST_MAX_ENTRIES;
	p = realloc(*arr, ncap * sz);
	if (!p)
		return -ENOMEM;
	*arr = p;
	*cap = ncap;
	return 0;
}

static bool room_for_entry(struct state *st)
{
	if (st->out->nobjects + st->out->nprefixes < S3_LIST_MAX_ENTRIES)
		return true;
	fail(st, -EINVAL, "S3 listing has more than %d entries",
	     S3_LIST_MAX_ENTRIES);
	return false;
}

static int parse_u64(const char *s, uint64_t *out)
{
	uint64_t v = 0;
	unsigned d;

	if (!*s)
		return -EINVAL;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -EINVAL;
		d = (unsigned)(*s - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -EINVAL;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

static char *dup_text(struct state *st)
{
	char *s = strdup(st->text);

	if (!s)
		fail(st, -ENOMEM, "out of memory");
	return s;
}

static void end_contents(struct state *st)
{
	struct s3_listing *l = st->out;

	if (!st->have_key || !st->have_size) {
		fail(st, -EINVAL, "S3 listing: <Contents> without %s",
		     st->have_key ? "<Size>" : "<Key>");
		return;
	}
	if (!st->cur.etag) {
		st->cur.etag = strdup("");
		if (!st->cur.etag) {
			fail(st, -ENOMEM, "out of memory");
			return;
		}
	}
	if (!room_for_entry(st))
		return;
	if (grow((void **)&l->objects, &st->cap_objects, l->nobjects,
		 sizeof(l->objects[0]))) {
		fail(st, -ENOMEM, "out of memory");
		return;
	}
	l->objects[l->nobjects++] = st->cur;
	memset(&st->cur, 0, sizeof(st->cur));
}

static void end_prefix(struct state *st)
{
	struct s3_listing *l = st->out;
	char *s;

	if (st->textlen == 0) {
		fail(st, -EINVAL,
		     "S3 listing: empty <Prefix> in "
		     "<CommonPrefixes>");
		return;
	}
	if (!room_for_entry(st))
		return;
	if (grow((void **)&l->prefixes, &st->cap_prefixes, l->nprefixes,
		 sizeof(l->prefixes[0]))) {
		fail(st, -ENOMEM, "out of memory");
		return;
	}
	s = dup_text(st);
	if (s) {
		l->prefixes[l->nprefixes++] = s;
		st->cur_prefixes++;
	}
}

/* Once per field; a second one would silently replace the first. */
static bool first(struct state *st, bool *seen, enum elem e)
{
	if (*seen) {
		fail(st, -EINVAL, "S3 listing: two <%s>", elem_name(e));
		return false;
	}
	*seen = true;
	return true;
}

static void end_leaf(struct state *st, enum elem e)
{
	bool have_token = st->out->next_token != NULL;
	bool have_etag = st->cur.etag != NULL;

	switch (e) {
	case E_KEY:
		if (!first(st, &st->have_key, e))
			return;
		if (st->textlen == 0)
			fail(st, -EINVAL, "S3 listing: empty <Key>");
		else
			st->cur.key = dup_text(st);
		return;
	case E_SIZE:
		if (first(st, &st->have_size, e) &&
		    parse_u64(st->text, &st->cur.size))
			fail(st, -EINVAL, "S3 listing: bad <Size> \"%.32s\"",
			     st->text);
		return;
	case E_ETAG:
		if (first(st, &have_etag, e))
			st->cur.etag = dup_text(st);
		return;
	case E_PREFIX:
		end_prefix(st);
		return;
	case E_TRUNCATED:
		if (!first(st, &st->have_truncated, e))
			return;
		if (!strcmp(st->text, "true"))
			st->out->truncated = true;
		else if (strcmp(st->text, "false") != 0)
			fail(st, -EINVAL,
			     "S3 listing: bad <IsTruncated> \"%.8s\"",
			     st->text);
		return;
	case E_TOKEN:
		if (first(st, &have_token, e) && st->textlen > 0)
			st->out->next_token = dup_text(st);
		return;
	case E_CODE:
		memcpy(st->code, st->text, st->textlen + 1);
		return;
	case E_MESSAGE:
		memcpy(st->message, st->text, st->textlen + 1);
		return;
	default:
		return;
	}
}

static void XMLCALL on_end(void *arg, const XML_Char *name)
{
	struct state *st = arg;
	enum elem e;

	(void)name;
	if (st->rc || st->depth == 0)
		return;
	e = st->stack[--st->depth];
	if (st->capturing) {
		st->text[st->textlen] = '\0';
		end_leaf(st, e);
		st->capturing = false;
	} else if (e == E_CONTENTS) {
		end_contents(st);
	} else if (e == E_PREFIXES && st->cur_prefixes == 0) {
		fail(st, -EINVAL,
		     "S3 listing: <CommonPrefixes> without "
		     "<Prefix>");
	}
}

static void XMLCALL on_doctype(void *arg, const XML_Char *name,
			       const XML_Char *sysid, const XML_Char *pubid,
			       int has_internal_subset)
{
	(void)name;
	(void)sysid;
	(void)pubid;
	(void)has_internal_subset;
	fail(arg, -EINVAL, "S3 listing with a DOCTYPE refused");
}

static void XMLCALL on_entity_decl(void *arg, const XML_Char *name,
				   int is_param, const XML_Char *value,
				   int value_len, const XML_Char *base,
				   const XML_Char *sysid, const XML_Char *pubid,
				   const XML_Char *notation)
{
	(void)name;
	(void)is_param;
	(void)value;
	(void)value_len;
	(void)base;
	(void)sysid;
	(void)pubid;
	(void)notation;
	fail(arg, -EINVAL, "S3 listing with an entity declaration refused");
}

/* Control characters of the server's text become spaces: err is one
 * line. */
static void one_line(char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = ' ';
}

/* The checks that need the whole document. */
static void finish(struct state *st)
{
	if (st->is_error) {
		one_line(st->code);
		one_line(st->message);
		fail(st, -EINVAL, "S3 error %s: %s",
		     *st->code ? st->code : "(no code)", st->message);
	} else if (st->out->truncated && !st->out->next_token) {
		fail(st, -EINVAL,
		     "S3 listing: IsTruncated true without a "
		     "NextContinuationToken");
	}
}

static XML_Parser parser_new(struct state *st)
{
	XML_Parser p = XML_ParserCreateNS(NULL, NS_SEP);

	if (!p)
		return NULL;
	XML_SetUserData(p, st);
	XML_SetElementHandler(p, on_start, on_end);
	XML_SetCharacterDataHandler(p, on_text);
	XML_SetStartDoctypeDeclHandler(p, on_doctype);
	XML_SetEntityDeclHandler(p, on_entity_decl);
	XML_SetParamEntityParsing(p, XML_PARAM_ENTITY_PARSING_NEVER);
	return p;
}

static int parse_error(struct state *st, char *err, size_t errlen)
{
	enum XML_Error code = XML_GetErrorCode(st->parser);

	if (!err || !errlen)
		return code == XML_ERROR_NO_MEMORY ? -ENOMEM : -EINVAL;
	if (code == XML_ERROR_NO_MEMORY) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	snprintf(err, errlen, "S3 listing is not XML: %s at line %lu",
		 XML_ErrorString(code),
		 (unsigned long)XML_GetCurrentLineNumber(st->parser));
	return -EINVAL;
}

int s3_list_parse(const char *xml, size_t len, struct s3_listing *out,
		  char *err, size_t errlen)
{
	struct state *st;
	int rc;

	if (err && errlen)
		err[0] = '\0';
	if (!out)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	if (!xml || len == 0 || len > S3_LIST_MAX_BYTES) {
		if (err && errlen)
			snprintf(err, errlen, "S3 listing is %s",
				 xml && len ? "larger than 8 MiB" : "empty");
		return -EINVAL;
	}
	st = calloc(1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	st->out = out;
	st->err = err;
	st->errlen = errlen;
	st->parser = parser_new(st);
	if (!st->parser) {
		free(st);
		return -ENOMEM;
	}
	if (XML_Parse(st->parser, xml, (int)len, XML_TRUE) == XML_STATUS_OK)
		finish(st);
	rc = st->rc;
	if (!rc && XML_GetErrorCode(st->parser) != XML_ERROR_NONE)
		rc = parse_error(st, err, errlen);
	free(st->cur.key);
	free(st->cur.etag);
	XML_ParserFree(st->parser);
	free(st);
	if (rc)
		s3_listing_free(out);
	return rc;
}

void s3_listing_free(struct s3_listing *l)
{
	size_t i;

	if (!l)
		return;
	for (i = 0; i < l->nobjects; i++) {
		free(l->objects[i].key);
		free(l->objects[i].etag);
	}
	free(l->objects);
	for (i = 0; i < l->nprefixes; i++)
		free(l->prefixes[i]);
	free(l->prefixes);
	free(l->next_token);
	memset(l, 0, sizeof(*l));
}

static bool unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
	       c == '~';
}

/* Appends name=value (value percent-encoded) at *pos; the caller sized
 * buf for it. */
static void add_param(char *buf, size_t *pos, const char *name,
		      const char *value)
{
	static const char hex[] = "0123456789ABCDEF";
	const unsigned char *v = (const unsigned char *)value;
	size_t n = *pos;

	for (; *name; name++)
		buf[n++] = *name;
	for (; *v; v++) {
		if (unreserved(*v)) {
			buf[n++] = (char)*v;
			continue;
		}
		buf[n++] = '%';
		buf[n++] = hex[*v >> 4];
		buf[n++] = hex[*v & 15];
	}
	*pos = n;
}

/* Room for name=value encoded, added to *total; false on overflow. */
static bool reserve(size_t *total, const char *name, const char *value)
{
	size_t vlen = value ? strlen(value) : 0;

	if (vlen > (SIZE_MAX - *total) / 4)
		return false;
	*total += strlen(name) + 3 * vlen;
	return true;
}

char *s3_list_url(const char *bucket_url, const char *prefix,
		  const char *delimiter, const char *token, unsigned max_keys)
{
	size_t total = 64, pos = 0; /* the fixed parts and max-keys */
	char *buf;

	if (!bucket_url) {
		errno = EINVAL;
		return NULL;
	}
	if (!prefix)
		prefix = "";
	if (!reserve(&total, "", bucket_url) ||
	    !reserve(&total, "?list-type=2&prefix=", prefix) ||
	    !reserve(&total, "&delimiter=", delimiter) ||
	    !reserve(&total, "&continuation-token=", token)) {
		errno = ENOMEM;
		return NULL;
	}
	buf = malloc(total);
	if (!buf) {
		errno = ENOMEM;
		return NULL;
	}
	pos = (size_t)snprintf(buf, total, "%s?list-type=2", bucket_url);
	add_param(buf, &pos, "&prefix=", prefix);
	if (delimiter)
		add_param(buf, &pos, "&delimiter=", delimiter);
	if (token)
		add_param(buf, &pos, "&continuation-token=", token);
	if (max_keys > 0)
		pos += (size_t)snprintf(buf + pos, total - pos, "&max-keys=%u",
					max_keys);
	buf[pos] = '\0';
	return buf;
}

/* ---- bounds on a listing of many pages ---- */

void s3_pager_init(struct s3_pager *p, size_t *keys)
{
	memset(p, 0, sizeof(*p));
	p->keys = keys;
}

int s3_pager_take(struct s3_pager *p, const struct s3_listing *l)
{
	size_t n = l->nobjects + l->nprefixes;

	p->pages++;
	if (n > S3_REFRESH_KEYS_MAX - *p->keys) {
		snprintf(p->why, sizeof(p->why),
			 "more than %d keys in one refresh",
			 S3_REFRESH_KEYS_MAX);
		p->spent = true;
		return -E2BIG;
	}
	*p->keys += n;
	return 0;
}

static bool token_seen(const struct s3_pager *p, const char *token)
{
	size_t i;

	for (i = 0; i < p->ntokens; i++)
		if (!strcmp(p->tokens[i], token))
			return true;
	return false;
}

int s3_pager_next(struct s3_pager *p, const struct s3_listing *l)
{
	const char *why = NULL;

	if (!l->truncated)
		return 0;
	if (!l->next_token || !*l->next_token)
		why = "a page is truncated without a continuation token";
	else if (p->pages >= S3_LIST_PAGES_MAX ||
		 p->ntokens >= S3_LIST_PAGES_MAX)
		why = "the page limit reached";
	else if (token_seen(p, l->next_token))
		why = "a continuation token came back (a loop)";
	if (why) {
		snprintf(p->why, sizeof(p->why), "%s (%u pages read)", why,
			 p->pages);
		return -E2BIG;
	}
	p->tokens[p->ntokens] = strdup(l->next_token);
	if (!p->tokens[p->ntokens])
		return -ENOMEM;
	p->ntokens++;
	return 1;
}

void s3_pager_free(struct s3_pager *p)
{
	size_t i;

	if (!p)
		return;
	for (i = 0; i < p->ntokens; i++)
		free(p->tokens[i]);
	p->ntokens = 0;
}
