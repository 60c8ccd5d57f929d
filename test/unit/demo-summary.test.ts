// The demo's closing summary names where the services came from, how long the stack took to take
// traffic, the end-to-end rate and the log file, in aligned rows.
import { eventsPerSecond, summaryLines } from '../../src/app/demo/summary';

test('a run against a running local stack, with its log in a file', () => {
  expect(
    summaryLines({
      services: 'local-running',
      servicesMs: 420,
      processorMs: 3150,
      events: 3563,
      endToEndMs: 12_500,
      wallMs: 19_400,
      logFile: '.keyflow/logs/demo.log',
    }),
  ).toEqual([
    'Summary:',
    '  services ready   420ms (local stack, already running)',
    '  processor ready  3.1s (topics, schemas, indexes, every stage joined)',
    '  end to end       3563 events in 12.5s, 285 events/s (first publish to last commit)',
    '  wall time        19.4s',
    '  log              .keyflow/logs/demo.log',
  ]);
});

test('no log row when the log goes to a stream; a first run says it started the stack', () => {
  const lines = summaryLines({
    services: 'local-started',
    servicesMs: 95_000,
    processorMs: 2000,
    events: 10,
    endToEndMs: 1000,
    wallMs: 100_000,
  });
  expect(lines).toHaveLength(5);
  expect(lines[1]).toBe('  services ready   1m35s (local stack, started by this run)');
});

test('events per second are whole, and a zero duration does not divide by zero', () => {
  expect(eventsPerSecond(3563, 12_500)).toBe('285');
  expect(eventsPerSecond(5, 0)).toBe('-');
});
