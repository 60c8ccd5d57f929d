// Keyflow's launcher for mongo-java-server: serves the MongoDB wire protocol on host:port, persisting to an
// H2 MVStore file. Usage: java -cp '<libs>/*:<classes>' KeyflowMongoServer <host> <port> <data-file>

import java.io.File;
import java.util.List;
import java.util.Locale;
import java.util.Set;

import de.bwaldvogel.mongo.MongoServer;
import de.bwaldvogel.mongo.MongoVersion;
import de.bwaldvogel.mongo.backend.h2.H2Backend;
import de.bwaldvogel.mongo.bson.Document;
import io.netty.channel.Channel;

public final class KeyflowMongoServer {

    /**
     * H2Backend commits its MVStore in the background (about once a second), so a write it has already
     * acknowledged can still be lost to a SIGKILL: the fault suite's kill of this server lost thousands of
     * acknowledged writes that way. This backend commits after every write command, before the reply
     * goes out, so what a client saw acknowledged is in the file (the OS holds its pages if the process
     * dies; only a machine crash could still lose it, as MVStore does not fsync each commit).
     */
    static final class DurableH2Backend extends H2Backend {
        private static final Set<String> WRITES = Set.of(
            "insert", "update", "delete", "findandmodify", "create", "createindexes", "drop",
            "dropindexes", "dropdatabase", "renamecollection");

        DurableH2Backend(String fileName) {
            super(fileName);
        }

        @Override
        public Document handleCommand(Channel channel, String databaseName, String command, Document query) {
            try {
                return super.handleCommand(channel, databaseName, command, query);
            } finally {
                // Also after a failed command: an unordered bulk may have applied part of itself.
                if (WRITES.contains(command.toLowerCase(Locale.ROOT))) {
                    commit();
                }
            }
        }
    }

    /**
     * The Node driver v7 refuses servers below MongoDB 4.4 (wire version 9), and mongo-java-server's newest
     * built-in version (MONGO_5_0) still reports wire version 8. We claim exactly 4.4 / 9: the lowest the
     * driver accepts, so it does not start sending newer command options the server may not understand.
     */
    private static final MongoVersion DRIVER_MINIMUM = new MongoVersion() {
        @Override
        public List<Integer> getVersionArray() {
            return List.of(4, 4, 0);
        }

        @Override
        public int getWireVersion() {
            return 9;
        }
    };

    public static void main(String[] args) {
        if (args.length != 3) {
            System.err.println("usage: KeyflowMongoServer <host> <port> <data-file>");
            System.exit(2);
        }
        String host = args[0];
        int port = Integer.parseInt(args[1]);
        File dataFile = new File(args[2]);
        File parent = dataFile.getAbsoluteFile().getParentFile();
        if (parent != null && !parent.isDirectory() && !parent.mkdirs()) {
            System.err.println("cannot create data folder " + parent);
            System.exit(1);
        }

        H2Backend backend = new DurableH2Backend(dataFile.getPath());
        backend.version(DRIVER_MINIMUM);
        MongoServer server = new MongoServer(backend);

        // SIGTERM from `keyflow services down`: stop accepting, then close the MVStore so the last
        // writes are flushed and the file is not left needing recovery.
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            System.out.println("shutting down");
            server.shutdownNow();
            backend.close();
        }, "keyflow-shutdown"));

        server.bind(host, port);
        System.out.println("mongo-java-server listening on " + host + ":" + port + ", data " + dataFile.getPath());
    }
}
