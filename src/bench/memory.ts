// `keyflow bench memory` (`npm run bench -- memory`): the processor's own memory under its maximum load.
// One real processor child per Kafka client drains a backlog of about 45,000 records as fast as it can
// (the bench's in-process pipeline shares its process with the harness, so its RSS is not the
// processor's). The child's RSS is read from /proc every 100 ms, its V8 heap and external memory from its
// own /metrics; ten seconds after the drain its RSS at rest is read and a heap snapshot taken
// (--heapsnapshot-signal), summarised by constructor. Writes bench/results/memory-latest.{json,md}.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { spawnWithEnv, waitFor, type EventSetSpec, type Instance } from '../faults/rig';
import { untilStable } from '../faults/membership';
import { TARGETS_DIR_ENV } from '../faults/prometheus';
import { startReady } from '../faults/scale';
import { publishAll } from './arena';
import { childContext, closeChildContext, withRig, type ChildRunOptions } from './children';
import { summariseHeapSnapshot, type HeapGroup } from './heap-summary';
import type { ScalingClient } from './scaling-report';

/** About 45,000 records, 40,000 of them conversions: the issue's "42,000-event conversions burst". */
const BACKLOG: EventSetSpec = { appointments: 1000, leads: 8000, conversionsPerLead: 5, seed: 20261207 };
const REST_MS = 10_000;
const MB = 1024 * 1024;

export interface MemoryOptions extends ChildRunOptions {
  clients: ScalingClient[];
  /**
   * When to take and summarise a heap snapshot: at rest (default), halfway through the drain (what holds
   * the peak; the RSS peak is then read up to the snapshot only, which itself takes memory), or never.
   */
  snapshot?: 'rest' | 'drain' | 'none';
}

export interface MemoryResult {
  client: ScalingClient;
  records: number;
  drainMs: number;
  throughput: number;
  /** RSS when the child was ready, before the backlog. */
  readyMb: number;
  /** The highest RSS while draining (sampled, and the kernel's high-water mark). */
  peakMb: number;
  /** RSS ten seconds after the last effect. */
  restMb: number;
  /** The child's V8 heap used and external memory at the sample nearest the RSS peak. */
  heapUsedAtPeakMb: number | null;
  heapTotalAtPeakMb: number | null;
  externalAtPeakMb: number | null;
  /** The same three at rest, beside the RSS at rest. */
  atRest: { heapUsedMb: number; heapTotalMb: number; externalMb: number } | null;
  /** The heap snapshot, by constructor, largest first. */
  heap?: { when: 'rest' | 'drain'; totalMb: number; top: HeapGroup[]; file: string };
}

export interface MemoryRun {
  startedAt: string;
  machine: { cpus: number; node: string };
  results: MemoryResult[];
}

