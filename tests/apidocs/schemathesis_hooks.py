"""schemathesis hooks of tests/integration/apidocs_schemathesis_test.sh (schemathesis 4.x).

POST /v1/messages answers 2xx only for a conversation the caller is a member of, and a
generated conversation_id never is one; the stateful phase sometimes chains a created
conversation into a send, sometimes not. So that every run checks the 2xx answers of sends
against the document, a generated body whose conversation_id is a UUID is sent to the
conversation the test created for the caller (SB_ST_CONVERSATION); bodies whose
conversation_id is no UUID (negative cases) are left alone.
"""
import os
import uuid

import schemathesis

CONVERSATION = os.environ.get("SB_ST_CONVERSATION", "")


def map_body(op, body):
    if op is not None and op.method.upper() == "POST" and op.path == "/api/v1/messages/publish":
        return _ps_publish_body(body)
    if op is not None and op.method.upper() == "POST" and op.path == "/api/v1/messages/publish-batch":
        return _ps_publish_batch_body(body)
    if op is not None and op.method.upper() == "POST" and op.path in (
            "/api/v1/messages/{id}/modify-deadline", "/api/v1/messages/{id}/nack"):
        return _ps_lease_body(body)
    if not CONVERSATION or op is None or op.method.upper() != "POST" or op.path != "/v1/messages":
        return body
    if not isinstance(body, dict) or not isinstance(body.get("conversation_id"), str):
        return body
    try:
        uuid.UUID(body["conversation_id"])
    except ValueError:
        return body
    return {**body, "conversation_id": CONVERSATION}


# pubsub (/api/v1/...): generated topic names and message ids never name anything, so, as for
# the sends above, generated values that are valid (a usable name, a UUID) are swapped for
# fixtures the test prepared (apidocs_schemathesis_test.sh): the topic SB_ST_TOPIC; for DELETE
# a disposable topic of SB_ST_DEL_TOPICS not handed out before; for replay one of its dead letters
# SB_ST_DEAD; for nack one of its leased messages SB_ST_LEASED, for modify-deadline one of
# SB_ST_MODIFY; otherwise
# its acknowledged message SB_ST_ACKED; PUT changes SB_ST_PUT_TOPIC (a schema_subject set there
# would make the publishes 501); a publish's body topic becomes SB_ST_TOPIC. Invalid values
# (negative cases) are left alone.
import random
import re


# The mapping runs in before_call, which every phase calls (examples, coverage, fuzzing,
# stateful): the map_body and map_path_parameters hooks ran only on the fuzzing phase's cases,
# so the examples (topic "orders") always answered 404, and a run whose fuzzed bodies happened
# to be all invalid left POST /api/v1/messages/publish-batch without a 2xx (CI, 2026-12-07).
@schemathesis.hook
def before_call(context, case, kwargs):
    op = case.operation
    if case.body is not None and not isinstance(case.body, (bytes, str)):
        case.body = map_body(op, case.body)
    if case.path_parameters:
        case.path_parameters = map_path_parameters(op, case.path_parameters)

PS_TOPIC = os.environ.get("SB_ST_TOPIC", "")
PS_POOLS = {k: [x for x in os.environ.get(k, "").split(",") if x]
            for k in ("SB_ST_DEL_TOPICS", "SB_ST_DEAD", "SB_ST_LEASED", "SB_ST_MODIFY")}
PS_ACKED = os.environ.get("SB_ST_ACKED", "")
PS_PUT_TOPIC = os.environ.get("SB_ST_PUT_TOPIC", "")
PS_NAME = re.compile(r"^[A-Za-z0-9._-]{1,100}$")


def _ps_pick(pool, fallback):
    return random.choice(PS_POOLS[pool]) if PS_POOLS[pool] else fallback


def _ps_take_del_topic(generated):
    # A disposable topic is handed out once: a DELETE of one already deleted answers 404, which
    # the stateful phase's ensure_resource_availability check reports when the DELETE follows a
    # POST /api/v1/topics through its link (ST302, seed 288702651740031099739807126855431187665,
    # clean-clone CI 2026-12-07: st-del-55 handed out twice). When the pool is spent the generated
    # name is kept: a random one answers 404 (documented), one from a link names the topic that
    # POST created.
    pool = PS_POOLS["SB_ST_DEL_TOPICS"]
    return pool.pop(random.randrange(len(pool))) if pool else generated


def map_path_parameters(op, path_parameters):
    if not PS_TOPIC or op is None or not op.path.startswith("/api/v1/") or not path_parameters:
        return path_parameters
    out = dict(path_parameters)
    for key in ("name", "topic"):
        v = out.get(key)
        if isinstance(v, str) and PS_NAME.match(v) and not v.endswith(".dlq"):
            method = op.method.upper()
            out[key] = (_ps_take_del_topic(v) if method == "DELETE"
                        else PS_PUT_TOPIC or PS_TOPIC if method == "PUT" else PS_TOPIC)
    v = out.get("id")
    if isinstance(v, str):
        try:
            uuid.UUID(v)
        except ValueError:
            return out
        if op.path.endswith("/replay"):
            out["id"] = _ps_pick("SB_ST_DEAD", PS_ACKED)
        elif op.path.endswith("/nack"):
            out["id"] = _ps_pick("SB_ST_LEASED", PS_ACKED)
        elif op.path.endswith("/modify-deadline"):
            out["id"] = _ps_pick("SB_ST_MODIFY", PS_ACKED)
        else:
            out["id"] = PS_ACKED
    return out


def _ps_lease_body(body):
    # nack and modify-deadline name a fixture message (map_path_parameters) whose lease id the
    # test cannot know: half of the generated lease ids become "" (the documented "whoever holds
    # the lease" form of at_least_once topics) and half of the generated subscription names that
    # are valid become the topic's subscription "default"; the other halves stay as generated,
    # so 404 and 412 are still exercised. Without this a run could end with no 2xx for
    # modify-deadline (seen once in a clean-clone CI run, 2026-12-07).
    if not PS_TOPIC or not isinstance(body, dict):
        return body
    out = dict(body)
    if isinstance(out.get("lease_id"), str) and random.random() < 0.5:
        out["lease_id"] = ""
    sub = out.get("subscription")
    if isinstance(sub, str) and PS_NAME.match(sub) and random.random() < 0.5:
        out["subscription"] = "default"
    return out


def _ps_publish_body(body):
    if not PS_TOPIC or not isinstance(body, dict):
        return body
    t = body.get("topic")
    if isinstance(t, str) and PS_NAME.match(t) and not t.endswith(".dlq"):
        return {**body, "topic": PS_TOPIC}
    return body


def _ps_publish_batch_body(body):
    # the batch's topic as a publish's; a message's own topic (a string) becomes the batch's, the
    # one value it may have besides ""
    body = _ps_publish_body(body)
    if not PS_TOPIC or not isinstance(body, dict) or not isinstance(body.get("messages"), list):
        return body
    msgs = [
        {**m, "topic": body.get("topic")}
        if isinstance(m, dict) and isinstance(m.get("topic"), str) and body.get("topic") == PS_TOPIC
        else m
        for m in body["messages"]
    ]
    return {**body, "messages": msgs}


# tus bodies (PATCH /files/{id}, POST /files/ with creation-with-upload) are raw bytes, as
# application/octet-stream is.
schemathesis.serializer.alias("application/offset+octet-stream", "application/octet-stream")
