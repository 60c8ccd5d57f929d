// The key contract of entity-keyed inputs: a record whose key is not the entity id its value names is
// dead-lettered as KEY_MISMATCH before any handler folds it apart from its entity's other events.
// Keyless records, tombstones and re-drives for other stages keep their own paths.
import { appointmentsFlow } from '../../src/appointments';
import { batchesFlow } from '../../src/batches';
import { conversionsFlow } from '../../src/conversions';
import { openEnvelope } from '../../src/consumers/envelope';
import { HEADERS } from '../../src/producers/headers';
import { keyMismatch } from '../../src/topology/key-contract';
import type { StageSpec } from '../../src/topology/types';

const conversions = conversionsFlow().stages[0]!;
const appointments = appointmentsFlow().stages[0]!;
const conversion = {
  eventId: 'e1',
  tenantId: 't1',
  leadId: 'lead-1',
  conversionType: 'sold',
  occurredAt: 1,
  amount: 2,
};

/** A decoder that hands back the value it was given as JSON. */
const decoder = {
  decode: async (_t: string, bytes: Buffer) => ({ value: JSON.parse(bytes.toString()) as unknown }),
};

function message(key: string | null, value: unknown, headers: Record<string, string> = {}) {
  return {
    offset: '7',
    key: key === null ? null : Buffer.from(key),
    value: value === null ? null : Buffer.from(JSON.stringify(value)),
    headers,
  };
}

const open = (spec: StageSpec, m: ReturnType<typeof message>, compacted = false) =>
  openEnvelope(m, {
    topic: spec.inputs[0]!,
    partition: 0,
    spec,
    decoder,
    consumedAt: 0,
    compacted: () => compacted,
  });

test('a conversion keyed by anything but its leadId is dead-lettered as KEY_MISMATCH, naming both', async () => {
  const env = await open(conversions, message('e1', conversion));
  expect(env.kind).toBe('dead');
  if (env.kind !== 'dead') return;
  expect(env.item).toMatchObject({ key: 'e1', eventId: 'e1' });
  expect(env.error).toMatchObject({ code: 'KEY_MISMATCH', retriable: false });
  expect(env.error.message).toMatch(/key "e1" but names entity "lead-1"/);
  expect((await open(conversions, message('lead-1', conversion))).kind).toBe('event');
});

test('an appointment keyed by anything but its appointmentId is KEY_MISMATCH', async () => {
  const appt = {
    eventId: 'a1',
    tenantId: 't1',
    appointmentId: 'appt-1',
    leadId: 'lead-1',
    kind: 'SCHEDULED',
    scheduledFor: null,
    occurredAt: 1,
    source: 's',
  };
  const env = await open(appointments, message('lead-1', appt));
  expect(env.kind === 'dead' && env.error.code).toBe('KEY_MISMATCH');
  expect((await open(appointments, message('appt-1', appt))).kind).toBe('event');
});

test('keyless records, tombstones and re-drives for another stage keep their own paths', async () => {
  const keyless = await open(conversions, message(null, conversion));
  expect(keyless.kind === 'dead' && keyless.error.code).toBe('KEY_MISSING');
  expect((await open(conversions, message('e1', null), true)).kind).toBe('pass');
  const other = message('e1', conversion, { [HEADERS.REDRIVE_STAGE]: 'another-stage' });
  expect((await open(conversions, other)).kind).toBe('pass');
});

test('a stage that declares no entity key, or none for this value, is not checked', () => {
  const spec = { name: 's', entityKey: (v: unknown) => (v as { id?: string }).id };
  expect(keyMismatch({ name: 's' }, 'in', 'k', { id: 'x' })).toBeUndefined();
  expect(keyMismatch(spec, 'in', 'k', {})).toBeUndefined();
  expect(keyMismatch(spec, 'in', 'k', { id: 'k' })).toBeUndefined();
  expect(keyMismatch(spec, 'in', 'k', { id: 'x' })?.code).toBe('KEY_MISMATCH');
});

test('batches: an ingest event is keyed by its asset id, a batch-status record by batchId:assetId', () => {
  const [ingest, fold] = batchesFlow().stages;
  const asset = { batchId: 4, customerId: 'c1', assetId: 'a-9', url: 'https://example.com/a.jpg' };
  expect(keyMismatch(ingest!, ingest!.inputs[0]!, 'a-9', asset)).toBeUndefined();
  expect(keyMismatch(ingest!, ingest!.inputs[0]!, '4', asset)).toMatchObject({ code: 'KEY_MISMATCH' });
  const status = { batchId: 4, customerId: 'c1', assetId: 'a-9', status: 'done', finished: 1 };
  expect(keyMismatch(fold!, fold!.inputs[0]!, '4:a-9', status)).toBeUndefined();
  // Keyed by the asset alone, the fold would read and write another row than the one the record names.
  expect(keyMismatch(fold!, fold!.inputs[0]!, 'a-9', status)).toMatchObject({ code: 'KEY_MISMATCH' });
});
