package hexpulse.peers;

import java.time.Duration;
import java.util.HashSet;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.CountDownLatch;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.utils.Bytes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.Topology;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.kstream.Suppressed;
import org.apache.kafka.streams.kstream.TimeWindows;
import org.apache.kafka.streams.state.Stores;
import org.apache.kafka.streams.state.WindowStore;

/**
 * Per-minute, per-res-9-cell distinct-device counts with the Kafka Streams DSL: messages → distinct
 * (cell, device) per message with the ping's event time → repartition by cell → 60 s tumbling
 * windows with 30 s grace (hexpulse's allowed lateness) → set of devices → emitted once when the
 * window closes → output topic (key "windowStartMs,cell", value "windowStartMs,cell,count").
 *
 * <p>Usage: {@code CellCounts BOOTSTRAP INPUT OUTPUT APPLICATION_ID STATE_DIR COMMIT_INTERVAL_MS
 * [topology=dsl|local] [config=value ...]}; the pairs are Streams, consumer or producer configs.
 * {@code topology=local} (LocalCounts) counts per input partition without the repartition.
 * Runs until SIGTERM, then prints one JSON line: {@code first_record_ms} (wall clock), records, pings.
 */
public final class CellCounts {
    private CellCounts() {}

    /** No repartition: parse and count in the input partition's own task (LocalCounts). */
    static Topology localTopology(String input, String output) {
        Topology t = new Topology();
        t.addSource("pings", Serdes.ByteArray().deserializer(), Serdes.ByteArray().deserializer(), input);
        t.addProcessor("cells", PingCells::new, "pings");
        t.addProcessor("counts", LocalCounts::new, "cells");
        for (String store : new String[] {LocalCounts.SEEN, LocalCounts.COUNTS}) {
            t.addStateStore(Stores.keyValueStoreBuilder(
                            Stores.inMemoryKeyValueStore(store), Serdes.String(), Serdes.Integer())
                    .withCachingEnabled(), "counts");
        }
        t.addSink("results", output, Serdes.String().serializer(), Serdes.String().serializer(), "counts");
        return t;
    }

    static Topology topology(String input, String output) {
        StreamsBuilder builder = new StreamsBuilder();
        builder.stream(input, Consumed.with(Serdes.ByteArray(), Serdes.ByteArray()))
                .process(PingCells::new)
                .groupByKey(Grouped.with("cells", Serdes.Long(), Serdes.String()))
                .windowedBy(TimeWindows.ofSizeAndGrace(
                        Duration.ofMillis(PingCells.WINDOW_MS), Duration.ofSeconds(30)))
                .aggregate(
                        HashSet::new,
                        (cell, device, devices) -> {
                            devices.add(device);
                            return devices;
                        },
                        Materialized.<Long, Set<String>, WindowStore<Bytes, byte[]>>as("device-sets")
                                .withKeySerde(Serdes.Long())
                                .withValueSerde(DeviceSetSerde.serde()))
                .suppress(Suppressed.untilWindowCloses(Suppressed.BufferConfig.unbounded()))
                .toStream()
                .map((w, devices) -> {
                    String key = w.window().start() + "," + w.key();
                    return KeyValue.pair(key, key + "," + devices.size());
                })
                .to(output, Produced.with(Serdes.String(), Serdes.String()));
        return builder.build();
    }

    public static void main(String[] args) throws InterruptedException {
        if (args.length < 6) {
            System.err.println("usage: CellCounts BOOTSTRAP INPUT OUTPUT APPLICATION_ID STATE_DIR "
                    + "COMMIT_INTERVAL_MS [streams.config=value ...]");
            System.exit(2);
        }
        Properties props = new Properties();
        props.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]);
        props.put(StreamsConfig.APPLICATION_ID_CONFIG, args[3]);
        props.put(StreamsConfig.STATE_DIR_CONFIG, args[4]);
        props.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, Long.parseLong(args[5]));
        // One stream thread: the other peers and hexpulse are one consuming process each.
        props.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, 1);
        props.put(StreamsConfig.consumerPrefix(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG), "earliest");
        String shape = "dsl";
        for (int i = 6; i < args.length; i++) {
            String[] kv = args[i].split("=", 2);
            if (kv[0].equals("topology")) {
                shape = kv[1];
            } else {
                props.put(kv[0], kv[1]);
            }
        }
        Topology topology = switch (shape) {
            case "dsl" -> topology(args[1], args[2]);
            case "local" -> localTopology(args[1], args[2]);
            default -> throw new IllegalArgumentException("topology must be dsl or local, not " + shape);
        };
        KafkaStreams streams = new KafkaStreams(topology, props);
        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            streams.close(Duration.ofSeconds(20));
            System.out.printf("{\"first_record_ms\": %d, \"records\": %d, \"pings\": %d}%n",
                    PingCells.FIRST_RECORD_MS.get(), PingCells.RECORDS.get(), PingCells.PINGS.get());
            System.out.flush();
            stopped.countDown();
        }));
        streams.setUncaughtExceptionHandler(e -> {
            e.printStackTrace();
            return org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler
                    .StreamThreadExceptionResponse.SHUTDOWN_CLIENT;
        });
        streams.start();
        stopped.await();
    }
}
