// `keyflow replay`: recompute tables from the archived events and report (or repair) what drifted, for
// one entity or as a resumable full pass. Exit 0 when nothing is left to fix, 1 when differences remain.
import { appDataflows } from '../app/dataflows';
import { loadConfig } from '../config';
import { KeyflowError } from '../errors';
import { createLogger } from '../logger';
import { replayEntity } from '../replay/engine';
import { replayAll } from '../replay/full-pass';
import { entityText, progressDetail, runText, toJson } from '../replay/report';
import { connectStore } from '../state/mongo';
import { Progress } from './progress';
import { flag, has, intFlag, positionals } from './args';
import type { Command } from './main';

const VALUED = ['--id', '--entity', '--shards', '--resume'];
const BARE = ['--all', '--repair', '--json'];
/** Exit code of a full pass stopped by Ctrl-C before it finished (the shell's convention for SIGINT). */
const INTERRUPTED = 130;

const USAGE =
  'replay --id <entityId> [--entity <kind>] | --all [--shards N] [--resume <runId>] [--repair] [--json]';

function refuse(message: string): never {
  throw new KeyflowError('USAGE', `${message}; usage: keyflow ${USAGE}`);
}

function checkArgs(args: string[]): void {
  const stray = positionals(args, VALUED);
  if (stray.length) refuse(`unexpected argument "${stray[0]}"`);
  for (const a of args) {
    const name = a.startsWith('--') ? a.split('=')[0]! : undefined;
    if (name && !VALUED.includes(name) && !BARE.includes(name)) refuse(`unknown option ${name}`);
  }
}

export const replayCommand: Command = {
  usage: USAGE,
  summary:
    'recompute tables from archived events; report differences (exit 1 if any remain), optionally repair',
  async run(args) {
    checkArgs(args);
    const id = flag(args, '--id');
    const resume = flag(args, '--resume');
    const all = has(args, '--all') || resume !== undefined;
    if ((id === undefined) === !all) refuse('give either --id <entityId> or --all');
    if (id !== undefined && (id.length === 0 || id.length > 512)) refuse('--id must be 1 to 512 characters');
    const shards = intFlag(args, '--shards');
    if (id !== undefined && shards !== undefined) refuse('--shards applies to --all only');
    const entity = flag(args, '--entity');
    const repair = has(args, '--repair');
    const json = has(args, '--json');

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
};
