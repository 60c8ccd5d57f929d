// The processor's peak resident memory during one contestant's run. Every contestant runs inside the
// bench process (the pipeline is Keyflow's own Processor, started in-process as `keyflow start` starts
// it), so the process's peak is the processor's plus what the harness holds (the event set, the
// tracker): the RSS at the run's start shows that share.
import fs from 'node:fs';

const MB = 1024 * 1024;

export interface RssReading {
  /** Resident set size as the run began, MB. */
  startMb: number;
  /** The highest resident set size during the run, MB. */
  peakMb: number;
}

/**
 * Resets Linux's high-water mark of this process's RSS (VmHWM) to the current RSS, so the mark read
 * after the run is the run's own peak, a spike between two samples included. False where unsupported.
 */
function resetHighWater(): boolean {
  try {
    fs.writeFileSync('/proc/self/clear_refs', '5');
    return true;
  } catch {
    return false;
  }
}

function highWaterBytes(): number {
  try {
    const m = /^VmHWM:\s+(\d+) kB/m.exec(fs.readFileSync('/proc/self/status', 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

const toMb = (bytes: number): number => Math.round((bytes / MB) * 10) / 10;

/**
 * Runs `run` and reports this process's RSS at its start and its peak: sampled every `intervalMs`,
 * and on Linux also the kernel's high-water mark, reset as the run starts.
 */
export async function measurePeakRss<T>(
  run: () => Promise<T>,
  intervalMs = 100,
): Promise<{ value: T; rss: RssReading }> {
  const start = process.memoryUsage.rss();
  const exact = resetHighWater();
  let peak = start;
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage.rss());
  }, intervalMs);
  timer.unref();
  try {
    const value = await run();
    peak = Math.max(peak, process.memoryUsage.rss(), exact ? highWaterBytes() : 0);
    return { value, rss: { startMb: toMb(start), peakMb: toMb(peak) } };
  } finally {
    clearInterval(timer);
  }
}
