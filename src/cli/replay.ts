// `keyflow replay`: recompute tables from the archived events and report (or repair) what drifted, for
// one entity or as a resumable full pass. Exit 0 when nothing is left to fix, 1 when differences remain.
import { appDataflows } from '../app/dataflows';
import { loadConfig } from '../config';
import { createLogger } from '../logger';
import { replayEntity } from '../replay/engine';
import { replayAll } from '../replay/full-pass';
import { replaySince } from '../replay/since';
import { entityText, progressDetail, runText, sinceText, toJson } from '../replay/report';
import { connectStore } from '../state/mongo';
import { Progress } from './progress';
import { defineCommand, usageError, wholeNumber } from './args';

/** Exit code of a full pass stopped by Ctrl-C before it finished (the shell's convention for SIGINT). */
const INTERRUPTED = 130;

const AGE = /^(\d+)(m|h|d)$/;
const UNIT_MS = { m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/** A time option (`--since`, `--until`): an ISO time, or an age before now (`90m`, `6h`, `2d`). */
export function timeOption(flag: string, text: string, refuse: (m: string) => Error, now = Date.now()): Date {
  const age = AGE.exec(text);
  if (age) return new Date(now - Number(age[1]) * UNIT_MS[age[2] as keyof typeof UNIT_MS]);
  const t = /^\d{4}-\d\d-\d\d/.test(text) ? Date.parse(text) : NaN;
  if (Number.isNaN(t))
    throw refuse(`${flag} takes an ISO time (2026-12-06T21:00Z) or an age (90m, 6h, 2d), not "${text}"`);
  return new Date(t);
}

/** `--since`: an ISO time, or an age before now (`90m`, `6h`, `2d`). */
export function sinceTime(text: string, refuse: (m: string) => Error, now = Date.now()): Date {
  return timeOption('--since', text, refuse, now);
}

export const replayCommand = defineCommand({
  name: 'replay',
  summary:
    'recompute tables from archived events; report differences (exit 1 if any remain), optionally repair',
  options: {
    id: { type: 'string', value: '<entityId>', doc: 'replay one entity (every table it touches)' },
    entity: { type: 'string', value: '<kind>', doc: 'only the tables of this kind of entity' },
    all: { type: 'boolean', doc: 'a full pass over every entity, resumable, with progress on stderr' },
    since: {
      type: 'string',
      value: '<time>',
      doc: 'only the entities a live write touched since then (ISO time, or an age: 90m, 6h, 2d)',
    },
    shards: { type: 'string', value: 'N', doc: '--all: split the pass into N shards run side by side' },
    resume: { type: 'string', value: '<runId>', doc: 'continue an interrupted --all run (implies --all)' },
    repair: { type: 'boolean', doc: 'write the recomputed rows where they differ' },
    json: { type: 'boolean', doc: 'print the report as JSON' },
  },
  notes: [
    'Give one of --id, --all or --since. Exit 0 when nothing is left to fix, 1 when differences remain.',
  ],
  async run({ values }) {
    const refuse = (message: string) => usageError(replayCommand, message);
    const { id, resume, entity } = values;
    const all = values.all === true || resume !== undefined;
    const since = values.since === undefined ? undefined : sinceTime(values.since, refuse);
    if ([id !== undefined, all, since !== undefined].filter(Boolean).length !== 1) {
      throw refuse('give one of --id <entityId>, --all or --since <time>');
    }
    if (id !== undefined && (id.length === 0 || id.length > 512)) {
      throw refuse('--id must be 1 to 512 characters');
    }
    const shards = wholeNumber(values.shards, 'shards');
    if (!all && shards !== undefined) throw refuse('--shards applies to --all only');
    const repair = values.repair === true;
    const json = values.json === true;

    const tables = appDataflows()
      .flatMap((f) => f.replay)
      .filter((t) => entity === undefined || t.entity === entity);
    const config = loadConfig(process.env, { require: ['mongoUrl'] });
    const log = createLogger(process.env.LOG_LEVEL ?? 'warn');
    const store = await connectStore(config, log);
    try {
      if (id !== undefined) {
        const report = await replayEntity(store.db, tables, id, { repair });
        process.stdout.write(`${json ? toJson(report) : entityText(report)}\n`);
        return report.differences.length ? 1 : 0;
      }
      if (since !== undefined) {
        const summary = await replaySince(store.db, tables, since, { repair });
        process.stdout.write(`${json ? toJson(summary) : sinceText(summary)}\n`);
        return summary.remaining > 0 ? 1 : 0;
      }
      const stop = new AbortController();
      const onSigint = () => {
        process.stderr.write('\nstopping at the next checkpoint; Ctrl-C again to quit at once\n');
        stop.abort();
      };
      process.once('SIGINT', onSigint);
      // A plain line every 5 s off a terminal: a pass can run for hours, quarters alone would be sparse.
      const bar = new Progress(process.stderr, { plainEveryMs: 5000 });
      try {
        const summary = await replayAll(store.db, tables, {
          shards,
          // A resumed run keeps its own repair setting unless --repair says otherwise.
          repair: resume !== undefined && !repair ? undefined : repair,
          runId: resume,
          signal: stop.signal,
          onProgress: (p) => {
            if (!bar.open) bar.phase('replay', p.total);
            bar.tick(p.checked, progressDetail(p));
          },
        });
        bar.end();
        process.stdout.write(`${json ? toJson(summary) : runText(summary)}\n`);
        if (summary.status === 'interrupted') return INTERRUPTED;
        return summary.remaining > 0 ? 1 : 0;
      } finally {
        bar.end();
        process.removeListener('SIGINT', onSigint);
      }
    } finally {
      await store.close();
    }
  },
});
