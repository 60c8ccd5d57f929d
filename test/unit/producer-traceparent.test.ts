// A produced record's traceparent continues its cause's trace and names the record's own send span
// (derived from its event id), so the tracer, which learns of the record afterwards, can give that
// span the same id; a fresh event starts a trace of its own; an explicit header wins.
import type { KafkaClient } from '../../src/kafka/types';
import { HEADERS, parseTraceparent, recordSpanId } from '../../src/producers/headers';
import { KeyedProducer } from '../../src/producers/producer';

const kafka = { sender: () => ({}) } as unknown as Pick<KafkaClient, 'sender'>;
const producer = new KeyedProducer(kafka, { encode: async () => Buffer.from('v') });
const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';

test("an emitted record continues its cause's trace under its own send span", async () => {
  const cause = { eventId: 'in-1', stage: 'appointments', traceId: TRACE, attempt: 1 };
  const r = await producer.prepare({ topic: 't', key: 'k', value: {} }, cause, 0);
  expect(parseTraceparent(r.headers[HEADERS.TRACEPARENT])).toEqual({
    traceId: TRACE,
    spanId: recordSpanId(r.eventId),
  });
  const again = await producer.prepare({ topic: 't', key: 'k', value: {} }, cause, 0);
  expect(again.headers[HEADERS.TRACEPARENT]).toBe(r.headers[HEADERS.TRACEPARENT]);
});

test('a fresh event starts its own trace; a traceparent the caller gives is kept', async () => {
  const a = await producer.prepare({ topic: 't', key: 'k', value: {} });
  const b = await producer.prepare({ topic: 't', key: 'k', value: {} });
  expect(parseTraceparent(a.headers[HEADERS.TRACEPARENT])!.traceId).not.toBe(
    parseTraceparent(b.headers[HEADERS.TRACEPARENT])!.traceId,
  );
  expect(parseTraceparent(a.headers[HEADERS.TRACEPARENT])!.spanId).toBe(recordSpanId(a.eventId));
  const given = `00-${TRACE}-00f067aa0ba902b7-01`;
  const c = await producer.prepare({
    topic: 't',
    key: 'k',
    value: {},
    headers: { [HEADERS.TRACEPARENT]: given },
  });
  expect(c.headers[HEADERS.TRACEPARENT]).toBe(given);
});
