// The hot-path rule, checked on what the code really sends rather than on what it declares: the
// appointments and conversions stages run on the real stack over sample traffic (late events and
// duplicates included) while every command of the processor's MongoDB client is watched. Each filter
// it sends (find, aggregate, count, distinct, update, delete, findAndModify) must touch documents by
// _id, or be a declared query, which test/integration/indexes.test.ts proves index-backed. A query a
// stage runs without declaring it fails here, whatever the declarations say.
import type { CommandStartedEvent, Document } from 'mongodb';
import { appointmentsFlow } from '../../src/appointments';
import { generate } from '../../src/app/demo/generate';
import { conversionsFlow } from '../../src/conversions';
import type { DeclaredQuery } from '../../src/runtime/dataflow';
import { ENGINE_QUERIES } from '../../src/runtime/engine-queries';
import { cleanupAll, env, eventually } from '../helpers';
import { filterShape, isByIdFilter, sentFilters } from '../sent-filters';
import { dropAfter, prefix, runProcessor, testConfig } from './harness';

afterAll(cleanupAll);

test('every filter the live stages send is by _id or a declared query', async () => {
  const p = prefix('hotpath');
  const flows = [appointmentsFlow({ prefix: p }), conversionsFlow({ prefix: p })];
  const url = env('MONGO_URL');
  const config = testConfig({ MONGO_URL: `${url}${url.includes('?') ? '&' : '?'}monitorCommands=true` });
  const processor = await runProcessor(
    config,
    { topics: flows.flatMap((f) => f.topics), stages: flows.flatMap((f) => f.stages) },
    { indexes: flows.flatMap((f) => f.indexes) },
  );
  const { db, producer, lag } = processor.context;
  dropAfter(() => db);
  const sent: CommandStartedEvent[] = [];
  db.client.on('commandStarted', (e: CommandStartedEvent) => sent.push(e));

  const events = generate({
    seed: 20,
    runId: p,
    tenants: 3,
    appointments: 60,
    leads: 40,
    conversionsPerLead: 3,
    lateShare: 0.2,
    duplicateShare: 0.1,
    start: Date.UTC(2026, 10, 1),
  });
  await producer.publish(
    events.map((e) => ({
      topic: `${p}.${e.topic === 'appointments' ? 'external.appointments.v1' : 'external.conversions.v1'}`,
      key: e.key,
      value: e.value,
      eventId: e.value.eventId,
      occurredAt: e.value.occurredAt,
    })),
  );
  // Every stage group committed to the end of its inputs: all of the traffic went through the stages.
  await eventually(
    async () => {
      await lag.poll();
      const parts = lag.snapshot().groups.flatMap((g) => g.partitions);
      const done =
        parts.length > 0 && parts.every((x) => x.lag === 0 && (x.committed !== null || x.end === '0'));
      return done ? true : undefined;
    },
    90_000,
    'every stage caught up',
  );

  const declared: DeclaredQuery[] = [...ENGINE_QUERIES, ...flows.flatMap((f) => f.queries)];
  const declaredShapes = new Set(declared.map((q) => `${q.collection} ${filterShape(q.filter)}`));
  const filters = sent.filter((e) => e.databaseName === db.databaseName).flatMap(sentFilters);
  // The watch saw the stages at work: reads and guarded writes of both flows' tables.
  const collections = new Set(filters.map((f) => f.collection));
  for (const table of ['RSAppointment', 'RSLeadGlobalConversions']) expect(collections).toContain(table);
  const undeclared = filters
    .filter((f) => !isByIdFilter(f.filter) && !declaredShapes.has(`${f.collection} ${filterShape(f.filter)}`))
    .map((f) => `${f.command} ${f.collection} ${JSON.stringify(f.filter as Document)}`);
  expect([...new Set(undeclared)]).toEqual([]);
});
