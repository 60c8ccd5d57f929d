// Fakes of the runner's ports (group, producer, decoder, dead-letter store) so its logic runs
// without a broker or a database: deliveries are handed in by the test, commits and sends recorded.
import type { Db } from 'mongodb';
import type { ClientBatch, GroupOptions, RawMessage } from '../../../src/kafka/types';
import type { LetterStore } from '../../../src/consumers/parked-keys';
import { StageRunner, type RunnerDeps } from '../../../src/consumers/stage-runner';
import { RUNNER_DEFAULTS, type RunnerOptions } from '../../../src/consumers/options';
import { Instrumentation } from '../../../src/instrumentation';
import { createLogger } from '../../../src/logger';
import type { WireRecord } from '../../../src/producers/types';
import type { LetterInput } from '../../../src/state/dead-letters';
import type { StageSpec } from '../../../src/topology/types';

export class FakeLetters implements LetterStore {
  readonly letters = new Map<string, LetterInput & { resolved: boolean }>();
  async record(inputs: readonly LetterInput[]) {
    for (const l of inputs) {
      const before = this.letters.get(l.id);
      // As the Mongo store: a letter keeps its origin, and its reason when only waiting again.
      const kept = before && l.keepReason ? { code: before.code, message: before.message } : {};
      const origin = before ? { offset: before.offset, partition: before.partition } : {};
      this.letters.set(l.id, { ...l, ...kept, ...origin, resolved: false });
    }
  }
  /** Open: parked, or re-driven and not yet resolved (as OPEN_STATUSES says). */
  private open(stage: string, statuses: string[]) {
    return [...this.letters.values()].filter(
      (l) => l.stage === stage && statuses.includes(l.status) && !l.resolved && l.key !== null,
    );
  }
  async openKeys(stage: string) {
    return this.open(stage, ['parked', 'redriven']).map((l) => l.key!);
  }
  async hasOpenLetters(stage: string, key: string) {
    return this.open(stage, ['parked', 'redriven']).some((l) => l.key === key);
  }
  async keysWithOpenLetters(stage: string, keys: readonly string[]) {
    const open = new Set(await this.openKeys(stage));
    return keys.filter((k) => open.has(k));
  }
  /** As the Mongo store: done when resolved, wait while an earlier letter of the key is open. */
  async redriveTurn(stage: string, key: string, id: string, ahead: ReadonlySet<string>) {
    const self = this.letters.get(id);
    if (self?.resolved) return 'done' as const;
    const earlier = this.open(stage, ['parked', 'redriven']).some(
      (l) =>
        !ahead.has(l.id) &&
        l.key === key &&
        self !== undefined &&
        l.partition === self.partition &&
        Number(l.offset) < Number(self.offset),
    );
    return earlier ? ('wait' as const) : ('go' as const);
  }
  /** Re-drive marks a letter; the runner's fake store only needs the status. */
  mark(id: string, status: 'redriven' | 'parked') {
    const l = this.letters.get(id);
    if (l) l.status = status as LetterInput['status'];
  }
  async resolveLetter(id: string) {
    const l = this.letters.get(id);
    if (l) l.resolved = true;
  }
}

export interface Harness {
  runner: StageRunner;
  letters: FakeLetters;
  sent: WireRecord[];
  commits: string[];
  instrumentation: Instrumentation;
  /** Hands one delivery of `messages` (partition 0) to the runner and waits for it to be done. */
  deliver(
    messages: RawMessage[],
    group?: Partial<Pick<ClientBatch, 'heartbeat' | 'active' | 'transact' | 'end'>>,
  ): Promise<void>;
  groupOptions(): GroupOptions;
}

export function message(
  offset: number,
  key: string | null,
  value: unknown,
  headers: Record<string, string> = {},
): RawMessage {
  return {
    offset: String(offset),
    key: key === null ? null : Buffer.from(key),
    value: value === null ? null : Buffer.from(JSON.stringify(value)),
    headers,
  };
}

export async function harness(
  spec: StageSpec,
  retry = { maxAttempts: 3, baseMs: 1, maxMs: 2 },
  runnerOptions: Partial<RunnerOptions> = {},
  producer: Partial<RunnerDeps['producer']> = {},
  deps: Partial<
    Pick<RunnerDeps, 'leases' | 'runtime' | 'ingest' | 'compacted' | 'offsets' | 'recordSkipped'>
  > = {},
  letters = new FakeLetters(),
): Promise<Harness> {
  let onDelivery: ((b: ClientBatch) => Promise<void>) | undefined;
  // The guarantee the runner tests run under: the setting's, so the same tests cover both modes.
  const deliveryGuarantee =
    process.env.KEYFLOW_DELIVERY_GUARANTEE === 'at-least-once' ? 'at-least-once' : 'exactly-once';
  let options: GroupOptions | undefined;
  const sent: WireRecord[] = [];
  const commits: string[] = [];
  const instrumentation = new Instrumentation();
  const runner = new StageRunner(
    spec,
    {
      member: (o, events = {}) => {
        options = o;
        return {
          async start(fn) {
            onDelivery = fn;
            events.onJoin?.([{ topic: spec.inputs[0]!, partitions: [0] }]);
          },
          async stop() {},
        };
      },
      decoder: { decode: async (_t, bytes) => ({ value: JSON.parse(bytes.toString()) as unknown }) },
      producer: {
        prepare: async (input, cause, index = 0) => ({
          topic: input.topic,
          key: input.key,
          value: Buffer.from(JSON.stringify(input.value)),
          headers: {},
          eventId: `${cause?.eventId ?? 'x'}:${index}`,
        }),
        sendNow: async (records) => void sent.push(...records),
        ...producer,
      },
      letters,
      db: {} as Db,
      log: createLogger('silent'),
      instrumentation,
      ...deps,
    },
    {
      ...RUNNER_DEFAULTS,
      retry,
      instanceId: 'test',
      flushIntervalMs: 60_000,
      deliveryGuarantee,
      ...runnerOptions,
    },
  );
  await runner.start();
  return {
    runner,
    letters,
    sent,
    commits,
    instrumentation,
    groupOptions: () => options!,
    async deliver(messages, group = {}) {
      const send = producer.sendNow ?? (async (records: WireRecord[]) => void sent.push(...records));
      // A transaction as the fakes see it: its records go out and its offset is committed, or neither.
      const transact = async (records: WireRecord[], next: string) => {
        if (records.length) await send(records);
        commits.push(next);
      };
      await onDelivery!({
        topic: spec.inputs[0]!,
        partition: 0,
        messages,
        lag: 0,
        heartbeat: async () => {},
        active: () => true,
        commit: async (next) => void commits.push(next),
        ...(options?.transactions ? { transact } : {}),
        ...group,
      });
    },
  };
}
