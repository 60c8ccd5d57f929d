// Where log lines go: KEYFLOW_LOG_FILE wins; a command that logs to a file by default (the demo) logs to
// stderr once LOG_LEVEL is set; servers keep standard output. Retried broker responses are not errors.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chooseLogDestination, commandLogger } from '../../src/logger';
import { isRetriedResponse, REBALANCE_RESPONSE, TRANSIENT_BROKER_ERRORS } from '../../src/kafka/kafkajs-log';

const demoFile = { to: 'file', path: '.keyflow/logs/demo.log' } as const;

test('the demo logs to its file, or to stderr once LOG_LEVEL is set', () => {
  expect(chooseLogDestination({ levelSet: false, fallback: demoFile })).toEqual({
    to: 'file',
    path: path.resolve('.keyflow/logs/demo.log'),
  });
  expect(chooseLogDestination({ levelSet: true, fallback: demoFile })).toEqual({ to: 'stderr' });
});

test('KEYFLOW_LOG_FILE wins over LOG_LEVEL and over a command’s fallback', () => {
  for (const fallback of [demoFile, { to: 'stdout' } as const]) {
    for (const levelSet of [false, true]) {
      expect(chooseLogDestination({ logFile: 'x/app.log', levelSet, fallback })).toEqual({
        to: 'file',
        path: path.resolve('x/app.log'),
      });
    }
  }
});

test('a server keeps standard output whether or not LOG_LEVEL is set', () => {
  for (const levelSet of [false, true]) {
    expect(chooseLogDestination({ levelSet, fallback: { to: 'stdout' } })).toEqual({ to: 'stdout' });
  }
});

test('commandLogger uses the command’s level unless LOG_LEVEL is set, and writes JSON lines to the file', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kflog-'));
  const file = path.join(dir, 'nested', 'demo.log');
  const quiet = commandLogger(
    {},
    { logLevel: 'info' },
    { level: 'warn', fallback: { to: 'file', path: file } },
  );
  expect(quiet.log.level).toBe('warn');
  quiet.log.info('not written');
  quiet.log.warn({ n: 1 }, 'written');
  // The file is opened and appended asynchronously, so the stages never wait on the disk.
  const deadline = Date.now() + 5000;
  while (!fs.existsSync(file) || fs.readFileSync(file, 'utf8') === '') {
    if (Date.now() > deadline) throw new Error(`${file} was not written`);
    await new Promise((r) => setTimeout(r, 20));
  }
  const lines = fs.readFileSync(file, 'utf8').trim().split('\n');
  expect(lines).toHaveLength(1);
  expect(JSON.parse(lines[0]!)).toMatchObject({ level: 40, n: 1, msg: 'written' });

  const loud = commandLogger(
    { LOG_LEVEL: 'debug' },
    { logLevel: 'debug' },
    { level: 'warn', fallback: { to: 'stdout' } },
  );
  expect(loud.log.level).toBe('debug');
  expect(loud.destination).toEqual({ to: 'stdout' });
  fs.rmSync(dir, { recursive: true, force: true });
});

test('a broker error response that kafkajs retries is recognised; other errors are not', () => {
  const loading = "The coordinator is loading and hence can't process requests for this group";
  expect(isRetriedResponse('Response GroupCoordinator(key: 10, version: 2)', { error: loading })).toBe(true);
  expect(
    isRetriedResponse('Response JoinGroup(key: 11, version: 5)', {
      error: 'The group coordinator is not available',
    }),
  ).toBe(true);
  expect(isRetriedResponse('Crash: KafkaJSNumberOfRetriesExceeded', { error: loading })).toBe(false);
  expect(
    isRetriedResponse('Response Produce(key: 0, version: 7)', { error: 'Broker: Message too large' }),
  ).toBe(false);
  expect(isRetriedResponse('Response Metadata', {})).toBe(false);
});

test('each message demoted is one kafkajs itself marks retriable', () => {
  // The protocol's error table is internal to kafkajs; reading it here keeps the list honest on upgrades.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { errorCodes } = require('kafkajs/src/protocol/error') as {
    errorCodes: { message: string; retriable: boolean }[];
  };
  for (const message of TRANSIENT_BROKER_ERRORS) {
    expect(errorCodes.find((e) => e.message === message)).toMatchObject({ retriable: true });
  }
  // The rebalance reply is answered by a rejoin, not a retry; it must still be kafkajs's exact text.
  expect(errorCodes.find((e) => e.message === REBALANCE_RESPONSE)).toMatchObject({ retriable: false });
  expect(isRetriedResponse('Response Heartbeat(key: 12, version: 3)', { error: REBALANCE_RESPONSE })).toBe(
    true,
  );
});
