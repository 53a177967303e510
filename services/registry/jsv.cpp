// jsv.cpp: the thin C++ shim between the registry's C and valijson (see jsv.h).
#include "jsv.h"

#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>
#include <valijson/adapters/nlohmann_json_adapter.hpp>
#include <valijson/schema.hpp>
#include <valijson/schema_parser.hpp>
#include <valijson/validation_results.hpp>
#include <valijson/validator.hpp>

struct reg_jsv {
	valijson::Schema schema;
	/* Validators not in use. A validator keeps the regexes of "pattern" compiled (std::regex
	 * construction costs far more than matching) but is not thread-safe: each validation
	 * takes one from here, or makes one, and gives it back. */
	std::mutex mu;
	std::vector<std::unique_ptr<valijson::Validator>> idle;
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

/* jsv_same_instance lists the schemas n applies to the very instance it is given (allOf,
 * anyOf, oneOf, not, if/then/else, and the target of a local $ref). */
std::vector<const nlohmann::json *>
jsv_same_instance(const nlohmann::json &doc, const nlohmann::json &n)
{
	std::vector<const nlohmann::json *> out;
	if (!n.is_object())
		return out;
	for (const char *kw : { "allOf", "anyOf", "oneOf" }) {
		auto it = n.find(kw);
		if (it != n.end() && it->is_array())
			for (const auto &x : *it)
				out.push_back(&x);
	}
	for (const char *kw : { "not", "if", "then", "else" }) {
		auto it = n.find(kw);
		if (it != n.end())
			out.push_back(&*it);
	}
	auto it = n.find("$ref");
	if (it != n.end() && it->is_string()) {
		const std::string &r = it->get_ref<const std::string &>();
		if (!r.empty() && r[0] == '#') {
			try {
				out.push_back(&doc.at(nlohmann::json::json_pointer(r.substr(1))));
			} catch (...) {
				/* unresolvable: valijson refuses it */
			}
		}
	}
	return out;
}

/* jsv_ref_cycle tells whether some schema of doc (nodes: every object) applies itself to the
 * same instance again through allOf/anyOf/oneOf/not/if/then/else/$ref alone: validating
 * with it would never end (valijson recurses until the stack runs out). */
bool
jsv_ref_cycle(const nlohmann::json &doc, const std::vector<const nlohmann::json *> &nodes)
{
	std::unordered_map<const nlohmann::json *, int> color; /* 1 on the path, 2 done */
	for (const nlohmann::json *start : nodes) {
		if (color[start] != 0)
			continue;
		std::vector<std::pair<const nlohmann::json *, std::vector<const nlohmann::json *>>>
		    path;
		color[start] = 1;
		path.emplace_back(start, jsv_same_instance(doc, *start));
		while (!path.empty()) {
			auto &top = path.back();
			if (top.second.empty()) {
				color[top.first] = 2;
				path.pop_back();
				continue;
			}
			const nlohmann::json *next = top.second.back();
			top.second.pop_back();
			int c = color[next];
			if (c == 1)
				return true;
			if (c == 0) {
				color[next] = 1;
				path.emplace_back(next, jsv_same_instance(doc, *next));
			}
		}
	}
	return false;
}

/* jsv_check walks doc without recursion: it must nest at most JSV_MAX_DEPTH deep (valijson
 * parses recursively), and without a fetch callback every "$ref" must point into the document
 * ("#..."): valijson resolves any other reference against the document itself when it cannot
 * fetch, and a reference that resolves to itself that way never ends. */
#define JSV_MAX_DEPTH 256

const char *
jsv_check(const nlohmann::json &doc, bool local_refs_only)
{
	std::vector<std::pair<const nlohmann::json *, int>> todo{ { &doc, 0 } };
	std::vector<const nlohmann::json *> nodes;
	while (!todo.empty()) {
		auto [j, depth] = todo.back();
		todo.pop_back();
		if (j->is_object())
			nodes.push_back(j);
		if (depth > JSV_MAX_DEPTH)
			return "the schema nests too deep";
		if (j->is_object()) {
			for (auto it = j->begin(); it != j->end(); ++it) {
				if (local_refs_only && it.key() == "$ref" &&
				    it.value().is_string()) {
					const std::string &r =
					    it.value().get_ref<const std::string &>();
					if (r.empty() || r[0] != '#')
						return "only local references are supported";
				}
				todo.emplace_back(&it.value(), depth + 1);
			}
		} else if (j->is_array()) {
			for (const auto &x : *j)
				todo.emplace_back(&x, depth + 1);
		}
	}
	if (jsv_ref_cycle(doc, nodes))
		return "a schema applies itself to the same value without end ($ref cycle)";
	return nullptr;
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
		if (const char *why = jsv_check(doc, fetch == nullptr)) {
			copy_str(err, n, why);
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
		struct reg_jsv *ms = const_cast<struct reg_jsv *>(s); /* only its pool changes */
		std::unique_ptr<valijson::Validator> v;
		{
			std::lock_guard<std::mutex> g(ms->mu);
			if (!ms->idle.empty()) {
				v = std::move(ms->idle.back());
				ms->idle.pop_back();
			}
		}
		if (!v)
			v = std::make_unique<valijson::Validator>(
			    valijson::Validator::kStrongTypes);
		valijson::adapters::NlohmannJsonAdapter adapter(d);
		valijson::ValidationResults results;
		bool ok = v->validate(s->schema, adapter, &results);
		{
			std::lock_guard<std::mutex> g(ms->mu);
			ms->idle.push_back(std::move(v));
		}
		if (ok)
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
		if (i == 0) {
			/* valijson names no constraint for some refusals (the schema false) */
			if (max > 0) {
				errs[0].pointer[0] = '\0';
				copy_str(errs[0].message, sizeof(errs[0].message),
				         "the document does not match the schema");
			}
			i = 1;
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
