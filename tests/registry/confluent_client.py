"""Confluent's own SchemaRegistryClient (PyPI confluent-kafka) against the registry's
Confluent-compatible API: register, fetch by id and by version, lookup, compatibility tests
and levels, subjects and versions, delete, the errors clients act on, and a JSONSerializer /
JSONDeserializer round trip through the registry, and a schema with a reference (registered,
fetched back with it, a document validated through it on both sides). Run by tests/integration/registry_confluent_test.sh
with SB_REGISTRY_URL (the API's root) and SB_TOKEN_ADMIN / SB_TOKEN_READER / SB_TOKEN_ALICE."""
import json
import os
import sys

from confluent_kafka.schema_registry import Schema, SchemaReference, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.schema_registry.json_schema import JSONDeserializer, JSONSerializer
from confluent_kafka.serialization import MessageField, SerializationContext, SerializationError

URL = os.environ["SB_REGISTRY_URL"]
failures = []


def client(token):
    return SchemaRegistryClient({
        "url": URL,
        "bearer.auth.credentials.source": "STATIC_TOKEN",
        "bearer.auth.token": token,
        "bearer.auth.logical.cluster": "switchboard",
        "max.retries": 0,
    })


def check(what, cond, detail=""):
    if cond:
        print("ok:", what)
    else:
        print("FAIL:", what, detail)
        failures.append(what)


def expect_error(what, fn, status, code=None):
    try:
        fn()
    except SchemaRegistryError as e:
        check(what, e.http_status_code == status and (code is None or e.error_code == code),
              "got %s/%s %s" % (e.http_status_code, e.error_code, e.error_message))
        return
    check(what, False, "no error")


admin = client(os.environ["SB_TOKEN_ADMIN"])
reader = client(os.environ["SB_TOKEN_READER"])
alice = client(os.environ["SB_TOKEN_ALICE"])

v1 = {"type": "object", "properties": {"id": {"type": "string"}}, "required": ["id"],
      "additionalProperties": False}
v2 = dict(v1, properties={"id": {"type": "string"}, "qty": {"type": "integer"}})
bad = dict(v1, properties={"id": {"type": "integer"}})

s1 = Schema(json.dumps(v1), "JSON")
id1 = admin.register_schema("payments-value", s1)
check("register returns an id", isinstance(id1, int) and id1 > 0, id1)
check("registering the same schema again gives the same id",
      client(os.environ["SB_TOKEN_ADMIN"]).register_schema("payments-value", s1) == id1)
fetched = reader.get_schema(id1)
check("get_schema(id) returns the schema", json.loads(fetched.schema_str) == v1 and
      fetched.schema_type == "JSON", fetched.schema_str)
latest = reader.get_latest_version("payments-value")
check("get_latest_version", latest.schema_id == id1 and latest.version == 1 and
      latest.subject == "payments-value", latest)

# BACKWARD (the global default): an optional property added to a closed model is compatible
check("test_compatibility: optional property added to a closed model",
      reader.test_compatibility("payments-value", Schema(json.dumps(v2), "JSON")) is True)
check("test_compatibility: a changed type is not",
      reader.test_compatibility("payments-value", Schema(json.dumps(bad), "JSON")) is False)
id2 = admin.register_schema("payments-value", Schema(json.dumps(v2), "JSON"))
check("register v2", id2 != id1)
check("get_versions", reader.get_versions("payments-value") == [1, 2])
check("get_version(1)", reader.get_version("payments-value", 1).schema_id == id1)
found = reader.lookup_schema("payments-value", Schema(json.dumps(v2), "JSON"))
check("lookup_schema finds v2", found.schema_id == id2 and found.version == 2, found)
expect_error("registering an incompatible schema: 409",
             lambda: admin.register_schema("payments-value", Schema(json.dumps(bad), "JSON")), 409)
check("get_subjects", "payments-value" in reader.get_subjects())

# levels
check("global level is BACKWARD", reader.get_compatibility() == "BACKWARD")
admin.set_compatibility("payments-value", "NONE")
check("subject level set to NONE", reader.get_compatibility("payments-value") == "NONE")
id3 = admin.register_schema("payments-value", Schema(json.dumps(bad), "JSON"))
check("under NONE the changed type registers", id3 not in (id1, id2))
admin.set_compatibility("payments-value", "FULL_TRANSITIVE")
check("FULL_TRANSITIVE set", reader.get_compatibility("payments-value") == "FULL_TRANSITIVE")
check("test_compatibility under FULL_TRANSITIVE (v1 vs the changed type: no)",
      reader.test_compatibility("payments-value", Schema(json.dumps(v1), "JSON")) is False)
expect_error("a bad level: 422", lambda: admin.set_compatibility("payments-value", "SIDEWAYS"),
             422, 42203)

# errors clients act on
expect_error("unknown subject: 40401", lambda: reader.get_latest_version("nope"), 404, 40401)
expect_error("unknown version: 40402", lambda: reader.get_version("payments-value", 99), 404, 40402)
expect_error("unknown id: 40403", lambda: client(os.environ["SB_TOKEN_READER"]).get_schema(987654),
             404, 40403)
