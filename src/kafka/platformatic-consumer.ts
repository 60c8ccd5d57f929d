// The @platformatic/kafka Consumer with the one thing Keyflow adds: a member gives up a partition
// only after its in-flight delivery settled or yielded, so the partition's next owner never starts
// while this one still writes.
//
// KIP-848: the coordinator moves a partition once the member's heartbeat stops listing it. The
// library drops a revoked partition from its owned set after refreshing metadata (its
// `consumer:group:rebalance` event comes first, synchronously), and its next heartbeat carries the
// smaller set. Holding that metadata call until the member is idle holds the acknowledgement; the
// coordinator waits up to the rebalance timeout. Classic: a rejoin resolves `protocolsMetadata`
// before sending JoinGroup; holding it keeps the group from completing while we still work, as
// kafkajs's eager rejoin does.
import {
  connectionsApiChannel,
  Consumer,
  consumerGroupHeartbeatV1,
  kMetadata,
  type ConsumerOptions,
} from '@platformatic/kafka';

const CONSUMER_GROUP_HEARTBEAT = consumerGroupHeartbeatV1.api.key;
/** Kafka's error codes the heartbeat answer is mended between (protocol error table). */
const UNKNOWN_MEMBER_ID = 25;
const FENCED_MEMBER_EPOCH = 110;

type MetadataCallback = Parameters<Consumer[typeof kMetadata]>[1];

export interface Suspension {
  /** No delivery may start from now on; resolves once none is in flight. */
  suspend(): Promise<void>;
  /** Deliveries may start again (the group change this waited for is applied). */
  resume(): void;
}

export class KeyflowConsumer extends Consumer<Buffer, Buffer, Buffer, Buffer> {
  private hold: Promise<void> | undefined;
  private held = 0;
  /** Set by the rebalance event: the next metadata call is the one that applies the revocation. */
  private holdNext = false;
  /**
   * The member epoch of the latest successful heartbeat answer (KIP-848), for the transactional offset
   * commit: the library keeps its own private. A fence leaves it at the old epoch, which the
   * coordinator then refuses.
   */
  memberEpoch = 0;
  private readonly onAnswer = (message: unknown) => {
    const ctx = message as {
      apiKey?: number;
      connection?: { ownerId?: number };
      result?: { errorCode?: number; memberId?: string | null; memberEpoch?: number };
      error?: { response?: { errorCode?: number } };
    };
    if (ctx.apiKey !== CONSUMER_GROUP_HEARTBEAT) return;
    const r = ctx.result;
    // The member id is ours (the library makes it before its first heartbeat), so the answer is too.
    if (r?.errorCode === 0 && r.memberId === this.memberId) this.memberEpoch = r.memberEpoch ?? 0;
    // KIP-848: a member the coordinator removed (its session expired: a long pause, a SIGSTOP) gets
    // UNKNOWN_MEMBER_ID and must drop its partitions and join again at epoch 0, as a fenced one does.
    // The library 2.12 rejoins only on FENCED_MEMBER_EPOCH and otherwise heartbeats with the dead epoch
    // for ever, so the member never came back (the zombie fault scenario). The answer is published
    // here before the library reads it, on a connection of this client only: it reads as the fence.
    const refused = ctx.error?.response;
    if (refused?.errorCode === UNKNOWN_MEMBER_ID && ctx.connection?.ownerId === this.instanceId)
      refused.errorCode = FENCED_MEMBER_EPOCH;
  };

  constructor(
    options: ConsumerOptions<Buffer, Buffer, Buffer, Buffer>,
    private readonly suspension: Suspension,
  ) {
    super(
      options.groupProtocol === 'consumer'
        ? options
        : {
            ...options,
            protocolsMetadata: (_protocols, _topics, _metadata, callback) => {
              // Resumed by the member on the join that follows (consumer:group:join).
              suspension.suspend().then(
                () => callback(null, Buffer.alloc(0)),
                (err: Error) => callback(err, Buffer.alloc(0)),
              );
              return undefined;
            },
          },
    );
    this.on('consumer:group:rebalance', () => {
      if (options.groupProtocol !== 'consumer') return;
      this.hold ??= suspension.suspend();
      // Only the call that applies the smaller assignment waits: commits and fetches must go on, so
      // in-flight deliveries can settle.
      this.holdNext = true;
    });
    // Every broker answer is published on the library's diagnostics channel before it is applied.
    connectionsApiChannel.asyncStart.subscribe(this.onAnswer);
    this.once('client:close', () => connectionsApiChannel.asyncStart.unsubscribe(this.onAnswer));
  }

  override [kMetadata](options: Parameters<Consumer[typeof kMetadata]>[0], given: MetadataCallback): void {
    const callback = this.complete(options, given);
    const hold = this.hold;
    if (!hold || !this.holdNext) {
      super[kMetadata](options, callback);
      return;
    }
    this.holdNext = false;
    this.held++;
    const release = () => {
      if (--this.held > 0) return;
      this.hold = undefined;
      this.suspension.resume();
    };
    void hold.then(
      () =>
        super[kMetadata](options, (err, metadata) => {
          try {
            callback(err, metadata as never);
          } finally {
            // The library's callback applied the new assignment synchronously: work may go on.
            release();
          }
        }),
      () => {
        release();
        super[kMetadata](options, callback);
      },
    );
  }

  /**
   * The library answers from its cached metadata for up to metadataMaxAge, and its fetch looks up the
   * leader of every assigned partition there: a topic that grew (batch-status from 2 to 6 partitions)
   * gets its new partitions assigned before the cache knows them, and the fetch threw a TypeError that
   * stopped the member. An answer that lacks an assigned partition is fetched again, fresh.
   */
  private complete(
    options: Parameters<Consumer[typeof kMetadata]>[0],
    callback: MetadataCallback,
  ): MetadataCallback {
    return (err, metadata) => {
      if (err || options.forceUpdate || !metadata || !this.lacksAssigned(metadata)) {
        callback(err, metadata as never);
        return;
      }
      super[kMetadata]({ ...options, forceUpdate: true }, callback);
    };
  }

  private lacksAssigned(metadata: { topics: Map<string, { partitions: unknown[] } | undefined> }): boolean {
    for (const a of this.assignments ?? []) {
      const known = metadata.topics.get(a.topic);
      if (!known) continue;
      if (a.partitions.some((p) => known.partitions[p] === undefined)) return true;
    }
    return false;
  }
}
