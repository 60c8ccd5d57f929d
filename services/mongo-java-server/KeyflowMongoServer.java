// Keyflow's launcher for mongo-java-server: serves the MongoDB wire protocol on host:port, persisting to an
// H2 MVStore file that it keeps compact. Usage: java -cp '<libs>/*:<classes>' KeyflowMongoServer <host> <port> <data-file>
// Lines starting with "[keyflow] " report progress while a large store opens or compacts; `keyflow services
// up` relays them and keeps waiting while they come.

import java.io.File;
import java.net.InetSocketAddress;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.concurrent.Callable;

import org.h2.mvstore.FileStore;
import org.h2.mvstore.MVMap;
import org.h2.mvstore.MVStore;
import org.h2.mvstore.MVStoreTool;
import org.h2.mvstore.RandomAccessStore;
import org.h2.mvstore.type.ObjectDataType;

import de.bwaldvogel.mongo.MongoDatabase;
import de.bwaldvogel.mongo.MongoServer;
import de.bwaldvogel.mongo.MongoVersion;
import de.bwaldvogel.mongo.backend.CursorRegistry;
import de.bwaldvogel.mongo.backend.EmptyIndex;
import de.bwaldvogel.mongo.backend.Index;
import de.bwaldvogel.mongo.backend.IndexKey;
import de.bwaldvogel.mongo.backend.KeyValue;
import de.bwaldvogel.mongo.backend.h2.H2Backend;
import de.bwaldvogel.mongo.backend.h2.H2Database;
import de.bwaldvogel.mongo.bson.Document;
import io.netty.channel.Channel;

public final class KeyflowMongoServer {

    /** One progress line for `keyflow services up`, flushed at once: it reads the log while we start. */
    static void progress(String line) {
        System.out.println("[keyflow] " + line);
        System.out.flush();
    }

    static String megabytes(long bytes) {
        return String.format(Locale.ROOT, "%.1f MB", bytes / 1024.0 / 1024.0);
    }

    /** Runs a long step, saying every two seconds that it still runs and how big the file is. */
    static <T> T withHeartbeat(String what, File file, Callable<T> step) throws Exception {
        long started = System.nanoTime();
        Thread beat = new Thread(() -> {
            try {
                while (true) {
                    Thread.sleep(2000);
                    long s = (System.nanoTime() - started) / 1_000_000_000L;
                    progress("still " + what + " (" + s + "s, file " + megabytes(file.length()) + ")");
                }
            } catch (InterruptedException stop) {
                // the step finished
            }
        }, "keyflow-heartbeat");
        beat.setDaemon(true);
        beat.start();
        try {
            return step.call();
        } finally {
            beat.interrupt();
            beat.join();
        }
    }

    /**
     * Keeps the MVStore file near the size of its live data. With auto-commit off, MVStore's background
     * thread never runs, and that thread is what rewrites half-empty chunks: every write command commits
     * a small chunk, later writes leave most of it dead, and one live page keeps it. A store of about
     * 270,000 small documents had grown to 2.8 GB that way and took 63 s to open. So:
     * - while serving, a step a second rewrites the emptiest old chunks and moves chunks into holes, once
     *   writes have paused for a second (or at once when the file is mostly dead);
     * - at start and at a clean stop, a store mostly dead is copied whole into a fresh file (only its
     *   live pages, compressed) which then replaces it: a kill during the copy leaves the old file.
     * Pages are stored LZF-compressed: MVStore keeps a document Java-serialized, about three times its
     * BSON size; compressed, the whole file came to about twice the BSON size in our measurement.
     * Every step that rewrites or moves chunks stores a version, so it runs under the write lock, as a
     * write command would: each version in the file still lies between two whole write commands.
     */
    static final class Compaction {
        /** Rewrite chunks while serving once less than this share of their bytes is live. */
        static final int CHUNK_FILL_TARGET = 80;
        /** Move chunks into holes (and truncate the file) once less than this share of it is in use. */
        static final int FILE_FILL_TARGET = 80;
        /** At start or stop, copy the store once less than this share of the file is live data. */
        static final int COPY_BELOW_LIVE_SHARE = 60;
        /** A fresh store's few blocks read as mostly empty; copying them would gain nothing. */
        static final long COPY_ABOVE_BYTES = 1024L * 1024;
        /** Bytes rewritten or moved per step while serving, so one step holds writes back briefly. */
        static final int STEP_BYTES = 4 * 1024 * 1024;
        /**
         * The page cache (MVStore's default is 16 MB). Pages are stored compressed and Java-serialized, so
         * a miss costs a decompression and a deserialization: with 1,000,000 archived conversions in the
         * store, reads missing the cache took 14% of the server's time in a burst of writes.
         */
        static final int CACHE_MB = 64;
        static final long STEP_EVERY_MS = 1000;
        static final long MOVE_EVERY_MS = 5000;
        /** While serving, a step waits for this long without a write command... */
        static final long QUIET_MS = 1000;
        /** ...unless less than this share of the file is live: then it steps under load too. */
        static final int URGENT_BELOW_LIVE_SHARE = 30;

