// The schema check names what breaks: a required field added, a type changed (nested too), a field
// dropped under FORWARD, and only against the versions the level asks about; defaults and widening
// promotions (int to long) are not breaks.
import { renderChecks } from '../../src/schemas/check';
import { breaksUnder, readProblems } from '../../src/schemas/compatibility';

const v1 = {
  type: 'record',
  name: 'Visit',
  fields: [
    { name: 'id', type: 'string' },
    { name: 'n', type: 'int' },
    { name: 'at', type: { type: 'record', name: 'Place', fields: [{ name: 'room', type: 'int' }] } },
  ],
};
const withFields = (fields: object[]) => ({ ...v1, fields });

test('a reader names each field it cannot read, nested fields by their path', () => {
  const next = withFields([
    v1.fields[0]!,
    { name: 'n', type: 'string' },
    { name: 'at', type: { type: 'record', name: 'Place', fields: [{ name: 'room', type: 'boolean' }] } },
    { name: 'desk', type: 'string' },
  ]);
  expect(readProblems(next, v1)).toEqual([
    { field: 'n', kind: 'type', problem: 'written as int, read as string' },
    { field: 'at.room', kind: 'type', problem: 'written as int, read as boolean' },
    { field: 'desk', kind: 'missing', problem: 'required by the reader and absent from the writer' },
  ]);
});

test('a default, an optional union and a widening promotion read old data', () => {
  const next = withFields([
    v1.fields[0]!,
    { name: 'n', type: 'long' },
    v1.fields[2]!,
    { name: 'note', type: ['null', 'string'], default: null },
  ]);
  expect(readProblems(next, v1)).toEqual([]);
});

test('the level picks the direction and the versions compared', () => {
  const dropped = withFields([v1.fields[0]!, v1.fields[2]!]);
  const v0 = withFields([v1.fields[0]!]);
  const registered = [
    { version: 1, schema: v0 },
    { version: 2, schema: v1 },
  ];
  expect(breaksUnder('BACKWARD', dropped, registered)).toEqual([]);
  expect(breaksUnder('FORWARD', dropped, registered)).toEqual([
    { field: 'n', kind: 'missing', problem: expect.any(String), direction: 'forward', version: 2 },
  ]);
  expect(breaksUnder('NONE', dropped, registered)).toEqual([]);
  // v2 adds `at` without a default; a schema like v2 reads v2, but not v0 under a transitive level.
  expect(breaksUnder('BACKWARD', v1, registered)).toEqual([]);
  expect(breaksUnder('BACKWARD_TRANSITIVE', v1, registered).map((b) => [b.field, b.version])).toEqual([
    ['n', 1],
    ['at', 1],
  ]);
  expect(breaksUnder('FULL', dropped, registered).map((b) => b.direction)).toEqual(['forward']);
});

test('an incompatible subject names its fields and the stages that read its topic', () => {
  const out = renderChecks(
    [
      {
        topic: 'external.appointments.v1',
        subject: 'external.appointments.v1-value',
        level: 'BACKWARD',
        verdict: 'incompatible',
        latest: 3,
        breaks: [{ field: 'room', kind: 'missing', problem: '', direction: 'backward', version: 3 }],
        registryReason: 'room at /fields/8',
      },
    ],
    (topic) => (topic === 'external.appointments.v1' ? ['appointments'] : []),
  );
  expect(out).toMatch(
    /^INCOMPATIBLE +external\.appointments\.v1-value \(topic external\.appointments\.v1, BACKWARD\)/m,
  );
  expect(out).toMatch(
    /field "room" is new and has no default, so records already written \(version 3\) lack it/,
  );
  expect(out).toMatch(/breaks: stage appointments \(reading external\.appointments\.v1\)/);
  expect(out).toMatch(/schemas check: 1 incompatible, 0 compatible, 0 unchanged, 0 new\n$/);
});
