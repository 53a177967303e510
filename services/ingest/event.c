/* event.c: one update or test sample → a normalized, packed TelemetrySample with its
 * deterministic event id.
 *
 * The event id is a name-based UUID (version 5, SHA-1, RFC 9562 §5.5) in the namespace
 * ING_NAMESPACE over the canonical bytes
 *   SB_TELEMETRY_ID_NAMESPACE (sb_names.h) NUL source NUL item NUL server_ts NUL
 *   then per field of the mapping, in order: name NUL kind NUL value NUL
 * where server_ts is the decimal Unix ms or empty when there is none, kind is one of s, d, i, b,
 * n (null), and value is the typed value written canonically (double "%.17g", int64 decimal,
 * bool "true"/"false", string as is, null empty). So a replayed update — the same values at the
 * same server time — gets the same id, whatever its text looked like on the wire ("1.50" and
 * "1.5" are one value), and ingest_ts, origin and the connection it came on do not matter. */
#include "ingest.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "sb_buf.h"
#include "sb_err.h"
#include "sb_names.h"
#include "events/telemetry.pb-c.h"

/* f79563fc-384a-4ed2-978f-a6974c742a25: the namespace of Switchboard telemetry event ids. */
static const uint8_t ING_NAMESPACE[16] = { 247, 149, 99,  252, 56, 74,  78, 210,
	                                   151, 143, 166, 151, 76, 116, 42, 37 };

void
ing_uuid_v5(const uint8_t ns[16], const void *name, size_t len, char out[37])
{
	static const char hex[] = "0123456789abcdef";
	uint8_t md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	if (!c || EVP_DigestInit_ex(c, EVP_sha1(), NULL) != 1 || EVP_DigestUpdate(c, ns, 16) != 1 ||
	    EVP_DigestUpdate(c, name, len) != 1 || EVP_DigestFinal_ex(c, md, &mdlen) != 1)
		abort(); /* SHA-1 is always there; a failure here is a broken process */
	EVP_MD_CTX_free(c);
	md[6] = (uint8_t)((md[6] & 0x0f) | 0x50);
	md[8] = (uint8_t)((md[8] & 0x3f) | 0x80);
	size_t j = 0;
	for (int i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[j++] = '-';
		out[j++] = hex[md[i] >> 4];
		out[j++] = hex[md[i] & 15];
	}
	out[j] = '\0';
}

static int64_t
ing_year_start_ms(int64_t now_ms)
{
	time_t t = (time_t)(now_ms / 1000);
	struct tm tm;
	gmtime_r(&t, &tm);
	tm.tm_mon = 0;
	tm.tm_mday = 1;
	tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
	return (int64_t)timegm(&tm) * 1000;
}

static int
ing_parse_double(const char *s, double *out)
{
	char *end;
	if (!*s || *s == ' ')
		return SB_EINVAL;
	errno = 0;
	double d = strtod(s, &end);
	if (*end || errno == ERANGE || !isfinite(d))
		return SB_EINVAL;
	*out = d;
	return 0;
}

int
ing_ts_parse(const char *text, enum ing_ts_unit unit, int64_t now_ms, int64_t *out)
{
	double d;
	if (ing_parse_double(text, &d) || d < 0)
		return SB_EINVAL;
	switch (unit) {
	case ING_TS_MS:
		d = floor(d);
		break;
	case ING_TS_S:
		d = floor(d * 1000);
		break;
	case ING_TS_YEAR_HOURS:
		if (d > 24 * 367)
			return SB_EINVAL;
		d = (double)ing_year_start_ms(now_ms) + floor(d * 3600000.0);
		break;
	default:
		return SB_EINVAL;
	}
	if (d > 9.0e15)
		return SB_EINVAL;
	*out = (int64_t)d;
	return 0;
}

void
ing_event_free(struct ing_event *e)
{
	if (!e)
		return;
	free(e->item);
	free(e->value);
	free(e);
}

