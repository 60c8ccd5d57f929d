// Every query the code declares has an index, checked two ways. Statically, on any server: an index of its
// collection leads with a field the query filters on. By explain, on a server whose planner answers with
// IXSCAN/COLLSCAN (SecantusDB, or real MongoDB) at EXPLAIN_MONGO_URL: the winning plan reads an index and
// scans no collection. mongo-java-server has no explain and FerretDB 1.x explains its SQL instead, so the
// explain half has a server of its own: the integration setup starts one unless EXPLAIN_MONGO_URL names it.
// That the live stages send no filter besides these and _id lookups: test/scenarios/hot-path-live.test.ts.
import { MongoClient, type Db, type Document, type Filter, type Sort } from 'mongodb';
import { appDataflows } from '../../src/app/dataflows';
import type { DeclaredQuery } from '../../src/runtime/dataflow';
import { ENGINE_INDEXES, ENGINE_QUERIES } from '../../src/runtime/engine-queries';
import { describePlan, summarizePlan } from '../../src/state/explain';
import { ensureIndexes, type CollectionIndexes } from '../../src/state/mongo';
import { cleanupAll, onCleanup, uniqueName } from '../helpers';

afterAll(cleanupAll);

const flows = appDataflows();
const indexes: CollectionIndexes[] = [...ENGINE_INDEXES, ...flows.flatMap((f) => f.indexes)];
const queries: DeclaredQuery[] = [...ENGINE_QUERIES, ...flows.flatMap((f) => f.queries)];
const cases = queries.map((q) => [`${q.collection}: ${q.name}`, q] as const);

const HOW_TO_RUN =
  'start one with `npx tsx test/setup/explain-server.ts up` and set the EXPLAIN_MONGO_URL it prints';

function leadingFields(collection: string): string[] {
  const own = indexes
    .filter((i) => i.collection === collection)
    .flatMap((i) => i.indexes.map((x) => Object.keys(x.key)[0]!));
  return ['_id', ...own];
}

test('every declared query has a name unique in its collection', () => {
  const names = cases.map(([name]) => name);
  expect(names.length).toBeGreaterThan(0);
  expect(new Set(names).size).toBe(names.length);
});

describe('an index leads with a filtered field', () => {
  test.each(cases)('%s', (_name, q) => {
    const filtered = Object.keys(q.filter);
    expect(leadingFields(q.collection).filter((f) => filtered.includes(f))).not.toEqual([]);
  });
});

const explainUrl = process.env.EXPLAIN_MONGO_URL;

// The integration setup starts the explain server when EXPLAIN_MONGO_URL is not set (global-setup.ts).
describe(`the winning plan reads an index (explain on ${explainUrl ?? 'EXPLAIN_MONGO_URL'})`, () => {
  let db: Db;
  const plans: [string, string][] = [];

  beforeAll(async () => {
    if (!explainUrl)
      throw new Error(`the explain half needs a server: EXPLAIN_MONGO_URL is not set; ${HOW_TO_RUN}`);
    const client = new MongoClient(explainUrl, { serverSelectionTimeoutMS: 10_000 });
    await client.connect();
    db = client.db(uniqueName('kfexplain').replace(/-/g, '_'));
    onCleanup(async () => {
      await db.dropDatabase().catch(() => undefined);
      await client.close();
    });
    await ensureIndexes(db, indexes);
    // A collection that does not exist explains as EOF; one document makes the planner choose for real.
    for (const collection of new Set(queries.map((q) => q.collection))) {
      await db.collection(collection).insertOne({ _id: 'probe-doc' as never, probe: true });
    }
  });

  afterAll(() => {
    const lines = plans.map(([name, how]) => `  ${name}: ${how}`);
    process.stderr.write(`\n[indexes] winning plans on ${explainUrl}:\n${lines.join('\n')}\n`);
  });

  const explainFind = async (collection: string, filter: Filter<Document>, sort?: Sort) =>
    summarizePlan(
      await db
        .collection(collection)
        .find(filter)
        .sort(sort ?? {})
        .explain('queryPlanner'),
    );

  test.each(cases)('%s', async (name, q) => {
    const whole = await explainFind(q.collection, q.filter, q.sort);
    if (whole.verdict === 'no-plan') {
      throw new Error(
        `${explainUrl} answered explain without a stage tree; it must be SecantusDB or MongoDB`,
      );
    }
    plans.push([
      name,
      whole.verdict === 'index' ? describePlan(whole) : `NOT PROVEN: ${describePlan(whole)}`,
    ]);
    // SecantusDB 0.7 plans an index only when it covers every predicate (equalities first, then at most
    // one range or $in; `_id_` for equality and $in only), so each query is shaped to be read whole.
    // One string, so a failure shows the whole plan: "collscan: SORT < COLLSCAN".
    expect(`${whole.verdict}: ${describePlan(whole)}`).toMatch(/^index: /);
  });
});
