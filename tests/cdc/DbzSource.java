// DbzSource: a live, independent producer of change events for cdcsink's tests. Runs
// Debezium's PostgreSQL connector in-process (debezium-embedded) against a PostgreSQL with
// wal_level=logical and writes each change event, as Debezium's JSON converter makes it with
// schemas disabled (the flat envelope: before, after, source, op, ts_ms), to Kafka: topic
// SB_DBZ_TOPIC_PREFIX + Debezium's destination ("dbz.<schema>.<table>"), key = the event's key.
// A batch's records are marked processed only after Kafka acknowledged them (acks=all).
//
// Environment: SB_DBZ_PG_PORT, SB_DBZ_PG_DB, SB_DBZ_TABLES (table.include.list),
// SB_DBZ_BROKERS, SB_DBZ_TOPIC_PREFIX, SB_DBZ_DIR (offsets file). Stops on SIGTERM.
import io.debezium.engine.ChangeEvent;
import io.debezium.engine.DebeziumEngine;
import io.debezium.engine.format.Json;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;

public class DbzSource {
    static String env(String k, String def) {
        String v = System.getenv(k);
        return v == null || v.isEmpty() ? def : v;
    }

    public static void main(String[] args) throws Exception {
        String prefix = env("SB_DBZ_TOPIC_PREFIX", "");
        Properties kp = new Properties();
        kp.setProperty("bootstrap.servers", env("SB_DBZ_BROKERS", "127.0.0.1:9092"));
        kp.setProperty("acks", "all");
        kp.setProperty("enable.idempotence", "true");
        kp.setProperty("key.serializer", "org.apache.kafka.common.serialization.StringSerializer");
        kp.setProperty("value.serializer", "org.apache.kafka.common.serialization.StringSerializer");
        KafkaProducer<String, String> producer = new KafkaProducer<>(kp);

        Properties p = new Properties();
        p.setProperty("name", "sb-cdc-test-source");
        p.setProperty("connector.class", "io.debezium.connector.postgresql.PostgresConnector");
        p.setProperty("offset.storage", "org.apache.kafka.connect.storage.FileOffsetBackingStore");
        p.setProperty("offset.storage.file.filename", env("SB_DBZ_DIR", "/tmp") + "/offsets.dat");
        p.setProperty("offset.flush.interval.ms", "1000");
        p.setProperty("database.hostname", "127.0.0.1");
        p.setProperty("database.port", env("SB_DBZ_PG_PORT", "5432"));
        p.setProperty("database.user", "postgres");
        p.setProperty("database.password", "unused");
        p.setProperty("database.dbname", env("SB_DBZ_PG_DB", "postgres"));
        p.setProperty("topic.prefix", "dbz");
        p.setProperty("plugin.name", "pgoutput");
        p.setProperty("slot.name", "sb_cdc_test");
        p.setProperty("publication.autocreate.mode", "filtered");
        p.setProperty("table.include.list", env("SB_DBZ_TABLES", "public.accounts"));
        p.setProperty("decimal.handling.mode", "string");
        p.setProperty("converter.schemas.enable", "false");
        p.setProperty("key.converter.schemas.enable", "false");
        p.setProperty("value.converter.schemas.enable", "false");

        DebeziumEngine<ChangeEvent<String, String>> engine = DebeziumEngine.create(Json.class)
            .using(p)
            .notifying((List<ChangeEvent<String, String>> records,
                        DebeziumEngine.RecordCommitter<ChangeEvent<String, String>> committer) -> {
                java.util.ArrayList<Future<RecordMetadata>> sent = new java.util.ArrayList<>();
                for (ChangeEvent<String, String> r : records) {
                    if (r.value() == null)
                        continue; // the tombstone after a delete: nothing for the sink
                    sent.add(producer.send(new ProducerRecord<>(prefix + r.destination(), r.key(), r.value())));
                }
                for (Future<RecordMetadata> f : sent) {
                    try {
                        f.get();
                    } catch (Exception e) {
                        throw new InterruptedException("Kafka refused a record: " + e);
                    }
                }
                for (ChangeEvent<String, String> r : records)
                    committer.markProcessed(r);
                committer.markBatchFinished();
                System.out.println("dbz-source: " + sent.size() + " events written");
            })
            .using((success, message, error) -> {
                System.out.println("dbz-source: engine stopped: " + message);
                if (error != null)
                    error.printStackTrace();
            })
            .build();
        ExecutorService ex = Executors.newSingleThreadExecutor();
        ex.execute(engine);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                engine.close();
                ex.shutdown();
                ex.awaitTermination(10, TimeUnit.SECONDS);
            } catch (Exception e) {
                e.printStackTrace();
            }
            producer.close();
        }));
        System.out.println("dbz-source: started");
        ex.awaitTermination(365, TimeUnit.DAYS);
    }
}