static int
ing_typed(const struct ing_field *f, const struct ing_raw *r, Sb__Events__TelemetryField *out,
          struct sb_buf *name, char *err, size_t n)
{
	char canon[40];
	const char *ctext = "";
	size_t clen = 0;
	char kind;
	out->name = f->name;
	if (!r->text) {
		out->value_case = SB__EVENTS__TELEMETRY_FIELD__VALUE_NULL_VALUE;
		out->null_value = 1;
		kind = 'n';
	} else {
		switch (f->type) {
		case ING_F_DOUBLE: {
			double d;
			if (ing_parse_double(r->text, &d)) {
				snprintf(err, n, "not a finite number");
				return SB_EINVAL;
			}
			if (d == 0)
				d = 0; /* -0 and 0 are one value */
			out->value_case = SB__EVENTS__TELEMETRY_FIELD__VALUE_NUMBER;
			out->number = d;
			clen = (size_t)snprintf(canon, sizeof(canon), "%.17g", d);
			ctext = canon;
			kind = 'd';
			break;
		}
		case ING_F_INT64: {
			char *end;
			errno = 0;
			long long v = strtoll(r->text, &end, 10);
			if (!*r->text || *end || errno == ERANGE || *r->text == ' ') {
				snprintf(err, n, "not a 64-bit integer");
				return SB_EINVAL;
			}
			out->value_case = SB__EVENTS__TELEMETRY_FIELD__VALUE_INTEGER;
			out->integer = v;
			clen = (size_t)snprintf(canon, sizeof(canon), "%lld", v);
			ctext = canon;
			kind = 'i';
			break;
		}
		case ING_F_BOOL:
			if (strcmp(r->text, "true") == 0 || strcmp(r->text, "1") == 0) {
				out->flag = 1;
			} else if (strcmp(r->text, "false") == 0 || strcmp(r->text, "0") == 0) {
				out->flag = 0;
			} else {
				snprintf(err, n, "not a boolean (true, false, 1, 0)");
				return SB_EINVAL;
			}
			out->value_case = SB__EVENTS__TELEMETRY_FIELD__VALUE_FLAG;
			ctext = out->flag ? "true" : "false";
			clen = strlen(ctext);
			kind = 'b';
			break;
		default:
			if (r->len > ING_MAX_VALUE) {
				snprintf(err, n, "longer than %d bytes", ING_MAX_VALUE);
				return SB_EINVAL;
			}
			out->value_case = SB__EVENTS__TELEMETRY_FIELD__VALUE_TEXT;
			out->text = (char *)r->text;
			ctext = r->text;
			clen = r->len;
			kind = 's';
		}
	}
	int rc = sb_buf_append(name, f->name, strlen(f->name) + 1);
	if (!rc)
		rc = sb_buf_append(name, (char[]){ kind, '\0' }, 2);
	if (!rc)
		rc = sb_buf_append(name, ctext, clen);
	if (!rc)
		rc = sb_buf_append(name, "", 1);
	return rc;
}

int
ing_event_build(const struct ing_mapping *m, const char *item, const struct ing_raw *vals,
                int64_t server_ts_ms, const char *origin, int64_t ingest_ts_ms,
                struct ing_event **out, int *bad_field, char *err, size_t n)
{
	int ret = SB_ENOMEM;
	struct sb_buf name = SB_BUF_INIT;
	Sb__Events__TelemetryField *fv = calloc(m->nfields, sizeof(*fv));
	Sb__Events__TelemetryField **fp = calloc(m->nfields, sizeof(*fp));
	struct ing_event *e = calloc(1, sizeof(*e));
	Sb__Events__TelemetrySample s = SB__EVENTS__TELEMETRY_SAMPLE__INIT;
	Sb__Events__TelemetryTime ts = SB__EVENTS__TELEMETRY_TIME__INIT;
	if (!fv || !fp || !e)
		goto fail;
	if (server_ts_ms < 0 && m->ts_field >= 0 && vals[m->ts_field].text) {
		if (ing_ts_parse(vals[m->ts_field].text, m->ts_unit, ingest_ts_ms, &server_ts_ms)) {
			if (bad_field)
				*bad_field = m->ts_field;
			snprintf(err, n, "not a timestamp");
			ret = SB_EINVAL;
			goto fail;
		}
	}
	char tsbuf[24] = "";
	if (server_ts_ms >= 0)
		snprintf(tsbuf, sizeof(tsbuf), "%lld", (long long)server_ts_ms);
	if (sb_buf_append(&name, SB_TELEMETRY_ID_NAMESPACE, sizeof(SB_TELEMETRY_ID_NAMESPACE)) ||
	    sb_buf_append(&name, m->source, strlen(m->source) + 1) ||
	    sb_buf_append(&name, item, strlen(item) + 1) ||
	    sb_buf_append(&name, tsbuf, strlen(tsbuf) + 1))
		goto fail;
	for (size_t i = 0; i < m->nfields; i++) {
		sb__events__telemetry_field__init(&fv[i]);
		fp[i] = &fv[i];
		int rc = ing_typed(&m->fields[i], &vals[i], &fv[i], &name, err, n);
		if (rc) {
			if (rc == SB_EINVAL && bad_field)
				*bad_field = (int)i;
			ret = rc;
			goto fail;
		}
	}
	ing_uuid_v5(ING_NAMESPACE, name.data, name.len, e->event_id);
	s.schema_version = ING_SCHEMA_VER;
	s.event_id = e->event_id;
	s.source = m->source;
	s.item = (char *)item;
	s.n_fields = m->nfields;
	s.fields = fp;
	if (server_ts_ms >= 0) {
		ts.ms = server_ts_ms;
		s.server_ts = &ts;
	}
	s.ingest_ts_ms = ingest_ts_ms;
	s.origin = (char *)origin;
	e->vlen = sb__events__telemetry_sample__get_packed_size(&s);
	e->value = malloc(e->vlen ? e->vlen : 1);
	e->item = strdup(item);
	if (!e->value || !e->item)
		goto fail;
	sb__events__telemetry_sample__pack(&s, e->value);
	e->ingest_ts_ms = ingest_ts_ms;
	sb_buf_free(&name);
	free(fv);
	free(fp);
	*out = e;
	return 0;
fail:
	if (ret == SB_ENOMEM)
		snprintf(err, n, "out of memory");
	sb_buf_free(&name);
	free(fv);
	free(fp);
	ing_event_free(e);
	return ret;
}
