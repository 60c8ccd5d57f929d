// A dead-letter record too large for its topic would stall the partition: it goes header-only, with a
// pointer to the letter in MongoDB, which keeps the bytes.
import { HEADERS } from '../../src/producers/headers';
import { dlqRecord, letterOrigin, type LetterInput } from '../../src/state/dead-letters';

const letter = (bytes: number): LetterInput => ({
  id: 'count:in:3:42',
  stage: 'count',
  key: 'a',
  eventId: 'e1',
  topic: 'in',
  partition: 3,
  offset: '42',
  value: Buffer.alloc(bytes, 1),
  headers: { 'keyflow-event-id': 'e1' },
  code: 'DECODE_FAILED',
  message: 'not Avro',
  attempts: 1,
  firstFailedAt: 0,
  status: 'parked',
});

test('a dead letter over max.message.bytes is sent header-only, pointing at its stored letter', () => {
  const small = dlqRecord(letter(100), 4096);
  expect(small.value?.length).toBe(100);
  expect(small.headers[HEADERS.DLQ_STORED]).toBeUndefined();

  const big = dlqRecord(letter(5000), 4096);
  expect(big.value).toBeNull();
  expect(big.headers[HEADERS.DLQ_STORED]).toBe('keyflow_dead_letters/count:in:3:42');
  expect(big.headers[HEADERS.DLQ_CODE]).toBe('DECODE_FAILED');
  expect(big.headers['keyflow-event-id']).toBeUndefined();
  expect(big.key).toBe('a');
});

test('a letter id gives back its origin partition and offset, whatever the stage name holds', () => {
  expect(letterOrigin('ns:count:in:3:42')).toEqual({ partition: 3, position: 42 });
  expect(letterOrigin('nonsense')).toBeUndefined();
});
