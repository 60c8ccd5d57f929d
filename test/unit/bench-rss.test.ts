// The bench's peak RSS reading: it sees memory the run held only for a moment, and it belongs to the
// run it wraps, not to an earlier, bigger one.
import v8 from 'node:v8';
import vm from 'node:vm';
import { measurePeakRss } from '../../src/bench/rss';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

const MB = 1024 * 1024;

/** Touches `mb` megabytes (every page written, so they are resident) and gives them back before returning. */
async function briefly(mb: number): Promise<number> {
  const held = [Buffer.alloc(mb * MB, 1)];
  const sum = held[0]![0]! + held[0]![mb * MB - 1]!;
  await Promise.resolve();
  held.length = 0;
  gc();
  return sum;
}

test('an allocation given back before the run ends, between two samples, shows in the peak', async () => {
  const { value, rss } = await measurePeakRss(() => briefly(96), 60_000);
  expect(value).toBe(2);
  expect(rss.peakMb - rss.startMb).toBeGreaterThanOrEqual(90);
});

test("a run's peak is its own, not an earlier run's", async () => {
  const earlier = await measurePeakRss(() => briefly(160));
  // V8 gives a collected buffer's memory back off the main thread: wait until this run would start well
  // below the earlier peak.
  while (process.memoryUsage.rss() / MB > earlier.rss.peakMb - 100)
    await new Promise((r) => setTimeout(r, 10));
  const { rss } = await measurePeakRss(async () => 0, 60_000);
  expect(earlier.rss.peakMb - rss.startMb).toBeGreaterThanOrEqual(100);
  expect(rss.peakMb - rss.startMb).toBeLessThan(16);
});