expect_error("an invalid schema: 42201",
             lambda: admin.register_schema("x-value", Schema('{"type": 5}', "JSON")), 422, 42201)
expect_error("an Avro schema: 42201 (JSON only)",
             lambda: admin.register_schema("x-value", Schema('{"type":"string"}', "AVRO")), 422,
             42201)
expect_error("alice (no registry scope) cannot read: 403",
             lambda: alice.get_subjects(), 403)
expect_error("a reader cannot register: 403",
             lambda: reader.register_schema("y-value", s1), 403)

# a serializer and deserializer that fetch from the registry
ser = JSONSerializer(json.dumps(v1), admin, conf={"auto.register.schemas": True})
ctx = SerializationContext("orders", MessageField.VALUE)
data = ser({"id": "o-1"}, ctx)
check("JSONSerializer frames with the schema id", data[0] == 0 and
      int.from_bytes(data[1:5], "big") > 0)
de = JSONDeserializer(None, schema_registry_client=reader)
check("JSONDeserializer fetches the schema and reads back", de(data, ctx) == {"id": "o-1"})

# schema references: customer-value refers to address by the name its $ref uses
addr = {"type": "object", "required": ["street"],
        "properties": {"street": {"type": "string"},
                       "zip": {"type": "string", "pattern": "^[0-9]{5}$"}}}
cust = {"type": "object", "required": ["name", "home"],
        "properties": {"name": {"type": "string"}, "home": {"$ref": "address.json"}}}
ida = admin.register_schema("address", Schema(json.dumps(addr), "JSON"))
cust_schema = Schema(json.dumps(cust), "JSON",
                     references=[SchemaReference("address.json", "address", 1)])
idc = admin.register_schema("customer-value", cust_schema)
check("register a schema with a reference", isinstance(idc, int) and idc not in (ida, 0))
got = client(os.environ["SB_TOKEN_READER"]).get_schema(idc)
refs = [(r.name, r.subject, r.version) for r in (got.references or [])]
check("get_schema(id) returns its references", refs == [("address.json", "address", 1)], refs)
check("  ... and the schema as registered", json.loads(got.schema_str) == cust, got.schema_str)
latest = reader.get_latest_version("customer-value")
check("get_latest_version returns the references",
      [r.name for r in (latest.schema.references or [])] == ["address.json"], latest)
check("lookup_schema with the references finds it",
      admin.lookup_schema("customer-value", cust_schema).schema_id == idc)
ser = JSONSerializer(cust_schema, admin, conf={"auto.register.schemas": True})
cctx = SerializationContext("customer", MessageField.VALUE)
doc = {"name": "n", "home": {"street": "s", "zip": "12345"}}
data = ser(doc, cctx)
check("JSONSerializer resolves the reference and frames with the schema's id",
      int.from_bytes(data[1:5], "big") == idc)
try:
    ser({"name": "n", "home": {"street": "s", "zip": "1"}}, cctx)
    check("a document that breaks the referenced schema is refused by the serializer", False)
except SerializationError:
    check("a document that breaks the referenced schema is refused by the serializer", True)
de = JSONDeserializer(None, schema_registry_client=client(os.environ["SB_TOKEN_READER"]))
check("JSONDeserializer fetches the schema and its reference and reads back", de(data, cctx) == doc)
expect_error("the referenced version cannot be deleted: 42206",
             lambda: admin.delete_version("address", 1), 422, 42206)

# Basic credentials (basic.auth.user.info, as most Confluent tooling is configured): the
# registry exchanges them with auth for the client's access token
basic = SchemaRegistryClient({
    "url": URL,
    "basic.auth.user.info": os.environ["SB_ADMIN_BASIC"],
    "max.retries": 0,
})
idb = basic.register_schema("basic-value", Schema(json.dumps(v1), "JSON"))
check("a client with Basic credentials registers", isinstance(idb, int) and idb > 0, idb)
check("  ... and reads in the same tenant as its bearer token",
      reader.get_latest_version("basic-value").schema_id == idb)
bad_basic = SchemaRegistryClient({
    "url": URL,
    "basic.auth.user.info": os.environ["SB_ADMIN_BASIC"].split(":")[0] + ":wrong",
    "max.retries": 0,
})
expect_error("a wrong secret: 401", lambda: bad_basic.get_subjects(), 401, 40101)

# delete
deleted = admin.delete_subject("payments-value")
check("delete_subject returns the versions", sorted(deleted) == [1, 2, 3], deleted)
check("a deleted subject is gone from the list", "payments-value" not in reader.get_subjects())
expect_error("a deleted subject: 40401",
             lambda: client(os.environ["SB_TOKEN_READER"]).get_latest_version("payments-value"),
             404, 40401)

if failures:
    print("FAIL: %d check(s)" % len(failures))
    sys.exit(1)
print("PASS: Confluent SchemaRegistryClient")
