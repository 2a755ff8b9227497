package hexpulse.peers;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import com.uber.h3core.H3Core;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.concurrent.atomic.AtomicLong;
import org.apache.kafka.streams.processor.api.Processor;
import org.apache.kafka.streams.processor.api.ProcessorContext;
import org.apache.kafka.streams.processor.api.Record;

/**
 * One ping message (a single ping or a 50-ping batch, docs/PINGS.md) in, one record per distinct
 * (window, res-9 cell) of that message out: key = cell (H3 index as a long), value = device,
 * timestamp = the first ping time in that window and cell (ms since epoch, UTC). Deduplicating
 * inside the message first is what any implementation would do: a device's batch mostly sits in
 * one cell, so it spares the repartition topic 50 records per message.
 */
final class PingCells implements Processor<byte[], byte[], Long, String> {
    static final long WINDOW_MS = 60_000L;
    static final int RESOLUTION = 9;
    /** Wall-clock ms of the first record this process handled; 0 until then. */
    static final AtomicLong FIRST_RECORD_MS = new AtomicLong();
    static final AtomicLong RECORDS = new AtomicLong();
    static final AtomicLong PINGS = new AtomicLong();

    private final JsonFactory json = new JsonFactory();
    private final H3Core h3;
    private ProcessorContext<Long, String> context;
    // Per-message scratch: the distinct (window, cell) pairs and their first ping time.
    private long[] windows = new long[8];
    private long[] cells = new long[8];
    private long[] firstTs = new long[8];
    private int pairs;

    PingCells() {
        try {
            h3 = H3Core.newInstance();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot load the H3 native library", e);
        }
    }

    @Override
    public void init(ProcessorContext<Long, String> context) {
        this.context = context;
    }

    @Override
    public void process(Record<byte[], byte[]> record) {
        FIRST_RECORD_MS.compareAndSet(0L, System.currentTimeMillis());
        RECORDS.incrementAndGet();
        pairs = 0;
        String device;
        try (JsonParser p = json.createParser(record.value())) {
            device = parseMessage(p);
        } catch (IOException e) {
            // The benchmark stream is well-formed; a parse failure means a broken run, not bad input.
            throw new UncheckedIOException("unreadable ping message", e);
        }
        for (int i = 0; i < pairs; i++) {
            context.forward(record.withKey(cells[i]).withValue(device).withTimestamp(firstTs[i]));
        }
    }

    private String parseMessage(JsonParser p) throws IOException {
        String device = null;
        long ts = Long.MIN_VALUE;
        double lat = Double.NaN;
        double lon = Double.NaN;
        p.nextToken(); // START_OBJECT
        while (p.nextToken() == JsonToken.FIELD_NAME) {
            String name = p.currentName();
            JsonToken t = p.nextToken();
            switch (name) {
                case "device" -> device = p.getText();
                case "ts" -> ts = p.getLongValue();
                case "lat" -> lat = p.getDoubleValue();
                case "lon" -> lon = p.getDoubleValue();
                case "pings" -> parsePings(p);
                default -> {
                    if (t == JsonToken.START_OBJECT || t == JsonToken.START_ARRAY) {
                        p.skipChildren();
                    }
                }
            }
        }
        if (ts != Long.MIN_VALUE) {
            add(ts, lat, lon);
        }
        return device;
    }

    private void parsePings(JsonParser p) throws IOException {
        while (p.nextToken() == JsonToken.START_OBJECT) {
            long ts = 0;
            double lat = Double.NaN;
            double lon = Double.NaN;
            while (p.nextToken() == JsonToken.FIELD_NAME) {
                String name = p.currentName();
                JsonToken t = p.nextToken();
                switch (name) {
                    case "ts" -> ts = p.getLongValue();
                    case "lat" -> lat = p.getDoubleValue();
                    case "lon" -> lon = p.getDoubleValue();
                    default -> {
                        if (t == JsonToken.START_OBJECT || t == JsonToken.START_ARRAY) {
                            p.skipChildren();
                        }
                    }
                }
            }
            add(ts, lat, lon);
        }
    }

    private void add(long ts, double lat, double lon) {
        PINGS.incrementAndGet();
        long window = Math.floorDiv(ts, WINDOW_MS) * WINDOW_MS;
        long cell = h3.latLngToCell(lat, lon, RESOLUTION);
        for (int i = 0; i < pairs; i++) {
            if (windows[i] == window && cells[i] == cell) {
                firstTs[i] = Math.min(firstTs[i], ts);
                return;
            }
        }
        if (pairs == windows.length) {
            windows = java.util.Arrays.copyOf(windows, pairs * 2);
            cells = java.util.Arrays.copyOf(cells, pairs * 2);
            firstTs = java.util.Arrays.copyOf(firstTs, pairs * 2);
        }
        windows[pairs] = window;
        cells[pairs] = cell;
        firstTs[pairs] = ts;
        pairs++;
    }
}
