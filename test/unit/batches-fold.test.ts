// The fold stage's pure step: a row's status transition is counted once — a transition its counter
// slot already lists (a crash between the slot and the row) is recognised, and a record that moves
// nothing only touches its batch.
import { foldBatchStatus, transitionId, type FoldState } from '../../src/batches/fold-stage';
import type { BatchStatus } from '../../src/batches/schemas';
import type { StageEvent } from '../../src/topology/types';

const status = (over: Partial<BatchStatus> = {}): BatchStatus => ({
  batchId: 7,
  customerId: 'acme',
  assetId: 'a1',
  status: 'completed',
  error: null,
  finished: 1_000,
  ...over,
});

const delivery = (v: BatchStatus): StageEvent<BatchStatus> => ({
  key: `7:a1`,
  value: v,
  eventId: 'e',
  occurredAt: undefined,
  tenantId: undefined,
  traceId: 't',
  topic: 'status',
  partition: 2,
  offset: '0',
  attempt: 1,
  headers: {},
  consumedAt: 0,
});

const waiting = (pending: string[] = []): FoldState => ({
  row: { status: 'waiting', error: null, finished: null, customerId: 'acme', batchId: 7 },
  stored: { status: 'waiting', error: null, finished: null },
  slot: { version: 3, pending },
});

test('waiting → completed is a counted move, guarded on the row and slot as read', () => {
  const step = foldBatchStatus(delivery(status()), waiting());
  expect(step.plan).toMatchObject({
    kind: 'move',
    count: true,
    from: { status: 'waiting' },
    to: { status: 'completed', finished: 1_000 },
    slotVersion: 3,
  });
  expect(step.state.row!.status).toBe('completed');
});

test('a transition the slot already lists is recognised: the row is written, nothing is counted', () => {
  const rowId = `7:a1`;
  const planned = foldBatchStatus(delivery(status()), waiting()).plan!;
  const id = transitionId(rowId, { status: 'completed', error: null, finished: 1_000 });
  expect(planned.kind === 'move' && transitionId(planned.rowId, planned.to)).toBe(id);
  const again = foldBatchStatus(delivery(status()), waiting([id]));
  expect(again.plan).toMatchObject({ kind: 'move', count: false });
});

test('a duplicate or older record moves nothing and only touches the batch', () => {
  const { state } = foldBatchStatus(delivery(status()), waiting());
  const dup = foldBatchStatus(delivery(status()), state);
  expect(dup.plan).toMatchObject({ kind: 'touch', batchId: 7 });
  expect(dup.outcome).toBe('duplicate');
  const older = foldBatchStatus(delivery(status({ status: 'error', error: 'x', finished: 500 })), state);
  expect(older.plan).toMatchObject({ kind: 'touch' });
});

test('a later error after completed moves the row back: the counts follow the transition', () => {
  const { state } = foldBatchStatus(delivery(status()), waiting());
  const later = foldBatchStatus(delivery(status({ status: 'error', error: 'gone', finished: 2_000 })), state);
  expect(later.plan).toMatchObject({ kind: 'move', from: { status: 'completed' }, to: { status: 'error' } });
});

test('a record for a missing row, or another customer’s, plans nothing', () => {
  expect(foldBatchStatus(delivery(status()), { ...waiting(), row: null, stored: null }).plan).toBeNull();
  expect(foldBatchStatus(delivery(status({ customerId: 'rival' })), waiting()).plan).toBeNull();
});
