// `keyflow dlq list|replay|discard <stage>`: inspect dead letters, re-drive them into their key's lane,
// or give one up (bytes no re-drive can fix) so the key's later letters can follow.
import { userInfo } from 'node:os';
import { loadConfig } from '../config';
import { discardLetter, listLetters, type DeadLetter, type LetterStatus } from '../state/dead-letters';
import { bySelection, discardSelected, selectLetters, type LetterSelection } from '../state/letter-selection';
import { redrive } from '../consumers/redrive';
import { ERROR_CODES, KeyflowError } from '../errors';
import { kafkaClient } from '../kafka/client';
import { KeyedProducer } from '../producers/producer';
import { connectStore } from '../state/mongo';
import { createLogger } from '../logger';
import { defineCommand, usageError, wholeNumber } from './args';
import { Progress } from './progress';
import { timeOption } from './replay';

const STATUSES: LetterStatus[] = ['parked', 'dead', 'redriven', 'resolved'];

export const dlqCommand = defineCommand({
  name: 'dlq',
  operands: 'list|replay|discard <stage>',
  summary:
    'list a stage’s dead letters, re-drive them (all, or one key’s) in their original order, or discard one',
  options: {
    key: { type: 'string', value: 'K', doc: 'only the letters of this key' },
    code: {
      type: 'string',
      value: 'CODE',
      multiple: true,
      doc: 'only letters with this error code (repeat it, or give a comma list)',
    },
    since: {
      type: 'string',
      value: 'TIME',
      doc: 'only letters dead at or after TIME (ISO, or an age: 90m, 6h, 2d)',
    },
    until: { type: 'string', value: 'TIME', doc: 'only letters dead before TIME (ISO, or an age)' },
    status: { type: 'string', value: 'S', doc: `list: only letters in this status (${STATUSES.join(', ')})` },
    limit: { type: 'string', value: 'N', doc: 'at most N letters (list: default 100; replay: all)' },
    json: { type: 'boolean', doc: 'list: print the letters as JSON' },
    letter: { type: 'string', value: 'ID', doc: 'discard: this letter' },
    reason: { type: 'string', value: 'TEXT', doc: 'discard: why (recorded with who and when)' },
  },
  notes: [
    '--code, --since and --until combine with each other and with --key; replay keeps each key’s order and',
    'reports a selected letter whose key has an earlier open letter left out as held (it stays parked).',
    'discard with --code/--since/--until gives up every unresolved letter selected.',
  ],
  async run({ values, positionals }) {
    const [action, stage, ...extra] = positionals;
    if ((action !== 'list' && action !== 'replay' && action !== 'discard') || !stage || extra.length > 0) {
      throw usageError(dlqCommand);
    }
    const selection = selectionOf(values);
    const selective = bySelection(selection);
    if (action === 'discard') {
      if (
        selective ? values.letter !== undefined : (values.letter === undefined) === (values.key === undefined)
      ) {
        throw new KeyflowError(
          'USAGE',
          'discard needs exactly one of --letter ID, --key K, or a selection (--code, --since, --until; with --key if wanted)',
        );
      }
      if (!values.reason?.trim()) throw new KeyflowError('USAGE', 'discard needs --reason "why"');
    }
    const { status, key } = values;
    const limit = wholeNumber(values.limit, 'limit');
    if (status !== undefined && !STATUSES.includes(status as LetterStatus)) {
      throw new KeyflowError('USAGE', `--status must be one of ${STATUSES.join(', ')}`);
    }
    const config = loadConfig(process.env, { require: action === 'replay' ? undefined : ['mongoUrl'] });
    const log = createLogger(process.env.LOG_LEVEL ?? 'warn');
    const store = await connectStore(config, log);
    try {
      if (action === 'list') {
        const statuses = status ? [status as LetterStatus] : undefined;
        const letters = selective
          ? await collect(
              selectLetters(store.db, stage, selection, {
                status: statuses ?? STATUSES,
                limit: limit ?? 100,
              }),
            )
          : await listLetters(store.db, stage, { key, status: statuses, limit: limit ?? 100 });
        if (values.json) {
          const rows = letters.map(({ value, ...rest }) => ({ ...rest, bytes: value?.length() ?? 0 }));
          process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
        } else {
          process.stdout.write(`${letters.length} letter(s) for ${stage}\n`);
          for (const l of letters) {
            process.stdout.write(
              `${l.status.padEnd(9)} key=${l.key ?? '(none)'} event=${l.eventId} ${l.code} attempts=${l.attempts} ` +
                `from=${l.topic}/${l.partition}@${l.offset} dead=${l.deadAt.toISOString()} — ${l.message}\n`,
            );
          }
        }
        return 0;
      }
      if (action === 'discard') {
        const by = `cli:${userInfo().username}`;
        const retentionMs = config.deadLetterRetentionDays * 24 * 3600 * 1000;
        if (selective) {
          const bar = new Progress(process.stderr, { plainEveryMs: 5000 });
          const gone = await discardSelected(store.db, stage, selection, {
            by,
            reason: values.reason!.trim(),
            retentionMs,
            limit,
            onProgress: (n) => {
              if (!bar.open) bar.phase('discard', null);
              bar.tick(n);
            },
          });
          bar.end();
          for (const l of gone)
            process.stdout.write(`discarded ${l._id} (key=${l.key ?? '(none)'} ${l.code})\n`);
          process.stdout.write(`discarded ${gone.length} letter(s) of ${stage}${describe(selection)}\n`);
          return 0;
        }
        const letter = await discardLetter(store.db, {
          stage,
          target: values.letter !== undefined ? { letter: values.letter } : { key: key! },
          by,
          reason: values.reason!.trim(),
          retentionMs,
        });
        process.stdout.write(
          `discarded ${letter._id} (key=${letter.key ?? '(none)'} ${letter.code}); ` +
            `the key's later letters can be re-driven\n`,
        );
        return 0;
      }
      // The command prints its own lines; the client's warnings would only interleave with them.
      const kafka = kafkaClient(config, createLogger('silent'), `${config.kafkaClientId}-dlq`);
      // Dead letters carry their original bytes, so re-driving needs no encoder.
      const producer = new KeyedProducer(kafka, {
        encode: () => Promise.reject(new KeyflowError('USAGE', 're-drive sends original bytes only')),
      });
      const bar = new Progress(process.stderr, { plainEveryMs: 5000 });
      try {
        const result = await redrive({
          db: store.db,
          producer,
          stage,
          key,
          selection: selective ? selection : undefined,
          limit,
          staleRedrivenMs: config.redriveStaleMs,
          onProgress: (p) => {
            if (!bar.open) bar.phase('re-drive', null);
            bar.tick(p.redriven, p.held > 0 ? `${p.held} held` : undefined);
          },
        });
        bar.end();
        process.stdout.write(`re-drove ${result.redriven} letter(s) of ${stage}${describe(selection)}\n`);
        for (const s of result.skipped) process.stdout.write(`skipped ${s.id}: ${s.reason}\n`);
        for (const h of result.held) {
          process.stdout.write(
            `held ${h.id} (key=${h.key}): held behind an earlier letter of its key, ${h.behind} ` +
              `(${h.behindCode}, ${h.behindStatus}), not selected; it stays parked\n`,
          );
        }
        if (result.held.length > 0) {
          process.stdout.write(
            `${result.held.length} letter(s) held behind an earlier letter of its key: re-drive or discard ` +
              `those first (or select them too), then run this again\n`,
          );
        }
      } finally {
        bar.end();
        await producer.close();
      }
      return 0;
    } finally {
      await store.close();
    }
  },
});

