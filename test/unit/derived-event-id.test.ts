// A stage's emitted records carry an event id derived from their cause, so a re-emission is
// recognisable downstream. Event ids are unique only within a tenant: two tenants' changes caused by
// the same upstream id must still carry two ids, or a consumer deduping on the header drops one.
import { createHash } from 'node:crypto';
import type { KafkaClient } from '../../src/kafka/types';
import { HEADERS } from '../../src/producers/headers';
import { KeyedProducer } from '../../src/producers/producer';
import type { Causation } from '../../src/producers/types';

const kafka = { sender: () => ({}) } as unknown as Pick<KafkaClient, 'sender'>;
const producer = new KeyedProducer(kafka, { encode: async () => Buffer.from('v') });

async function idOf(cause: Causation, index = 0): Promise<string> {
  const r = await producer.prepare({ topic: 'changes', key: 'lead-1', value: {} }, cause, index);
  expect(r.headers[HEADERS.EVENT_ID]).toBe(r.eventId);
  return r.eventId;
}

const cause = (tenantId: string | undefined): Causation => ({
  eventId: 'evt-1',
  stage: 'lead-conversions',
  traceId: 'a'.repeat(32),
  attempt: 1,
  tenantId,
});

test('two tenants’ changes caused by the same event id carry different derived event ids', async () => {
  const a = await idOf(cause('tenant-a'));
  const b = await idOf(cause('tenant-b'));
  expect(a).not.toBe(b);
  expect(a).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
});

test('a redelivery of the same event derives the same ids, one per emitted record', async () => {
  expect(await idOf({ ...cause('tenant-a'), attempt: 3, traceId: 'b'.repeat(32) })).toBe(
    await idOf(cause('tenant-a')),
  );
  expect(await idOf(cause('tenant-a'), 1)).not.toBe(await idOf(cause('tenant-a'), 0));
});

test('a cause without a tenant keeps the id it was derived to before tenants were part of it', async () => {
  const h = createHash('sha256').update('evt-1\u0000lead-conversions\u00000').digest('hex');
  const before = `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
  expect(await idOf(cause(undefined))).toBe(before);
  expect(await idOf(cause('tenant-a'))).not.toBe(before);
});
