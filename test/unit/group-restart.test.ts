// A failed delivery must bring its member back: kafkajs restarts a crashed consumer only when the
// innermost `cause` of the error is marked retriable, and a MongoDB driver error is not marked at all,
// so a store outage longer than the retry budget used to leave the stage dead inside a live process.
import { restartable } from '../../src/kafka/kafkajs-group';
import { KeyflowError } from '../../src/errors';

/** What kafkajs's consumer asks before restarting (consumer/index.js onCrash). */
function kafkajsWouldRestart(e: { name?: string; cause?: unknown; retriable?: unknown }): boolean {
  let inner = e;
  while (inner.cause) inner = inner.cause as typeof e;
  return e.name === 'KafkaJSNumberOfRetriesExceeded' || inner.retriable === true;
}

test('a store outage that outlived the retry budget still restarts the consumer', () => {
  const driver = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:27017'), {
    name: 'MongoServerSelectionError',
  });
  const ours = new KeyflowError('STORE_TRANSIENT', driver.message, { cause: driver });
  expect(kafkajsWouldRestart(ours)).toBe(false); // what happened before
  const out = restartable(ours) as Error & { code?: string };
  expect(kafkajsWouldRestart(out)).toBe(true);
  expect(out.message).toBe('connect ECONNREFUSED 127.0.0.1:27017');
  expect(out.code).toBe('STORE_TRANSIENT');
});

test('a group answer passes as it is, so kafkajs rejoins rather than restarts', () => {
  const moved = Object.assign(new Error('The group is rebalancing'), { type: 'REBALANCE_IN_PROGRESS' });
  expect(restartable(moved)).toBe(moved);
});
