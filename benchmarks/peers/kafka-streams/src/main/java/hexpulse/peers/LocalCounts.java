package hexpulse.peers;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.processor.api.Processor;
import org.apache.kafka.streams.processor.api.ProcessorContext;
import org.apache.kafka.streams.processor.api.Record;
import org.apache.kafka.streams.state.KeyValueIterator;
import org.apache.kafka.streams.state.KeyValueStore;

/**
 * The partition-local topology's aggregator: the (cell, device) records of one input partition
 * into two task-local stores, {@code SEEN} ("windowStartMs,cell,device" → 1) and {@code COUNTS}
 * ("windowStartMs,cell" → distinct devices), so each record costs O(1) whatever the crowd; a
 * window closes on the partition's own stream time (max record time − 30 s grace past its end),
 * as hexpulse closes per partition. No repartition: the input is keyed by device, so per-partition
 * counts add up to the total (the benchmark's topic has one partition; with more, these are
 * partials to be summed, like hexpulse's).
 */
final class LocalCounts implements Processor<Long, String, String, String> {
    static final String SEEN = "local-seen";
    static final String COUNTS = "local-counts";
    private static final long GRACE_MS = 30_000L;

    private KeyValueStore<String, Integer> seen;
    private KeyValueStore<String, Integer> counts;
    private ProcessorContext<String, String> context;
    // Which cells each open window has, so a window closes without scanning the whole store.
    private final TreeMap<Long, Set<Long>> open = new TreeMap<>();
    private long streamTime = Long.MIN_VALUE;

    @Override
    public void init(ProcessorContext<String, String> context) {
        this.context = context;
        this.seen = context.getStateStore(SEEN);
        this.counts = context.getStateStore(COUNTS);
        try (KeyValueIterator<String, Integer> all = counts.all()) {
            while (all.hasNext()) {
                KeyValue<String, Integer> kv = all.next();
                String[] parts = kv.key.split(",");
                open.computeIfAbsent(Long.parseLong(parts[0]), w -> new HashSet<>())
                        .add(Long.parseLong(parts[1]));
            }
        }
    }

    @Override
    public void process(Record<Long, String> record) {
        long ts = record.timestamp();
        long window = Math.floorDiv(ts, PingCells.WINDOW_MS) * PingCells.WINDOW_MS;
        if (window + PingCells.WINDOW_MS + GRACE_MS > streamTime) {
            String cellKey = window + "," + record.key();
            String deviceKey = cellKey + "," + record.value();
            if (seen.get(deviceKey) == null) {
                seen.put(deviceKey, 1);
                Integer n = counts.get(cellKey);
                if (n == null) {
                    open.computeIfAbsent(window, w -> new HashSet<>()).add(record.key());
                }
                counts.put(cellKey, n == null ? 1 : n + 1);
            }
        }
        if (ts > streamTime) {
            streamTime = ts;
            closeUpTo(streamTime - GRACE_MS);
        }
    }

    private void closeUpTo(long horizon) {
        while (!open.isEmpty() && open.firstKey() + PingCells.WINDOW_MS <= horizon) {
            Map.Entry<Long, Set<Long>> first = open.pollFirstEntry();
            long window = first.getKey();
            for (long cell : first.getValue()) {
                String cellKey = window + "," + cell;
                Integer n = counts.delete(cellKey);
                context.forward(new Record<>(cellKey, cellKey + "," + (n == null ? 0 : n), window));
                List<String> devices = new ArrayList<>();
                try (KeyValueIterator<String, Integer> it =
                        seen.prefixScan(cellKey + ",", Serdes.String().serializer())) {
                    it.forEachRemaining(kv -> devices.add(kv.key));
                }
                devices.forEach(seen::delete);
            }
        }
    }
}
