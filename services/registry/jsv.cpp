// jsv.cpp: the thin C++ shim between the registry's C and valijson (see jsv.h).
#include "jsv.h"

#include <cstdlib>
#include <cstring>
#include <new>
#include <string>

#include <nlohmann/json.hpp>
#include <valijson/adapters/nlohmann_json_adapter.hpp>
#include <valijson/schema.hpp>
#include <valijson/schema_parser.hpp>
#include <valijson/validation_results.hpp>
#include <valijson/validator.hpp>

struct reg_jsv {
	valijson::Schema schema;
};

namespace
{

void
copy_str(char *dst, size_t n, const std::string &s)
{
	if (n == 0)
		return;
	size_t k = s.size() < n - 1 ? s.size() : n - 1;
	/* never cut a UTF-8 sequence: step back over continuation bytes */
	while (k > 0 && k < s.size() && (static_cast<unsigned char>(s[k]) & 0xC0) == 0x80)
		k--;
	std::memcpy(dst, s.data(), k);
	dst[k] = '\0';
}

/* jsv_pointer turns valijson's context ("<root>", "[name]", "[0]", ...) into a JSON pointer:
 * each element's text between the outer brackets, with '~' and '/' escaped (RFC 6901). */
std::string
jsv_pointer(const std::vector<std::string> &ctx)
{
	std::string p;
	for (const std::string &c : ctx) {
		if (c.size() < 2 || c.front() != '[' || c.back() != ']')
			continue; /* "<root>" */
		p += '/';
		for (size_t i = 1; i + 1 < c.size(); i++) {
			if (c[i] == '~')
				p += "~0";
			else if (c[i] == '/')
				p += "~1";
			else
				p += c[i];
		}
	}
	return p;
}

} // namespace

extern "C" int
reg_jsv_compile(const char *schema, size_t len, enum reg_jsv_draft draft, reg_jsv_fetch_fn fetch,
                void *arg, struct reg_jsv **out, char *err, size_t n)
{
	*out = nullptr;
	if (n > 0)
		err[0] = '\0';
	try {
		nlohmann::json doc = nlohmann::json::parse(schema, schema + len);
		if (!doc.is_object() && !(doc.is_boolean() && draft == REG_JSV_DRAFT7)) {
			copy_str(err, n, "a schema is a JSON object (or a boolean, draft 7)");
			return -1;
		}
		auto *s = new reg_jsv();
		valijson::SchemaParser parser(draft == REG_JSV_DRAFT4
		                                  ? valijson::SchemaParser::kDraft4
		                                  : valijson::SchemaParser::kDraft7);
		valijson::adapters::NlohmannJsonAdapter adapter(doc);
		try {
			if (fetch != nullptr) {
				auto fetch_doc =
				    [fetch, arg](const std::string &uri) -> const nlohmann::json * {
					char *text = fetch(arg, uri.c_str());
					if (text == nullptr)
						return nullptr;
					nlohmann::json *d = nullptr;
					try {
						d = new nlohmann::json(nlohmann::json::parse(text));
					} catch (...) {
						d = nullptr;
					}
					std::free(text);
					return d;
				};
				auto free_doc = [](const nlohmann::json *d) { delete d; };
				parser.populateSchema(adapter, s->schema, fetch_doc, free_doc);
			} else {
				parser.populateSchema(adapter, s->schema);
			}
		} catch (...) {
			delete s;
			throw;
		}
		*out = s;
		return 0;
	} catch (const std::bad_alloc &) {
		copy_str(err, n, "out of memory");
		return -2;
	} catch (const std::exception &e) {
		copy_str(err, n, e.what());
		return -1;
	} catch (...) {
		copy_str(err, n, "the schema cannot be compiled");
		return -1;
	}
}

extern "C" int
reg_jsv_validate(const struct reg_jsv *s, const char *doc, size_t len, struct reg_jsv_error *errs,
                 size_t max, size_t *nerrs)
{
	*nerrs = 0;
	try {
		nlohmann::json d = nlohmann::json::parse(doc, doc + len);
		valijson::Validator v(valijson::Validator::kStrongTypes);
		valijson::adapters::NlohmannJsonAdapter adapter(d);
		valijson::ValidationResults results;
		if (v.validate(s->schema, adapter, &results))
			return 0;
		valijson::ValidationResults::Error e;
		size_t i = 0;
		while (results.popError(e)) {
			if (i < max) {
				copy_str(errs[i].pointer, sizeof(errs[i].pointer),
				         jsv_pointer(e.context));
				copy_str(errs[i].message, sizeof(errs[i].message), e.description);
			}
			i++;
		}
		*nerrs = i;
		return 1;
	} catch (const std::bad_alloc &) {
		return -2;
	} catch (const std::exception &e) {
		if (max > 0) {
			errs[0].pointer[0] = '\0';
			copy_str(errs[0].message, sizeof(errs[0].message), e.what());
		}
		return -1;
	}
}

extern "C" void
reg_jsv_free(struct reg_jsv *s)
{
	delete s;
}
