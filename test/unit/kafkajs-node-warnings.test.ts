// kafkajs's negative scheduling delay makes Node 24 print a TimeoutNegativeWarning; that one warning is
// dropped where kafkajs is loaded, and every other warning still reaches stderr.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { isKafkajsNegativeDelay } from '../../src/kafka/kafkajs-node-warnings';

test('only the TimeoutNegativeWarning is recognised, by type or by error name', () => {
  expect(isKafkajsNegativeDelay('-17 is a negative number.', 'TimeoutNegativeWarning')).toBe(true);
  expect(isKafkajsNegativeDelay('x', { type: 'TimeoutNegativeWarning' })).toBe(true);
  expect(isKafkajsNegativeDelay('x', 'DeprecationWarning')).toBe(false);
  expect(isKafkajsNegativeDelay(new Error('x'), undefined)).toBe(false);
});

test('a process that loaded the kafkajs adapter prints no warning for a negative timeout, but others', () => {
  // The compiled adapter, as bin/keyflow.js loads it (`npm test` builds dist/ first).
  const file = path.join(__dirname, '..', '..', 'dist', 'kafka', 'kafkajs-client.js');
  const r = spawnSync(
    process.execPath,
    [
      '-e',
      `require(${JSON.stringify(file)}); setTimeout(() => {}, -Date.now()); process.emitWarning('still here', 'OtherWarning');`,
    ],
    { encoding: 'utf8' },
  );
  expect(r.status).toBe(0);
  expect(r.stderr).not.toMatch(/TimeoutNegativeWarning/);
  expect(r.stderr).toMatch(/OtherWarning: still here/);
});