        static MVStore open(File file) {
            return new MVStore.Builder().fileName(file.getPath()).autoCommitDisabled().compress()
                .cacheSize(CACHE_MB).open();
        }

        static String describe(MVStore store) {
            FileStore<?> fs = store.getFileStore();
            return "file " + megabytes(fs.size()) + ", " + liveShare(store) + "% live (" + fs.getFillRate()
                + "% of the file in chunks, " + fs.getChunksFillRate() + "% of chunk bytes live)";
        }

        /** The share of the file that live pages take, in percent. */
        static int liveShare(MVStore store) {
            FileStore<?> fs = store.getFileStore();
            return fs.getFillRate() * fs.getChunksFillRate() / 100;
        }

        static boolean worthCopying(MVStore store) {
            return store.getFileStore().size() > COPY_ABOVE_BYTES && liveShare(store) < COPY_BELOW_LIVE_SHARE;
        }

        /**
         * Before serving: a store mostly dead is closed, copied and reopened, with progress lines. A
         * copy a kill interrupted (its temporary file) is cleaned up first.
         */
        static MVStore openCompact(File file) throws Exception {
            MVStoreTool.compactCleanUp(file.getPath());
            long started = System.nanoTime();
            progress("opening store " + file.getPath() + " (" + megabytes(file.length()) + ")");
            MVStore store = withHeartbeat("opening store", file, () -> open(file));
            progress(String.format(Locale.ROOT, "store open in %.1fs: %s", seconds(started), describe(store)));
            if (!worthCopying(store)) return store;
            long before = file.length();
            store.close();
            long copyStarted = System.nanoTime();
            withHeartbeat("compacting store", file, () -> {
                MVStoreTool.compact(file.getPath(), true);
                return null;
            });
            progress(String.format(Locale.ROOT, "compacted store from %s to %s in %.1fs", megabytes(before),
                megabytes(file.length()), seconds(copyStarted)));
            return withHeartbeat("opening store", file, () -> open(file));
        }

        private final MVStore store;
        private final Object writeLock;
        private long lastMove;
        /** When the last write command ended (System.nanoTime()). */
        private volatile long lastWrite = System.nanoTime();

        Compaction(MVStore store, Object writeLock) {
            this.store = store;
            this.writeLock = writeLock;
        }

        /** While serving: one bounded step a second, on a thread of its own. */
        void startBackground() {
            Thread t = new Thread(() -> {
                while (!store.isClosed()) {
                    try {
                        Thread.sleep(STEP_EVERY_MS);
                        synchronized (writeLock) {
                            if (!store.isClosed()) step();
                        }
                    } catch (InterruptedException stop) {
                        return;
                    } catch (RuntimeException e) {
                        // A failed step leaves the store as the last commit wrote it; say so and go on.
                        progress("compaction step failed: " + e);
                    }
                }
            }, "keyflow-compaction");
            t.setDaemon(true);
            t.start();
        }

        /** Called by every write command as it ends. */
        void wrote() {
            lastWrite = System.nanoTime();
        }

        /**
         * Steps only when writes have paused, or when the file is mostly dead. A step rewrites pages, which
         * means decoding and re-encoding their documents under the write lock: after the growth preload of
         * 1,000,000 archived conversions, steps during the next burst took a third of the server's time
         * and the burst ran at 0.65x its rate on an empty store.
         */
        private boolean due() {
            boolean quiet = System.nanoTime() - lastWrite >= QUIET_MS * 1_000_000L;
            return quiet || liveShare(store) < URGENT_BELOW_LIVE_SHARE;
        }

