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


@schemathesis.hook
def map_body(context, body):
    op = context.operation
    if not CONVERSATION or op is None or op.method.upper() != "POST" or op.path != "/v1/messages":
        return body
    if not isinstance(body, dict) or not isinstance(body.get("conversation_id"), str):
        return body
    try:
        uuid.UUID(body["conversation_id"])
    except ValueError:
        return body
    return {**body, "conversation_id": CONVERSATION}


# tus bodies (PATCH /files/{id}, POST /files/ with creation-with-upload) are raw bytes, as
# application/octet-stream is.
schemathesis.serializer.alias("application/offset+octet-stream", "application/octet-stream")