function procStatusKb(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** The child's /metrics address, from the target file it writes when FAULT_TARGETS_DIR is set. */
function metricsUrl(dir: string, pid: number): string | undefined {
  try {
    const [entry] = JSON.parse(fs.readFileSync(path.join(dir, `${pid}.json`), 'utf8')) as {
      targets: string[];
    }[];
    return entry ? `http://${entry.targets[0]}/metrics` : undefined;
  } catch {
    return undefined;
  }
}

interface HeapReading {
  heap: number;
  /** The V8 heap's committed size: what the engine holds from the system, used or not. */
  heapTotal: number;
  external: number;
}

async function heapFigures(url: string | undefined): Promise<HeapReading | undefined> {
  if (!url) return undefined;
  try {
    const text = await (await fetch(url)).text();
    const read = (name: string) => Number(new RegExp(`^${name} (\\S+)`, 'm').exec(text)?.[1] ?? NaN);
    return {
      heap: read('nodejs_heap_size_used_bytes'),
      heapTotal: read('nodejs_heap_size_total_bytes'),
      external: read('nodejs_external_memory_bytes'),
    };
  } catch {
    return undefined;
  }
}

const mb = (bytes: number) => Math.round((bytes / MB) * 10) / 10;

/** Samples the child's RSS every 100 ms and its heap every second until stopped. */
function sampleChild(pid: number, targets: string) {
  let peakKb = 0;
  let atPeak: HeapReading | undefined;
  let lastHeap: HeapReading | undefined;
  let stopped = false;
  let tick = 0;
  const loop = (async () => {
    while (!stopped) {
      const kb = procStatusKb(pid, 'VmRSS');
      if (tick++ % 10 === 0) lastHeap = (await heapFigures(metricsUrl(targets, pid))) ?? lastHeap;
      if (kb > peakKb) {
        peakKb = kb;
        atPeak = lastHeap;
      }
      await sleep(100);
    }
  })();
  return {
    async stop() {
      stopped = true;
      await loop;
      return { peakKb: Math.max(peakKb, procStatusKb(pid, 'VmHWM')), atPeak };
    },
  };
}

async function snapshotOf(child: Instance, dir: string): Promise<string | undefined> {
  const before = new Set(fs.readdirSync(dir));
  child.child.kill('SIGUSR2');
  let file: string | undefined;
  let size = -1;
  const settled = await waitFor(async () => {
    file ??= fs.readdirSync(dir).find((f) => f.endsWith('.heapsnapshot') && !before.has(f));
    if (!file) return false;
    const now = fs.statSync(path.join(dir, file)).size;
    const same = now > 0 && now === size;
    size = now;
    return same;
  }, 120_000);
  return settled && file ? path.join(dir, file) : undefined;
}

async function measure(opts: MemoryOptions, client: ScalingClient): Promise<MemoryResult> {
  const ctx = await childContext(opts, client, 'memory');
  const targets = fs.mkdtempSync(path.join(os.tmpdir(), 'keyflow-memory-'));
  try {
    return await withRig(ctx, 6, `memory-${client}`, BACKLOG, async (rig) => {
      const env = {
        [TARGETS_DIR_ENV]: targets,
        // BENCH_MEMORY_NODE_OPTIONS: flags for the processor child only (a heap limit to try, say).
        NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} ${process.env.BENCH_MEMORY_NODE_OPTIONS ?? ''} --heapsnapshot-signal=SIGUSR2 --diagnostic-dir=${ctx.resultsDir}`,
      };
      const child = await startReady(() => spawnWithEnv(rig, `memory-${client}`, env), []);
      const pid = child.child.pid!;
      if ((await untilStable(ctx.membership, rig.arena, 1)) === undefined)
        throw new Error(`the ${client} processor never held its partitions`);
      const readyKb = procStatusKb(pid, 'VmRSS');
      const sampler = sampleChild(pid, targets);
      const at = Date.now();
      await publishAll(ctx.kafka, rig.records);
      const when = opts.snapshot ?? 'rest';
      let peak: Awaited<ReturnType<typeof sampler.stop>> | undefined;
      let file: string | undefined;
      const drained = await waitFor(async () => {
        const applied = await rig.applied();
        if (when === 'drain' && !peak && applied >= rig.expected / 2) {
          peak = await sampler.stop();
          file = await snapshotOf(child, ctx.resultsDir);
        }
        return applied >= rig.expected;
      }, 600_000);
      const drainMs = Date.now() - at;
      const { peakKb, atPeak } = peak ?? (await sampler.stop());
      if (!drained) throw new Error(`the ${client} processor did not drain the backlog in 10 minutes`);
      await sleep(REST_MS);
      const restKb = procStatusKb(pid, 'VmRSS');
      const rest = await heapFigures(metricsUrl(targets, pid));
      const result: MemoryResult = {
        client,
        records: rig.records.length,
        drainMs,
        throughput: Math.round(rig.records.length / (drainMs / 1000)),
        readyMb: mb(readyKb * 1024),
        peakMb: mb(peakKb * 1024),
        restMb: mb(restKb * 1024),
        heapUsedAtPeakMb: atPeak ? mb(atPeak.heap) : null,
        heapTotalAtPeakMb: atPeak ? mb(atPeak.heapTotal) : null,
        externalAtPeakMb: atPeak ? mb(atPeak.external) : null,
        atRest: rest
          ? { heapUsedMb: mb(rest.heap), heapTotalMb: mb(rest.heapTotal), externalMb: mb(rest.external) }
          : null,
      };
      opts.out(
        `${client}: ${result.records} records in ${(drainMs / 1000).toFixed(1)} s (${result.throughput}/s); RSS ready ${result.readyMb} MB, peak ${result.peakMb} MB${when === 'drain' ? ' (before the snapshot halfway)' : ''} (heap used ${result.heapUsedAtPeakMb ?? '—'} of ${result.heapTotalAtPeakMb ?? '—'} MB, external ${result.externalAtPeakMb ?? '—'} MB), at rest ${result.restMb} MB (heap used ${result.atRest?.heapUsedMb ?? '—'} of ${result.atRest?.heapTotalMb ?? '—'} MB, external ${result.atRest?.externalMb ?? '—'} MB)`,
      );
      if (when === 'rest') file = await snapshotOf(child, ctx.resultsDir);
      if (when !== 'none') {
        if (file) {
          const s = summariseHeapSnapshot(fs.readFileSync(file, 'utf8'));
          result.heap = {
            when,
            totalMb: mb(s.totalBytes),
            top: s.groups.slice(0, 15),
            file: path.basename(file),
          };
          opts.out(
            `${client}: heap snapshot (${when === 'rest' ? 'at rest' : 'halfway through the drain'}) ${result.heap.totalMb} MB; largest: ${s.groups
              .slice(0, 8)
              .map((g) => `${g.name} ${mb(g.selfBytes)} MB (${g.count})`)
              .join(', ')}`,
          );
        } else opts.out(`${client}: no heap snapshot was written`);
      }
      return result;
    });
  } finally {
    fs.rmSync(targets, { recursive: true, force: true });
    await closeChildContext(ctx);
  }
}

export function memoryReport(run: MemoryRun): string {
  const lines = [
    `# Processor memory under its maximum load, ${run.startedAt}`,
    '',
    `${run.machine.cpus} CPUs, Node ${run.machine.node}. One processor child per client drains the backlog as fast as it can; RSS from /proc, heap and external memory from the child's /metrics.`,
    '',
    '| client | records | drain (s) | events/s | RSS ready (MB) | RSS peak (MB) | heap used / committed at peak (MB) | external at peak (MB) | RSS at rest (MB) | heap used / committed at rest (MB) |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...run.results.map(
      (r) =>
        `| ${r.client} | ${r.records} | ${(r.drainMs / 1000).toFixed(1)} | ${r.throughput} | ${r.readyMb} | ${r.peakMb} | ${r.heapUsedAtPeakMb ?? '—'} / ${r.heapTotalAtPeakMb ?? '—'} | ${r.externalAtPeakMb ?? '—'} | ${r.restMb} | ${r.atRest ? `${r.atRest.heapUsedMb} / ${r.atRest.heapTotalMb}` : '—'} |`,
    ),
    '',
  ];
  for (const r of run.results) {
    if (!r.heap) continue;
    lines.push(
      `## ${r.client}: heap snapshot ${r.heap.when === 'rest' ? 'at rest' : 'halfway through the drain'} (${r.heap.totalMb} MB, \`${r.heap.file}\`)`,
      '',
      '| constructor | objects | self size (MB) |',
      '| --- | ---: | ---: |',
      ...r.heap.top.map((g) => `| ${g.name.replace(/\|/g, '\\|')} | ${g.count} | ${mb(g.selfBytes)} |`),
      '',
    );
  }
  return lines.join('\n');
}

export async function runMemory(opts: MemoryOptions): Promise<number> {
  const run: MemoryRun = {
    startedAt: new Date().toISOString(),
    machine: { cpus: os.cpus().length, node: process.version },
    results: [],
  };
  for (const client of opts.clients) run.results.push(await measure(opts, client));
  const dir = path.resolve(opts.resultsDir ?? path.join('bench', 'results'));
  fs.writeFileSync(path.join(dir, 'memory-latest.json'), `${JSON.stringify(run, null, 2)}\n`);
  fs.writeFileSync(path.join(dir, 'memory-latest.md'), memoryReport(run));
  opts.out(`Wrote ${path.relative(process.cwd(), path.join(dir, 'memory-latest.md'))}.`);
  return 0;
}