        private void step() {
            if (!due()) return;
            FileStore<?> fs = store.getFileStore();
            // compact() rewrites only chunks older than the retention time, so a reader still on a
            // recent version keeps its pages; the rewritten pages go into the commit that follows.
            if (fs.getChunksFillRate() < CHUNK_FILL_TARGET && store.compact(CHUNK_FILL_TARGET, STEP_BYTES)) {
                store.commit();
            }
            long now = System.currentTimeMillis();
            if (fs.getFillRate() < FILE_FILL_TARGET && now - lastMove >= MOVE_EVERY_MS
                && fs instanceof RandomAccessStore) {
                lastMove = now;
                ((RandomAccessStore) fs).compactMoveChunks(100, STEP_BYTES, store);
            }
        }

        /**
         * At a clean stop, after the last commit: a store mostly dead is closed with a full copy (-1).
         * Should `services down` lose patience and SIGKILL the copy, the old file stays whole.
         */
        void close() {
            if (!worthCopying(store)) {
                store.close();
                return;
            }
            File file = new File(store.getFileStore().getFileName());
            progress("compacting store before closing: " + describe(store));
            try {
                // Its heartbeat keeps `services down` from losing patience while the copy makes progress.
                withHeartbeat("compacting store before closing", file, () -> {
                    store.close(-1);
                    return null;
                });
            } catch (Exception e) {
                throw new IllegalStateException("compacting " + file + " failed", e);
            }
            progress("store closed compacted: " + megabytes(file.length()));
        }
    }

