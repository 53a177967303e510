/* routes_pubsub.c: the gateway routes served by the pubsub service (one row per endpoint).
 * Every route needs an access token; the principal's tenant scopes topics and messages.
 * Scopes: pubsub:admin manages topics (create, change, delete) and replays dead letters;
 * pubsub:produce publishes; pubsub:consume reads topics, subscribes, consumes and answers
 * deliveries. docs/pubsub.md has the semantics. */
#include "gateway.h"

#include "pubsub.pb-c.h"

#define GW_PS_ROW(METHOD, PATTERN, RPC, REQ, RESP, STATUS, FLAGS, SCOPE)                           \
	{                                                                                          \
		METHOD, PATTERN, NULL, "pubsub", "pubsub." RPC, &sb__pubsub__##REQ##__descriptor,  \
		    &sb__pubsub__##RESP##__descriptor, STATUS, FLAGS, SCOPE                        \
	}

const struct gw_route gw_routes_pubsub[] = {
	GW_PS_ROW("POST", "/api/v1/topics", "CreateTopic", topic, topic, 201, GW_MUTATING,
	          "pubsub:admin"),
	GW_PS_ROW("GET", "/api/v1/topics", "ListTopics", list_topics_request, list_topics_response,
	          200, 0, "pubsub:consume"),
	GW_PS_ROW("GET", "/api/v1/topics/{name}", "GetTopic", topic_ref, topic, 200, 0,
	          "pubsub:consume"),
	GW_PS_ROW("PUT", "/api/v1/topics/{name}", "UpdateTopic", topic, topic, 200, GW_MUTATING,
	          "pubsub:admin"),
	GW_PS_ROW("DELETE", "/api/v1/topics/{name}", "DeleteTopic", topic_ref,
	          delete_topic_response, 200, GW_MUTATING, "pubsub:admin"),
	GW_PS_ROW("GET", "/api/v1/topics/{name}/metrics", "TopicMetrics", topic_ref,
	          topic_metrics_response, 200, 0, "pubsub:consume"),
	GW_PS_ROW("POST", "/api/v1/topics/{name}/subscriptions", "CreateSubscription", subscription,
	          subscription, 201, GW_MUTATING, "pubsub:consume"),
	GW_PS_ROW("GET", "/api/v1/topics/{name}/subscriptions", "ListSubscriptions", topic_ref,
	          list_subscriptions_response, 200, 0, "pubsub:consume"),
	GW_PS_ROW("GET", "/api/v1/topics/{name}/dlq", "ListDeadLetters", list_dead_letters_request,
	          list_dead_letters_response, 200, 0, "pubsub:consume"),
	GW_PS_ROW("POST", "/api/v1/topics/{name}/dlq/{id}/replay", "ReplayDeadLetter",
	          replay_request, replay_response, 200, GW_MUTATING, "pubsub:admin"),
	GW_PS_ROW("POST", "/api/v1/messages/publish", "Publish", publish_request, publish_response,
	          202, GW_MUTATING | GW_IDEMPOTENCY, "pubsub:produce"),
	GW_PS_ROW("POST", "/api/v1/messages/publish-batch", "PublishBatch", publish_batch_request,
	          publish_batch_response, 202, GW_MUTATING, "pubsub:produce"),
	GW_PS_ROW("GET", "/api/v1/messages/consume/{topic}", "Consume", consume_request,
	          consume_response, 200, 0, "pubsub:consume"),
	GW_PS_ROW("POST", "/api/v1/messages/consume/{topic}", "ConsumeAck", consume_ack_request,
	          consume_ack_response, 200, GW_MUTATING, "pubsub:consume"),
	GW_PS_ROW("POST", "/api/v1/messages/{id}/ack", "Ack", ack_request, ack_response, 200,
	          GW_MUTATING, "pubsub:consume"),
	GW_PS_ROW("POST", "/api/v1/messages/ack", "AckBatch", ack_batch_request, ack_batch_response,
	          200, GW_MUTATING, "pubsub:consume"),
	GW_PS_ROW("POST", "/api/v1/messages/{id}/nack", "Nack", nack_request, ack_response, 200,
	          GW_MUTATING, "pubsub:consume"),
	GW_PS_ROW("POST", "/api/v1/messages/{id}/modify-deadline", "ModifyDeadline",
	          modify_deadline_request, ack_response, 200, GW_MUTATING, "pubsub:consume"),
	GW_PS_ROW("GET", "/api/v1/messages/{id}", "GetMessage", get_message_request, message_info,
	          200, 0, "pubsub:consume"),
	{ NULL },
};
