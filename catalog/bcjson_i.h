/* SPDX-License-Identifier: MIT */
/*
 * bcjson_i.h - the bounded JSON helpers of the buildcache parsers
 * (bcparse.c has them; bcspec.c uses them too). json-c with a depth
 * limit, strict UTF-8, and a reason in err for every refusal.
 */
#ifndef SFFS_BCJSON_I_H
#define SFFS_BCJSON_I_H

#include <json-c/json.h>
#include <stddef.h>

/* err = "" (when there is room). */
void bc_err_clear(char *err, size_t errlen);
/* doc as a JSON object (json_object_put it), or -EINVAL/-ENOMEM with a
 * reason naming what. */
int bc_parse_doc(const char *doc, size_t len, const char *what,
		 struct json_object **out, char *err, size_t errlen);
/* The member key of obj if it has type t; NULL if absent. A member of
 * another type is an error (*rc). */
struct json_object *bc_member(struct json_object *obj, const char *key,
			      enum json_type t, int *rc, char *err,
			      size_t errlen);
/* Like bc_member, but absence is an error too. */
struct json_object *bc_need(struct json_object *obj, const char *key,
			    enum json_type t, char *err, size_t errlen);

#endif
