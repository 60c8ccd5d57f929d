// The ingest stage's decision: an asset's recorded outcome is emitted to batch-status by the input record
// that produced it, again when that record comes again, and never by another copy of the event.
import { decideIngest, type IngestPlan } from '../../src/batches/ingest-stage';
import type { IngestEvent } from '../../src/batches/schemas';
import type { StageEvent } from '../../src/topology/types';

const STATUS = 'batch-status';
const value: IngestEvent = {
  batchId: 7,
  customerId: 'acme',
  assetId: 'a1',
  origin: 'https://cdn.example/a.png',
};

function delivery(offset: string, redrive?: { letter: string }): StageEvent<IngestEvent> {
  return {
    key: 'a1',
    value,
    eventId: 'e1',
    occurredAt: 1,
    tenantId: undefined,
    traceId: 't',
    topic: 'ingest',
    partition: 2,
    offset,
    attempt: 1,
    headers: {},
    consumedAt: 0,
    ...(redrive ? { redrive } : {}),
  };
}

const result = (input?: IngestPlan['result']['input']): IngestPlan['result'] => ({
  _id: '7:a1',
  status: 'completed',
  error: null,
  finished: 1_700_000_000_000,
  facts: null,
  ...(input ? { input } : {}),
});

test('the recorded outcome is re-emitted, identical, to its own input record only', () => {
  const input = { topic: 'ingest', partition: 2, offset: '5' };
  const first = decideIngest(delivery('5'), { result: result(input), fresh: true }, STATUS);
  expect(first.emit).toHaveLength(1);
  const again = decideIngest(delivery('5'), { result: result(input), fresh: false }, STATUS);
  expect(JSON.stringify(again.emit)).toBe(JSON.stringify(first.emit));
  // An upstream re-send of the ingest event: the asset is not processed again, and nothing is emitted.
  expect(decideIngest(delivery('6'), { result: result(input), fresh: false }, STATUS).emit).toEqual([]);
  // The re-drive of the letter written for offset 5 stands for it.
  const redriven = delivery('90', { letter: 'ingest-stage:ingest:2:5' });
  expect(decideIngest(redriven, { result: result(input), fresh: false }, STATUS).emit).toEqual(first.emit);
  // A result recorded before inputs were stored is emitted to any copy.
  expect(decideIngest(delivery('6'), { result: result(), fresh: false }, STATUS).emit).toEqual(first.emit);
});
