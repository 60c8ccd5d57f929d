// Every query the code runs has an index. Two checks per declared query: an index of its collection
// must lead with a field the query filters on (everywhere), and where the server can explain a query
// (real MongoDB 7) the winning plan must not scan the whole collection. mongo-java-server has no
// explain command and FerretDB 1.x explains its SQL backend instead, so there only the first check runs.
import { appDataflows } from '../../src/app/dataflows';
import type { DeclaredQuery } from '../../src/runtime/dataflow';
import { ENGINE_INDEXES, ENGINE_QUERIES } from '../../src/runtime/engine-queries';
import { ensureIndexes, type CollectionIndexes } from '../../src/state/mongo';
import { cleanupAll, freshDb } from '../helpers';

afterAll(cleanupAll);

const flows = appDataflows();
const indexes: CollectionIndexes[] = [...ENGINE_INDEXES, ...flows.flatMap((f) => f.indexes)];
const queries: DeclaredQuery[] = [...ENGINE_QUERIES, ...flows.flatMap((f) => f.queries)];

function leadingFields(collection: string): string[] {
  const own = indexes
    .filter((i) => i.collection === collection)
    .flatMap((i) => i.indexes.map((x) => Object.keys(x.key)[0]!));
  return ['_id', ...own];
}

test.each(queries.map((q) => [q.name, q] as const))('%s is served by an index', async (_name, q) => {
  const filtered = Object.keys(q.filter);
  expect(leadingFields(q.collection).some((f) => filtered.includes(f))).toBe(true);

  const { db } = await freshDb('kfidx');
  await ensureIndexes(db, indexes);
  await db.collection(q.collection).insertOne({ _id: 'probe-doc' as never, probe: true });
  let plan: unknown;
  try {
    plan = await db
      .collection(q.collection)
      .find(q.filter)
      .sort(q.sort ?? {})
      .explain('queryPlanner');
  } catch (err) {
    // No explain on this server (mongo-java-server): the static check above is what holds here.
    expect(String((err as Error).message)).toMatch(/explain|not supported|no such command/i);
    return;
  }
  const winning = JSON.stringify(
    (plan as { queryPlanner?: { winningPlan?: unknown } }).queryPlanner?.winningPlan ?? {},
  );
  if (winning !== '{}') expect(winning).not.toContain('COLLSCAN');
});
