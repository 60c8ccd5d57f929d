// Keyflow's launcher for mongo-java-server: serves the MongoDB wire protocol on host:port, persisting to an
// H2 MVStore file. Usage: java -cp '<libs>/*:<classes>' KeyflowMongoServer <host> <port> <data-file>

import java.io.File;
import java.util.List;

import de.bwaldvogel.mongo.MongoServer;
import de.bwaldvogel.mongo.MongoVersion;
import de.bwaldvogel.mongo.backend.h2.H2Backend;

public final class KeyflowMongoServer {

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

        H2Backend backend = new H2Backend(dataFile.getPath());
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
