// A started stage's retry and dead-letter counters are exported at 0 before anything happens: a
// series that first appears at 1 gives rate() nothing to compare with, so the first dead letter after
// a start would never reach KeyflowDeadLetterRate or the dashboard's "Dead letters" panel.
import { EVENTS, Instrumentation } from '../../src/instrumentation';
import { createMetricsRegistry, registerStageMetrics } from '../../src/monitoring/metrics';

test('a started stage exports its retry and dead-letter counters at 0', async () => {
  const registry = createMetricsRegistry();
  const inst = new Instrumentation();
  registerStageMetrics(registry, inst);
  const before = await registry.metrics();
  expect(before).not.toMatch(/keyflow_dead_letters_total\{stage="book"\}/);
  inst.emit(EVENTS.STAGE_START, { stage: 'book' });
  const text = await registry.metrics();
  expect(text).toMatch(/^keyflow_dead_letters_total\{stage="book"\} 0$/m);
  expect(text).toMatch(/^keyflow_retries_total\{stage="book"\} 0$/m);
  inst.emit(EVENTS.EVENT_DEAD_LETTERED, { stage: 'book' } as never);
  expect(await registry.metrics()).toMatch(/^keyflow_dead_letters_total\{stage="book"\} 1$/m);
});