const KNOWN_CODES = Object.keys(ERROR_CODES);

/** `--code` (repeated or comma lists), `--since`, `--until` and `--key`, checked: one line per mistake. */
function selectionOf(values: {
  key?: string;
  code?: string[];
  since?: string;
  until?: string;
}): LetterSelection {
  const refuse = (m: string) => new KeyflowError('USAGE', m);
  const codes = values.code?.flatMap((c) => c.split(',')).map((c) => c.trim());
  for (const c of codes ?? []) {
    if (!KNOWN_CODES.includes(c)) {
      throw refuse(`--code ${c || '""'} is not an error code; known: ${KNOWN_CODES.join(', ')}`);
    }
  }
  const now = Date.now();
  const since = values.since === undefined ? undefined : timeOption('--since', values.since, refuse, now);
  const until = values.until === undefined ? undefined : timeOption('--until', values.until, refuse, now);
  if (since && until && until <= since) {
    throw refuse(`--until (${until.toISOString()}) must be after --since (${since.toISOString()})`);
  }
  return { key: values.key, codes: codes && [...new Set(codes)], since, until };
}

/** " (key k, codes A,B, dead from … to …)" for the summary line; empty without a selection. */
function describe(s: LetterSelection): string {
  const parts = [
    s.key !== undefined ? `key ${s.key}` : '',
    s.codes ? `code ${s.codes.join(',')}` : '',
    s.since ? `dead from ${s.since.toISOString()}` : '',
    s.until ? `dead before ${s.until.toISOString()}` : '',
  ].filter(Boolean);
  return parts.length ? ` (${parts.join(', ')})` : '';
}

async function collect(pages: AsyncIterable<DeadLetter[]>): Promise<DeadLetter[]> {
  const out: DeadLetter[] = [];
  for await (const page of pages) out.push(...page);
  return out;
}
