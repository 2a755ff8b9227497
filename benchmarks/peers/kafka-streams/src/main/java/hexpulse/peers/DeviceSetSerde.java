package hexpulse.peers;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.HashSet;
import java.util.Set;
import org.apache.kafka.common.serialization.Deserializer;
import org.apache.kafka.common.serialization.Serde;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.serialization.Serializer;

/** The distinct devices of one (window, cell): a count, then length-prefixed UTF-8 device ids. */
final class DeviceSetSerde {
    private DeviceSetSerde() {}

    static Serde<Set<String>> serde() {
        return Serdes.serdeFrom(new Ser(), new De());
    }

    private static final class Ser implements Serializer<Set<String>> {
        @Override
        public byte[] serialize(String topic, Set<String> devices) {
            if (devices == null) {
                return null;
            }
            byte[][] parts = new byte[devices.size()][];
            int size = 4;
            int i = 0;
            for (String d : devices) {
                parts[i] = d.getBytes(StandardCharsets.UTF_8);
                size += 4 + parts[i].length;
                i++;
            }
            ByteBuffer buf = ByteBuffer.allocate(size).putInt(parts.length);
            for (byte[] part : parts) {
                buf.putInt(part.length).put(part);
            }
            return buf.array();
        }
    }

    private static final class De implements Deserializer<Set<String>> {
        @Override
        public Set<String> deserialize(String topic, byte[] data) {
            if (data == null) {
                return null;
            }
            ByteBuffer buf = ByteBuffer.wrap(data);
            int n = buf.getInt();
            Set<String> devices = new HashSet<>(Math.max(16, n * 2));
            for (int i = 0; i < n; i++) {
                int len = buf.getInt();
                devices.add(new String(data, buf.position(), len, StandardCharsets.UTF_8));
                buf.position(buf.position() + len);
            }
            return devices;
        }
    }
}
