// Keyflow's launcher for mongo-java-server: serves the MongoDB wire protocol on host:port, persisting to an
// H2 MVStore file. Usage: java -cp '<libs>/*:<classes>' KeyflowMongoServer <host> <port> <data-file>

import java.io.File;
import java.util.List;
import java.util.Locale;
import java.util.Set;

import org.h2.mvstore.MVStore;

import de.bwaldvogel.mongo.MongoServer;
import de.bwaldvogel.mongo.MongoVersion;
import de.bwaldvogel.mongo.backend.h2.H2Backend;
import de.bwaldvogel.mongo.bson.Document;
import io.netty.channel.Channel;

public final class KeyflowMongoServer {

    /**
     * H2Backend leaves persistence to MVStore's background auto-commit (about once a second), which has
     * two ways to lose data to a SIGKILL, and the fault suite's kill of this server found both:
     * - a write already acknowledged may not be in the file yet (thousands were lost that way);
     * - a write caught half-applied is stored half-applied: the document in the collection's data map
     *   and not yet in its _id index. After the restart a find by _id misses it and every insert of it
     *   fails ("already existed"), so its partition retried for ever.
     * This backend turns auto-commit off and runs each write command and then a commit under one lock:
     * every version in the file lies between two whole write commands, and a command's reply goes out
     * only after its commit. (MVStore does not fsync a commit: the OS holds it if the process dies, a
     * machine crash could still lose it.) Reads take no lock. Writes are serialized, which costs little
     * here: commits were serialized already and most writes wait on them.
     */
    static final class DurableH2Backend extends H2Backend {
        private static final Set<String> WRITES = Set.of(
            "insert", "update", "delete", "findandmodify", "create", "createindexes", "drop",
            "dropindexes", "dropdatabase", "renamecollection");

        private final Object writeLock = new Object();

        DurableH2Backend(String fileName) {
            super(new MVStore.Builder().fileName(fileName).autoCommitDisabled().open());
        }

        @Override
        public Document handleCommand(Channel channel, String databaseName, String command, Document query) {
            if (!WRITES.contains(command.toLowerCase(Locale.ROOT))) {
                return super.handleCommand(channel, databaseName, command, query);
            }
            synchronized (writeLock) {
                try {
                    return super.handleCommand(channel, databaseName, command, query);
                } finally {
                    // Also after a failed command: an unordered bulk may have applied part of itself.
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
