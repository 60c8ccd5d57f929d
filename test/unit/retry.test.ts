// Retry policy: exponential, bounded, jittered; event failures spend the attempt budget, while
// infrastructure failures wait for the outage to end instead of dead-lettering everything.
import { backoffMs, decideRetry } from '../../src/consumers/retry';
import { fromKafkajs } from '../../src/kafka/kafkajs-errors';
import { classify, KeyflowError } from '../../src/errors';

const policy = { maxAttempts: 3, baseMs: 100, maxMs: 1000 };

test('backoff doubles per attempt, stays within [ceiling/2, ceiling] and never exceeds the maximum', () => {
  expect(backoffMs(policy, 1, () => 0)).toBe(50);
  expect(backoffMs(policy, 1, () => 1)).toBe(100);
  expect(backoffMs(policy, 3, () => 1)).toBe(400);
  expect(backoffMs(policy, 10, () => 1)).toBe(1000);
  expect(backoffMs(policy, 10, () => 0)).toBe(500);
});

test('a non-retriable failure goes straight to the dead-letter topic', () => {
  expect(decideRetry(policy, new KeyflowError('VALIDATION_FAILED', 'x'), 1)).toEqual({
    action: 'dead-letter',
  });
});

test('a retriable handler failure retries until the attempts run out', () => {
  const err = new KeyflowError('HANDLER_TRANSIENT', 'x');
  expect(decideRetry(policy, err, 1).action).toBe('retry');
  expect(decideRetry(policy, err, 2).action).toBe('retry');
  expect(decideRetry(policy, err, 3)).toEqual({ action: 'dead-letter' });
});

test('an infrastructure failure keeps retrying past the attempt budget', () => {
  const err = new KeyflowError('STORE_TRANSIENT', 'x');
  expect(decideRetry(policy, err, 50).action).toBe('retry');
});

test('classify keeps our codes and Mongo transient errors; the kafkajs adapter maps its own errors', () => {
  expect(classify(new KeyflowError('LEASE_BUSY', 'x')).retriable).toBe(true);
  const kafkaErr = Object.assign(new Error('leader not available'), {
    name: 'KafkaJSProtocolError',
    retriable: true,
  });
  // The mapping of kafkajs errors is the adapter's: classify itself knows no client by name.
  expect(classify(kafkaErr)).toMatchObject({ code: 'HANDLER_FAILED' });
  expect(classify(fromKafkajs(kafkaErr))).toMatchObject({ code: 'PRODUCE_FAILED', retriable: true });
  const down = Object.assign(new Error('connect ECONNREFUSED'), { name: 'KafkaJSConnectionError' });
  expect(classify(fromKafkajs(down))).toMatchObject({ code: 'UNREACHABLE', retriable: true });
  const net = Object.assign(new Error('connection reset'), { name: 'MongoNetworkError' });
  expect(classify(net)).toMatchObject({ code: 'STORE_TRANSIENT', retriable: true });
  const dup = Object.assign(new Error('E11000'), { name: 'MongoServerError', code: 11000 });
  expect(classify(dup)).toMatchObject({ code: 'HANDLER_FAILED', retriable: false });
  expect(classify(new TypeError('x is undefined'))).toMatchObject({
    code: 'HANDLER_FAILED',
    retriable: false,
  });
});