    static double seconds(long startedNanos) {
        return (System.nanoTime() - startedNanos) / 1e9;
    }

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
     * machine crash could still lose it.) Reads take no lock; each registers the version it reads. Writes are serialized, which costs little
     * here: commits were serialized already and most writes wait on them. Compaction takes the same lock.
     */
    static final class DurableH2Backend extends H2Backend {
        private static final Set<String> WRITES = Set.of(
            "insert", "update", "delete", "findandmodify", "create", "createindexes", "drop",
            "dropindexes", "dropdatabase", "renamecollection");
        private final Object writeLock;
        private final Compaction compaction;

        DurableH2Backend(MVStore store, Object writeLock) {
            super(FastOpeningH2Database.use(store));
            this.writeLock = writeLock;
            this.compaction = new Compaction(store, writeLock);
        }

        Compaction compaction() {
            return compaction;
        }

        @Override
        protected MongoDatabase openOrCreateDatabase(String databaseName) {
            return new FastOpeningH2Database(databaseName, getMvStore(), getCursorRegistry());
        }

        @Override
        public Document handleCommand(Channel channel, String databaseName, String command, Document query) {
            if (!WRITES.contains(command.toLowerCase(Locale.ROOT))) {
                // A read walks the maps' pages as of the version it started on. Registered, that version's
                // chunks stay until it ends; unregistered, a compaction step or a commit that left a chunk
                // dead dropped it under a long scan ("Chunk 6230 not found", a 1,000,000-row scan).
                MVStore.TxCounter reading = getMvStore().registerVersionUsage();
                try {
                    return super.handleCommand(channel, databaseName, command, query);
                } finally {
                    getMvStore().deregisterVersionUsage(reading);
                }
            }
            synchronized (writeLock) {
                try {
                    return super.handleCommand(channel, databaseName, command, query);
                } finally {
                    // Also after a failed command: an unordered bulk may have applied part of itself.
                    commit();
                    compaction.wrote();
                }
            }
        }

        @Override
        public void close() {
            synchronized (writeLock) {
                if (getMvStore().isClosed()) return;
                commit();
                compaction.close();
                super.close();
            }
        }
    }

    /**
     * mongo-java-server keeps no non-unique index: it stands one in with an empty index that ignores every
     * document. But adding an index walks the whole collection (twice) whenever the index is empty, and
     * that one always is, so every start walked every document of a collection once more per declared
     * non-unique index, decoding each: with 1,000,000 provenance records (four such indexes) the store
     * took 166 s to open. Here, while a database opens, that stand-in says it is not empty, so adding it
     * walks nothing; otherwise (a drop checks that every index is empty) it is the same empty index, and
     * it still ignores every document, so queries and writes see no difference.
     */
    static final class FastOpeningH2Database extends H2Database {
        /** Set on the thread opening a database's existing collections and indexes. */
        static final ThreadLocal<Boolean> OPENING = new ThreadLocal<>();
        /** The one store of this process (H2Database keeps its own private; the index maps need it first). */
        static volatile MVStore store;

        /** Set before H2Backend's constructor opens the existing databases. */
        static MVStore use(MVStore opened) {
            store = opened;
            return opened;
        }

        FastOpeningH2Database(String name, MVStore store, CursorRegistry cursors) {
            super(name, store, cursors);
        }

        @Override
        protected void initializeNamespacesAndIndexes() {
            OPENING.set(Boolean.TRUE);
            try {
                super.initializeNamespacesAndIndexes();
            } finally {
                OPENING.remove();
            }
        }

        /**
         * Opens the index's map with a key type that compares as H2's does, without re-serializing each
         * key at each comparison (see RememberedKeyType); H2Database's own open then finds it open.
         */
        @Override
        protected Index<Object> openOrCreateUniqueIndex(String collectionName, String indexName,
                                                        List<IndexKey> keys, boolean sparse) {
            String mapName = getFullCollectionNamespace(collectionName) + "._index_" + indexName;
            store.openMap(mapName, new MVMap.Builder<Object, Object>().keyType(new RememberedKeyType()));
            return super.openOrCreateUniqueIndex(collectionName, indexName, keys, sparse);
        }

        @Override
        protected Index<Object> openOrCreateSecondaryIndex(String collectionName, String indexName,
                                                           List<IndexKey> keys, boolean sparse) {
            return new IgnoredIndex(indexName, keys);
        }
    }

    /**
     * A unique index maps KeyValue keys, which H2's ObjectDataType does not know and orders by their Java
     * serialization: every comparison of a B-tree search serialized both keys (a new ObjectOutputStream
     * each). JFR on the server during a replay full pass: 750 of 1,426 samples (53%) were under
     * H2UniqueIndex.getPosition, nearly all of them serializing keys to compare them. This type compares
     * the same bytes in the same way, so the order of every existing file holds, and remembers each key
     * object's bytes: a search serializes its probe once, and a cached page's keys once each. The file's
     * format does not change (writing and reading are ObjectDataType's).
     */
    static final class RememberedKeyType extends ObjectDataType {
        /** Per thread, by identity: KeyValue's equals is by value, and equal values may differ in bytes. */
        private static final ThreadLocal<IdentityHashMap<Object, byte[]>> BYTES =
            ThreadLocal.withInitial(IdentityHashMap::new);
        private static final int REMEMBERED = 8_192;

        @Override
        public int compare(Object a, Object b) {
            if (a == b) return 0;
            if (a instanceof KeyValue && b instanceof KeyValue) return compareNotNull(bytesOf(a), bytesOf(b));
            return super.compare(a, b);
        }

        private static byte[] bytesOf(Object key) {
            IdentityHashMap<Object, byte[]> known = BYTES.get();
            byte[] bytes = known.get(key);
            if (bytes == null) {
                if (known.size() >= REMEMBERED) known.clear();
                bytes = serialize(key);
                known.put(key, bytes);
            }
            return bytes;
        }
    }

    static final class IgnoredIndex extends EmptyIndex<Object> {
        IgnoredIndex(String name, List<IndexKey> keys) {
            super(name, keys);
        }

        @Override
        public boolean isEmpty() {
            return FastOpeningH2Database.OPENING.get() == null;
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

    /**
     * Netty pins each connection to one of its worker threads, and mongo-java-server runs a command on
     * that thread from start to end. With the default (twice the cores: 4 here) a long command, such as a
     * scan of a large collection, held up every connection sharing its thread: the driver's monitor
     * connection among them, which then timed out and failed the whole client ("connection <monitor>
     * timed out" in the growth bench's replay, PoolClearedOnNetworkError behind /ops). With this many,
     * each connection has a thread of its own up to this many connections. An idle one costs little.
     */
    static final int WORKER_THREADS = 64;

    public static void main(String[] args) throws Exception {
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

        MVStore store = Compaction.openCompact(dataFile);
        Object writeLock = new Object();
        long started = System.nanoTime();
        DurableH2Backend backend = withHeartbeat("opening databases", dataFile,
            () -> new DurableH2Backend(store, writeLock));
        progress(String.format(Locale.ROOT, "databases open in %.1fs", seconds(started)));
        backend.version(DRIVER_MINIMUM);
        MongoServer server = new MongoServer(backend);

        // SIGTERM from `keyflow services down`: stop accepting, then close the MVStore so the last
        // writes are flushed and the file is not left needing recovery.
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            System.out.println("shutting down");
            server.shutdownNow();
            backend.close();
            System.out.println("store closed: " + megabytes(dataFile.length()));
            System.out.flush();
        }, "keyflow-shutdown"));

        server.bind(new InetSocketAddress(host, port), 1, WORKER_THREADS);
        backend.compaction().startBackground();
        System.out.println("mongo-java-server listening on " + host + ":" + port + ", data " + dataFile.getPath());
        System.out.flush();
    }
}
