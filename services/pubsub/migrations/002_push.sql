-- pubsub 002: push subscriptions. A subscription with a push_endpoint has its deliveries POSTed
-- there by the service's push workers (push.c), signed with push_secret; "" = pull.
ALTER TABLE subscriptions ADD COLUMN push_endpoint text NOT NULL DEFAULT '';
ALTER TABLE subscriptions ADD COLUMN push_secret text NOT NULL DEFAULT '';
CREATE INDEX subscriptions_push ON subscriptions (id) WHERE push_endpoint <> '';
