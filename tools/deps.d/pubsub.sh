# tools/deps.d/pubsub.sh: the peers of bench/pubsub_bench.sh, RabbitMQ (a durable quorum queue)
# and NATS JetStream (file storage), from Debian; their npm clients (amqplib, nats) come with
# bench/pubsub/package.json. The packages' own services are not started (policy-rc.d): the
# benchmark runs private instances on free loopback ports.
sb_apt_ensure rabbitmq-server nats-server
